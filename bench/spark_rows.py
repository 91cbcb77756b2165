"""Transaction rows on Spark: ``SparkEngine.prepare_file`` (type, check, aggregate per customer,
collect the customer table) against the local engine on the same rows.

Usage:
    PYSPARK_SUBMIT_ARGS="--driver-memory 4g pyspark-shell" \\
        python bench/spark_rows.py [--customers 100000] [--master local[2]] [--repeat 2]

The rows (about 10.6 per customer, every column as text, as Spark writes a CSV) are cached under
bench/.cache/. Each call runs in the same session: the first one pays the JVM's warm-up. The
customer table must equal the local engine's; the figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl
from pyspark.sql import SparkSession

from sistack.demo import generate_transactions
from sistack.domain.schema import detect_mapping
from sistack.engines import LocalEngine
from sistack.engines.spark import SESSION_CONF, SparkEngine

CACHE = Path(__file__).parent / ".cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    path = CACHE / f"transactions-text-{args.customers}.parquet"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        rows = generate_transactions(args.customers, seed=3)[0]
        rows.with_columns(pl.all().cast(pl.String)).write_parquet(path)
    rows = pl.read_parquet(path)
    mapping = detect_mapping(rows.head(100_000), shape="transactions")
    start = time.perf_counter()
    local = LocalEngine().prepare(rows, mapping, reference_date=None)
    print(f"{rows.height:,} rows; local engine {time.perf_counter() - start:.1f} s")

    builder = SparkSession.builder.master(args.master).appName("bench-spark-rows")
    for key, value in {**SESSION_CONF, "spark.ui.enabled": "false"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for call in range(1, args.repeat + 1):
            engine = SparkEngine(session=spark)
            start = time.perf_counter()
            customers = engine.prepare_file(path, mapping, reference_date=None)
            took = time.perf_counter() - start
            engine.release()
            same = customers.table.equals(local.table) and customers.report == local.report
            print(f"spark {args.master}, call {call}: {took:.1f} s; same as local: {same}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
