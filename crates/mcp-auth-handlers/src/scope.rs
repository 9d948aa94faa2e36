//! When a granted scope is enough for a needed one: the scope hierarchy a resource server must
//! account for (MCP specification 2026-07-28, "Scope Selection Strategy"), and the per-operation
//! scopes of an MCP endpoint ([`McpOperationScopes`]).
//!
//! Where the relation applies: every judgement of whether a *token* is sufficient for a
//! *request* ([`BearerAuth`](crate::BearerAuth)). It does not apply to the refresh grant's
//! narrowing check (RFC 6749 §6: the requested scope "MUST NOT include any scope not originally
//! granted"): that check compares what the authorization server recorded with what the client
//! asks it to record, and a hierarchy there would let a client holding `mcp` mint a token whose
//! literal scope is `mcp:admin` — a widening of the grant string that downstream resource
//! servers with another (or no) hierarchy would honour. Literal subset stays the rule there.

use http::HeaderMap;

/// Whether a granted scope implies (is sufficient for) a needed scope.
///
/// A scope always implies itself. With the hierarchy rule on (the default), a scope implies
/// every scope that extends it by a `:`-separated suffix: `mcp` implies `mcp:tools` and
/// `mcp:tools:read`, while `mcp:tools` implies neither `mcp` nor `mcp:toolsx`. Explicit
/// [`pair`](Self::pair)s add `granted ⇒ implied` edges for names the rule cannot express
/// (`admin` ⇒ `mcp:admin`).
///
/// Precisely, `granted` implies `needed` when `needed` is `granted` or extends it by `:`
/// (rule on), or some pair `(g, i)` has `g == granted` and `needed` is `i` or extends it by `:`
/// (rule on). Keeping pairs one step deep makes the relation auditable from the configuration
/// alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeImplication {
    hierarchy: bool,
    pairs: Vec<(String, String)>,
}

impl Default for ScopeImplication {
    fn default() -> Self {
        Self::new()
    }
}

impl ScopeImplication {
    /// The default relation: identity plus the `a` ⇒ `a:b` hierarchy rule, no pairs.
    pub fn new() -> Self {
        Self {
            hierarchy: true,
            pairs: Vec::new(),
        }
    }

    /// Exact matching only: a scope implies itself and nothing else (plus any pairs added).
    pub fn exact() -> Self {
        Self {
            hierarchy: false,
            pairs: Vec::new(),
        }
    }

    /// Adds the explicit edge `granted ⇒ implied`.
    #[must_use]
    pub fn pair(mut self, granted: impl Into<String>, implied: impl Into<String>) -> Self {
        self.pairs.push((granted.into(), implied.into()));
        self
    }

    /// Whether holding `granted` is enough for `needed`.
    pub fn implies(&self, granted: &str, needed: &str) -> bool {
        self.covers(granted, needed)
            || self
                .pairs
                .iter()
                .any(|(g, implied)| g == granted && self.covers(implied, needed))
    }

    /// Whether some scope of `granted` implies `needed`.
    pub fn satisfied_by(&self, granted: &[String], needed: &str) -> bool {
        granted.iter().any(|g| self.implies(g, needed))
    }

    /// The scopes of `needed` that no scope of `granted` implies, in `needed`'s order.
    pub fn missing<'a>(&self, granted: &[String], needed: &'a [String]) -> Vec<&'a String> {
        needed
            .iter()
            .filter(|n| !self.satisfied_by(granted, n))
            .collect()
    }

    /// Identity, or the hierarchy rule when it is on.
    fn covers(&self, granted: &str, needed: &str) -> bool {
        needed == granted
            || (self.hierarchy
                && !granted.is_empty()
                && needed
                    .strip_prefix(granted)
                    .is_some_and(|rest| rest.len() > 1 && rest.starts_with(':')))
    }
}

/// The `Mcp-Method` request header (MCP protocol 2026-07-28): the JSON-RPC method of the body.
pub const MCP_METHOD: &str = "mcp-method";
/// The `Mcp-Name` request header (MCP protocol 2026-07-28): the tool, prompt or resource the
/// method acts on.
pub const MCP_NAME: &str = "mcp-name";

/// The default number of body bytes a layer reads to find the operation of an older client's
/// request (64 KiB).
pub const DEFAULT_OPERATION_BODY_LIMIT: usize = 64 * 1024;

/// Scopes required per MCP operation, on top of the endpoint's base requirement: per JSON-RPC
/// method (`tools/list`) and per tool name (for `tools/call`).
///
/// The requirement of a request is the union of what its `Mcp-Method`/`Mcp-Name` headers name
/// and what its JSON-RPC body names. The body is authoritative and the headers can only add:
/// a client cannot lower the requirement by sending headers that disagree with its body (the
/// MCP server behind is the one that rejects such a mismatch). A body the layer could not read
/// in full (over its limit) cannot be judged, so it needs every scope configured here — the
/// strictest answer, never a bypass. A body that is not JSON-RPC adds nothing: the MCP server
/// answers it with a parse error and runs no operation. A batch needs the union of its
/// members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpOperationScopes {
    methods: Vec<(String, Vec<String>)>,
    tools: Vec<(String, Vec<String>)>,
}

/// What the operation-scope layer could read of a request body.
#[derive(Debug, Clone, Copy)]
pub enum OperationBody<'a> {
    /// No body (GET, DELETE) or an empty one.
    Empty,
    /// The whole body.
    Complete(&'a [u8]),
    /// The body exceeded the read limit.
    TooLarge,
}

impl McpOperationScopes {
    /// No per-operation requirement.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `scopes` for every request whose JSON-RPC method is `method`.
    #[must_use]
    pub fn method<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        method: impl Into<String>,
        scopes: I,
    ) -> Self {
        self.methods
            .push((method.into(), scopes.into_iter().map(Into::into).collect()));
        self
    }

    /// Requires `scopes` for `tools/call` of the tool `name`.
    #[must_use]
    pub fn tool<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        name: impl Into<String>,
        scopes: I,
    ) -> Self {
        self.tools
            .push((name.into(), scopes.into_iter().map(Into::into).collect()));
        self
    }

    /// Whether nothing is configured (the layer then need not read bodies).
    pub fn is_empty(&self) -> bool {
        self.methods.iter().all(|(_, s)| s.is_empty())
            && self.tools.iter().all(|(_, s)| s.is_empty())
    }

    /// The extra scopes the request's `Mcp-Method`/`Mcp-Name` headers call for, deduplicated in
    /// configuration order.
    pub fn for_headers(&self, headers: &HeaderMap) -> Vec<String> {
        let method = headers.get(MCP_METHOD).and_then(|v| v.to_str().ok());
        let name = headers.get(MCP_NAME).and_then(|v| v.to_str().ok());
        let mut out = Scopes::default();
        if let Some(method) = method {
            self.add_operation(&mut out, method.trim(), name.map(str::trim));
        }
        out.0
    }

    /// The extra scopes the request body calls for (see the type's documentation).
    pub fn for_body(&self, body: OperationBody<'_>) -> Vec<String> {
        let mut out = Scopes::default();
        match body {
            OperationBody::Empty => {}
            OperationBody::TooLarge => {
                for (_, scopes) in self.methods.iter().chain(&self.tools) {
                    out.extend(scopes);
                }
            }
            OperationBody::Complete(bytes) => {
                match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(serde_json::Value::Array(batch)) => {
                        for message in &batch {
                            self.add_message(&mut out, message);
                        }
                    }
                    Ok(message) => self.add_message(&mut out, &message),
                    Err(_) => {}
                }
            }
        }
        out.0
    }

    fn add_message(&self, out: &mut Scopes, message: &serde_json::Value) {
        let Some(method) = message.get("method").and_then(serde_json::Value::as_str) else {
            return;
        };
        let name = message
            .get("params")
            .and_then(|p| p.get("name"))
            .and_then(serde_json::Value::as_str);
        self.add_operation(out, method, name);
    }

    fn add_operation(&self, out: &mut Scopes, method: &str, name: Option<&str>) {
        for (m, scopes) in &self.methods {
            if m == method {
                out.extend(scopes);
            }
        }
        if method == "tools/call"
            && let Some(name) = name
        {
            for (tool, scopes) in &self.tools {
                if tool == name {
                    out.extend(scopes);
                }
            }
        }
    }
}

/// An ordered set of scopes.
#[derive(Default)]
struct Scopes(Vec<String>);

impl Scopes {
    fn extend(&mut self, scopes: &[String]) {
        for scope in scopes {
            if !self.0.contains(scope) {
                self.0.push(scope.clone());
            }
        }
    }
}

/// `base` followed by every scope of `extra` not already in it.
pub(crate) fn union(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out = Scopes(base.to_vec());
    out.extend(extra);
    out.0
}

#[cfg(test)]
mod tests;
