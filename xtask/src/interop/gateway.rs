//! The gateway checks of `cargo xtask interop`: `mcp-auth-server --upstream` in front of an MCP
//! server built with each official SDK, called by each official SDK's client.
//!
//! For each upstream (`interop/python/upstream_server.py`, Python SDK `MCPServer`;
//! `interop/typescript/upstream_server.mjs`, TypeScript SDK `McpServer`), both unauthenticated
//! streamable-HTTP servers with the tools `echo`, `headers` and `progress`: start it on a free
//! loopback port and wait until it answers HTTP; start a gateway, a second mcp-auth-server with
//! `--upstream http://127.0.0.1:PORT/mcp`, an `--upstream-header` the clients then look for,
//! and `--tool-scope headers=mcp:admin`; run `interop/python/gateway_client.py` and
//! `interop/typescript/gateway_client.mjs` against it (tools, forwarded and removed headers,
//! streamed progress, step-up to `mcp:admin`: see the scripts' docs); stop both. Each
//! client × upstream pair is one line of the summary.
//!
//! The upstream, like the gateway, is a child process owned by a [`Server`], which stops it
//! when dropped (the upstream is killed at once: [`Stop::Kill`]).

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::Duration,
};

use super::{
    CLIENT_TIMEOUT, Tools, any_failed, demo_sign_in, run_bounded,
    server::{Probe, Server, Stop, print_log_tail},
};
use crate::Result;

/// The header the gateway adds to every upstream request, as `--upstream-header` takes it, and
/// as the clients' `--expect-header` checks it arrived.
const UPSTREAM_HEADER: &str = "X-Upstream-Key: interop-secret";
const EXPECT_HEADER: &str = "X-Upstream-Key=interop-secret";
/// The per-tool scope the gateway enforces, which the clients must step up to.
const TOOL_SCOPE: &str = "headers=mcp:admin";
/// An upstream serves when `GET /mcp` gets any HTTP answer: without a session it is an error
/// status, which still shows the server is serving. It may take a while to start: the Python
/// one imports the SDK, starlette and uvicorn first.
const MCP_ANSWERS: Probe = Probe {
    path: "/mcp",
    headers: "Accept: text/event-stream\r\n",
    status: None,
    timeout: Duration::from_secs(60),
};

/// An upstream, and the summary lines of each client against it.
struct Case {
    name: &'static str,
    /// The server's script, relative to the project root; it runs in its own directory.
    script: &'static str,
    /// Run by the venv's Python, else by Node.js.
    python: bool,
    python_line: &'static str,
    typescript_line: &'static str,
}

const PYTHON_UPSTREAM: Case = Case {
    name: "python",
    script: "interop/python/upstream_server.py",
    python: true,
    python_line: "Gateway to the Python SDK's MCPServer, Python SDK client (403 insufficient_scope, step-up)",
    typescript_line: "Gateway to the Python SDK's MCPServer, TypeScript SDK client (403 insufficient_scope, step-up by auth())",
};
const TYPESCRIPT_UPSTREAM: Case = Case {
    name: "typescript",
    script: "interop/typescript/upstream_server.mjs",
    python: false,
    python_line: "Gateway to the TypeScript SDK's McpServer, Python SDK client (403 insufficient_scope, step-up)",
    typescript_line: "Gateway to the TypeScript SDK's McpServer, TypeScript SDK client (403 insufficient_scope, step-up by auth())",
};

/// Runs both clients against a gateway to each upstream; returns one outcome per pair.
pub(super) fn run(tools: &Tools<'_>) -> Vec<(&'static str, Result<ExitStatus>)> {
    let mut outcomes = Vec::new();
    for case in [PYTHON_UPSTREAM, TYPESCRIPT_UPSTREAM] {
        match run_case(tools, &case) {
            Ok(mut pair) => outcomes.append(&mut pair),
            // Nothing ran: both lines carry why.
            Err(err) => {
                let why = err.to_string();
                outcomes.push((case.python_line, Err(why.clone().into())));
                outcomes.push((case.typescript_line, Err(why.into())));
            }
        }
    }
    outcomes
}

fn run_case(tools: &Tools<'_>, case: &Case) -> Result<Vec<(&'static str, Result<ExitStatus>)>> {
    let upstream_log = tools
        .work
        .join(format!("gateway-{}-upstream.log", case.name));
    let upstream = start_upstream(tools, case, &upstream_log)?;
    let upstream_url = format!("http://{}/mcp", upstream.addr);
    eprintln!(
        "xtask: interop: the {} upstream is up at {upstream_url}",
        case.name
    );
    let gateway_args = [
        "--upstream".to_owned(),
        upstream_url,
        "--upstream-header".to_owned(),
        UPSTREAM_HEADER.to_owned(),
        "--tool-scope".to_owned(),
        TOOL_SCOPE.to_owned(),
    ];
    let gateway_log = tools.work.join(format!("gateway-{}.log", case.name));
    let gateway = Server::start(tools.server_bin, &gateway_log, &gateway_args)?;
    let origin = gateway.origin();
    eprintln!("xtask: interop: the gateway is up at {origin}");
    let sign_in_args = demo_sign_in(&origin);
    let expect_args = ["--expect-header", EXPECT_HEADER];

    let mut python_client = Command::new(tools.python);
    python_client
        .arg(tools.root.join("interop/python/gateway_client.py"))
        .args(sign_in_args)
        .args(expect_args);
    let mut node_client = Command::new("node");
    node_client
        .current_dir(tools.root.join("interop/typescript"))
        .arg("gateway_client.mjs")
        .args(sign_in_args)
        .args(expect_args);
    let outcomes = vec![
        (case.python_line, run_bounded(python_client, CLIENT_TIMEOUT)),
        (
            case.typescript_line,
            run_bounded(node_client, CLIENT_TIMEOUT),
        ),
    ];

    if any_failed(&outcomes) {
        for (what, log) in [("gateway", &gateway_log), ("upstream", &upstream_log)] {
            print_log_tail(&format!("{} {what}", case.name), log);
        }
    }
    drop(gateway);
    drop(upstream);
    Ok(outcomes)
}

/// Starts the upstream on a free loopback port and waits until it answers HTTP at `/mcp`.
fn start_upstream(tools: &Tools<'_>, case: &Case, log: &Path) -> Result<Server> {
    let program = if case.python {
        tools.python.to_path_buf()
    } else {
        PathBuf::from("node")
    };
    let script = tools.root.join(case.script);
    let what = format!("the {} upstream", case.name);
    Server::spawn(&what, log, MCP_ANSWERS, Stop::Kill, |addr| {
        let mut command = Command::new(&program);
        command
            .current_dir(script.parent().unwrap_or(tools.root))
            .arg(&script)
            .args(["--port", &addr.port().to_string()]);
        command
    })
}
