//! Every `--cimd-*` setting and `--no-client-metadata-documents` can be set through its
//! `MCP_AUTH_*` environment variable, which beats the TOML file and loses to the flag. The
//! binary runs with `--check-config`, which prints the validated settings and exits: the
//! environment is the child's own, so no test changes the environment of this process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("config-env-{test}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `mcp-auth-server --check-config --store memory ARGS` with only `env` set among the
/// `MCP_AUTH_*` variables.
fn check(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-auth-server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MCP_AUTH_") {
            command.env_remove(name);
        }
    }
    command
        .args(["--check-config", "--store", "memory"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn settings(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // One line per value, so a list reads as `"a",` lines.
    stdout
}

#[test]
fn environment_variables_set_every_client_metadata_setting() {
    let dir = dir("all");
    let (a, b) = (dir.join("a.pem"), dir.join("b.pem"));
    std::fs::write(&a, "AAAA").unwrap();
    std::fs::write(&b, "BB").unwrap();
    let roots = format!("{},{}", a.display(), b.display());
    let out = settings(&check(
        &[
            ("MCP_AUTH_NO_CLIENT_METADATA_DOCUMENTS", "true"),
            ("MCP_AUTH_CIMD_ALLOW_ADDRESSES", "10.0.0.0/8, 127.0.0.1/32"),
            ("MCP_AUTH_CIMD_ROOT_CERTS", &roots),
            ("MCP_AUTH_CIMD_ALLOW_HOSTS", "*.apps.example,app.example"),
            ("MCP_AUTH_CIMD_DENY_HOSTS", "bad.apps.example"),
        ],
        &[],
    ));
    assert!(out.contains("enabled: false"), "{out}");
    for value in [
        "\"10.0.0.0/8\",",
        "\"127.0.0.1/32\",",
        "\"*.apps.example\",",
        "\"app.example\",",
        "\"bad.apps.example\",",
    ] {
        assert!(out.contains(value), "{value}: {out}");
    }
    // Both files, each followed by a newline.
    assert!(out.contains("root_certificates_pem: <8 bytes>"), "{out}");
}

#[test]
fn the_environment_beats_the_file_and_the_flag_beats_the_environment() {
    let dir = dir("precedence");
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "no_client_metadata_documents = true\ncimd_deny_hosts = [\"file.example\"]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = settings(&check(
        &[
            ("MCP_AUTH_NO_CLIENT_METADATA_DOCUMENTS", "false"),
            ("MCP_AUTH_CIMD_DENY_HOSTS", "env.example"),
        ],
        &["--config", file],
    ));
    assert!(out.contains("enabled: true"), "{out}");
    assert!(out.contains("\"env.example\","), "{out}");
    assert!(!out.contains("file.example"), "{out}");

    let out = settings(&check(&[], &["--config", file]));
    assert!(out.contains("enabled: false"), "{out}");
    assert!(out.contains("\"file.example\","), "{out}");

    let out = settings(&check(
        &[("MCP_AUTH_CIMD_DENY_HOSTS", "env.example")],
        &["--config", file, "--cimd-deny-host", "flag.example"],
    ));
    assert!(out.contains("\"flag.example\","), "{out}");
    assert!(!out.contains("env.example"), "{out}");
}

#[test]
fn invalid_environment_values_are_refused_naming_the_setting() {
    for (name, value, setting) in [
        (
            "MCP_AUTH_CIMD_ALLOW_ADDRESSES",
            "10.0.0.0/8,nope",
            "--cimd-allow-address",
        ),
        (
            "MCP_AUTH_CIMD_ROOT_CERTS",
            "/nonexistent/ca.pem",
            "--cimd-root-cert",
        ),
        (
            "MCP_AUTH_CIMD_ALLOW_HOSTS",
            "https://app.example",
            "--cimd-allow-host",
        ),
        (
            "MCP_AUTH_CIMD_DENY_HOSTS",
            "app.example:443",
            "--cimd-deny-host",
        ),
        (
            "MCP_AUTH_NO_CLIENT_METADATA_DOCUMENTS",
            "maybe",
            "no-client-metadata-documents",
        ),
    ] {
        let output = check(&[(name, value)], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(setting), "{name}={value}: {stderr}");
    }
}

#[test]
fn the_access_token_cache_ttl_comes_from_the_environment_too() {
    let out = settings(&check(&[("MCP_AUTH_ACCESS_TOKEN_CACHE_TTL", "9")], &[]));
    assert!(out.contains("access_token_cache_ttl: 9,"), "{out}");
}

#[test]
fn gateway_settings_come_from_the_environment_with_header_values_redacted() {
    let out = settings(&check(
        &[
            ("MCP_AUTH_UPSTREAM", "http://127.0.0.1:9/mcp"),
            (
                "MCP_AUTH_UPSTREAM_HEADERS",
                "X-Upstream-Key: s3cret-one\nX-Accept: a, b",
            ),
            ("MCP_AUTH_UPSTREAM_TIMEOUT", "7"),
            ("MCP_AUTH_TOOL_SCOPES", "deploy=mcp:admin,read=mcp:read"),
        ],
        &[],
    ));
    assert!(out.contains("http://127.0.0.1:9/mcp"), "{out}");
    assert!(out.contains("x-upstream-key: [redacted]"), "{out}");
    // One header per line: the comma inside a value does not split it.
    assert!(out.contains("x-accept: [redacted]"), "{out}");
    assert!(!out.contains("s3cret-one"), "a header value printed: {out}");
    assert!(out.contains("timeout: 7"), "{out}");
    assert!(
        out.contains("\"deploy\"") && out.contains("\"mcp:read\""),
        "{out}"
    );

    // Gateway settings without --upstream would do nothing, so they are refused.
    let refused = check(&[("MCP_AUTH_UPSTREAM_TIMEOUT", "7")], &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--upstream-timeout"));
    let refused = check(&[], &["--upstream", "ftp://example.com/mcp"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("http or https"));
}
