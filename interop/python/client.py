"""Interop check: the official MCP Python SDK client against mcp-auth-server.

Runs the whole OAuth 2.1 flow an MCP client performs, with the SDK's own `OAuthClientProvider`
doing every protocol step (discovery, registration, PKCE, token exchange, refresh, the RFC 9207
`iss` check); this script only plays the user: it answers the sign-in page that the SDK's
`redirect_handler` would open in a browser.

    python client.py --server http://127.0.0.1:PORT --user NAME --password PASSWORD \
        --refresh-after SECONDS

Steps, each reported on stderr; any failure exits 1 with a message naming the step:
1. connect to <server>/mcp: 401, then RFC 9728 and RFC 8414 discovery, dynamic registration as
   a public client, authorization code with PKCE, sign-in, token;
2. connect (the SDK's default "auto" negotiation) and `tools/call whoami`: the subject is the
   user, the client_id the registered one, the scopes hold `mcp:tools`;
3. wait past the access token's lifetime, call `whoami` again: the SDK must refresh (the
   storage receives a new access token, and no second sign-in happens) and the call succeed;
4. connect again with the `initialize` handshake (mode "legacy", the pre-2026 protocol with
   a session) on the refreshed token, and call `whoami`;
5. a second client whose sign-in answer is given a wrong `iss` must be refused by the SDK
   (RFC 9207 §2.4), which proves the check that step 1 passed is live.

The server must run with a short access-token lifetime (the xtask uses 2 s) so that step 3 is
quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, OAuthFlowError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Nothing listens here: the sign-in answer is a 302 whose Location we read instead of following.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
REQUIRED_SCOPE = "mcp:tools"
HTTP_TIMEOUT = 20.0
FLOW_TIMEOUT = 60.0
MAX_REDIRECTS = 5


class InteropError(Exception):
    """A check failed; the message says which and what was seen."""


def step(message: str) -> None:
    print(f"python-sdk: {message}", file=sys.stderr, flush=True)


# --- storage -------------------------------------------------------------------------------


@dataclass
class MemoryStorage:
    """The SDK's `TokenStorage` protocol, in memory, recording what it was given."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None
    saved_tokens: list[OAuthToken] = field(default_factory=list)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved_tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


# --- the user at the sign-in page ------------------------------------------------------------


class SignInForm(HTMLParser):
    """Collects the page's single `<form method="post">`: its action and its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms = 0
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.decisions: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self.forms += 1
            self._in_form = True
            self.action = a.get("action")
        elif self._in_form and tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")
        elif self._in_form and tag == "button" and a.get("name") == "decision":
            self.decisions.append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def parse_form(html: str, page: str) -> SignInForm:
    """The one POST form of the HTML `page` (named in the error)."""
    form = SignInForm()
    form.feed(html)
    if form.forms != 1:
        raise InteropError(f"{page} has {form.forms} POST forms, expected exactly 1")
    return form


async def browse(
    http: httpx2.AsyncClient, method: str, url: str, **request: object
) -> tuple[str, httpx2.Response]:
    """Sends the request and follows its redirects with GET, as a browser does after a form's
    302 or 303, up to MAX_REDIRECTS; a redirect to the client's REDIRECT_URI, where nothing
    listens, is returned unfollowed. Returns the last URL and its answer."""
    response = await http.request(method, url, **request)
    for _ in range(MAX_REDIRECTS):
        location = response.headers.get("location", "")
        if not response.is_redirect or location.startswith(REDIRECT_URI):
            return url, response
        url = urljoin(url, location)
        response = await http.get(url)
    raise InteropError(f"more than {MAX_REDIRECTS} redirects, the last to {url}")


def client_redirect(answer: httpx2.Response, action: str) -> AuthorizationCodeResult:
    """The code, state and iss of `answer`, which must be the 302 back to the client's
    REDIRECT_URI that ends a sign-in; `action` names what was answered, in the error."""
    if answer.status_code != 302:
        raise InteropError(f"{action} answered {answer.status_code}, expected 302: {_page_message(answer.text)}")
    location = answer.headers.get("location", "")
    if not location.startswith(REDIRECT_URI + "?"):
        raise InteropError(f"{action} redirected to {location!r}, not to {REDIRECT_URI}")
    query = parse_qs(urlsplit(location).query)
    for name in ("code", "state", "iss"):
        if len(query.get(name, [])) != 1:
            raise InteropError(f"redirect carries {len(query.get(name, []))} {name!r} parameters")
    return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])


@dataclass
class User:
    """Signs in through the server's page the way a person with a browser would."""

    username: str
    password: str
    # The redirect the sign-in ended with, for the SDK's `callback_handler`.
    result: AuthorizationCodeResult | None = None
    # Replaces `iss` in the result (the negative RFC 9207 check).
    forged_iss: str | None = None
    sign_ins: int = 0

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        step(f"authorization request: {authorization_url.split('?')[0]}")
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as http:
            page_url, page = await self._open(http, authorization_url)
            form = parse_form(page.text, "sign-in page")
            for name in ("username", "password", "request_id", "csrf_token"):
                if name not in form.fields:
                    raise InteropError(f"sign-in form has no input {name!r}: {sorted(form.fields)}")
            if sorted(form.decisions) != ["approve", "deny"]:
                raise InteropError(f"sign-in form decisions are {form.decisions}, expected approve and deny")
            csrf_cookie = _csrf_cookie(page)

            data = dict(form.fields)
            data.update(username=self.username, password=self.password, decision="approve")
            target = urljoin(page_url, form.action) if form.action else page_url
            answer = await http.post(target, data=data, headers={"Cookie": csrf_cookie})
            self.keep(client_redirect(answer, "approving the sign-in"))

    def keep(self, result: AuthorizationCodeResult) -> None:
        """Keeps the redirect that ended a sign-in for `callback_handler` (with `forged_iss`)."""
        step(f"signed in as {self.username}; redirect has code, state and iss={result.iss}")
        if self.forged_iss is not None:
            result = AuthorizationCodeResult(code=result.code, state=result.state, iss=self.forged_iss)
        self.result = result

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise InteropError("the SDK asked for the callback before the sign-in ran")
        result, self.result = self.result, None
        return result

    async def _open(self, http: httpx2.AsyncClient, url: str) -> tuple[str, httpx2.Response]:
        """GETs `url`, following redirects up to the sign-in page (which must answer 200)."""
        url, response = await browse(http, "GET", url)
        if response.is_redirect:
            raise InteropError(f"/authorize redirected straight back to the client: {response.headers['location']}")
        if response.status_code != 200:
            raise InteropError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
        if "request_id=" not in url:
            raise InteropError(f"the sign-in page {url} has no request_id in its URL")
        return url, response


def _page_message(html: str) -> str:
    """What a page says to the user: its alert, else its heading, else its start."""
    for pattern in (r'role="alert"[^>]*>(.*?)<', r"<h1[^>]*>(.*?)</h1>"):
        found = re.search(pattern, html, re.DOTALL)
        if found:
            return re.sub(r"<[^>]+>", "", found.group(1)).strip()
    return html[:300]


def _csrf_cookie(page: httpx2.Response) -> str:
    """`name=value` of the HttpOnly cookie the page set, to send back with the form."""
    cookies = page.headers.get_list("set-cookie")
    if len(cookies) != 1:
        raise InteropError(f"sign-in page set {len(cookies)} cookies, expected the one CSRF cookie")
    cookie = cookies[0]
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    if "httponly" not in attributes:
        raise InteropError(f"the CSRF cookie is not HttpOnly: {cookie}")
    return cookie.split(";", 1)[0].strip()


class _Recorder(logging.Handler):
    """Keeps the messages of the logger it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class ResponseLog:
    """Every HTTP response an `httpx2` client receives (its `record` is a response event hook),
    including the 401 and 403 the SDK's auth flow handles itself: the step-up checks
    (`step_up_client.py`, `gateway_client.py`) read the challenge from it."""

    # (method, URL, status, `WWW-Authenticate`) of each response, in order.
    seen: list[tuple[str, str, int, str]] = field(default_factory=list)

    async def record(self, response: httpx2.Response) -> None:
        request = response.request
        self.seen.append(
            (request.method, str(request.url), response.status_code, response.headers.get("www-authenticate", ""))
        )

    def step_up_challenge(self, since: int) -> tuple[str, dict[str, str]]:
        """The `WWW-Authenticate` of the one 403 among the responses from index `since` on, and
        its parameters."""
        forbidden = [entry for entry in self.seen[since:] if entry[2] == 403]
        if len(forbidden) != 1:
            raise InteropError(
                f"expected one 403 before the step-up, saw {[(m, u, s) for m, u, s, _ in self.seen[since:]]}"
            )
        challenge = forbidden[0][3]
        return challenge, challenge_params(challenge)


def challenge_params(header: str) -> dict[str, str]:
    """The `name="value"` parameters of a `Bearer` challenge (RFC 6750 §3)."""
    params: dict[str, str] = {}
    rest = header.strip()
    if rest.lower().startswith("bearer"):
        rest = rest[len("bearer") :]
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip().strip('"')
    return params


# --- the MCP client --------------------------------------------------------------------------


def make_provider(server: str, storage: MemoryStorage, user: User) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=f"{server}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="mcp-auth interop (Python SDK)",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
    )


def whoami_of(result: object) -> dict:
    """The JSON object `whoami` returned, from structured content or its text block."""
    if getattr(result, "is_error", False) or getattr(result, "isError", False):
        raise InteropError(f"whoami returned a tool error: {result}")
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if isinstance(structured, dict):
        return structured
    for block in getattr(result, "content", []) or []:
        text = getattr(block, "text", None)
        if text:
            return json.loads(text)
    raise InteropError(f"whoami returned no JSON: {result}")


def check_whoami(who: dict, username: str, client_id: str) -> None:
    if who.get("subject") != username:
        raise InteropError(f"whoami subject is {who.get('subject')!r}, expected {username!r}")
    if who.get("client_id") != client_id:
        raise InteropError(f"whoami client_id is {who.get('client_id')!r}, expected {client_id!r}")
    scopes = who.get("scopes")
    if not isinstance(scopes, list) or REQUIRED_SCOPE not in scopes:
        raise InteropError(f"whoami scopes are {scopes!r}, expected a list holding {REQUIRED_SCOPE!r}")


async def full_flow(server: str, username: str, password: str, refresh_after: float) -> None:
    storage = MemoryStorage()
    user = User(username, password)
    auth = make_provider(server, storage, user)
    async with httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as http:
        transport = streamable_http_client(f"{server}/mcp", http_client=http)
        async with Client(transport) as client:
            if storage.client_info is None or not storage.client_info.client_id:
                raise InteropError("the SDK connected without registering a client")
            client_id = storage.client_info.client_id
            step(
                f"initialized (protocol {client.protocol_version}) as client {client_id}, "
                f"token_endpoint_auth_method={storage.client_info.token_endpoint_auth_method}"
            )
            if not storage.saved_tokens:
                raise InteropError("the SDK connected without a token response")
            first = storage.saved_tokens[0]
            if not first.refresh_token:
                raise InteropError("the token response has no refresh_token")
            step(f"token: expires_in={first.expires_in}, scope={first.scope!r}, refresh_token present")

            who = whoami_of(await client.call_tool("whoami", {}))
            check_whoami(who, username, client_id)
            step(f"whoami: {json.dumps(who, sort_keys=True)}")

            if first.expires_in is None or first.expires_in >= refresh_after:
                raise InteropError(
                    f"the access token lives {first.expires_in} s; run the server with "
                    f"--access-token-ttl below {refresh_after} s so the refresh is exercised"
                )
            # Counted here rather than assumed: on a slow machine the short-lived token may
            # already have been refreshed once before this point.
            before = storage.tokens
            responses = len(storage.saved_tokens)
            step(f"waiting {refresh_after:.1f} s for the access token to expire")
            await anyio.sleep(refresh_after)

            who = whoami_of(await client.call_tool("whoami", {}))
            check_whoami(who, username, client_id)
            if len(storage.saved_tokens) <= responses:
                raise InteropError("the call after expiry succeeded without a token refresh")
            if user.sign_ins != 1:
                raise InteropError(f"{user.sign_ins} sign-ins happened, expected one (a refresh, not a new sign-in)")
            refreshed = storage.saved_tokens[-1]
            if before is None or refreshed.access_token == before.access_token:
                raise InteropError("the refresh returned the same access token")
            rotated = refreshed.refresh_token != before.refresh_token
            step(f"refreshed (refresh token rotated: {rotated}); whoami again: {json.dumps(who, sort_keys=True)}")

        # The default connection above negotiates with `server/discover` (mode "auto"), and
        # rmcp answers in the stateless 2026-07-28 protocol. Clients of the earlier protocol
        # versions use the `initialize` handshake and an `Mcp-Session-Id` session instead;
        # run that too, on the refreshed token.
        termination = _Recorder()
        logging.getLogger("mcp.client.streamable_http").addHandler(termination)
        async with Client(streamable_http_client(f"{server}/mcp", http_client=http), mode="legacy") as legacy:
            who = whoami_of(await legacy.call_tool("whoami", {}))
            check_whoami(who, username, client_id)
            if user.sign_ins != 1:
                raise InteropError("the initialize-handshake connection signed in again")
            step(f"initialize handshake (protocol {legacy.protocol_version}), whoami: {json.dumps(who, sort_keys=True)}")
        if any("Session termination failed: 202" in message for message in termination.messages):
            # Not a failure: the session is closed. rmcp answers DELETE with 202 Accepted; this
            # SDK version counts only 200 and 204 as success and logs a warning otherwise.
            step("note: the SDK's warning 'Session termination failed: 202' is rmcp's 202 to DELETE")


async def forged_iss_is_refused(server: str, username: str, password: str, issuer: str) -> None:
    # The SDK logs the refused flow with a traceback before raising; the refusal is expected.
    logging.getLogger("mcp.client.auth").setLevel(logging.CRITICAL)
    storage = MemoryStorage()
    user = User(username, password, forged_iss=issuer + "/forged")
    auth = make_provider(server, storage, user)
    async with httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as http:
        try:
            async with Client(streamable_http_client(f"{server}/mcp", http_client=http)):
                pass
        except Exception as err:  # noqa: BLE001 - the SDK may wrap the flow error in a group
            if _find(err, OAuthFlowError, "iss") is None:
                raise InteropError(f"a forged iss failed the connection for another reason: {err!r}") from err
            step("a forged iss is refused by the SDK (RFC 9207 check is live)")
            return
    raise InteropError("the SDK accepted an authorization response with a forged iss")


def _find(err: BaseException, kind: type[BaseException], word: str = "", depth: int = 0) -> BaseException | None:
    """The first `kind` whose message holds `word`, in `err`, its groups and its causes."""
    if isinstance(err, kind) and word in str(err):
        return err
    if depth > 20:
        return None
    children = list(getattr(err, "exceptions", ()))
    children += [linked for linked in (err.__cause__, err.__context__) if linked is not None]
    for child in children:
        found = _find(child, kind, word, depth + 1)
        if found is not None:
            return found
    return None


def sign_in_parser(description: str, origin: str = "server") -> argparse.ArgumentParser:
    """The command line of a check that signs in: the `origin`'s URL and the user. Shared by
    this file, `step_up_client.py` and `gateway_client.py`, which may add their own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--server", required=True, help=f"the {origin}'s origin, e.g. http://127.0.0.1:8080")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    return parser


def run_reported(step: Callable[[str], None], flow: Callable[[], Awaitable[None]]) -> int:
    """Runs `flow` and reports its outcome through `step`; returns the process's exit code: 0,
    or 1 on any failure. Shared by this file's, `step_up_client.py`'s and `gateway_client.py`'s
    `main`."""
    started = time.monotonic()
    try:
        anyio.run(flow)
    except BaseException as err:  # noqa: BLE001 - report anything, then fail
        # A check that fails inside the SDK's flow reaches here wrapped in exception groups.
        ours = _find(err, InteropError)
        if ours is not None:
            step(f"FAILED: {ours}")
        else:
            traceback.print_exception(err)
            step(f"FAILED with {type(err).__name__}: {err}")
        return 1
    step(f"ok ({time.monotonic() - started:.1f} s)")
    return 0


async def main_async(args: argparse.Namespace) -> None:
    server = args.server.rstrip("/")
    # One deadline per flow bounds everything, so a hung server fails the run instead of
    # stalling CI. (A scope around only the connection would close the transport's task
    # group in the wrong order.)
    with anyio.fail_after(FLOW_TIMEOUT + args.refresh_after):
        await full_flow(server, args.user, args.password, args.refresh_after)
    with anyio.fail_after(FLOW_TIMEOUT):
        await forged_iss_is_refused(server, args.user, args.password, server)


def main() -> int:
    parser = sign_in_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--refresh-after", type=float, default=3.5, help="seconds to wait for the access token to expire"
    )
    args = parser.parse_args()
    return run_reported(step, lambda: main_async(args))


if __name__ == "__main__":
    sys.exit(main())
