//! Change notices: every transaction that changes what a request context holds (the catalog, the
//! publication, an account) sends `NOTIFY footfall_changes` as it commits. A server listens on a
//! connection of its own and counts them; while the count stands still, requests share one read of
//! their context ([`ContextSnapshot`]) instead of a round trip each. A check twice a second of the
//! catalog version and publication generation on the same connection is the fallback: should a
//! notice ever go missing, no server answers from an older publication for more than that second.
//! Without a working listener there is no snapshot: every request reads its context, as before.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

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
    client.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
    Ok(())
}

/// This process's view of the change notices.
pub(super) struct ChangeWatch {
    /// Moves on every notice, every change the periodic check sees, every commit of this process that
    /// announced one, and every (re)connection of the listener.
    epoch: AtomicI64,
    listening: AtomicBool,
    started: AtomicBool,
    pub(super) contexts: Mutex<ContextSnapshot>,
    /// Tells this process's own marker notices (`caught_up`) from other processes'.
    instance: u64,
    markers_sent: AtomicU64,
    markers_seen: AtomicU64,
    marker_arrived: tokio::sync::Notify,
}

impl Default for ChangeWatch {
    fn default() -> Self {
        ChangeWatch {
            epoch: AtomicI64::default(),
            listening: AtomicBool::default(),
            started: AtomicBool::default(),
            contexts: Mutex::default(),
            instance: rand::random(),
            markers_sent: AtomicU64::default(),
            markers_seen: AtomicU64::default(),
            marker_arrived: tokio::sync::Notify::new(),
        }
    }
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

    /// Returns once every change committed before the call has been seen: PostgreSQL delivers notices
    /// in the order of their commits, so when a marker notice sent now comes back, every earlier one
    /// has arrived. Immediately when no listener runs (nothing is then shared).
    pub(super) async fn caught_up(&self, client: &deadpool_postgres::Client) -> Result<()> {
        if !self.listening.load(Ordering::Acquire) {
            return Ok(());
        }
        let marker = self.markers_sent.fetch_add(1, Ordering::AcqRel) + 1;
        let arrived = self.marker_arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("{}:{marker}", self.instance)]).await?;
        let deadline = tokio::time::Instant::now() + CHECK_INTERVAL * 2;
        while self.markers_seen.load(Ordering::Acquire) < marker && self.listening.load(Ordering::Acquire) {
            if tokio::time::timeout_at(deadline, arrived.as_mut()).await.is_err() {
                break;
            }
            arrived.set(self.marker_arrived.notified());
            arrived.as_mut().enable();
        }
        Ok(())
    }

    fn noticed(&self, payload: &str) {
        match payload.split_once(':') {
            Some((instance, marker)) if instance == self.instance.to_string() => {
                if let Ok(marker) = marker.parse::<u64>() {
                    self.markers_seen.fetch_max(marker, Ordering::AcqRel);
                    self.marker_arrived.notify_waiters();
                }
            }
            Some(_) => {}
            None => self.changed(),
        }
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
            if let AsyncMessage::Notification(notice) = message? {
                let Some(watch) = notices.upgrade() else { return Ok(()) };
                watch.noticed(notice.payload());
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
