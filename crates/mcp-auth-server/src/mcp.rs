//! The protected MCP server: tools `echo`, `whoami` and `admin_echo`, served by rmcp over
//! streamable HTTP. `admin_echo` shows step-up: with `--tool-scope admin_echo=mcp:admin` it
//! needs `mcp:admin` besides the endpoint's `mcp:tools`, enforced by the operation-scope layer
//! before the call gets here.

use std::sync::Arc;

use mcp_auth_axum::Authenticated;

use crate::UpstreamTokenSource;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to return.
    pub text: String,
}

/// The demo MCP server behind `/mcp`. Every request reaching it has passed the bearer layer,
/// which put the verified token in the HTTP request's extensions.
#[derive(Debug, Clone)]
pub struct Tools {
    tool_router: ToolRouter<Tools>,
}

impl Default for Tools {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl Tools {
    /// A server with every tool.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Returns its `text` argument.
    #[tool(description = "Return the given text unchanged")]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
    }

    /// Returns its `text` argument, like `echo`; the operator gives it a scope of its own
    /// (`--tool-scope admin_echo=mcp:admin`) to show how a client with only `mcp:tools` steps up.
    #[tool(
        description = "Return the given text unchanged; may need a scope of its own (mcp:admin)"
    )]
    fn admin_echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(args.text)]))
    }

    /// Returns who is calling: the access token's client, subject and scopes, and, with
    /// `--oidc-keep-tokens`, whether the user's token at the identity provider is at hand (a
    /// tool acting on the user's behalf would send it there; this one never shows it).
    #[tool(description = "Describe the caller: the access token's client_id, subject and scopes")]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        // rmcp puts the HTTP request parts into the request context; the bearer layer put the
        // verified token into their extensions.
        let parts = ctx.extensions.get::<http::request::Parts>();
        let token = parts
            .and_then(|parts| parts.extensions.get::<Authenticated>())
            .map(Authenticated::token)
            .ok_or_else(|| {
                tracing::error!("whoami called without an authenticated HTTP request");
                ErrorData::internal_error("the request carries no verified token", None)
            })?;
        let mut answer = serde_json::json!({
            "client_id": token.client_id,
            "subject": token.subject,
            "scopes": token.scopes,
        });
        if let Some(source) =
            parts.and_then(|parts| parts.extensions.get::<Arc<UpstreamTokenSource>>())
        {
            let held = match source.access_token(&token.token).await {
                Ok(held) => held.is_some(),
                Err(err) => {
                    tracing::warn!(error = %err, "the provider's token is unavailable");
                    false
                }
            };
            answer["upstream_token"] = serde_json::Value::Bool(held);
        }
        Ok(CallToolResult::structured(answer))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-auth-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "A demo MCP server behind OAuth: `echo` returns its text, `whoami` describes \
                 the access token you called with, `admin_echo` returns its text but may \
                 need a scope of its own (mcp:admin, when the operator sets one).",
            )
    }
}
