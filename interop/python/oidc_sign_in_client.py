"""Interop check: sign-in through an OpenID Provider. The official MCP Python SDK client signs in
at mcp-auth-server, which sends its user to a real, independent provider, npm `oidc-provider`
(`interop/typescript/oidc_sign_in_provider.mjs`), and back.

    python oidc_sign_in_client.py --server-bin PATH/TO/mcp-auth-server --node PATH/TO/node22 --dir DIR

1. Pick a free loopback port for the server; start the provider with the server's callback
   (`http://127.0.0.1:PORT/sign-in/oidc/callback`) as its client's redirect URI, and wait until
   it writes DIR/oidc-provider.json (issuer, certificate, client credentials, test account).
2. Start mcp-auth-server on that port with no local users, as the provider's relying party:
   `--oidc-issuer`, `--oidc-client-id`, `--oidc-client-secret`, `--oidc-root-cert` (the
   provider's self-signed certificate) and `--oidc-allow-domain` (the account's email domain,
   so the verified-email rule is exercised too); wait for `/healthz`.
3. Connect the SDK to <server>/mcp: 401, discovery, dynamic registration, the authorization
   request with PKCE. The user (`ProviderUser`, one browser: an `httpx2` client with a cookie
   jar, trusting the provider's certificate) follows it: our sign-in page, which offers no
   choice without local users, sets the sealed `mcp_auth_oidc` cookie and redirects to the
   provider's authorization endpoint (code flow, our callback, `openid`, `state`, `nonce`, PKCE
   S256: checked); the provider's login page (login and password filled in and posted), its
   consent page (posted); the provider's redirect to our callback with `code`, `state` and
   `iss`; our consent page (its one form with `request_id`, `csrf_token` and the decisions
   approve and deny): approve, with the cookies the server set, must answer 302 to the
   client's redirect URI with `code`, `state` and `iss`. The SDK exchanges the code.
4. `tools/call whoami`: the subject is `oidc:` and the provider's subject for the account
   (`oidc:interop-user-1`), the client the registered one, the scopes hold `mcp:tools`; one
   sign-in happened.

Each step is reported on stderr; any failure exits 1 naming the step. The logs are
DIR/provider.log and DIR/server.log (the xtask prints their tails when the check fails).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from client import (
    HTTP_TIMEOUT,
    InteropError,
    MemoryStorage,
    User,
    browse,
    check_whoami,
    client_redirect,
    make_provider,
    parse_form,
    run_reported,
    whoami_of,
)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from servers import free_port, start, start_server, stop

PROVIDER_SCRIPT = Path(__file__).resolve().parent.parent / "typescript" / "oidc_sign_in_provider.mjs"
CALLBACK_PATH = "/sign-in/oidc/callback"
# The cookies the server's federated sign-in sets in the browser (their names on http).
OIDC_COOKIE = "mcp_auth_oidc"
CSRF_COOKIE = "mcp_auth_csrf"
# Sign-in through two servers' pages, the token exchange and one call, on a loaded machine
# (well under a second when idle). With the provider's and the server's start (servers.py's
# START_TIMEOUT_S each), it stays under the xtask's bound on a client, 180 s, so that this
# script always stops what it started.
FLOW_TIMEOUT = 45.0


def step(message: str) -> None:
    print(f"python-sdk oidc: {message}", file=sys.stderr, flush=True)


@dataclass
class ProviderUser(User):
    """Signs in the way a person with a browser would when the server sends them to its OpenID
    Provider: at the provider's login and consent pages, then at the server's consent page.
    `username` and `password` are the provider's account."""

    # The provider's issuer, and the server's callback registered there.
    issuer: str = ""
    callback: str = ""
    # Trusts the provider's self-signed certificate.
    tls: ssl.SSLContext | None = None
    # Every response of the sign-in, in order (an `httpx2` response event hook).
    seen: list[httpx2.Response] = field(default_factory=list)

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        self.seen.clear()
        step(f"authorization request: {authorization_url.split('?')[0]}")
        # One client is one browser: its cookie jar keeps each server's cookies for it.
        async with httpx2.AsyncClient(
            timeout=HTTP_TIMEOUT,
            follow_redirects=False,
            verify=self.tls or True,
            event_hooks={"response": [self._record]},
        ) as http:
            url, page = await browse(http, "GET", authorization_url)
            self._check_provider_request()
            url, page = await self._submit(http, url, page, "login", {"login": self.username, "password": self.password})
            step(f"signed in at the provider as {self.username}")
            url, page = await self._submit(http, url, page, "consent", {})
            step("consented at the provider")

            self._check_callback(url, page)
            form = parse_form(page.text, "our consent page")
            for name in ("request_id", "csrf_token"):
                if name not in form.fields:
                    raise InteropError(f"our consent form has no input {name!r}: {sorted(form.fields)}")
            if sorted(form.decisions) != ["approve", "deny"]:
                raise InteropError(f"our consent form's decisions are {form.decisions}, expected approve and deny")
            target = urljoin(url, form.action) if form.action else url
            _, answer = await browse(http, "POST", target, data={**form.fields, "decision": "approve"})
            self.keep(client_redirect(answer, "approving at our consent page"))

    async def _record(self, response: httpx2.Response) -> None:
        self.seen.append(response)

    async def _submit(
        self, http: httpx2.AsyncClient, url: str, page: httpx2.Response, prompt: str, fill: dict[str, str]
    ) -> tuple[str, httpx2.Response]:
        """Submits the provider's `prompt` page (at `url`, answered `page`) with its inputs and
        `fill`, and follows the redirects that answer it."""
        if not url.startswith(f"{self.issuer}/interaction/") or page.status_code != 200:
            raise InteropError(f"expected the provider's {prompt} page, got {page.status_code} at {url}")
        form = parse_form(page.text, f"the provider's {prompt} page")
        if form.fields.get("prompt") != prompt or not set(fill) <= set(form.fields):
            raise InteropError(f"the provider's {prompt} form has the inputs {form.fields}")
        target = urljoin(url, form.action) if form.action else url
        return await browse(http, "POST", target, data={**form.fields, **fill})

    def _check_provider_request(self) -> None:
        """Our sign-in page (with no local users, it offers no choice) sets its cookie and sends
        the browser to the provider with a code-flow request for our callback, with PKCE S256."""
        hops = [(str(r.request.url), r.headers.get("location", "")) for r in self.seen]
        starts = [
            r
            for r in self.seen
            if r.headers.get("location", "").startswith(self.issuer + "/")
            and not str(r.request.url).startswith(self.issuer + "/")
        ]
        if len(starts) != 1 or urlsplit(str(starts[0].request.url)).path != "/sign-in":
            raise InteropError(f"our sign-in page did not send the browser to the provider once: {hops}")
        cookies = starts[0].headers.get_list("set-cookie")
        if not any(cookie.startswith(f"{OIDC_COOKIE}=") and "HttpOnly" in cookie for cookie in cookies):
            raise InteropError(f"our sign-in page set no HttpOnly {OIDC_COOKIE} cookie: {cookies}")
        request = urlsplit(starts[0].headers["location"])
        query = {name: values[0] for name, values in parse_qs(request.query).items() if len(values) == 1}
        expected = {"response_type": "code", "redirect_uri": self.callback, "code_challenge_method": "S256"}
        for name, value in expected.items():
            if query.get(name) != value:
                raise InteropError(f"the provider's authorization request has {name}={query.get(name)!r}")
        if "openid" not in query.get("scope", "").split():
            raise InteropError(f"the provider's authorization request has scope={query.get('scope')!r}")
        for name in ("client_id", "state", "nonce", "code_challenge"):
            if not query.get(name):
                raise InteropError(f"the provider's authorization request has no {name}")
        step(f"sent to the provider: {request.path} with scope={query['scope']!r}, state, nonce and PKCE S256")

    def _check_callback(self, url: str, page: httpx2.Response) -> None:
        """The provider's redirect to our callback carries code, state and iss (RFC 9207), and
        the callback answers with our consent page and its cookies."""
        if not url.startswith(self.callback + "?") or page.status_code != 200:
            raise InteropError(f"expected our consent page at {self.callback}, got {page.status_code} at {url}")
        query = parse_qs(urlsplit(url).query)
        if query.get("iss") != [self.issuer] or len(query.get("code", [])) != 1 or len(query.get("state", [])) != 1:
            raise InteropError(f"the provider's redirect to our callback has {sorted(query)}, iss={query.get('iss')}")
        names = {cookie.split("=", 1)[0] for cookie in page.headers.get_list("set-cookie")}
        if not {OIDC_COOKIE, CSRF_COOKIE} <= names:
            raise InteropError(f"our consent page set the cookies {sorted(names)}, expected {OIDC_COOKIE} and {CSRF_COOKIE}")
        step("back at our callback with code, state and iss; our consent page")


async def sign_in_and_call(origin: str, provider: dict) -> None:
    storage = MemoryStorage()
    user = ProviderUser(
        provider["login"],
        provider["password"],
        issuer=provider["issuer"],
        callback=origin + CALLBACK_PATH,
        tls=ssl.create_default_context(cafile=provider["certificate"]),
    )
    auth = make_provider(origin, storage, user)
    async with httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as http:
        async with Client(streamable_http_client(f"{origin}/mcp", http_client=http)) as client:
            if storage.client_info is None or not storage.client_info.client_id:
                raise InteropError("the SDK connected without registering a client")
            who = whoami_of(await client.call_tool("whoami", {}))
            check_whoami(who, f"oidc:{provider['login']}", storage.client_info.client_id)
            if user.sign_ins != 1:
                raise InteropError(f"{user.sign_ins} sign-ins happened, expected one")
            step(f"whoami: {json.dumps(who, sort_keys=True)}")


def run(server_bin: str, node: str, work: Path) -> int:
    """Starts the provider and the server, runs the check, stops both."""
    work.mkdir(parents=True, exist_ok=True)
    details = work / "oidc-provider.json"
    details.unlink(missing_ok=True)
    port = free_port()
    callback = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    provider_process = server_process = None
    try:
        provider_process = start(
            [node, str(PROVIDER_SCRIPT), "--redirect-uri", callback, "--dir", str(work)],
            work / "provider.log",
            "the OpenID Provider",
            details.exists,
        )
        provider = json.loads(details.read_text())
        step(f"provider up at {provider['issuer']}")
        origin, server_process = start_server(
            server_bin,
            port,
            [
                "--oidc-issuer",
                provider["issuer"],
                "--oidc-client-id",
                provider["client_id"],
                "--oidc-client-secret",
                provider["client_secret"],
                "--oidc-root-cert",
                provider["certificate"],
                "--oidc-allow-domain",
                provider["email_domain"],
                "--oidc-name",
                "oidc-provider",
            ],
            work / "server.log",
        )
        step(f"mcp-auth-server up at {origin}, relying party of {provider['issuer']}")

        async def flow() -> None:
            with anyio.fail_after(FLOW_TIMEOUT):
                await sign_in_and_call(origin, provider)

        return run_reported(step, flow)
    except (OSError, RuntimeError) as err:
        step(f"FAILED: {err}")
        return 1
    finally:
        stop(server_process)
        stop(provider_process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--node", required=True, help="Node.js 22, which oidc-provider needs")
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args()
    return run(args.server_bin, args.node, args.dir)


if __name__ == "__main__":
    sys.exit(main())
