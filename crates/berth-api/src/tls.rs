//! HTTPS for the API (`berth run --tls-cert FILE --tls-key FILE`), with rustls.
//!
//! ```text
//!  TCP accept ──▶ TLS handshake (its own task; a failed one is logged and dropped)
//!             ──▶ HTTP/1.1 with upgrades (exec) ──▶ the router
//! ```

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate and key cannot be used; names the files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// The TLS settings of a PEM certificate chain and its PEM private key.
///
/// # Errors
/// A file that cannot be read or holds no certificate / key, or a key that does not belong
/// to the certificate.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (c, k) = (cert.display(), key.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("--tls-cert {c}: cannot read a certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("--tls-cert {c}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "--tls-cert {c}: no certificate in it (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        TlsError(format!(
            "--tls-key {k}: no usable private key in it (PKCS#8, PKCS#1 or SEC1 PEM): {e}"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            TlsError(format!(
                "--tls-cert {c} and --tls-key {k} cannot be used together: {e} (is the key the \
                 certificate's?)"
            ))
        })?;
    Ok(Arc::new(config))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves (connections in flight
/// then finish on their own).
///
/// # Errors
/// Never at present; the signature matches [`crate::serve`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("API: cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!("API: TLS handshake failed: {e}");
                    return;
                }
            };
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!("API: connection ended: {e}");
            }
        });
    }
}
