//! A real OpenLDAP server (Debian's `slapd`) for the LDAP tests: a generated `slapd.conf`
//! and directory in a temp dir, loaded with `slapadd`, serving `ldap://127.0.0.1:PORT`.
//!
//! The directory `dc=berth,dc=test` holds a service account `cn=svc` (password
//! [`SERVICE_PASSWORD`]), users under `ou=people` (each with [`USER_PASSWORD`] unless
//! given another) and `groupOfNames` groups under `ou=groups`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const BASE_DN: &str = "dc=berth,dc=test";
pub const SERVICE_DN: &str = "cn=svc,dc=berth,dc=test";
pub const SERVICE_PASSWORD: &str = "service account secret";
pub const USER_PASSWORD: &str = "directory password";

/// A running slapd; stopped on drop.
pub struct Slapd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Slapd {
    /// Starts slapd with `users` (uid) and `groups` (cn, member uids).
    ///
    /// # Panics
    /// When slapd or slapadd is missing (install `slapd` and `ldap-utils`, or run
    /// `bash tests/run-all.sh`), or when slapd does not start.
    pub fn start(users: &[&str], groups: &[(&str, &[&str])]) -> Slapd {
        for tool in ["/usr/sbin/slapd", "/usr/sbin/slapadd"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: the LDAP tests need Debian's slapd (and ldap-utils); \
                 run them with `bash tests/run-all.sh`, which installs them"
            );
        }
        let dir = tempfile::tempdir().expect("slapd temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, slapd_conf(dir.path(), &data)).unwrap();
        let ldif = dir.path().join("directory.ldif");
        std::fs::write(&ldif, directory_ldif(users, groups)).unwrap();

        let output = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("run slapadd");
        assert!(
            output.status.success(),
            "slapadd failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );

        let mut slapd = Slapd {
            port: free_port(),
            dir,
            child: None,
        };
        slapd.run();
        slapd
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Writes the service account's password to a file and returns its path.
    pub fn service_password_file(&self) -> PathBuf {
        let path = self.dir.path().join("bind-password");
        std::fs::write(&path, format!("{SERVICE_PASSWORD}\n")).unwrap();
        path
    }

    /// Stops slapd (the directory goes down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn run(&mut self) {
        let conf = self.dir.path().join("slapd.conf");
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).unwrap();
        // `-d` keeps slapd in the foreground, so the test owns the process.
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(self.url() + "/")
            .args(["-d", "256"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("slapd exited with {status}; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slapd did not listen within 20s; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn slapd_conf(dir: &Path, data: &Path) -> String {
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {dir}/slapd.pid\n\
         argsfile {dir}/slapd.args\n\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"cn=admin,{BASE_DN}\"\n\
         directory {data}\n\
         access to attrs=userPassword by anonymous auth by * none\n\
         access to * by dn.exact=\"{SERVICE_DN}\" read by * none\n",
        dir = dir.display(),
        data = data.display(),
    )
}

fn directory_ldif(users: &[&str], groups: &[(&str, &[&str])]) -> String {
    let mut ldif = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: berth\ndc: berth\n\n\
         dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {SERVICE_DN}\nobjectClass: person\ncn: svc\nsn: svc\n\
         userPassword: {SERVICE_PASSWORD}\n\n"
    );
    for user in users {
        ldif.push_str(&format!(
            "dn: uid={user},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {user}\n\
             cn: {user}\nsn: {user}\nuserPassword: {USER_PASSWORD}\n\n"
        ));
    }
    for (group, members) in groups {
        ldif.push_str(&format!(
            "dn: cn={group},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {group}\n"
        ));
        for member in *members {
            ldif.push_str(&format!("member: uid={member},ou=people,{BASE_DN}\n"));
        }
        ldif.push('\n');
    }
    ldif
}
