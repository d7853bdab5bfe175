//! The scope policy: which stores, and so which devices, a user sees. Every endpoint and the ingest
//! service ask it, so the rule is decided once. Something outside the scope is answered as if it did not
//! exist, so a user learns nothing of other stores.

use crate::domain::catalog::{Catalog, Device, Store, StoreScope};
use crate::domain::keys::StoreKey;

/// The catalog as seen by one scope.
#[derive(Clone, Copy, Debug)]
pub struct Visible<'a> {
    catalog: &'a Catalog,
    scope: &'a StoreScope,
}

impl<'a> Visible<'a> {
    /// The part of `catalog` that `scope` sees.
    pub fn new(catalog: &'a Catalog, scope: &'a StoreScope) -> Self {
        Visible { catalog, scope }
    }

    /// Whether the store with this key is visible.
    pub fn includes(self, store: StoreKey) -> bool {
        self.scope.includes(store)
    }

    /// The visible store with this code.
    pub fn store(self, code: &str) -> Option<&'a Store> {
        self.catalog.store_by_code(code).filter(|store| self.includes(store.key))
    }

    /// The device with this id if its store is visible (removed devices included: their bins stay).
    pub fn device(self, device_id: &str) -> Option<&'a Device> {
        self.catalog.device_by_id(device_id).filter(|device| self.includes(device.store))
    }

    /// The visible stores, in store-code order.
    pub fn stores(self) -> impl Iterator<Item = &'a Store> {
        self.catalog.stores().iter().filter(move |store| self.includes(store.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::DeviceKey;
    use crate::domain::{DeviceId, StoreCode};

    fn catalog() -> Catalog {
        let store = |key, code: &str| Store {
            key: StoreKey(key),
            code: StoreCode::parse(code).unwrap(),
            name: code.to_owned(),
            timezone: jiff::tz::TimeZone::UTC,
            reset: "00:00".parse().unwrap(),
            hours: None,
            capacity: None,
        };
        let device = |key, id: &str, store| Device {
            key: DeviceKey(key),
            device_id: DeviceId::parse(id).unwrap(),
            store: StoreKey(store),
            active: true,
        };
        Catalog::new(1, vec![store(2, "b"), store(1, "a")], vec![device(10, "a-1", 1), device(20, "b-1", 2)])
    }

    #[test]
    fn a_scope_sees_its_stores_and_their_devices_only() {
        let catalog = catalog();
        let only_b = StoreScope::Only(vec![StoreKey(2)]);
        let visible = Visible::new(&catalog, &only_b);
        assert_eq!(visible.stores().map(|s| s.code.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(visible.store("a").is_none() && visible.store("b").is_some());
        assert!(visible.device("a-1").is_none() && visible.device("b-1").is_some());
        assert!(visible.store("nowhere").is_none());

        let all = Visible::new(&catalog, &StoreScope::All);
        assert_eq!(all.stores().map(|s| s.code.as_str()).collect::<Vec<_>>(), ["a", "b"], "in code order");
        assert!(all.device("a-1").is_some());
    }
}
