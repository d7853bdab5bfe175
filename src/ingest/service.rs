//! The one way bins enter the database, whatever their source (files, HTTP, MQTT): resolve each
//! record's device, refuse removed devices and devices the writer may not write, store all or nothing,
//! then apply the publication policy.

use jiff::Timestamp;

use super::Record;
use crate::domain::bins::Bin;
use crate::domain::catalog::{Catalog, Device, StoreScope};
use crate::domain::keys::DeviceKey;
use crate::domain::scope::Visible;
use crate::publish;
use crate::storage::{Storage, StorageError};

/// Which devices' bins a writer may store.
#[derive(Clone, Copy, Debug)]
pub enum Permission<'a> {
    /// Any device: the operator, through the CLI.
    AnyDevice,
    /// One device only: a device token's, or an MQTT topic's.
    Device(DeviceKey),
    /// The devices of the stores a user sees. Other devices are reported unknown, so that a user learns
    /// nothing of stores it cannot see.
    Scope(&'a StoreScope),
}

/// Why a batch was not stored. Record errors carry the record's position as parsed (its line in a
/// file, its index in a batch), so each source names it its own way.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A record names a device that does not exist, was removed, or is outside the writer's scope.
    #[error("unknown device {device_id:?}")]
    UnknownDevice {
        /// [`Record::line`] of the record.
        position: usize,
        /// The device id as sent.
        device_id: String,
    },
    /// A record names a known device other than the one the writer may write.
    #[error("device {device_id:?} is not the writer's device")]
    OtherDevice {
        /// [`Record::line`] of the record.
        position: usize,
        /// The device id as sent.
        device_id: String,
    },
    /// Storing or publishing failed; nothing of the batch was stored (or it was stored and stays pending).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The device with this id if it may still send bins: a removed device may not.
pub fn active_device<'c>(catalog: &'c Catalog, device_id: &str) -> Option<&'c Device> {
    catalog.device_by_id(device_id).filter(|device| device.active)
}

/// Resolves records to bins of devices the writer may write; the first one that is not fails the batch.
pub fn resolve(catalog: &Catalog, permission: Permission<'_>, records: &[Record]) -> Result<Vec<Bin>, IngestError> {
    records
        .iter()
        .map(|record| {
            let unknown = || IngestError::UnknownDevice { position: record.line, device_id: record.device_id.clone() };
            let device = active_device(catalog, &record.device_id).ok_or_else(unknown)?;
            match permission {
                Permission::Device(own) if own != device.key => {
                    Err(IngestError::OtherDevice { position: record.line, device_id: record.device_id.clone() })
                }
                Permission::Scope(scope) if !Visible::new(catalog, scope).includes(device.store) => Err(unknown()),
                _ => Ok(Bin { device: device.key, minute: record.minute, counts: record.counts }),
            }
        })
        .collect()
}

/// Resolves `records` against `catalog`, stores them in one transaction, and publishes them at once when
/// the database's publication policy says so. Returns the number of distinct (device, minute) bins
/// written; an empty batch touches nothing.
pub async fn ingest(
    storage: &dyn Storage,
    catalog: &Catalog,
    permission: Permission<'_>,
    records: Vec<Record>,
) -> Result<u64, IngestError> {
    let bins = resolve(catalog, permission, &records)?;
    drop(records); // a large file's records are not needed while its bins are written
    if bins.is_empty() {
        return Ok(0);
    }
    let stored = storage.ingest(bins, Timestamp::now()).await?;
    publish::after_write(storage, catalog, Timestamp::now()).await?;
    Ok(stored)
}
