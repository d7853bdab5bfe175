//! The `footfall` command line: one clap enum, one function per subcommand.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::api::auth::{hash_password, hash_token, new_device_token};
use crate::config::{self, Settings};
use crate::domain::catalog::Store;
use crate::domain::catalog::{NewScope, NewStore, NewUser, StoreChange};
use crate::domain::health::{DayHealth, HealthSettings};
use crate::domain::opening_hours::OpeningHours;
use crate::domain::sensors::{SensorConfig, Vendor};
use crate::domain::{DeviceId, Minute, ResetTime, StoreCode, Username};
use crate::ingest::{self, files::ingest_files};
use crate::storage::{self, Storage};
use crate::telemetry::{self, LogFormat};
use crate::{app, demo, publish};

mod list;
mod packaging;
mod prune;
mod token;
mod webhook;

use list::{ListArgs, Listing, instant};

#[derive(Parser, Debug)]
#[command(
    name = "footfall",
    version,
    about = "People-counter metrics server",
    after_help = "Examples:\n  footfall store add 116500 --timezone Europe/Athens --name \"Athens Ermou\"\n  \
                  footfall --database postgres://footfall@db/footfall serve --listen 0.0.0.0:8000\n  \
                  footfall serve --demo"
)]
/// The command line: the database every subcommand works on, and the subcommand.
pub struct Cli {
    /// Database URL: sqlite://PATH[?mode=ro|rw|rwc] or postgres://USER@HOST/DB [default: sqlite://footfall.db]
    #[arg(long, env = "FOOTFALL_DATABASE_URL", global = true, value_name = "URL")]
    pub database: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `footfall`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Manage counting devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Correct occupancy with manual counts.
    #[command(subcommand)]
    Occupancy(OccupancyCommand),
    /// Ingest count bins from NDJSON, JSON or CSV files, or stdin.
    ///
    /// A file's format follows its name: NDJSON (.ndjson, .jsonl), JSON (.json: an array of bins or one
    /// bin) or CSV (.csv); '-' reads stdin in the format of --format.
    #[command(after_help = "Examples:\n  footfall ingest day1.ndjson day2.csv day3.json\n  \
                            gzip -dc day4.csv.gz | footfall ingest --format csv -")]
    Ingest {
        /// The files ('-' for stdin), each stored whole or not at all.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// The format of stdin ('-'); files are known by their extension.
        #[arg(long, value_enum, default_value_t = StdinFormat::Ndjson)]
        format: StdinFormat,
    },
    /// Make everything ingested so far visible through the API.
    #[command(after_help = "Examples:\n  footfall ingest day1.ndjson && footfall publish")]
    Publish,
    /// Serve the API.
    #[command(after_help = "Examples:\n  footfall serve --listen 0.0.0.0:8000 --publish-interval 15m\n  \
                            footfall serve --config /etc/footfall/footfall.toml\n  footfall serve --demo")]
    Serve(ServeArgs),
    /// Inspect the settings of `serve`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create demo stores, devices, a user and a week of traffic, and publish it.
    #[command(after_help = "Examples:\n  footfall --database sqlite://demo.db demo --days 30")]
    Demo(DemoArgs),
    /// Take a consistent copy of the embedded store while it is in use.
    #[command(after_help = "Examples:\n  footfall backup /backups/footfall-$(date +%F).db")]
    Backup {
        /// Where to write the copy.
        path: std::path::PathBuf,
    },
    /// Verify the store's integrity and that the published rollups equal the published bins.
    #[command(after_help = "Examples:\n  footfall check\n  footfall --database 'sqlite://footfall.db?mode=ro' check")]
    Check,
    /// Manage API tokens: machine clients read with a token instead of a password.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Delete old published minute data, whole store-days at a time.
    Prune(prune::PruneArgs),
    /// Manage webhooks: endpoints receiving signed events (device silent, occupancy over capacity, ...).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  footfall completions bash > /etc/bash_completion.d/footfall\n  \
                            footfall completions zsh > ~/.zfunc/_footfall")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (footfall.1 and one per subcommand) into a directory; used to build packages.
    #[command(hide = true, after_help = "Examples:\n  footfall manpages target/man")]
    Manpages {
        /// The directory to write them into (created if missing).
        dir: std::path::PathBuf,
    },
}

/// The format of `footfall ingest -`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StdinFormat {
    /// One JSON object per line.
    Ndjson,
    /// A JSON array of bins, or one bin.
    Json,
    /// A header `device_id,minute,in,out`, then one bin per row.
    Csv,
}

impl From<StdinFormat> for ingest::Format {
    fn from(format: StdinFormat) -> ingest::Format {
        match format {
            StdinFormat::Ndjson => ingest::Format::Ndjson,
            StdinFormat::Json => ingest::Format::Json,
            StdinFormat::Csv => ingest::Format::Csv,
        }
    }
}

impl Command {
    /// Whether the command only reads: then a missing SQLite file is an error, not a new empty database.
    fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Store(StoreCommand::List(_))
                | Command::Device(DeviceCommand::List(_))
                | Command::Device(DeviceCommand::Health { .. })
                | Command::User(UserCommand::List(_))
                | Command::Token(token::TokenCommand::List(_))
                | Command::Occupancy(OccupancyCommand::Corrections { .. })
                | Command::Backup { .. }
                | Command::Check
        )
    }
}

/// `footfall store`.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Add a store.
    #[command(
        after_help = "Examples:\n  footfall store add 116500 --timezone Europe/Athens --name \"Athens Ermou\"\n  \
                            footfall store add 220310 --timezone America/New_York --occupancy-reset 04:00\n  \
                            footfall store add 330720 --timezone Asia/Tokyo --hours \"Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off\" --capacity 250"
    )]
    Add {
        /// The store code, e.g. 116500.
        code: String,
        /// IANA time zone, e.g. Europe/Athens.
        #[arg(long, value_name = "ZONE")]
        timezone: String,
        /// A display name [default: the code].
        #[arg(long)]
        name: Option<String>,
        /// Local time of day (HH:MM) at which occupancy restarts from 0.
        #[arg(long, value_name = "HH:MM", default_value = "00:00")]
        occupancy_reset: String,
        /// Opening hours, e.g. "Mo-Fr 09:00-21:00; Sa 10:00-20:00; Su off" (docs/alerts.md has the syntax)
        /// [default: learned from the counts]
        #[arg(long, value_name = "HOURS")]
        hours: Option<String>,
        /// The most people the store may hold.
        #[arg(long, value_name = "N")]
        capacity: Option<u32>,
    },
    /// List stores: code, name, time zone, occupancy reset, opening hours and capacity, by code.
    #[command(after_help = "Examples:\n  footfall store list\n  footfall store list --format json")]
    List(ListArgs),
    /// Rename a store or change its time zone or occupancy reset; a new zone or reset recomputes the
    /// store's published occupancy at once.
    #[command(after_help = "Examples:\n  footfall store set 116500 --name \"Athens Ermou 12\"\n  \
                            footfall store set 116500 --occupancy-reset 04:00\n  \
                            footfall store set 116500 --hours \"Mo-Sa 10:00-21:00; Su off\" --capacity 120\n  \
                            footfall store set 116500 --hours learned --capacity none")]
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
    Set {
        /// The store code.
        code: String,
        /// A new display name.
        #[arg(long, group = "change")]
        name: Option<String>,
        /// A new IANA time zone, e.g. Europe/Athens.
        #[arg(long, value_name = "ZONE", group = "change")]
        timezone: Option<String>,
        /// A new local time of day (HH:MM) at which occupancy restarts from 0.
        #[arg(long, value_name = "HH:MM", group = "change")]
        occupancy_reset: Option<String>,
        /// New opening hours, or `learned` to learn them from the counts again.
        #[arg(long, value_name = "HOURS", group = "change")]
        hours: Option<String>,
        /// A new capacity, or `none`.
        #[arg(long, value_name = "N", group = "change")]
        capacity: Option<String>,
    },
}

/// `footfall device`.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Add a device to a store and print its ingest token (alone on the last line).
    #[command(after_help = "Examples:\n  footfall device add cnt-1 --store 116500")]
    Add {
        /// The device id the sensor reports, e.g. cnt-1.
        device_id: String,
        /// The code of the store the device counts for.
        #[arg(long, value_name = "CODE")]
        store: String,
        /// The sensor's vendor, when it pushes in its own format: xovis, axis, irisys, milesight, hikvision.
        #[arg(long, requires = "serial")]
        vendor: Option<String>,
        /// The serial its payloads carry (Xovis serial_number, Axis serial, Irisys FriendlyDeviceSerial,
        /// Milesight device_sn, Hikvision macAddress).
        #[arg(long, requires = "vendor")]
        serial: Option<String>,
        /// The count that is "in": a Xovis counter name (default fw), an Irisys register name or id
        /// (required); Axis and Milesight default to in, Hikvision to enter.
        #[arg(long = "in", requires = "vendor")]
        in_name: Option<String>,
        /// The count that is "out" (Xovis default bw, Axis and Milesight out, Hikvision exit).
        #[arg(long = "out", requires = "vendor")]
        out_name: Option<String>,
        /// A Xovis logic id or Milesight line number to sum (repeatable; default all).
        #[arg(long = "line", requires = "vendor")]
        lines: Vec<u32>,
        /// Swap in and out (a sensor mounted the other way round).
        #[arg(long, requires = "vendor")]
        reverse: bool,
    },
    /// List devices with their store, last bin minute and last-seen time, and for sensors their vendor,
    /// serial, last push and skipped packages (Xovis package sequence gaps).
    #[command(after_help = "Examples:\n  footfall device list\n  footfall device list --format json")]
    List(ListArgs),
    /// List serials that pushed without being registered (vendor, serial, first and last seen, pushes),
    /// so that an installer can register them with `device add --vendor --serial`.
    #[command(after_help = "Examples:\n  footfall device unknown\n  footfall device unknown --format json")]
    Unknown(ListArgs),
    /// Device health, one line per active device: its last bin, whether it is silent (no bin for more
    /// than --silence-minutes of its store's open time), today's completeness (open minutes with data)
    /// and count balance (|in - out| / max(in, out), flagged above --imbalance-percent from 100 counts).
    /// The store's hours are its --hours, or learned from its counts of the last four weeks.
    #[command(
        after_help = "Examples:\n  footfall device health\n  footfall device health --store 116500 --days 7 --format json"
    )]
    Health {
        /// Only this store's devices.
        #[arg(long, value_name = "CODE")]
        store: Option<String>,
        /// Local days reported, today included (JSON lists each).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=31))]
        days: u32,
        /// Open minutes without a bin after which a device is silent.
        #[arg(long, default_value_t = 30)]
        silence_minutes: i64,
        /// Imbalance flagged above this percentage.
        #[arg(long, default_value_t = 10)]
        imbalance_percent: u32,
        /// How to print it.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Move a device to another store from a minute on: its bins from then on count for the new store,
    /// earlier ones stay with the old; both stores' published occupancy is recomputed. Its token stays.
    #[command(after_help = "Examples:\n  footfall device move cnt-1 --store 220310 --from 2023-10-26T00:00:00Z")]
    Move {
        /// The device.
        device_id: String,
        /// The code of the store it counts for from then on.
        #[arg(long, value_name = "CODE")]
        store: String,
        /// The first minute counted for the new store (UTC unless an offset is given; whole minutes).
        #[arg(long, value_name = "TIME")]
        from: String,
    },
    /// Issue a new ingest token (printed alone on the last line); the old one stops working.
    #[command(after_help = "Examples:\n  footfall device rotate-token cnt-1")]
    RotateToken {
        /// The device.
        device_id: String,
    },
    /// Remove a device: its token stops working at once; its bins stay.
    #[command(after_help = "Examples:\n  footfall device remove cnt-1")]
    Remove {
        /// The device.
        device_id: String,
    },
}

/// `footfall occupancy`.
#[derive(Subcommand, Debug)]
pub enum OccupancyCommand {
    /// Set the occupancy at the end of a minute; later minutes continue from it until the next reset.
    #[command(after_help = "Examples:\n  footfall occupancy set 116500 --at 2023-10-26T12:30:00Z --value 12")]
    Set {
        /// The store code.
        store: String,
        /// The minute (UTC unless an offset is given), e.g. 2023-10-26T12:30:00Z.
        #[arg(long, value_name = "TIME")]
        at: String,
        /// The number of people inside at the end of that minute.
        #[arg(long, value_name = "PEOPLE")]
        value: u32,
    },
    /// List a store's corrections: minute, value and when it was recorded, by minute.
    #[command(after_help = "Examples:\n  footfall occupancy corrections 116500 --format json")]
    Corrections {
        /// The store code.
        store: String,
        /// How to print.
        #[command(flatten)]
        list: ListArgs,
    },
}

/// `footfall user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user seeing some stores (--stores CODE,...) or every store (--all-stores); the password is
    /// read from stdin.
    #[command(
        after_help = "Examples:\n  printf 'secret\\n' | footfall user add analyst --password-stdin --stores 116500,220310\n  \
                            printf 'secret\\n' | footfall user add loader --password-stdin --all-stores --can-ingest"
    )]
    #[command(group = clap::ArgGroup::new("scope").required(true).args(["all_stores", "stores"]))]
    Add {
        /// The username.
        name: String,
        /// Read the password from stdin (minus one trailing newline).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The user sees every store, present and future.
        #[arg(long)]
        all_stores: bool,
        /// The user sees only these stores (comma-separated codes).
        #[arg(long, value_name = "CODE,...", value_delimiter = ',')]
        stores: Vec<String>,
        /// The user may also push bins and occupancy corrections over HTTP.
        #[arg(long)]
        can_ingest: bool,
    },
    /// List users: the stores each sees and whether it may ingest, by username (never a password hash).
    #[command(after_help = "Examples:\n  footfall user list\n  footfall user list --format json")]
    List(ListArgs),
    /// Set a user's password, read from stdin.
    #[command(after_help = "Examples:\n  printf 'new\\n' | footfall user passwd analyst --password-stdin")]
    Passwd {
        /// The username.
        name: String,
        /// Read the password from stdin (minus one trailing newline).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove a user; its credentials and API tokens stop working at once.
    #[command(after_help = "Examples:\n  footfall user remove loader")]
    Remove {
        /// The username.
        name: String,
    },
}

/// `footfall serve`: the settings (see [`config`]) and whether to fill the database with demo data first.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The settings given on the command line (they win over variables and the file).
    #[command(flatten)]
    pub settings: config::SettingsArgs,
    /// Fill the database (a temporary one unless a database is given) with demo data first.
    #[arg(long)]
    pub demo: bool,
}

/// `footfall config`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the settings `serve` would run with, as TOML, with secrets redacted.
    #[command(after_help = "Examples:\n  footfall config show --config /etc/footfall/footfall.toml")]
    Show(config::SettingsArgs),
}

/// `footfall demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Days of traffic, ending now.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
}

/// Runs the command line and maps an error to exit code 1, printed with its causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let database = cli.database.clone();
    let database = &database;
    // `serve` logs in the format of its settings, known once they are resolved.
    if !matches!(cli.command, Command::Serve(_)) {
        telemetry::init(LogFormat::Text);
    }
    let only_reads = cli.command.only_reads();
    let open = || async move {
        let url = database.as_deref().unwrap_or(config::DEFAULT_DATABASE_URL);
        if only_reads { storage::open_existing(url).await } else { storage::open(url).await }
    };
    match cli.command {
        Command::Store(StoreCommand::Add { code, timezone, name, occupancy_reset, hours, capacity }) => {
            let code = StoreCode::parse(&code).map_err(anyhow::Error::msg)?;
            parse_timezone(&timezone)?;
            let reset = parse_reset(&occupancy_reset)?;
            let name = name.unwrap_or_else(|| code.to_string());
            let hours = hours.as_deref().map(parse_hours).transpose()?;
            open().await?.add_store(NewStore { code: code.clone(), name, timezone, reset, hours, capacity }).await?;
            println!("added store {code}");
        }
        Command::Store(StoreCommand::List(list)) => {
            let catalog = open().await?.catalog().await?;
            let mut listing = Listing::new(&["code", "name", "timezone", "reset", "hours", "capacity"]);
            for store in catalog.stores() {
                let zone = store.timezone.iana_name().unwrap_or("?");
                let hours = store.hours.as_ref().map(ToString::to_string);
                listing.push(
                    vec![
                        store.code.to_string(),
                        store.name.clone(),
                        zone.to_owned(),
                        store.reset.to_string(),
                        hours.clone().unwrap_or_else(|| "learned".into()),
                        store.capacity.map_or_else(|| "-".into(), |capacity| capacity.to_string()),
                    ],
                    serde_json::json!({
                        "store_code": store.code.as_str(),
                        "name": store.name,
                        "timezone": zone,
                        "occupancy_reset": store.reset.to_string(),
                        "opening_hours": hours,
                        "capacity": store.capacity,
                    }),
                );
            }
            listing.print(list.format);
        }
        Command::Store(StoreCommand::Set { code, name, timezone, occupancy_reset, hours, capacity }) => {
            let code = StoreCode::parse(&code).map_err(anyhow::Error::msg)?;
            if let Some(timezone) = &timezone {
                parse_timezone(timezone)?;
            }
            let reset = occupancy_reset.as_deref().map(parse_reset).transpose()?;
            let hours = match hours.as_deref() {
                None => None,
                Some("learned") => Some(None),
                Some(text) => Some(Some(parse_hours(text)?)),
            };
            let capacity = match capacity.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(text) => Some(Some(
                    text.parse::<u32>()
                        .map_err(|_| anyhow::anyhow!("--capacity: {text:?} is not a number of people (or `none`)"))?,
                )),
            };
            let change = StoreChange { name, timezone, reset, hours, capacity };
            let republished = open().await?.change_store(code.clone(), change).await?;
            println!("changed store {code}; {} published store-days recomputed", republished.periods);
        }
        Command::Device(DeviceCommand::Add { device_id, store, vendor, serial, in_name, out_name, lines, reverse }) => {
            let device_id = DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?;
            let store = StoreCode::parse(&store).map_err(anyhow::Error::msg)?;
            let sensor = match (vendor, serial) {
                (Some(vendor), Some(serial)) => {
                    let vendor = Vendor::parse(&vendor).map_err(anyhow::Error::msg)?;
                    Some(
                        SensorConfig::new(vendor, &serial, (in_name, out_name), lines, reverse)
                            .map_err(anyhow::Error::msg)?,
                    )
                }
                _ => None,
            };
            let storage = open().await?;
            if let Some(config) = &sensor
                && let Some((existing, _)) = storage.catalog().await?.sensor(config.vendor, &config.serial)
            {
                anyhow::bail!("the {} sensor {} is already device {existing}", config.vendor, config.serial);
            }
            let token = new_device_token();
            if let Some(config) = sensor {
                let described = format!("{} sensor {}", config.vendor, config.serial);
                storage.add_sensor(device_id.clone(), store.clone(), hash_token(&token), config).await?;
                println!("added device {device_id} ({described}) to store {store}; its ingest token (shown once):");
            } else {
                storage.add_device(device_id.clone(), store.clone(), hash_token(&token)).await?;
                println!("added device {device_id} to store {store}; its ingest token (shown once):");
            }
            println!("{token}");
        }
        Command::Device(DeviceCommand::List(list)) => {
            let storage = open().await?;
            let devices = storage.device_statuses().await?;
            let sensors = storage.sensors().await?;
            // A moved device keeps an inactive row in each earlier store, beside its active one.
            let active: std::collections::HashSet<&str> =
                devices.iter().filter(|device| device.active).map(|device| device.device_id.as_str()).collect();
            // The sensor columns only where some device is a sensor: plain devices list as before.
            let mut listing = if sensors.is_empty() {
                Listing::new(&["device", "store", "last bin minute", "last seen"])
            } else {
                Listing::new(&[
                    "device",
                    "store",
                    "last bin minute",
                    "last seen",
                    "vendor",
                    "serial",
                    "last push",
                    "gaps",
                ])
            };
            for device in &devices {
                let minute = device.last_bin_minute.map_or_else(|| "-".to_owned(), |m| m.to_string());
                let seen = device.last_seen_at.map_or_else(|| "never".to_owned(), instant);
                let seen = match (device.active, active.contains(device.device_id.as_str())) {
                    (true, _) => seen,
                    (false, true) => format!("{seen} (moved)"),
                    (false, false) => format!("{seen} (removed)"),
                };
                // Sensor rows are keyed by device id, so a moved device's rows share its sensor.
                let sensor = sensors.iter().find(|sensor| sensor.device_id == device.device_id);
                let push = sensor.map(|sensor| sensor.last_push_at.map_or_else(|| "never".to_owned(), instant));
                let mut cells = vec![device.device_id.to_string(), device.store_code.to_string(), minute, seen];
                if !sensors.is_empty() {
                    cells.extend([
                        sensor.map_or_else(|| "-".to_owned(), |sensor| sensor.config.vendor.to_string()),
                        sensor.map_or_else(|| "-".to_owned(), |sensor| sensor.config.serial.to_string()),
                        push.clone().unwrap_or_else(|| "-".to_owned()),
                        sensor.map_or_else(|| "-".to_owned(), |sensor| sensor.package_gaps.to_string()),
                    ]);
                }
                listing.push(
                    cells,
                    serde_json::json!({
                        "device_id": device.device_id.as_str(),
                        "store_code": device.store_code.as_str(),
                        "active": device.active,
                        "last_bin_minute": device.last_bin_minute.map(|minute| minute.to_string()),
                        "last_seen_at": device.last_seen_at.map(instant),
                        "vendor": sensor.map(|sensor| sensor.config.vendor.to_string()),
                        "serial": sensor.map(|sensor| sensor.config.serial.to_string()),
                        "last_push_at": push,
                        "package_gaps": sensor.map(|sensor| sensor.package_gaps),
                    }),
                );
            }
            listing.print(list.format);
        }
        Command::Device(DeviceCommand::Unknown(list)) => {
            let unknown = open().await?.unknown_sensors().await?;
            let mut listing = Listing::new(&["vendor", "serial", "first seen", "last seen", "pushes"]);
            for sensor in &unknown {
                listing.push(
                    vec![
                        sensor.vendor.to_string(),
                        sensor.serial.to_string(),
                        instant(sensor.first_seen),
                        instant(sensor.last_seen),
                        sensor.pushes.to_string(),
                    ],
                    serde_json::json!({
                        "vendor": sensor.vendor.to_string(),
                        "serial": sensor.serial.to_string(),
                        "first_seen_at": instant(sensor.first_seen),
                        "last_seen_at": instant(sensor.last_seen),
                        "pushes": sensor.pushes,
                    }),
                );
            }
            listing.print(list.format);
        }
        Command::Device(DeviceCommand::Health { store, days, silence_minutes, imbalance_percent, list }) => {
            let storage = open().await?;
            let catalog = storage.catalog().await?;
            let stores: Vec<&Store> = match store {
                Some(code) => vec![catalog.store_by_code(&code).ok_or_else(|| anyhow::anyhow!("no store {code}"))?],
                None => catalog.stores().iter().collect(),
            };
            let settings = HealthSettings {
                silence_minutes,
                imbalance: f64::from(imbalance_percent) / 100.0,
                ..HealthSettings::default()
            };
            let now = jiff::Timestamp::now();
            let report =
                crate::health::stores_health(storage.as_ref(), &catalog, &stores, days, now, &settings).await?;
            let mut listing =
                Listing::new(&["store", "device", "last bin", "silent", "complete today", "balance today"]);
            let percent =
                |share: Option<f64>| share.map_or_else(|| "-".into(), |share| format!("{:.0} %", share * 100.0));
            for store in &report {
                let mut minutes = crate::domain::time::LocalMinuteWriter::new(&store.store.timezone);
                for (device, health) in &store.devices {
                    let today = health.days.last();
                    let balance = today.and_then(|day| day.balance);
                    let flagged = today.is_some_and(|day| day.imbalanced);
                    listing.push(
                        vec![
                            store.store.code.to_string(),
                            device.device_id.to_string(),
                            health.last_bin.map_or_else(
                                || "never".into(),
                                |minute| String::from_utf8_lossy(&minutes.render(minute)).into_owned(),
                            ),
                            if health.silent {
                                format!("SILENT ({} min)", health.open_minutes_without_data)
                            } else {
                                "no".into()
                            },
                            percent(today.and_then(DayHealth::completeness)),
                            format!("{}{}", percent(balance), if flagged { " IMBALANCED" } else { "" }),
                        ],
                        {
                            let mut row = crate::health::device_json(device, health, &mut minutes);
                            row["store_code"] = store.store.code.as_str().into();
                            row["hours_learned"] = store.schedule.is_learned().into();
                            row
                        },
                    );
                }
            }
            listing.print(list.format);
        }
        Command::Device(DeviceCommand::Move { device_id, store, from }) => {
            let device_id = DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?;
            let store = StoreCode::parse(&store).map_err(anyhow::Error::msg)?;
            let from = parse_minute("--from", &from)?;
            let republished = open().await?.move_device(device_id.clone(), store.clone(), from).await?;
            println!(
                "moved device {device_id} to store {store} from minute {from}; {} published bins changed store, {} store-days recomputed",
                republished.bins, republished.periods
            );
        }
        Command::Device(DeviceCommand::RotateToken { device_id }) => {
            let device_id = DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?;
            let token = new_device_token();
            open().await?.rotate_device_token(device_id.clone(), hash_token(&token)).await?;
            println!("new ingest token for device {device_id} (the old one no longer works):");
            println!("{token}");
        }
        Command::Device(DeviceCommand::Remove { device_id }) => {
            let device_id = DeviceId::parse(&device_id).map_err(anyhow::Error::msg)?;
            open().await?.remove_device(device_id.clone()).await?;
            println!("removed device {device_id}; its bins stay, its token no longer works");
        }
        Command::User(UserCommand::Passwd { name, password_stdin: _ }) => {
            let username = Username::parse(&name).map_err(anyhow::Error::msg)?;
            let password_hash = hash_password(&read_password_stdin()?);
            open().await?.set_password(username.clone(), password_hash).await?;
            println!("changed the password of user {username}");
        }
        Command::User(UserCommand::List(list)) => {
            let mut listing = Listing::new(&["user", "stores", "can ingest"]);
            for user in open().await?.users().await? {
                let stores: Vec<&str> = user.stores.iter().flatten().map(StoreCode::as_str).collect();
                let shown = if user.stores.is_none() { "all".to_owned() } else { stores.join(",") };
                listing.push(
                    vec![user.username.to_string(), shown, if user.can_ingest { "yes" } else { "no" }.to_owned()],
                    serde_json::json!({
                        "username": user.username.as_str(),
                        "all_stores": user.stores.is_none(),
                        "stores": stores,
                        "can_ingest": user.can_ingest,
                    }),
                );
            }
            listing.print(list.format);
        }
        Command::User(UserCommand::Remove { name }) => {
            let username = Username::parse(&name).map_err(anyhow::Error::msg)?;
            open().await?.remove_user(username.clone()).await?;
            println!("removed user {username}");
        }
        Command::Backup { path } => {
            open().await?.backup(path.clone()).await?;
            println!("backed up to {}", path.display());
        }
        Command::Check => {
            let report = open().await?.check().await?;
            for problem in &report.problems {
                eprintln!("problem: {problem}");
            }
            if !report.problems.is_empty() {
                bail!("the store is inconsistent ({} problems)", report.problems.len());
            }
            println!(
                "ok: {} rollup rows in {} store-days match the published bins",
                report.rollup_rows, report.periods
            );
        }
        Command::Occupancy(OccupancyCommand::Set { store, at, value }) => {
            let store = StoreCode::parse(&store).map_err(anyhow::Error::msg)?;
            let at =
                crate::domain::time::parse_instant(&at).with_context(|| format!("--at: {at:?} is not a datetime"))?;
            let minute = Minute::last_at_or_before(at);
            let correction = crate::domain::bins::Correction { minute, value, created_at: jiff::Timestamp::now() };
            let storage = open().await?;
            storage.add_correction(store.clone(), correction).await?;
            // As for an HTTP correction: published now if the database's policy is on ingest.
            let catalog = storage.catalog().await?;
            let published = publish::after_write(storage.as_ref(), &catalog, jiff::Timestamp::now()).await?;
            let visible = if published { "published" } else { "visible after the next publication" };
            println!("occupancy of store {store} set to {value} at the end of minute {minute}; {visible}");
        }
        Command::Occupancy(OccupancyCommand::Corrections { store, list }) => {
            let store = StoreCode::parse(&store).map_err(anyhow::Error::msg)?;
            let mut listing = Listing::new(&["minute", "value", "recorded"]);
            for correction in open().await?.corrections(store).await? {
                listing.push(
                    vec![correction.minute.to_string(), correction.value.to_string(), instant(correction.created_at)],
                    serde_json::json!({
                        "minute": correction.minute.to_string(),
                        "value": correction.value,
                        "recorded_at": instant(correction.created_at),
                    }),
                );
            }
            listing.print(list.format);
        }
        Command::User(UserCommand::Add { name, password_stdin: _, all_stores, stores, can_ingest }) => {
            let username = Username::parse(&name).map_err(anyhow::Error::msg)?;
            let password = read_password_stdin()?;
            let scope = if all_stores {
                NewScope::All
            } else {
                NewScope::Stores(
                    stores
                        .iter()
                        .map(|code| StoreCode::parse(code).map_err(anyhow::Error::msg))
                        .collect::<Result<_, _>>()?,
                )
            };
            let password_hash = hash_password(&password);
            open().await?.add_user(NewUser { username: username.clone(), password_hash, scope, can_ingest }).await?;
            println!("added user {username}");
        }
        Command::Ingest { files, format } => ingest_files(open().await?.as_ref(), &files, format.into()).await?,
        Command::Token(command) => token::run(open().await?, command).await?,
        Command::Prune(args) => prune::run(open().await?, args).await?,
        Command::Webhook(command) => webhook::run(open().await?, command).await?,
        Command::Publish => {
            let storage = open().await?;
            let summary = storage.publish(jiff::Timestamp::now(), None).await?.unwrap_or_default();
            // Delivered by a running server.
            crate::webhooks::publication_completed(storage.as_ref(), &summary).await;
            println!("published {} bins ({} store-days recomputed)", summary.bins, summary.periods);
        }
        Command::Serve(args) => {
            let settings = Settings::resolve(&args.settings, database.clone())?;
            telemetry::init(settings.log_format);
            serve(settings, args.demo).await?
        }
        Command::Config(ConfigCommand::Show(args)) => {
            print!("{}", Settings::resolve(&args, database.clone())?.to_toml())
        }
        Command::Completions { shell } => packaging::print_completions(shell)?,
        Command::Manpages { dir } => packaging::write_manpages(&dir)?,
        Command::Demo(args) => {
            let storage = open().await?;
            let credentials = demo::create(storage.as_ref(), args.days, jiff::Timestamp::now()).await?;
            println!("demo data created: user {} password {}", credentials.username, credentials.password);
        }
    }
    Ok(())
}

fn parse_timezone(timezone: &str) -> anyhow::Result<()> {
    jiff::tz::TimeZone::get(timezone).with_context(|| format!("--timezone: unknown time zone {timezone:?}"))?;
    Ok(())
}

/// Opening hours from `--hours`; the error names what is wrong.
fn parse_hours(text: &str) -> anyhow::Result<OpeningHours> {
    text.parse::<OpeningHours>().map_err(|error| anyhow::anyhow!("--hours: {error}"))
}

fn parse_reset(text: &str) -> anyhow::Result<ResetTime> {
    text.parse().map_err(|e: String| anyhow::anyhow!("--occupancy-reset: {e}"))
}

/// A whole minute, UTC unless the text has an offset; a time within a minute is refused rather than
/// rounded, as it would be ambiguous which minute it means.
fn parse_minute(flag: &str, text: &str) -> anyhow::Result<Minute> {
    let at = crate::domain::time::parse_instant(text).with_context(|| format!("{flag}: {text:?} is not a datetime"))?;
    let minute = Minute::last_at_or_before(at);
    anyhow::ensure!(minute.timestamp() == at, "{flag}: {text:?} is not the start of a minute (seconds must be 0)");
    Ok(minute)
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("reading the password from stdin")?;
    if password.ends_with('\n') {
        password.pop();
        if password.ends_with('\r') {
            password.pop();
        }
    }
    if password.is_empty() {
        bail!("the password read from stdin is empty");
    }
    Ok(password)
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let mut temporary_dir = None;
    let url = match (&settings.database, demo) {
        (Some(url), _) => url.clone(),
        (None, true) => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("demo.db").display());
            temporary_dir = Some(dir);
            url
        }
        (None, false) => settings.database_url().to_owned(),
    };
    let storage: Arc<dyn Storage> = storage::open(&url).await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let address = listener.local_addr()?;
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    let metrics_listener = match &settings.metrics_listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen} (--metrics-listen)"))?,
        ),
        None => None,
    };
    if demo {
        eprintln!("creating demo data in {url} ...");
        let credentials = demo::create(storage.as_ref(), 7, jiff::Timestamp::now()).await?;
        let now = jiff::Timestamp::now();
        let from = now - jiff::SignedDuration::from_hours(24);
        println!("footfall is serving demo data on {scheme}://{address}/");
        println!("  user: {}  password: {}", credentials.username, credentials.password);
        println!("  API reference: {scheme}://{address}/api/docs");
        println!("  try:");
        println!(
            "  curl -u '{}:{}' '{scheme}://{address}/api/bi/acquisition-metrics/visits/?store_code={}&datetime_gte={}&datetime_lte={}&page_size=5'{}",
            credentials.username,
            credentials.password,
            demo::ATHENS_STORE,
            from.strftime("%Y-%m-%dT%H:%M:%SZ"),
            now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            if scheme == "https" { " --insecure" } else { "" },
        );
    } else {
        println!("footfall is serving {url} on {scheme}://{address}/ (API reference: {scheme}://{address}/api/docs)");
    }
    if let Some(metrics) = &metrics_listener {
        println!("  Prometheus metrics: http://{}/metrics", metrics.local_addr()?);
    }
    let config = app::ServerConfig::from_settings(&settings);
    let result = app::serve_with_metrics(storage, listener, metrics_listener, config, app::shutdown_signal()).await;
    drop(temporary_dir);
    result
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed_and_every_default_parses() {
        Cli::command().debug_assert();
        for args in [&["footfall", "serve"][..], &["footfall", "demo"], &["footfall", "config", "show"]] {
            Cli::try_parse_from(args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
        }
        let error = Cli::try_parse_from(["footfall", "user", "add", "x", "--password-stdin"]).unwrap_err();
        let error = error.to_string();
        assert!(
            error.contains("--all-stores") && error.contains("--stores <CODE,...>"),
            "a user needs a scope: {error}"
        );
    }

    #[test]
    fn every_argument_has_help_and_every_command_an_example() {
        fn walk(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let help = arg.get_help().or(arg.get_long_help()).map(ToString::to_string).unwrap_or_default();
                if help.trim().is_empty() {
                    problems.push(format!("{path}: {} has no help", arg.get_id()));
                }
            }
            let subcommands: Vec<&clap::Command> =
                command.get_subcommands().filter(|sub| sub.get_name() != "help").collect();
            if subcommands.is_empty() {
                let after = command.get_after_help().or(command.get_after_long_help()).map(ToString::to_string);
                if !after.is_some_and(|text| text.starts_with("Examples:\n  footfall ") || text.contains("| footfall "))
                {
                    problems.push(format!("{path}: no \"Examples:\" section"));
                }
            }
            for sub in subcommands {
                walk(sub, &format!("{path} {}", sub.get_name()), problems);
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut problems = Vec::new();
        walk(&command, "footfall", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
