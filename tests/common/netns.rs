//! Test hosts in network namespaces: a [`TestHost`] is a namespace this test process creates,
//! joined to the root namespace by a veth pair on a private /30, and removed again on drop.
//!
//! Tests send traffic only to loopback or to such hosts. A server that must not sit on
//! loopback (dockerd treats every 127.0.0.0/8 registry as insecure and then never presents
//! the client certificate in certs.d) runs inside a test host, started with
//! [`TestHost::command`], and clients in the root namespace reach it at [`TestHost::ip`].

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The /16 the test hosts' /30 subnets come from (picked as unlikely to be routed anywhere).
const SUBNET_PREFIX: &str = "10.213";

/// /30 subnets in [`SUBNET_PREFIX`]'s /16.
const SUBNETS: u32 = 1 << 14;

/// Test hosts this process made so far; numbers the namespaces and subnets.
static MADE: AtomicU32 = AtomicU32::new(0);

/// A network namespace with one address, `10.213.X.Y+2`, reachable from the root namespace
/// over a veth pair whose root end is `10.213.X.Y+1`. Dropping it kills whatever still runs
/// inside and removes the namespace and both veth ends.
pub struct TestHost {
    name: String,
    host_link: String,
    host_ip: String,
    ip: String,
}

impl TestHost {
    /// Creates the namespace and its link.
    ///
    /// # Panics
    /// When `ip` (iproute2) is missing or any step fails (the tests run as root, through
    /// `tests/run-all.sh`); never skips.
    pub fn new() -> TestHost {
        let pid = std::process::id();
        let serial = MADE.fetch_add(1, Ordering::Relaxed);
        // Interface names are at most 15 bytes: "bt" + pid (<= 7 digits) + "h"/"n" + serial.
        let subnet = free_subnet(pid, serial);
        let host = TestHost {
            name: format!("berth-test-{pid}-{serial}"),
            host_link: format!("bt{pid}h{serial}"),
            host_ip: address(subnet, 1),
            ip: address(subnet, 2),
        };
        let peer_link = format!("bt{pid}n{serial}");

        // From here on `host` exists, so a failing step still removes what the earlier
        // ones made.
        ip(&["netns", "add", &host.name]);
        ip(&[
            "link",
            "add",
            &host.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &peer_link,
        ]);
        ip(&["link", "set", &peer_link, "netns", &host.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", host.host_ip),
            "dev",
            &host.host_link,
        ]);
        ip(&["link", "set", &host.host_link, "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["-n", host.name.as_str()];
            full.extend_from_slice(args);
            ip(&full);
        };
        inside(&["link", "set", "lo", "up"]);
        inside(&["addr", "add", &format!("{}/30", host.ip), "dev", &peer_link]);
        inside(&["link", "set", &peer_link, "up"]);
        host
    }

    /// The namespace's address, where clients in the root namespace reach its servers.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The root namespace's end of the link (the source address of connections to [`ip`]).
    ///
    /// [`ip`]: TestHost::ip
    pub fn host_ip(&self) -> &str {
        &self.host_ip
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME PROGRAM`);
    /// `ip` execs the program in place, so the child's pid is the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Anything still running inside would keep the namespace (and so the veth) alive
        // after its name is gone; these are processes this test started in its own namespace.
        if let Ok(output) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        // Deleting one end of a veth pair deletes both.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip` ({e}): the namespace tests need iproute2; use tests/run-all.sh")
    });
    assert!(
        output.status.success(),
        "`ip {}` failed (the namespace tests must run as root): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A /30 in [`SUBNET_PREFIX`]'s /16 whose root end no interface here holds, starting from
/// one derived from this process and test host, so concurrent test processes rarely even
/// look at the same one.
fn free_subnet(pid: u32, serial: u32) -> u32 {
    let output = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` ({e}): the namespace tests need iproute2"));
    let in_use = String::from_utf8_lossy(&output.stdout).into_owned();
    let start = pid.wrapping_mul(64).wrapping_add(serial) % SUBNETS;
    (0..SUBNETS)
        .map(|step| (start + step) % SUBNETS)
        .find(|&subnet| !in_use.contains(&format!(" {}/", address(subnet, 1))))
        .expect("every 10.213.0.0/16 subnet is in use")
}

/// Address `last` (1 or 2) of /30 number `subnet`.
fn address(subnet: u32, last: u32) -> String {
    format!(
        "{SUBNET_PREFIX}.{}.{}",
        subnet >> 6,
        (subnet & 63) * 4 + last
    )
}
