//! Server settings (the Python SDK's `settings.py`), validated when built.

use mcp_auth_types::{
    IssuerUrl, is_resource_indicator, resource_url_from_server_url, split_scopes,
    validate_issuer_url,
};

use crate::error::ConfigError;

/// Dynamic client registration (RFC 7591) options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientRegistrationOptions {
    /// Whether `/register` is served.
    pub enabled: bool,
    /// Lifetime of issued client secrets; `None` means they never expire
    /// (`client_secret_expires_at` = 0).
    pub client_secret_expiry_seconds: Option<u64>,
    /// Scopes a client may register for; `None` means any.
    pub valid_scopes: Option<Vec<String>>,
    /// Scopes given to a client that registers without `scope`.
    pub default_scopes: Option<Vec<String>>,
    /// Scopes added to every registration's `scope`, whatever the client asked for, so that it
    /// may request them later without registering again: an MCP client registers with the
    /// scope of its first challenge and, when a tool answers 403 `insufficient_scope`, asks
    /// for more (MCP "scope challenge handling"). The registered `scope` stays the ceiling of
    /// what the client can request (RFC 7591 §2); the server widens it, which RFC 7591
    /// §3.2.1 allows ("may replace … requested metadata values"), and the registration
    /// response shows the result. Widening gives nothing away: anyone may register, with any
    /// valid scope, and each authorization still shows the user what is requested.
    pub step_up_scopes: Vec<String>,
    /// Whether public clients (`token_endpoint_auth_method` = `none`) may register. MCP clients
    /// are mostly native or browser apps that cannot keep a secret, so this defaults to `true`
    /// when registration is enabled.
    pub allow_public_clients: bool,
    /// Whether a self-registered client may list the `client_credentials` grant (when the
    /// provider supports it at all: see [`Capabilities`](crate::Capabilities)). Off by
    /// default: a machine client that gets tokens in its own name is normally provisioned by an
    /// administrator (MCP client-credentials extension), and anyone can register.
    pub allow_client_credentials: bool,
}

impl ClientRegistrationOptions {
    /// Registration enabled, public clients allowed, no scope restrictions.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            allow_public_clients: true,
            ..Self::default()
        }
    }

    /// Registration disabled.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The `scope` recorded for a client that declared `declared`, at registration (after
    /// invalid scopes were refused) or in a Client ID Metadata Document: its declared scopes
    /// that are valid, or [`default_scopes`](Self::default_scopes) when it declared none,
    /// widened by [`step_up_scopes`](Self::step_up_scopes). `None` when nothing is left.
    ///
    /// A metadata document is the client's own claim and is not refused for an unknown scope
    /// (the draft lets the server ignore what it does not support), so unknown scopes are
    /// dropped here rather than recorded.
    pub fn client_scope(&self, declared: Option<&str>) -> Option<String> {
        let declared = split_scopes(declared);
        let mut scopes: Vec<String> = if declared.is_empty() {
            self.default_scopes.clone().unwrap_or_default()
        } else {
            declared
                .into_iter()
                .filter(|scope| {
                    self.valid_scopes
                        .as_ref()
                        .is_none_or(|valid| valid.contains(scope))
                })
                .collect()
        };
        for scope in &self.step_up_scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        (!scopes.is_empty()).then(|| scopes.join(" "))
    }

    /// What an authorization request without `scope` is granted — RFC 6749 §3.3's
    /// "pre-defined default value": the client's `registered` scopes except the step-up ones,
    /// which a client gets only by asking for them, and except any no longer in
    /// [`valid_scopes`](Self::valid_scopes) (a client registered before the server stopped
    /// offering a scope keeps it on record).
    pub fn default_request_scopes(&self, registered: &[String]) -> Vec<String> {
        registered
            .iter()
            .filter(|scope| !self.step_up_scopes.contains(scope))
            .filter(|scope| {
                self.valid_scopes
                    .as_ref()
                    .is_none_or(|valid| valid.contains(scope))
            })
            .cloned()
            .collect()
    }

    /// Restricts registrable scopes.
    pub fn valid_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.valid_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the scopes of a client that registers without `scope`.
    pub fn default_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.default_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the scopes added to every registration (see
    /// [`step_up_scopes`](Self::step_up_scopes)).
    pub fn step_up_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.step_up_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Makes issued secrets expire after `seconds`.
    pub fn client_secret_expiry_seconds(mut self, seconds: u64) -> Self {
        self.client_secret_expiry_seconds = Some(seconds);
        self
    }

    /// Whether public clients may register.
    pub fn allow_public_clients(mut self, allow: bool) -> Self {
        self.allow_public_clients = allow;
        self
    }

    /// Whether self-registered (confidential) clients may use the client credentials grant.
    pub fn allow_client_credentials(mut self, allow: bool) -> Self {
        self.allow_client_credentials = allow;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let (Some(valid), Some(default)) = (&self.valid_scopes, &self.default_scopes)
            && let Some(scope) = default.iter().find(|s| !valid.contains(s))
        {
            return Err(ConfigError::DefaultScopeNotValid(scope.clone()));
        }
        if let Some(valid) = &self.valid_scopes
            && let Some(scope) = self.step_up_scopes.iter().find(|s| !valid.contains(s))
        {
            return Err(ConfigError::StepUpScopeNotValid(scope.clone()));
        }
        Ok(())
    }
}

/// Token revocation (RFC 7009) options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RevocationOptions {
    /// Whether `/revoke` is served.
    pub enabled: bool,
}

impl RevocationOptions {
    /// Revocation enabled.
    pub fn enabled() -> Self {
        Self { enabled: true }
    }
}

/// Token introspection (RFC 7662) options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IntrospectionOptions {
    /// Whether `/introspect` is served (to authenticated confidential clients: resource
    /// servers that cannot read this server's store).
    pub enabled: bool,
}

impl IntrospectionOptions {
    /// Introspection enabled.
    pub fn enabled() -> Self {
        Self { enabled: true }
    }
}

/// Validated settings of an authorization server and its protected resource.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthSettings {
    /// The issuer identifier, exactly as configured.
    pub issuer_url: IssuerUrl,
    /// Human-readable documentation, advertised in metadata.
    pub service_documentation_url: Option<String>,
    /// Dynamic client registration.
    pub client_registration_options: ClientRegistrationOptions,
    /// Token revocation.
    pub revocation_options: RevocationOptions,
    /// Token introspection.
    pub introspection_options: IntrospectionOptions,
    /// Scopes every protected request needs.
    pub required_scopes: Vec<String>,
    /// The protected resource (the MCP endpoint), canonical per RFC 8707.
    pub resource_server_url: Option<String>,
    /// Every resource this server issues tokens for, canonical: the resource server URL first,
    /// then any others. Empty means resource indicators are not restricted.
    pub resources: Vec<String>,
}

impl AuthSettings {
    /// Starts building settings for `issuer_url`.
    pub fn builder(issuer_url: impl Into<String>) -> AuthSettingsBuilder {
        AuthSettingsBuilder {
            issuer_url: issuer_url.into(),
            service_documentation_url: None,
            client_registration_options: ClientRegistrationOptions::default(),
            revocation_options: RevocationOptions::default(),
            introspection_options: IntrospectionOptions::default(),
            required_scopes: Vec::new(),
            resource_server_url: None,
            extra_resources: Vec::new(),
        }
    }
}

/// Builder for [`AuthSettings`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthSettingsBuilder {
    issuer_url: String,
    service_documentation_url: Option<String>,
    client_registration_options: ClientRegistrationOptions,
    revocation_options: RevocationOptions,
    introspection_options: IntrospectionOptions,
    required_scopes: Vec<String>,
    resource_server_url: Option<String>,
    extra_resources: Vec<String>,
}

impl AuthSettingsBuilder {
    /// Documentation URL advertised as `service_documentation`.
    pub fn service_documentation_url(mut self, url: impl Into<String>) -> Self {
        self.service_documentation_url = Some(url.into());
        self
    }

    /// Dynamic client registration options.
    pub fn client_registration(mut self, options: ClientRegistrationOptions) -> Self {
        self.client_registration_options = options;
        self
    }

    /// Revocation options.
    pub fn revocation(mut self, options: RevocationOptions) -> Self {
        self.revocation_options = options;
        self
    }

    /// Introspection options.
    pub fn introspection(mut self, options: IntrospectionOptions) -> Self {
        self.introspection_options = options;
        self
    }

    /// Scopes every protected request needs.
    pub fn required_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The protected resource's URL (e.g. `https://mcp.example.com/mcp`).
    pub fn resource_server_url(mut self, url: impl Into<String>) -> Self {
        self.resource_server_url = Some(url.into());
        self
    }

    /// Another resource this server issues tokens for.
    pub fn additional_resource(mut self, url: impl Into<String>) -> Self {
        self.extra_resources.push(url.into());
        self
    }

    /// Validates and builds the settings.
    pub fn build(self) -> Result<AuthSettings, ConfigError> {
        let issuer_url = validate_issuer_url(&self.issuer_url)?;
        if let Some(url) = &self.service_documentation_url {
            check_http_url("service_documentation_url", url)?;
        }
        self.client_registration_options.validate()?;
        let resource_server_url = self
            .resource_server_url
            .map(|url| {
                check_resource_url("resource_server_url", &url)?;
                Ok::<_, ConfigError>(resource_url_from_server_url(&url))
            })
            .transpose()?;
        let mut resources: Vec<String> = resource_server_url.iter().cloned().collect();
        for url in self.extra_resources {
            check_resource_url("additional_resource", &url)?;
            let canonical = resource_url_from_server_url(&url);
            if !resources.contains(&canonical) {
                resources.push(canonical);
            }
        }
        Ok(AuthSettings {
            issuer_url,
            service_documentation_url: self.service_documentation_url,
            client_registration_options: self.client_registration_options,
            revocation_options: self.revocation_options,
            introspection_options: self.introspection_options,
            required_scopes: self.required_scopes,
            resource_server_url,
            resources,
        })
    }
}

/// A resource this server issues tokens for: an http(s) URL without a fragment that a URL
/// parser accepts. The token endpoint accepts a resource indicator equal to one of them without
/// parsing it again, so each must be valid here.
fn check_resource_url(setting: &'static str, url: &str) -> Result<(), ConfigError> {
    check_http_url(setting, url)?;
    if !is_resource_indicator(url) {
        return Err(ConfigError::Url {
            setting,
            reason: "must be a valid absolute http or https URL with a host",
        });
    }
    Ok(())
}

fn check_http_url(setting: &'static str, url: &str) -> Result<(), ConfigError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(ConfigError::Url {
            setting,
            reason: "must be an absolute http or https URL",
        });
    }
    if url.contains('#') {
        return Err(ConfigError::Url {
            setting,
            reason: "must not contain a fragment",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_scope_keeps_valid_declared_scopes_or_the_defaults_and_adds_step_up() {
        let rules = ClientRegistrationOptions::enabled()
            .valid_scopes(["mcp:tools", "mcp:admin", "read"])
            .default_scopes(["mcp:tools"])
            .step_up_scopes(["mcp:admin"]);
        let cases = [
            (None, Some("mcp:tools mcp:admin")),
            (Some(""), Some("mcp:tools mcp:admin")),
            (Some("read"), Some("read mcp:admin")),
            (Some("read unknown mcp:admin"), Some("read mcp:admin")),
            (Some("unknown"), Some("mcp:admin")),
        ];
        for (declared, expected) in cases {
            assert_eq!(
                rules.client_scope(declared).as_deref(),
                expected,
                "{declared:?}"
            );
        }
        let bare = ClientRegistrationOptions::enabled();
        assert_eq!(bare.client_scope(None), None);
        assert_eq!(bare.client_scope(Some("x y")).as_deref(), Some("x y"));
        let registered = [
            "mcp:tools".to_owned(),
            "mcp:admin".to_owned(),
            "gone".to_owned(),
        ];
        assert_eq!(rules.default_request_scopes(&registered), ["mcp:tools"]);
        assert_eq!(bare.default_request_scopes(&registered), registered);
    }

    #[test]
    fn builds_with_canonical_resources() {
        let settings = AuthSettings::builder("https://as.example")
            .resource_server_url("HTTPS://MCP.example/mcp")
            .additional_resource("https://other.example/api")
            .additional_resource("https://mcp.example/mcp")
            .build()
            .unwrap();
        assert_eq!(settings.issuer_url.as_str(), "https://as.example");
        assert_eq!(
            settings.resource_server_url.as_deref(),
            Some("https://mcp.example/mcp")
        );
        assert_eq!(
            settings.resources,
            ["https://mcp.example/mcp", "https://other.example/api"]
        );
    }

    #[test]
    fn refuses_bad_configuration() {
        let cases = [
            AuthSettings::builder("http://as.example").build().err(),
            AuthSettings::builder("https://as.example")
                .resource_server_url("mcp")
                .build()
                .err(),
            AuthSettings::builder("https://as.example")
                .resource_server_url("https://x/#f")
                .build()
                .err(),
            // The token endpoint accepts a resource equal to a served one without parsing it:
            // each must parse here.
            AuthSettings::builder("https://as.example")
                .resource_server_url("https://mcp.example:99999/mcp")
                .build()
                .err(),
            AuthSettings::builder("https://as.example")
                .additional_resource("https://exa mple/api")
                .build()
                .err(),
            AuthSettings::builder("https://as.example")
                .client_registration(
                    ClientRegistrationOptions::enabled()
                        .valid_scopes(["a"])
                        .default_scopes(["b"]),
                )
                .build()
                .err(),
            AuthSettings::builder("https://as.example")
                .client_registration(
                    ClientRegistrationOptions::enabled()
                        .valid_scopes(["a"])
                        .step_up_scopes(["b"]),
                )
                .build()
                .err(),
        ];
        for (i, case) in cases.into_iter().enumerate() {
            assert!(case.is_some(), "case {i} should fail");
        }
    }
}
