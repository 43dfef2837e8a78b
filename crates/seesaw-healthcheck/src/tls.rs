//! TLS client settings for TCP_TLS and HTTPS checks.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Path of the system trust store that Debian's ca-certificates writes.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The two client configurations every TLS check picks from.
#[derive(Clone, Debug)]
pub struct TlsClients {
    /// Verifies the server's certificate against the trusted roots.
    pub verifying: Arc<ClientConfig>,
    /// Accepts any certificate, for checks with `tls_verify` false.
    pub insecure: Arc<ClientConfig>,
}

impl TlsClients {
    /// Builds both configurations, trusting the certificates in the PEM
    /// file `ca_file`.
    ///
    /// A missing or empty file leaves the verifying configuration with no
    /// roots, so verifying checks fail while the rest keep working.
    pub fn from_ca_file(ca_file: &Path) -> TlsClients {
        let mut roots = RootCertStore::empty();
        match fs::read(ca_file) {
            Ok(pem) => {
                let certificates = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
                let (added, ignored) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    tracing::warn!(
                        "no usable CA certificate in {} ({ignored} ignored); TLS checks with verification will fail",
                        ca_file.display()
                    );
                }
            }
            Err(error) => tracing::warn!(
                "failed to read CA file {}: {error}; TLS checks with verification will fail",
                ca_file.display()
            ),
        }
        TlsClients::with_roots(roots)
    }

    /// Builds both configurations trusting `roots`.
    pub fn with_roots(roots: RootCertStore) -> TlsClients {
        let provider = provider();

        let verifying = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();

        let accept_any = AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let insecure = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(accept_any))
            .with_no_client_auth();

        TlsClients {
            verifying: Arc::new(verifying),
            insecure: Arc::new(insecure),
        }
    }

    /// Returns the configuration for a check's `tls_verify` setting.
    pub fn config(&self, verify: bool) -> Arc<ClientConfig> {
        if verify {
            self.verifying.clone()
        } else {
            self.insecure.clone()
        }
    }
}

impl Default for TlsClients {
    /// Trusts the system store, as the original's checks did.
    fn default() -> TlsClients {
        TlsClients::from_ca_file(Path::new(SYSTEM_CA_FILE))
    }
}

/// A verifier for `tls_verify: false`: it accepts every certificate chain and
/// name, but still checks that the handshake signatures are valid for the
/// presented key, so the connection is at least a working TLS session.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Returns the ring crypto provider, which every TLS configuration here uses
/// (the tests' servers too).
///
/// rustls 0.23.48 deprecates it only because ring lacks post-quantum key
/// exchange. The alternative, aws-lc-rs, needs a C and assembler build that
/// this project avoids.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
