//! Reading an introspection answer (RFC 7662 §2.2) into what this resource accepts.

use mcp_auth_types::{AccessTokenInfo, resource_url_from_server_url, split_scopes};
use serde_json::{Map, Value};

/// What an answer means for this resource.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Active, for this resource: what the token grants.
    Active(AccessTokenInfo),
    /// Inactive, or active but not acceptable here (with why, for the log).
    Refused(&'static str),
}

/// The rules an active answer must meet here.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// This resource, canonical.
    pub(crate) resource: String,
    /// The issuer, compared with `iss` when the answer has one.
    pub(crate) issuer: Option<String>,
    /// Whether an answer without `aud` is refused (the default: the audience is what keeps
    /// another resource's token out).
    pub(crate) require_audience: bool,
}

impl Rules {
    /// Reads `body`; `Err` when it is not an RFC 7662 answer at all (the endpoint is broken,
    /// which is not the token's fault).
    pub(crate) fn read(&self, body: &[u8]) -> Result<Answer, &'static str> {
        let answer: Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| "the answer is not a JSON object")?;
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(Answer::Refused("inactive")),
            _ => return Err("the answer has no boolean active member"),
        }
        let text = |name: &str| answer.get(name).and_then(Value::as_str);
        if let (Some(expected), Some(iss)) = (&self.issuer, text("iss"))
            && iss != expected
        {
            return Ok(Answer::Refused("iss is another issuer"));
        }
        let audiences: Vec<&str> = match answer.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if audiences.is_empty() {
            if self.require_audience {
                return Ok(Answer::Refused("no aud"));
            }
        } else if !audiences
            .iter()
            .any(|aud| !aud.contains('#') && resource_url_from_server_url(aud) == self.resource)
        {
            return Ok(Answer::Refused("aud names another resource"));
        }
        let Some(client_id) = text("client_id").filter(|id| !id.is_empty()) else {
            return Ok(Answer::Refused("no client_id"));
        };
        let mut info = AccessTokenInfo::new(client_id, split_scopes(text("scope")));
        info.expires_at = answer.get("exp").and_then(Value::as_i64);
        info.subject = text("sub").map(str::to_owned);
        info.resource = Some(self.resource.clone());
        let mut claims = Map::new();
        if let Some(iss) = text("iss").or(self.issuer.as_deref()) {
            claims.insert("iss".to_owned(), Value::String(iss.to_owned()));
        }
        if let Some(iat) = answer.get("iat").and_then(Value::as_i64) {
            claims.insert("iat".to_owned(), Value::from(iat));
        }
        info.claims = (!claims.is_empty()).then_some(claims);
        Ok(Answer::Active(info))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RESOURCE: &str = "https://mcp.example/mcp";

    fn rules(require_audience: bool) -> Rules {
        Rules {
            resource: RESOURCE.to_owned(),
            issuer: Some("https://as.example".to_owned()),
            require_audience,
        }
    }

    fn read(rules: &Rules, answer: Value) -> Result<Answer, &'static str> {
        rules.read(answer.to_string().as_bytes())
    }

    #[test]
    fn an_active_answer_for_this_resource_grants_what_it_says() {
        let answer = read(
            &rules(true),
            json!({"active": true, "client_id": "app", "scope": "a b", "sub": "alice",
                   "aud": ["https://x.example", "HTTPS://MCP.example/mcp"], "exp": 2000,
                   "iat": 1000, "iss": "https://as.example", "token_type": "Bearer"}),
        );
        let Ok(Answer::Active(info)) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(info.client_id, "app");
        assert_eq!(info.scopes, ["a", "b"]);
        assert_eq!(info.subject.as_deref(), Some("alice"));
        assert_eq!(info.expires_at, Some(2000));
        assert_eq!(info.resource.as_deref(), Some(RESOURCE));
        assert_eq!(info.issuer().as_deref(), Some("https://as.example"));
    }

    #[test]
    fn inactive_foreign_or_anonymous_answers_are_refused_and_garbage_is_an_error() {
        let active = |extra: Value| {
            let mut answer = json!({"active": true, "client_id": "app", "aud": RESOURCE});
            for (name, value) in extra.as_object().unwrap() {
                answer[name] = value.clone();
            }
            answer
        };
        for answer in [
            json!({"active": false}),
            json!({"active": false, "client_id": "app", "aud": RESOURCE}),
            active(json!({"aud": "https://other.example/mcp"})),
            active(json!({"aud": "https://mcp.example/mcp#f"})),
            active(json!({"aud": null})),
            active(json!({"iss": "https://evil.example"})),
            active(json!({"client_id": null})),
            active(json!({"client_id": ""})),
        ] {
            assert!(
                matches!(read(&rules(true), answer.clone()), Ok(Answer::Refused(_))),
                "{answer}"
            );
        }
        let lenient = rules(false);
        assert!(matches!(
            read(&lenient, active(json!({"aud": null}))),
            Ok(Answer::Active(_))
        ));
        assert!(matches!(
            read(
                &lenient,
                active(json!({"aud": "https://other.example/mcp"}))
            ),
            Ok(Answer::Refused(_))
        ));
        for garbage in [json!([]), json!({"active": "yes"}), json!({})] {
            assert!(read(&rules(true), garbage.clone()).is_err(), "{garbage}");
        }
        assert!(rules(true).read(b"not json").is_err());
    }
}
