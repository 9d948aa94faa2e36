//! The servers `cargo xtask interop` starts: mcp-auth-server itself, and the gateway checks'
//! upstream MCP servers. Each is a child process on a free loopback port, owned by a
//! [`Server`], which waits until it serves and stops it when dropped.

use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{ACCESS_TOKEN_TTL_SECS, DEMO_PASSWORD, DEMO_USER};
use crate::Result;

/// Until mcp-auth-server answers `/healthz`: a debug build's start on a loaded machine.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a server is started on a new port before giving up: the port is free when
/// picked, but another process could take it before the server binds, and the server then
/// exits at once.
const START_ATTEMPTS: usize = 3;
/// Its graceful shutdown after SIGTERM, before SIGKILL.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a server's log a failure prints: enough to show why, short enough to read.
const SERVER_LOG_TAIL_LINES: usize = 60;

/// A server running as a child process on a loopback port: mcp-auth-server, or an upstream of
/// the gateway checks. Dropping it stops it.
pub(super) struct Server {
    child: Child,
    pub(super) addr: SocketAddr,
    pub(super) log: PathBuf,
    stop: Stop,
}

/// How a [`Server`] is stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// SIGTERM first, for the graceful shutdown mcp-auth-server implements; SIGKILL after
    /// [`SERVER_STOP_TIMEOUT`].
    Graceful,
    /// SIGKILL at once: a test fixture with nothing to save.
    Kill,
}

/// How a starting [`Server`] shows that it serves: a `GET` of `path` whose answer's status line
/// starts `HTTP/1.1 {status}`, within `timeout`.
#[derive(Clone, Copy)]
pub(super) struct Probe {
    pub(super) path: &'static str,
    /// Request headers besides `Host` and `Connection`, each ending in CRLF.
    pub(super) headers: &'static str,
    /// The status it must answer; `None`: any HTTP answer.
    pub(super) status: Option<&'static str>,
    pub(super) timeout: Duration,
}

/// mcp-auth-server serves when `/healthz` answers 200.
const HEALTHZ: Probe = Probe {
    path: "/healthz",
    headers: "",
    status: Some("200"),
    timeout: SERVER_START_TIMEOUT,
};

impl Probe {
    /// One `GET`: true when the answer's status line starts as it must.
    fn answers(&self, addr: SocketAddr) -> bool {
        let expected = format!("HTTP/1.1 {}", self.status.unwrap_or_default());
        let attempt = || -> std::io::Result<bool> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            write!(
                stream,
                "GET {} HTTP/1.1\r\nHost: {addr}\r\n{}Connection: close\r\n\r\n",
                self.path, self.headers
            )?;
            let mut head = vec![0_u8; expected.len()];
            stream.read_exact(&mut head)?;
            Ok(head == expected.as_bytes())
        };
        attempt().unwrap_or(false)
    }
}

impl Server {
    /// Starts mcp-auth-server on a free loopback port and waits until `/healthz` answers 200.
    pub(super) fn start(bin: &Path, log: &Path, extra_args: &[String]) -> Result<Self> {
        Self::spawn("mcp-auth-server", log, HEALTHZ, Stop::Graceful, |addr| {
            let mut command = Command::new(bin);
            command
                .args(["--bind", &addr.to_string(), "--store", "memory"])
                .args(["--user", &format!("{DEMO_USER}:{DEMO_PASSWORD}")])
                .args(["--access-token-ttl", &ACCESS_TOKEN_TTL_SECS.to_string()])
                .args(extra_args);
            command
        })
    }

    /// Runs the command that `command` makes for a free loopback port, its output going to
    /// `log`, and waits until `probe` says it serves. A server that exits or never answers is
    /// started again on a new port, up to [`START_ATTEMPTS`] times; `what` names it in the
    /// error.
    pub(super) fn spawn(
        what: &str,
        log: &Path,
        probe: Probe,
        stop: Stop,
        command: impl Fn(SocketAddr) -> Command,
    ) -> Result<Self> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let addr = free_port()?;
            let mut command = command(addr);
            let program = PathBuf::from(command.get_program());
            let log_file = fs::File::create(log)?;
            let child = command
                // A log file, not a terminal: no colour codes.
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .spawn()
                .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
            let mut server = Self {
                child,
                addr,
                log: log.to_path_buf(),
                stop,
            };
            match server.wait_serving(&probe) {
                Ok(()) => return Ok(server),
                Err(err) => last_error = err,
            }
        }
        Err(format!(
            "{what} did not start: {last_error}\n{}",
            tail(log, SERVER_LOG_TAIL_LINES)
        )
        .into())
    }

    pub(super) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `probe` answers, and fails at once if the process exits first.
    fn wait_serving(&mut self, probe: &Probe) -> Result<(), String> {
        let deadline = Instant::now() + probe.timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            if probe.answers(self.addr) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        let status = probe
            .status
            .map(|status| format!(" {status}"))
            .unwrap_or_default();
        Err(format!(
            "{} did not answer{status} within {} s",
            probe.path,
            probe.timeout.as_secs()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if self.stop == Stop::Graceful {
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
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// After a failure: the tail of the log at `log`, of the server `what` names.
pub(super) fn print_log_tail(what: &str, log: &Path) {
    eprintln!(
        "\nxtask: interop: last {SERVER_LOG_TAIL_LINES} lines of the {what}'s log ({}):",
        log.display()
    );
    eprintln!("{}", tail(log, SERVER_LOG_TAIL_LINES));
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

    /// Serves one connection on a loopback port with `answer`, and returns the request it got.
    fn answer_once(answer: &'static str) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let served = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut byte = [0_u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                request.push(byte[0]);
            }
            stream.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, served)
    }

    #[test]
    fn probe_sends_its_headers_and_accepts_only_its_status() {
        let (addr, served) = answer_once("HTTP/1.1 200 OK\r\n\r\n");
        assert!(HEALTHZ.answers(addr));
        assert_eq!(
            served.join().unwrap(),
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        );

        let (addr, served) = answer_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(!HEALTHZ.answers(addr));
        served.join().unwrap();

        let any = Probe {
            path: "/mcp",
            headers: "Accept: text/event-stream\r\n",
            status: None,
            timeout: SERVER_START_TIMEOUT,
        };
        let (addr, served) = answer_once("HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(any.answers(addr));
        assert_eq!(
            served.join().unwrap(),
            format!(
                "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
            )
        );
    }
}
