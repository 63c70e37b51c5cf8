//! The command line of `triggers-loadtest` (CLI contract, "Load testing").

use std::net::SocketAddr;
use std::path::PathBuf;

/// Drives a running Triggers deployment at a fixed arrival rate (open loop), receives the webhooks
/// itself, and prints a JSON summary as the last line of standard output. The admin token comes
/// from `TRIGGERS_ADMIN_TOKEN`. Exit status 1 when an accepted event was lost.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "triggers-loadtest", version)]
pub struct Options {
    /// The public API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin_url: String,
    /// Events per second (fractions allowed), sent on schedule whether or not earlier ones answered.
    #[arg(long)]
    pub rate: f64,
    /// Seconds to send for (at most an hour).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration: u64,
    /// Size of each request body in bytes (padded in `data`; at most 1 MiB).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub event_bytes: u64,
    /// Customers to create; events go to them in turn (each is one partition key, so one shard).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub customers: u32,
    /// Keep-alive connections to the public API; each carries one request at a time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Writes report.md and latency.png into this folder.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Where the webhook receiver listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub receiver_listen: SocketAddr,
    /// The webhook URL the subscriptions use, when the deployment reaches the receiver by another
    /// address than --receiver-listen (default: http://<receiver address>/hook).
    #[arg(long)]
    pub receiver_url: Option<String>,
}

impl Options {
    /// The webhook URL for a receiver bound to `bound`: `--receiver-url`, or one built from the
    /// address, which must then be a specific one.
    pub fn webhook_url(&self, bound: SocketAddr) -> Result<String, String> {
        if let Some(url) = &self.receiver_url {
            return Ok(url.clone());
        }
        if bound.ip().is_unspecified() {
            return Err(format!(
                "--receiver-listen {} listens on every address; give --receiver-url with the one the deployment reaches",
                self.receiver_listen
            ));
        }
        Ok(format!("http://{bound}/hook"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("triggers-loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_point_at_a_local_serve() {
        let options = parse(&["--rate", "1000", "--duration", "60"]).unwrap();
        assert_eq!(options.url, "http://127.0.0.1:8080");
        assert_eq!(options.admin_url, "http://127.0.0.1:8081");
        assert_eq!((options.event_bytes, options.customers, options.connections), (256, 8, 64));
        assert_eq!(options.report_dir, None);
        let bound: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        assert_eq!(options.webhook_url(bound).unwrap(), "http://127.0.0.1:4321/hook");
    }

    #[test]
    fn refuses_what_does_not_describe_a_run() {
        for args in [
            &["--duration", "60"][..],
            &["--rate", "10"],
            &["--rate", "10", "--duration", "0"],
            &["--rate", "10", "--duration", "3601"],
            &["--rate", "10", "--duration", "1", "--connections", "0"],
            &["--rate", "10", "--duration", "1", "--customers", "0"],
            &["--rate", "10", "--duration", "1", "--event-bytes", "1048577"],
            &["--rate", "ten", "--duration", "1"],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_needs_a_receiver_url() {
        let options = parse(&["--rate", "1", "--duration", "1", "--receiver-listen", "0.0.0.0:9000"]).unwrap();
        let bound: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert!(options.webhook_url(bound).unwrap_err().contains("--receiver-url"));
        let options = parse(&[
            "--rate",
            "1",
            "--duration",
            "1",
            "--receiver-listen",
            "0.0.0.0:9000",
            "--receiver-url",
            "http://10.0.0.5:9000/hook",
        ])
        .unwrap();
        assert_eq!(options.webhook_url(bound).unwrap(), "http://10.0.0.5:9000/hook");
    }
}
