//! The connection layer: accepts TCP (optionally TLS) connections under limits, and serves the router
//! on each with hyper, until shutdown, then drains in-flight requests.
//!
//! Owning the accept loop (rather than `axum::serve`) is what makes the limits possible: a bounded
//! number of concurrent connections (the next one gets a JSON 503 and is closed), a deadline for
//! receiving request headers and for a TLS handshake (slow clients cannot hold connections), a cap on the
//! header size, and the client address for per-address throttling (from `X-Forwarded-For` when the
//! connection is from a trusted proxy).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::forwarded::{self, TrustedProxies};

/// The address a request came from (as a trusted proxy reports it, port 0), put in its extensions.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The scheme the client used, as a trusted proxy reports it, put in the request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct ForwardedScheme(pub &'static str);

/// The limits of the accept loop; the default is `serve`'s.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Concurrent connections served; the next one gets a 503.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers (and to finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) read into memory.
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        let settings = crate::config::Settings::default();
        ConnectionLimits {
            max_connections: settings.max_connections,
            header_read_timeout: settings.header_timeout,
            max_header_bytes: crate::config::MAX_HEADER_BYTES,
            drain_timeout: crate::config::DRAIN_TIMEOUT,
        }
    }
}

/// Loads a PEM certificate chain and private key for `serve --tls-cert/--tls-key`.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading a private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The answer to a connection over the limit, written before closing it.
fn too_many_connections() -> Vec<u8> {
    let body = serde_json::json!({
        "detail": "Too many concurrent connections; retry shortly.",
        "code": "too_many_connections",
        "error_id": crate::telemetry::new_error_id(),
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the limit with the JSON 503 and closes it. Over TLS the answer follows the
/// handshake (before it, a TLS client reads it as a broken record); a client that chose HTTP/2 cannot read
/// an HTTP/1.1 answer, so it gets a clean close instead.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, handshake_timeout: Duration) {
    match tls {
        None => answer_and_close(stream).await,
        Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(mut stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                let _ = stream.shutdown().await;
            }
            Ok(Ok(stream)) => answer_and_close(stream).await,
            _ => {}
        },
    }
}

/// Writes the 503, closes the sending side, then reads what the client sent until it closes too (for a
/// moment at most): closing with its request unread would reset the connection, and a reset can
/// discard the answer before the client reads it.
async fn answer_and_close(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    if stream.write_all(&too_many_connections()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Serves `router` on the connections of `listener` under `limits` until `shutdown` resolves, then
/// drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    trusted_proxies: TrustedProxies,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder.http2().timer(TokioTimer::new()).max_header_list_size(limits.max_header_bytes as u32);
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let trusted_proxies = Arc::new(trusted_proxies);
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(client = %address, limit = limits.max_connections, "connection refused: too many connections");
            tokio::spawn(refuse(stream, tls.clone(), limits.header_read_timeout));
            continue;
        };
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let trusted_proxies = trusted_proxies.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, address, router, &builder, watcher, trusted_proxies).await,
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        serve_connection(stream, address, router, &builder, watcher, trusted_proxies).await
                    }
                    Ok(Err(error)) => tracing::debug!(client = %address, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(client = %address, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: some connections did not finish in time");
    }
    Ok(())
}

async fn serve_connection<I>(
    io: I,
    address: SocketAddr,
    router: Router,
    builder: &Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    trusted_proxies: Arc<TrustedProxies>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let mut client = address;
        if let Some(origin) = forwarded::resolve(&trusted_proxies, address.ip(), request.headers()) {
            client = SocketAddr::new(origin.client, 0);
            forwarded::apply_host(&origin, request.headers_mut());
            if let Some(scheme) = origin.scheme {
                request.extensions_mut().insert(ForwardedScheme(scheme));
            }
        }
        request.extensions_mut().insert(ClientAddr(client));
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(client = %address, %error, "connection closed with an error");
    }
}
