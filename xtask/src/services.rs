//! Throwaway PostgreSQL and Redis servers for one test run.
//!
//! Both listen on 127.0.0.1 only, on ports picked below the kernel's ephemeral range (so no
//! outgoing connection can take a port while an outage test has its server stopped), and keep
//! all their files in one fresh temporary directory:
//!
//! ```text
//! $TMPDIR/mcp-auth-services-<pid>-<nanos>/   owned by `postgres` when xtask runs as root
//!     pgdata/               initdb's cluster; its postgresql.conf holds the port, the
//!                           listen address and the socket directory, so a plain
//!                           `pg_ctl start -D pgdata` restarts the server on the same port
//!     pgdata/server.log     PostgreSQL's log
//!     redis.log, redis.pid  Redis's log and pid file
//! ```
//!
//! The environment that [`Services::env`] exports is documented for test authors in
//! `tests/src/services.rs`, which reads it.
//!
//! Stopping: [`Services`] stops both servers and deletes the directory when dropped, which
//! covers normal exits, failing tests and errors. A signal (Ctrl-C, SIGTERM) ends xtask without
//! running destructors, and the standard library cannot catch signals, so a watchdog covers
//! that case: this binary re-run as `xtask __watchdog` in its own process group (Ctrl-C does not
//! reach it), holding the read end of a pipe whose write end only xtask holds. However xtask
//! ends, the kernel closes the write end; the watchdog reads end-of-file and, if the directory
//! is still there, stops the servers and deletes it.

use std::{
    fs,
    hash::{BuildHasher, RandomState},
    io::{self, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime},
};

use crate::{Result, provision};

/// The hidden subcommand that runs [`watchdog`].
pub(crate) const WATCHDOG_COMMAND: &str = "__watchdog";

/// The system user that owns and runs PostgreSQL when xtask runs as root.
const POSTGRES_USER: &str = "postgres";
const POSTGRES_START_TIMEOUT_SECS: u32 = 60;
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Running PostgreSQL and Redis servers; dropping this stops them and deletes their files.
pub(crate) struct Services {
    plan: Plan,
    postgres_port: u16,
    redis_server: PathBuf,
    redis: Option<Child>,
    watchdog: Option<Child>,
}

/// What it takes to stop the servers and delete their files; the watchdog receives it as
/// command-line arguments.
struct Plan {
    dir: PathBuf,
    pg_ctl: PathBuf,
    /// The user to run PostgreSQL's tools as, when xtask runs as root.
    run_as: Option<String>,
    redis_port: u16,
}

impl Plan {
    fn pg_data(&self) -> PathBuf {
        self.dir.join("pgdata")
    }

    fn redis_pid_file(&self) -> PathBuf {
        self.dir.join("redis.pid")
    }

    fn redis_log(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// `program`, run as [`Plan::run_as`] if set, from a directory that user may enter.
    fn postgres_tool(&self, program: &Path) -> Command {
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }
}

impl Services {
    /// Starts both servers, installing their binaries first if they are missing (see
    /// `provision.rs`), or fails with the command that installs them.
    pub(crate) fn start() -> Result<Services> {
        let (pg_bin, redis_server) = provision::server_binaries()?;
        let run_as = if running_as_root() {
            let has_user = Command::new("id")
                .args(["-u", POSTGRES_USER])
                .output()
                .is_ok_and(|out| out.status.success());
            if !has_user {
                return Err(format!(
                    "running as root, so PostgreSQL must run as the `{POSTGRES_USER}` system \
                     user (initdb refuses root), and there is none: apt-get install -y postgresql"
                )
                .into());
            }
            Some(POSTGRES_USER.to_owned())
        } else {
            None
        };
        let (postgres_port, redis_port) = free_ports()?;
        let dir = create_temp_dir()?;

        // From here on, dropping `services` cleans up whatever was started.
        let mut services = Services {
            plan: Plan {
                dir,
                pg_ctl: pg_bin.join("pg_ctl"),
                run_as,
                redis_port,
            },
            postgres_port,
            redis_server,
            redis: None,
            watchdog: None,
        };
        services.watchdog = Some(spawn_watchdog(&services.plan)?);
        if let Some(user) = &services.plan.run_as {
            checked(
                Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(&services.plan.dir),
                "chown the temporary directory",
            )?;
        }
        services.start_postgres(&pg_bin)?;
        services.start_redis()?;
        Ok(services)
    }

    pub(crate) fn postgres_port(&self) -> u16 {
        self.postgres_port
    }

    pub(crate) fn redis_port(&self) -> u16 {
        self.plan.redis_port
    }

    /// The variables the test harness (`tests/src/services.rs`) reads.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let redis_command: Vec<String> = std::iter::once(self.redis_server.as_os_str())
            .chain(self.redis_args().iter().map(|arg| arg.as_os_str()))
            .map(|arg| shell_quote(&arg.to_string_lossy()))
            .collect();
        vec![
            (
                "MCP_AUTH_TEST_POSTGRES_URL",
                format!(
                    "postgres://postgres@127.0.0.1:{}/postgres",
                    self.postgres_port
                ),
            ),
            (
                "MCP_AUTH_TEST_REDIS_URL",
                format!("redis://127.0.0.1:{}", self.plan.redis_port),
            ),
            ("MCP_AUTH_TEST_PG_CTL", display(&self.plan.pg_ctl)),
            ("MCP_AUTH_TEST_PG_DATA", display(&self.plan.pg_data())),
            (
                "MCP_AUTH_TEST_PG_RUN_AS",
                self.plan.run_as.clone().unwrap_or_default(),
            ),
            ("MCP_AUTH_TEST_REDIS_SERVER", redis_command.join(" ")),
        ]
    }

    fn start_postgres(&self, pg_bin: &Path) -> Result<()> {
        let data = self.plan.pg_data();
        checked(
            self.plan
                .postgres_tool(&pg_bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8"])
                .args(["--locale=C", "--no-sync"]),
            "initdb",
        )?;

        // The settings go into the cluster's own configuration rather than onto the command line
        // so that an outage test can restart the server with a bare `pg_ctl start`.
        let socket_dir = display(&self.plan.dir).replace('\'', "''");
        let settings = format!(
            "\n# Added by `cargo xtask`: a private server for one test run.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             # Every test opens its own pools.\n\
             max_connections = 300\n\
             # Power-loss durability is pointless in a throwaway directory. Commits still\n\
             # reach the WAL, so they survive an outage test's crash and restart.\n\
             fsync = off\n\
             full_page_writes = off\n",
            port = self.postgres_port,
        );
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .map_err(|err| format!("cannot configure PostgreSQL: {err}"))?;

        let log = data.join("server.log");
        let started = checked(
            self.plan
                .postgres_tool(&self.plan.pg_ctl)
                .arg("start")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", &POSTGRES_START_TIMEOUT_SECS.to_string()]),
            "pg_ctl start",
        );
        if let Err(err) = started {
            return Err(format!("{err}\n{}", log_tail(&log)).into());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !accepts_connections(self.postgres_port) {
            if Instant::now() > deadline {
                return Err(format!(
                    "PostgreSQL started but does not accept connections on 127.0.0.1:{}\n{}",
                    self.postgres_port,
                    log_tail(&log)
                )
                .into());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Arguments for `redis-server`, without `--daemonize`; also exported for restarts.
    fn redis_args(&self) -> Vec<std::ffi::OsString> {
        let port = self.plan.redis_port.to_string();
        let mut args: Vec<std::ffi::OsString> = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(Into::into)
        .collect();
        for (flag, path) in [
            ("--dir", self.plan.dir.clone()),
            ("--pidfile", self.plan.redis_pid_file()),
            ("--logfile", self.plan.redis_log()),
        ] {
            args.push(flag.into());
            args.push(path.into());
        }
        args
    }

    fn start_redis(&mut self) -> Result<()> {
        let child = Command::new(&self.redis_server)
            .args(self.redis_args())
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C reaches xtask, and cleanup stops Redis.
            .process_group(0)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", self.redis_server.display()))?;
        let child = self.redis.insert(child);
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            if redis_ping(self.plan.redis_port) {
                return Ok(());
            }
            let exited = child.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                let what = match exited {
                    Some(status) => format!("redis-server exited with {status}"),
                    None => format!(
                        "redis-server did not answer PING on 127.0.0.1:{} within {} s",
                        self.plan.redis_port,
                        REDIS_START_TIMEOUT.as_secs()
                    ),
                };
                return Err(format!("{what}\n{}", log_tail(&self.plan.redis_log())).into());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for problem in stop_all(&self.plan, self.redis.as_mut()) {
            eprintln!("xtask: warning: {problem}");
        }
        // Closing the pipe tells the watchdog to exit; the directory is gone, so it does nothing.
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// Stops both servers (whoever started them last) and deletes the directory; idempotent.
/// Returns what went wrong, for warnings.
fn stop_all(plan: &Plan, redis: Option<&mut Child>) -> Vec<String> {
    let mut problems = Vec::new();
    let data = plan.pg_data();
    if data.join("postmaster.pid").exists() {
        let stopped = checked(
            plan.postgres_tool(&plan.pg_ctl)
                .arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "30"]),
            "pg_ctl stop",
        );
        if let Err(err) = stopped {
            problems.push(err.to_string());
        }
    }

    // The server may be our child or, after an outage test restarted it, a daemon whose pid is
    // only in the pid file. SHUTDOWN reaches either; the pid file covers a server that hangs.
    redis_shutdown(plan.redis_port);
    if let Some(child) = redis {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Ok(pid) = fs::read_to_string(plan.redis_pid_file()) {
        let pid = pid.trim();
        let is_redis = fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.starts_with("redis"));
        if is_redis {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }

    if let Err(err) = fs::remove_dir_all(&plan.dir)
        && err.kind() != io::ErrorKind::NotFound
    {
        problems.push(format!("cannot delete {}: {err}", plan.dir.display()));
    }
    problems
}

fn spawn_watchdog(plan: &Plan) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg(WATCHDOG_COMMAND)
        .arg(&plan.dir)
        .arg(&plan.pg_ctl)
        .arg(plan.run_as.as_deref().unwrap_or(""))
        .arg(plan.redis_port.to_string())
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot start the cleanup watchdog: {err}"))?;
    Ok(child)
}

/// Waits for xtask to end, then stops the servers if xtask could not (see the module docs).
pub(crate) fn watchdog(args: &[String]) -> Result<()> {
    let [dir, pg_ctl, run_as, redis_port] = args else {
        return Err(format!("usage: xtask {WATCHDOG_COMMAND} DIR PG_CTL RUN_AS REDIS_PORT").into());
    };
    let plan = Plan {
        dir: dir.into(),
        pg_ctl: pg_ctl.into(),
        run_as: Some(run_as.clone()).filter(|user| !user.is_empty()),
        redis_port: redis_port.parse()?,
    };
    // Returns at end-of-file, which comes when xtask has ended, however it ended.
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    if plan.dir.exists() {
        eprintln!("xtask: ended; stopping PostgreSQL and Redis");
        for problem in stop_all(&plan, None) {
            eprintln!("xtask: warning: {problem}");
        }
    }
    Ok(())
}

pub(crate) fn running_as_root() -> bool {
    // The owner of /proc/self is this process's effective user.
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn create_temp_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "mcp-auth-services-{}-{nanos:09}",
        std::process::id()
    ));
    fs::create_dir(&dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    Ok(dir)
}

/// Two distinct free loopback ports below the kernel's ephemeral range, so that no outgoing
/// connection's source port can occupy one while its server is down for an outage test.
fn free_ports() -> Result<(u16, u16)> {
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10000, ephemeral_start.max(11000));
    let span = u64::from(high - low);
    let start = RandomState::new().hash_one(std::process::id()) % span;
    let mut held = Vec::new();
    for offset in 0..span {
        let Ok(port) = u16::try_from(u64::from(low) + (start + offset) % span) else {
            continue;
        };
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push((port, listener));
            if let [(first, _), (second, _)] = held[..] {
                return Ok((first, second));
            }
        }
    }
    Err(format!("no two free ports on 127.0.0.1 in {low}..{high}").into())
}

fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Sends `command` in Redis's inline form; returns the first bytes of the reply.
fn redis_command(port: u16, command: &str) -> io::Result<Vec<u8>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = vec![0; 64];
    let read = stream.read(&mut reply)?;
    reply.truncate(read);
    Ok(reply)
}

fn redis_ping(port: u16) -> bool {
    redis_command(port, "PING").is_ok_and(|reply| reply.starts_with(b"+PONG"))
}

/// Asks Redis to exit and waits, boundedly, until its port is closed.
fn redis_shutdown(port: u16) {
    if redis_command(port, "SHUTDOWN NOSAVE").is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepts_connections(port) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to completion, capturing its output for the error message.
fn checked(command: &mut Command, what: &str) -> Result<()> {
    let out = command
        .output()
        .map_err(|err| format!("{what}: cannot run {:?}: {err}", command.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}

fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            format!("last lines of {}:\n{}", path.display(), tail.join("\n"))
        }
        Err(err) => format!("(no log at {}: {err})", path.display()),
    }
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Quotes `word` for a POSIX shell, leaving plain words readable.
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/usr/bin/redis-server"),
            "/usr/bin/redis-server"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let (a, b) = free_ports().unwrap();
        assert_ne!(a, b);
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        TcpListener::bind((Ipv4Addr::LOCALHOST, b)).unwrap();
    }
}
