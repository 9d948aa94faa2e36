//! Parsing `application/x-www-form-urlencoded` parameters the way RFC 6749 §3.1 and §3.2 ask.

use http::HeaderMap;

/// Why a parameter set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// A parameter appeared more than once (RFC 6749 §3.1: "MUST NOT be included more than
    /// once").
    #[error("parameter {0:?} is included more than once")]
    Duplicate(String),
    /// The body is not `application/x-www-form-urlencoded` (RFC 6749 §3.2).
    #[error("the request body must be application/x-www-form-urlencoded")]
    ContentType,
}

/// Decoded parameters of a query string or form body, each name at most once.
///
/// Parameters sent with an empty value read as absent (RFC 6749 §3.1: "Parameters sent without
/// a value MUST be treated as if they were omitted from the request").
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `input`; names repeated (even with empty values) are refused.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(input) {
            if pairs.iter().any(|(existing, _)| *existing == name) {
                return Err(FormError::Duplicate(name.into_owned()));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// Parses a form body after checking the `Content-Type` (RFC 6749 §3.2). A missing content
    /// type is tolerated: some clients omit it, and the body is parsed the same way.
    pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Self, FormError> {
        if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim();
            if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(FormError::ContentType);
            }
        }
        Self::parse(body)
    }

    /// The value of `name`, or `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent with a non-empty value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let params = Params::parse(b"a=1&b=x+y&c=%2F&d=").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), Some("x y"));
        assert_eq!(params.get("c"), Some("/"));
        assert_eq!(params.get("d"), None);
        assert_eq!(params.get("missing"), None);
    }

    #[test]
    fn refuses_repeated_parameters() {
        let cases: [&[u8]; 3] = [b"a=1&a=2", b"a=1&a=", b"a=&a="];
        for case in cases {
            assert_eq!(
                Params::parse(case).unwrap_err(),
                FormError::Duplicate("a".into())
            );
        }
    }

    #[test]
    fn checks_content_type() {
        let mut headers = HeaderMap::new();
        assert!(Params::parse_form(&headers, b"a=1").is_ok());
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        assert!(Params::parse_form(&headers, b"a=1").is_ok());
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            Params::parse_form(&headers, b"{}").unwrap_err(),
            FormError::ContentType
        );
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let params = Params::parse(b"a=%FF%FE&b=\xff").unwrap();
        assert!(params.get("a").is_some());
    }
}
