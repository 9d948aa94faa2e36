"""An upstream MCP server for the gateway interop check, built with the official MCP Python SDK.

`mcp-auth-server --upstream http://127.0.0.1:PORT/mcp` serves its `/mcp` by proxying this
server; the gateway is its only authentication, so this server has none.

    python upstream_server.py --port PORT

Streamable HTTP at `http://127.0.0.1:PORT/mcp`, with stateful sessions (`Mcp-Session-Id`,
for clients of the `initialize` handshake; the SDK answers 2026-07-28 requests without a
session as well). Tools:

- `echo(text)`: returns `text`;
- `headers()`: the HTTP request headers this server received with the `tools/call`, as a JSON
  object with lower-case names (repeated headers joined with ", "), so that the client at the
  other side of the gateway can check what the gateway forwarded and what it removed;
- `progress(steps)`: sends `steps` progress notifications, about 100 ms apart, then returns
  "done" (a streamed response the gateway must pass through as it comes).

DNS-rebinding protection stays on (the SDK's default for a loopback server) and allows the
Host the gateway forwards: the upstream URL's authority, `127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import logging
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

# Bounds `progress`: the check asks for a few; a larger request is refused, not served for long.
MAX_PROGRESS_STEPS = 50
PROGRESS_INTERVAL = 0.1

server = MCPServer("mcp-auth interop upstream (Python SDK)", version="0.0.0")


@server.tool()
def echo(text: str) -> str:
    """Returns its argument."""
    return text


@server.tool()
def headers(ctx: Context) -> dict[str, str]:
    """The HTTP request headers this call arrived with, lower-case names."""
    request = ctx.request_context.request
    received = getattr(request, "headers", None)
    if received is None:
        raise ValueError("this call carries no HTTP request")
    seen: dict[str, str] = {}
    for name, value in received.items():
        name = name.lower()
        seen[name] = f"{seen[name]}, {value}" if name in seen else value
    return seen


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Sends `steps` progress notifications, about 100 ms apart, then returns "done"."""
    if not 0 <= steps <= MAX_PROGRESS_STEPS:
        raise ValueError(f"steps must be between 0 and {MAX_PROGRESS_STEPS}")
    for done in range(1, steps + 1):
        await ctx.report_progress(done, steps, f"step {done} of {steps}")
        await anyio.sleep(PROGRESS_INTERVAL)
    return "done"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the loopback port to listen on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{args.port}", f"localhost:{args.port}"],
        allowed_origins=[f"http://127.0.0.1:{args.port}", f"http://localhost:{args.port}"],
    )
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=args.port,
        streamable_http_path="/mcp",
        stateless_http=False,
        transport_security=security,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
