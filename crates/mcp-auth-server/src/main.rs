//! The `mcp-auth-server` binary: parse the settings, start logging, serve until SIGINT or
//! SIGTERM.

use std::error::Error;
use std::process::ExitCode;

use mcp_auth_server::{Config, ConfigError, LogWriter, serve};
use tracing_subscriber::EnvFilter;

/// Without `RUST_LOG`: our own lines, the access log included, at info; rmcp only from warn
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
    if config.hash_password {
        return print_password_hash();
    }
    // Logs go to stderr (stdout is for --check-config) through a background thread, so that
    // a slow terminal or pipe never stalls a request; the guard flushes what is queued when
    // `main` returns.
    let (log_writer, _log_guard) = match LogWriter::spawn(std::io::stderr()) {
        Ok(writer) => writer,
        Err(err) => {
            eprintln!("mcp-auth-server: cannot start the log writer: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_writer(log_writer)
        // Colours only on a terminal: ANSI escapes in a log file or a journal are noise to
        // every reader after us.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // The request id without a span per request (src/log_format.rs); text or JSON.
        .event_format(config.log_format)
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

/// `--hash-password`: reads one password from stdin — without echo when stdin is a terminal —
/// and prints its argon2id PHC string, for `--user NAME:PHC`.
fn print_password_hash() -> ExitCode {
    let read = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password("password: ")
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    };
    let password = match read {
        Ok(password) => password.trim_end_matches(['\r', '\n']).to_owned(),
        Err(err) => {
            eprintln!("mcp-auth-server: cannot read the password: {err}");
            return ExitCode::FAILURE;
        }
    };
    if password.is_empty() {
        eprintln!("mcp-auth-server: the password is empty");
        return ExitCode::FAILURE;
    }
    match mcp_auth_server::hash_password(password.as_bytes()) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mcp-auth-server: cannot hash the password: {err}");
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
