//! Sensors' own push formats: each vendor's body becomes a vendor-neutral [`Payload`]
//! (`domain::sensors`), which [`push`] maps through the sensor's configuration and stores, all or
//! nothing, as the device's minute bins. HTTP (`api::vendors`) and MQTT (`ingest::mqtt`) call it.

pub mod axis;
pub mod hikvision;
pub mod irisys;
pub mod json;
pub mod milesight;
pub mod xovis;

use jiff::Timestamp;

use crate::domain::catalog::{Catalog, StoreScope};
use crate::domain::keys::DeviceKey;
use crate::domain::scope::Visible;
use crate::domain::sensors::{Payload, Sensor, Vendor, normalize_serial, observe};
use crate::publish;
use crate::storage::{SensorPush, Storage, StorageError};

use super::service::active_device;

/// Parses a vendor's body (`content_type` tells Hikvision's XML, JSON and multipart apart). Errors name
/// the JSON path or XML element.
pub fn parse(vendor: Vendor, body: &[u8], content_type: Option<&str>) -> Result<Payload, String> {
    match vendor {
        Vendor::Xovis => xovis::parse(&json::parse(body)?),
        Vendor::Axis => axis::parse(&json::parse(body)?),
        Vendor::Irisys => irisys::parse(&json::parse(body)?),
        Vendor::Milesight => milesight::parse(&json::parse(body)?),
        Vendor::Hikvision => hikvision::parse(body, content_type),
    }
}

/// Who pushes.
#[derive(Clone, Copy, Debug)]
pub enum Pusher<'a> {
    /// A device token: only its own sensor.
    Device(DeviceKey),
    /// A user allowed to ingest: the sensors of its stores.
    Scope(&'a StoreScope),
    /// The MQTT broker, whose ACL is the boundary: any registered sensor.
    Broker,
}

/// Why a push was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Nobody registered this serial (the push was recorded for `footfall device unknown`).
    #[error("no {vendor} sensor with serial {serial:?} is registered (footfall device unknown lists it)")]
    UnknownSerial {
        /// The vendor.
        vendor: Vendor,
        /// The serial, normalized.
        serial: String,
    },
    /// The serial is another device's than the token's.
    #[error("this token's device is not the sensor with serial {0:?}")]
    NotYours(String),
    /// The payload is valid but cannot be stored (a time outside any zone, a count too large).
    #[error("{0}")]
    Invalid(String),
    /// Storage failed; nothing was stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a stored push wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Intervals and readings it carried for the device's in and out.
    pub observations: usize,
    /// Minute bins (re)written.
    pub bins: u64,
}

/// Finds the payload's sensor (the token's own when the payload names none), checks the pusher may push
/// for it, maps and stores the payload in one transaction, then applies the publication policy.
pub async fn push(
    storage: &dyn Storage,
    catalog: &Catalog,
    pusher: Pusher<'_>,
    vendor: Vendor,
    payload: Payload,
) -> Result<Pushed, PushError> {
    let sensor = find_sensor(storage, catalog, pusher, vendor, &payload).await?;
    let device = active_device(catalog, sensor.device_id.as_str())
        .ok_or_else(|| PushError::UnknownSerial { vendor, serial: sensor.config.serial.clone() })?;
    match pusher {
        Pusher::Device(own) if own != device.key => return Err(PushError::NotYours(sensor.config.serial)),
        Pusher::Scope(scope) if !Visible::new(catalog, scope).includes(device.store) => {
            return Err(PushError::UnknownSerial { vendor, serial: sensor.config.serial });
        }
        _ => {}
    }
    let zone = catalog.store(device.store).map(|store| store.timezone.clone()).unwrap_or(jiff::tz::TimeZone::UTC);
    let observations = observe(&sensor.config, &payload, &zone).map_err(PushError::Invalid)?;
    let count = observations.intervals.len() + observations.readings.len();
    let bins = storage
        .push_sensor(SensorPush {
            device_id: sensor.device_id.clone(),
            device: device.key,
            store: device.store,
            observations,
            package: payload.package,
            received_at: Timestamp::now(),
        })
        .await?;
    publish::after_write(storage, Timestamp::now()).await?;
    Ok(Pushed { observations: count, bins })
}

async fn find_sensor(
    storage: &dyn Storage,
    catalog: &Catalog,
    pusher: Pusher<'_>,
    vendor: Vendor,
    payload: &Payload,
) -> Result<Sensor, PushError> {
    if payload.serial.trim().is_empty() {
        // Xovis without sensor_info: the token says which sensor it is.
        let Pusher::Device(own) = pusher else {
            return Err(PushError::Invalid(
                "the payload names no serial (Xovis: turn on full sensor info), so only a device token can push it"
                    .into(),
            ));
        };
        let device_id = catalog.device(own).map(|d| d.device_id.clone());
        let sensors = storage.sensors().await?;
        return sensors
            .into_iter()
            .find(|s| Some(&s.device_id) == device_id.as_ref() && s.config.vendor == vendor)
            .ok_or_else(|| PushError::Invalid(format!("this token's device is not a registered {vendor} sensor")));
    }
    let serial = normalize_serial(&payload.serial);
    match storage.sensor_by_serial(vendor, &serial).await? {
        Some(sensor) => Ok(sensor),
        None => {
            storage.record_unknown_sensor(vendor, &serial, Timestamp::now()).await?;
            Err(PushError::UnknownSerial { vendor, serial })
        }
    }
}
