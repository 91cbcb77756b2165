"""A real ``sistack serve`` in a subprocess, for tests of what only a live server shows
(crashes, log lines): own home, free port, its output captured to a file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SMALL_ENV

API = "/api/v1"
SERVE = [sys.executable, "-c", "from sistack.cli import main; main()", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    home: Path, log: Path, **env_extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """``sistack serve`` on a free port; yields the process and a client; SIGTERM at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISTACK_")}
    env.update(SISTACK_HOME=str(home), **SMALL_ENV, **env_extra)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield process, client
    finally:
        client.close()
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def upload_and_run(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as fh:
        dataset = client.post(f"{API}/datasets", files={"file": (path.name, fh)})
    assert dataset.status_code == 201, dataset.text
    run = client.post(f"{API}/runs", json={"dataset_id": dataset.json()["id"]})
    assert run.status_code == 202, run.text
    return str(run.json()["id"])


def wait_for(client: httpx.Client, run_id: str, done: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"{API}/runs/{run_id}").json()
        if done(run):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
