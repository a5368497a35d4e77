//! The HTTPS listener's certificate: loading it into rustls, and creating a development CA
//! and server certificate on first start when none is configured (and development client
//! certificates signed by that CA, for `berth certs client`).
//!
//! Files are read and checked here, before Pingora sees them, so a bad path or key is an
//! error message at startup rather than a panic inside the listener. [`client_cert`] verifies
//! client certificates (mutual TLS); [`reload`] swaps in changed files while serving.

pub mod client_cert;
pub mod reload;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate or key that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("the private key in {path} is not usable: {problem}")]
    BadKey { path: PathBuf, problem: String },
    #[error(
        "{cert} is missing but {ca} exists: restore the certificate, point tls.cert at one, \
         or delete {ca} and its key to have a new development CA made"
    )]
    PartialDevCa { cert: PathBuf, ca: PathBuf },
    #[error("cannot create the development certificates: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// A client CA bundle or CRL that rustls cannot use.
    #[error("{path} is not a usable client CA bundle or CRL: {problem}")]
    BadCa { path: PathBuf, problem: String },
    /// The development CA could not be read back to sign a client certificate.
    #[error("cannot use the development CA {path}: {problem}")]
    BadDevCa { path: PathBuf, problem: String },
    /// The files could not be watched for reloading.
    #[error("cannot watch the certificate files: {0}")]
    Watch(String),
}

/// Paths of a freshly made development CA, for telling the operator how to trust it.
pub struct DevCa {
    pub ca_cert: PathBuf,
}

/// Makes a development CA and a server certificate for localhost when `cert` is missing.
/// Returns the CA's paths when it made them, `None` when the certificate already existed.
///
/// The CA is written beside the certificate as `ca.crt` and `ca.key`.
///
/// # Errors
/// [`TlsError`] when files cannot be written, or when a CA exists without its certificate.
pub fn ensure_dev_certificates(cert: &Path, key: &Path) -> Result<Option<DevCa>, TlsError> {
    if cert.exists() {
        return Ok(None);
    }
    let dir = cert.parent().unwrap_or(Path::new("."));
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    if ca_key_path.exists() {
        return Err(TlsError::PartialDevCa {
            cert: cert.to_path_buf(),
            ca: ca_key_path,
        });
    }
    let generate = |error: rcgen::Error| TlsError::Generate(error.to_string());

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Berth development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(generate)?;
    let ca = ca_params.self_signed(&ca_key).map_err(generate)?;

    let names = vec!["localhost".to_string()];
    let mut server_params = CertificateParams::new(names).map_err(generate)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    for ip in ["127.0.0.1", "::1"] {
        let address = ip.parse().expect("literal IP addresses parse");
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(address));
    }
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(generate)?;
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .map_err(generate)?;

    write_new_file(&ca_cert_path, ca.pem().as_bytes(), false)?;
    write_new_file(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
    write_new_file(key, server_key.serialize_pem().as_bytes(), true)?;
    write_new_file(cert, server.pem().as_bytes(), false)?;
    Ok(Some(DevCa {
        ca_cert: ca_cert_path,
    }))
}

/// Loads a certificate chain and key and checks that rustls can sign with them.
///
/// # Errors
/// [`TlsError`] naming the file that is unreadable or unusable.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };

    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }

    let key_pem = read(key)?;
    let private_key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key.to_path_buf(),
        })?;
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&private_key).map_err(|error| {
            TlsError::BadKey {
                path: key.to_path_buf(),
                problem: error.to_string(),
            }
        })?;

    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|error| TlsError::BadKey {
        path: key.to_path_buf(),
        problem: error.to_string(),
    })?;
    Ok(Arc::new(certified))
}

/// Where [`issue_client_certificate`] wrote a client certificate and its key.
pub struct ClientCertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Issues a development client certificate for `name` (its CN; `groups` become OU values),
/// signed by the development CA `ca.crt` + `ca.key` in `ca_dir`, valid for `days`, and writes
/// `NAME.crt` and `NAME.key` into `out_dir`.
///
/// # Errors
/// [`TlsError`] when the CA cannot be read or the files exist or cannot be written.
pub fn issue_client_certificate(
    ca_dir: &Path,
    name: &str,
    groups: &[String],
    days: u32,
    out_dir: &Path,
) -> Result<ClientCertificateFiles, TlsError> {
    let (ca_cert_path, ca_key_path) = (ca_dir.join("ca.crt"), ca_dir.join("ca.key"));
    let bad_ca = |path: &Path, problem: String| TlsError::BadDevCa {
        path: path.to_path_buf(),
        problem,
    };
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?)
        .map_err(|error| bad_ca(&ca_key_path, error.to_string()))?;
    let ca_params = CertificateParams::from_ca_cert_pem(&read(&ca_cert_path)?)
        .map_err(|error| bad_ca(&ca_cert_path, error.to_string()))?;
    // Re-signing the CA's own parameters with its key yields the same subject and key
    // identifier, which is all a child certificate refers to.
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|error| bad_ca(&ca_cert_path, error.to_string()))?;

    let generate = |error: rcgen::Error| TlsError::Generate(error.to_string());
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    params.distinguished_name.push(DnType::CommonName, name);
    for group in groups {
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, group.as_str());
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    let key = KeyPair::generate().map_err(generate)?;
    let certificate = params.signed_by(&key, &ca, &ca_key).map_err(generate)?;

    let files = ClientCertificateFiles {
        cert: out_dir.join(format!("{name}.crt")),
        key: out_dir.join(format!("{name}.key")),
    };
    write_new_file(&files.key, key.serialize_pem().as_bytes(), true)?;
    write_new_file(&files.cert, certificate.pem().as_bytes(), false)?;
    Ok(files)
}

/// Writes a file that must not exist yet, creating its directory; `secret` makes it 0600.
///
/// # Errors
/// [`TlsError::Write`] naming the file.
pub fn write_new_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let fail = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        let made = ensure_dev_certificates(&cert, &key).unwrap();
        assert!(made.is_some());
        assert!(ensure_dev_certificates(&cert, &key).unwrap().is_none());
        load_certified_key(&cert, &key).unwrap();

        let wrong_key = dir.path().join("ca.key");
        assert!(matches!(
            load_certified_key(&cert, &wrong_key),
            Err(TlsError::BadKey { .. })
        ));
        let missing = dir.path().join("nope.crt");
        assert!(matches!(
            load_certified_key(&missing, &key),
            Err(TlsError::Read { .. })
        ));
    }

    #[test]
    fn client_certificates_chain_to_the_dev_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        ensure_dev_certificates(&cert, &key).unwrap();
        let groups = vec!["builders".to_string()];
        let files = issue_client_certificate(dir.path(), "ci", &groups, 30, dir.path()).unwrap();

        let config = client_cert::ClientAuthConfig {
            mode: client_cert::ClientCertMode::Required,
            ca: vec![dir.path().join("ca.crt")],
            groups_from: Some(client_cert::GroupSource::Ou),
            ..Default::default()
        };
        let verifier = config.load_verifier().unwrap();
        let leaf = client_cert::read_pem_certificates(&files.cert).unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier.verify_client_cert(&leaf[0], &[], now).unwrap();
        let peer = config.peer_certificate(&leaf[0]).unwrap();
        assert_eq!(peer.subject.as_deref(), Some("ci"));
        assert_eq!(peer.groups, ["builders"]);
        assert!(issue_client_certificate(dir.path(), "ci", &[], 30, dir.path()).is_err());
    }
}
