"""Spilling a lazy frame to disk in partitions, for steps that hold one partition at a time.

The streaming transaction path (:mod:`sistack.domain.transactions_stream`) types rows in one pass
and hands them here; the partitions live in a temporary folder the caller removes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sistack.domain.transactions_stream import PART, Spill


def spill_to(folder: Path) -> Spill:
    """A :data:`~sistack.domain.transactions_stream.Spill` writing Parquet under ``folder``."""

    def spill(frame: pl.LazyFrame) -> list[pl.LazyFrame]:
        folder.mkdir(parents=True, exist_ok=True)
        # Row order within a part does not matter: every later step aggregates or sorts.
        frame.sink_parquet(
            pl.PartitionBy(folder, key=PART, include_key=False),
            engine="streaming",
            maintain_order=False,
            compression="lz4",
        )
        return [pl.scan_parquet(path) for path in sorted(folder.rglob("*.parquet"))]

    return spill
