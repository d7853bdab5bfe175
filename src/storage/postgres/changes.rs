//! Change notices: every transaction that changes what a request context holds (the catalog, the
//! publication, an account) sends `NOTIFY footfall_changes` as it commits. A server listens on a
//! connection of its own and counts them; while the count stands still, requests share one read of
//! their context ([`ContextSnapshot`]) instead of a round trip each. A check twice a second of the
//! catalog version and publication generation on the same connection is the fallback: should a
//! notice ever go missing, no server answers from an older publication for more than that second.
//! Without a working listener there is no snapshot: every request reads its context, as before.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::*;

/// The channel of change notices.
const CHANNEL: &str = "footfall_changes";
/// How often the listener also reads the versions itself: well inside the promised second.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How long a lost listener waits before connecting again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Sends the change notice; PostgreSQL delivers it when (and only if) the transaction commits, and
/// folds repeats within one transaction into one.
pub(super) async fn announce_change(client: &impl deadpool_postgres::GenericClient) -> Result<()> {
    client.execute("SELECT pg_notify('footfall_changes', '')", &[]).await?;
    Ok(())
}

/// This process's view of the change notices.
#[derive(Default)]
pub(super) struct ChangeWatch {
    /// Moves on every notice, every change the periodic check sees, every commit of this process that
    /// announced one, and every (re)connection of the listener.
    epoch: AtomicI64,
    listening: AtomicBool,
    started: AtomicBool,
    pub(super) contexts: Mutex<ContextSnapshot>,
}

impl ChangeWatch {
    /// The version request contexts may be shared under, or `None` while no listener runs (the first
    /// call starts it).
    pub(super) fn version(self: &Arc<Self>, config: &tokio_postgres::Config) -> Option<i64> {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(listen(config.clone(), Arc::downgrade(self)));
            return None;
        }
        // The epoch is read before the context is, so a notice arriving meanwhile outdates what is kept.
        self.listening.load(Ordering::Acquire).then(|| self.epoch.load(Ordering::Acquire))
    }

    /// A change this process committed: its own next request must not wait for the notice to come back.
    pub(super) fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn set_listening(&self, listening: bool) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.listening.store(listening, Ordering::Release);
    }
}

/// Keeps a listener connected for as long as the storage lives.
async fn listen(config: tokio_postgres::Config, watch: Weak<ChangeWatch>) {
    loop {
        let error = listen_once(&config, &watch).await;
        let Some(alive) = watch.upgrade() else { return };
        alive.set_listening(false);
        drop(alive);
        if let Err(error) = error {
            tracing::warn!(%error, "the change listener lost its connection; reading every request's context until it is back");
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// One listening connection, until it fails or the storage is dropped.
async fn listen_once(config: &tokio_postgres::Config, watch: &Weak<ChangeWatch>) -> anyhow::Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let notices = watch.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(_) = message? {
                let Some(watch) = notices.upgrade() else { return Ok(()) };
                watch.changed();
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let versions = client
        .prepare(
            "SELECT (SELECT value FROM meta WHERE key = 'catalog_version'),
                    (SELECT value FROM meta WHERE key = 'publication_generation')",
        )
        .await?;
    let read_versions = async || -> anyhow::Result<(i64, i64)> {
        let row = client.query_one(&versions, &[]).await?;
        Ok((row.get(0), row.get(1)))
    };
    let mut seen = read_versions().await?;
    match watch.upgrade() {
        Some(watch) => watch.set_listening(true),
        None => return Ok(()),
    }
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        let Some(watch) = watch.upgrade() else { break };
        if driver.is_finished() {
            break;
        }
        let now = read_versions().await?;
        if now != seen {
            seen = now;
            watch.changed();
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => Ok(result?),
        Err(_) => Ok(()),
    }
}
