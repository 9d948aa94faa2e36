//! Parsing `application/x-www-form-urlencoded` parameters the way RFC 6749 §3.1 and §3.2 ask.
//!
//! Parsing is linear in the input and bounded: it stops at the
//! [`MAX_FORM_PARAMETERS`]` + 1`th parameter, and repeated names are found by sorting the
//! (at most 64) names once rather than by comparing every pair. Every decoded name and value is
//! checked for control characters here, once, so no handler, provider or store ever sees one.

use http::HeaderMap;
use mcp_auth_types::contains_control_character;

use crate::limits::MAX_FORM_PARAMETERS;

/// Why a parameter set was refused. Every variant is `invalid_request` at every endpoint.
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
    /// More than [`MAX_FORM_PARAMETERS`] parameters.
    #[error("the request has more than {} parameters", MAX_FORM_PARAMETERS)]
    TooManyParameters,
    /// A decoded name or value holds a control character (NUL, C0, DEL or C1), which no OAuth
    /// parameter may contain. Carries the parameter's name when the name itself is clean.
    #[error("{} contains a control character", ControlIn(.0.as_deref()))]
    ControlCharacter(Option<String>),
}

/// The subject of a [`FormError::ControlCharacter`] message.
struct ControlIn<'a>(Option<&'a str>);

impl std::fmt::Display for ControlIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(name) => write!(f, "parameter {name:?}"),
            None => f.write_str("a parameter name"),
        }
    }
}

/// Decoded parameters of a query string or form body, each name at most once, at most
/// [`MAX_FORM_PARAMETERS`] of them, none holding a control character.
///
/// Parameters sent with an empty value read as absent (RFC 6749 §3.1: "Parameters sent without
/// a value MUST be treated as if they were omitted from the request").
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Every decoded name and value, one after another: one allocation for the whole request
    /// rather than two per parameter (the token endpoint parses a form on every call).
    text: String,
    /// Where each parameter's name and value end in `text`, in the order they were sent; each
    /// starts where the previous one ended.
    ends: Vec<(usize, usize)>,
}

/// Parameters room is made for at once: a token request sends four to eight.
const USUAL_PARAMETERS: usize = 8;

impl Params {
    /// Parses `input`. Refused, in this order of detection: more than [`MAX_FORM_PARAMETERS`]
    /// parameters, a control character in a name or value (both checked as parameters are
    /// read), a name repeated (even with empty values).
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        // Decoding drops the separators and shortens escapes, so `input.len()` is room enough
        // unless invalid UTF-8 is replaced (one byte becomes three), which only regrows it.
        let mut params = Self {
            text: String::with_capacity(input.len()),
            ends: Vec::with_capacity(USUAL_PARAMETERS),
        };
        for (name, value) in form_urlencoded::parse(input) {
            if params.ends.len() == MAX_FORM_PARAMETERS {
                return Err(FormError::TooManyParameters);
            }
            if contains_control_character(&name) {
                return Err(FormError::ControlCharacter(None));
            }
            if contains_control_character(&value) {
                return Err(FormError::ControlCharacter(Some(name.into_owned())));
            }
            params.text.push_str(&name);
            let name_end = params.text.len();
            params.text.push_str(&value);
            params.ends.push((name_end, params.text.len()));
        }
        if let Some(repeated) = params.repeated_name() {
            return Err(FormError::Duplicate(repeated.to_owned()));
        }
        Ok(params)
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
        self.pairs()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty())
    }

    /// Whether `name` was sent with a non-empty value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Each parameter's name and value, in the order they were sent.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let pair = (&self.text[start..name_end], &self.text[name_end..value_end]);
            start = value_end;
            pair
        })
    }

    /// The first (in sort order) name that occurs twice: one sort of at most
    /// [`MAX_FORM_PARAMETERS`] borrowed names, instead of comparing every pair.
    fn repeated_name(&self) -> Option<&str> {
        let mut names: Vec<&str> = self.pairs().map(|(name, _)| name).collect();
        names.sort_unstable();
        names
            .windows(2)
            .find(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
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
    fn at_most_max_form_parameters_are_accepted() {
        let body = |count: usize| {
            (0..count)
                .map(|i| format!("p{i}=v"))
                .collect::<Vec<_>>()
                .join("&")
        };
        let params = Params::parse(body(MAX_FORM_PARAMETERS).as_bytes()).unwrap();
        assert_eq!(params.get("p63"), Some("v"));
        for count in [MAX_FORM_PARAMETERS + 1, 5000] {
            assert_eq!(
                Params::parse(body(count).as_bytes()).unwrap_err(),
                FormError::TooManyParameters,
                "{count}"
            );
        }
        // Empty segments are no parameters; parameters with empty values are.
        let padded = format!("{}&&&&", body(MAX_FORM_PARAMETERS));
        assert!(Params::parse(padded.as_bytes()).is_ok());
        let blanks = format!("{}&x=", body(MAX_FORM_PARAMETERS));
        assert_eq!(
            Params::parse(blanks.as_bytes()).unwrap_err(),
            FormError::TooManyParameters
        );
    }

    #[test]
    fn a_body_of_5000_distinct_names_is_refused_as_too_many_parameters() {
        // The quadratic duplicate check made such a body (512 KiB) cost 14 s of CPU; the
        // refusal now comes after reading 65 parameters.
        let body: String = (0..5000).map(|i| format!("name{i:06}=&")).collect();
        assert_eq!(
            Params::parse(body.as_bytes()).unwrap_err(),
            FormError::TooManyParameters
        );
    }

    #[test]
    fn repeated_names_are_found_anywhere_among_the_parameters() {
        let mut names: Vec<String> = (0..MAX_FORM_PARAMETERS - 1)
            .map(|i| format!("p{i}"))
            .collect();
        names.push("p0".to_owned());
        let body = names.join("=x&");
        assert_eq!(
            Params::parse(body.as_bytes()).unwrap_err(),
            FormError::Duplicate("p0".into())
        );
        assert!(Params::parse(b"b=1&a=2&c=3").is_ok());
    }

    #[test]
    fn control_characters_in_names_or_values_are_refused() {
        let cases: [(&[u8], FormError); 8] = [
            (
                b"client_id=a%00b",
                FormError::ControlCharacter(Some("client_id".into())),
            ),
            (
                b"redirect_uri=https://a.example/%00",
                FormError::ControlCharacter(Some("redirect_uri".into())),
            ),
            (
                b"state=x%0Ay",
                FormError::ControlCharacter(Some("state".into())),
            ),
            (
                b"scope=read%09write",
                FormError::ControlCharacter(Some("scope".into())),
            ),
            (
                b"code=%7F",
                FormError::ControlCharacter(Some("code".into())),
            ),
            (
                b"token=%C2%85",
                FormError::ControlCharacter(Some("token".into())),
            ),
            (b"a%00=1", FormError::ControlCharacter(None)),
            (
                b"ok=1&x=\x01",
                FormError::ControlCharacter(Some("x".into())),
            ),
        ];
        for (body, expect) in cases {
            assert_eq!(Params::parse(body).unwrap_err(), expect, "{body:?}");
        }
        assert_eq!(
            FormError::ControlCharacter(Some("state".into())).to_string(),
            "parameter \"state\" contains a control character"
        );
        // `+` and `%20` are spaces, not control characters.
        assert_eq!(
            Params::parse(b"scope=a+b%20c").unwrap().get("scope"),
            Some("a b c")
        );
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let params = Params::parse(b"a=%FF%FE&b=\xff").unwrap();
        assert!(params.get("a").is_some());
    }
}
