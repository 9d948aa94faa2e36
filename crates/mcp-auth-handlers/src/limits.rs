//! Every bound the handlers enforce on what a client sends, in one place, each with the reason
//! for its value. Bounds on client metadata (registration and metadata documents) live in
//! [`mcp_auth_types::limits`], shared with the Client ID Metadata Document resolver; the ones
//! here are about requests.
//!
//! | bound | value | enforced by |
//! | --- | --- | --- |
//! | [`MAX_FORM_BODY_BYTES`] | 64 KiB | `/token`, `/revoke`, `POST /authorize` (413) |
//! | [`MAX_REGISTRATION_BODY_BYTES`] | 64 KiB | `/register` (413) |
//! | [`MAX_FORM_PARAMETERS`] | 64 | every form body and `/authorize` query (`invalid_request`) |
//! | control characters | none | every form and query parameter, Basic credentials, the `sub` of a client assertion (`invalid_request`) |
//! | [`MAX_STATE_BYTES`] | 4 KiB | `state` at `/authorize` (`invalid_request`) |
//! | [`MAX_RESOURCE_BYTES`] | 2 KiB | `resource` at `/authorize` and `/token` (`invalid_target`) |
//! | scope | 64 tokens of ≤ 128 bytes, ≤ 8256 bytes | `scope` at `/authorize` and `/token` (`invalid_scope`) |
//! | `code_challenge` | 43–128 characters | `/authorize` (RFC 7636 §4.2, `invalid_request`) |
//! | [`DEFAULT_OPERATION_BODY_LIMIT`] | 64 KiB | bytes of an MCP request read to find its operation |

/// The largest form body accepted at `/token`, `/revoke` and `POST /authorize`: 64 KiB.
///
/// A form holds at most [`MAX_FORM_PARAMETERS`] parameters, and the largest legitimate value is
/// a JWT (a client assertion or an ID-JAG), a few KiB at most; 64 KiB leaves an order of
/// magnitude of room while bounding what one request makes the server buffer and decode (the
/// Python SDK's 1 MiB let a single body cost seconds of CPU).
pub const MAX_FORM_BODY_BYTES: usize = 64 * 1024;

/// The largest registration request accepted at `/register`: 64 KiB.
///
/// Client metadata at every bound of [`mcp_auth_types::limits`] (20 redirect URIs of 2 KiB, a
/// 16 KiB key set, …) fits in about 64 KiB; a real registration is under 2 KiB.
pub const MAX_REGISTRATION_BODY_BYTES: usize = 64 * 1024;

/// The most parameters a form body or `/authorize` query may hold: 64.
///
/// The largest request of RFC 6749 and its extensions (a `private_key_jwt` token request with
/// PKCE and a resource) has about a dozen parameters; 64 leaves room for extensions. Parsing
/// stops at the 65th, so the work a request can cause does not grow with its length.
pub const MAX_FORM_PARAMETERS: usize = 64;

/// The longest `state` accepted at `/authorize`: 4 KiB.
///
/// `state` is opaque to the server but kept with the pending authorization and echoed on the
/// redirect; clients put a random value or a small encoded context in it. 4 KiB keeps the
/// stored record and the `Location` header small.
pub const MAX_STATE_BYTES: usize = 4 * 1024;

/// The longest `resource` indicator accepted: 2 KiB, the bound on every URI a client sends
/// ([`mcp_auth_types::limits::MAX_URI_BYTES`]).
pub const MAX_RESOURCE_BYTES: usize = mcp_auth_types::limits::MAX_URI_BYTES;

/// The default number of body bytes the per-operation scope layer reads to find the operation
/// of an MCP request: 64 KiB. A body longer than that cannot be judged and needs every
/// configured scope.
pub const DEFAULT_OPERATION_BODY_LIMIT: usize = 64 * 1024;
