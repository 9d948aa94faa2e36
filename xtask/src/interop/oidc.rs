//! The OpenID Provider checks of `cargo xtask interop`, each against a real, independent
//! provider: npm `oidc-provider` (pinned in `interop/typescript/package-lock.json`), which needs
//! Node.js 22, the conformance suite's (`node22`). Each script starts its own provider and its
//! own mcp-auth-server, and stops both.
//!
//! - Resource server only (`interop/typescript/oidc_provider.mjs`): the provider issues RFC
//!   9068 JWT access tokens with resource indicators; a server started with
//!   `--authorization-server` must accept the one for its resource (the TypeScript SDK calls
//!   `whoami` with it) and refuse the one for another resource.
//! - Sign-in (`interop/python/oidc_sign_in_client.py`): the provider
//!   (`interop/typescript/oidc_sign_in_provider.mjs`) has a confidential client whose redirect
//!   URI is the server's callback, PKCE required, and a test account; a server with no local
//!   users and `--oidc-issuer` sends the Python SDK client's user there. The script plays that
//!   user at the provider's login and consent pages and at our consent page; `whoami` must
//!   show the provider's subject, `oidc:interop-user-1`.

use std::{
    path::PathBuf,
    process::{Command, ExitStatus},
};

use super::{CLIENT_TIMEOUT, Tools, run_bounded, server::print_log_tail};
use crate::Result;

const RESOURCE_SERVER_LINE: &str =
    "Resource server only: JWT access tokens of npm oidc-provider, called by the TypeScript SDK";
const SIGN_IN_LINE: &str = "OpenID Connect sign-in through npm oidc-provider, Python SDK client";

/// Runs both checks; returns one outcome each.
pub(super) fn run(tools: &Tools<'_>) -> Vec<(&'static str, Result<ExitStatus>)> {
    let resource_server_dir = tools.work.join("oidc-provider");
    let mut resource_server = Command::new(tools.node22);
    resource_server
        .current_dir(tools.root.join("interop/typescript"))
        .arg("oidc_provider.mjs")
        .arg("--server-bin")
        .arg(tools.server_bin)
        .arg("--dir")
        .arg(&resource_server_dir);

    let sign_in_dir = tools.work.join("oidc-sign-in");
    let mut sign_in = Command::new(tools.python);
    sign_in
        .arg(tools.root.join("interop/python/oidc_sign_in_client.py"))
        .arg("--server-bin")
        .arg(tools.server_bin)
        .arg("--node")
        .arg(tools.node22)
        .arg("--dir")
        .arg(&sign_in_dir);

    vec![
        check(
            RESOURCE_SERVER_LINE,
            resource_server,
            &[(
                "resource server",
                resource_server_dir.join("oidc-resource-server.log"),
            )],
        ),
        check(
            SIGN_IN_LINE,
            sign_in,
            &[
                ("OpenID Provider", sign_in_dir.join("provider.log")),
                ("relying party", sign_in_dir.join("server.log")),
            ],
        ),
    ]
}

/// Runs one check's script; when it fails, prints the tails of the `logs` it wrote.
fn check(
    line: &'static str,
    command: Command,
    logs: &[(&str, PathBuf)],
) -> (&'static str, Result<ExitStatus>) {
    let outcome = run_bounded(command, CLIENT_TIMEOUT);
    if !matches!(&outcome, Ok(status) if status.success()) {
        for (what, log) in logs {
            print_log_tail(what, log);
        }
    }
    (line, outcome)
}
