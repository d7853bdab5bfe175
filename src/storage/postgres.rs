//! PostgreSQL storage (placeholder until the PostgreSQL issue lands).

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use super::*;

pub struct PostgresStorage;

impl PostgresStorage {
    pub async fn connect(_url: &str) -> anyhow::Result<PostgresStorage> {
        anyhow::bail!("PostgreSQL support is not built yet")
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn catalog(&self) -> Result<Arc<Catalog>> {
        unimplemented!()
    }
    async fn add_store(&self, _store: NewStore) -> Result<()> {
        unimplemented!()
    }
    async fn add_device(&self, _device_id: DeviceId, _store: StoreCode, _token_hash: String) -> Result<()> {
        unimplemented!()
    }
    async fn add_user(&self, _user: NewUser) -> Result<()> {
        unimplemented!()
    }
    async fn user_credentials(&self, _username: &str) -> Result<Option<UserCredentials>> {
        unimplemented!()
    }
    async fn device_by_token_hash(&self, _token_hash: &str) -> Result<Option<DeviceKey>> {
        unimplemented!()
    }
    async fn rotate_device_token(&self, _device_id: DeviceId, _token_hash: String) -> Result<()> {
        unimplemented!()
    }
    async fn device_statuses(&self) -> Result<Vec<DeviceStatus>> {
        unimplemented!()
    }
    async fn ingest(&self, _bins: Vec<Bin>, _received_at: Timestamp) -> Result<u64> {
        unimplemented!()
    }
    async fn add_correction(&self, _store: StoreCode, _correction: Correction) -> Result<()> {
        unimplemented!()
    }
    async fn corrections(&self, _store: StoreCode) -> Result<Vec<Correction>> {
        unimplemented!()
    }
    async fn publication_mark(&self) -> Result<PublicationMark> {
        unimplemented!()
    }
    async fn remove_device(&self, _device_id: DeviceId) -> Result<()> {
        unimplemented!()
    }
    async fn set_password(&self, _username: Username, _password_hash: String) -> Result<()> {
        unimplemented!()
    }
    async fn remove_user(&self, _username: Username) -> Result<()> {
        unimplemented!()
    }
    async fn backup(&self, _path: std::path::PathBuf) -> Result<()> {
        unimplemented!()
    }
    async fn check(&self) -> Result<CheckReport> {
        unimplemented!()
    }
    async fn publish(&self, _now: Timestamp, _slot: Option<i64>) -> Result<Option<PublishSummary>> {
        unimplemented!()
    }
    async fn has_pending(&self) -> Result<bool> {
        unimplemented!()
    }
    async fn publication(&self) -> Result<PublicationState> {
        unimplemented!()
    }
    async fn rows(&self, _query: RowsQuery) -> Result<RowsPage> {
        unimplemented!()
    }
}
