//! Typed database keys: a store's, a device's, a user's and an API token's row ids, which cannot be mixed up.

use std::fmt;

/// Defines a key newtype over the engines' `i64` row id.
macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(key: $name) -> i64 {
                key.0
            }
        }
    };
}

key!(
    /// A store's key: its row id in the database.
    StoreKey
);
key!(
    /// A device's key: its row id in the database.
    DeviceKey
);
key!(
    /// A user's key: its row id in the database.
    UserKey
);
key!(
    /// An API token's key: its row id in the database.
    ApiTokenKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_convert_as_their_row_id() {
        assert_eq!(StoreKey(7).to_string(), "7");
        assert_eq!(i64::from(DeviceKey(-3)), -3);
        assert!(UserKey(1) < UserKey(2));
    }
}
