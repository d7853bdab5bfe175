//! The `footfall` command line: one clap enum, one function per subcommand.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::api::auth::{hash_password, hash_token, new_device_token};
use crate::config::{self, Settings};
use crate::domain::catalog::{NewScope, NewStore, NewUser};
use crate::domain::sensors::{SensorConfig, Vendor};
use crate::domain::{DeviceId, ResetTime, StoreCode, Username};
use crate::ingest::files::ingest_files;
use crate::storage::{self, Storage};
use crate::telemetry::{self, LogFormat};
use crate::{app, demo, publish};

mod packaging;
mod prune;
mod token;

#[derive(Parser, Debug)]
#[command(name = "footfall", version, about = "People-counter metrics server")]
/// The command line: the database every subcommand works on, and the subcommand.
pub struct Cli {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://footfall.db]
    #[arg(long, env = "FOOTFALL_DATABASE_URL", global = true)]
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
    /// Ingest count bins from NDJSON (.ndjson, .jsonl, '-' for stdin) or CSV (.csv) files.
    Ingest {
        /// The files, each stored whole or not at all.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Make everything ingested so far visible through the API.
    Publish,
    /// Serve the API.
    Serve(ServeArgs),
    /// Inspect the settings of `serve`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create demo stores, devices, a user and a week of traffic, and publish it.
    Demo(DemoArgs),
    /// Take a consistent copy of the embedded store while it is in use.
    Backup {
        /// Where to write the copy.
        path: std::path::PathBuf,
    },
    /// Verify the store's integrity and that the published rollups equal the published bins.
    Check,
    /// Manage API tokens: machine clients read with a token instead of a password.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Delete old published minute data, whole store-days at a time.
    Prune(prune::PruneArgs),
    /// Print a shell completion script, e.g. `footfall completions bash > /etc/bash_completion.d/footfall`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (footfall.1 and one per subcommand) into a directory; used to build packages.
    #[command(hide = true)]
    Manpages {
        /// The directory to write them into (created if missing).
        dir: std::path::PathBuf,
    },
}

/// `footfall store`.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Add a store.
    Add {
        /// The store code, e.g. 116500.
        code: String,
        /// IANA time zone, e.g. Europe/Athens.
        #[arg(long)]
        timezone: String,
        /// A display name.
        #[arg(long)]
        name: Option<String>,
        /// Local time of day at which occupancy restarts from 0.
        #[arg(long, default_value = "00:00")]
        occupancy_reset: String,
    },
    /// List stores.
    List,
}

/// `footfall device`.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Add a device to a store and print its ingest token (alone on the last line).
    Add {
        /// The device id the sensor reports, e.g. cnt-1.
        device_id: String,
        /// The code of the store the device counts for.
        #[arg(long)]
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
    List,
    /// List serials that pushed without being registered (vendor, serial, first and last seen, pushes).
    Unknown,
    /// Issue a new ingest token (printed alone on the last line); the old one stops working.
    RotateToken {
        /// The device.
        device_id: String,
    },
    /// Remove a device: its token stops working at once; its bins stay.
    Remove {
        /// The device.
        device_id: String,
    },
}

/// `footfall occupancy`.
#[derive(Subcommand, Debug)]
pub enum OccupancyCommand {
    /// Set the occupancy at the end of a minute; later minutes continue from it until the next reset.
    Set {
        /// The store code.
        store: String,
        /// The minute (UTC unless an offset is given), e.g. 2023-10-26T12:30:00Z.
        #[arg(long)]
        at: String,
        /// The number of people inside at the end of that minute.
        #[arg(long)]
        value: u32,
    },
    /// List a store's corrections.
    Corrections {
        /// The store code.
        store: String,
    },
}

/// `footfall user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; the password is read from stdin.
    Add {
        /// The username.
        name: String,
        /// Read the password from stdin (minus one trailing newline).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The user sees every store.
        #[arg(long, conflicts_with = "stores", required_unless_present = "stores")]
        all_stores: bool,
        /// The user sees only these stores.
        #[arg(long, value_delimiter = ',')]
        stores: Vec<String>,
        /// The user may also push bins and occupancy corrections over HTTP.
        #[arg(long)]
        can_ingest: bool,
    },
    /// Set a user's password, read from stdin.
    Passwd {
        /// The username.
        name: String,
        /// Read the password from stdin (minus one trailing newline).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove a user; its credentials stop working at once.
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
    // `serve` logs in the format of its settings, known once they are resolved.
    if !matches!(cli.command, Command::Serve(_)) {
        telemetry::init(LogFormat::Text);
    }
    let open = || async { storage::open(database.as_deref().unwrap_or(config::DEFAULT_DATABASE_URL)).await };
    match cli.command {
        Command::Store(StoreCommand::Add { code, timezone, name, occupancy_reset }) => {
            let code = StoreCode::parse(&code).map_err(anyhow::Error::msg)?;
            jiff::tz::TimeZone::get(&timezone).with_context(|| format!("unknown time zone {timezone:?}"))?;
            let reset: ResetTime =
                occupancy_reset.parse().map_err(|e: String| anyhow::anyhow!("--occupancy-reset: {e}"))?;
            let name = name.unwrap_or_else(|| code.to_string());
            open().await?.add_store(NewStore { code: code.clone(), name, timezone, reset }).await?;
            println!("added store {code}");
        }
        Command::Store(StoreCommand::List) => {
            let catalog = open().await?.catalog().await?;
            println!("{:<16} {:<24} {:<32} reset", "code", "name", "timezone");
            for store in catalog.stores() {
                let zone = store.timezone.iana_name().unwrap_or("?");
                println!("{:<16} {:<24} {:<32} {}", store.code, store.name, zone, store.reset);
            }
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
                && let Some(existing) = storage.sensor_by_serial(config.vendor, &config.serial).await?
            {
                anyhow::bail!(
                    "the {} sensor {} is already device {}",
                    config.vendor,
                    config.serial,
                    existing.device_id
                );
            }
            let token = new_device_token();
            storage.add_device(device_id.clone(), store.clone(), hash_token(&token)).await?;
            if let Some(config) = sensor {
                let described = format!("{} sensor {}", config.vendor, config.serial);
                storage.add_sensor(device_id.clone(), config).await?;
                println!("added device {device_id} ({described}) to store {store}; its ingest token (shown once):");
            } else {
                println!("added device {device_id} to store {store}; its ingest token (shown once):");
            }
            println!("{token}");
        }
        Command::Device(DeviceCommand::List) => {
            let storage = open().await?;
            let devices = storage.device_statuses().await?;
            let sensors = storage.sensors().await?;
            println!(
                "{:<24} {:<16} {:<22} {:<32} {:<10} {:<20} {:<24} gaps",
                "device", "store", "last bin minute", "last seen", "vendor", "serial", "last push"
            );
            for device in devices {
                let minute = device.last_bin_minute.map_or_else(|| "-".to_owned(), |m| m.to_string());
                let seen = device.last_seen_at.map_or_else(|| "never".to_owned(), |at| at.to_string());
                let seen = if device.active { seen } else { format!("{seen} (removed)") };
                let sensor = sensors.iter().find(|s| s.device_id == device.device_id);
                let columns = sensor.map_or_else(String::new, |s| {
                    let push = s.last_push_at.map_or_else(|| "never".to_owned(), |at| at.to_string());
                    format!(" {:<10} {:<20} {:<24} {}", s.config.vendor, s.config.serial, push, s.package_gaps)
                });
                let line =
                    format!("{:<24} {:<16} {:<22} {seen:<32}{columns}", device.device_id, device.store_code, minute);
                println!("{}", line.trim_end());
            }
        }
        Command::Device(DeviceCommand::Unknown) => {
            let unknown = open().await?.unknown_sensors().await?;
            println!("{:<10} {:<24} {:<24} {:<24} pushes", "vendor", "serial", "first seen", "last seen");
            for sensor in unknown {
                println!(
                    "{:<10} {:<24} {:<24} {:<24} {}",
                    sensor.vendor,
                    sensor.serial,
                    sensor.first_seen.to_string(),
                    sensor.last_seen.to_string(),
                    sensor.pushes
                );
            }
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
            let instant =
                crate::domain::time::parse_instant(&at).with_context(|| format!("--at: {at:?} is not a datetime"))?;
            let minute = crate::domain::Minute::last_at_or_before(instant);
            let correction = crate::domain::bins::Correction { minute, value, created_at: jiff::Timestamp::now() };
            let storage = open().await?;
            storage.add_correction(store.clone(), correction).await?;
            // As for an HTTP correction: published now if the database's policy is on ingest.
            let published = publish::after_write(storage.as_ref(), jiff::Timestamp::now()).await?;
            let visible = if published { "published" } else { "visible after the next publication" };
            println!("occupancy of store {store} set to {value} at the end of minute {minute}; {visible}");
        }
        Command::Occupancy(OccupancyCommand::Corrections { store }) => {
            let store = StoreCode::parse(&store).map_err(anyhow::Error::msg)?;
            println!("{:<22} {:>6}  recorded", "minute", "value");
            for correction in open().await?.corrections(store).await? {
                println!("{:<22} {:>6}  {}", correction.minute.to_string(), correction.value, correction.created_at);
            }
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
        Command::Ingest { files } => ingest_files(open().await?.as_ref(), &files).await?,
        Command::Token(command) => token::run(open().await?, command).await?,
        Command::Prune(args) => prune::run(open().await?, args).await?,
        Command::Publish => {
            let summary = open().await?.publish(jiff::Timestamp::now(), None).await?.unwrap_or_default();
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
        assert!(error.to_string().contains("--all-stores"), "a user needs a scope: {error}");
    }
}
