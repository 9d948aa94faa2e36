//! The PostgreSQL and Redis servers that `cargo xtask test` starts, as test code sees them.
//!
//! `cargo xtask test` starts one private PostgreSQL and one private Redis server, both on
//! 127.0.0.1 with their files in a fresh temporary directory, runs the suites with the
//! variables below set, then stops both servers and deletes the directory. For a single test by
//! hand, `cargo xtask services` starts the same servers and prints `export` lines; paste them
//! into a shell and run `cargo nextest run -E 'test(=name)'` there.
//!
//! | Variable | Value |
//! | --- | --- |
//! | `MCP_AUTH_TEST_POSTGRES_URL` | `postgres://postgres@127.0.0.1:PORT/postgres`: a superuser, trust authentication |
//! | `MCP_AUTH_TEST_REDIS_URL` | `redis://127.0.0.1:PORT` |
//! | `MCP_AUTH_TEST_PG_CTL` | the server's `pg_ctl` |
//! | `MCP_AUTH_TEST_PG_DATA` | its data directory, whose `postgresql.conf` holds port, listen address and socket directory |
//! | `MCP_AUTH_TEST_PG_RUN_AS` | the user to run `pg_ctl` as: `postgres` when the tests run as root (PostgreSQL refuses to run as root), empty otherwise |
//! | `MCP_AUTH_TEST_REDIS_SERVER` | the `redis-server` command line, shell-quoted, without `--daemonize` |
//!
//! A test that finds a variable unset panics with a message naming `cargo xtask test`: tests
//! are never skipped.
//!
//! # Isolation
//!
//! Every test shares the two servers, so each takes its own namespace:
//! [`fresh_postgres_database`] creates a database for it, [`unique_redis_prefix`] names a key
//! prefix no other test uses.
//!
//! # Outage tests
//!
//! [`stop_postgres`] and [`stop_redis`] take a shared server down; [`start_postgres`] and
//! [`start_redis`] bring it back on the same port, so URLs, pools and connection managers made
//! before stay valid. PostgreSQL is stopped with `pg_ctl stop -m immediate` (a crash, as far as
//! clients can tell) and restarted from its data directory, so committed data survives. Redis
//! is shut down with `SHUTDOWN NOSAVE` and restarted empty: it runs without persistence.
//! [`postgres_outage`] and [`redis_outage`] stop a server and return a guard that restarts it
//! when dropped, even when the test panics, so one failing outage test cannot fail the tests
//! after it.
//!
//! Every other test uses the same servers, so **a test that stops one must have `outage` in
//! its name**: `.config/nextest.toml` then runs it alone (the `serial-services` group, and
//! `threads-required = "num-test-threads"` so no other test runs beside it). Plain `cargo test`
//! knows nothing of that and may run it beside other tests of the same binary; run the suites
//! with `cargo xtask test`.
//!
//! These functions block (they wait for a process or a port); async tests call them directly,
//! since nothing else should progress while a server goes down or comes back.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use sqlx::{Connection, Executor, PgConnection};
use url::Url;

const POSTGRES_URL: &str = "MCP_AUTH_TEST_POSTGRES_URL";
const REDIS_URL: &str = "MCP_AUTH_TEST_REDIS_URL";
const PG_CTL: &str = "MCP_AUTH_TEST_PG_CTL";
const PG_DATA: &str = "MCP_AUTH_TEST_PG_DATA";
const PG_RUN_AS: &str = "MCP_AUTH_TEST_PG_RUN_AS";
const REDIS_SERVER: &str = "MCP_AUTH_TEST_REDIS_SERVER";

/// How long a server may take to stop or to accept connections again.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The URL of the test PostgreSQL server's `postgres` database, as a superuser.
///
/// Tests should not write to this database; use [`fresh_postgres_database`].
///
/// # Panics
///
/// If `MCP_AUTH_TEST_POSTGRES_URL` is unset, naming `cargo xtask test`, which sets it.
pub fn postgres_url() -> String {
    required_var(POSTGRES_URL)
}

/// The URL of the test Redis server.
///
/// # Panics
///
/// If `MCP_AUTH_TEST_REDIS_URL` is unset, naming `cargo xtask test`, which sets it.
pub fn redis_url() -> String {
    required_var(REDIS_URL)
}

/// Creates an empty database with a unique name (`test_<16 hex digits>`) on the test
/// PostgreSQL server and returns its URL.
///
/// # Panics
///
/// If the server's variables are unset or the server cannot be reached.
pub async fn fresh_postgres_database() -> String {
    let server = postgres_url();
    let name = format!("test_{:016x}", rand::random::<u64>());
    let mut connection = PgConnection::connect(&server).await.unwrap_or_else(|err| {
        panic!(
            "cannot connect to PostgreSQL at {server}: {err}; \
             `cargo xtask test` starts the server"
        )
    });
    // The name is `test_` and hex digits, so it needs no quoting.
    connection
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|err| panic!("cannot create database {name}: {err}"));
    // A failure to say goodbye does not matter: the database exists.
    let _ = connection.close().await;

    let mut url = parse_url(&server);
    url.set_path(&name);
    url.into()
}

/// A Redis key prefix no other test uses, ending in `:`.
pub fn unique_redis_prefix() -> String {
    format!("mcp-auth-test:{:016x}:", rand::random::<u64>())
}

/// Stops the test PostgreSQL server at once (`pg_ctl stop -m immediate`), as a crash would.
///
/// Only for tests with `outage` in their name; see the module docs. Prefer
/// [`postgres_outage`], which restarts the server however the test ends.
///
/// # Panics
///
/// If the variables are unset or `pg_ctl` fails, for instance because the server is not
/// running.
pub fn stop_postgres() {
    pg_ctl("stop", &["-m", "immediate", "-w", "-t", "60"]);
}

/// Starts the test PostgreSQL server again, on the same port, and waits until it accepts
/// connections.
///
/// # Panics
///
/// If the variables are unset, `pg_ctl` fails (for instance because the server is running)
/// or the server does not accept connections within a minute.
pub fn start_postgres() {
    let log = format!("{}/server.log", required_var(PG_DATA));
    pg_ctl("start", &["-w", "-t", "60", "-l", &log]);
    let port = port_of(&postgres_url());
    wait_until(TIMEOUT, || accepts_connections(port)).unwrap_or_else(|()| {
        panic!("PostgreSQL started but does not accept connections on port {port}; see {log}")
    });
}

/// Shuts the test Redis server down (`SHUTDOWN NOSAVE`) and waits until its port is closed.
///
/// Only for tests with `outage` in their name; see the module docs. Prefer
/// [`redis_outage`], which restarts the server however the test ends.
///
/// # Panics
///
/// If the variables are unset, Redis is not running, or it still accepts connections after a
/// minute.
pub fn stop_redis() {
    let port = port_of(&redis_url());
    // The inline form of a command is a line of text; Redis closes the connection as it exits.
    let mut stream = connect(port).unwrap_or_else(|err| {
        panic!("cannot stop Redis: it does not accept connections on port {port}: {err}")
    });
    std::io::Write::write_all(&mut stream, b"SHUTDOWN NOSAVE\r\n")
        .unwrap_or_else(|err| panic!("cannot send SHUTDOWN to Redis on port {port}: {err}"));
    wait_until(TIMEOUT, || !accepts_connections(port)).unwrap_or_else(|()| {
        panic!("Redis still accepts connections on port {port} a minute after SHUTDOWN")
    });
}

/// Starts the test Redis server again, on the same port and empty, and waits until it answers
/// `PING`.
///
/// # Panics
///
/// If the variables are unset, `redis-server` fails to start (for instance because the server
/// is running), or the server does not answer within a minute.
pub fn start_redis() {
    let command = required_var(REDIS_SERVER);
    // Daemonized, the server outlives this test process; xtask stops it by port and pid file.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {command} --daemonize yes"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run sh to start redis-server: {err}"));
    if !out.status.success() {
        panic!(
            "cannot start redis-server ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = port_of(&redis_url());
    wait_until(TIMEOUT, || redis_answers_ping(port)).unwrap_or_else(|()| {
        panic!("Redis started but does not answer PING on port {port}; see its --logfile in {REDIS_SERVER}")
    });
}

/// Stops the test PostgreSQL server until the returned guard is dropped.
///
/// See the module docs: the test's name must contain `outage`.
pub fn postgres_outage() -> Outage {
    stop_postgres();
    Outage {
        restart: start_postgres,
    }
}

/// Stops the test Redis server until the returned guard is dropped; it comes back empty.
///
/// See the module docs: the test's name must contain `outage`.
pub fn redis_outage() -> Outage {
    stop_redis();
    Outage {
        restart: start_redis,
    }
}

/// A stopped test server, restarted when this guard is dropped.
#[must_use = "the server is restarted as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Outage {
    restart: fn(),
}

impl Outage {
    /// Restarts the server now; the same as dropping the guard, but reads better in a test.
    pub fn end(self) {}
}

impl Drop for Outage {
    fn drop(&mut self) {
        if thread::panicking() {
            // A second panic while unwinding would abort the test binary and hide the first.
            let _ = std::panic::catch_unwind(self.restart);
        } else {
            (self.restart)();
        }
    }
}

fn required_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: run the tests with `cargo xtask test` (it starts PostgreSQL and \
             Redis)"
        ),
    }
}

/// Runs `pg_ctl ACTION -D DATA ARGS`, as the user xtask names, and panics with its output on
/// failure.
fn pg_ctl(action: &str, args: &[&str]) {
    let pg_ctl = required_var(PG_CTL);
    let data = required_var(PG_DATA);
    let run_as = std::env::var(PG_RUN_AS).unwrap_or_default();
    let mut command = if run_as.is_empty() {
        Command::new(&pg_ctl)
    } else {
        let mut command = Command::new("runuser");
        command.args(["-u", &run_as, "--", &pg_ctl]);
        command
    };
    // The log file (`-l`) takes the server's output, so `output()` returns when pg_ctl does.
    let out = command
        .arg(action)
        .arg("-D")
        .arg(&data)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {pg_ctl}: {err}"));
    if !out.status.success() {
        panic!(
            "pg_ctl {action} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn parse_url(url: &str) -> Url {
    Url::parse(url).unwrap_or_else(|err| panic!("invalid URL {url:?}: {err}"))
}

fn port_of(url: &str) -> u16 {
    parse_url(url)
        .port()
        .unwrap_or_else(|| panic!("URL {url:?} names no port"))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

fn accepts_connections(port: u16) -> bool {
    connect(port).is_ok()
}

fn redis_answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = connect(port) else {
        return false;
    };
    let mut reply = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Polls `ready` until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(());
        }
        thread::sleep(Duration::from_millis(50));
    }
}
