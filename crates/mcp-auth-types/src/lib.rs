#![doc = include_str!("../README.md")]

mod client;
mod error;
mod introspection;
pub mod limits;
mod metadata;
mod pkce;
mod records;
mod redirect;
mod resource;
mod secret;
mod token;
mod vocab;

pub use client::{
    InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull, OAuthClientMetadata,
    split_scopes,
};
pub use error::{
    AuthorizeErrorCode, BearerErrorCode, ErrorBody, IntrospectionErrorCode, RegistrationErrorCode,
    RevocationErrorCode, ServerErrorCode, TokenErrorCode,
};
pub use introspection::IntrospectionResponse;
pub use limits::{MetadataLimitError, contains_control_character};
pub use metadata::{
    MetadataMemberError, NoAuthorizationServer, OAuthMetadata, ProtectedResourceMetadata,
    authorization_server_metadata_urls, issuer_metadata_member,
};
pub use pkce::{is_valid_pkce_string, s256_challenge, verify_s256};
pub use records::{
    AccessToken, AccessTokenInfo, AuthorizationCode, AuthorizationParams, IdentityAssertionParams,
    PrincipalComponents, RefreshToken, principal_components,
};
pub use redirect::{
    RedirectUriRejection, check_registrable_redirect_uri, construct_redirect_uri,
    redirect_uri_matches,
};
pub use resource::{
    IssuerUrl, IssuerUrlError, build_authorization_server_metadata_url,
    build_resource_metadata_url, check_resource_allowed, is_resource_indicator, resource_matches,
    resource_url_from_server_url, validate_issuer_url,
};
pub use secret::{
    AccessTokenSecret, Assertion, AuthorizationCodeSecret, ClientSecret, CodeVerifier,
    RefreshTokenSecret,
};
pub use token::{BearerTokenType, OAuthToken};
pub use vocab::{CodeChallengeMethod, GrantType, ResponseType, TokenEndpointAuthMethod};

/// The RFC 7523 jwt-bearer grant type, used by SEP-990 to present an ID-JAG.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The RFC 7523 §2.2 `client_assertion_type` of a JWT client assertion (`private_key_jwt`).
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The authorization grant profile advertised for SEP-990 ID-JAG support.
pub const ID_JAG_GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
