"""Pipeline benchmark: file -> persisted run through the same code path as ``sistack run``.

Usage:
    python bench/pipeline.py --customers 100000 1000000 [--format csv parquet] [--json]

Each size runs in its own process so peak RSS is that run's own. Data is generated once and
cached under bench/.cache/. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"


def data_file(customers: int, fmt: str, layout: str) -> Path:
    from sistack.demo import write_dataset

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{layout}-{customers}.{fmt}"
    if not path.exists():
        tmp = path.with_suffix(".partial." + fmt)
        write_dataset(tmp, customers=customers, layout=layout, seed=7)
        tmp.rename(path)
    return path


def one(path: Path) -> dict:
    """Run the pipeline once in this process and return its figures."""
    from sistack.config import Settings
    from sistack.service.runs import RunService

    with tempfile.TemporaryDirectory() as home:
        svc = RunService(Settings(home=Path(home)))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        dataset, inspection = svc.add_dataset(path, keep=False)
        read_s = time.perf_counter() - wall0
        run = svc.create_run(dataset.id)
        done = svc.execute(run.id, raw=inspection.raw)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if done.status != "succeeded":
            raise SystemExit(f"run failed: {done.error_code}: {done.error_message}")
        manifest = svc.manifest(run.id)
        svc.close()
    rows = inspection.raw.frame.height
    return {
        "file": path.name,
        "rows": rows,
        "customers": done.n_customers,
        "k": done.k,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rows_per_s": round(rows / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "stages_s": {"read+inspect": round(read_s, 2), **manifest["timings_seconds"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", nargs="+", default=["csv"], choices=["csv", "parquet"])
    parser.add_argument("--layout", default="customers", choices=["customers", "transactions"])
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(Path(args.child))))
        return
    for n in args.customers:
        for fmt in args.format:
            path = data_file(n, fmt, args.layout)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(proc.returncode)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            if args.json:
                print(json.dumps(result))
                continue
            stages = "  ".join(f"{k}={v}" for k, v in result["stages_s"].items())
            print(
                f"{result['file']:<28} rows={result['rows']:>10,} k={result['k']} "
                f"wall={result['wall_s']:>7.2f}s cpu={result['cpu_s']:>7.2f}s "
                f"peak={result['peak_rss_mb']:>6,} MB  {result['rows_per_s']:>9,} rows/s\n"
                f"    {stages}"
            )


if __name__ == "__main__":
    main()
