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
    if let Some(command) = &config.command {
        // Audit events (user added, grants revoked, …) go to stderr like the server's logs.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| EnvFilter::new("warn,mcp_auth::audit=info")),
            )
            .init();
        return run_command(&config, command).await;
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

/// Reads one password from stdin: without echo, and asked twice when `confirm`, on a
/// terminal; else the first line (without its line ending).
fn read_password(confirm: bool) -> Result<String, String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("password: ").map_err(|err| err.to_string())?;
        if confirm {
            let again = rpassword::prompt_password("again: ").map_err(|err| err.to_string())?;
            if again != first {
                return Err("the passwords differ".to_owned());
            }
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|err| err.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `--hash-password`: reads one password from stdin — without echo when stdin is a terminal —
/// and prints its argon2id PHC string, for `--user NAME:PHC`.
fn print_password_hash() -> ExitCode {
    let password = match read_password(false) {
        Ok(password) => password,
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

/// `user`, `client` or `grant`: runs the command on the configured store, its report on
/// stdout, errors on stderr; exit status 1 when what it names does not exist, 2 on other
/// failures.
async fn run_command(config: &Config, command: &mcp_auth_server::config::AdminCommand) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match mcp_auth_server::run_admin(config, command, || read_password(true), &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mcp-auth-server: {}", report(&err));
            match err {
                mcp_auth_server::AdminError::Missing(_) => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
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
