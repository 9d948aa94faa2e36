//! `cargo xtask bench profile TARGET ENDPOINT`: where one server's time goes on one endpoint.
//!
//! The same release binary, config and load as `bench e2e`, but one target (`floor`,
//! `rmcp-floor`, `memory` or `sqlite`) and one endpoint, loaded for [`WINDOWS`] measured
//! windows while `perf record` samples the server (every thread, kernel included). The CPU
//! per request of each window is printed as in `bench e2e`, so a profile is always read
//! beside the figure it explains; the samples land in `target/bench-profile.data` for
//! `perf report -i`.
//!
//! The binaries are built with the `profiling` cargo profile: the release profile plus line
//! tables, in a directory of their own, so that `--call-graph dwarf` in `MCP_AUTH_PERF_ARGS`
//! gives stacks without disturbing the release build. Other `perf record` options go there too
//! (`-e raw_syscalls:sys_enter` counts system calls).

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use xshell::Shell;

use super::report::Endpoint;
use super::{
    Pinning, Target, TempDir, build_profile, clock_ticks_per_second, load, write_server_files,
};
use crate::Result;

/// Measured windows of load while perf records (each is `load`'s warm-up and window).
const WINDOWS: usize = 5;

pub(crate) fn run(sh: &Shell, root: &Path, cargo: &str, args: &[String]) -> Result<ExitCode> {
    let [target, endpoint] = args else {
        return Err(format!("`bench profile` takes TARGET and ENDPOINT: {USAGE}").into());
    };
    let endpoint = Endpoint::ALL
        .into_iter()
        .find(|candidate| candidate.name() == endpoint)
        .ok_or_else(|| format!("unknown endpoint {endpoint:?}: {USAGE}"))?;
    let (server_bin, floor_bin) = build_profile(sh, root, cargo, "e2e_floor", "profiling")?;
    let pinning = Pinning::detect()?;
    let work = TempDir::create("profile")?;
    write_server_files(&work.0, load::CONNECTIONS)?;
    let sqlite_url = format!("sqlite://{}", work.0.join("mcp-auth.db").display());
    let target = match target.as_str() {
        "floor" => Target::floor(&floor_bin, &pinning, false)?,
        "rmcp-floor" => Target::floor(&floor_bin, &pinning, true)?,
        "memory" => Target::server("memory", &server_bin, "memory", &work.0, &pinning, None)?,
        "sqlite" => Target::server("SQLite", &server_bin, &sqlite_url, &work.0, &pinning, None)?,
        other => return Err(format!("unknown target {other:?}: {USAGE}").into()),
    };
    let data = root.join("target").join("bench-profile.data");
    let mut perf = Command::new("perf");
    perf.arg("record")
        .args(
            std::env::var("MCP_AUTH_PERF_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .arg("-o")
        .arg(&data)
        .arg("-p")
        .arg(target.process.pid().to_string())
        .stdout(Stdio::null());
    let mut perf = perf
        .spawn()
        .map_err(|err| format!("perf record could not start: {err}"))?;
    let (prepare, expect) = target.shape(endpoint);
    let clock = load::CpuClock::new(target.process.pid(), clock_ticks_per_second());
    for window in 1..=WINDOWS {
        let run = load::load(target.addr, &clock, &prepare, expect)?;
        eprintln!(
            "xtask: bench profile: window {window}/{WINDOWS} {} {}: {:.1} µs/request, \
             {} requests, {} unexpected answers",
            target.name,
            endpoint.label(),
            run.cpu_per_request_us().unwrap_or(f64::NAN),
            run.requests,
            run.unexpected
        );
    }
    // perf writes its file when interrupted.
    Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status()?;
    perf.wait()?;
    eprintln!(
        "xtask: bench profile: samples in {}; read them with\n  perf report -i {} --no-children --sort dso,symbol",
        data.display(),
        data.display()
    );
    Ok(ExitCode::SUCCESS)
}

const USAGE: &str = "cargo xtask bench profile floor|rmcp-floor|memory|sqlite \
                     metadata|tools-call|unknown-bearer|issuance|bogus-code|registration";
