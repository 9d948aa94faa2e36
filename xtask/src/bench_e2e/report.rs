//! The endpoints measured, the results gathered over rounds, and the markdown report with the
//! goals of issue 12.

use std::fmt::Write as _;

use super::load::{Latency, LoadRun};

pub(super) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// Goal: every endpoint on the memory store costs at most this many times the floor's CPU.
const GOAL_MEMORY_RATIO: f64 = 1.5;
/// Goal: SQLite token issuance CPU per request, in µs.
const GOAL_SQLITE_TOKEN_US: f64 = 80.0;
/// Goal: SQLite registration CPU per request, in µs.
const GOAL_SQLITE_REGISTER_US: f64 = 60.0;
/// Goal: an unknown bearer's 401 costs at most this many times a valid request.
const GOAL_REJECTION_RATIO: f64 = 1.5;
/// Goal: `tools/call` p50 on a kept-alive connection, in ms.
const GOAL_CALL_P50_MS: f64 = 2.0;

/// The index of each server in [`Measurements`] (the order `run` starts them). The floor
/// with rmcp ([`RMCP_FLOOR`]) only answers `tools/call` ([`Endpoint::measured_on`]).
pub(super) const FLOOR: usize = 0;
pub(super) const MEMORY: usize = 1;
pub(super) const SQLITE: usize = 2;
pub(super) const RMCP_FLOOR: usize = 3;
pub(super) const TARGETS: usize = 4;

/// An endpoint shape, measured on every server but the rmcp floor ([`Self::measured_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Metadata,
    ToolsCall,
    UnknownBearer,
    TokenIssuance,
    BogusCode,
    Registration,
}

impl Endpoint {
    pub(super) const ALL: [Self; 6] = [
        Self::Metadata,
        Self::ToolsCall,
        Self::UnknownBearer,
        Self::TokenIssuance,
        Self::BogusCode,
        Self::Registration,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::ToolsCall => "bearer check + tools/call",
            Self::UnknownBearer => "unknown bearer → 401",
            Self::TokenIssuance => "token issuance",
            Self::BogusCode => "/token with a bogus code",
            Self::Registration => "registration",
        }
    }

    /// Whether the server at index `target` is measured on this endpoint: the floor with
    /// rmcp serves only `/mcp`.
    pub(super) fn measured_on(self, target: usize) -> bool {
        target != RMCP_FLOOR || self == Self::ToolsCall
    }

    /// The endpoint's name on the command line (`cargo xtask bench profile`).
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::ToolsCall => "tools-call",
            Self::UnknownBearer => "unknown-bearer",
            Self::TokenIssuance => "issuance",
            Self::BogusCode => "bogus-code",
            Self::Registration => "registration",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

/// Every run's outcome, per server and endpoint, and each server's call latency.
#[derive(Default)]
pub(super) struct Measurements {
    runs: [[Vec<Result<LoadRun, String>>; 6]; TARGETS],
    latency: [Option<Result<Latency, String>>; TARGETS],
}

/// The least disturbed of a server's runs on one endpoint: the one with the least CPU per
/// request. Noise only adds cost (other processes on the core, a server idling between
/// requests and paying a wake-up for each), so the least figure is the best estimate of
/// what the server's own work costs.
struct Summary {
    cpu_us: Option<f64>,
    requests_per_second: Option<f64>,
    /// The share of the window the server was on its CPU.
    busy: Option<f64>,
    reconnects: bool,
}

impl Measurements {
    pub(super) fn add(&mut self, target: usize, endpoint: Endpoint, run: Result<LoadRun, String>) {
        if let Some(runs) = self.runs.get_mut(target) {
            runs[endpoint.index()].push(run);
        }
    }

    pub(super) fn add_latency(&mut self, target: usize, latency: Result<Latency, String>) {
        if let Some(slot) = self.latency.get_mut(target) {
            *slot = Some(latency);
        }
    }

    fn summary(&self, target: usize, endpoint: Endpoint) -> Summary {
        let runs: Vec<&LoadRun> = self.runs[target][endpoint.index()]
            .iter()
            .filter_map(|run| run.as_ref().ok())
            .collect();
        let best = runs
            .iter()
            .filter_map(|run| run.cpu_per_request_us().map(|cpu| (cpu, run)))
            .filter(|(cpu, _)| cpu.is_finite())
            .min_by(|a, b| a.0.total_cmp(&b.0));
        Summary {
            cpu_us: best.map(|(cpu, _)| cpu),
            requests_per_second: best
                .map(|(_, run)| run.requests as f64 / run.elapsed.as_secs_f64().max(1e-9)),
            busy: best.map(|(_, run)| run.busy()),
            reconnects: best.is_some_and(|(_, run)| run.reconnects > 0),
        }
    }

    fn cpu(&self, target: usize, endpoint: Endpoint) -> Option<f64> {
        self.summary(target, endpoint).cpu_us
    }

    fn p50_ms(&self, target: usize) -> Option<f64> {
        match &self.latency[target] {
            Some(Ok(latency)) => Some(latency.p50.as_secs_f64() * 1e3),
            _ => None,
        }
    }

    /// The markdown report: CPU per request with ratios to the floor, throughput, latency,
    /// the goals, and what went wrong if anything did.
    pub(super) fn report(&self, names: [&str; TARGETS], setting: &str) -> String {
        let mut out = String::new();
        let rounds = self.runs[FLOOR][0].len();
        let _ = writeln!(
            out,
            "\n### mcp-auth-server end to end: server CPU per request (µs), best of {rounds} \
             rounds\n\n{setting}; {} connections; default logging; † = the server closed the \
             connection after each answer (reconnects included)\n",
            super::load::CONNECTIONS
        );
        let _ = writeln!(
            out,
            "| endpoint | {0} | {1} | {1} ÷ {0} | {2} | {2} ÷ {0} |\n| --- | ---: | ---: | ---: | ---: | ---: |",
            names[FLOOR], names[MEMORY], names[SQLITE]
        );
        for endpoint in Endpoint::ALL {
            let cells: Vec<Summary> = (0..TARGETS).map(|t| self.summary(t, endpoint)).collect();
            let floor = cells[FLOOR].cpu_us;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                endpoint.label(),
                cpu_cell(&cells[FLOOR]),
                cpu_cell(&cells[MEMORY]),
                ratio_cell(cells[MEMORY].cpu_us, floor),
                cpu_cell(&cells[SQLITE]),
                ratio_cell(cells[SQLITE].cpu_us, floor),
            );
        }
        out.push_str(&self.mcp_server_share(names));
        let _ = writeln!(
            out,
            "\nRequests per second and how busy the server's core was, in the same runs:\n\n\
             | endpoint | {} | {} | {} |\n| --- | ---: | ---: | ---: |",
            names[FLOOR], names[MEMORY], names[SQLITE]
        );
        for endpoint in Endpoint::ALL {
            let rate = |t| {
                let summary = self.summary(t, endpoint);
                match (summary.requests_per_second, summary.busy) {
                    (Some(rate), Some(busy)) => format!("{rate:.0} ({:.0}%)", busy * 100.0),
                    _ => "–".to_owned(),
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                endpoint.label(),
                rate(FLOOR),
                rate(MEMORY),
                rate(SQLITE)
            );
        }
        let _ = writeln!(
            out,
            "\n`tools/call` latency, sequential on one kept-alive connection:\n\n\
             | server | p50 | p99 | calls |\n| --- | ---: | ---: | ---: |"
        );
        for (target, name) in names.iter().enumerate() {
            let row = match &self.latency[target] {
                Some(Ok(l)) => format!(
                    "{:.3} ms | {:.3} ms | {}",
                    l.p50.as_secs_f64() * 1e3,
                    l.p99.as_secs_f64() * 1e3,
                    l.samples
                ),
                Some(Err(_)) => "error | error | 0".to_owned(),
                None => "– | – | 0".to_owned(),
            };
            let _ = writeln!(out, "| {name} | {row} |");
        }
        out.push_str(&self.goals(names));
        out.push_str(&self.problems(names));
        out
    }

    /// `tools/call` beside the floor that serves the same MCP server (rmcp, the same tools and
    /// session settings) behind a one-comparison bearer check: what the server (its
    /// authorization, logging and connection handling) adds to the MCP server it serves, apart
    /// from what the MCP server itself costs.
    fn mcp_server_share(&self, names: [&str; TARGETS]) -> String {
        let endpoint = Endpoint::ToolsCall;
        let rmcp = self.summary(RMCP_FLOOR, endpoint);
        let floor = self.cpu(FLOOR, endpoint);
        let mut out = format!(
            "\n{} on {} (the same rmcp server and tools behind a one-comparison bearer check, \
             none of the server's layers): {} µs, {} the floor's; {} ÷ it: {}, {} ÷ it: {}\n",
            endpoint.label(),
            names[RMCP_FLOOR],
            cpu_cell(&rmcp),
            ratio_cell(rmcp.cpu_us, floor),
            names[MEMORY],
            ratio_cell(self.cpu(MEMORY, endpoint), rmcp.cpu_us),
            names[SQLITE],
            ratio_cell(self.cpu(SQLITE, endpoint), rmcp.cpu_us),
        );
        if let (Some(server), Some(base)) = (self.cpu(MEMORY, endpoint), rmcp.cpu_us) {
            let _ = writeln!(
                out,
                "(the server adds {:.1} µs to what its MCP server costs, on {})",
                server - base,
                names[MEMORY]
            );
        }
        out
    }

    fn goals(&self, names: [&str; TARGETS]) -> String {
        let mut out = String::from("\nGoals (issue 12):\n\n");
        let mut line = |met: Option<bool>, text: String| {
            let mark = match met {
                Some(true) => "[x]",
                Some(false) => "[ ]",
                None => "[?]",
            };
            let _ = writeln!(out, "- {mark} {text}");
        };
        let ratios: Vec<(Endpoint, Option<f64>)> = Endpoint::ALL
            .iter()
            .map(|&e| (e, ratio(self.cpu(MEMORY, e), self.cpu(FLOOR, e))))
            .collect();
        let worst = ratios
            .iter()
            .filter_map(|(e, r)| r.map(|r| (e, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let all_known = ratios.iter().all(|(_, r)| r.is_some());
        line(
            worst.map(|(_, r)| all_known && r <= GOAL_MEMORY_RATIO),
            format!(
                "every endpoint on {} ≤ {GOAL_MEMORY_RATIO}× the floor: worst {}",
                names[MEMORY],
                worst.map_or("–".to_owned(), |(e, r)| format!(
                    "{} at {r:.2}×",
                    e.label()
                ))
            ),
        );
        for (endpoint, goal) in [
            (Endpoint::TokenIssuance, GOAL_SQLITE_TOKEN_US),
            (Endpoint::Registration, GOAL_SQLITE_REGISTER_US),
        ] {
            let cpu = self.cpu(SQLITE, endpoint);
            line(
                cpu.map(|cpu| cpu <= goal),
                format!(
                    "{} {} ≤ {goal} µs: {}",
                    names[SQLITE],
                    endpoint.label(),
                    cpu.map_or("–".to_owned(), |cpu| format!("{cpu:.1} µs"))
                ),
            );
        }
        for target in [MEMORY, SQLITE] {
            let r = ratio(
                self.cpu(target, Endpoint::UnknownBearer),
                self.cpu(target, Endpoint::ToolsCall),
            );
            line(
                r.map(|r| r <= GOAL_REJECTION_RATIO),
                format!(
                    "{}: a 401 ≤ {GOAL_REJECTION_RATIO}× a valid request: {}",
                    names[target],
                    r.map_or("–".to_owned(), |r| format!("{r:.2}×"))
                ),
            );
        }
        for target in [MEMORY, SQLITE] {
            let p50 = self.p50_ms(target);
            line(
                p50.map(|p50| p50 <= GOAL_CALL_P50_MS),
                format!(
                    "{}: tools/call p50 ≤ {GOAL_CALL_P50_MS} ms: {}",
                    names[target],
                    p50.map_or("–".to_owned(), |p50| format!("{p50:.3} ms"))
                ),
            );
        }
        out
    }

    /// Unexpected answers and failed runs, if any.
    fn problems(&self, names: [&str; TARGETS]) -> String {
        let mut out = String::new();
        for (target, name) in names.iter().enumerate() {
            for endpoint in Endpoint::ALL.into_iter().filter(|e| e.measured_on(target)) {
                for run in &self.runs[target][endpoint.index()] {
                    match run {
                        Ok(run) if run.unexpected > 0 => {
                            let _ = writeln!(
                                out,
                                "- {name} {}: {} of {} answers unexpected, first: {}",
                                endpoint.label(),
                                run.unexpected,
                                run.requests,
                                run.first_unexpected.as_deref().unwrap_or("")
                            );
                        }
                        Ok(_) => {}
                        Err(err) => {
                            let _ = writeln!(out, "- {name} {}: failed: {err}", endpoint.label());
                        }
                    }
                }
            }
            if let Some(Err(err)) = &self.latency[target] {
                let _ = writeln!(out, "- {name} latency: failed: {err}");
            }
        }
        if out.is_empty() {
            out
        } else {
            format!("\nProblems:\n\n{out}")
        }
    }
}

fn cpu_cell(summary: &Summary) -> String {
    match summary.cpu_us {
        Some(cpu) if summary.reconnects => format!("{cpu:.1} †"),
        Some(cpu) => format!("{cpu:.1}"),
        None => "–".to_owned(),
    }
}

fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (value, base) {
        (Some(value), Some(base)) if base > 0.0 => Some(value / base),
        _ => None,
    }
}

fn ratio_cell(value: Option<f64>, base: Option<f64>) -> String {
    ratio(value, base).map_or("–".to_owned(), |r| format!("{r:.2}×"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(requests: u64, cpu_ms: u64, reconnects: u64) -> Result<LoadRun, String> {
        Ok(LoadRun {
            requests,
            cpu: Duration::from_millis(cpu_ms),
            elapsed: Duration::from_secs(1),
            reconnects,
            ..LoadRun::default()
        })
    }

    #[test]
    fn the_report_gives_the_best_runs_ratios_to_the_floor_and_marks_missed_goals() {
        let mut m = Measurements::default();
        for endpoint in Endpoint::ALL {
            m.add(FLOOR, endpoint, run(100_000, 1_000, 0)); // 10 µs
            m.add(FLOOR, endpoint, run(100_000, 1_500, 0)); // 15 µs, disturbed
            if endpoint != Endpoint::UnknownBearer {
                m.add(MEMORY, endpoint, run(100_000, 1_200, 0)); // 12 µs
            }
            m.add(SQLITE, endpoint, run(10_000, 1_000, 0)); // 100 µs
        }
        m.add(RMCP_FLOOR, Endpoint::ToolsCall, run(100_000, 800, 0)); // 8 µs
        m.add(MEMORY, Endpoint::UnknownBearer, run(100_000, 5_000, 1)); // 50 µs, closes
        m.add(MEMORY, Endpoint::UnknownBearer, run(100_000, 4_000, 1)); // 40 µs, closes
        m.add(SQLITE, Endpoint::Registration, Err("refused".to_owned()));
        let latency = Latency {
            p50: Duration::from_micros(300),
            p99: Duration::from_millis(45),
            samples: 1000,
        };
        m.add_latency(MEMORY, Ok(latency));
        let report = m.report(["floor", "memory", "SQLite", "floor + rmcp"], "test");
        for expected in [
            "| metadata | 10.0 | 12.0 | 1.20× | 100.0 | 10.00× |",
            "| unknown bearer → 401 | 10.0 | 40.0 † | 4.00× |",
            "- [ ] every endpoint on memory ≤ 1.5× the floor: worst unknown bearer → 401 at 4.00×",
            "- [ ] SQLite token issuance ≤ 80 µs: 100.0 µs",
            "- [ ] memory: a 401 ≤ 1.5× a valid request: 3.33×",
            "- [x] memory: tools/call p50 ≤ 2 ms: 0.300 ms",
            "- [?] SQLite: tools/call p50 ≤ 2 ms: –",
            "- SQLite registration: failed: refused",
            "bearer check + tools/call on floor + rmcp (the same rmcp server and tools behind a \
             one-comparison bearer check, none of the server's layers): 8.0 µs, 0.80× the floor's; \
             memory ÷ it: 1.50×, SQLite ÷ it: 12.50×",
            "(the server adds 4.0 µs to what its MCP server costs, on memory)",
        ] {
            assert!(report.contains(expected), "{expected:?} not in\n{report}");
        }
    }
}
