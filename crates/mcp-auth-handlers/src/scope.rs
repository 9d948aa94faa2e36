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

pub use crate::limits::DEFAULT_OPERATION_BODY_LIMIT;

/// Scopes required per MCP operation, on top of the endpoint's base requirement: per JSON-RPC
/// method (`tools/list`) and per tool name (for `tools/call`).
///
/// The requirement of a request is the union of what its `Mcp-Method`/`Mcp-Name` headers name
/// and what its JSON-RPC body names. The body is authoritative and the headers can only add:
/// a client cannot lower the requirement by sending headers that disagree with its body (the
/// MCP server behind is the one that rejects such a mismatch). A batch needs the union of its
/// members.
///
/// Fail closed: a body that cannot be judged needs every scope configured here — the
/// strictest answer, never a bypass. That is a body the layer could not read in full (over its
/// limit), a body that is not JSON, JSON that is not a JSON-RPC message or batch of messages
/// (a `method` that is not a string, `params` that are not structured, a `tools/call` `name`
/// that is not a string, an object that is neither request nor response), and JSON with a
/// member name repeated in any object. RFC 8259 §4 leaves the meaning of repeated names to
/// each parser — serde keeps the last, others the first — so the MCP server behind might run
/// another operation than the one judged here.
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
            OperationBody::TooLarge => self.add_everything(&mut out),
            OperationBody::Complete(bytes) => {
                if self.add_messages(&mut out, bytes).is_none() {
                    self.add_everything(&mut out);
                }
            }
        }
        out.0
    }

    /// Every scope configured here, for a body that cannot be judged.
    fn add_everything(&self, out: &mut Scopes) {
        for (_, scopes) in self.methods.iter().chain(&self.tools) {
            out.extend(scopes);
        }
    }

    /// Adds what the JSON-RPC message or batch in `bytes` calls for; `None` when `bytes` are
    /// not one that can be judged (see the type's documentation).
    fn add_messages(&self, out: &mut Scopes, bytes: &[u8]) -> Option<()> {
        let StrictJson(value) = serde_json::from_slice(bytes).ok()?;
        match &value {
            serde_json::Value::Array(batch) => {
                for message in batch {
                    self.add_message(out, message)?;
                }
                Some(())
            }
            message => self.add_message(out, message),
        }
    }

    fn add_message(&self, out: &mut Scopes, message: &serde_json::Value) -> Option<()> {
        let message = message.as_object()?;
        let Some(method) = message.get("method") else {
            // A response to a request of the server: runs no operation.
            return (message.contains_key("result") || message.contains_key("error")).then_some(());
        };
        let method = method.as_str()?;
        let name = match message.get("params") {
            None => None,
            Some(serde_json::Value::Array(_)) => None,
            Some(serde_json::Value::Object(params)) => match params.get("name") {
                None => None,
                Some(name) => Some(name.as_str()?),
            },
            Some(_) => return None,
        };
        self.add_operation(out, method, name);
        Some(())
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

/// A JSON value parsed like `serde_json::Value`, except that an object repeating a member name,
/// at any depth, is an error instead of keeping the last. Nesting is bounded by serde_json's
/// recursion limit (128), as for `Value`.
struct StrictJson(serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value without repeated member names")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(serde::de::Error::custom("a member name is repeated"));
            }
            let StrictJson(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(serde_json::Value::Object(members))
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
