"""Load: many concurrent simulation clients, then concurrent 100 MB uploads.

Usage:
    python bench/load.py [--clients 200] [--seconds 30] [--uploads 10] [--upload-customers 1000000]
                         [--json]

Serves the app with `sistack serve` in its own process (own home, free local port) and:

1. creates a 20,000-customer run, then ``--clients`` concurrent clients call
   POST /api/v1/runs/{id}/simulate in a loop for ``--seconds``: requests, errors (any non-200 or
   transport error), throughput and latency percentiles;
2. ``--uploads`` clients upload the same ~100 MB CSV (1,000,000 customers) at once to
   POST /api/v1/datasets while the server's resident memory is sampled every 50 ms: peak RSS
   and its growth over the idle server, and how many uploads succeeded.

Figures are printed, never asserted (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import data_file
from simulate import free_port, make_run, percentile, wait_ready
from sistack.config import Settings

SCENARIO = {
    "levers": [
        {"lever": "budget_shift", "params": {"sources": [1], "targets": [2], "shift": 0.2}},
    ]
}


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples a process's RSS until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


async def simulate_load(base: str, run_id: str, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    url = f"/api/v1/runs/{run_id}/simulate"
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        deadline = time.monotonic() + seconds

        async def one_client() -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post(url, json=SCENARIO)
                    key = None if response.status_code == 200 else f"http {response.status_code}"
                except httpx.HTTPError as exc:
                    key = exc.__class__.__name__
                if key is None:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies) + sum(errors.values()),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **{
            f"{name}_ms": round(percentile(latencies, q) * 1000, 1) if latencies else None
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
    }


async def stream(path: Path, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            yield block
            await asyncio.sleep(0)


async def upload_load(base: str, path: Path, uploads: int, pid: int) -> dict[str, Any]:
    idle = rss_bytes(pid)
    boundary = "sistackloadboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for block in stream(path):
            yield block
        yield tail

    size = len(head) + path.stat().st_size + len(tail)
    headers = {
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(size),
    }
    sampler = Sampler(pid)
    sampler.start()
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:

        async def one() -> None:
            try:
                response = await client.post("/api/v1/datasets", content=body(), headers=headers)
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                key = exc.__class__.__name__
            statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(one() for _ in range(uploads)))
    elapsed = time.perf_counter() - started
    peak = sampler.stop()
    return {
        "uploads": uploads,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "statuses": statuses,
        "seconds": round(elapsed, 1),
        "idle_rss_mb": round(idle / 1e6),
        "peak_rss_mb": round(peak / 1e6),
        "growth_mb": round((peak - idle) / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--upload-customers", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    upload_file = data_file(args.upload_customers, "csv", "customers") if args.uploads else None
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        run_id = make_run(settings, 20_000)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SISTACK_")}
        env["SISTACK_HOME"] = home
        server = subprocess.Popen(
            [sys.executable, "-m", "sistack.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(port)
            base = f"http://127.0.0.1:{port}"
            results: dict[str, Any] = {
                "simulate": asyncio.run(simulate_load(base, run_id, args.clients, args.seconds))
            }
            if upload_file is not None:
                results["uploads"] = asyncio.run(
                    upload_load(base, upload_file, args.uploads, server.pid)
                )
        finally:
            server.terminate()
            server.wait(timeout=60)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    sim = results["simulate"]
    print(
        f"simulate: {sim['clients']} clients x {sim['seconds']} s: {sim['requests']} requests, "
        f"errors {sim['errors'] or 0}, {sim['requests_per_s']} req/s, p50 {sim['p50_ms']} ms, "
        f"p95 {sim['p95_ms']} ms, p99 {sim['p99_ms']} ms, max {sim['max_ms']} ms"
    )
    if "uploads" in results:
        up = results["uploads"]
        print(
            f"uploads: {up['uploads']} x {up['file_mb']} MB at once in {up['seconds']} s: "
            f"statuses {up['statuses']}, server RSS idle {up['idle_rss_mb']} MB, "
            f"peak {up['peak_rss_mb']} MB (+{up['growth_mb']} MB)"
        )


if __name__ == "__main__":
    main()
