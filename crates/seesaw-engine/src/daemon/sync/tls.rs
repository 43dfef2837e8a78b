//! Mutual TLS for peer sync: the node's certificate and key, the CA the
//! peer's certificate must chain to, and the check that a certificate
//! names a node's address.
//!
//! Each node uses one certificate as server and as client, so it needs
//! both the serverAuth and clientAuth extended key usages, or none. The
//! client checks that the server's certificate names the peer's address,
//! with webpki's IP address subjectAltName check. The server checks the
//! client's certificate the same way with [`names_address`].

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use seesaw_config::node_config::SyncTls;
use x509_parser::extensions::GeneralName;

/// The TLS settings of both ends of a sync connection.
#[derive(Clone)]
pub struct SyncTlsConfig {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

/// Loads the files of `[sync]` and builds both ends' settings. Fails when
/// a file cannot be read, or when the certificate does not name
/// `local_address`, because the peer would then reject every connection.
pub fn load(files: &SyncTls, local_address: IpAddr) -> Result<SyncTlsConfig, String> {
    let provider = ring_provider();
    let chain = load_certificates(&files.cert_file)?;
    names_address(&chain[0], local_address)
        .map_err(|error| format!("{}: {error}", files.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| {
        format!(
            "failed to load the private key {}: {error}",
            files.key_file.display()
        )
    })?;
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(&files.ca_file)? {
        roots.add(certificate).map_err(|error| {
            format!(
                "invalid CA certificate in {}: {error}",
                files.ca_file.display()
            )
        })?;
    }
    let roots = Arc::new(roots);
    let mismatch = |error: rustls::Error| {
        format!(
            "the certificate {} does not match the key {}: {error}",
            files.cert_file.display(),
            files.key_file.display()
        )
    };

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|error| format!("invalid CA in {}: {error}", files.ca_file.display()))?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("failed to set the TLS versions: {error}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(mismatch)?;
    server.alpn_protocols = vec![b"h2".to_vec()];

    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("failed to set the TLS versions: {error}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(mismatch)?;
    client.alpn_protocols = vec![b"h2".to_vec()];

    Ok(SyncTlsConfig {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

/// Returns rustls's ring provider. rustls 0.23 deprecates it because ring
/// has no post-quantum key exchange, but its alternative, aws-lc-rs,
/// needs a C and assembler build that this project avoids.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the PEM certificates of `path`, at least one.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<_, _>>())
        .map_err(|error| {
            format!(
                "failed to read certificates from {}: {error}",
                path.display()
            )
        })?;
    if certificates.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certificates)
}

/// Checks that a certificate lists `address` among its IP address
/// subjectAltNames.
pub fn names_address(certificate: &CertificateDer<'_>, address: IpAddr) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|error| format!("invalid certificate: {error}"))?;
    let names = parsed
        .subject_alternative_name()
        .map_err(|error| format!("invalid subjectAltName: {error}"))?;
    let listed: Vec<IpAddr> = names
        .map(|extension| {
            extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::IPAddress(bytes) => ip_from_bytes(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if listed.contains(&address) {
        return Ok(());
    }
    let listed = if listed.is_empty() {
        "none".to_string()
    } else {
        listed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the certificate of {} does not name {address} as an IP address subjectAltName \
         (it names {listed}): issue it with the node's node_ipv4 as an IP address SAN",
        parsed.subject()
    ))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn certificate(addresses: &[IpAddr]) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["node.example.com".to_string()]).unwrap();
        params
            .subject_alt_names
            .extend(addresses.iter().map(|address| SanType::IpAddress(*address)));
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn certificate_naming_the_address_passes() {
        let address: IpAddr = "192.0.2.2".parse().unwrap();
        let other: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(
            names_address(&certificate(&[other, address]), address),
            Ok(())
        );
        assert_eq!(names_address(&certificate(&[other]), other), Ok(()));
    }

    #[test]
    fn certificate_naming_another_address_fails() {
        let error = names_address(
            &certificate(&["192.0.2.3".parse().unwrap()]),
            "192.0.2.2".parse().unwrap(),
        )
        .unwrap_err();
        assert!(error.contains("does not name 192.0.2.2"), "{error}");
        assert!(error.contains("it names 192.0.2.3"), "{error}");
    }

    #[test]
    fn certificate_without_addresses_fails() {
        let error = names_address(&certificate(&[]), "192.0.2.2".parse().unwrap()).unwrap_err();
        assert!(error.contains("it names none"), "{error}");
    }
}
