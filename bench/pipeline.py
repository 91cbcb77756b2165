"""Pipeline benchmark: file -> persisted run through the same code path as ``sistack run``.

Usage:
    python bench/pipeline.py --customers 100000 1000000 [--format csv parquet] [--json]
    python bench/pipeline.py --layout transactions --rows 1000000 10000000 100000000
    python bench/pipeline.py --customers 1000000 --engine local spark [--spark-master local[2]]

Each size runs in its own process so peak RSS is that run's own. Data is generated once, chunk
by chunk (bounded memory at any size), and cached under bench/.cache/. Per stage: wall time,
CPU time (all threads of the process), and the peak RSS and peak heap (anonymous memory,
without the file pages readers map) reached by the end of the stage. Files
above ``SISTACK_STREAM_ABOVE_BYTES`` (256 MB) take the streaming path; the upload limit is
raised to the file's size. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
# The synthetic transaction layout (sistack.demo) has 10.55 orders per customer on average: a
# size in rows becomes 0.0948 customers per row (100M rows: 9,480,000 customers).
CUSTOMERS_PER_ROW = 0.0948


def data_file(customers: int, fmt: str, layout: str) -> Path:
    from sistack.demo import write_dataset

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{layout}-{customers}.{fmt}"
    if not path.exists():
        tmp = path.with_suffix(".partial." + fmt)
        write_dataset(tmp, customers=customers, layout=layout, seed=7)
        tmp.rename(path)
    return path


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class AnonPeak:
    """Peak anonymous memory (``RssAnon``: the process's own heap, not file pages), sampled
    every 20 ms on a daemon thread (Linux).

    Peak RSS (``ru_maxrss``) also counts the pages of files the readers map into memory
    (Polars maps a CSV or Parquet file it scans): reading a 5 GB CSV shows up to 5 GB of RSS
    that is page cache the kernel can drop at any time, not memory the run holds. Both figures
    are printed.
    """

    def __init__(self) -> None:
        self.peak_kb = 0
        self._status = Path("/proc/self/status")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _read(self) -> int:
        for line in self._status.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, self._read())
            time.sleep(0.02)

    def mb(self) -> int:
        self.peak_kb = max(self.peak_kb, self._read())
        return round(self.peak_kb / 1024)


@functools.cache
def _anon() -> AnonPeak | None:
    """The sampler of this process, started on first use (a run's process only)."""
    return AnonPeak() if Path("/proc/self/status").exists() else None


def _anon_mb() -> int | None:
    sampler = _anon()
    return sampler.mb() if sampler is not None else None


class Stages:
    """Wall and CPU time per stage, and the peak RSS reached by each stage's end."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, float]] = {}
        self._stage: str | None = None
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def enter(self, stage: str, pct: int = 0) -> None:
        if stage == self._stage:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        if self._stage is not None:
            self.figures[self._stage] = {
                "wall_s": round(wall - self._wall, 2),
                "cpu_s": round(cpu - self._cpu, 2),
                "peak_rss_mb": _peak_mb(),
                "peak_anon_mb": _anon_mb(),
            }
        self._stage, self._wall, self._cpu = stage, wall, cpu


def one(path: Path, engine: str = "local", master: str | None = None) -> dict:
    """Run the pipeline once in this process and return its figures.

    With ``engine="spark"`` the Spark session starts, and its JVM and Python workers run one tiny
    job, before the clock starts (a server keeps its session for its lifetime). CPU time is the
    driver process's only; Spark's local executors are threads of its JVM child process.
    """
    from sistack.config import Settings
    from sistack.service.runs import RunService

    if engine == "spark":
        from sistack.engines.spark import build_session

        build_session(master).createDataFrame([(1,)], "x long").count()
    size = path.stat().st_size
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), max_upload_bytes=max(size, 2 * 1024**3))
        svc = RunService(settings)
        _anon()  # sampling starts before the clock
        stages = Stages()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        stages.enter("register")
        dataset, inspection = svc.add_dataset(path, keep=False)
        config = svc.default_config(engine=engine, spark_master=master)
        run = svc.create_run(dataset.id, config=config)
        done = svc.execute(run.id, raw=inspection.raw, progress=stages.enter)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if done.status != "succeeded":
            raise SystemExit(f"run failed: {done.error_code}: {done.error_message}")
        svc.close()
    rows = inspection.raw.height
    return {
        "file": path.name,
        "engine": engine if master is None else f"{engine} {master}",
        "bytes": size,
        "streamed": inspection.raw.source is not None,
        "rows": rows,
        "customers": done.n_customers,
        "k": done.k,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rows_per_s": round(rows / wall),
        "peak_rss_mb": _peak_mb(),
        "peak_anon_mb": _anon_mb(),
        "stages": stages.figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        help="transaction rows (layout transactions): the orders of rows x 0.0948 customers",
    )
    parser.add_argument("--format", nargs="+", default=["csv"], choices=["csv", "parquet"])
    parser.add_argument("--layout", default="customers", choices=["customers", "transactions"])
    parser.add_argument("--engine", nargs="+", default=["local"], choices=["local", "spark"])
    parser.add_argument("--spark-master", default="local[2]", help="master of spark runs")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine = args.engine[0]
        master = args.spark_master if engine == "spark" else None
        print(json.dumps(one(Path(args.child), engine, master)))
        return
    sizes = args.customers
    if args.rows:
        args.layout = "transactions"
        sizes = [round(r * CUSTOMERS_PER_ROW) for r in args.rows]
    for n in sizes:
        for fmt, engine in itertools.product(args.format, args.engine):
            path = data_file(n, fmt, args.layout)
            child = ["--child", str(path), "--engine", engine, "--spark-master", args.spark_master]
            proc = subprocess.run(
                [sys.executable, __file__, *child],
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
            print(
                f"{result['file']:<30} {result['engine']:<14} rows={result['rows']:>11,} "
                f"customers={result['customers']:>10,} k={result['k']} "
                f"streamed={'yes' if result['streamed'] else 'no'}\n"
                f"    total  wall={result['wall_s']:>7.2f}s cpu={result['cpu_s']:>7.2f}s "
                f"peak RSS={result['peak_rss_mb']:>6,} MB (heap {result['peak_anon_mb']} MB)  "
                f"{result['rows_per_s']:>9,} rows/s"
            )
            for stage, f in result["stages"].items():
                print(
                    f"    {stage:<9} wall={f['wall_s']:>7.2f}s cpu={f['cpu_s']:>7.2f}s "
                    f"peak-so-far RSS={f['peak_rss_mb']:>6,} MB heap={f['peak_anon_mb']} MB"
                )


if __name__ == "__main__":
    main()
