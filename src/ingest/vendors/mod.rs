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

use crate::domain::DeviceId;
use crate::domain::catalog::{Catalog, StoreScope};
use crate::domain::keys::DeviceKey;
use crate::domain::scope::Visible;
use crate::domain::sensors::{Payload, SensorConfig, Vendor, normalize_serial, observe};
use crate::publish;
use crate::storage::{SensorPush, Storage, StorageError};

use super::service::active_device;

/// Parses a vendor's body (`content_type` tells Hikvision's XML, JSON and multipart apart). Errors name
/// the JSON path or XML element.
pub fn parse(vendor: Vendor, body: &[u8], content_type: Option<&str>) -> Result<Payload, String> {
    match vendor {
        Vendor::Xovis => xovis::parse(body),
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
    let (device_id, config) = find_sensor(storage, catalog, pusher, vendor, &payload).await?;
    let device = active_device(catalog, device_id.as_str())
        .ok_or_else(|| PushError::UnknownSerial { vendor, serial: config.serial.clone() })?;
    match pusher {
        Pusher::Device(own) if own != device.key => return Err(PushError::NotYours(config.serial.clone())),
        Pusher::Scope(scope) if !Visible::new(catalog, scope).includes(device.store) => {
            return Err(PushError::UnknownSerial { vendor, serial: config.serial.clone() });
        }
        _ => {}
    }
    let zone = catalog.store(device.store).map(|store| store.timezone.clone()).unwrap_or(jiff::tz::TimeZone::UTC);
    let observations = observe(config, &payload, &zone).map_err(PushError::Invalid)?;
    let count = observations.intervals.len() + observations.readings.len();
    let bins = storage
        .push_sensor(SensorPush {
            device_id: device_id.clone(),
            device: device.key,
            store: device.store,
            observations,
            package: payload.package,
            received_at: Timestamp::now(),
        })
        .await?;
    publish::after_write(storage, catalog, Timestamp::now()).await?;
    Ok(Pushed { observations: count, bins })
}

/// The payload's sensor in the catalog: by its serial, or, for a payload without one, the token's.
async fn find_sensor<'c>(
    storage: &dyn Storage,
    catalog: &'c Catalog,
    pusher: Pusher<'_>,
    vendor: Vendor,
    payload: &Payload,
) -> Result<(&'c DeviceId, &'c SensorConfig), PushError> {
    if payload.serial.trim().is_empty() {
        // Xovis without sensor_info: the token says which sensor it is.
        let Pusher::Device(own) = pusher else {
            return Err(PushError::Invalid(
                "the payload names no serial (Xovis: turn on full sensor info), so only a device token can push it"
                    .into(),
            ));
        };
        let device = catalog.device(own).map(|device| &device.device_id);
        return device
            .and_then(|device_id| catalog.sensor_of_device(device_id, vendor).map(|config| (device_id, config)))
            .ok_or_else(|| PushError::Invalid(format!("this token's device is not a registered {vendor} sensor")));
    }
    let serial = normalize_serial(&payload.serial);
    match catalog.sensor(vendor, &serial) {
        Some(sensor) => Ok(sensor),
        None => {
            storage.record_unknown_sensor(vendor, &serial, Timestamp::now()).await?;
            Err(PushError::UnknownSerial { vendor, serial })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sensors::When;

    fn instant(text: &str) -> When {
        When::Instant(text.parse().unwrap())
    }

    #[test]
    fn every_sample_parses_into_its_serial_and_counts() {
        let parse_json = |vendor, text: &str| parse(vendor, text.as_bytes(), Some("application/json")).unwrap();
        let a = parse_json(Vendor::Xovis, include_str!("../../../assets/sensors/xovis-v5-a.json"));
        assert_eq!((a.serial.as_str(), a.package), ("80:1F:12:D3:27:CA", Some((1003, 2))));
        assert_eq!(a.intervals[0].start, instant("2023-05-17T12:09:00Z"));
        assert_eq!(a.intervals[0].key, "3/1684325340000");
        let b = parse_json(Vendor::Xovis, include_str!("../../../assets/sensors/xovis-v5-b.json"));
        assert_eq!((b.serial.as_str(), b.intervals.len()), ("", 8));
        let v4 = parse_json(Vendor::Xovis, include_str!("../../../assets/sensors/xovis-v4.json"));
        assert_eq!(v4.intervals[0].start, instant("2021-09-23T08:20:00Z"));
        assert_eq!(v4.intervals[0].counts, [("fw".to_owned(), 1), ("bw".to_owned(), 0)]);
        let axis = parse_json(Vendor::Axis, include_str!("../../../assets/sensors/axis-device.json"));
        assert_eq!((axis.serial.as_str(), axis.intervals[0].counts[1].1), ("b8a44fa89c85", 2));
        let irisys = parse_json(Vendor::Irisys, include_str!("../../../assets/sensors/irisys.json"));
        assert_eq!((irisys.readings.len(), irisys.readings[1].id.as_deref()), (5, Some("1")));
        let milesight = parse_json(Vendor::Milesight, include_str!("../../../assets/sensors/milesight.json"));
        assert_eq!(milesight.intervals[0].start, instant("2026-07-31T23:11:00Z"));
        let range = include_str!("../../../assets/sensors/hikvision-timerange.xml");
        let hik = parse(Vendor::Hikvision, range.as_bytes(), Some("application/xml")).unwrap();
        assert_eq!(
            (hik.serial.as_str(), hik.intervals[0].start),
            ("44:47:cc:50:00:c1", instant("2020-04-19T17:33:00Z"))
        );
        let live = include_str!("../../../assets/sensors/hikvision-realtime.xml");
        let live = parse(Vendor::Hikvision, live.as_bytes(), None).unwrap();
        assert_eq!(live.readings.iter().map(|r| r.value).collect::<Vec<_>>(), [70, 75]);
    }

    #[test]
    fn errors_name_the_element() {
        let error = parse(
            Vendor::Hikvision,
            b"<EventNotificationAlert><macAddress>x</macAddress></EventNotificationAlert>",
            None,
        )
        .unwrap_err();
        assert_eq!(error, "EventNotificationAlert.eventType: missing");
        let error = parse(Vendor::Irisys, br#"{"FriendlyDeviceSerial":"a","CountLogs":[{"Timestamp":"2018-12-03T14:21:00Z","Counts":[{"Name":"x","Value":-3}]}]}"#, None)
            .unwrap_err();
        assert_eq!(error, "CountLogs[0].Counts[0].Value: must not be negative, got -3");
        assert!(parse(Vendor::Xovis, b"[]", None).unwrap_err().contains("logics_data"));
        // Xovis firmware 5 is read typed: the path is recovered for the error.
        let xovis = |body: &str| parse(Vendor::Xovis, body.as_bytes(), None).unwrap_err();
        let record = r#"{"logics_data": {"logics": [{"id": 1, "records": [{"counts": []}]}]}}"#;
        assert_eq!(xovis(record), "logics_data.logics[0].records[0]: missing field `from`");
        let logic = r#"{"logics_data": {"logics": [{"id": -1, "records": []}]}}"#;
        assert_eq!(xovis(logic), "logics_data.logics[0].id: must be a logic id, got -1");
        assert!(xovis(r#"{"logics_data": ["#).starts_with("the body is not JSON: "));
        assert!(xovis(r#"{"logics_data": {"logics": []}} trailing"#).starts_with("the body is not JSON: "));
    }
}
