//! Client certificates (mutual TLS): which clients the listener asks for a certificate,
//! how a certificate is verified in the handshake, and how a verified certificate becomes a
//! [`PeerCertificate`] that authentication turns into an identity.
//!
//! Verification is rustls' WebPKI verifier over the configured client CA bundles and CRLs, so
//! a certificate that is expired, revoked, or issued by a CA nobody configured ends the
//! handshake: such a client never reaches HTTP. The verifier sits behind
//! [`ReloadingClientVerifier`], which [`super::reload`] swaps when the bundle or a CRL changes.
//!
//! After the handshake, [`PeerCertificateCallback`] reads the subject (the CN or a SAN, as
//! configured) and groups (O or OU, plus the config's mapping) from the leaf certificate and
//! stores them in the connection's TLS digest, where the gateway finds them per request.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;

/// `tls.client_auth` in proxy.yaml: whether and how the listener asks for client certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// `off`, `optional` or `required`. Default `off`.
    #[serde(default)]
    pub mode: ClientCertMode,
    /// PEM bundles of the CAs whose client certificates are trusted. Required unless `off`.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// CRL files (PEM or DER) from those CAs. Default: none (no revocation checks).
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// Which name in the certificate is the user name. Default `cn`.
    #[serde(default)]
    pub subject: SubjectSource,
    /// Take groups from the subject's O or OU values. Default: none.
    #[serde(default)]
    pub groups_from: Option<GroupSource>,
    /// Extra groups per certificate subject (subject name to group names). Default: none.
    /// The top-level `groups:` apply to certificate subjects too.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// What a caller must show when a certificate is involved. Default `either`.
    #[serde(default)]
    pub policy: CertificatePolicy,
}

/// Whether the listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertMode {
    /// No certificate is asked for.
    #[default]
    Off,
    /// A certificate is asked for; clients without one still connect.
    Optional,
    /// Clients without a valid certificate fail the handshake.
    Required,
}

/// Which name of the certificate becomes the user name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectSource {
    /// The subject's common name.
    #[default]
    Cn,
    /// The first DNS name among the subject alternative names.
    SanDns,
    /// The first email address among the subject alternative names.
    SanEmail,
    /// The first URI among the subject alternative names.
    SanUri,
}

/// Which subject attribute lists the certificate holder's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupSource {
    /// Organization (O) values.
    O,
    /// Organizational unit (OU) values.
    Ou,
}

/// What proves who a caller is when client certificates are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificatePolicy {
    /// Only a certificate signs a caller in; a password alone is refused.
    Certificate,
    /// A certificate and the password of the same user, both.
    CertificateAndPassword,
    /// A certificate or a password, each enough alone.
    #[default]
    Either,
}

/// Who a verified client certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The configured name (CN or SAN); `None` when the certificate has none.
    pub subject: Option<String>,
    /// Groups from O/OU and from the config's mapping for this subject.
    pub groups: Vec<String>,
}

// --- impl ClientAuthConfig ---

impl ClientAuthConfig {
    /// Problems a loaded config can have that its types cannot express.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.mode != ClientCertMode::Off && self.ca.is_empty() {
            problems.push("tls.client_auth.ca must name at least one CA bundle".to_string());
        }
        problems
    }

    /// Whether client certificates are asked for at all.
    pub fn enabled(&self) -> bool {
        self.mode != ClientCertMode::Off
    }

    /// The files whose change reloads the verifier.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.ca.iter().chain(&self.crl).cloned().collect()
    }

    /// Builds a verifier from the CA bundles and CRLs as they are on disk now.
    ///
    /// # Errors
    /// [`TlsError`] naming the bundle or CRL that cannot be read or used.
    pub fn load_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let mut roots = RootCertStore::empty();
        for path in &self.ca {
            for certificate in read_pem_certificates(path)? {
                roots.add(certificate).map_err(|error| TlsError::BadCa {
                    path: path.clone(),
                    problem: error.to_string(),
                })?;
            }
        }
        let mut crls = Vec::new();
        for path in &self.crl {
            crls.extend(read_crls(path)?);
        }

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            // A CA without a CRL in the config is not checked for revocation; the CRLs that
            // are given still apply to the certificates of their issuers.
            .allow_unknown_revocation_status()
            .only_check_end_entity_revocation();
        if self.mode == ClientCertMode::Optional {
            builder = builder.allow_unauthenticated();
        }
        builder.build().map_err(|error| TlsError::BadCa {
            path: self.ca.first().cloned().unwrap_or_default(),
            problem: error.to_string(),
        })
    }

    /// Reads the identity out of a verified leaf certificate (DER).
    pub fn peer_certificate(&self, der: &[u8]) -> Option<PeerCertificate> {
        let (_, certificate) = X509Certificate::from_der(der).ok()?;
        let subject = self.subject_of(&certificate);

        let distinguished = certificate.subject();
        let mut groups: Vec<String> = match self.groups_from {
            Some(GroupSource::O) => attribute_strings(distinguished.iter_organization()),
            Some(GroupSource::Ou) => attribute_strings(distinguished.iter_organizational_unit()),
            None => Vec::new(),
        };
        if let Some(mapped) = subject.as_ref().and_then(|name| self.groups.get(name)) {
            groups.extend(mapped.iter().cloned());
        }
        groups.sort();
        groups.dedup();
        Some(PeerCertificate { subject, groups })
    }

    fn subject_of(&self, certificate: &X509Certificate<'_>) -> Option<String> {
        if self.subject == SubjectSource::Cn {
            let names = attribute_strings(certificate.subject().iter_common_name());
            return names.into_iter().next();
        }
        let alternative = certificate.subject_alternative_name().ok()??;
        alternative
            .value
            .general_names
            .iter()
            .find_map(|name| match (self.subject, name) {
                (SubjectSource::SanDns, GeneralName::DNSName(text))
                | (SubjectSource::SanEmail, GeneralName::RFC822Name(text))
                | (SubjectSource::SanUri, GeneralName::URI(text)) => Some(text.to_string()),
                _ => None,
            })
    }
}

/// The client certificate verifier the listener uses, swapped whole on reload. Connections
/// in flight keep the verifier they were verified with.
pub struct ReloadingClientVerifier {
    current: ArcSwap<VerifierSlot>,
    mandatory: bool,
}

/// Holds the verifier behind the swap (an `ArcSwap` needs a sized type).
struct VerifierSlot(Arc<dyn ClientCertVerifier>);

impl ReloadingClientVerifier {
    /// Starts with `verifier`; `mandatory` is whether clients must present a certificate.
    pub fn new(verifier: Arc<dyn ClientCertVerifier>, mandatory: bool) -> Self {
        ReloadingClientVerifier {
            current: ArcSwap::from_pointee(VerifierSlot(verifier)),
            mandatory,
        }
    }

    /// Uses `verifier` for handshakes from now on.
    pub fn swap(&self, verifier: Arc<dyn ClientCertVerifier>) {
        self.current.store(Arc::new(VerifierSlot(verifier)));
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        self.current.load().0.clone()
    }
}

impl std::fmt::Debug for ReloadingClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingClientVerifier")
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for ReloadingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// No hints: the CA list changes on reload and a borrowed list cannot follow it. Clients
    /// (docker, curl, rustls) then offer their one configured certificate, which is what we
    /// want; only clients choosing among several certificates lose the hint.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// Pingora's post-handshake hook: stores the [`PeerCertificate`] of a verified client in the
/// connection's TLS digest.
pub struct PeerCertificateCallback {
    config: Arc<ClientAuthConfig>,
}

impl PeerCertificateCallback {
    pub fn new(config: Arc<ClientAuthConfig>) -> Self {
        PeerCertificateCallback { config }
    }
}

#[async_trait]
impl TlsAccept for PeerCertificateCallback {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        // rustls only completes the handshake for certificates the verifier accepted.
        let der = tls.peer_certificate_der()?;
        let Some(peer) = self.config.peer_certificate(der) else {
            tracing::info!("client certificate could not be parsed; treated as absent");
            return None;
        };
        if peer.subject.is_none() {
            tracing::info!(
                subject = ?self.config.subject,
                "client certificate has no name of the configured kind; treated as absent"
            );
            return None;
        }
        Some(Arc::new(peer))
    }
}

/// Reads every certificate of a PEM bundle.
///
/// # Errors
/// [`TlsError`] when the file is unreadable or holds no certificate.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let pem = fs::read(path).map_err(read_error)?;
    let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

/// Reads the CRLs of a PEM file, or the one CRL of a DER file.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = fs::read(path).map_err(read_error)?;
    if !bytes.starts_with(b"-----") {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls: Vec<_> = rustls_pemfile::crls(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    if crls.is_empty() {
        return Err(TlsError::BadCa {
            path: path.to_path_buf(),
            problem: "no PEM X509 CRL in the file".to_string(),
        });
    }
    Ok(crls)
}

fn attribute_strings<'a>(
    values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Vec<String> {
    values
        .filter_map(|value| value.as_str().ok())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn certificate_der() -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["build.example.org".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "ci");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "builders");
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("ci@example.org".try_into().unwrap()));
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_and_groups_come_from_the_configured_fields() {
        let der = certificate_der();
        let rows = [
            (SubjectSource::Cn, "ci"),
            (SubjectSource::SanDns, "build.example.org"),
            (SubjectSource::SanEmail, "ci@example.org"),
        ];
        for (subject, expected) in rows {
            let config = ClientAuthConfig {
                subject,
                groups_from: Some(GroupSource::Ou),
                ..ClientAuthConfig::default()
            };
            let peer = config.peer_certificate(&der).unwrap();
            assert_eq!(peer.subject.as_deref(), Some(expected));
            assert_eq!(peer.groups, ["builders"]);
        }

        let config = ClientAuthConfig {
            subject: SubjectSource::SanUri,
            groups: BTreeMap::from([("ci".into(), vec!["robots".into()])]),
            ..ClientAuthConfig::default()
        };
        let peer = config.peer_certificate(&der).unwrap();
        assert_eq!(peer.subject, None);
        assert!(peer.groups.is_empty());
    }

    #[test]
    fn modes_parse_from_yaml() {
        let config: ClientAuthConfig =
            serde_yaml_ng::from_str("{mode: off, ca: [a], policy: certificate_and_password}")
                .unwrap();
        assert_eq!(config.mode, ClientCertMode::Off);
        assert_eq!(config.policy, CertificatePolicy::CertificateAndPassword);
        assert!(serde_yaml_ng::from_str::<ClientAuthConfig>("{mode: sometimes}").is_err());
        assert!(serde_yaml_ng::from_str::<ClientAuthConfig>("{mod: off}").is_err());
    }
}
