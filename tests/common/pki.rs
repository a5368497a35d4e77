//! Client certificate material made at test time with rcgen: a client CA, leaf certificates
//! (good, expired, from another CA) and a CRL that revokes chosen serial numbers.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A CA that can sign client certificates and CRLs.
pub struct ClientCa {
    pub certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A client certificate and its key, both PEM.
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

impl ClientCa {
    /// A fresh self-signed client CA called `name`.
    pub fn new(name: &str) -> ClientCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        ClientCa { certificate, key }
    }

    pub fn cert_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA's private key, PEM (to stand in as Berth's development CA).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A server certificate for `ip` and localhost.
    pub fn issue_server(&self, ip: &str) -> ClientCert {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, ip);
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().unwrap()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, 0)
    }

    /// A client certificate with common name `cn`, OU values `units`, an email SAN
    /// `cn@example.org`, valid from now on.
    pub fn issue(&self, cn: &str, units: &[&str], serial: u64) -> ClientCert {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            cn,
            units,
            serial,
            now - Duration::hours(1),
            now + Duration::days(1),
        )
    }

    /// A client certificate that expired yesterday.
    pub fn issue_expired(&self, cn: &str, serial: u64) -> ClientCert {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            cn,
            &[],
            serial,
            now - Duration::days(10),
            now - Duration::days(1),
        )
    }

    fn issue_valid(
        &self,
        cn: &str,
        units: &[&str],
        serial: u64,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> ClientCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        for unit in units {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, *unit);
        }
        let email = format!("{cn}@example.org");
        params
            .subject_alt_names
            .push(rcgen::SanType::Rfc822Name(email.try_into().unwrap()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params, serial)
    }

    /// Signs `params` with a fresh key.
    fn sign(&self, params: CertificateParams, serial: u64) -> ClientCert {
        let key = KeyPair::generate().unwrap();
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        ClientCert {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }

    /// A CRL from this CA revoking `serials`.
    pub fn crl_pem(&self, serials: &[u64]) -> String {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = serials
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(*serial),
                revocation_time: now - Duration::minutes(5),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.certificate, &self.key)
            .unwrap()
            .pem()
            .unwrap()
    }
}
