//! The TLS settings of the control server: its certificate and key, and
//! the CA that client certificates must chain to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};

/// The files the control server's TLS needs.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// The CA of client certificates; `None` disables them.
    pub client_ca: Option<PathBuf>,
}

/// The server's TLS configuration, and whether it requests client
/// certificates.
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub client_certificates: bool,
}

/// Builds the server's TLS configuration. A certificate or key that cannot
/// be loaded is an error. A CA that cannot be loaded is logged and leaves
/// client certificates off, so that bearer tokens still work.
pub fn server_tls(files: &TlsFiles) -> Result<ServerTls, String> {
    let provider = ring_provider();
    let chain = load_certificates(&files.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| {
        format!(
            "failed to load the private key {}: {error}",
            files.key.display()
        )
    })?;

    let verifier = match &files.client_ca {
        Some(path) => match client_verifier(path, Arc::clone(&provider)) {
            Ok(verifier) => Some(verifier),
            Err(error) => {
                tracing::warn!(
                    "client certificates are disabled: {error}; callers need a bearer token"
                );
                None
            }
        },
        None => None,
    };
    let client_certificates = verifier.is_some();

    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("failed to set the TLS versions: {error}"))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| {
        format!(
            "the certificate {} does not match the key {}: {error}",
            files.certificate.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        client_certificates,
    })
}

/// Returns rustls's ring provider. rustls 0.23 deprecates it because ring
/// has no post-quantum key exchange, but its alternative, aws-lc-rs,
/// needs a C and assembler build that this project avoids.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            format!(
                "failed to load certificates from {}: {error}",
                path.display()
            )
        })?;
    if certificates.is_empty() {
        return Err(format!("no PEM certificate found in {}", path.display()));
    }
    Ok(certificates)
}

/// Returns a verifier that accepts a client certificate chaining to a CA
/// in `path`, and also a client with no certificate, which must then send
/// a bearer token.
fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(path)? {
        roots
            .add(certificate)
            .map_err(|error| format!("invalid CA certificate in {}: {error}", path.display()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|error| format!("invalid CA in {}: {error}", path.display()))
}
