//! Configuration: flags, then `TRIGGERS_*` environment variables, then `--config <file.toml>`,
//! then defaults. clap reads the first two; the file fills only what they left unset.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use triggers_ingest::ConnectionLimits;
use triggers_stream_consumer::config::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_FAILOVER_TIME, DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRY_SCHEDULE, DEFAULT_WORKER_ID,
};

/// Which adapters the process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Everything in one embedded database under `--data-dir`.
    Embedded,
    /// Kinesis, DynamoDB, SQS, CloudWatch, PostgreSQL and Redis.
    Aws,
}

/// The options every running command shares. Each is optional here so that an unset one can be
/// filled from the config file before falling back to its default.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunOptions {
    /// Adapters to use: embedded (default) or aws.
    #[arg(long, env = "TRIGGERS_BACKEND", value_enum)]
    pub backend: Option<Backend>,
    /// Where the embedded backend keeps its data (default ./triggers-data).
    #[arg(long, env = "TRIGGERS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The public API's address (default 127.0.0.1:8080).
    #[arg(long, env = "TRIGGERS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The admin API's address (default 127.0.0.1:8081).
    #[arg(long, env = "TRIGGERS_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Shard count when the stream is first created (default 4).
    #[arg(long, env = "TRIGGERS_SHARDS")]
    pub shards: Option<u32>,
    /// Delays before each retry, e.g. 5s,30s,2m (default 5s,30s,2m,10m,30m,1h,3h,6h).
    #[arg(long, env = "TRIGGERS_RETRY_SCHEDULE")]
    pub retry_schedule: Option<String>,
    /// How long one delivery attempt may take (default 10s).
    #[arg(long, env = "TRIGGERS_ATTEMPT_TIMEOUT")]
    pub attempt_timeout: Option<String>,
    /// How long a lease lives without renewal before another consumer may take it (default 10s).
    #[arg(long, env = "TRIGGERS_FAILOVER_TIME")]
    pub failover_time: Option<String>,
    /// The longest Retry-After from an endpoint that is honoured; longer counts as this (default 1h).
    #[arg(long, env = "TRIGGERS_MAX_RETRY_AFTER")]
    pub max_retry_after: Option<String>,
    /// Whether webhook URLs may point at loopback or private addresses (default: true when embedded).
    #[arg(long, env = "TRIGGERS_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: Option<bool>,
    /// The admin API's bearer token; generated into <data-dir>/admin-token when unset (embedded).
    #[arg(long, env = "TRIGGERS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// This consumer's name in the lease table (default: "local" when embedded, host-pid otherwise).
    #[arg(long, env = "TRIGGERS_WORKER_ID")]
    pub worker_id: Option<String>,
    /// The Kinesis stream (aws; default triggers-events).
    #[arg(long, env = "TRIGGERS_STREAM_NAME")]
    pub stream_name: Option<String>,
    /// The most open connections per listener; beyond it the listener stops accepting until one
    /// closes (default 10000).
    #[arg(long, env = "TRIGGERS_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
}

/// Resolved settings with every default applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which adapters to use.
    pub backend: Backend,
    /// The embedded backend's directory.
    pub data_dir: PathBuf,
    /// The public API's address.
    pub listen: SocketAddr,
    /// The admin API's address.
    pub admin_listen: SocketAddr,
    /// Shards at stream creation.
    pub shards: u32,
    /// Retry delays.
    pub retry_schedule: Vec<Duration>,
    /// Attempt timeout.
    pub attempt_timeout: Duration,
    /// Lease failover time.
    pub failover_time: Duration,
    /// The cap on an endpoint's Retry-After.
    pub max_retry_after: Duration,
    /// Whether private webhook addresses are allowed.
    pub allow_private_webhooks: bool,
    /// The admin token, if configured.
    pub admin_token: Option<String>,
    /// The consumer's worker id.
    pub worker_id: String,
    /// The Kinesis stream name.
    pub stream_name: String,
    /// The listeners' connection cap and deadlines (only the cap has a flag; the deadlines are the
    /// contract's).
    pub connections: ConnectionLimits,
}

impl RunOptions {
    /// Fills unset options from the config file at `path`, if given.
    pub fn with_config_file(self, path: Option<&PathBuf>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(self) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        let file: RunOptions =
            toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?;
        Ok(Self {
            backend: self.backend.or(file.backend),
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            admin_listen: self.admin_listen.or(file.admin_listen),
            shards: self.shards.or(file.shards),
            retry_schedule: self.retry_schedule.or(file.retry_schedule),
            attempt_timeout: self.attempt_timeout.or(file.attempt_timeout),
            failover_time: self.failover_time.or(file.failover_time),
            max_retry_after: self.max_retry_after.or(file.max_retry_after),
            allow_private_webhooks: self.allow_private_webhooks.or(file.allow_private_webhooks),
            admin_token: self.admin_token.or(file.admin_token),
            worker_id: self.worker_id.or(file.worker_id),
            stream_name: self.stream_name.or(file.stream_name),
            max_connections: self.max_connections.or(file.max_connections),
        })
    }

    /// Applies the defaults and checks every value.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let backend = self.backend.unwrap_or(Backend::Embedded);
        let embedded = backend == Backend::Embedded;
        let shards = self.shards.unwrap_or(4);
        if !(1..=1024).contains(&shards) {
            bail!("--shards must be from 1 to 1024, not {shards}");
        }
        let retry_schedule = match self.retry_schedule.as_deref() {
            Some(text) => parse_schedule(text).context("--retry-schedule")?,
            None => DEFAULT_RETRY_SCHEDULE.to_vec(),
        };
        let attempt_timeout =
            duration_or("--attempt-timeout", self.attempt_timeout.as_deref(), DEFAULT_ATTEMPT_TIMEOUT)?;
        let failover_time = duration_or("--failover-time", self.failover_time.as_deref(), DEFAULT_FAILOVER_TIME)?;
        let max_retry_after =
            duration_or("--max-retry-after", self.max_retry_after.as_deref(), DEFAULT_MAX_RETRY_AFTER)?;
        if attempt_timeout.is_zero() {
            bail!("--attempt-timeout must be longer than 0s");
        }
        if failover_time < Duration::from_millis(300) {
            bail!("--failover-time must be at least 300ms");
        }
        let max_connections = self.max_connections.unwrap_or(ConnectionLimits::DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        let worker_id = self.worker_id.unwrap_or_else(|| {
            if embedded {
                DEFAULT_WORKER_ID.to_owned()
            } else {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "consumer".into());
                format!("{host}-{}-{}", std::process::id(), hex::encode(rand::random::<[u8; 3]>()))
            }
        });
        Ok(Settings {
            backend,
            data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from("triggers-data")),
            listen: self.listen.unwrap_or_else(|| "127.0.0.1:8080".parse().expect("address")),
            admin_listen: self.admin_listen.unwrap_or_else(|| "127.0.0.1:8081".parse().expect("address")),
            shards,
            retry_schedule,
            attempt_timeout,
            failover_time,
            max_retry_after,
            allow_private_webhooks: self.allow_private_webhooks.unwrap_or(embedded),
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            worker_id,
            stream_name: self.stream_name.unwrap_or_else(|| "triggers-events".into()),
            connections: ConnectionLimits { max_connections, ..ConnectionLimits::default() },
        })
    }
}

/// Parses a duration such as `250ms`, `10s`, `2m`, `3h` or `1h 30m` (humantime's units).
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|error| anyhow::anyhow!("{text:?} is not a duration: {error}"))
}

/// Parses a retry schedule such as `5s,30s,2m`; an empty one means no retries.
fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_duration).collect()
}

/// The duration `flag` was given as `text`, or `default` when it was not given.
fn duration_or(flag: &str, text: Option<&str>, default: Duration) -> anyhow::Result<Duration> {
    text.map_or(Ok(default), |text| parse_duration(text).with_context(|| flag.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let settings = RunOptions::default().resolve().unwrap();
        assert_eq!(settings.backend, Backend::Embedded);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.admin_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(settings.shards, 4);
        assert_eq!(settings.retry_schedule.len(), 8);
        assert_eq!(settings.retry_schedule, DEFAULT_RETRY_SCHEDULE.to_vec());
        assert_eq!(settings.retry_schedule[7], Duration::from_secs(6 * 3600));
        assert_eq!(settings.attempt_timeout, Duration::from_secs(10));
        assert_eq!(settings.failover_time, Duration::from_secs(10));
        assert_eq!(settings.max_retry_after, Duration::from_secs(3600));
        assert!(settings.allow_private_webhooks);
        assert_eq!(settings.connections.max_connections, 10_000);
        assert_eq!(settings.connections.head_timeout, Duration::from_secs(10));
        assert_eq!(settings.connections.body_stall_timeout, Duration::from_secs(10));
        assert!(
            !RunOptions { backend: Some(Backend::Aws), ..Default::default() }.resolve().unwrap().allow_private_webhooks
        );
    }

    #[test]
    fn the_config_file_fills_only_what_flags_and_environment_left_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triggers.toml");
        std::fs::write(
            &path,
            "shards = 8\nlisten = \"127.0.0.1:9000\"\nretry-schedule = \"1s\"\nmax-connections = 50\n",
        )
        .unwrap();
        let options = RunOptions { shards: Some(2), ..Default::default() }.with_config_file(Some(&path)).unwrap();
        let settings = options.resolve().unwrap();
        assert_eq!(settings.shards, 2);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.retry_schedule, vec![Duration::from_secs(1)]);
        assert_eq!(settings.connections.max_connections, 50);
    }

    #[test]
    fn bad_values_are_explained() {
        let error = RunOptions { retry_schedule: Some("5x".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(error.to_string().contains("--retry-schedule"));
        let error = RunOptions { shards: Some(0), ..Default::default() }.resolve().unwrap_err();
        assert!(error.to_string().contains("--shards"));
        let error = RunOptions { max_connections: Some(0), ..Default::default() }.resolve().unwrap_err();
        assert!(error.to_string().contains("--max-connections"));
        let error = RunOptions { max_retry_after: Some("forever".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{error:#}").contains("--max-retry-after"), "{error:#}");
        assert!(format!("{error:#}").contains("\"forever\""), "{error:#}");
        let error = RunOptions { attempt_timeout: Some("0s".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(error.to_string().contains("--attempt-timeout"));
    }

    #[test]
    fn durations_take_every_usual_unit() {
        let options = RunOptions {
            retry_schedule: Some("250ms, 2m,1h 30m".into()),
            attempt_timeout: Some("1500ms".into()),
            max_retry_after: Some("90s".into()),
            ..Default::default()
        };
        let settings = options.resolve().unwrap();
        assert_eq!(
            settings.retry_schedule,
            vec![Duration::from_millis(250), Duration::from_secs(120), Duration::from_secs(5400)]
        );
        assert_eq!(settings.attempt_timeout, Duration::from_millis(1500));
        assert_eq!(settings.max_retry_after, Duration::from_secs(90));
        let none = RunOptions { retry_schedule: Some(String::new()), ..Default::default() }.resolve().unwrap();
        assert!(none.retry_schedule.is_empty());
        assert!(RunOptions { retry_schedule: Some("5".into()), ..Default::default() }.resolve().is_err());
    }
}
