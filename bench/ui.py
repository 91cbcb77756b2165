"""Dashboard performance on a large run: server response, full page load, PDF generation.

Usage:
    python bench/ui.py [--customers 1000000] [--json]

Creates a run (data cached under bench/.cache/), serves it with `sistack serve` in its own
process and measures: time to first byte and total server time of the dashboard pages (first
request, then warm), the full load of the overview in headless Chromium (Debian's, through
Playwright; skipped if absent), the simulation round trip and the executive PDF (first build,
then cached). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import data_file
from simulate import free_port, make_run, wait_ready
from sistack.config import Settings

PAGES = ("", "/segments", "/simulation", "/quality", "/exports")
CHROMIUM = "/usr/bin/chromium"


def timed(client: httpx.Client, url: str) -> tuple[float, float]:
    """(time to first byte, total) in ms for one GET."""
    start = time.perf_counter()
    with client.stream("GET", url) as response:
        response.raise_for_status()
        first = time.perf_counter()
        for _ in response.iter_bytes():
            pass
    return (first - start) * 1000, (time.perf_counter() - start) * 1000


def browser_load(url: str) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url, wait_until="networkidle")  # warm the bundle cache once
        start = time.perf_counter()
        page.goto(url, wait_until="networkidle")
        elapsed = (time.perf_counter() - start) * 1000
        browser.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data_file(args.customers, "csv", "customers")
    results: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as home:
        run_id = make_run(Settings(home=Path(home)), args.customers)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "sistack.cli", "serve", "--port", str(port)],
            env={**os.environ, "SISTACK_HOME": home},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(port)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=120) as client:
                for page in PAGES:
                    _ttfb, first_total = timed(client, f"/runs/{run_id}{page}")
                    warm = [timed(client, f"/runs/{run_id}{page}") for _ in range(20)]
                    name = page.strip("/") or "overview"
                    results[f"{name}_first_ms"] = round(first_total, 1)
                    results[f"{name}_warm_ttfb_p50_ms"] = round(
                        statistics.median(t for t, _ in warm), 1
                    )
                body = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
                times = []
                for _ in range(100):
                    start = time.perf_counter()
                    client.post(f"/api/v1/runs/{run_id}/simulate", json=body).raise_for_status()
                    times.append((time.perf_counter() - start) * 1000)
                results["simulate_round_trip_p50_ms"] = round(statistics.median(times), 2)
                start = time.perf_counter()
                client.get(f"/api/v1/runs/{run_id}/exports/report.pdf").raise_for_status()
                results["pdf_first_s"] = round(time.perf_counter() - start, 2)
                start = time.perf_counter()
                client.get(f"/api/v1/runs/{run_id}/exports/report.pdf").raise_for_status()
                results["pdf_cached_ms"] = round((time.perf_counter() - start) * 1000, 1)
            load = browser_load(f"{base}/runs/{run_id}")
            results["overview_browser_load_ms"] = round(load, 1) if load is not None else None
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        print(json.dumps({"customers": args.customers, **results}))
        return
    print(f"dashboard of a {args.customers:,}-customer run")
    for key, value in results.items():
        print(f"  {key:<32} {value}")


if __name__ == "__main__":
    main()
