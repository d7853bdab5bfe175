//! The domain: identifiers and typed keys, the catalog of stores, devices and users, count bins,
//! minutes and time zones, occupancy periods and page arithmetic, publication, rollup verification,
//! pagination, what monitoring reads. Nothing here knows about HTTP or a database.

pub mod bins;
pub mod buckets;
pub mod catalog;
pub mod health;
pub mod keys;
pub mod monitoring;
pub mod occupancy;
pub mod opening_hours;
pub mod pagination;
pub mod periods;
pub mod publication;
pub mod reads;
pub mod retention;
pub mod rollups;
pub mod scope;
pub mod sensors;
pub mod time;
pub mod tokens;
pub mod webhooks;

pub use time::{Minute, Period, PeriodCalendar, ResetTime};

use std::fmt;

/// Defines a validated identifier newtype: non-empty, at most 64 bytes, printable, no whitespace.
macro_rules! identifier {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, ".")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `text`; the error says why it is not valid.
            pub fn parse(text: &str) -> Result<Self, String> {
                let valid =
                    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| !c.is_whitespace() && !c.is_control());
                if valid {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(format!(
                        concat!(
                            "{:?} is not a valid ",
                            $what,
                            " (1 to 64 characters, no spaces or control characters)"
                        ),
                        text
                    ))
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // `pad` honours width and alignment, so `{:<16}` lines up table columns.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

identifier!(StoreCode, "store code");
identifier!(DeviceId, "device id");
identifier!(Username, "username");
identifier!(TokenName, "token name");

/// One device's counts for one UTC minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// People in.
    pub entries: u32,
    /// People out.
    pub exits: u32,
}

impl Counts {
    /// No one in or out.
    pub fn is_empty(self) -> bool {
        self.entries == 0 && self.exits == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated() {
        assert_eq!(StoreCode::parse("116500").unwrap().as_str(), "116500");
        assert!(StoreCode::parse("").is_err());
        assert!(StoreCode::parse("a b").is_err());
        assert!(DeviceId::parse(&"x".repeat(65)).is_err());
        assert!(DeviceId::parse("cnt-1\n").unwrap_err().contains("device id"));
    }

    #[test]
    fn identifiers_honour_width_and_alignment() {
        let code = StoreCode::parse("116500").unwrap();
        assert_eq!(format!("{code:<8}|{code:>8}|{code:^8}|{code:.3}"), "116500  |  116500| 116500 |116");
    }
}
