"""JWT access tokens (RFC 9068) of mcp-auth-server, verified by an independent library: PyJWT
(pinned in requirements.txt, with `cryptography`) against the key set the server publishes.

`cargo xtask interop` runs `jwt_access_token_check.py --server-bin BIN --dir DIR`. For each of
ES256, EdDSA and RS256 it starts its own mcp-auth-server on a free loopback port
(`--access-token-format jwt --signing-alg ALG`, in-memory store, a pre-registered
client-credentials client), then:

1. discovers `jwks_uri` from the server's RFC 8414 metadata and obtains a token with the
   client credentials grant for the server's MCP resource;
2. verifies it with PyJWT's `PyJWKClient` and `jwt.decode`: signature through the published
   key named by `kid`, the algorithm allow-listed to ALG, `typ` `at+jwt`, exact `iss`, `aud`
   the resource, and every RFC 9068 §2.2 claim required;
3. checks that PyJWT refuses the same token for another audience and with one altered
   signature byte.

Exits 0 on success, 1 with a message otherwise. The servers are stopped on every path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
from servers import free_port, start_server, stop

CLIENT_ID = "jwt-interop-machine"
CLIENT_SECRET = "jwt-interop-secret-0123456789abcdef"
SCOPE = "mcp:tools"
HTTP_TIMEOUT_S = 10


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return json.load(response)


def post_form(url: str, form: dict) -> dict:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(url, data=data, timeout=HTTP_TIMEOUT_S) as response:
        return json.load(response)


def start_jwt_server(server_bin: str, work: Path, alg: str) -> tuple[str, subprocess.Popen]:
    client = work / "client.json"
    client.write_text(
        json.dumps(
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["client_credentials"],
                "scope": SCOPE,
            }
        )
    )
    return start_server(
        server_bin,
        free_port(),
        ["--client", str(client), "--access-token-format", "jwt", "--signing-alg", alg],
        work / f"server-{alg}.log",
        f"the {alg} server",
    )


def check(alg: str, origin: str) -> None:
    metadata = get_json(f"{origin}/.well-known/oauth-authorization-server")
    issuer = metadata["issuer"]
    resource = f"{origin}/mcp"
    token = post_form(
        metadata["token_endpoint"],
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": SCOPE,
            "resource": resource,
        },
    )["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    assert header["alg"] == alg, header
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        audience=resource,
        issuer=issuer,
        options={
            "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
            "strict_aud": True,
        },
    )
    assert claims["client_id"] == CLIENT_ID, claims
    assert claims["sub"] == CLIENT_ID, claims
    assert claims["scope"] == SCOPE, claims
    assert claims["exp"] > claims["iat"], claims

    try:
        jwt.decode(token, signing_key.key, algorithms=[alg], audience="https://other.example/mcp", issuer=issuer)
    except jwt.InvalidAudienceError:
        pass
    else:
        raise AssertionError("PyJWT accepted the token for another audience")
    head, payload, signature = token.split(".")
    altered = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    try:
        jwt.decode(f"{head}.{payload}.{altered}", signing_key.key, algorithms=[alg], audience=resource, issuer=issuer)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("PyJWT accepted an altered signature")
    print(f"jwt_access_token_check: {alg}: PyJWT {jwt.__version__} verified kid {header['kid']} ({len(token)} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for alg in ["ES256", "EdDSA", "RS256"]:
        server = None
        try:
            origin, server = start_jwt_server(args.server_bin, args.dir, alg)
            check(alg, origin)
        except Exception:  # noqa: BLE001 - any failure fails the check, with its trace
            traceback.print_exc()
            print(f"jwt_access_token_check: {alg}: FAILED (server log in {args.dir})", file=sys.stderr)
            return 1
        finally:
            stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
