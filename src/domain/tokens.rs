//! API tokens: long random secrets handed to machine clients (BI tools) instead of a password. A token
//! reads with its user's scope until it expires, is revoked, or its user is removed.

use std::time::Duration;

use jiff::Timestamp;

use crate::domain::keys::ApiTokenKey;
use crate::domain::{TokenName, Username};

/// How stale a token's recorded last use may get: a token's use is written at most once per this
/// interval, so that reads with a token do not each become a write.
pub const LAST_USE_RESOLUTION: Duration = Duration::from_secs(60);

/// An API token to add.
#[derive(Clone, Debug)]
pub struct NewApiToken {
    /// Its name, unique: what `token list` shows and `token revoke` takes.
    pub name: TokenName,
    /// The user whose scope it reads with.
    pub username: Username,
    /// The SHA-256 (hex) of the token; never the token.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working; `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// An API token as `token list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenInfo {
    /// Its name.
    pub name: TokenName,
    /// The user whose scope it reads with.
    pub username: Username,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it was last used, to within [`LAST_USE_RESOLUTION`]; `None`: never.
    pub last_used_at: Option<Timestamp>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// A stored token found by its hash: what the API checks before it lets the token read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    /// Its key, to record its use.
    pub key: ApiTokenKey,
    /// Its name, for the request log.
    pub name: TokenName,
    /// Its user's name, for the request log.
    pub username: Username,
    /// When it stops working; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// When its use was last recorded.
    pub last_used_at: Option<Timestamp>,
}

impl TokenGrant {
    /// Whether the token no longer works at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// Whether a use at `now` should be recorded: the recorded one is older than [`LAST_USE_RESOLUTION`].
    pub fn last_use_is_stale(&self, now: Timestamp) -> bool {
        self.last_used_at.is_none_or(|at| {
            Duration::try_from(now.duration_since(at)).is_ok_and(|elapsed| elapsed >= LAST_USE_RESOLUTION)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: Option<&str>, last_used_at: Option<&str>) -> TokenGrant {
        TokenGrant {
            key: ApiTokenKey(1),
            name: TokenName::parse("bi").unwrap(),
            username: Username::parse("analyst").unwrap(),
            expires_at: expires_at.map(|at| at.parse().unwrap()),
            last_used_at: last_used_at.map(|at| at.parse().unwrap()),
        }
    }

    #[test]
    fn a_token_expires_at_its_expiry() {
        let now: Timestamp = "2024-01-01T12:00:00Z".parse().unwrap();
        assert!(!grant(None, None).is_expired(now));
        assert!(!grant(Some("2024-01-01T12:00:01Z"), None).is_expired(now));
        assert!(grant(Some("2024-01-01T12:00:00Z"), None).is_expired(now));
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute() {
        let now: Timestamp = "2024-01-01T12:00:00Z".parse().unwrap();
        assert!(grant(None, None).last_use_is_stale(now));
        assert!(!grant(None, Some("2024-01-01T11:59:01Z")).last_use_is_stale(now));
        assert!(grant(None, Some("2024-01-01T11:59:00Z")).last_use_is_stale(now));
        // A clock that went back does not record a use earlier than the recorded one.
        assert!(!grant(None, Some("2024-01-01T12:05:00Z")).last_use_is_stale(now));
    }
}
