//! The catalog: stores, devices, users and the stores each user may see.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::domain::keys::{DeviceKey, StoreKey, UserKey};
use crate::domain::opening_hours::OpeningHours;
use crate::domain::publication::PublicationPolicy;
use crate::domain::sensors::{SensorConfig, Vendor};
use crate::domain::{DeviceId, Minute, PeriodCalendar, ResetTime, StoreCode, Username};

/// A store: where devices count people.
#[derive(Clone, Debug)]
pub struct Store {
    /// Its database key.
    pub key: StoreKey,
    /// Its code, unique, as the API names it.
    pub code: StoreCode,
    /// A display name.
    pub name: String,
    /// The time zone of its local days.
    pub timezone: TimeZone,
    /// The local time at which its occupancy starts again from zero.
    pub reset: ResetTime,
    /// When it is open; `None`: learned from its counts (`domain::health`).
    pub hours: Option<OpeningHours>,
    /// The most people it may hold, for occupancy alerts.
    pub capacity: Option<u32>,
}

impl Store {
    /// Its occupancy periods: local days starting at the reset time.
    pub fn calendar(&self) -> PeriodCalendar<'_> {
        PeriodCalendar { timezone: &self.timezone, reset: self.reset }
    }
}

/// A counting device, in one store.
#[derive(Clone, Debug)]
pub struct Device {
    /// Its database key.
    pub key: DeviceKey,
    /// Its id, unique, as it names itself in the bins it sends.
    pub device_id: DeviceId,
    /// The store it counts in.
    pub store: StoreKey,
    /// False once removed: its published bins stay, it can send no more.
    pub active: bool,
}

/// Stores (ordered by code, byte order), devices with their tokens and sensor configurations, and the
/// publication policy, as of one catalog version: what a request needs to know of the database's
/// configuration, read once per change rather than once per request.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Bumped by every change to stores, devices, device tokens, sensors or the publication policy: a
    /// cached catalog is current while it is equal.
    pub version: i64,
    /// When ingested bins are published.
    pub publication_policy: PublicationPolicy,
    stores: Vec<Store>,
    devices: Vec<Device>,
    store_by_code: HashMap<String, usize>,
    store_by_key: HashMap<StoreKey, usize>,
    device_by_id: HashMap<String, usize>,
    device_by_key: HashMap<DeviceKey, usize>,
    /// Active devices by the SHA-256 of their token.
    device_by_token_hash: TokenIndex,
    /// Sensors by (vendor, normalized serial).
    sensors: HashMap<(Vendor, String), (DeviceId, SensorConfig)>,
}

/// Token hashes to devices; its `Debug` shows only how many, so a logged catalog shows none of them.
#[derive(Default)]
struct TokenIndex(HashMap<String, DeviceKey>);

impl std::fmt::Debug for TokenIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} token hashes", self.0.len())
    }
}

impl Catalog {
    /// The catalog of these stores and devices, indexed.
    pub fn new(version: i64, mut stores: Vec<Store>, devices: Vec<Device>) -> Catalog {
        stores.sort_by(|a, b| a.code.as_str().as_bytes().cmp(b.code.as_str().as_bytes()));
        fn index<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
            keys.enumerate().map(|(i, k)| (k, i)).collect()
        }
        // A moved device has an inactive row per earlier store and one active row: its id names the
        // active one (the one that sends bins), else the latest.
        let mut device_by_id = HashMap::new();
        for (i, device) in devices.iter().enumerate() {
            let current = device_by_id.entry(device.device_id.to_string()).or_insert(i);
            if device.active || !devices[*current].active {
                *current = i;
            }
        }
        Catalog {
            version,
            store_by_code: index(stores.iter().map(|s| s.code.to_string())),
            store_by_key: index(stores.iter().map(|s| s.key)),
            device_by_id,
            device_by_key: index(devices.iter().map(|d| d.key)),
            stores,
            devices,
            ..Catalog::default()
        }
    }

    /// With the token hashes of the active devices.
    pub fn with_device_tokens(mut self, tokens: impl IntoIterator<Item = (String, DeviceKey)>) -> Catalog {
        self.device_by_token_hash = TokenIndex(tokens.into_iter().collect());
        self
    }

    /// With the registered sensors.
    pub fn with_sensors(mut self, sensors: impl IntoIterator<Item = (DeviceId, SensorConfig)>) -> Catalog {
        self.sensors = sensors
            .into_iter()
            .map(|(device, config)| ((config.vendor, config.serial.clone()), (device, config)))
            .collect();
        self
    }

    /// With the database's publication policy.
    pub fn with_publication_policy(mut self, policy: PublicationPolicy) -> Catalog {
        self.publication_policy = policy;
        self
    }

    /// The active device whose token has this SHA-256.
    pub fn device_by_token_hash(&self, token_hash: &str) -> Option<DeviceKey> {
        self.device_by_token_hash.0.get(token_hash).copied()
    }

    /// The sensor of a vendor's (normalized) serial: its device id and configuration.
    pub fn sensor(&self, vendor: Vendor, serial: &str) -> Option<(&DeviceId, &SensorConfig)> {
        self.sensors.get(&(vendor, serial.to_owned())).map(|(device, config)| (device, config))
    }

    /// The configuration of a device's sensor of this vendor, if it is one.
    pub fn sensor_of_device(&self, device_id: &DeviceId, vendor: Vendor) -> Option<&SensorConfig> {
        self.sensors.values().find(|(device, config)| device == device_id && config.vendor == vendor).map(|(_, c)| c)
    }

    /// All stores, ordered by store code.
    pub fn stores(&self) -> &[Store] {
        &self.stores
    }

    /// All devices, removed ones included.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The store with this code.
    pub fn store_by_code(&self, code: &str) -> Option<&Store> {
        self.store_by_code.get(code).map(|&i| &self.stores[i])
    }

    /// The store with this key.
    pub fn store(&self, key: StoreKey) -> Option<&Store> {
        self.store_by_key.get(&key).map(|&i| &self.stores[i])
    }

    /// The device with this device id (of a moved device, its row in its current store).
    pub fn device_by_id(&self, device_id: &str) -> Option<&Device> {
        self.device_by_id.get(device_id).map(|&i| &self.devices[i])
    }

    /// The device with this key.
    pub fn device(&self, key: DeviceKey) -> Option<&Device> {
        self.device_by_key.get(&key).map(|&i| &self.devices[i])
    }

    /// The position of a store in code order; rows of several stores are ordered by it.
    pub fn store_rank(&self, key: StoreKey) -> Option<usize> {
        self.store_by_key.get(&key).copied()
    }
}

/// A store to add.
#[derive(Clone, Debug)]
pub struct NewStore {
    /// Its code.
    pub code: StoreCode,
    /// Its display name.
    pub name: String,
    /// An IANA time zone name, already known to be valid.
    pub timezone: String,
    /// The local time at which its occupancy starts again from zero.
    pub reset: ResetTime,
    /// When it is open; `None`: learned from its counts.
    pub hours: Option<OpeningHours>,
    /// The most people it may hold.
    pub capacity: Option<u32>,
}

/// What `footfall store set` changes of a store; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct StoreChange {
    /// A new display name.
    pub name: Option<String>,
    /// A new IANA time zone name, already known to be valid.
    pub timezone: Option<String>,
    /// A new occupancy reset.
    pub reset: Option<ResetTime>,
    /// New opening hours; `Some(None)` returns to learned hours.
    pub hours: Option<Option<OpeningHours>>,
    /// A new capacity; `Some(None)` removes it.
    pub capacity: Option<Option<u32>>,
}

impl StoreChange {
    /// Whether the change moves the store's occupancy periods, so its published rollup must be
    /// recomputed.
    pub fn moves_periods(&self) -> bool {
        self.timezone.is_some() || self.reset.is_some()
    }
}

/// A user as `footfall user list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSummary {
    /// The name it signs in with.
    pub username: Username,
    /// The stores it may see, by code; `None` for every store.
    pub stores: Option<Vec<StoreCode>>,
    /// May push bins and occupancy corrections over HTTP.
    pub can_ingest: bool,
}

/// What a store change or a device move recomputed of the published rollup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Republished {
    /// Store-days whose rollup rows were recomputed.
    pub periods: u64,
    /// Published bins that changed store (device moves only).
    pub bins: u64,
}

/// The stores a user may see.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreScope {
    /// Every store, present and future.
    All,
    /// Only these.
    Only(Vec<StoreKey>),
}

impl StoreScope {
    /// Whether the user may see this store.
    pub fn includes(&self, store: StoreKey) -> bool {
        match self {
            StoreScope::All => true,
            StoreScope::Only(stores) => stores.contains(&store),
        }
    }
}

/// The stores a new user may see, by code.
#[derive(Clone, Debug)]
pub enum NewScope {
    /// Every store, present and future.
    All,
    /// Only these.
    Stores(Vec<StoreCode>),
}

/// A user to add.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// The name it signs in with.
    pub username: Username,
    /// An argon2 PHC string; never the password.
    pub password_hash: String,
    /// The stores it may see.
    pub scope: NewScope,
    /// May push bins and occupancy corrections over HTTP.
    pub can_ingest: bool,
}

/// What the API needs to authenticate and authorize a user.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    /// Its database key.
    pub key: UserKey,
    /// An argon2 PHC string.
    pub password_hash: String,
    /// The stores it may see.
    pub scope: StoreScope,
    /// May push bins and occupancy corrections over HTTP.
    pub can_ingest: bool,
}

/// A device with what it last sent.
#[derive(Clone, Debug)]
pub struct DeviceStatus {
    /// Its id.
    pub device_id: DeviceId,
    /// The code of its store.
    pub store_code: StoreCode,
    /// False once removed.
    pub active: bool,
    /// The latest minute of any bin it sent.
    pub last_bin_minute: Option<Minute>,
    /// When its last bins were received.
    pub last_seen_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_sensors_are_found_and_token_hashes_never_printed() {
        let device_id = DeviceId::parse("entrance-1").unwrap();
        let device = Device { key: DeviceKey(7), device_id: device_id.clone(), store: StoreKey(1), active: true };
        let config = SensorConfig::new(Vendor::Xovis, "80:1f:12:d3:27:ca", (None, None), vec![], false).unwrap();
        let catalog = Catalog::new(3, vec![], vec![device])
            .with_device_tokens([("c0ffee".to_owned(), DeviceKey(7))])
            .with_sensors([(device_id.clone(), config)])
            .with_publication_policy(PublicationPolicy::OnIngest);
        assert_eq!(catalog.device_by_token_hash("c0ffee"), Some(DeviceKey(7)));
        assert_eq!(catalog.device_by_token_hash("c0ffef"), None);
        let (found, config) = catalog.sensor(Vendor::Xovis, "80:1F:12:D3:27:CA").unwrap();
        assert_eq!((found, config.in_name.as_str()), (&device_id, "fw"));
        assert!(catalog.sensor(Vendor::Axis, "80:1F:12:D3:27:CA").is_none());
        assert!(catalog.sensor_of_device(&device_id, Vendor::Xovis).is_some());
        assert!(catalog.sensor_of_device(&device_id, Vendor::Irisys).is_none());
        let printed = format!("{catalog:?}");
        assert!(!printed.contains("c0ffee") && printed.contains("1 token hashes"), "{printed}");
    }
}
