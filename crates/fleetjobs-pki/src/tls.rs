//! `rustls` configuration for the MQTT listener (mutual TLS).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::ca::{check_key_matches, provider};
use crate::{CertificateAuthority, IssuedCert, PkiError};

/// Server configuration for MQTT over mutual TLS.
///
/// Presents `server` (see [`CertificateAuthority::issue_server_cert`]) and
/// requires a client certificate that chains to `ca`, the only trusted root.
/// TLS 1.2 and 1.3, `ring` provider, no ALPN.
///
/// Whether the client certificate is ACTIVE is not checked here: the caller
/// takes the peer certificate after the handshake and looks up its
/// [`certificate_id`](crate::certificate_id).
pub fn mqtt_server_tls_config(ca: &CertificateAuthority, server: &IssuedCert) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = Arc::new(provider());

    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der().to_vec())).map_err(|e| PkiError::InvalidCa(e.to_string()))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;

    let cert = CertificateDer::from(server.cert_der.clone());
    let key = PrivateKeyDer::from_pem_slice(server.private_key_pem.as_bytes())
        .map_err(|e| PkiError::InvalidPem(format!("server private key: {e}")))?;
    check_key_matches(&cert, key.clone_key())?;

    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?;
    Ok(Arc::new(config))
}
