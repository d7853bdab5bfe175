//! HTTP Basic authentication with argon2 password hashes and a cache of successful verifications.
//!
//! An argon2 verification costs tens of milliseconds by design. Paying it on every request would cap a
//! server near 50 requests/s per core, so a successful verification is remembered, keyed by an HMAC of
//! the credentials under a per-process random key (the cache never holds a password or anything that
//! can be tested offline), bounded in size and age, and tied to the user's current password hash: a
//! changed password or removed user no longer matches. A wrong password, or an unknown user (checked
//! against a dummy hash), always costs a full verification.
//!
//! Each verification also takes argon2's 19 MiB of working memory, so only a few run at once (one per
//! core: more would not finish sooner). Without that bound, a burst of uncached requests, such as every
//! connection of a busy client when its cache entry expires, or an attacker's flood of wrong passwords,
//! runs one verification per request at once: a blocking thread and 19 MiB each. Requests that waited
//! look in the cache again, so a burst with the same credentials costs at most one verification per
//! core, not one per request.
//!
//! API tokens (`Authorization: Bearer`) never touch argon2: a token carries 256 random bits, so its
//! SHA-256 is as safe to store as a slow hash, and it is looked up by that hash in one trip with the
//! catalog. A token's last use is written at most once a minute ([`LAST_USE_RESOLUTION`]), and off the
//! request's path, so reads with a token do not each become a write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ErrorCode};
use super::throttle::{Throttle, ThrottlePolicy};
use crate::domain::catalog::{Catalog, UserCredentials};
use crate::domain::keys::{ApiTokenKey, UserKey};
use crate::domain::publication::PublicationMark;
use crate::domain::tokens::{LAST_USE_RESOLUTION, TokenGrant};
use crate::storage::Storage;

/// Hashes a password for storage (argon2id, the argon2 crate's default parameters).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// A random ingest token: 32 bytes, hex. Only its SHA-256 is stored; with this much entropy a slow
/// hash adds nothing.
pub fn new_device_token() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A device or API token's SHA-256 in hex: tokens are stored and looked up only by it.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What every API token starts with: it tells them from device tokens, and secret scanners can find them.
pub const API_TOKEN_PREFIX: &str = "fft_";

/// A random API token: [`API_TOKEN_PREFIX`] and 32 random bytes in hex. Only its [`hash_token`] is stored.
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", new_device_token())
}

/// Whether a bearer token is an API token (rather than a device token).
pub fn is_api_token(token: &str) -> bool {
    token.starts_with(API_TOKEN_PREFIX)
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive); `None` for
/// another scheme. The token may be empty: that is a bad token, not missing credentials.
pub fn parse_bearer(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// The credentials of a well-formed `Authorization: Basic` header.
#[derive(Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The username.
    pub username: String,
    /// The password as sent (never logged).
    pub password: String,
}

/// Parses an Authorization header value: the scheme is case-insensitive, the password is everything
/// after the first colon. `None` for anything malformed (the API answers `not_authenticated`).
pub fn parse_basic(header: &[u8]) -> Option<BasicCredentials> {
    let header = std::str::from_utf8(header).ok()?;
    let mut tokens = header.split_ascii_whitespace();
    let (scheme, encoded) = (tokens.next()?, tokens.next()?);
    if tokens.next().is_some() || !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(BasicCredentials { username: username.to_owned(), password: password.to_owned() })
}

/// A sign-in that got past the throttle, its password not yet checked.
pub struct Attempt {
    credentials: BasicCredentials,
    username_key: String,
    address_key: Option<String>,
}

impl Attempt {
    /// The username the attempt signs in as.
    pub fn username(&self) -> &str {
        &self.credentials.username
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.username_key).chain(&self.address_key)
    }
}

struct Verified {
    user: UserKey,
    password_hash_digest: [u8; 32],
    at: Instant,
}

/// Checks Basic credentials: throttles failures per username and per address, verifies argon2
/// hashes with bounded concurrency, and caches successful verifications (keyed by an HMAC of the
/// credentials, never the password itself) so a client's repeated requests cost no argon2.
pub struct Authenticator {
    by_username: Throttle,
    by_address: Throttle,
    key: [u8; 32],
    dummy_hash: String,
    cache: Mutex<HashMap<[u8; 32], Verified>>,
    max_entries: usize,
    max_age: Duration,
    verification_slots: tokio::sync::Semaphore,
    verifications: AtomicU64,
    /// When this process last recorded each token's use.
    recorded_uses: Mutex<HashMap<ApiTokenKey, Instant>>,
}

/// A request signed in with an API token: the token, its user's account, and the catalog and mark read
/// in the same trip.
#[derive(Debug)]
pub struct TokenSignIn {
    /// The token.
    pub grant: TokenGrant,
    /// Its user: the scope it reads with.
    pub user: UserCredentials,
    /// Stores and devices.
    pub catalog: Arc<Catalog>,
    /// What is published.
    pub mark: PublicationMark,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new(10_000, Duration::from_secs(300), crate::config::DEFAULT_FAILURES_PER_MINUTE)
    }
}

impl Authenticator {
    /// An authenticator caching up to `max_entries` verifications for `max_age`, throttling a username
    /// after `failures_per_minute` failures (an address after four times as many).
    pub fn new(max_entries: usize, max_age: Duration, failures_per_minute: u32) -> Authenticator {
        let per_username = ThrottlePolicy {
            max_failures: failures_per_minute.max(1),
            window: Duration::from_secs(60),
            first_block: Duration::from_secs(2),
            max_block: Duration::from_secs(30),
        };
        // One address trying many names (or many wrong passwords) gets more rope, then a longer block.
        let per_address = ThrottlePolicy {
            max_failures: per_username.max_failures.saturating_mul(4),
            max_block: Duration::from_secs(60),
            ..per_username
        };
        Authenticator {
            by_username: Throttle::new(per_username),
            by_address: Throttle::new(per_address),
            key: rand::random(),
            dummy_hash: hash_password(&format!("{:x}", rand::random::<u128>())),
            cache: Mutex::new(HashMap::new()),
            max_entries,
            max_age,
            verification_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            ),
            verifications: AtomicU64::new(0),
            recorded_uses: Mutex::new(HashMap::new()),
        }
    }

    /// How many argon2 verifications this authenticator has run (cache hits excluded).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    fn cache_key(&self, credentials: &BasicCredentials) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(&(credentials.username.len() as u64).to_le_bytes());
        mac.update(credentials.username.as_bytes());
        mac.update(credentials.password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Authenticates the Authorization header of a request from `client`.
    pub async fn authenticate(
        &self,
        storage: &dyn Storage,
        header: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<UserCredentials, ApiError> {
        let attempt = self.admit(header, client)?;
        let user = storage.user_credentials(attempt.username()).await?;
        self.check(attempt, user).await
    }

    /// The first half of [`Authenticator::authenticate`], for callers that look the user up along with
    /// other things: parses the header and turns away a throttled name or address.
    pub fn admit(&self, header: Option<&[u8]>, client: Option<IpAddr>) -> Result<Attempt, ApiError> {
        let credentials = header.and_then(parse_basic).ok_or_else(ApiError::not_authenticated)?;
        let attempt = Attempt {
            username_key: format!("user:{}", credentials.username),
            address_key: client.map(|address| address.to_string()),
            credentials,
        };
        if let Some(retry_after) = attempt.keys().filter_map(|key| self.throttle(key).check(key).err()).max() {
            crate::telemetry::series::throttled();
            return Err(ApiError::throttled(retry_after));
        }
        Ok(attempt)
    }

    /// The second half: checks the attempt's password against `user`, the account stored under its
    /// name (if any), and counts a failure against the name and the address.
    pub async fn check(&self, attempt: Attempt, user: Option<UserCredentials>) -> Result<UserCredentials, ApiError> {
        let result = self.verify(&attempt.credentials, user).await;
        match &result {
            // Only the name is forgiven: a valid account must not reset its address's failures.
            Ok(_) => self.by_username.record_success(&attempt.username_key),
            Err(error) if error.code == ErrorCode::AuthenticationFailed => {
                crate::telemetry::series::auth_failure("password");
                attempt.keys().for_each(|key| self.throttle(key).record_failure(key));
            }
            Err(_) => {}
        }
        result
    }

    /// Authenticates an API token: the address throttle, one trip to the store by the token's SHA-256
    /// (no argon2), then its expiry. A failure counts against the client's address, as a wrong password
    /// does. The use is recorded in the background when the recorded one is over a minute old.
    pub async fn authenticate_token(
        &self,
        storage: &Arc<dyn Storage>,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<TokenSignIn, ApiError> {
        let address_key = client.map(|address| address.to_string());
        if let Some(key) = &address_key
            && let Err(retry_after) = self.by_address.check(key)
        {
            crate::telemetry::series::throttled();
            return Err(ApiError::throttled(retry_after));
        }
        let fail = |detail: &'static str| {
            crate::telemetry::series::auth_failure("api_token");
            if let Some(key) = &address_key {
                self.by_address.record_failure(key);
            }
            Err(ApiError::invalid_token(detail))
        };
        if !is_api_token(token) {
            return fail("Invalid API token.");
        }
        let context = storage.token_context(&hash_token(token)).await?;
        let Some((grant, user)) = context.token else {
            return fail("Invalid API token.");
        };
        let now = jiff::Timestamp::now();
        if grant.is_expired(now) {
            return fail("The API token has expired.");
        }
        if self.should_record_use(&grant, now) {
            let (storage, key) = (storage.clone(), grant.key);
            tokio::spawn(async move {
                if let Err(error) = storage.record_token_use(key, now).await {
                    tracing::warn!(%error, "recording an API token's use failed");
                }
            });
        }
        Ok(TokenSignIn { grant, user, catalog: context.catalog, mark: context.mark })
    }

    /// Whether to record this use: the stored one is stale and this process has not just recorded one
    /// (so a burst of requests after a stale minute writes once, not once per request).
    fn should_record_use(&self, grant: &TokenGrant, now: jiff::Timestamp) -> bool {
        if !grant.last_use_is_stale(now) {
            return false;
        }
        let mut recorded = self.recorded_uses.lock().unwrap();
        if recorded.get(&grant.key).is_some_and(|at| at.elapsed() < LAST_USE_RESOLUTION) {
            return false;
        }
        if recorded.len() >= self.max_entries {
            recorded.retain(|_, at| at.elapsed() < LAST_USE_RESOLUTION);
        }
        recorded.insert(grant.key, Instant::now());
        true
    }

    fn throttle(&self, key: &str) -> &Throttle {
        if key.starts_with("user:") { &self.by_username } else { &self.by_address }
    }

    async fn verify(
        &self,
        credentials: &BasicCredentials,
        user: Option<UserCredentials>,
    ) -> Result<UserCredentials, ApiError> {
        let cache_key = self.cache_key(credentials);
        let cached = || user.as_ref().filter(|user| self.is_cached(&cache_key, user)).cloned();
        if let Some(user) = cached() {
            return Ok(user);
        }
        let _slot = self.verification_slots.acquire().await.map_err(ApiError::internal)?;
        if let Some(user) = cached() {
            return Ok(user);
        }
        let phc = user.as_ref().map_or_else(|| self.dummy_hash.clone(), |user| user.password_hash.clone());
        let password = credentials.password.clone();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matches =
            tokio::task::spawn_blocking(move || verify_password(&password, &phc)).await.map_err(ApiError::internal)?;
        match user {
            Some(user) if matches => {
                self.remember(cache_key, &user);
                Ok(user)
            }
            _ => Err(ApiError::authentication_failed()),
        }
    }

    /// Whether these credentials were verified recently against the user's current password hash.
    fn is_cached(&self, cache_key: &[u8; 32], user: &UserCredentials) -> bool {
        let digest: [u8; 32] = Sha256::digest(user.password_hash.as_bytes()).into();
        let cache = self.cache.lock().unwrap();
        cache.get(cache_key).is_some_and(|verified| {
            verified.user == user.key
                && bool::from(verified.password_hash_digest.ct_eq(&digest))
                && verified.at.elapsed() < self.max_age
        })
    }

    fn remember(&self, cache_key: [u8; 32], user: &UserCredentials) {
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= self.max_entries {
            cache.retain(|_, verified| verified.at.elapsed() < self.max_age);
            while cache.len() >= self.max_entries {
                let Some(oldest) = cache.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| *k) else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        let password_hash_digest = Sha256::digest(user.password_hash.as_bytes()).into();
        cache.insert(cache_key, Verified { user: user.key, password_hash_digest, at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    #[test]
    fn basic_headers_parse_per_the_contract() {
        let parsed = parse_basic(basic("demo:pa:ss word").as_bytes()).unwrap();
        assert_eq!(parsed, BasicCredentials { username: "demo".into(), password: "pa:ss word".into() });
        let lower = basic("a:b").replace("Basic", "bAsIc");
        assert_eq!(parse_basic(lower.as_bytes()).unwrap().username, "a");
        assert_eq!(
            parse_basic(basic(":").as_bytes()).unwrap(),
            BasicCredentials { username: "".into(), password: "".into() }
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for header in [
            "".to_string(),
            "Basic".to_string(),
            "Basic !!!notbase64".to_string(),
            basic("no-colon"),
            format!("{} extra", basic("a:b")),
            basic("a:b").replace("Basic", "Bearer"),
        ] {
            assert!(parse_basic(header.as_bytes()).is_none(), "{header:?}");
        }
    }

    #[test]
    fn bearer_headers_give_their_token() {
        assert_eq!(parse_bearer(b"Bearer fft_abc"), Some("fft_abc"));
        assert_eq!(parse_bearer(b"bEaReR  fft_abc "), Some("fft_abc"));
        assert_eq!(parse_bearer(b"Bearer"), Some(""));
        assert_eq!(parse_bearer(basic("a:b").as_bytes()), None);
        let token = new_api_token();
        assert!(is_api_token(&token) && token.len() == API_TOKEN_PREFIX.len() + 64);
        assert!(!is_api_token(&new_device_token()));
    }

    /// The token path costs no argon2: many sign-ins with a token run no verification at all.
    #[tokio::test]
    async fn tokens_are_checked_without_argon2() {
        use crate::domain::catalog::{NewScope, NewUser};
        use crate::domain::tokens::NewApiToken;
        use crate::domain::{TokenName, Username};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("footfall.db");
        let storage: Arc<dyn Storage> =
            Arc::new(crate::storage::sqlite::SqliteStorage::open(path.to_str().unwrap()).await.unwrap());
        let username = Username::parse("bi").unwrap();
        let password_hash = hash_password("unused");
        let user = NewUser { username: username.clone(), password_hash, scope: NewScope::All, can_ingest: false };
        storage.add_user(user).await.unwrap();
        let token = new_api_token();
        let name = TokenName::parse("reporting").unwrap();
        let created_at = jiff::Timestamp::now();
        let new = NewApiToken { name, username, token_hash: hash_token(&token), created_at, expires_at: None };
        storage.add_api_token(new).await.unwrap();

        let authenticator = Authenticator::default();
        for _ in 0..100 {
            let signed_in = authenticator.authenticate_token(&storage, &token, None).await.unwrap();
            assert_eq!(signed_in.user.scope, crate::domain::catalog::StoreScope::All);
        }
        let wrong = authenticator.authenticate_token(&storage, &new_api_token(), None).await.unwrap_err();
        assert_eq!((wrong.status.as_u16(), wrong.code), (401, ErrorCode::AuthenticationFailed));
        assert_eq!(authenticator.verifications(), 0, "no argon2 verification on the token path");
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("secret");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("secret", &hash));
        assert!(!verify_password("Secret", &hash));
        assert!(!verify_password("secret", "not a hash"));
    }
}
