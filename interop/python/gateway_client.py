"""Gateway interop: the official MCP Python SDK client against mcp-auth-server in gateway mode.

The server runs with `--upstream <an MCP server>/mcp --upstream-header "NAME: VALUE"
--tool-scope "headers=mcp:admin"`, in front of `upstream_server.py` or `upstream_server.mjs`
(tools `echo`, `headers`, `progress`). The SDK's `OAuthClientProvider` does every protocol
step; this script plays the user at the sign-in page (the `User` of `client.py`), records every
HTTP response the SDK sees, and sends headers a client must not be able to pass to the upstream.

    python gateway_client.py --server http://127.0.0.1:PORT --user NAME --password PASSWORD \
        --expect-header NAME=VALUE

Steps, each reported on stderr; any failure exits 1 with a message naming the step:
1. connect to <server>/mcp with the `initialize` handshake (mode "legacy": an
   `Mcp-Session-Id` session the gateway must carry to the upstream): 401, discovery,
   registration, sign-in for `mcp:tools`;
2. `tools/list` holds `echo`, `headers` and `progress`; `echo` returns its text;
3. `progress(3)` with a progress callback: all three notifications arrive before the result,
   in order, and the result is "done"; the first arrives at least 100 ms before the result
   (the upstream sleeps 100 ms after each, so only a gateway that buffers the upstream's SSE
   response instead of streaming it brings them all at once);
4. `headers`, which needs `mcp:admin`: the gateway answers 403 `insufficient_scope` naming
   `mcp:admin`; the SDK re-authorizes for the union of the scopes (the user signs in a second
   time) and retries, on the same session. The headers the upstream received: no
   `authorization`, no `cookie` (the client sent one), `x-mcp-auth-subject` the user,
   `x-mcp-auth-client-id` the registered client, `x-mcp-auth-scopes` both scopes (the
   client's own forged `X-MCP-Auth-*` copies must be gone), and the `--expect-header` the
   gateway was configured to add;
5. connect again with the SDK's default negotiation (mode "auto": the 2026-07-28 protocol,
   without a session, when the upstream speaks it, as the Python SDK's server does) on the
   stepped-up token and repeat `echo`, `headers` and `progress(3)` without any sign-in.
"""

from __future__ import annotations

import json
import sys
import time

import anyio
import httpx2
from client import (
    HTTP_TIMEOUT,
    InteropError,
    MemoryStorage,
    ResponseLog,
    User,
    make_provider,
    run_reported,
    sign_in_parser,
)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

BASE_SCOPE = "mcp:tools"
ADMIN_SCOPE = "mcp:admin"
TOOLS = {"echo", "headers", "progress"}
PROGRESS_STEPS = 3
# The upstream sleeps 100 ms after each notification, so a streamed response brings the first
# one about 300 ms before the result, and a buffered one brings all at once; a loaded machine
# only widens the gap.
MIN_STREAM_SPREAD = 0.1
# What the client sends to see that the gateway removes it: a cookie, and forged identity.
CLIENT_COOKIE = "interop-session=from-the-client"
FORGED_SUBJECT = "forged-by-the-client"
FORGED_SCOPES = "forged:scope"
FLOW_TIMEOUT = 120.0


def step(message: str) -> None:
    print(f"python-sdk gateway: {message}", file=sys.stderr, flush=True)


def texts_of(result: object, tool: str) -> list[str]:
    if getattr(result, "is_error", False) or getattr(result, "isError", False):
        raise InteropError(f"{tool} returned a tool error: {result}")
    return [getattr(block, "text", "") for block in getattr(result, "content", []) or []]


def headers_of(result: object) -> dict[str, str]:
    """The JSON object `headers` returned in its text block."""
    texts = texts_of(result, "headers")
    if len(texts) != 1:
        raise InteropError(f"headers returned {len(texts)} content blocks, expected one: {result}")
    seen = json.loads(texts[0])
    if not isinstance(seen, dict):
        raise InteropError(f"headers returned {texts[0]!r}, not a JSON object")
    return seen


def check_headers(
    seen: dict[str, str], username: str, client_id: str, scopes: set[str], expected: tuple[str, str]
) -> None:
    """What the upstream received: the verified principal and the configured header, no secrets."""
    for name in ("authorization", "cookie"):
        if name in seen:
            raise InteropError(f"the upstream received {name!r}: {seen[name]!r}")
    if seen.get("x-mcp-auth-subject") != username:
        raise InteropError(f"x-mcp-auth-subject is {seen.get('x-mcp-auth-subject')!r}, expected {username!r}")
    if seen.get("x-mcp-auth-client-id") != client_id:
        raise InteropError(f"x-mcp-auth-client-id is {seen.get('x-mcp-auth-client-id')!r}, expected {client_id!r}")
    received_scopes = seen.get("x-mcp-auth-scopes")
    if received_scopes is None or set(received_scopes.split(" ")) != scopes:
        raise InteropError(f"x-mcp-auth-scopes is {received_scopes!r}, expected the space-separated {sorted(scopes)}")
    name, value = expected
    if seen.get(name.lower()) != value:
        raise InteropError(f"{name.lower()} is {seen.get(name.lower())!r}, expected {value!r} (--upstream-header)")


async def check_progress(client: Client) -> float:
    """`progress(3)`: three notifications, in order, all before the result, and streamed: the
    first arrives well before the result (the upstream sleeps 100 ms after each). Returns the
    seconds from the first notification to the result."""
    received: list[tuple[float, float]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, time.monotonic()))

    result = await client.call_tool("progress", {"steps": PROGRESS_STEPS}, progress_callback=on_progress)
    # Counted as the call returns: a notification delivered after the result would be missing.
    done_at = time.monotonic()
    at_result = [progress for progress, _ in received]
    if texts_of(result, "progress") != ["done"]:
        raise InteropError(f"progress returned {result}, expected 'done'")
    if at_result != [float(n) for n in range(1, PROGRESS_STEPS + 1)]:
        raise InteropError(f"progress notifications before the result: {at_result}, expected 1..{PROGRESS_STEPS}")
    spread = done_at - received[0][1]
    if spread < MIN_STREAM_SPREAD:
        raise InteropError(
            f"the first progress notification came {spread * 1000:.0f} ms before the result: "
            "the response was buffered, not streamed"
        )
    return spread


async def check_tools(client: Client) -> None:
    listed = {tool.name for tool in (await client.list_tools()).tools}
    if not TOOLS <= listed:
        raise InteropError(f"tools/list holds {sorted(listed)}, expected {sorted(TOOLS)} among them")
    echoed = texts_of(await client.call_tool("echo", {"text": "through the gateway"}), "echo")
    if echoed != ["through the gateway"]:
        raise InteropError(f"echo returned {echoed!r}")


async def gateway(server: str, username: str, password: str, expected: tuple[str, str]) -> None:
    storage = MemoryStorage()
    user = User(username, password)
    auth = make_provider(server, storage, user)
    responses = ResponseLog()
    forged = {"Cookie": CLIENT_COOKIE, "X-MCP-Auth-Subject": FORGED_SUBJECT, "X-MCP-Auth-Scopes": FORGED_SCOPES}
    async with httpx2.AsyncClient(
        auth=auth, timeout=HTTP_TIMEOUT, headers=forged, event_hooks={"response": [responses.record]}
    ) as http:
        async with Client(streamable_http_client(f"{server}/mcp", http_client=http), mode="legacy") as client:
            if storage.tokens is None or storage.client_info is None:
                raise InteropError("the SDK connected without a token")
            client_id = storage.client_info.client_id
            if storage.tokens.scope != BASE_SCOPE:
                raise InteropError(f"the first token's scope is {storage.tokens.scope!r}, expected {BASE_SCOPE!r}")
            step(f"initialize handshake (protocol {client.protocol_version}) as client {client_id}, scope {BASE_SCOPE!r}")

            await check_tools(client)
            step("tools/list holds echo, headers and progress; echo returned its text")
            spread = await check_progress(client)
            step(
                f"progress: {PROGRESS_STEPS} notifications arrived before the result 'done', "
                f"the first {spread * 1000:.0f} ms before it"
            )

            before = len(responses.seen)
            received = headers_of(await client.call_tool("headers", {}))
            challenge, params = responses.step_up_challenge(before)
            if params.get("error") != "insufficient_scope" or ADMIN_SCOPE not in params.get("scope", "").split():
                raise InteropError(f"the 403's challenge is {challenge!r}, expected insufficient_scope {ADMIN_SCOPE}")
            if user.sign_ins != 2:
                raise InteropError(f"{user.sign_ins} sign-ins happened, expected 2 (the first and the step-up)")
            step(f"headers: 403 insufficient_scope, scope={params.get('scope')!r}; the SDK signed in again and retried")
            check_headers(received, username, client_id, {BASE_SCOPE, ADMIN_SCOPE}, expected)
            step(f"the upstream received: {json.dumps(received, sort_keys=True)}")

        # The default negotiation, on the stepped-up token: no sign-in, no session.
        async with Client(streamable_http_client(f"{server}/mcp", http_client=http)) as client:
            await check_tools(client)
            received = headers_of(await client.call_tool("headers", {}))
            check_headers(received, username, client_id, {BASE_SCOPE, ADMIN_SCOPE}, expected)
            await check_progress(client)
            if user.sign_ins != 2:
                raise InteropError(f"the second connection signed in again ({user.sign_ins} sign-ins)")
            step(
                f"default negotiation (protocol {client.protocol_version}): echo, headers and progress "
                "passed on the stepped-up token"
            )


def main() -> int:
    parser = sign_in_parser(__doc__.split("\n\n")[0], "gateway")
    parser.add_argument(
        "--expect-header", required=True, help="NAME=VALUE: a header the gateway adds (its --upstream-header)"
    )
    args = parser.parse_args()
    name, sep, value = args.expect_header.partition("=")
    if not sep or not name:
        parser.error("--expect-header must be NAME=VALUE")

    async def bounded() -> None:
        with anyio.fail_after(FLOW_TIMEOUT):
            await gateway(args.server.rstrip("/"), args.user, args.password, (name.strip(), value.strip()))

    return run_reported(step, bounded)


if __name__ == "__main__":
    sys.exit(main())
