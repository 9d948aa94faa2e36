//! The `mcp-auth-server` binary: parse the settings, start logging, serve until SIGINT or
//! SIGTERM.

use std::error::Error;
use std::process::ExitCode;

use mcp_auth_server::{Config, ConfigError, serve};
use tracing_subscriber::EnvFilter;

/// Without `RUST_LOG`: our own and tower-http's request lines at info; rmcp only from warn
/// up, since at info it logs every session's client info and each session id.
const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        // clap prints --help, --version and usage errors in its own format and exit code.
        Err(ConfigError::Args(err)) => err.exit(),
        Err(err) => {
            eprintln!("mcp-auth-server: {}", report(&err));
            return ExitCode::from(2);
        }
    };
    if config.check_config {
        // `Config`'s Debug redacts passwords and database credentials.
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        // Logs go to stderr (stdout is for --check-config), with colours only on a terminal:
        // ANSI escapes in a log file or a journal are noise to every reader after us.
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .init();
    let listener = match tokio::net::TcpListener::bind(&config.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(bind = config.bind, error = %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match serve(config, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %report(&err), "mcp-auth-server stopped");
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `: `-separated.
fn report(err: &(dyn Error + 'static)) -> String {
    mcp_auth_core::ErrorChain(err).to_string()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
