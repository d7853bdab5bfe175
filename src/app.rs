//! Builds the server from its configuration and a bound listener, and runs it until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::auth::Authenticator;
use crate::api::{AppState, router};
use crate::publish;
use crate::storage::Storage;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How often ingested data is published; zero publishes it as soon as it is asked for.
    pub publish_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { publish_interval: Duration::from_secs(15 * 60) }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    storage: Arc<dyn Storage>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr()?;
    let state = Arc::new(AppState {
        storage: storage.clone(),
        authenticator: Authenticator::default(),
        publish_immediately: config.publish_interval.is_zero(),
        scheme: "http",
        default_host: local_addr.to_string(),
    });
    let (stop_publisher, publisher_stopped) = tokio::sync::watch::channel(false);
    let publisher = (!config.publish_interval.is_zero())
        .then(|| tokio::spawn(publish::run_schedule(storage, config.publish_interval, publisher_stopped)));
    tracing::info!(%local_addr, publish_interval_s = config.publish_interval.as_secs(), "serving");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    let _ = stop_publisher.send(true);
    if let Some(publisher) = publisher {
        let _ = publisher.await;
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
