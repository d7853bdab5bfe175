//! `footfall token`: API tokens for machine clients, read with their user's scope.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use jiff::{SignedDuration, Timestamp};

use super::list::{ListArgs, ListFormat, Listing, instant};
use crate::api::auth::{hash_token, new_api_token};
use crate::domain::tokens::{ApiTokenInfo, NewApiToken};
use crate::domain::{TokenName, Username};
use crate::publish::parse_interval;
use crate::storage::Storage;

/// `footfall token`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue an API token that reads with a user's scope (no argon2 cost per request); it is printed
    /// once, alone on the last line, and stored only as its SHA-256.
    #[command(after_help = "Examples:\n  footfall token add powerbi --user analyst --expires 90d\n  \
                            curl -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8000/api/stores'")]
    Add {
        /// A unique name for the token, e.g. the client it is for.
        name: String,
        /// The user whose stores the token reads.
        #[arg(long)]
        user: String,
        /// How long the token works: 90d, 12h, 30m, 45s [default: until revoked].
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<Duration>,
    },
    /// List API tokens: name, user, created, last used (to within a minute) and expiry, by name.
    #[command(after_help = "Examples:\n  footfall token list\n  footfall token list --format json")]
    List(ListArgs),
    /// Revoke an API token: it stops working at once.
    #[command(after_help = "Examples:\n  footfall token revoke powerbi")]
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `90d`, or an interval as `--publish-interval` takes it (`12h`, `30m`, `45s`); not zero.
fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = match text.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|days| days.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is not a lifetime like 90d, 12h or 30m"))?,
        None => parse_interval(text).map_err(|_| format!("{text:?} is not a lifetime like 90d, 12h or 30m"))?,
    };
    if lifetime.is_zero() {
        return Err("a token's lifetime must be longer than 0".into());
    }
    Ok(lifetime)
}

/// Runs one `footfall token` command.
pub async fn run(storage: Arc<dyn Storage>, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Add { name, user, expires } => {
            let name = TokenName::parse(&name).map_err(anyhow::Error::msg)?;
            let username = Username::parse(&user).map_err(anyhow::Error::msg)?;
            let created_at = Timestamp::now();
            let expires_at = match expires {
                Some(lifetime) => Some(
                    SignedDuration::try_from(lifetime)
                        .ok()
                        .and_then(|lifetime| created_at.checked_add(lifetime).ok())
                        .ok_or_else(|| anyhow::anyhow!("--expires: too far in the future"))?,
                ),
                None => None,
            };
            let token = new_api_token();
            let new = NewApiToken {
                name: name.clone(),
                username: username.clone(),
                token_hash: hash_token(&token),
                created_at,
                expires_at,
            };
            storage.add_api_token(new).await?;
            let expiry = expires_at.map_or_else(|| "never expires".to_owned(), |at| format!("expires {}", instant(at)));
            println!("added API token {name} for user {username} ({expiry}); the token (shown once):");
            println!("{token}");
        }
        TokenCommand::List(list) => print_tokens(&storage.api_tokens().await?, list.format, Timestamp::now()),
        TokenCommand::Revoke { name } => {
            let name = TokenName::parse(&name).map_err(anyhow::Error::msg)?;
            storage.revoke_api_token(name.clone()).await?;
            println!("revoked API token {name}; it no longer works");
        }
    }
    Ok(())
}

fn print_tokens(tokens: &[ApiTokenInfo], format: ListFormat, now: Timestamp) {
    // The hash is not even read from storage: a listing cannot leak it.
    let mut listing = Listing::new(&["name", "user", "created", "last used", "expires"]);
    for token in tokens {
        let expired = token.expires_at.is_some_and(|at| at <= now);
        let expires = match token.expires_at {
            None => "never".to_owned(),
            Some(at) if expired => format!("{} (expired)", instant(at)),
            Some(at) => instant(at),
        };
        listing.push(
            vec![
                token.name.to_string(),
                token.username.to_string(),
                instant(token.created_at),
                token.last_used_at.map_or_else(|| "never".to_owned(), instant),
                expires,
            ],
            serde_json::json!({
                "name": token.name.as_str(),
                "user": token.username.as_str(),
                "created_at": instant(token.created_at),
                "last_used_at": token.last_used_at.map(instant),
                "expires_at": token.expires_at.map(instant),
                "expired": expired,
            }),
        );
    }
    listing.print(format);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_in_days_hours_minutes_and_seconds() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_lifetime("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_lifetime("0d").unwrap_err().contains("longer than 0"));
        assert!(parse_lifetime("soon").unwrap_err().contains("\"soon\""));
        assert!(parse_lifetime("d").is_err());
    }
}
