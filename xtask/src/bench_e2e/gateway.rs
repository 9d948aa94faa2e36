//! `cargo xtask bench gateway`: what `mcp-auth-server --upstream` adds to each request. A
//! trivial MCP server without auth (`tests/examples/e2e_upstream.rs`, "the upstream") is
//! loaded directly and through the release gateway (memory store, bearer token from
//! `client_credentials`) in the same run, at the same concurrency ([`CONNECTIONS`]), in
//! alternating rounds: `tools/call` in an MCP session per connection.
//!
//! The upstream's own CPU per request is the same either way, so the gateway's process CPU per
//! request is what the gateway adds; the upstream's CPU during the gateway runs is reported
//! as a check of that. Both processes run pinned to the one server CPU (the load generator
//! on the other), so the gateway run's throughput is bounded by their sum, and under a
//! closed load latency follows throughput (p50 ≈ connections ÷ requests per second). Hence
//! also the latency of one connection's sequential calls, which shows the hop itself.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xshell::Shell;

use super::http::{self, Conn};
use super::load::{self, CpuClock, Latency, LoadRun, Prepare};
use super::requests::{ECHO_TEXT, mcp_session};
use super::{
    MACHINE_CLIENT, MCP_PROTOCOL_VERSION, Pinning, ROUNDS, SCOPE, Target, TempDir, build,
    clock_ticks_per_second, spawn_listening, write_server_files,
};
use crate::Result;

/// Concurrent connections, both ways: the issue states its latency goal at 64.
const CONNECTIONS: usize = 64;
/// Goal: CPU the gateway process spends per proxied request, in µs.
const GOAL_GATEWAY_CPU_US: f64 = 25.0;
/// Goal: what the gateway adds to p99 at [`CONNECTIONS`] connections, in ms.
const GOAL_ADDED_P99_MS: f64 = 1.0;
/// The request rate of the paced latency runs, all connections together: a load both routes
/// serve (the gateway's core a quarter busy), so that the latency is the hop's and not the
/// queue of a saturated server.
const PACED_RATE: u64 = 10_000;
/// Paced runs each way, alternating; the report quotes the least p99.
const PACED_ROUNDS: usize = 3;

/// The way a request reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Direct,
    Gateway,
}

/// One load run: the run (its `cpu` is the upstream's when direct, the gateway's through it)
/// and the upstream's CPU during it.
type Run = (LoadRun, Duration);

/// Builds the binaries, runs both ways in alternating rounds and prints the report.
pub(crate) fn run(sh: &Shell, root: &std::path::Path, cargo: &str) -> Result<ExitCode> {
    let (server_bin, upstream_bin) = build(sh, root, cargo, "e2e_upstream")?;
    let started = Instant::now();
    let pinning = Pinning::detect()?;
    let work = TempDir::create("gateway")?;
    write_server_files(&work.0, CONNECTIONS)?;
    let (upstream, upstream_addr) =
        spawn_listening("upstream", pinning.beside_load(&upstream_bin))?;
    let url = format!("http://{upstream_addr}/mcp");
    let gateway = Target::server(
        "gateway",
        &server_bin,
        "memory",
        &work.0,
        &pinning,
        Some(&url),
    )?;
    let seen = upstream_sees(&gateway)?;
    let direct_prepare = session_calls(upstream_addr, &gateway.token);
    check_echo(upstream_addr, &direct_prepare)?;
    let gateway_prepare = session_calls(gateway.addr, &gateway.token);

    let ticks = clock_ticks_per_second();
    let upstream_clock = CpuClock::new(upstream.pid(), ticks);
    let gateway_clock = CpuClock::new(gateway.process.pid(), ticks);
    let setting = setting(&pinning);
    eprintln!("xtask: bench gateway: {setting}; {CONNECTIONS} connections, {ROUNDS} rounds");
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        for route in [Route::Direct, Route::Gateway] {
            let outcome = match route {
                Route::Direct => load::load_with(
                    upstream_addr,
                    CONNECTIONS,
                    &[&upstream_clock],
                    &direct_prepare,
                    200,
                ),
                Route::Gateway => load::load_with(
                    gateway.addr,
                    CONNECTIONS,
                    &[&gateway_clock, &upstream_clock],
                    &gateway_prepare,
                    200,
                ),
            };
            let outcome = outcome
                .map(|(run, cpu)| {
                    let upstream_cpu = cpu.last().copied().unwrap_or_default();
                    (run, upstream_cpu)
                })
                .map_err(|err| format!("{err}; gateway log ends:\n{}", gateway.process.log_tail()));
            log_round(round, route, &outcome);
            match route {
                Route::Direct => direct.push(outcome),
                Route::Gateway => through.push(outcome),
            }
        }
    }
    let mut paced: [Vec<Result<Latency, String>>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..PACED_ROUNDS {
        for (index, (addr, prepare)) in [
            (upstream_addr, &direct_prepare),
            (gateway.addr, &gateway_prepare),
        ]
        .into_iter()
        .enumerate()
        {
            let run = load::paced(addr, CONNECTIONS, PACED_RATE, prepare, 200)
                .map_err(|err| err.to_string());
            if let Ok(latency) = &run {
                eprintln!(
                    "xtask: bench gateway: paced {} p50 {:.3} ms p99 {:.3} ms",
                    ["direct", "gateway"][index],
                    latency.p50.as_secs_f64() * 1e3,
                    latency.p99.as_secs_f64() * 1e3
                );
            }
            paced[index].push(run);
        }
    }
    let report = Report {
        setting,
        seen,
        direct,
        gateway: through,
        paced,
        sequential: [
            load::latency(upstream_addr, &direct_prepare, 200).map_err(|err| err.to_string()),
            load::latency(gateway.addr, &gateway_prepare, 200).map_err(|err| err.to_string()),
        ],
        warnings: [upstream.warnings(), gateway.process.warnings()],
    };
    drop((gateway, upstream));
    println!("{}", report.render());
    eprintln!(
        "xtask: bench gateway: measured in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn setting(pinning: &Pinning) -> String {
    match pinning.cpus {
        Some((load, server)) => {
            format!(
                "the gateway pinned to CPU {server}, the upstream beside the load on CPU {load}"
            )
        }
        None => pinning.describe(),
    }
}

/// The `tools/call` request of a fresh MCP session per connection, with `token` (which the
/// upstream, when addressed directly, ignores).
fn session_calls(addr: std::net::SocketAddr, token: &str) -> Prepare {
    let token = token.to_owned();
    Arc::new(move |conn: &mut Conn| mcp_session(conn, addr, &token))
}

/// One call to the upstream directly, checked for its answer, before any load.
fn check_echo(addr: std::net::SocketAddr, prepare: &Prepare) -> Result<()> {
    let mut conn = Conn::connect(addr)?;
    let request = prepare(&mut conn)?;
    let answer = conn.round_trip(&request)?;
    let body = String::from_utf8_lossy(&answer.body);
    if answer.status != 200 || !body.contains("\"result\"") || !body.contains(ECHO_TEXT) {
        return Err(format!("upstream: tools/call answered {}: {body}", answer.status).into());
    }
    Ok(())
}

/// What the upstream saw of an `initialize` through the gateway (its `instructions`: the
/// identity headers and whether an `Authorization` header arrived).
fn upstream_sees(gateway: &Target) -> Result<String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{MCP_PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"xtask-bench","version":"0"}}}}}}"#
    );
    let authorization = format!("Bearer {}", gateway.token);
    let headers = [
        ("authorization", authorization.as_str()),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("mcp-protocol-version", MCP_PROTOCOL_VERSION),
    ];
    let request = http::request("POST", gateway.addr, "/mcp", &headers, body.as_bytes());
    let answer = Conn::connect(gateway.addr)?.round_trip(&request)?;
    super::requests::json_string_field(&answer.body, "instructions").ok_or_else(|| {
        format!(
            "gateway: initialize answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
        .into()
    })
}

fn log_round(round: usize, route: Route, outcome: &Result<Run, String>) {
    let name = match route {
        Route::Direct => "direct ",
        Route::Gateway => "gateway",
    };
    match outcome {
        Ok((run, upstream_cpu)) => {
            let p99 = run
                .under_load
                .map_or(f64::NAN, |l| l.p99.as_secs_f64() * 1e3);
            eprintln!(
                "xtask: bench gateway: round {round}/{ROUNDS} {name} {:>6.1} µs/request \
                 (upstream {:>5.1}), {:>6.0} requests/s, p99 {p99:.3} ms, busy {:>3.0}%",
                run.cpu_per_request_us().unwrap_or(f64::NAN),
                per_request_us(*upstream_cpu, run.requests).unwrap_or(f64::NAN),
                run.requests as f64 / run.elapsed.as_secs_f64().max(1e-9),
                busy(run) * 100.0
            );
        }
        Err(err) => eprintln!("xtask: bench gateway: round {round}/{ROUNDS} {name}: {err}"),
    }
}

fn per_request_us(cpu: Duration, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu.as_secs_f64() * 1e6 / requests as f64)
}

/// The share of the window the measured process (the upstream direct, the gateway through
/// it) spent on a CPU.
fn busy(run: &LoadRun) -> f64 {
    run.cpu.as_secs_f64() / run.elapsed.as_secs_f64().max(1e-9)
}

/// Every round's outcome both ways, and what the report needs besides.
struct Report {
    setting: String,
    /// The upstream's account of the identity the gateway forwarded.
    seen: String,
    direct: Vec<Result<Run, String>>,
    gateway: Vec<Result<Run, String>>,
    /// One connection's sequential calls: direct, through the gateway.
    sequential: [Result<Latency, String>; 2],
    /// The paced runs at [`PACED_RATE`]: direct, through the gateway.
    paced: [Vec<Result<Latency, String>>; 2],
    /// Warning and error lines logged: the upstream's, the gateway's.
    warnings: [(u64, Vec<String>); 2],
}

/// The least of each figure over the rounds of one route. Noise only ever adds (other
/// processes on the core, a process idling between requests and paying a wake-up for each),
/// so each least figure is the best estimate of the work itself.
#[derive(Debug, Default)]
struct Best {
    /// The loaded process's CPU per request: the upstream's direct, the gateway's through it.
    cpu_us: Option<f64>,
    /// The upstream's CPU per request.
    upstream_us: Option<f64>,
    /// Both processes' CPU per request.
    total_us: Option<f64>,
    /// The most requests per second, and how busy the server CPU was meanwhile.
    requests_per_second: Option<(f64, f64)>,
    /// The run with the least p99, whole.
    under_load: Option<Latency>,
}

fn least(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.filter(|v| v.is_finite()).min_by(f64::total_cmp)
}

impl Report {
    fn best(&self, route: Route) -> Best {
        let runs: Vec<&Run> = match route {
            Route::Direct => &self.direct,
            Route::Gateway => &self.gateway,
        }
        .iter()
        .filter_map(|run| run.as_ref().ok())
        .collect();
        let upstream = |(run, upstream): &&Run| match route {
            Route::Direct => run.cpu_per_request_us(),
            Route::Gateway => per_request_us(*upstream, run.requests),
        };
        Best {
            cpu_us: least(runs.iter().filter_map(|(run, _)| run.cpu_per_request_us())),
            upstream_us: least(runs.iter().filter_map(upstream)),
            total_us: least(runs.iter().filter_map(|(run, upstream)| match route {
                Route::Direct => run.cpu_per_request_us(),
                Route::Gateway => per_request_us(run.cpu + *upstream, run.requests),
            })),
            requests_per_second: runs
                .iter()
                .map(|(run, _)| {
                    let rate = run.requests as f64 / run.elapsed.as_secs_f64().max(1e-9);
                    (rate, busy(run))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0)),
            under_load: runs
                .iter()
                .filter_map(|(run, _)| run.under_load)
                .min_by_key(|latency| latency.p99),
        }
    }

    fn render(&self) -> String {
        let (direct, gateway) = (self.best(Route::Direct), self.best(Route::Gateway));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n### mcp-auth-server gateway mode: what the gateway adds per request, least of {} \
             rounds\n\n{}; {CONNECTIONS} connections, each `tools/call` in an MCP session of its \
             own; the gateway on the memory store, default logging\n\n\
             | | direct to the upstream | through the gateway | added |\n\
             | --- | ---: | ---: | ---: |",
            self.direct.len(),
            self.setting
        );
        let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1} µs"));
        let ms = |v: Option<Duration>| {
            v.map_or("–".to_owned(), |v| {
                format!("{:.3} ms", v.as_secs_f64() * 1e3)
            })
        };
        let mut row = |name: &str, a: String, b: String, c: String| {
            let _ = writeln!(out, "| {name} | {a} | {b} | {c} |");
        };
        row(
            "gateway CPU per request",
            "–".to_owned(),
            us(gateway.cpu_us),
            us(gateway.cpu_us),
        );
        row(
            "upstream CPU per request",
            us(direct.upstream_us),
            us(gateway.upstream_us),
            "(same work)".to_owned(),
        );
        row(
            "both processes' CPU per request",
            us(direct.total_us),
            us(gateway.total_us),
            added_us(direct.total_us, gateway.total_us),
        );
        row(
            "requests per second (measured process busy)",
            rate(direct.requests_per_second),
            rate(gateway.requests_per_second),
            "–".to_owned(),
        );
        let paced = |i: usize| {
            self.paced[i]
                .iter()
                .filter_map(|run| run.as_ref().ok())
                .min_by_key(|latency| latency.p99)
                .copied()
        };
        let (paced_direct, paced_gateway) = (paced(0), paced(1));
        for (name, f) in [
            (
                format!("p50 at {CONNECTIONS} connections, {PACED_RATE} requests/s"),
                p50 as fn(&Latency) -> Duration,
            ),
            (
                format!("p99 at {CONNECTIONS} connections, {PACED_RATE} requests/s"),
                p99,
            ),
        ] {
            row(
                &name,
                ms(paced_direct.as_ref().map(f)),
                ms(paced_gateway.as_ref().map(f)),
                added_ms(paced_direct.as_ref().map(f), paced_gateway.as_ref().map(f)),
            );
        }
        let p = |best: &Best, f: fn(&Latency) -> Duration| best.under_load.as_ref().map(f);
        for (name, f) in [
            (
                format!("p50 at {CONNECTIONS} connections, saturated"),
                p50 as fn(&Latency) -> Duration,
            ),
            (format!("p99 at {CONNECTIONS} connections, saturated"), p99),
        ] {
            row(
                &name,
                ms(p(&direct, f)),
                ms(p(&gateway, f)),
                added_ms(p(&direct, f), p(&gateway, f)),
            );
        }
        let seq = |i: usize, f: fn(&Latency) -> Duration| self.sequential[i].as_ref().ok().map(f);
        for (name, f) in [
            (
                "p50, one connection, sequential",
                p50 as fn(&Latency) -> Duration,
            ),
            ("p99, one connection, sequential", p99),
        ] {
            row(
                name,
                ms(seq(0, f)),
                ms(seq(1, f)),
                added_ms(seq(0, f), seq(1, f)),
            );
        }
        if let (Some((direct, _)), Some((through, _))) =
            (direct.requests_per_second, gateway.requests_per_second)
        {
            let queue = |rate: f64| CONNECTIONS as f64 / rate.max(1e-9) * 1e3;
            let _ = writeln!(
                out,
                "\nSaturated, a request waits for the others: p50 ≈ connections ÷ requests per \
                 second ({:.3} ms direct, {:.3} ms through the gateway), so those rows measure \
                 throughput. The paced rows send {PACED_RATE} requests a second in all, each \
                 timed from when it was due: the latency the hop adds at a load both routes \
                 serve. The latency goal is read from them.",
                queue(direct),
                queue(through)
            );
        }
        let _ = writeln!(
            out,
            "\nThe upstream saw, through the gateway: `{}`.\n\nGoals:\n",
            self.seen
        );
        let added_p99 = match (paced_direct.map(|l| l.p99), paced_gateway.map(|l| l.p99)) {
            (Some(a), Some(b)) => Some((b.as_secs_f64() - a.as_secs_f64()) * 1e3),
            _ => None,
        };
        for (met, text) in [
            (
                gateway.cpu_us.map(|cpu| cpu <= GOAL_GATEWAY_CPU_US),
                format!(
                    "the gateway adds ≤ {GOAL_GATEWAY_CPU_US} µs of CPU per request: {}",
                    us(gateway.cpu_us)
                ),
            ),
            (
                added_p99.map(|added| added <= GOAL_ADDED_P99_MS),
                format!(
                    "the gateway adds ≤ {GOAL_ADDED_P99_MS} ms to p99 at {CONNECTIONS} \
                     connections ({PACED_RATE} requests/s): {}",
                    added_p99.map_or("–".to_owned(), |a| format!("{a:+.3} ms"))
                ),
            ),
        ] {
            let mark = match met {
                Some(true) => "[x]",
                Some(false) => "[ ]",
                None => "[?]",
            };
            let _ = writeln!(out, "- {mark} {text}");
        }
        out.push_str(&self.problems());
        out
    }

    /// Failed runs, unexpected answers, reconnects, logged warnings, an identity the upstream
    /// should not have seen.
    fn problems(&self) -> String {
        let mut out = String::new();
        for (name, runs) in [("direct", &self.direct), ("gateway", &self.gateway)] {
            for (round, run) in runs.iter().enumerate() {
                let round = round + 1;
                match run {
                    Err(err) => {
                        let _ = writeln!(out, "- {name} round {round}: failed: {err}");
                    }
                    Ok((run, _)) if run.unexpected > 0 || run.reconnects > 0 => {
                        let _ = writeln!(
                            out,
                            "- {name} round {round}: {} of {} answers unexpected, {} reconnects; \
                             first unexpected: {}",
                            run.unexpected,
                            run.requests,
                            run.reconnects,
                            run.first_unexpected.as_deref().unwrap_or("–")
                        );
                    }
                    Ok(_) => {}
                }
            }
        }
        for (name, result) in ["direct", "gateway"].iter().zip(&self.sequential) {
            if let Err(err) = result {
                let _ = writeln!(out, "- {name} sequential latency: failed: {err}");
            }
        }
        for (name, (count, first)) in ["upstream", "gateway"].iter().zip(&self.warnings) {
            if *count > 0 {
                let _ = writeln!(
                    out,
                    "- the {name} logged {count} warnings or errors, first:"
                );
                for line in first {
                    let _ = writeln!(out, "  `{line}`");
                }
            }
        }
        let expected = [
            format!("client={MACHINE_CLIENT}"),
            format!("scopes={SCOPE}"),
            "authorization=absent".to_owned(),
        ];
        if !expected
            .iter()
            .all(|part| self.seen.contains(part.as_str()))
        {
            let _ = writeln!(
                out,
                "- the upstream did not see what the gateway should forward ({}): `{}`",
                expected.join(" "),
                self.seen
            );
        }
        if out.is_empty() {
            out
        } else {
            format!("\nProblems:\n\n{out}")
        }
    }
}

fn p50(latency: &Latency) -> Duration {
    latency.p50
}

fn p99(latency: &Latency) -> Duration {
    latency.p99
}

fn rate(value: Option<(f64, f64)>) -> String {
    value.map_or("–".to_owned(), |(rate, busy)| {
        format!("{rate:.0} ({:.0}%)", busy * 100.0)
    })
}

fn added_us(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.1} µs", b - a),
        _ => "–".to_owned(),
    }
}

fn added_ms(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.3} ms", (b.as_secs_f64() - a.as_secs_f64()) * 1e3),
        _ => "–".to_owned(),
    }
}

#[cfg(test)]
mod tests;
