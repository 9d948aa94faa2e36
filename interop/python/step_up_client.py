"""Step-up interop: the official MCP Python SDK client re-authorizes when a tool needs a scope
its token lacks (MCP "scope challenge handling", SEP-2350), against mcp-auth-server's per-tool
scopes.

    python step_up_client.py --server http://127.0.0.1:PORT --user NAME --password PASSWORD

The server must run with `--tool-scope admin_echo=mcp:admin` (`admin_echo` needs `mcp:admin`
besides the endpoint's `mcp:tools`; `--scopes` left at `mcp:tools`, so that a `mcp:tools` token passes the
endpoint and is refused only by the tool). The SDK's `OAuthClientProvider` does every protocol
step; this script plays the user at the sign-in page (the `User` of `client.py`) and records
every HTTP response the SDK sees.

Steps, each reported on stderr; any failure exits 1 with a message naming the step:
1. connect to <server>/mcp: 401 with `scope="mcp:tools"`; the SDK registers, asks for that
   scope, and the user signs in once. `whoami` must show exactly `["mcp:tools"]`;
2. `tools/call admin_echo`: the server answers 403 with `error="insufficient_scope"` and a
   `scope` naming `mcp:admin`; the SDK (mcp >= 2.x, `OAuthClientProvider._auth_flow`) treats
   that as a step-up, re-authorizes with the union of the scopes it held and the challenged
   ones, the user signs in a second time, and the SDK retries the call, which must return
   the text;
3. the SDK's final token must hold both scopes, and `whoami` on it must show both.
"""

from __future__ import annotations

import json
import sys

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
    whoami_of,
)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

BASE_SCOPE = "mcp:tools"
ADMIN_SCOPE = "mcp:admin"
FLOW_TIMEOUT = 90.0


def step(message: str) -> None:
    print(f"python-sdk step-up: {message}", file=sys.stderr, flush=True)


async def step_up(server: str, username: str, password: str) -> None:
    storage = MemoryStorage()
    user = User(username, password)
    auth = make_provider(server, storage, user)
    responses = ResponseLog()
    async with httpx2.AsyncClient(
        auth=auth, timeout=HTTP_TIMEOUT, event_hooks={"response": [responses.record]}
    ) as http:
        async with Client(streamable_http_client(f"{server}/mcp", http_client=http)) as client:
            if storage.tokens is None or storage.client_info is None:
                raise InteropError("the SDK connected without a token")
            client_id = storage.client_info.client_id
            if storage.tokens.scope != BASE_SCOPE:
                raise InteropError(f"the first token's scope is {storage.tokens.scope!r}, expected {BASE_SCOPE!r}")
            who = whoami_of(await client.call_tool("whoami", {}))
            if who.get("scopes") != [BASE_SCOPE]:
                raise InteropError(f"whoami scopes are {who.get('scopes')!r}, expected [{BASE_SCOPE!r}]")
            step(f"signed in as client {client_id} with scope {BASE_SCOPE!r} only; whoami agrees")

            before = len(responses.seen)
            result = await client.call_tool("admin_echo", {"text": "stepped up"})
            if getattr(result, "is_error", False) or getattr(result, "isError", False):
                raise InteropError(f"admin_echo returned a tool error: {result}")
            texts = [getattr(block, "text", None) for block in getattr(result, "content", []) or []]
            if texts != ["stepped up"]:
                raise InteropError(f"admin_echo returned {texts!r}, expected ['stepped up']")

            challenge, params = responses.step_up_challenge(before)
            if params.get("error") != "insufficient_scope":
                raise InteropError(f"the 403's challenge is {challenge!r}, expected error=insufficient_scope")
            challenged = params.get("scope", "").split()
            if ADMIN_SCOPE not in challenged:
                raise InteropError(f"the 403's challenge names scope {challenged!r}, without {ADMIN_SCOPE!r}")
            step(f"admin_echo: 403 insufficient_scope, scope={' '.join(challenged)!r}")
            if user.sign_ins != 2:
                raise InteropError(f"{user.sign_ins} sign-ins happened, expected 2 (the first and the step-up)")

            final = storage.tokens
            granted = (final.scope or "").split() if final is not None else []
            if BASE_SCOPE not in granted or ADMIN_SCOPE not in granted:
                raise InteropError(f"the stepped-up token's scope is {granted!r}, expected both scopes")
            step(f"the SDK signed in again and retried: admin_echo returned its text; token scope {final.scope!r}")

            who = whoami_of(await client.call_tool("whoami", {}))
            if sorted(who.get("scopes") or []) != sorted([BASE_SCOPE, ADMIN_SCOPE]):
                raise InteropError(f"whoami scopes after the step-up are {who.get('scopes')!r}")
            if who.get("client_id") != client_id or who.get("subject") != username:
                raise InteropError(f"whoami after the step-up is {who!r}")
            step(f"whoami after the step-up: {json.dumps(who, sort_keys=True)}")


def main() -> int:
    args = sign_in_parser(__doc__.split("\n\n")[0]).parse_args()

    async def bounded() -> None:
        with anyio.fail_after(FLOW_TIMEOUT):
            await step_up(args.server.rstrip("/"), args.user, args.password)

    return run_reported(step, bounded)


if __name__ == "__main__":
    sys.exit(main())
