//! The publication policy is stored in the database: every handle on it (servers, the CLI) reads the
//! same one.

use std::time::Duration;

use footfall::domain::publication::PublicationPolicy;
use footfall::storage::{self, StorageError};

use crate::backend_tests;
use crate::helpers::{Backend, fresh_database};

backend_tests!(the_policy_defaults_to_15_minutes_and_is_shared_by_every_handle, a_sub_second_interval_is_refused);

async fn the_policy_defaults_to_15_minutes_and_is_shared_by_every_handle(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let writer = storage::open(&url).await.unwrap();
    let other = storage::open(&url).await.unwrap();
    assert_eq!(writer.publication_policy().await.unwrap(), PublicationPolicy::default());
    assert_eq!(other.publication_policy().await.unwrap().interval(), Duration::from_secs(900));

    writer.set_publication_policy(PublicationPolicy::OnIngest).await.unwrap();
    assert_eq!(other.publication_policy().await.unwrap(), PublicationPolicy::OnIngest);

    let hourly = PublicationPolicy::Scheduled { interval: Duration::from_secs(3600) };
    other.set_publication_policy(hourly).await.unwrap();
    assert_eq!(writer.publication_policy().await.unwrap(), hourly);
    drop((writer, other));
    // It outlives the processes that set it.
    assert_eq!(storage::open(&url).await.unwrap().publication_policy().await.unwrap(), hourly);
}

async fn a_sub_second_interval_is_refused(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let storage = storage::open(&url).await.unwrap();
    let fractional = PublicationPolicy::Scheduled { interval: Duration::from_millis(1500) };
    let error = storage.set_publication_policy(fractional).await.unwrap_err();
    assert!(matches!(error, StorageError::Invalid(_)), "{error:?}");
    assert_eq!(storage.publication_policy().await.unwrap(), PublicationPolicy::default(), "unchanged");
}
