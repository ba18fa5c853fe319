//! Certificate authorities made by the tests (rcgen on *ring*): a CA and
//! the server certificates it signs, valid, expired or for another host.

use vault_api::transport::Proxies;
use vault_api::HttpKeyService;
use vault_server::{Server, ServerConfig, TlsConfig};

use crate::capture::LogBuffer;
use crate::{client_for, start_server_with};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority of the test's own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate and its key, PEM.
pub struct ServerCert {
    /// The certificate chain: the leaf (the CA is the client's to trust).
    pub cert_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

/// When a server certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 2020 to 2100.
    Current,
    /// Throughout 2020 only.
    Expired,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM: what a client trusts.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `hosts` (names or IP addresses).
    pub fn issue(&self, hosts: &[&str], validity: Validity) -> ServerCert {
        let names = hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, hosts[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (from, to) = match validity {
            Validity::Current => ((2020, 1, 1), (2100, 1, 1)),
            Validity::Expired => ((2020, 1, 1), (2021, 1, 1)),
        };
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a signed leaf");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed CA certificate for `hosts` used as a server's own
/// certificate, as `openssl req -x509` makes by default, and its PEM for
/// the client to trust.
pub fn ca_as_server_cert(hosts: &[&str]) -> (ServerCert, String) {
    let names = hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
    let mut params = CertificateParams::new(names).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, hosts[0]);
    let key = KeyPair::generate().expect("a key");
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    let pem = cert.pem();
    let server = ServerCert {
        cert_pem: pem.clone(),
        key_pem: key.serialize_pem(),
    };
    (server, pem)
}

/// A test server over TLS presenting `cert`, logging to the returned
/// buffer.
pub async fn tls_server(cert: &ServerCert) -> (Server, LogBuffer) {
    let tls = TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .expect("a valid certificate and key");
    let log = LogBuffer::new();
    let server = start_server_with(ServerConfig::new().tls(tls).access_log(log.clone())).await;
    (server, log)
}

/// A client of `server` trusting `ca_pem`, never through a proxy.
pub fn trusting(server: &Server, ca_pem: &str) -> HttpKeyService {
    client_for(server)
        .root_certificates_pem(ca_pem.as_bytes().to_vec())
        .proxies(Proxies::none())
        .build()
        .expect("a client")
}
