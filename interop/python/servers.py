"""The processes an interop check starts itself, each on 127.0.0.1: mcp-auth-server, and the
fixtures it needs. Shared by `jwt_access_token_check.py` and `oidc_sign_in_client.py`, which
stop what they started on every path (`stop`, in a `finally`).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

# A debug build's start on a loaded 2-core machine; a Node.js fixture's likewise.
START_TIMEOUT_S = 60
# The graceful shutdown mcp-auth-server implements after SIGTERM, before SIGKILL.
STOP_TIMEOUT_S = 10


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (closed again: the process that uses it binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log: Path, what: str, ready: Callable[[], bool]) -> subprocess.Popen:
    """Runs `command` with its output in `log`, and waits until `ready()` holds; fails when the
    process exits first or `ready()` does not hold within START_TIMEOUT_S. `what` names it."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; its log is {log}")
        if ready():
            return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{what} did not start in {START_TIMEOUT_S} s; its log is {log}")


def start_server(
    server_bin: str, port: int, args: list[str], log: Path, what: str = "mcp-auth-server"
) -> tuple[str, subprocess.Popen]:
    """Starts mcp-auth-server on 127.0.0.1:`port` with the in-memory store and `args`, waits
    until `/healthz` answers 200, and returns its origin and process."""
    origin = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{origin}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    command = [server_bin, "--bind", f"127.0.0.1:{port}", "--store", "memory", *args]
    return origin, start(command, log, what, healthy)


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; nothing when `process` is None or has ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
