use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    Config::from_args(std::iter::once("mcp-auth-server").chain(args.iter().copied()))
}

#[test]
fn defaults_give_a_local_sqlite_server() {
    let config = parse(&[]).unwrap();
    assert_eq!(config.bind, DEFAULT_BIND);
    assert_eq!(config.issuer, None);
    assert_eq!(config.store, StoreUrl::Sqlite(DEFAULT_STORE.to_owned()));
    assert_eq!(config.scopes, ["mcp:tools"]);
    assert_eq!(config.default_scopes, ["mcp:tools"]);
    assert_eq!(config.access_token_ttl, 3600);
    assert_eq!(config.access_token_cache_ttl, 30, "SQLite caches tokens");
}

#[test]
fn the_access_token_cache_is_on_for_sqlite_only_unless_configured() {
    for (args, expected) in [
        (&["--store", "memory"][..], 0),
        (&["--store", "postgres://localhost/db"], 0),
        (&["--store", "redis://localhost"], 0),
        (&["--store", "sqlite://x.db"], 30),
        (
            &["--store", "sqlite://x.db", "--access-token-cache-ttl", "0"],
            0,
        ),
        (
            &[
                "--store",
                "redis://localhost",
                "--access-token-cache-ttl",
                "5",
            ],
            5,
        ),
    ] {
        assert_eq!(
            parse(args).unwrap().access_token_cache_ttl,
            expected,
            "{args:?}"
        );
    }
    let dir = std::env::temp_dir().join(format!("mcp-auth-cache-ttl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "store = \"postgres://localhost/db\"\naccess_token_cache_ttl = 7\n",
    )
    .unwrap();
    let config = parse(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(config.access_token_cache_ttl, 7);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flags_override_the_file_and_lists_are_replaced_whole() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:9000\"\nstore = \"memory\"\nscopes = [\"a\", \"b\"]\n\
         users = [\"file:pw\"]\naccess_token_ttl = 60\n",
    )
    .unwrap();
    let config = parse(&[
        "--config",
        file.to_str().unwrap(),
        "--bind",
        "127.0.0.1:9001",
        "--user",
        "flag:pw:with:colons",
    ])
    .unwrap();
    assert_eq!(config.bind, "127.0.0.1:9001");
    assert_eq!(config.store, StoreUrl::Memory);
    assert_eq!(config.scopes, ["a", "b"]);
    assert_eq!(config.access_token_ttl, 60);
    assert_eq!(config.users.len(), 1);
    assert_eq!(config.users[0].name, "flag");
    assert!(matches!(config.users[0].secret(), UserSecret::Password(pw) if pw == "pw:with:colons"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_invalid_settings() {
    let cases: &[&[&str]] = &[
        &["--store", "mysql://x"],
        &["--user", "nopassword"],
        &["--user", "a:"],
        &["--user", "a:1", "--user", "a:2"],
        &["--issuer", "http://example.com"],
        &["--scopes", "a", "--default-scopes", "b"],
        &["--scopes", " "],
        &["--access-token-cache-ttl", "301"],
        &["--trusted-idp", "https://idp.example"],
        &[
            "--trusted-idp",
            "http://idp.example=https://idp.example/jwks",
        ],
        &[
            "--trusted-idp",
            "https://idp.example=ftp://idp.example/jwks",
        ],
        &["--client", "/nonexistent/client.json"],
        &["--access-token-ttl", "soon"],
    ];
    for case in cases {
        assert!(parse(case).is_err(), "{case:?} should be refused");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let config = parse(&[
        "--user",
        "alice:hunter2",
        "--store",
        "postgres://app:s3cret@db.example/mcp",
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("alice"));
}

#[test]
fn the_introspection_secret_stays_out_of_debug_output_and_needs_its_pair() {
    let config = parse(&[
        "--authorization-server",
        "https://as.example",
        "--introspection-client-id",
        "rs",
        "--introspection-client-secret",
        "intro-s3cret",
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("intro-s3cret"), "{debug}");
    assert!(debug.contains("\"rs\""), "{debug}");
    for case in [
        &["--introspection-client-id", "rs"][..],
        &[
            "--introspection-client-id",
            "rs",
            "--introspection-client-secret",
            "s",
        ],
        &[
            "--authorization-server",
            "https://as.example",
            "--additional-resource",
            "https://other.example/mcp",
        ],
        &["--additional-resource", "other.example/mcp"],
        &[
            "--authorization-server",
            "https://as.example",
            "--authorization-server",
            "https://as2.example",
            "--introspection-client-id",
            "rs",
            "--introspection-client-secret",
            "s",
        ],
        &["--authorization-server", "http://as.example"],
    ] {
        assert!(parse(case).is_err(), "{case:?} should be refused");
    }
    let config = parse(&["--additional-resource", "https://tools.example/mcp"]).unwrap();
    assert_eq!(config.additional_resources, ["https://tools.example/mcp"]);
}

#[test]
fn the_log_format_is_text_unless_json_is_asked_for() {
    assert_eq!(parse(&[]).unwrap().log_format, crate::LogFormat::Text);
    assert_eq!(
        parse(&["--log-format", "json"]).unwrap().log_format,
        crate::LogFormat::Json
    );
    assert!(parse(&["--log-format", "xml"]).is_err());
}

#[test]
fn store_passwords_in_the_query_are_redacted_too() {
    for url in [
        "postgres://db.example/mcp?user=app&password=s3cret&sslmode=require",
        "postgresql://app@db.example/mcp?sslpassword=s3cret",
        "redis://cache.example/0?password=s3cret",
        "rediss://:s3cret@cache.example/?auth_token=s3cret",
    ] {
        let redacted = StoreUrl::parse(url).unwrap().redacted();
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert!(redacted.contains("example"), "{redacted}");
    }
    let redacted = StoreUrl::parse("postgres://db.example/mcp?sslmode=require&user=app")
        .unwrap()
        .redacted();
    assert!(redacted.contains("sslmode=require") && redacted.contains("user=app"));
}

#[test]
fn limits_come_from_the_table_and_max_connections_from_the_flag() {
    let dir = temp_dir("limits");
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "max_connections = 10\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
         [limits]\ntoken_per_minute = 5\nsign_in_attempts_per_request = 3\n",
    )
    .unwrap();
    let config = parse(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(config.limits.max_connections, 10);
    assert_eq!(config.limits.token_per_minute, 5);
    assert_eq!(config.limits.sign_in_attempts_per_request, 3);
    assert_eq!(
        config.limits.register_per_minute, 30,
        "unset keys keep their default"
    );
    assert_eq!(config.trusted_proxies.len(), 1);
    let config = parse(&["--config", file.to_str().unwrap(), "--max-connections", "7"]).unwrap();
    assert_eq!(config.limits.max_connections, 7);
    // Unknown keys and values that would make the server unusable are refused.
    std::fs::write(&file, "[limits]\ntokens_per_minute = 5\n").unwrap();
    assert!(parse(&["--config", file.to_str().unwrap()]).is_err());
    std::fs::write(&file, "[limits]\nrequest_timeout = 0\n").unwrap();
    assert!(parse(&["--config", file.to_str().unwrap()]).is_err());
    assert!(parse(&["--trusted-proxy", "not-a-range"]).is_err());
    let defaults = parse(&[]).unwrap();
    assert_eq!(defaults.limits, crate::limits::Limits::default());
    assert!(defaults.trusted_proxies.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trusted_idp_splits_at_the_first_equals_sign() {
    let idp = TrustedIdp::parse("https://idp.example=https://idp.example/jwks?v=2").unwrap();
    assert_eq!(idp.issuer, "https://idp.example");
    assert_eq!(idp.jwks, "https://idp.example/jwks?v=2");
}

#[test]
fn trusted_idp_keys_are_an_https_url_or_a_file() {
    let file = TrustedIdp::parse("https://idp.example=/etc/idp/jwks.json").unwrap();
    assert_eq!(file.jwks, "/etc/idp/jwks.json");
    for bad in [
        "https://idp.example=http://idp.example/jwks",
        "https://idp.example=http://127.0.0.1/jwks",
        "https://idp.example=https://idp.example/jwks#k",
        "https://idp.example=",
        "http://idp.example=/etc/idp/jwks.json",
        "no-equals-sign",
    ] {
        assert!(TrustedIdp::parse(bad).is_err(), "{bad}");
    }
}

/// A fresh directory for one test's files.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-auth-config-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config file in `dir` with `toml`, and two PEM files beside it.
fn cimd_file(dir: &Path, toml: &str) -> String {
    std::fs::write(dir.join("ca.pem"), "CA-PEM").unwrap();
    std::fs::write(dir.join("other.pem"), "OTHER").unwrap();
    let file = dir.join("server.toml");
    std::fs::write(&file, toml).unwrap();
    file.to_str().unwrap().to_owned()
}

const CIMD_TOML: &str = "no_client_metadata_documents = true\n\
     cimd_allow_addresses = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
     cimd_root_certs = [\"ca.pem\"]\n\
     cimd_allow_hosts = [\"*.apps.example\", \"app.example\"]\n\
     cimd_deny_hosts = [\"bad.apps.example\"]\n";

#[test]
fn the_file_sets_every_client_metadata_setting() {
    let dir = temp_dir("cimd-file");
    let file = cimd_file(&dir, CIMD_TOML);
    let cimd = parse(&["--config", &file]).unwrap().client_metadata;
    assert!(!cimd.enabled);
    assert_eq!(cimd.allow_address_ranges, ["10.0.0.0/8", "fd00::/8"]);
    // Relative to the file, like `clients`.
    assert_eq!(cimd.root_certificates_pem, b"CA-PEM\n");
    assert_eq!(cimd.allow_hosts, ["*.apps.example", "app.example"]);
    assert_eq!(cimd.deny_hosts, ["bad.apps.example"]);
    // The defaults without a file: on, strict, no policy.
    let cimd = parse(&[]).unwrap().client_metadata;
    assert!(cimd.enabled);
    assert!(cimd.allow_address_ranges.is_empty() && cimd.root_certificates_pem.is_empty());
    assert!(cimd.allow_hosts.is_empty() && cimd.deny_hosts.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn client_metadata_flags_override_the_file_and_lists_are_replaced_whole() {
    let dir = temp_dir("cimd-flags");
    let file = cimd_file(&dir, &CIMD_TOML.replace("= true", "= false"));
    let other_pem = dir.join("other.pem");
    let cimd = parse(&[
        "--config",
        &file,
        "--no-client-metadata-documents",
        "--cimd-allow-address",
        "127.0.0.1/32",
        "--cimd-root-cert",
        other_pem.to_str().unwrap(),
        "--cimd-allow-host",
        "[::1]",
        "--cimd-deny-host",
        "evil.example",
        "--cimd-deny-host",
        "*.evil.example",
    ])
    .unwrap()
    .client_metadata;
    assert!(!cimd.enabled, "the flag wins over the file's false");
    assert_eq!(cimd.allow_address_ranges, ["127.0.0.1/32"]);
    assert_eq!(cimd.root_certificates_pem, b"OTHER\n");
    assert_eq!(cimd.allow_hosts, ["[::1]"]);
    assert_eq!(cimd.deny_hosts, ["evil.example", "*.evil.example"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_invalid_client_metadata_settings() {
    let dir = temp_dir("cimd-invalid");
    for (toml, setting) in [
        ("cimd_allow_addresses = [\"nope\"]", "--cimd-allow-address"),
        ("cimd_root_certs = [\"missing.pem\"]", "--cimd-root-cert"),
        (
            "cimd_allow_hosts = [\"https://app.example\"]",
            "--cimd-allow-host",
        ),
        (
            "cimd_deny_hosts = [\"app.example:443\"]",
            "--cimd-deny-host",
        ),
        ("cimd_deny_hosts = [\"*.\"]", "--cimd-deny-host"),
        (
            "no_client_metadata_documents = \"yes\"",
            "no_client_metadata_documents",
        ),
        ("cimd_allow_host = [\"typo.example\"]", "cimd_allow_host"),
    ] {
        let file = cimd_file(&dir, toml);
        let error = parse(&["--config", &file]).unwrap_err().to_string();
        assert!(error.contains(setting), "{toml}: {error}");
    }
    for args in [
        &["--cimd-allow-address", "10.0.0.0/33"][..],
        &["--cimd-allow-host", "app.example/path"],
        &["--cimd-deny-host", ""],
    ] {
        assert!(parse(args).is_err(), "{args:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refresh_reuse_and_grant_lifetime_have_documented_defaults_and_bounds() {
    let config = parse(&[]).unwrap();
    assert_eq!(config.refresh_reuse_interval, 0, "strict reuse detection");
    assert_eq!(config.grant_lifetime_days, DEFAULT_GRANT_LIFETIME_DAYS);
    let config = parse(&[
        "--refresh-reuse-interval",
        "30",
        "--grant-lifetime-days",
        "7",
    ])
    .unwrap();
    assert_eq!(
        (config.refresh_reuse_interval, config.grant_lifetime_days),
        (30, 7)
    );
    for args in [
        &["--refresh-reuse-interval", "301"][..],
        &["--grant-lifetime-days", "0"],
        &["--grant-lifetime-days", "401"],
    ] {
        assert!(parse(args).is_err(), "{args:?}");
    }
}

#[test]
fn tool_scopes_are_none_unless_given_and_flags_replace_the_table() {
    let config = parse(&[]).unwrap();
    assert!(
        config.tool_scopes.is_empty(),
        "no demo scope leaks by default"
    );
    assert_eq!(config.valid_scopes(), ["mcp:tools"]);
    let config = parse(&[
        "--tool-scope",
        "deploy=mcp:admin mcp:deploy",
        "--tool-scope",
        "read=\"mcp:read\"",
    ])
    .unwrap();
    assert_eq!(config.tool_scopes["deploy"], ["mcp:admin", "mcp:deploy"]);
    assert_eq!(config.tool_scopes["read"], ["mcp:read"]);
    assert_eq!(
        config.valid_scopes(),
        ["mcp:tools", "mcp:admin", "mcp:deploy", "mcp:read"]
    );
    let dir = temp_dir("tool-scopes");
    let file = dir.join("server.toml");
    std::fs::write(&file, "[tool_scopes]\nadmin_echo = [\"mcp:admin\"]\n").unwrap();
    let from_file = parse(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(from_file.tool_scopes["admin_echo"], ["mcp:admin"]);
    let replaced = parse(&[
        "--config",
        file.to_str().unwrap(),
        "--tool-scope",
        "other=x",
    ])
    .unwrap();
    assert!(!replaced.tool_scopes.contains_key("admin_echo"));
    for bad in ["noequals", "=mcp:admin", "tool=", "tool=\"\""] {
        assert!(parse(&["--tool-scope", bad]).is_err(), "{bad}");
    }
}

#[test]
fn upstream_settings_are_checked_and_their_header_values_redacted() {
    let config = parse(&[
        "--upstream",
        "https://mcp.internal:8443/mcp",
        "--upstream-header",
        "Authorization: Bearer upstream-own-key",
        "--upstream-timeout",
        "5",
    ])
    .unwrap();
    let upstream = config.upstream.as_ref().unwrap();
    assert_eq!(upstream.url, "https://mcp.internal:8443/mcp");
    assert_eq!(upstream.timeout, 5);
    let printed = format!("{config:#?}");
    assert!(!printed.contains("upstream-own-key"), "{printed}");
    assert!(printed.contains("authorization: [redacted]"), "{printed}");
    assert!(parse(&[]).unwrap().upstream.is_none());
    for (args, setting) in [
        (&["--upstream-header", "X-K: v"][..], "--upstream-header"),
        (&["--upstream-timeout", "5"], "--upstream-timeout"),
        (&["--upstream", "http://u:p@host/mcp"], "--upstream"),
        (
            &["--upstream", "http://host/mcp", "--upstream-timeout", "0"],
            "--upstream-timeout",
        ),
        (
            &[
                "--upstream",
                "http://host/mcp",
                "--upstream-header",
                "X-MCP-Auth-Subject: root",
            ],
            "--upstream-header",
        ),
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(err.starts_with(setting), "{args:?}: {err}");
    }
}

#[test]
fn oidc_settings_come_as_a_group_with_defaults_and_a_redacted_secret() {
    let config = parse(&[
        "--oidc-issuer",
        "https://login.acme.example/realms/staff",
        "--oidc-client-id",
        "mcp-auth",
        "--oidc-client-secret",
        "oidc-s3cret",
        "--oidc-allow-domain",
        "@ACME.example",
    ])
    .unwrap();
    let oidc = config.oidc.as_ref().unwrap();
    assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
    assert_eq!(oidc.subject_claim, "sub");
    assert_eq!(oidc.allow_domains, ["acme.example"]);
    assert_eq!(oidc.name, "login.acme.example");
    let printed = format!("{config:#?}");
    assert!(!printed.contains("oidc-s3cret"), "{printed}");
    assert!(parse(&[]).unwrap().oidc.is_none());
    for (args, setting) in [
        (&["--oidc-client-id", "x"][..], "--oidc-client-id"),
        (&["--oidc-name", "SSO"], "--oidc-name"),
        (
            &[
                "--oidc-issuer",
                "http://idp.example",
                "--oidc-client-id",
                "x",
                "--oidc-client-secret",
                "y",
            ],
            "--oidc-issuer",
        ),
        (
            &[
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-secret",
                "y",
            ],
            "--oidc-client-id",
        ),
        (
            &[
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
            ],
            "--oidc-client-secret",
        ),
        (
            &[
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
                "--oidc-client-secret",
                "y",
                "--oidc-allow-domain",
                "not a domain",
            ],
            "--oidc-allow-domain",
        ),
        (
            &[
                "--authorization-server",
                "https://as.example",
                "--oidc-issuer",
                "https://idp.example",
                "--oidc-client-id",
                "x",
                "--oidc-client-secret",
                "y",
            ],
            "--oidc-issuer",
        ),
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(err.starts_with(setting), "{args:?}: {err}");
    }
    // The secret key also seals the sign-in cookies, so it is accepted with --oidc-issuer.
    let with_secret = parse(&[
        "--oidc-issuer",
        "https://idp.example",
        "--oidc-client-id",
        "x",
        "--oidc-client-secret",
        "y",
        "--secret-key-file",
        "/run/secrets/mcp-auth",
    ]);
    assert!(with_secret.is_ok(), "{with_secret:?}");
}

#[test]
fn the_upstream_timeout_cannot_outlast_the_request_timeout() {
    let err = parse(&[
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--upstream-timeout",
        "31",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("--upstream-timeout"), "{err}");
    assert!(
        parse(&[
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--upstream-timeout",
            "30"
        ])
        .is_ok()
    );
}

#[test]
fn keeping_and_forwarding_the_providers_tokens_need_their_prerequisites() {
    let oidc = [
        "--oidc-issuer",
        "https://idp.example",
        "--oidc-client-id",
        "x",
        "--oidc-client-secret",
        "y",
    ];
    let with = |extra: &[&str]| parse(&[&oidc[..], extra].concat());
    let err = with(&["--oidc-keep-tokens"]).unwrap_err().to_string();
    assert!(err.starts_with("--oidc-keep-tokens"), "{err}");
    let kept = with(&["--oidc-keep-tokens", "--secret-key-file", "/run/secret"]).unwrap();
    assert!(kept.oidc.as_ref().unwrap().keep_tokens);
    let err = with(&[
        "--oidc-keep-tokens",
        "--secret-key-file",
        "/run/secret",
        "--forward-upstream-token",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("--forward-upstream-token"), "{err}");
    let forwarding = with(&[
        "--oidc-keep-tokens",
        "--secret-key-file",
        "/run/secret",
        "--upstream",
        "http://127.0.0.1:9/mcp",
        "--forward-upstream-token",
    ])
    .unwrap();
    assert!(forwarding.forward_upstream_token);
    let err = parse(&["--oidc-keep-tokens"]).unwrap_err().to_string();
    assert!(err.starts_with("--oidc-keep-tokens"), "{err}");
}
