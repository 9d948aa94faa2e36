//! Project automation, run as `cargo xtask <command>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! - `test [nextest args]`: start throwaway PostgreSQL and Redis servers, run the doctests and
//!   the nextest suite against them, stop the servers. Missing server binaries are installed
//!   first with apt-get when xtask runs as root or has passwordless sudo, unless
//!   `MCP_AUTH_NO_PROVISION=1` (`provision.rs`).
//! - `services`: start the same servers (installing them the same way), print their `export`
//!   lines, wait for Ctrl-C.
//! - `lint`: rustfmt, clippy, rustdoc and cargo-deny with warnings denied, then `tidy`.
//! - `tidy`: repository hygiene checks that need no compiler.
//! - `interop`: the official MCP Python and TypeScript SDK clients against `mcp-auth-server`.
//! - `bench`: requests per second behind `RequireBearerLayer` beside the bare endpoint
//!   (`tests/benches/bearer.rs`), on the memory and the SQLite store with and without the
//!   token cache, then the layer's own cost without sockets (`tests/benches/bearer_layer.rs`,
//!   criterion).
//!   Then `bench e2e` and `bench gateway`.
//! - `bench e2e`: the release binary `mcp-auth-server` end to end over loopback, on the memory
//!   store and on SQLite, beside a minimal axum floor built in the same run
//!   (`tests/examples/e2e_floor.rs`): server CPU per request of each endpoint and its ratio to
//!   the floor, and `tools/call` latency on a kept-alive connection (`bench_e2e.rs`).
//! - `bench gateway`: a trivial MCP upstream (`tests/examples/e2e_upstream.rs`) loaded
//!   directly and through `mcp-auth-server --upstream` in the same run, 64 connections both
//!   ways: the gateway's CPU per request and the latency it adds (`bench_e2e/gateway.rs`).
//! - `bench lib`: only the library benches, without `bench e2e` and `bench gateway`.
//! - `ci`: `lint`, then `test`, then `interop`.

mod bench_e2e;
mod interop;
mod provision;
mod services;
mod tidy;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use xshell::{Shell, cmd};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [ARGS]   start PostgreSQL and Redis, run `cargo test --workspace --doc` and
                `cargo nextest run --workspace --profile ci [ARGS]` against them; installs
                PostgreSQL and Redis with apt-get first if they are missing and xtask runs
                as root or with passwordless sudo (MCP_AUTH_NO_PROVISION=1 forbids it)
  services      start PostgreSQL and Redis (installing them like `test`), print their
                environment, wait for Ctrl-C
  lint          fmt --check, clippy -D warnings, doc -D warnings, cargo deny, tidy
  tidy          repository hygiene checks
  interop       run the official MCP Python and TypeScript SDK clients against
                mcp-auth-server: sign-in, whoami, refresh (needs python3 and node)
  bench         requests per second of an endpoint behind RequireBearerLayer beside the
                same endpoint without it (memory and SQLite stores, loopback only), then
                the layer's own cost per request without sockets; then `bench e2e`
                and `bench gateway`
  bench lib     only the library benches above
  bench e2e     the release binary mcp-auth-server end to end (memory and SQLite stores)
                beside a minimal axum floor built in the same run: server CPU per request
                of metadata, tools/call, 401, token issuance, bogus code, registration,
                with ratios to the floor; tools/call also beside the floor serving the
                server's own rmcp tools (what the server adds to its MCP server);
                tools/call latency on one kept-alive connection (servers pinned to one
                core with taskset; ~3 minutes after the release builds)
  bench profile TARGET ENDPOINT
                perf record of one server (floor, rmcp-floor, memory, sqlite) under one
                endpoint's load of `bench e2e`, into target/bench-profile.data
  bench gateway a trivial MCP upstream loaded directly and through mcp-auth-server
                --upstream, 64 connections both ways, alternating rounds: the gateway's
                CPU per request, the upstream's, p50/p99 under load and sequential, and
                the goals (both servers pinned to one core; ~30 s after the builds)
  ci            lint, then test, then interop";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let takes_args = matches!(
        command.as_str(),
        "test" | "bench" | services::WATCHDOG_COMMAND
    );
    if !takes_args && !rest.is_empty() {
        return Err(format!("`{command}` takes no arguments\n\n{USAGE}").into());
    }
    match command.as_str() {
        "test" => test(rest),
        "services" => services(),
        "lint" => lint().map(|()| ExitCode::SUCCESS),
        "tidy" => tidy().map(|()| ExitCode::SUCCESS),
        "ci" => {
            lint()?;
            let tested = test(&[])?;
            if tested != ExitCode::SUCCESS {
                return Ok(tested);
            }
            interop()
        }
        "interop" => interop(),
        "bench" => bench(rest),
        services::WATCHDOG_COMMAND => services::watchdog(rest).map(|()| ExitCode::SUCCESS),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}").into()),
    }
}

/// The workspace root: xtask lives one level below it.
fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo that runs us (set by `cargo run`), so a toolchain override stays in force.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn shell() -> Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    Ok(sh)
}

fn test(nextest_args: &[String]) -> Result<ExitCode> {
    let cargo = cargo();
    let has_nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_nextest {
        return Err("cargo-nextest not found: cargo install --locked cargo-nextest".into());
    }

    let started = Instant::now();
    let services = services::Services::start()?;
    eprintln!(
        "xtask: PostgreSQL on port {} and Redis on port {} are up ({:.1} s)",
        services.postgres_port(),
        services.redis_port(),
        started.elapsed().as_secs_f64()
    );

    // The doctests run first so that nextest's summary is the run's closing line.
    let doc = run_tests(&services, &cargo, &["test", "--workspace", "--doc"], &[])?;
    let nextest = run_tests(
        &services,
        &cargo,
        &["nextest", "run", "--workspace", "--profile", "ci"],
        nextest_args,
    )?;
    drop(services);

    // Report the first failure's own exit status, so `cargo xtask test` exits like the runner.
    for status in [nextest, doc] {
        if !status.success() {
            let code = status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1);
            return Ok(ExitCode::from(code.max(1)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_tests(
    services: &services::Services,
    cargo: &str,
    args: &[&str],
    extra: &[String],
) -> Result<std::process::ExitStatus> {
    let words: Vec<&str> = (args.iter().copied())
        .chain(extra.iter().map(String::as_str))
        .collect();
    eprintln!("$ cargo {}", words.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .args(extra)
        .envs(services.env())
        .current_dir(project_root())
        .status()
        .map_err(|err| format!("cannot run {cargo}: {err}"))?;
    Ok(status)
}

fn interop() -> Result<ExitCode> {
    interop::run(&shell()?, &project_root(), &cargo())
}

/// `bench [lib | e2e | gateway]`. The library's load run and its report live in the bench
/// target, which has the workspace's crates at hand; this only builds and runs it optimised.
/// The binary's end-to-end runs live in `bench_e2e.rs` and `bench_e2e/gateway.rs`.
fn bench(args: &[String]) -> Result<ExitCode> {
    if let [first, rest @ ..] = args
        && first == "profile"
    {
        return bench_e2e::run_profile(&shell()?, &project_root(), &cargo(), rest);
    }
    let (lib, e2e, gateway) = match args {
        [] => (true, true, true),
        [only] if only == "lib" => (true, false, false),
        [only] if only == "e2e" => (false, true, false),
        [only] if only == "gateway" => (false, false, true),
        _ => {
            return Err(
                format!("`bench` takes `lib`, `e2e`, `gateway` or nothing\n\n{USAGE}").into(),
            );
        }
    };
    let sh = shell()?;
    let cargo = cargo();
    if lib {
        cmd!(sh, "{cargo} bench --package mcp-auth-tests --bench bearer").run()?;
        cmd!(
            sh,
            "{cargo} bench --package mcp-auth-tests --bench bearer_layer"
        )
        .run()?;
        cmd!(
            sh,
            "{cargo} bench --package mcp-auth-jwt --features test-util --bench access_token"
        )
        .run()?;
    }
    if e2e {
        let code = bench_e2e::run(&sh, &project_root(), &cargo)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    if gateway {
        return bench_e2e::run_gateway(&sh, &project_root(), &cargo);
    }
    Ok(ExitCode::SUCCESS)
}

fn services() -> Result<ExitCode> {
    let services = services::Services::start()?;
    for (name, value) in services.env() {
        println!("export {name}={}", services::shell_quote(&value));
    }
    eprintln!("xtask: PostgreSQL and Redis are running; press Ctrl-C to stop them");
    // Ctrl-C ends this process; the watchdog process then stops the servers (see services.rs).
    loop {
        std::thread::park();
    }
}

fn lint() -> Result<()> {
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} fmt --all -- --check").run()?;
    tidy()?;
    cmd!(
        sh,
        "{cargo} clippy --workspace --all-targets -- -D warnings"
    )
    .run()?;
    cmd!(sh, "{cargo} doc --workspace --no-deps")
        .env("RUSTDOCFLAGS", "-D warnings")
        .run()?;
    ensure_cargo_deny(&sh, &cargo)?;
    cmd!(sh, "{cargo} deny check bans licenses sources").run()?;
    Ok(())
}

/// Installs cargo-deny on first use: a fresh CI machine does not have it.
fn ensure_cargo_deny(sh: &Shell, cargo: &str) -> Result<()> {
    if cmd!(sh, "{cargo} deny --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        return Ok(());
    }
    eprintln!("xtask: cargo-deny is missing; installing it (takes a few minutes once)");
    let started = Instant::now();
    cmd!(sh, "{cargo} install --locked cargo-deny").run()?;
    eprintln!(
        "xtask: installed cargo-deny in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn tidy() -> Result<()> {
    let sh = shell()?;
    let problems = tidy::check(&sh, &project_root())?;
    if problems.is_empty() {
        eprintln!("xtask: tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    Err(format!("tidy found {} problem(s)", problems.len()).into())
}
