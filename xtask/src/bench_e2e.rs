//! `cargo xtask bench e2e`: the release binary `mcp-auth-server`, end to end over loopback, on
//! the memory store and on SQLite (a fresh file), beside a hand-written minimal axum server
//! (`tests/examples/e2e_floor.rs`, the "floor") built in the same run.
//!
//! For each endpoint shape — metadata GET, bearer check + `tools/call` answer, unknown bearer
//! (401), token issuance (`client_credentials`), `/token` with a bogus code, registration — the
//! load generator ([`load`]) keeps [`load::CONNECTIONS`] HTTP/1.1 connections busy and the
//! server's CPU time (utime + stime from `/proc/PID/stat`) is divided by the requests
//! completed. The servers run pinned to one core and the load generator to another (when
//! `taskset` and two cores exist), so the load's own CPU is not counted. Other processes on the
//! machine still disturb the figures (they only ever inflate them: shared caches, a server
//! left idle between requests paying a wake-up for each), so rounds alternate endpoints and
//! servers, so that a change in the machine's speed hits them alike, and the report quotes
//! the least CPU per request of [`ROUNDS`]. Then the latency of `tools/call` on one kept-alive
//! connection (sequential), which is where Nagle's algorithm and delayed ACKs show.
//!
//! The floor answers `tools/call` with a JSON echo, the server with rmcp. So a fourth target,
//! the floor started with `rmcp` (its `/mcp` the server's own MCP server behind a
//! one-comparison bearer check), is measured on `tools/call` alone: the server's figure beside
//! it is what the server adds to the MCP server it serves.
//!
//! The servers run with their default logging (`RUST_LOG` unset), their stderr read by a
//! thread here as a log collector would; per-IP rate limits are off (`[limits]` set to 0) so
//! that the load from one address is served rather than refused.
//!
//! `cargo xtask bench gateway` ([`gateway`]) reuses these pieces for the server in gateway
//! mode in front of a trivial upstream.

mod gateway;
mod http;
mod load;
mod profile;
mod report;
mod requests;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use crate::Result;
use http::Conn;
use load::{CpuClock, Prepare};
use report::{Endpoint, Measurements};
use requests::{
    ECHO_TEXT, bogus_code_request, issue_token_request, json_string_field, mcp_session,
    registration_request, tools_call_request,
};

/// Rounds of every endpoint on every server; the report quotes the best. Five rounds of
/// [`load`]'s window keep the whole run near three minutes.
const ROUNDS: usize = 5;
/// How long a server may take to answer its first request (SQLite creates and migrates).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The last bytes of a server's log kept to explain a failure.
const LOG_TAIL_BYTES: usize = 16 * 1024;

const SCOPE: &str = "mcp:tools";
const MCP_PROTOCOL_VERSION: &str = "2025-06-18";
/// The pre-registered machine client that gets the bearer token and issues tokens.
const MACHINE_CLIENT: &str = "bench-machine";
const MACHINE_SECRET: &str = "bench-machine-secret-0123456789abcdef";
/// The pre-registered public client whose made-up code `/token` refuses.
const PUBLIC_CLIENT: &str = "bench-public";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The floor's one valid bearer token.
const FLOOR_TOKEN: &str = "floor-token-0123456789abcdef0123456789abcdef";
/// A bearer token no server issued.
const UNKNOWN_TOKEN: &str = "unknown-token-0123456789abcdef0123456789abcdef";

pub(crate) use gateway::run as run_gateway;
pub(crate) use profile::run as run_profile;

/// Builds the release `mcp-auth-server` and the example `example` of `mcp-auth-tests`, and
/// returns their paths.
fn build(sh: &Shell, root: &Path, cargo: &str, example: &str) -> Result<(PathBuf, PathBuf)> {
    build_profile(sh, root, cargo, example, "release")
}

/// [`build`] with the cargo profile `profile` (`release`, or `profiling`: release with line
/// tables, for `bench profile`).
fn build_profile(
    sh: &Shell,
    root: &Path,
    cargo: &str,
    example: &str,
    profile: &str,
) -> Result<(PathBuf, PathBuf)> {
    cmd!(
        sh,
        "{cargo} build --profile {profile} --package mcp-auth-server --bin mcp-auth-server"
    )
    .run()?;
    cmd!(
        sh,
        "{cargo} build --profile {profile} --package mcp-auth-tests --example {example}"
    )
    .run()?;
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join(profile);
    Ok((
        out.join("mcp-auth-server"),
        out.join("examples").join(example),
    ))
}

/// Builds the binaries, runs every measurement and prints the report.
pub(crate) fn run(sh: &Shell, root: &Path, cargo: &str) -> Result<ExitCode> {
    let (server_bin, floor_bin) = build(sh, root, cargo, "e2e_floor")?;

    let started = Instant::now();
    let pinning = Pinning::detect()?;
    let work = TempDir::create("e2e")?;
    write_server_files(&work.0, load::CONNECTIONS)?;

    let floor = Target::floor(&floor_bin, &pinning, false)?;
    let memory = Target::server("memory", &server_bin, "memory", &work.0, &pinning, None)?;
    let sqlite_url = format!("sqlite://{}", work.0.join("mcp-auth.db").display());
    let sqlite = Target::server("SQLite", &server_bin, &sqlite_url, &work.0, &pinning, None)?;
    let rmcp_floor = Target::floor(&floor_bin, &pinning, true)?;
    // In the order of report's indexes (FLOOR, MEMORY, SQLITE, RMCP_FLOOR).
    let targets = [floor, memory, sqlite, rmcp_floor];

    let ticks = clock_ticks_per_second();
    eprintln!(
        "xtask: bench e2e: {}; {} connections, {ROUNDS} rounds",
        pinning.describe(),
        load::CONNECTIONS
    );
    let mut measurements = Measurements::default();
    for round in 1..=ROUNDS {
        for endpoint in Endpoint::ALL {
            for (index, target) in targets.iter().enumerate() {
                if !endpoint.measured_on(index) {
                    continue;
                }
                let (prepare, expect) = target.shape(endpoint);
                let clock = CpuClock::new(target.process.pid(), ticks);
                let outcome = load::load(target.addr, &clock, &prepare, expect).map_err(|err| {
                    format!("{err}; server log ends:\n{}", target.process.log_tail())
                });
                match &outcome {
                    Ok(run) => eprintln!(
                        "xtask: bench e2e: round {round}/{ROUNDS} {:<12} {:<26} {:>6.1} µs/request, \
                         {:>6.0} requests/s, server {:>3.0}% busy",
                        target.name,
                        endpoint.label(),
                        run.cpu_per_request_us().unwrap_or(f64::NAN),
                        run.requests as f64 / run.elapsed.as_secs_f64(),
                        run.busy() * 100.0
                    ),
                    Err(err) => eprintln!(
                        "xtask: bench e2e: round {round}/{ROUNDS} {} {}: {err}",
                        target.name,
                        endpoint.label()
                    ),
                }
                measurements.add(index, endpoint, outcome.map_err(|err| err.to_string()));
            }
        }
    }
    for (index, target) in targets.iter().enumerate() {
        let (prepare, expect) = target.shape(Endpoint::ToolsCall);
        let latency = load::latency(target.addr, &prepare, expect).map_err(|err| err.to_string());
        measurements.add_latency(index, latency);
    }
    let names = targets.each_ref().map(|target| target.name);
    drop(targets);
    println!("{}", measurements.report(names, &pinning.describe()));
    eprintln!(
        "xtask: bench e2e: measured in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where the servers and the load generator run.
struct Pinning {
    /// `(load CPU, server CPU)`, or `None` when `taskset` or a second CPU is missing.
    cpus: Option<(u32, u32)>,
}

impl Pinning {
    /// Picks the first two CPUs this process may use and moves it to the first (after the
    /// builds, which must keep every core), so that the load threads inherit it.
    fn detect() -> Result<Self> {
        let has_taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        let status = std::fs::read_to_string("/proc/self/status")?;
        let allowed = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .map(parse_cpu_list)
            .unwrap_or_default();
        let cpus = match (has_taskset, allowed.as_slice()) {
            (true, [load, server, ..]) => Some((*load, *server)),
            _ => None,
        };
        if let Some((load, _)) = cpus {
            let pid = std::process::id().to_string();
            let pinned = Command::new("taskset")
                .args(["-a", "-p", "-c", &load.to_string(), &pid])
                .stdout(Stdio::null())
                .status()?;
            if !pinned.success() {
                return Err("taskset could not pin the load generator".into());
            }
        }
        Ok(Self { cpus })
    }

    /// The command that starts `program`, pinned to the server CPU if any.
    fn command(&self, program: &Path) -> Command {
        self.pinned(program, self.cpus.map(|(_, server)| server))
    }

    /// The command that starts `program` beside the load generator, on its CPU if any: for a
    /// process whose CPU is not what is measured (the gateway bench's upstream), so that it
    /// does not share the measured server's core.
    fn beside_load(&self, program: &Path) -> Command {
        self.pinned(program, self.cpus.map(|(load, _)| load))
    }

    fn pinned(&self, program: &Path, cpu: Option<u32>) -> Command {
        match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn describe(&self) -> String {
        match self.cpus {
            Some((load, server)) => format!("servers pinned to CPU {server}, load on CPU {load}"),
            None => "no pinning (needs taskset and two CPUs): server CPU includes contention \
                     with the load generator"
                .to_owned(),
        }
    }
}

/// `0-3,6,8-9` → `[0, 1, 2, 3, 6, 8, 9]`; malformed parts are skipped.
fn parse_cpu_list(list: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let bounds = part.split_once('-').unwrap_or((part, part));
        if let (Ok(first), Ok(last)) = (
            bounds.0.trim().parse::<u32>(),
            bounds.1.trim().parse::<u32>(),
        ) {
            cpus.extend(first..=last);
        }
    }
    cpus
}

/// `getconf CLK_TCK`, the unit of `/proc/PID/stat`'s CPU times (100 on Linux by default).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A fresh directory for the SQLite file, the client files and the config; removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// `label` tells apart the runs of one `cargo xtask bench`.
    fn create(label: &str) -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("mcp-auth-bench-{label}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The two pre-registered clients and the config that names them and turns the per-IP rate
/// limits off (0 = unlimited; see crates/mcp-auth-server/src/limits.rs), for a load of
/// `connections` connections.
fn write_server_files(dir: &Path, connections: usize) -> Result<()> {
    std::fs::write(
        dir.join("machine.json"),
        format!(
            r#"{{"client_id": "{MACHINE_CLIENT}", "client_secret": "{MACHINE_SECRET}",
 "token_endpoint_auth_method": "client_secret_post",
 "grant_types": ["client_credentials"], "scope": "{SCOPE}"}}"#
        ),
    )?;
    std::fs::write(
        dir.join("public.json"),
        format!(
            r#"{{"client_id": "{PUBLIC_CLIENT}", "token_endpoint_auth_method": "none",
 "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
 "redirect_uris": ["{REDIRECT_URI}"], "scope": "{SCOPE}"}}"#
        ),
    )?;
    std::fs::write(
        dir.join("config.toml"),
        format!(
            r#"clients = ["machine.json", "public.json"]

[limits]
register_per_minute = 0
token_per_minute = 0
authorize_per_minute = 0
revoke_per_minute = 0
sign_in_per_minute = 0
# One MCP session per load connection, all of the one machine client.
mcp_sessions_per_principal = {sessions}
"#,
            sessions = 2 * connections
        ),
    )?;
    Ok(())
}

/// A started child process with its stderr collected; killed on drop.
struct Process {
    child: Child,
    log: Arc<Mutex<Log>>,
}

/// What a process wrote to stderr: the last [`LOG_TAIL_BYTES`], and its warnings and errors
/// counted (the tail alone would lose them under a busy access log).
#[derive(Default)]
struct Log {
    tail: Vec<u8>,
    warnings: u64,
    /// The first [`WARNINGS_KEPT`] warning or error lines.
    first_warnings: Vec<String>,
}

/// Warning and error lines kept whole for the report.
const WARNINGS_KEPT: usize = 5;

impl Process {
    fn spawn(mut command: Command) -> Result<Self> {
        command.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let log = Arc::new(Mutex::new(Log::default()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut stderr = BufReader::with_capacity(8192, stderr);
                let mut line = Vec::new();
                while let Ok(1..) = read_line(&mut stderr, &mut line) {
                    if let Ok(mut log) = log.lock() {
                        log.record(&line);
                    }
                    line.clear();
                }
            });
        }
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        self.log
            .lock()
            .map(|log| String::from_utf8_lossy(&log.tail).into_owned())
            .unwrap_or_default()
    }

    /// How many warning and error lines the process logged, and the first of them.
    fn warnings(&self) -> (u64, Vec<String>) {
        self.log
            .lock()
            .map(|log| (log.warnings, log.first_warnings.clone()))
            .unwrap_or_default()
    }
}

/// One line (at most 64 KiB of it, the rest comes as further lines) appended to `line`; the
/// bytes read, 0 at the end of the stream.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    const MAX_LINE: u64 = 64 * 1024;
    reader.by_ref().take(MAX_LINE).read_until(b'\n', line)
}

impl Log {
    fn record(&mut self, line: &[u8]) {
        self.tail.extend_from_slice(line);
        let excess = self.tail.len().saturating_sub(LOG_TAIL_BYTES);
        self.tail.drain(..excess);
        // The server's text format prints the level right-aligned in five columns.
        let text = String::from_utf8_lossy(line);
        if text.contains(" WARN ") || text.contains("ERROR ") {
            self.warnings += 1;
            if self.first_warnings.len() < WARNINGS_KEPT {
                self.first_warnings.push(text.trim_end().to_owned());
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server under load: the floor or `mcp-auth-server` on one store.
struct Target {
    name: &'static str,
    process: Process,
    addr: SocketAddr,
    /// A valid bearer token with scope `mcp:tools` for `<issuer>/mcp`.
    token: String,
    /// An MCP session per connection is needed (the server and the rmcp floor; the JSON floor
    /// has none).
    sessions: bool,
}

/// Opens an MCP session on `conn` and checks that one `tools/call` in it gets the echo, before
/// any load: the load checks statuses only, and a JSON-RPC error comes with a 200.
fn check_one_call(name: &str, conn: &mut Conn, addr: SocketAddr, token: &str) -> Result<()> {
    let request = mcp_session(conn, addr, token)?;
    let answer = conn.round_trip(&request)?;
    let body = String::from_utf8_lossy(&answer.body);
    if answer.status != 200 || !body.contains("\"result\"") || !body.contains(ECHO_TEXT) {
        return Err(format!("{name}: tools/call answered {}: {body}", answer.status).into());
    }
    Ok(())
}

/// Starts `command`, a server that prints `listening on ADDR` as its first line of stdout
/// (the floor, the gateway bench's upstream), and returns it with that address.
fn spawn_listening(name: &str, mut command: Command) -> Result<(Process, SocketAddr)> {
    command.stdout(Stdio::piped());
    let mut process = Process::spawn(command)?;
    let stdout = process
        .child
        .stdout
        .take()
        .ok_or_else(|| format!("no {name} stdout"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = sender.send(lines.next());
        // Keep reading so that the server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = match receiver.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        _ => {
            return Err(format!("the {name} did not start: {}", process.log_tail()).into());
        }
    };
    let addr = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from the {name}: {line:?}"))?
        .parse()?;
    Ok((process, addr))
}

impl Target {
    /// The floor; `with_rmcp`: the floor whose `/mcp` is the server's own MCP server
    /// (`e2e_floor … rmcp`), which needs an MCP session per connection as the server does.
    fn floor(bin: &Path, pinning: &Pinning, with_rmcp: bool) -> Result<Self> {
        let name = if with_rmcp { "floor + rmcp" } else { "floor" };
        let mut command = pinning.command(bin);
        command.args([FLOOR_TOKEN, MACHINE_CLIENT, MACHINE_SECRET]);
        if with_rmcp {
            command.arg("rmcp");
        }
        let (process, addr) = spawn_listening(name, command)?;
        if with_rmcp {
            check_one_call(name, &mut Conn::connect(addr)?, addr, FLOOR_TOKEN)?;
        }
        Ok(Self {
            name,
            process,
            addr,
            token: FLOOR_TOKEN.to_owned(),
            sessions: with_rmcp,
        })
    }

    /// `mcp-auth-server` on `store`, in gateway mode in front of `upstream` if given.
    fn server(
        name: &'static str,
        bin: &Path,
        store: &str,
        dir: &Path,
        pinning: &Pinning,
        upstream: Option<&str>,
    ) -> Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = pinning.command(bin);
        command
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--store")
            .arg(store)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null());
        if let Some(upstream) = upstream {
            command.arg("--upstream").arg(upstream);
        }
        // Default logging, and no setting from this shell's environment.
        command.env_remove("RUST_LOG");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCP_AUTH_") {
                command.env_remove(name);
            }
        }
        let mut process = Process::spawn(command)?;
        let metadata = http::request("GET", addr, report::METADATA_PATH, &[], b"");
        let started = Instant::now();
        loop {
            if let Some(status) = process.child.try_wait()? {
                return Err(
                    format!("{name} server exited ({status}):\n{}", process.log_tail()).into(),
                );
            }
            let ready = Conn::connect(addr)
                .and_then(|mut conn| conn.round_trip(&metadata))
                .is_ok_and(|response| response.status == 200);
            if ready {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(
                    format!("{name} server did not answer:\n{}", process.log_tail()).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut conn = Conn::connect(addr)?;
        let response = conn.round_trip(&issue_token_request(addr))?;
        let token = (response.status == 200)
            .then(|| json_string_field(&response.body, "access_token"))
            .flatten()
            .ok_or_else(|| {
                format!(
                    "{name} server issued no token: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                )
            })?;
        check_one_call(name, &mut conn, addr, &token)?;
        Ok(Self {
            name,
            process,
            addr,
            token,
            sessions: true,
        })
    }

    /// The request a connection sends for `endpoint`, and the status it must get.
    fn shape(&self, endpoint: Endpoint) -> (Prepare, u16) {
        let addr = self.addr;
        let fixed =
            |request: Vec<u8>| -> Prepare { Arc::new(move |_: &mut Conn| Ok(request.clone())) };
        match endpoint {
            Endpoint::Metadata => (
                fixed(http::request("GET", addr, report::METADATA_PATH, &[], b"")),
                200,
            ),
            Endpoint::ToolsCall if self.sessions => {
                let token = self.token.clone();
                (
                    Arc::new(move |conn: &mut Conn| mcp_session(conn, addr, &token)),
                    200,
                )
            }
            Endpoint::ToolsCall => (fixed(tools_call_request(addr, &self.token, None)), 200),
            Endpoint::UnknownBearer => (fixed(tools_call_request(addr, UNKNOWN_TOKEN, None)), 401),
            Endpoint::TokenIssuance => (fixed(issue_token_request(addr)), 200),
            Endpoint::BogusCode => (fixed(bogus_code_request(addr)), 400),
            Endpoint::Registration => (fixed(registration_request(addr)), 201),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges_and_skip_what_is_malformed() {
        for (list, cpus) in [
            ("0-1\n", vec![0, 1]),
            ("0-3,6,8-9", vec![0, 1, 2, 3, 6, 8, 9]),
            ("5", vec![5]),
            ("x,2", vec![2]),
        ] {
            assert_eq!(parse_cpu_list(list), cpus, "{list:?}");
        }
    }

    #[test]
    fn warnings_are_counted_whatever_the_tail_keeps() {
        let mut log = Log::default();
        let stderr = "2026-12-05T10:00:00Z  INFO request: POST /mcp 200\n\
                      2026-12-05T10:00:00Z  WARN gateway: the upstream did not answer\n\
                      2026-12-05T10:00:01Z ERROR server: no\n";
        let mut reader = stderr.as_bytes();
        let mut line = Vec::new();
        while read_line(&mut reader, &mut line).expect("read") > 0 {
            log.record(&line);
            line.clear();
        }
        assert_eq!((log.warnings, log.first_warnings.len()), (2, 2));
        assert!(log.first_warnings[0].ends_with("did not answer"));
        assert_eq!(log.tail.len(), stderr.len());
    }
}
