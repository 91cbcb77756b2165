"""A table stored as a directory of Parquet part files: what Spark writes.

``sistack run URI --engine spark`` has the executors copy the input into the dataset store as
``part-*.parquet`` files (``engines.spark.write_source``), so no row passes through this
process. Such a dataset is registered, inspected, hashed and snapshotted here without reading
its rows either:

* its column names, row count and missing values come from the parts' footers (a streamed
  count only for a column whose footers carry no null count), and only its first
  :data:`~sistack.io.readers.SAMPLE_ROWS` rows are read (mapping detection, previews);
* its rows are numbered in file order with the files in name order (Spark names its parts
  ``part-00000-...``, ``part-00001-...`` in the order of its partitions): the lazy scan reads
  them in that order, and the Spark engine numbers them the same way;
* a run's snapshot of it is the directory ``input.parquet/`` of hard links to the parts
  (a copy where the two are on different file systems): no re-encoding.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sistack.errors import InputError
from sistack.io.readers import (
    SAMPLE_ROWS,
    RawTable,
    ReadLimits,
    TableSource,
    _check_cell_lengths,
    _check_column_count,
)
from sistack.io.store.artifacts import sha256_file


def part_files(folder: Path) -> list[Path]:
    """The Parquet part files directly in ``folder``, in name order (their rows' order).

    Hidden and ``_``-prefixed files (Hadoop's ``.crc`` checksums, ``_SUCCESS`` markers) and
    links are not parts, as Spark's own listing ignores the former.
    """
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix == ".parquet"
        and not p.name.startswith((".", "_"))
        and p.is_file()
        and not p.is_symlink()
    )


def read_parts(folder: Path, *, limits: ReadLimits) -> RawTable:
    """A directory of Parquet part files as a lazily scanned table (``RawTable.source``).

    The upload size limit does not apply (no upload makes a directory: Spark wrote it); the
    column count is checked on the schema and the cell lengths on the sample.
    """
    parts = part_files(folder)
    if not parts:
        raise InputError(
            f"The directory '{folder.name}' holds no Parquet part files (*.parquet).",
            code="empty_file",
        )
    try:
        schema = pq.read_schema(parts[0])
        _check_column_count(len(schema), limits)
        footers = [pq.read_metadata(p) for p in parts]
        odd = [p.name for p, f in zip(parts, footers, strict=True) if not _same(f, schema)]
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"A Parquet part file is damaged and cannot be read ({exc}).", code="corrupt_parquet"
        ) from exc
    if odd:
        raise InputError(
            f"The part files do not share one schema: {', '.join(odd[:3])} differ from "
            f"{parts[0].name}.",
            code="corrupt_parquet",
        )
    rows = sum(f.num_rows for f in footers)
    if rows == 0:
        raise InputError("The file has column names but no data rows.", code="no_data_rows")
    names = schema.names
    nulls = _footer_nulls(footers, names)
    if nulls is None:  # a writer without statistics: one streamed pass counts them
        counts = pl.scan_parquet(parts).select(pl.all().null_count()).collect(engine="streaming")
        nulls = tuple(int(n) for n in counts.row(0))
    source = TableSource(
        path=folder,
        kind="parquet",
        delimiter=None,
        columns=tuple(names),
        rows=rows,
        null_counts=nulls,
        empty_rows=0,  # the writer dropped wholly empty rows (write_source)
        parts=tuple(parts),
    )
    sample = source.scan().head(SAMPLE_ROWS).collect(engine="streaming")
    _check_cell_lengths(sample, limits)
    return RawTable(sample, "parquet", None, None, (), source)


def _same(footer: pq.FileMetaData, schema: pa.Schema) -> bool:
    return bool(footer.schema.to_arrow_schema().remove_metadata().equals(schema.remove_metadata()))


def _footer_nulls(footers: list[pq.FileMetaData], names: list[str]) -> tuple[int, ...] | None:
    """Missing values per column, summed from the row groups' statistics; None when a column
    chunk has no null count (or a column is nested)."""
    totals = dict.fromkeys(names, 0)
    for footer in footers:
        for g in range(footer.num_row_groups):
            group = footer.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                stats = chunk.statistics
                name = chunk.path_in_schema
                if name not in totals or stats is None or not stats.has_null_count:
                    return None
                totals[name] += stats.null_count
    return tuple(totals[n] for n in names)


def sha256_parts(folder: Path) -> str:
    """The sha256 of a directory of part files: of the lines ``<name>\\t<sha256 of the part>``,
    in name order (one byte pass over the parts, a block at a time)."""
    return combined_sha256((part.name, sha256_file(part)) for part in part_files(folder))


def combined_sha256(parts: Iterable[tuple[str, str]]) -> str:
    """:func:`sha256_parts` from each part's (path, sha256), in name order; only the last
    component of a path counts (``input.parquet/part-0.parquet`` is ``part-0.parquet``)."""
    digest = hashlib.sha256()
    for name, sha in sorted((path.rsplit("/", 1)[-1], sha) for path, sha in parts):
        digest.update(f"{name}\t{sha}\n".encode())
    return digest.hexdigest()


def sha256_path(path: Path) -> str:
    """The sha256 of a dataset: its file's, or :func:`sha256_parts` for a directory."""
    return sha256_parts(path) if path.is_dir() else sha256_file(path)


def size_of(path: Path) -> int:
    """Bytes of a dataset: its file's, or the sum of its part files'."""
    return sum(p.stat().st_size for p in part_files(path)) if path.is_dir() else path.stat().st_size


def link_parts(parts: Iterable[Path], target: Path) -> None:
    """Make ``target`` a directory of the part files, hard-linked (copied where the part is on
    another file system, or the file system has no hard links).

    A hard link shares the part's bytes: the snapshot costs no space and no pass over the rows,
    and deleting the dataset leaves it whole. The manifest records every part's sha256, so a
    part changed in place later is reported by ``sistack doctor`` and ``reproduce``.
    """
    target.mkdir()
    for part in parts:
        try:
            os.link(part, target / part.name)
        except OSError:
            shutil.copyfile(part, target / part.name)


def parts_changed(folder: Path, recorded: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a run's directory snapshot differs from what its manifest recorded for it
    (``<folder name>/<part>`` -> sha256): a part changed, missing or added."""
    prefix = f"{folder.name}/"
    listed = {n.removeprefix(prefix): v.get("sha256") for n, v in recorded.items()
              if n.startswith(prefix)}  # fmt: skip
    found = {p.name: p for p in part_files(folder)} if folder.is_dir() else {}
    return listed.keys() != found.keys() or any(
        sha256_file(found[name]) != digest for name, digest in listed.items()
    )
