"""Simulation latency through the HTTP stack: POST /api/v1/runs/{id}/simulate.

Usage:
    python bench/simulate.py [--customers 2000 1000000] [--requests 300] [--json]

Creates a run per size (data cached under bench/.cache/), serves the app with `sistack serve` in
its own process on a free local port and times requests from an HTTP client with keep-alive: a
single-lever scenario without Monte Carlo, then with 2,000 and 10,000 draws. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import data_file
from sistack.config import Settings
from sistack.service.runs import RunService

SCENARIOS = {
    "budget_shift": None,
    "budget_shift+mc2000": 2000,
    "budget_shift+mc10000": 10_000,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_run(settings: Settings, customers: int) -> str:
    svc = RunService(settings)
    dataset, inspection = svc.add_dataset(data_file(customers, "csv", "customers"), keep=False)
    run = svc.execute(svc.create_run(dataset.id).id, raw=inspection.raw)
    svc.close()
    if run.status != "succeeded":
        raise SystemExit(f"run failed: {run.error_message}")
    return run.id


def wait_ready(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[2000, 1_000_000])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        runs = {n: make_run(settings, n) for n in args.customers}
        port = free_port()
        env = {**os.environ, "SISTACK_HOME": home}
        server = subprocess.Popen(
            [sys.executable, "-m", "sistack.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for n, run_id in runs.items():
                    for label, draws in SCENARIOS.items():
                        body: dict = {
                            "levers": [
                                {
                                    "lever": "budget_shift",
                                    "params": {"sources": [2], "targets": [1], "shift": 0.2},
                                }
                            ]
                        }
                        if draws:
                            body["monte_carlo"] = {"draws": draws, "seed": 1}
                        url = f"/api/v1/runs/{run_id}/simulate"
                        client.post(url, json=body).raise_for_status()  # warm the cache
                        times = []
                        for _ in range(args.requests):
                            start = time.perf_counter()
                            client.post(url, json=body).raise_for_status()
                            times.append((time.perf_counter() - start) * 1000)
                        row = {
                            "customers": n,
                            "scenario": label,
                            "p50_ms": round(statistics.median(times), 2),
                            "p99_ms": round(percentile(times, 0.99), 2),
                        }
                        print(
                            json.dumps(row)
                            if args.json
                            else f"{n:>10,} customers  {label:<22} p50 {row['p50_ms']:>7.2f} ms"
                            f"   p99 {row['p99_ms']:>7.2f} ms"
                        )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
