//! Builds the server from its configuration and a bound listener, and runs it until shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::net::TcpListener;

use crate::api::auth::Authenticator;
use crate::api::page_cache::PageCache;
use crate::api::{AppState, router};
use crate::config::{self, MetricsToken, Settings};
use crate::domain::publication::PublicationPolicy;
use crate::forwarded::TrustedProxies;
use crate::ingest::mqtt;
use crate::server::{self, ConnectionLimits};
use crate::storage::Storage;
use crate::telemetry::series;
use crate::{publish, retention};

/// What [`serve`] runs with; [`ServerConfig::default`] is `serve`'s defaults.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How often ingested data is published; zero publishes it as soon as it is ingested.
    pub publish_interval: Duration,
    /// The largest ingest request body accepted.
    pub max_body_bytes: usize,
    /// An MQTT broker to subscribe to for device bins (`mqtt://HOST:PORT`).
    pub mqtt: Option<String>,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The accept loop's limits: connections, header and handshake deadlines, header size.
    pub limits: ConnectionLimits,
    /// The longest a request may take, body included.
    pub request_timeout: Duration,
    /// The longest query string accepted.
    pub max_query_bytes: usize,
    /// Failed sign-ins per username and minute before throttling (four times as many per address).
    pub auth_failures_per_minute: u32,
    /// Proxies whose `X-Forwarded-For/-Proto/-Host` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Days of published minute data kept (pruned at start and daily); `None`: all of it.
    pub retention_minute_days: Option<u32>,
    /// The bearer token that opens `GET /metrics` on the API's listener; without it, only a metrics
    /// listener serves it.
    pub metrics_token: Option<MetricsToken>,
    /// Origins allowed to call the API from a browser (CORS); empty: off.
    pub cors_allowed_origins: Vec<String>,
    /// Bytes of rendered read pages kept; 0: none.
    pub response_cache_bytes: u64,
    /// How often capacity crossings and device health are checked for webhook events.
    pub alert_interval: Duration,
}

/// How often `serve` looks for alerts: a capacity crossing is an event within this of the bins arriving.
pub const ALERT_INTERVAL: Duration = Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::from_settings(&Settings::default())
    }
}

impl ServerConfig {
    /// The server part of `serve`'s settings.
    pub fn from_settings(settings: &Settings) -> Self {
        ServerConfig {
            publish_interval: settings.publish_interval,
            max_body_bytes: settings.max_body_bytes,
            mqtt: settings.mqtt.clone(),
            tls: settings.tls.clone(),
            limits: ConnectionLimits {
                max_connections: settings.max_connections,
                header_read_timeout: settings.header_timeout,
                max_header_bytes: config::MAX_HEADER_BYTES,
                drain_timeout: config::DRAIN_TIMEOUT,
            },
            request_timeout: settings.request_timeout,
            max_query_bytes: config::MAX_QUERY_BYTES,
            auth_failures_per_minute: settings.auth_failures_per_minute,
            trusted_proxies: TrustedProxies::new(settings.trusted_proxies.clone()),
            retention_minute_days: settings.retention_minute_days,
            metrics_token: settings.metrics_token.clone(),
            cors_allowed_origins: settings.cors_allowed_origins.clone(),
            response_cache_bytes: settings.response_cache_bytes,
            alert_interval: ALERT_INTERVAL,
        }
    }

    /// Data visible as soon as it is ingested; the rest default.
    pub fn immediate() -> Self {
        ServerConfig { publish_interval: Duration::ZERO, ..Default::default() }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    storage: Arc<dyn Storage>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_metrics(storage, listener, None, config, shutdown).await
}

/// As [`serve`], and serves `GET /metrics` alone, without authentication, on `metrics_listener`
/// (`serve --metrics-listen`). Metrics are recorded only with a metrics listener or a metrics token.
pub async fn serve_with_metrics(
    storage: Arc<dyn Storage>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if metrics_listener.is_some() || config.metrics_token.is_some() {
        series::install();
    }
    crate::memory::return_free_pages();
    let local_addr = listener.local_addr()?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(server::tls_acceptor(cert, key)?),
        None => None,
    };
    let state = Arc::new(AppState {
        storage: storage.clone(),
        authenticator: Authenticator::new(10_000, Duration::from_secs(300), config.auth_failures_per_minute),
        max_body_bytes: config.max_body_bytes,
        scheme: if tls.is_some() { "https" } else { "http" },
        request_timeout: config.request_timeout,
        max_query_bytes: config.max_query_bytes,
        default_host: local_addr.to_string(),
        metrics_token: config.metrics_token.clone(),
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        page_cache: PageCache::new(config.response_cache_bytes),
    });
    let schedule =
        publish::at_start(storage.as_ref(), PublicationPolicy::from_interval(config.publish_interval)).await?;
    let (stop_publisher, publisher_stopped) = tokio::sync::watch::channel(false);
    let publisher = schedule
        .map(|interval| tokio::spawn(publish::run_schedule(storage.clone(), interval, publisher_stopped.clone())));
    let pruner = config
        .retention_minute_days
        .map(|days| tokio::spawn(retention::run(storage.clone(), days, publisher_stopped.clone())));
    let subscriber =
        config.mqtt.clone().map(|url| tokio::spawn(mqtt::run(storage.clone(), url, publisher_stopped.clone())));
    let deliverer = Some(tokio::spawn(crate::webhooks::run_deliveries(storage.clone(), publisher_stopped.clone())));
    let alerts =
        Some(tokio::spawn(crate::webhooks::run_alerts(storage.clone(), config.alert_interval, publisher_stopped)));
    tracing::info!(%local_addr, tls = state.scheme == "https", publish_interval_s = config.publish_interval.as_secs(), "serving");
    let shutdown = shutdown.shared();
    // Plain HTTP and no trusted proxies: the metrics listener is for a scraper on a private network.
    let metrics_server = metrics_listener.map(|listener| {
        tracing::info!(metrics_addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "serving /metrics");
        let run = server::run(
            listener,
            crate::api::prometheus::metrics_router(state.clone()),
            None,
            config.limits.clone(),
            TrustedProxies::default(),
            shutdown.clone(),
        );
        tokio::spawn(run)
    });
    let served = server::run(
        listener,
        router(state.clone()),
        tls,
        config.limits.clone(),
        config.trusted_proxies.clone(),
        shutdown,
    )
    .await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.await??;
    }
    served?;
    let _ = stop_publisher.send(true);
    for task in [publisher, pruner, subscriber, deliverer, alerts].into_iter().flatten() {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        let mut signal =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        signal.recv().await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
