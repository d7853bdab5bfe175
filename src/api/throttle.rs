//! Throttling of failed sign-ins, per username and per client address.
//!
//! After `max_failures` failures within `window`, a key is blocked; each further failure doubles the
//! block, up to `max_block`, so a guessing attack slows to a crawl while a user who mistyped is back
//! within seconds, and never locked out for longer than `max_block`. A blocked request is refused
//! before any password verification, so an attack cannot make the server burn CPU on argon2 either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures block a key, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures within `window` that block the key.
    pub max_failures: u32,
    /// The time within which failures count together.
    pub window: Duration,
    /// The first block; each further failure doubles it.
    pub first_block: Duration,
    /// The longest block.
    pub max_block: Duration,
}

struct Failures {
    count: u32,
    since: Instant,
    blocked_until: Option<Instant>,
}

/// Failed sign-ins per key (a username or a client address), shared by all requests of a server.
pub struct Throttle {
    policy: ThrottlePolicy,
    keys: Mutex<HashMap<String, Failures>>,
    /// Bounds memory under an attack from many addresses or names.
    max_keys: usize,
}

impl Throttle {
    /// An empty throttle applying `policy`.
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle { policy, keys: Mutex::new(HashMap::new()), max_keys: 100_000 }
    }

    /// `Err(retry_after)` while `key` is blocked.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let keys = self.keys.lock().unwrap();
        match keys.get(key).and_then(|failures| failures.blocked_until) {
            Some(until) if until > Instant::now() => Err(until - Instant::now()),
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in for `key`, blocking it once the policy's limit is reached.
    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap();
        if keys.len() >= self.max_keys && !keys.contains_key(key) {
            let horizon = self.policy.window.max(self.policy.max_block);
            keys.retain(|_, f| now.duration_since(f.since) < horizon || f.blocked_until.is_some_and(|u| u > now));
            if keys.len() >= self.max_keys {
                return; // still full of live entries: the address limit keeps working for those
            }
        }
        let failures = keys.entry(key.to_owned()).or_insert(Failures { count: 0, since: now, blocked_until: None });
        let expired =
            now.duration_since(failures.since) > self.policy.window && failures.blocked_until.is_none_or(|u| u <= now);
        if expired && failures.count < self.policy.max_failures {
            *failures = Failures { count: 0, since: now, blocked_until: None };
        }
        failures.count += 1;
        if failures.count >= self.policy.max_failures {
            let doublings = (failures.count - self.policy.max_failures).min(16);
            let block = (self.policy.first_block * 2u32.pow(doublings)).min(self.policy.max_block);
            failures.blocked_until = Some(now + block);
            failures.since = now;
        }
    }

    /// Forgets `key`'s failures: a correct sign-in clears the count.
    pub fn record_success(&self, key: &str) {
        self.keys.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottlePolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            first_block: Duration::from_millis(50),
            max_block: Duration::from_millis(150),
        })
    }

    #[test]
    fn blocks_after_repeated_failures_and_recovers() {
        let throttle = throttle();
        for _ in 0..2 {
            throttle.record_failure("alice");
            assert!(throttle.check("alice").is_ok());
        }
        throttle.record_failure("alice");
        let retry = throttle.check("alice").unwrap_err();
        assert!(retry <= Duration::from_millis(50));
        assert!(throttle.check("bob").is_ok(), "other keys are unaffected");
        std::thread::sleep(retry + Duration::from_millis(5));
        assert!(throttle.check("alice").is_ok(), "a block ends");
        // The next failure blocks again, for twice as long, but never longer than the maximum.
        throttle.record_failure("alice");
        assert!(throttle.check("alice").unwrap_err() > Duration::from_millis(50));
        for _ in 0..10 {
            throttle.record_failure("alice");
        }
        assert!(throttle.check("alice").unwrap_err() <= Duration::from_millis(150));
        throttle.record_success("alice");
        assert!(throttle.check("alice").is_ok());
    }
}
