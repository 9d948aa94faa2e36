//! `cargo xtask interop`: the official MCP client SDKs against `mcp-auth-server`.
//!
//! 1. Build the server and start it on a free loopback port (in-memory store, one demo user, a
//!    short access-token lifetime so that the clients must refresh), then wait for `/healthz`.
//! 2. Prepare the clients: a Python venv with `interop/python/requirements.txt` (the `mcp`
//!    SDK), and `npm ci` plus a type check in `interop/typescript` (the
//!    `@modelcontextprotocol/sdk` SDK). Both are skipped when what is installed already
//!    matches the pinned files.
//! 3. Run both clients one after the other; each signs in, calls `whoami`, waits past the
//!    token's lifetime and calls it again (see the scripts' own docs).
//! 4. Stop the server, and report. A failing client fails the command, after its output and
//!    the tail of the server's log.
//!
//! Everything it writes lives in `<target dir>/interop/`: the venv, the server's log and a copy
//! of the pinned files recording what was installed. `node_modules` lives beside the
//! TypeScript client, as npm wants, and is ignored by git.
//!
//! Stopping: the server is a child process owned by [`Server`], which stops it (SIGTERM, then
//! SIGKILL) when dropped, so errors and failing clients stop it too. Ctrl-C reaches the whole
//! foreground process group, the server included.

use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use xshell::{Shell, cmd};

use crate::Result;

/// The sign-in user the clients use.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "interop-password";
/// The access-token lifetime the server runs with, and how long the clients then wait before
/// their second call: long enough for sign-in and the first call on a loaded 2-core machine,
/// short enough to keep the run quick. The wait must exceed the lifetime.
const ACCESS_TOKEN_TTL_SECS: u32 = 3;
const REFRESH_AFTER_SECS: &str = "4.5";

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// One client's whole run: sign-in, two calls, the wait, and for Python a second sign-in.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// Installing the SDKs from the registries.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const SERVER_LOG_TAIL_LINES: usize = 60;
/// Node.js releases the TypeScript SDK supports (its `engines` field says `>=18`).
const MIN_NODE_MAJOR: u32 = 18;

/// Runs the interop check; the exit code is a failure when either client failed.
pub(crate) fn run(sh: &Shell, root: &Path, cargo: &str) -> Result<ExitCode> {
    let started = Instant::now();
    let server_bin = build_server(root, cargo)?;
    // `<target>/debug/mcp-auth-server`: the target directory is two levels up, wherever
    // CARGO_TARGET_DIR or the configuration put it.
    let target_dir = server_bin
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory above the server binary")?;
    let work = target_dir.join("interop");
    fs::create_dir_all(&work)?;

    // Installing first keeps the server's short-lived tokens out of the install time, and a
    // missing tool fails before anything is started.
    let python = prepare_python(sh, root, &work)?;
    let typescript = root.join("interop/typescript");
    prepare_typescript(sh, &typescript)?;
    eprintln!(
        "xtask: interop: clients ready ({:.0} s)",
        started.elapsed().as_secs_f64()
    );

    let server = Server::start(&server_bin, &work.join("server.log"))?;
    let origin = server.origin();
    eprintln!("xtask: interop: mcp-auth-server is up at {origin}");
    let client_args = [
        "--server",
        &origin,
        "--user",
        DEMO_USER,
        "--password",
        DEMO_PASSWORD,
        "--refresh-after",
        REFRESH_AFTER_SECS,
    ];

    let mut outcomes = Vec::new();
    let mut python_client = Command::new(&python);
    python_client
        .arg(root.join("interop/python/client.py"))
        .args(client_args);
    outcomes.push((
        "Python SDK (PyPI mcp)",
        run_bounded(python_client, CLIENT_TIMEOUT),
    ));
    let mut node_client = Command::new("node");
    node_client
        .current_dir(&typescript)
        .arg("client.mjs")
        .args(client_args);
    outcomes.push((
        "TypeScript SDK (npm @modelcontextprotocol/sdk)",
        run_bounded(node_client, CLIENT_TIMEOUT),
    ));

    let failed = outcomes
        .iter()
        .any(|(_, outcome)| !matches!(outcome, Ok(status) if status.success()));
    if failed {
        eprintln!(
            "\nxtask: interop: last {SERVER_LOG_TAIL_LINES} lines of the server's log ({}):",
            server.log.display()
        );
        eprintln!("{}", tail(&server.log, SERVER_LOG_TAIL_LINES));
    }
    drop(server);

    eprintln!(
        "\nxtask: interop summary ({:.0} s):",
        started.elapsed().as_secs_f64()
    );
    for (name, outcome) in &outcomes {
        let verdict = match outcome {
            Ok(status) if status.success() => "passed".to_owned(),
            Ok(status) => format!("FAILED ({status})"),
            Err(err) => format!("FAILED ({err})"),
        };
        eprintln!("  {name}: {verdict}");
    }
    let passed = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Ok(status) if status.success()))
        .count();
    // Deliberately not in the "N passed, N failed" form: CI reads such closing lines as the
    // run's test count, which is nextest's.
    eprintln!(
        "xtask: interop: {passed} of {} SDK clients passed",
        outcomes.len()
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Builds the server and returns its executable, as cargo reports it.
fn build_server(root: &Path, cargo: &str) -> Result<PathBuf> {
    eprintln!("$ cargo build -p mcp-auth-server");
    // JSON messages on stdout name the executable; diagnostics still go to stderr as text.
    let output = Command::new(cargo)
        .args([
            "build",
            "--package",
            "mcp-auth-server",
            "--bin",
            "mcp-auth-server",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run {cargo}: {err}"))?;
    if !output.status.success() {
        return Err(format!("building mcp-auth-server failed ({})", output.status).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter(|line| line.contains(r#""name":"mcp-auth-server""#))
        .find_map(|line| json_string_field(line, "executable"))
        .map(PathBuf::from)
        .ok_or_else(|| "cargo did not report the mcp-auth-server executable".into())
}

/// The value of the string field `name` in one line of cargo's JSON, without a JSON parser:
/// cargo writes compact JSON, and a path only needs `\\` and `\"` undone.
fn json_string_field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!(r#""{name}":""#))? + name.len() + 4;
    let mut value = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None
}

/// A venv under `work` with the pinned Python SDK; returns its interpreter.
fn prepare_python(sh: &Shell, root: &Path, work: &Path) -> Result<PathBuf> {
    let requirements = root.join("interop/python/requirements.txt");
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() && cmd!(sh, "python3 -m venv {venv}").run().is_err() {
        // A half-made venv would make the next run skip this step.
        let _ = fs::remove_dir_all(&venv);
        return Err(
            "`python3 -m venv` failed: on Debian, `apt-get install python3-venv` (.ci/run does this)"
                .into(),
        );
    }
    let stamp = venv.join("interop-requirements.txt");
    let wanted = fs::read_to_string(&requirements)?;
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        eprintln!("xtask: interop: Python requirements already installed");
        return Ok(python);
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--requirement",
    ])
    .arg(&requirements);
    let status = run_bounded(pip, INSTALL_TIMEOUT)?;
    if !status.success() {
        return Err(format!(
            "pip install -r {} failed ({status})",
            requirements.display()
        )
        .into());
    }
    fs::write(&stamp, wanted)?;
    Ok(python)
}

/// `npm ci` (unless `node_modules` already holds the lock file's packages) and a type check
/// of the client against the SDK's `OAuthClientProvider` interface.
fn prepare_typescript(sh: &Shell, dir: &Path) -> Result<()> {
    let version = cmd!(sh, "node --version").quiet().read().map_err(|_| {
        "node not found: install Node.js (on Debian, `apt-get install nodejs npm`; .ci/run does this)"
    })?;
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .ok_or_else(|| format!("cannot read the Node.js version {version:?}"))?;
    if major < MIN_NODE_MAJOR {
        return Err(format!(
            "Node.js {version} is too old for @modelcontextprotocol/sdk (needs {MIN_NODE_MAJOR}+)"
        )
        .into());
    }

    let lock = fs::read_to_string(dir.join("package-lock.json"))?;
    let stamp = dir.join("node_modules/.interop-package-lock.json");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        eprintln!("xtask: interop: npm packages already installed");
    } else {
        let mut npm = Command::new("npm");
        npm.current_dir(dir)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        let status = run_bounded(npm, INSTALL_TIMEOUT)?;
        if !status.success() {
            return Err(format!("npm ci in {} failed ({status})", dir.display()).into());
        }
        fs::write(&stamp, lock)?;
    }

    let _dir = sh.push_dir(dir);
    cmd!(sh, "node_modules/.bin/tsc --noEmit --project .").run()?;
    Ok(())
}

/// Runs `command` to completion, echoing it; kills it after `timeout`.
fn run_bounded(mut command: Command, timeout: Duration) -> Result<ExitStatus> {
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    eprintln!("$ {program} {}", args.join(" "));
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{program} did not finish in {} s", timeout.as_secs()).into());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The running server; dropping it stops it.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts the server on a free loopback port and waits until `/healthz` answers 200.
    fn start(bin: &Path, log: &Path) -> Result<Self> {
        // The port is free when picked; another process could take it before the server binds,
        // so a server that exits at once is started again on a new port, a few times.
        let mut last_error = String::new();
        for _ in 0..3 {
            let addr = free_port()?;
            let log_file = fs::File::create(log)?;
            let child = Command::new(bin)
                .args(["--bind", &addr.to_string(), "--store", "memory"])
                .args(["--user", &format!("{DEMO_USER}:{DEMO_PASSWORD}")])
                .args(["--access-token-ttl", &ACCESS_TOKEN_TTL_SECS.to_string()])
                // A log file, not a terminal: no colour codes.
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .spawn()
                .map_err(|err| format!("cannot start {}: {err}", bin.display()))?;
            let mut server = Self {
                child,
                addr,
                log: log.to_path_buf(),
            };
            match server.wait_healthy() {
                Ok(()) => return Ok(server),
                Err(err) => last_error = err,
            }
        }
        Err(format!(
            "mcp-auth-server did not start: {last_error}\n{}",
            tail(log, SERVER_LOG_TAIL_LINES)
        )
        .into())
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            if healthz(self.addr) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "/healthz did not answer 200 within {} s",
            SERVER_START_TIMEOUT.as_secs()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first, for the graceful shutdown the server implements.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + SERVER_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("xtask: interop: the server ignored SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// One `GET /healthz`: true on a 200.
fn healthz(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

/// The last `lines` lines of the file at `path`, or why it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_executable_from_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"mcp-auth-server"},"executable":"/t/debug/mcp-auth-server","fresh":true}"#;
        assert_eq!(
            json_string_field(line, "executable").as_deref(),
            Some("/t/debug/mcp-auth-server")
        );
        assert_eq!(
            json_string_field(r#"{"executable":"C:\\a \"b\""}"#, "executable").as_deref(),
            Some(r#"C:\a "b""#)
        );
        assert_eq!(
            json_string_field(r#"{"executable":null}"#, "executable"),
            None
        );
    }
}
