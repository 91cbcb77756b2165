"""Dashboard performance on a large run: server response, full page load, PDF and workbook.

Usage:
    python bench/ui.py [--customers 1000000] [--home DIR] [--new-run] [--json]

Reuses the newest succeeded run of that size under ``--home`` (default
``bench/.cache/ui-home-<customers>``) made by this version (it carries the stored chart specs), or
creates one (data cached under bench/.cache/). Cached exports are removed first, so the PDF and
the workbook are built from scratch. Then it serves the home with `sistack serve` in its own
process and measures: the server time of every dashboard tab (its first view after the server
starts, then the median and the slowest of 20 warm views), the full load of the overview in
headless Chromium (Debian's, through Playwright; skipped if absent), the simulation round
trip, the executive PDF (first build, then cached) and the workbook (the first request's
answer, 202, then the time until it is ready when polled as the Exports tab does). Beside
wall times it prints the CPU the server process spent (``*_server_cpu_*``, from /proc): on a
machine shared with other work the wall time stretches, the server's own work much less.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import CACHE, data_file
from simulate import free_port, make_run, wait_ready
from sistack.config import Settings
from sistack.io.exports.prebuilt import CHARTS
from sistack.service.runs import RunService

PAGES = ("", "/segments", "/simulation", "/compare", "/quality", "/exports", "/report")
CHROMIUM = "/usr/bin/chromium"


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far, in ms; Linux only.

    The server's own CPU per request, which a busy machine (other processes on the same cores)
    stretches far less than the wall time; resolution one clock tick (10 ms).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


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


def reusable_run(settings: Settings, customers: int) -> str | None:
    """The newest succeeded run of ``customers`` customers that carries the stored chart specs."""
    if not settings.home.exists():
        return None
    svc = RunService(settings)
    try:
        runs, _ = svc.list_runs(status="succeeded", limit=50, offset=0)
        for run in runs:
            stored = svc.manifest(run.id)["artifacts"]
            if run.n_customers == customers and CHARTS in stored:
                return run.id
        return None
    finally:
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, help="SISTACK_HOME holding the run (reused)")
    parser.add_argument("--new-run", action="store_true", help="make a new run even if one fits")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home: Path = args.home or CACHE / f"ui-home-{args.customers}"
    settings = Settings(home=home)
    results: dict[str, float | str | None] = {}
    run_id = None if args.new_run else reusable_run(settings, args.customers)
    if run_id is None:
        data_file(args.customers, "csv", "customers")
        start = time.perf_counter()
        run_id = make_run(settings, args.customers)
        results["run_created_s"] = round(time.perf_counter() - start, 1)
    results["run_id"] = run_id
    shutil.rmtree(settings.exports_dir / run_id, ignore_errors=True)  # build PDF, workbook anew
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sistack.cli", "serve", "--port", str(port)],
        env={**os.environ, "SISTACK_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=300) as client:
            for page in PAGES:
                before = cpu_ms(server.pid)
                _ttfb, first_total = timed(client, f"/runs/{run_id}{page}")
                first_cpu = cpu_ms(server.pid) - before
                warm = [timed(client, f"/runs/{run_id}{page}") for _ in range(20)]
                name = page.strip("/") or "overview"
                results[f"{name}_first_ms"] = round(first_total, 1)
                results[f"{name}_first_server_cpu_ms"] = round(first_cpu)
                results[f"{name}_warm_p50_ms"] = round(statistics.median(t for _, t in warm), 1)
                # the slowest: a pause (e.g. a drawing holding the interpreter) shows here
                results[f"{name}_warm_max_ms"] = round(max(t for _, t in warm), 1)
            body = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
            times = []
            for _ in range(100):
                start = time.perf_counter()
                client.post(f"/api/v1/runs/{run_id}/simulate", json=body).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
            results["simulate_round_trip_p50_ms"] = round(statistics.median(times), 2)
            start = time.perf_counter()
            client.get(f"/api/v1/runs/{run_id}/baseline").raise_for_status()
            results["baseline_first_ms"] = round((time.perf_counter() - start) * 1000, 1)
            pdf = f"/api/v1/runs/{run_id}/exports/report.pdf"
            start, before = time.perf_counter(), cpu_ms(server.pid)
            client.get(pdf).raise_for_status()
            results["pdf_first_s"] = round(time.perf_counter() - start, 2)
            results["pdf_first_server_cpu_s"] = round((cpu_ms(server.pid) - before) / 1000, 2)
            start = time.perf_counter()
            client.get(pdf).raise_for_status()
            results["pdf_cached_ms"] = round((time.perf_counter() - start) * 1000, 1)
            before = cpu_ms(server.pid)
            results.update(workbook(client, f"/api/v1/runs/{run_id}/exports/workbook.xlsx"))
            results["workbook_server_cpu_s"] = round((cpu_ms(server.pid) - before) / 1000, 1)
        load = browser_load(f"{base}/runs/{run_id}")
        results["overview_browser_load_ms"] = round(load, 1) if load is not None else None
    finally:
        server.terminate()
        server.wait(timeout=60)
    if args.json:
        print(json.dumps({"customers": args.customers, **results}))
        return
    print(f"dashboard of a {args.customers:,}-customer run")
    for key, value in results.items():
        print(f"  {key:<32} {value}")


def workbook(client: httpx.Client, url: str) -> dict[str, float]:
    """Ask for the workbook as the Exports tab does: the first answer (202 while it builds),
    then poll every half second until it is ready; then download it."""
    start = time.perf_counter()
    first = client.post(url)
    answered = time.perf_counter() - start
    if first.status_code not in (200, 202):
        first.raise_for_status()
    while client.post(url).status_code == 202:
        time.sleep(0.5)
    ready = time.perf_counter() - start
    download = time.perf_counter()
    size = len(client.get(url).raise_for_status().content)
    return {
        "workbook_first_answer_ms": round(answered * 1000, 1),
        "workbook_ready_s": round(ready, 1),
        "workbook_download_s": round(time.perf_counter() - download, 2),
        "workbook_mb": round(size / 1e6, 1),
    }


if __name__ == "__main__":
    main()
