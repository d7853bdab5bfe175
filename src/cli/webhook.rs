//! `footfall webhook`: endpoints that receive signed events (docs/alerts.md), and their deliveries.

use std::sync::Arc;

use clap::Subcommand;
use jiff::Timestamp;

use super::list::{ListArgs, Listing, instant};
use crate::domain::webhooks::{EventType, WebhookSecret};
use crate::storage::{AttemptOutcome, Storage};

/// `footfall webhook`.
#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Add an endpoint; its signing secret (whsec_...) is printed once, alone on the last line.
    #[command(
        after_help = "Examples:\n  footfall webhook add https://alerts.example.com/footfall --events device.silent,occupancy.above\n  \
                            footfall webhook add https://bi.example.com/hook --events all"
    )]
    Add {
        /// The URL deliveries are posted to (http or https).
        url: String,
        /// Comma-separated events, or `all`: device.silent, device.recovered, occupancy.above,
        /// occupancy.below, count.imbalance, publication.completed.
        #[arg(long, value_name = "EVENTS")]
        events: String,
    },
    /// List endpoints: URL, events and when each was added, by URL.
    #[command(after_help = "Examples:\n  footfall webhook list --format json")]
    List(ListArgs),
    /// Remove an endpoint; its queued deliveries are dropped.
    #[command(after_help = "Examples:\n  footfall webhook remove https://alerts.example.com/footfall")]
    Remove {
        /// The endpoint's URL.
        url: String,
    },
    /// An endpoint's latest deliveries: event, webhook-id, attempts, status and last error, newest first.
    #[command(after_help = "Examples:\n  footfall webhook deliveries https://alerts.example.com/footfall")]
    Deliveries {
        /// The endpoint's URL.
        url: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// How to print them.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Post a signed `webhook.test` event to an endpoint now and print how it answered.
    #[command(after_help = "Examples:\n  footfall webhook test https://alerts.example.com/footfall")]
    Test {
        /// The endpoint's URL.
        url: String,
    },
}

fn check_url(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|error| anyhow::anyhow!("{url:?} is not a URL: {error}"))?;
    anyhow::ensure!(matches!(parsed.scheme(), "http" | "https"), "{url:?}: webhooks are posted over http or https");
    Ok(())
}

/// Runs a `footfall webhook` command.
pub async fn run(storage: Arc<dyn Storage>, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add { url, events } => {
            check_url(&url)?;
            let events = EventType::parse_list(&events).map_err(|error| anyhow::anyhow!("--events: {error}"))?;
            let secret = WebhookSecret::generate();
            let names = events.iter().map(|event| event.as_str().to_owned()).collect();
            storage.add_webhook(url.clone(), secret.as_text(), names, Timestamp::now()).await?;
            println!("added webhook {url}; its signing secret (shown only now):");
            println!("{}", secret.as_text());
        }
        WebhookCommand::List(list) => {
            let mut listing = Listing::new(&["url", "events", "added"]);
            for webhook in storage.webhooks().await? {
                listing.push(
                    vec![webhook.url.clone(), webhook.events.join(","), instant(webhook.created_at)],
                    serde_json::json!({
                        "url": webhook.url,
                        "events": webhook.events,
                        "created_at": instant(webhook.created_at),
                    }),
                );
            }
            listing.print(list.format);
        }
        WebhookCommand::Remove { url } => {
            storage.remove_webhook(url.clone()).await?;
            println!("removed webhook {url}");
        }
        WebhookCommand::Deliveries { url, limit, list } => {
            let mut listing = Listing::new(&["event", "webhook-id", "made", "attempts", "status", "last error"]);
            for delivery in storage.webhook_deliveries(url, limit).await? {
                let status = match (delivery.delivered_at, delivery.next_attempt_at) {
                    (Some(at), _) => format!("delivered {}", instant(at)),
                    (None, Some(at)) => format!("next attempt {}", instant(at)),
                    (None, None) => "given up".to_owned(),
                };
                listing.push(
                    vec![
                        delivery.event_type.clone(),
                        delivery.message_id.clone(),
                        instant(delivery.created_at),
                        delivery.attempts.to_string(),
                        format!("{status}{}", delivery.last_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()),
                        delivery.last_error.clone().unwrap_or_default(),
                    ],
                    serde_json::json!({
                        "event_type": delivery.event_type,
                        "message_id": delivery.message_id,
                        "created_at": instant(delivery.created_at),
                        "attempts": delivery.attempts,
                        "delivered_at": delivery.delivered_at.map(instant),
                        "next_attempt_at": delivery.next_attempt_at.map(instant),
                        "last_status": delivery.last_status,
                        "last_error": delivery.last_error,
                    }),
                );
            }
            listing.print(list.format);
        }
        WebhookCommand::Test { url } => match crate::webhooks::send_test(storage.as_ref(), &url).await? {
            AttemptOutcome::Delivered { status } => println!("delivered: {url} answered {status}"),
            AttemptOutcome::Failed { error, .. } => anyhow::bail!("not delivered: {error}"),
        },
    }
    Ok(())
}
