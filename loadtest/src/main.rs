//! `triggers-loadtest`: parses the command line, runs the load test, prints the summary.
//! Exit status: 0, or 1 when an accepted event was lost or the run failed, 2 on bad usage.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use triggers_loadtest::{LoadtestError, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TRIGGERS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Only from the environment, never a flag, so that the token stays out of process listings.
    let Ok(admin_token) = std::env::var("TRIGGERS_ADMIN_TOKEN") else {
        eprintln!("error: TRIGGERS_ADMIN_TOKEN is not set (the deployment's admin token)");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let interrupt = CancellationToken::new();
    let outcome = runtime.block_on(async {
        let on_signal = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("interrupted: no more events will be sent; waiting for the ones already sent");
                on_signal.cancel();
            }
        });
        triggers_loadtest::run(&options, &admin_token, interrupt).await
    });
    match outcome {
        Ok(outcome) => {
            // The contract's summary: one JSON object, the last line of standard output.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", outcome.summary.to_json_line());
            }
            if outcome.summary.lost > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(error @ LoadtestError::Usage(_)) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
