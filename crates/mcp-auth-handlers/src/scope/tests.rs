use http::HeaderValue;

use super::*;

fn strings(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_default_relation_is_identity_plus_colon_extension() {
    let relation = ScopeImplication::new();
    let cases = [
        ("mcp", "mcp", true),
        ("mcp", "mcp:tools", true),
        ("mcp", "mcp:tools:read", true),
        ("mcp:tools", "mcp:tools:read", true),
        ("mcp:tools", "mcp", false),
        ("mcp:tools", "mcp:admin", false),
        ("mcp", "mcpx", false),
        ("mcp:tools", "mcp:toolsx", false),
        ("mcp", "mcp:", false),
        ("", ":x", false),
        ("MCP", "mcp:tools", false),
    ];
    for (granted, needed, expect) in cases {
        assert_eq!(
            relation.implies(granted, needed),
            expect,
            "{granted} ⇒ {needed}"
        );
    }
}

#[test]
fn exact_matching_and_explicit_pairs() {
    let exact = ScopeImplication::exact().pair("admin", "mcp:admin");
    let hierarchy = ScopeImplication::new().pair("admin", "mcp:admin");
    let cases = [
        (&exact, "mcp", "mcp:tools", false),
        (&exact, "mcp:tools", "mcp:tools", true),
        (&exact, "admin", "mcp:admin", true),
        (&exact, "admin", "mcp:admin:write", false),
        (&hierarchy, "admin", "mcp:admin:write", true),
        (&hierarchy, "admin", "mcp:tools", false),
        (&hierarchy, "mcp:admin", "admin", false),
        (&hierarchy, "admin:x", "mcp:admin", false),
    ];
    for (relation, granted, needed, expect) in cases {
        assert_eq!(
            relation.implies(granted, needed),
            expect,
            "{granted} ⇒ {needed}"
        );
    }
}

#[test]
fn missing_lists_the_needed_scopes_no_granted_scope_implies() {
    let relation = ScopeImplication::new();
    let cases: [(&[&str], &[&str], &[&str]); 5] = [
        (&["mcp"], &["mcp:tools", "mcp:admin"], &[]),
        (&["mcp:tools"], &["mcp:tools", "mcp:admin"], &["mcp:admin"]),
        (&[], &["a", "b"], &["a", "b"]),
        (&["a", "b:c"], &["b", "b:c:d"], &["b"]),
        (&["x"], &[], &[]),
    ];
    for (granted, needed, expect) in cases {
        let needed = strings(needed);
        let missing = relation.missing(&strings(granted), &needed);
        assert_eq!(
            missing,
            strings(expect).iter().collect::<Vec<_>>(),
            "{granted:?}"
        );
    }
}

fn operations() -> McpOperationScopes {
    McpOperationScopes::new()
        .method("tools/list", ["list"])
        .tool("admin_echo", ["mcp:admin"])
        .tool("both", ["mcp:admin", "other"])
}

fn headers(method: Option<&str>, name: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(method) = method {
        headers.insert(MCP_METHOD, HeaderValue::from_str(method).unwrap());
    }
    if let Some(name) = name {
        headers.insert(MCP_NAME, HeaderValue::from_str(name).unwrap());
    }
    headers
}

#[test]
fn headers_name_the_operation() {
    let ops = operations();
    let cases: [(Option<&str>, Option<&str>, &[&str]); 7] = [
        (None, None, &[]),
        (Some("tools/call"), Some("admin_echo"), &["mcp:admin"]),
        (Some("tools/call"), Some(" both "), &["mcp:admin", "other"]),
        (Some("tools/call"), Some("echo"), &[]),
        (Some("tools/call"), None, &[]),
        (Some("tools/list"), Some("admin_echo"), &["list"]),
        (None, Some("admin_echo"), &[]),
    ];
    for (method, name, expect) in cases {
        assert_eq!(
            ops.for_headers(&headers(method, name)),
            strings(expect),
            "{method:?} {name:?}"
        );
    }
}

#[test]
fn the_body_names_the_operation_and_cannot_be_judged_when_too_large() {
    let ops = operations();
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
        )
    };
    let batch = format!(
        "[{}, {}]",
        call("both"),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#
    );
    let (admin_echo, echo) = (call("admin_echo"), call("echo"));
    let cases: [(OperationBody<'_>, &[&str]); 9] = [
        (OperationBody::Empty, &[]),
        (OperationBody::TooLarge, &["list", "mcp:admin", "other"]),
        (OperationBody::Complete(admin_echo.as_bytes()), &["mcp:admin"]),
        (OperationBody::Complete(echo.as_bytes()), &[]),
        (OperationBody::Complete(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), &["list"]),
        (OperationBody::Complete(br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"admin_echo"}}"#), &[]),
        (OperationBody::Complete(batch.as_bytes()), &["mcp:admin", "other", "list"]),
        (OperationBody::Complete(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), &[]),
        (OperationBody::Complete(br#"[]"#), &[]),
    ];
    for (body, expect) in cases {
        assert_eq!(ops.for_body(body), strings(expect), "{body:?}");
    }
}

/// Every scope [`operations`] configures: what a body that cannot be judged needs.
const EVERYTHING: &[&str] = &["list", "mcp:admin", "other"];

fn needs_everything(ops: &McpOperationScopes, bodies: &[&[u8]]) {
    for body in bodies {
        assert_eq!(
            ops.for_body(OperationBody::Complete(body)),
            strings(EVERYTHING),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn bodies_that_are_not_json_rpc_need_every_configured_scope() {
    let ops = operations();
    let cases: [&[u8]; 14] = [
        b"{not json",
        b"not json",
        b"   ",
        b"\xff\xfe",
        br#""tools/call""#,
        b"7",
        br#"{"method":7}"#,
        br#"{"jsonrpc":"2.0","id":1}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"admin_echo"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["admin_echo"]}}"#,
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, 7]"#,
        br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, {"method":null}]"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}} trailing"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}"#,
    ];
    needs_everything(&ops, &cases);
}

#[test]
fn repeated_member_names_need_every_configured_scope() {
    // serde_json keeps the last of repeated names, other parsers the first: whichever the MCP
    // server uses, the layer must not have judged a cheaper operation.
    let ops = operations();
    let cases: [&[u8]; 6] = [
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_echo","name":"echo"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_echo"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"admin_echo"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_echo"},"params":{"name":"echo"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}"#,
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"id":2,"id":3,"method":"ping"}]"#,
    ];
    needs_everything(&ops, &cases);
    // The same names in different objects are not repeated.
    let nested = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"name":"admin_echo","method":"x"}}}"#;
    assert_eq!(ops.for_body(OperationBody::Complete(nested)), strings(&[]));
}

#[test]
fn union_keeps_base_order_and_drops_duplicates() {
    let cases: [(&[&str], &[&str], &[&str]); 3] = [
        (&["mcp:tools"], &["mcp:admin"], &["mcp:tools", "mcp:admin"]),
        (&["a", "b"], &["b", "c", "c"], &["a", "b", "c"]),
        (&[], &[], &[]),
    ];
    for (base, extra, expect) in cases {
        assert_eq!(union(&strings(base), &strings(extra)), strings(expect));
    }
}
