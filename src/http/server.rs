//! The accept loop: plain TCP or built-in TLS 1.3 (rustls), HTTP/1.1 and HTTP/2, a
//! header-read timeout against slow-loris clients, an idle timeout, a cap on open
//! connections, and graceful shutdown. axum's own `serve` exposes none of the timeouts, so hyper-util is driven here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt as _;

use crate::config::TlsFiles;

/// What a connection serves: a request, with the peer address it came from, to a response.
pub trait Serve: Clone + Send + Sync + 'static {
    fn serve(
        &self,
        peer: SocketAddr,
        request: Request,
    ) -> impl Future<Output = Response> + Send + 'static + use<Self>;
}

/// A bare router (the metrics listener): the peer is not asked for.
impl Serve for Router {
    fn serve(
        &self,
        _peer: SocketAddr,
        request: Request,
    ) -> impl Future<Output = Response> + Send + 'static + use<> {
        let router = self.clone();
        async move {
            let Ok(response) = router.oneshot(request).await;
            response
        }
    }
}

/// At most this many connections are served at once; further ones wait in the kernel's
/// accept queue instead of exhausting file descriptors and memory.
const MAX_CONNECTIONS: usize = 10_000;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct ServeOptions {
    pub tls: Option<TlsAcceptor>,
    pub header_read_timeout: Duration,
    /// A connection that starts no request for this long is closed (gracefully: a request in
    /// flight finishes). HTTP/2 answers pings forever otherwise, holding a slot and memory.
    pub idle_timeout: Duration,
}

/// When a connection last started a request.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { epoch: Instant::now(), last: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// Plain TCP and TLS streams, served by one code path.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Loads the certificate and key and builds a TLS 1.3-only acceptor.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|_| describe(&files.cert_file, "is not a PEM certificate chain"))?;
    if certs.is_empty() {
        return Err(describe(&files.cert_file, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|_| describe(&files.key_file, "is not a PEM private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| format!("TLS: {err}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| format!("TLS: the key does not fit the certificate ({err})"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn describe(path: &Path, what: &str) -> String {
    format!("{} {what}", path.display())
}

pub async fn serve(
    listener: TcpListener,
    app: impl Serve,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a permit: taking them all back is waiting for the drain.
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (handshake_timeout, idle_timeout) = (options.header_read_timeout, options.idle_timeout);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, tls) = (app.clone(), builder.clone(), options.tls.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                // The handshake counts against the header-read timeout.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        _ => return,
                    }
                }
            };
            let activity = Arc::new(Activity::new());
            let service = connection_service(app, peer, activity.clone());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                let wait = idle_timeout.saturating_sub(activity.idle_for());
                tokio::select! {
                    _ = connection.as_mut() => break,
                    () = tokio::time::sleep(wait), if !closing => {
                        if activity.idle_for() >= idle_timeout {
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                    _ = stop.changed(), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = permits.acquire_many(u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX));
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

/// The application with the peer address, for every request of the connection. hyper's own
/// service (called by reference), so a request costs one clone of `app` and no boxed future.
fn connection_service<A: Serve>(
    app: A,
    peer: SocketAddr,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static,
> + Clone {
    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        activity.touch();
        let served = app.serve(peer, request.map(axum::body::Body::new));
        async move { Ok(served.await) }
    })
}
