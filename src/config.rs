//! The settings of `footfall serve`, each with its default written once here, layered: defaults, then a
//! TOML file (`--config PATH` or `FOOTFALL_CONFIG`), then `FOOTFALL_*` environment variables, then flags.
//! clap reads the variables and flags (a flag wins over its variable); this module lays them over the file.
//! The one exception is the metrics token: a secret has no flag (flags show in `ps`), so it comes from the
//! file or [`METRICS_TOKEN_ENV`] only.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::ValueEnum;
use ipnet::IpNet;

use crate::forwarded::TrustedProxies;
use crate::publish::parse_interval;
use crate::telemetry::LogFormat;

/// Failed sign-ins allowed per username within a minute before it is throttled (an address gets four
/// times as many).
pub const DEFAULT_FAILURES_PER_MINUTE: u32 = 5;

/// The database of every command when none is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://footfall.db";
/// The largest request head (request line and headers) read into memory; not a setting.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long shutdown waits for in-flight requests; not a setting.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest query string accepted; not a setting.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The variable of `metrics.token`.
pub const METRICS_TOKEN_ENV: &str = "FOOTFALL_METRICS_TOKEN";
/// The shortest metrics token accepted: `/metrics` has no sign-in throttle, so a token must not be guessable.
const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// The flags of the settings, each also read from its `FOOTFALL_*` variable. Unset ones fall back to the
/// file, then to the defaults (`footfall config show` prints the effective values).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct SettingsArgs {
    /// A TOML file of settings, with the keys `footfall config show` prints.
    #[arg(long, env = "FOOTFALL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, env = "FOOTFALL_LISTEN")]
    pub listen: Option<String>,
    /// How often ingested data becomes visible (15m, 1h, 30s; 0 = at once).
    #[arg(long, env = "FOOTFALL_PUBLISH_INTERVAL", value_parser = parse_interval)]
    pub publish_interval: Option<Duration>,
    /// Subscribe to device bins on this MQTT broker: mqtt://HOST:PORT[?client_id=ID].
    #[arg(long, env = "FOOTFALL_MQTT")]
    pub mqtt: Option<String>,
    /// The largest ingest request body accepted, in bytes.
    #[arg(long, env = "FOOTFALL_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "FOOTFALL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "FOOTFALL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Concurrent connections accepted; more get a 503 and are closed.
    #[arg(long, env = "FOOTFALL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Time a client has to send a request's headers (or finish a TLS handshake).
    #[arg(long, env = "FOOTFALL_HEADER_TIMEOUT", value_parser = parse_interval)]
    pub header_timeout: Option<Duration>,
    /// The longest a request may take, body included.
    #[arg(long, env = "FOOTFALL_REQUEST_TIMEOUT", value_parser = parse_interval)]
    pub request_timeout: Option<Duration>,
    /// Failed sign-ins per username and minute before it is throttled (429); an address may fail four
    /// times as often.
    #[arg(long, env = "FOOTFALL_AUTH_FAILURES_PER_MINUTE")]
    pub auth_failures_per_minute: Option<u32>,
    /// A reverse proxy or load balancer (address or network, e.g. 10.0.0.0/8; repeatable, or
    /// comma-separated) whose X-Forwarded-For, -Proto and -Host headers give the client's address,
    /// scheme and host.
    #[arg(long = "trusted-proxy", value_name = "ADDRESS", env = "FOOTFALL_TRUSTED_PROXIES", value_delimiter = ',', value_parser = TrustedProxies::parse_network)]
    pub trusted_proxies: Vec<IpNet>,
    /// The request log and other logs on stderr: text, or one JSON object per line.
    #[arg(long, env = "FOOTFALL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Delete published minute data older than this many days, whole store-days, at start and then
    /// daily (unset: keep it forever).
    #[arg(long, env = "FOOTFALL_RETENTION_MINUTE_DAYS", value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_minute_days: Option<u32>,
    /// Also serve Prometheus metrics (GET /metrics, and nothing else, without authentication) on this
    /// address, e.g. 127.0.0.1:9464; keep it off public networks.
    #[arg(long, env = "FOOTFALL_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// A web origin whose pages may call the API from a browser (CORS), e.g. https://bi.example.com
    /// (repeatable, or comma-separated); none by default.
    #[arg(long = "cors-allowed-origin", value_name = "ORIGIN", env = "FOOTFALL_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<String>,
    /// Bytes of rendered read pages kept in memory, answered again without a query until the next
    /// publication (0: no cache).
    #[arg(long, env = "FOOTFALL_RESPONSE_CACHE_BYTES", value_name = "BYTES")]
    pub response_cache_bytes: Option<u64>,
}

/// The bearer token that opens `GET /metrics` on the main listener. Never printed (its `Debug` is
/// redacted) and compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Validates a token: at least 16 characters, no whitespace (it travels in an HTTP header).
    pub fn new(token: &str) -> Result<MetricsToken, String> {
        if token.chars().count() < MIN_METRICS_TOKEN_CHARS {
            return Err(format!("the metrics token must have at least {MIN_METRICS_TOKEN_CHARS} characters"));
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err("the metrics token must be printable ASCII without spaces".to_owned());
        }
        Ok(MetricsToken(token.to_owned()))
    }

    /// The token itself, for a client that must send it (the benchmark); never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), presented.as_bytes()))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MetricsToken(***)")
    }
}

/// The effective settings of `serve`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The database given by `--database`, `FOOTFALL_DATABASE_URL` or the file; see [`Settings::database_url`].
    pub database: Option<String>,
    /// The address to listen on.
    pub listen: String,
    /// How often ingested data is published; zero publishes it as soon as it is asked for.
    pub publish_interval: Duration,
    /// An MQTT broker to subscribe to for device bins.
    pub mqtt: Option<String>,
    /// The largest ingest request body accepted.
    pub max_body_bytes: usize,
    /// PEM certificate chain and private key: serve HTTPS (both or neither).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Concurrent connections accepted.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers (and to finish a TLS handshake).
    pub header_timeout: Duration,
    /// The longest a request may take, body included.
    pub request_timeout: Duration,
    /// Failed sign-ins per username and minute before throttling.
    pub auth_failures_per_minute: u32,
    /// Proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The format of the logs on stderr.
    pub log_format: LogFormat,
    /// Days of published minute data kept; `None`: all of it.
    pub retention_minute_days: Option<u32>,
    /// Also serve `/metrics` alone, without authentication, on this address.
    pub metrics_listen: Option<String>,
    /// The bearer token that opens `/metrics` on the main listener.
    pub metrics_token: Option<MetricsToken>,
    /// Origins allowed to call the API from a browser (CORS); empty: CORS is off.
    pub cors_allowed_origins: Vec<String>,
    /// Bytes of rendered read pages kept; 0: none.
    pub response_cache_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database: None,
            listen: "127.0.0.1:8000".to_owned(),
            publish_interval: Duration::from_secs(15 * 60),
            mqtt: None,
            max_body_bytes: 8 << 20,
            tls: None,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            auth_failures_per_minute: DEFAULT_FAILURES_PER_MINUTE,
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Text,
            retention_minute_days: None,
            metrics_listen: None,
            metrics_token: None,
            cors_allowed_origins: Vec::new(),
            response_cache_bytes: 64 << 20,
        }
    }
}

/// The keys of the file, in the order `config show` prints them.
const KEYS: [&str; 18] = [
    "database_url",
    "listen",
    "publish_interval",
    "mqtt",
    "max_body_bytes",
    "tls_cert",
    "tls_key",
    "max_connections",
    "header_timeout",
    "request_timeout",
    "auth_failures_per_minute",
    "trusted_proxies",
    "log_format",
    "retention.minute_days",
    "metrics.listen",
    "metrics.token",
    "cors.allowed_origins",
    "cache.response_bytes",
];

impl Settings {
    /// Lays the file named by `args` (if any), then `args` (flags and variables, read by clap) over the
    /// defaults. `database` is the global `--database` / `FOOTFALL_DATABASE_URL`.
    pub fn resolve(args: &SettingsArgs, database: Option<String>) -> anyhow::Result<Settings> {
        let mut settings = Settings::default();
        let (mut tls_cert, mut tls_key) = (None, None);
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let table: toml::Table = text.parse().map_err(|error| anyhow!("{}: {error}", path.display()))?;
            for (key, value) in dotted_entries(&table, path)? {
                let entry = Entry { file: path, key: &key, value };
                match key.as_str() {
                    "database_url" => settings.database = Some(entry.string()?),
                    "listen" => settings.listen = entry.string()?,
                    "publish_interval" => settings.publish_interval = entry.interval()?,
                    "mqtt" => settings.mqtt = Some(entry.string()?),
                    "max_body_bytes" => settings.max_body_bytes = entry.count()?,
                    "tls_cert" => tls_cert = Some(PathBuf::from(entry.string()?)),
                    "tls_key" => tls_key = Some(PathBuf::from(entry.string()?)),
                    "max_connections" => settings.max_connections = entry.count()?,
                    "header_timeout" => settings.header_timeout = entry.interval()?,
                    "request_timeout" => settings.request_timeout = entry.interval()?,
                    "auth_failures_per_minute" => settings.auth_failures_per_minute = entry.count()?,
                    "trusted_proxies" => settings.trusted_proxies = entry.networks()?,
                    "log_format" => {
                        settings.log_format =
                            LogFormat::from_str(&entry.string()?, false).map_err(|_| entry.error("not text or json"))?
                    }
                    "retention.minute_days" => settings.retention_minute_days = Some(entry.days()?),
                    "metrics.listen" => settings.metrics_listen = Some(entry.string()?),
                    "metrics.token" => {
                        settings.metrics_token = Some(MetricsToken::new(&entry.string()?).map_err(|e| entry.error(e))?)
                    }
                    "cors.allowed_origins" => settings.cors_allowed_origins = entry.list(parse_origin)?,
                    "cache.response_bytes" => settings.response_cache_bytes = entry.count()?,
                    _ => bail!("{}: unknown key `{key}` (the keys are {})", path.display(), KEYS.join(", ")),
                }
            }
        }
        if let Some(database) = database {
            settings.database = Some(database);
        }
        let a = args.clone();
        settings.listen = a.listen.unwrap_or(settings.listen);
        settings.publish_interval = a.publish_interval.unwrap_or(settings.publish_interval);
        settings.mqtt = a.mqtt.or(settings.mqtt);
        settings.max_body_bytes = a.max_body_bytes.unwrap_or(settings.max_body_bytes);
        settings.max_connections = a.max_connections.unwrap_or(settings.max_connections);
        settings.header_timeout = a.header_timeout.unwrap_or(settings.header_timeout);
        settings.request_timeout = a.request_timeout.unwrap_or(settings.request_timeout);
        settings.auth_failures_per_minute = a.auth_failures_per_minute.unwrap_or(settings.auth_failures_per_minute);
        if !a.trusted_proxies.is_empty() {
            settings.trusted_proxies = a.trusted_proxies;
        }
        settings.log_format = a.log_format.unwrap_or(settings.log_format);
        settings.retention_minute_days = a.retention_minute_days.or(settings.retention_minute_days);
        settings.metrics_listen = a.metrics_listen.or(settings.metrics_listen);
        if let Ok(token) = std::env::var(METRICS_TOKEN_ENV) {
            settings.metrics_token = Some(MetricsToken::new(&token).map_err(|e| anyhow!("{METRICS_TOKEN_ENV}: {e}"))?);
        }
        if !a.cors_allowed_origins.is_empty() {
            settings.cors_allowed_origins = a.cors_allowed_origins;
        }
        settings.response_cache_bytes = a.response_cache_bytes.unwrap_or(settings.response_cache_bytes);
        settings.tls = match (a.tls_cert.or(tls_cert), a.tls_key.or(tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key (tls_cert and tls_key) go together"),
        };
        Ok(settings)
    }

    /// The database URL to open: the one given, or the default.
    pub fn database_url(&self) -> &str {
        self.database.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The settings as a TOML file `--config` accepts, with passwords and tokens in URLs, and the
    /// metrics token, redacted.
    pub fn to_toml(&self) -> String {
        let string = |text: &str| toml::Value::String(text.to_owned()).to_string();
        let path = |path: &Path| string(&path.display().to_string());
        let interval = |duration: Duration| string(&format_interval(duration));
        let mut out = String::from("# footfall serve: defaults < this file < FOOTFALL_* variables < flags\n");
        let mut line = |key: &str, value: Option<String>| match value {
            Some(value) => out.push_str(&format!("{key} = {value}\n")),
            None => out.push_str(&format!("# {key} is not set\n")),
        };
        line("database_url", Some(string(&redact_url(self.database_url()))));
        line("listen", Some(string(&self.listen)));
        line("publish_interval", Some(interval(self.publish_interval)));
        line("mqtt", self.mqtt.as_deref().map(|url| string(&redact_url(url))));
        line("max_body_bytes", Some(self.max_body_bytes.to_string()));
        line("tls_cert", self.tls.as_ref().map(|(cert, _)| path(cert)));
        line("tls_key", self.tls.as_ref().map(|(_, key)| path(key)));
        line("max_connections", Some(self.max_connections.to_string()));
        line("header_timeout", Some(interval(self.header_timeout)));
        line("request_timeout", Some(interval(self.request_timeout)));
        line("auth_failures_per_minute", Some(self.auth_failures_per_minute.to_string()));
        let proxies: Vec<String> = self.trusted_proxies.iter().map(|network| string(&network.to_string())).collect();
        line("trusted_proxies", Some(format!("[{}]", proxies.join(", "))));
        line("log_format", Some(string(self.log_format.name())));
        line("retention.minute_days", self.retention_minute_days.map(|days| days.to_string()));
        line("metrics.listen", self.metrics_listen.as_deref().map(string));
        line("metrics.token", self.metrics_token.as_ref().map(|_| string(HIDDEN)));
        let origins: Vec<String> = self.cors_allowed_origins.iter().map(|origin| string(origin)).collect();
        line("cors.allowed_origins", Some(format!("[{}]", origins.join(", "))));
        line("cache.response_bytes", Some(self.response_cache_bytes.to_string()));
        out
    }
}

/// One `key = value` of the file, for values and errors that name the file, the key and the value.
/// The file's keys with those of its sections (`[retention]`, `[metrics]`, `[cors]`) spelt as in [`KEYS`]
/// (`retention.minute_days`), so one match reads them all; a section that is not a table is an error.
fn dotted_entries<'a>(table: &'a toml::Table, file: &Path) -> anyhow::Result<Vec<(String, &'a toml::Value)>> {
    let mut entries = Vec::new();
    for (key, value) in table {
        if KEYS.iter().any(|known| known.strip_prefix(key.as_str()).is_some_and(|rest| rest.starts_with('.'))) {
            let section = value
                .as_table()
                .ok_or_else(|| Entry { file, key, value }.error(format_args!("expected a table ([{key}])")))?;
            entries.extend(section.iter().map(|(name, value)| (format!("{key}.{name}"), value)));
        } else {
            entries.push((key.clone(), value));
        }
    }
    Ok(entries)
}

struct Entry<'a> {
    file: &'a Path,
    key: &'a str,
    value: &'a toml::Value,
}

impl Entry<'_> {
    fn error(&self, reason: impl Display) -> anyhow::Error {
        anyhow!("{}: {} = {}: {reason}", self.file.display(), self.key, self.value)
    }

    fn string(&self) -> anyhow::Result<String> {
        self.value.as_str().map(str::to_owned).ok_or_else(|| self.error("expected a string"))
    }

    fn count<T: TryFrom<i64>>(&self) -> anyhow::Result<T> {
        let integer = self.value.as_integer().ok_or_else(|| self.error("expected a whole number"))?;
        T::try_from(integer).map_err(|_| self.error("out of range"))
    }

    /// A whole number of days, at least 1.
    fn days(&self) -> anyhow::Result<u32> {
        match self.count::<u32>()? {
            0 => Err(self.error("must be at least 1 (leave it unset to keep minute data forever)")),
            days => Ok(days),
        }
    }

    /// `"15m"`, `"30s"`, `"1h"`, `"0"`, or a number of seconds.
    fn interval(&self) -> anyhow::Result<Duration> {
        match self.value {
            toml::Value::Integer(seconds) => {
                u64::try_from(*seconds).map(Duration::from_secs).map_err(|_| self.error("out of range"))
            }
            toml::Value::String(text) => parse_interval(text).map_err(|reason| self.error(reason)),
            _ => Err(self.error("expected an interval like \"15m\"")),
        }
    }

    fn networks(&self) -> anyhow::Result<Vec<IpNet>> {
        self.list(TrustedProxies::parse_network)
    }

    /// A list of strings, each read by `parse`.
    fn list<T>(&self, parse: impl Fn(&str) -> Result<T, String>) -> anyhow::Result<Vec<T>> {
        let items = self.value.as_array().ok_or_else(|| self.error("expected a list of strings"))?;
        items
            .iter()
            .map(|item| {
                let text = item.as_str().ok_or_else(|| self.error("expected a list of strings"))?;
                parse(text).map_err(|reason| self.error(reason))
            })
            .collect()
    }
}

/// The shortest form [`parse_interval`] reads back: `15m`, `1h`, `30s`, `0`.
fn format_interval(duration: Duration) -> String {
    match duration.as_secs() {
        0 => "0".to_owned(),
        seconds if seconds % 3600 == 0 => format!("{}h", seconds / 3600),
        seconds if seconds % 60 == 0 => format!("{}m", seconds / 60),
        seconds => format!("{seconds}s"),
    }
}

/// What a redacted secret shows instead.
const HIDDEN: &str = "***";
/// A CORS origin as browsers send it in `Origin`: `scheme://host[:port]`, lowercased, without a trailing
/// slash, so that it compares equal. `*` is refused: answers allow credentials, so origins are named.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let valid = match origin.split_once("://") {
        Some(("http" | "https", authority)) => {
            !authority.is_empty()
                && authority.bytes().all(|byte| byte.is_ascii_graphic())
                && !authority.contains(['/', '?', '#', '@', '*'])
        }
        _ => false,
    };
    if valid {
        Ok(origin)
    } else {
        Err(format!("{text:?} is not an origin: scheme, host and port only, e.g. https://bi.example.com"))
    }
}

/// Hides the password of a URL's user part and the values of query parameters that hold secrets
/// (`password`, `token`, `secret`, `key`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:{HIDDEN}@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_name(name) => format!("{name}={HIDDEN}"),
                    _ => pair.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "token", "secret", "key"].iter().any(|secret| name.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/footfall"), "postgres://app:***@db:5432/footfall");
        assert_eq!(
            redact_url("postgres://app@db/footfall?password=x&sslmode=require"),
            "postgres://app@db/footfall?password=***&sslmode=require"
        );
        assert_eq!(redact_url("mqtt://broker:1883?client_id=a&token=t"), "mqtt://broker:1883?client_id=a&token=***");
        assert_eq!(redact_url("sqlite://footfall.db"), "sqlite://footfall.db");
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them_and_others_refused() {
        assert_eq!(parse_origin("https://BI.example.com/").as_deref(), Ok("https://bi.example.com"));
        assert_eq!(parse_origin("http://localhost:3000").as_deref(), Ok("http://localhost:3000"));
        for bad in ["*", "bi.example.com", "https://", "https://bi.example.com/app", "ftp://x", "https://a b"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_print_in_a_form_they_parse_back_from() {
        for seconds in [0, 1, 59, 60, 90, 900, 3600, 7200, 5400] {
            let duration = Duration::from_secs(seconds);
            assert_eq!(parse_interval(&format_interval(duration)), Ok(duration), "{seconds} s");
        }
    }
}
