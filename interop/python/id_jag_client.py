"""SEP-990 interop: the official MCP Python SDK's `IdentityAssertionOAuthProvider` against
mcp-auth-server's jwt-bearer grant.

`cargo xtask interop` runs it twice:

1. `keygen --dir DIR` before the server starts: a throw-away RSA key for a test enterprise
   identity provider (`DIR/idp-key.pem`), its public JWKS (`DIR/idp-jwks.json`, given to the
   server with `--trusted-idp`), and a confidential client allowed the grant
   (`DIR/client.json`, given with `--client`);
2. `run --server ORIGIN --dir DIR --refresh-after S`: the SDK discovers the authorization
   server from its configured issuer, obtains an ID-JAG from this script's identity provider
   (signed with the key above, `typ` oauth-id-jag+jwt, `aud` the issuer, `resource` the MCP
   endpoint), exchanges it at `/token`, and calls `whoami`: the subject must be the identity
   provider's user, qualified by its issuer. It then waits past the access token's lifetime
   and calls again: with no refresh token (SEP-990), the SDK must present a fresh ID-JAG.

Exits 0 on success, 1 with a message otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import traceback
import uuid
from pathlib import Path

import anyio
import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthToken

IDP_ISSUER = "https://idp.interop.example"
IDP_KID = "interop-idp-1"
USER = "alice@interop.example"
CLIENT_ID = "interop-enterprise-app"
CLIENT_SECRET = "interop-enterprise-secret"
SCOPE = "mcp:tools"
HTTP_TIMEOUT = 30.0


class InteropError(Exception):
    pass


def step(message: str) -> None:
    print(f"python-sdk id-jag: {message}", file=sys.stderr, flush=True)


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keygen(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "idp-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": IDP_KID, "use": "sig", "alg": "RS256", "n": b64url_uint(public.n), "e": b64url_uint(public.e)}
        ]
    }
    (directory / "idp-jwks.json").write_text(json.dumps(jwks))
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "scope": SCOPE,
    }
    (directory / "client.json").write_text(json.dumps(client))
    step(f"identity provider key and client written to {directory}")


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.saved: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved.append(tokens)

    async def get_client_info(self):  # the provider is configured, never registers
        return None

    async def set_client_info(self, client_info) -> None:
        pass


class TestIdentityProvider:
    """Leg 1 of SEP-990, in process: issues ID-JAGs for the signed-in user."""

    def __init__(self, key_pem: bytes) -> None:
        self.key = serialization.load_pem_private_key(key_pem, password=None)
        self.issued = 0

    async def issue(self, audience: str, resource: str) -> str:
        now = int(time.time())
        self.issued += 1
        return jwt.encode(
            {
                "iss": IDP_ISSUER,
                "sub": USER,
                "aud": audience,
                "client_id": CLIENT_ID,
                "jti": str(uuid.uuid4()),
                "iat": now,
                "exp": now + 300,
                "resource": resource,
                "scope": SCOPE,
            },
            self.key,
            algorithm="RS256",
            headers={"typ": "oauth-id-jag+jwt", "kid": IDP_KID},
        )


def whoami_of(result: object) -> dict:
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


def check(who: dict) -> None:
    expected = f"{IDP_ISSUER}|{USER}"
    if who.get("subject") != expected:
        raise InteropError(f"whoami subject is {who.get('subject')!r}, expected {expected!r}")
    if who.get("client_id") != CLIENT_ID:
        raise InteropError(f"whoami client_id is {who.get('client_id')!r}, expected {CLIENT_ID!r}")


async def run(server: str, directory: Path, refresh_after: float) -> None:
    idp = TestIdentityProvider((directory / "idp-key.pem").read_bytes())
    storage = MemoryStorage()
    auth = IdentityAssertionOAuthProvider(
        server_url=f"{server}/mcp",
        storage=storage,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        issuer=server,
        assertion_provider=idp.issue,
        scope=SCOPE,
    )
    async with httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as http:
        async with Client(streamable_http_client(f"{server}/mcp", http_client=http)) as client:
            who = whoami_of(await client.call_tool("whoami", {}))
            check(who)
            first = storage.saved[0] if storage.saved else None
            if first is None:
                raise InteropError("the SDK connected without a token response")
            if first.refresh_token:
                raise InteropError("the jwt-bearer grant returned a refresh_token (SEP-990: none)")
            step(f"ID-JAG exchanged (scope={first.scope!r}, expires_in={first.expires_in}); whoami: {json.dumps(who, sort_keys=True)}")
            step(f"waiting {refresh_after:.1f} s for the access token to expire")
            await anyio.sleep(refresh_after)
            who = whoami_of(await client.call_tool("whoami", {}))
            check(who)
            if idp.issued < 2:
                raise InteropError("the call after expiry succeeded without a fresh ID-JAG")
            step(f"a fresh ID-JAG was exchanged after expiry ({idp.issued} issued); whoami again")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen_cmd = commands.add_parser("keygen")
    keygen_cmd.add_argument("--dir", required=True, type=Path)
    run_cmd = commands.add_parser("run")
    run_cmd.add_argument("--server", required=True)
    run_cmd.add_argument("--dir", required=True, type=Path)
    run_cmd.add_argument("--refresh-after", type=float, default=4.5)
    args = parser.parse_args()
    try:
        if args.command == "keygen":
            keygen(args.dir)
            return 0
        anyio.run(run, args.server.rstrip("/"), args.dir, args.refresh_after)
    except Exception as error:  # noqa: BLE001 - report anything and fail
        traceback.print_exc()
        print(f"python-sdk id-jag: FAILED: {error}", file=sys.stderr)
        return 1
    step("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
