"""Transaction rows typed and checked on the Spark executors; only small answers reach the driver.

The rules are the domain's (:mod:`sistack.domain.transaction_rows`): its Polars expressions run
on every Arrow batch of the executors (``mapInArrow``), and its checks ask their questions of
the typed rows through :class:`SparkRows`. What comes back to the driver is bounded by the
issues, the distinct level values and the dates, never by the rows:

* rows per scan partition, or per file of a Parquet scan (to number the rows in file order);
* the first :data:`~sistack.domain.transaction_rows.DATE_SAMPLE` date texts (the date format);
* per summary query, one row per partition (counts and the first 20 rows of each issue);
* rows per distinct raw level text and per date, and the distinct levels of the used rows.

The typed rows are cached on the executors for these queries; the caller aggregates the used
rows (:func:`used_transactions`) per customer in Spark SQL and then frees them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sistack.domain.schema import ColumnMapping
from sistack.domain.transaction_rows import (
    DATE_SAMPLE,
    Checked,
    check_rows,
    date_format,
    date_sample,
    merge_summaries,
    row_typing,
)
from sistack.domain.validation import ROW

# monotonically_increasing_id(): the partition index in the upper 31 bits, the record number
# within the partition in the lower 33.
_PARTITION_BITS = 33
_RECORD = (1 << _PARTITION_BITS) - 1
DATE_SPAN = 20 * DATE_SAMPLE  # rows the date sample is looked for in first


def spark_type(dtype: pl.DataType) -> T.DataType:
    """The Spark SQL type of a Polars column (the types typed transaction rows have)."""
    if isinstance(dtype, pl.List):
        return T.ArrayType(spark_type(dtype.inner))  # type: ignore[arg-type]
    if dtype == pl.String:
        return T.StringType()
    if dtype == pl.Boolean:
        return T.BooleanType()
    if dtype == pl.Date:
        return T.DateType()
    if dtype.is_integer():
        return T.LongType()
    if dtype.is_float():
        return T.DoubleType()
    raise TypeError(f"no Spark type for Polars {dtype}")


def arrow_type(dtype: T.DataType) -> pa.DataType:
    if isinstance(dtype, T.ArrayType):
        return pa.list_(arrow_type(dtype.elementType))
    return {
        T.StringType: pa.string(),
        T.DoubleType: pa.float64(),
        T.LongType: pa.int64(),
        T.IntegerType: pa.int32(),
        T.DateType: pa.date32(),
        T.BooleanType: pa.bool_(),
    }[type(dtype)]


def arrow_schema(schema: T.StructType) -> pa.Schema:
    return pa.schema([pa.field(f.name, arrow_type(f.dataType)) for f in schema.fields])


def to_batches(frame: pl.DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """``frame``'s columns of ``schema`` as Arrow batches of exactly its types."""
    yield from frame.to_arrow().select(schema.names).cast(schema).to_batches()


def _frames(batches: Iterable[pa.RecordBatch]) -> Iterator[pl.DataFrame]:
    for batch in batches:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def each_partition(
    frame: DataFrame,
    schema: T.StructType,
    apply: Callable[[Iterator[pl.DataFrame]], pl.DataFrame | None],
) -> DataFrame:
    """``apply`` on every partition of ``frame`` (its Arrow batches, as Polars frames), on the
    executors; its frames (of ``schema``'s columns) make the result."""
    arrow = arrow_schema(schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        out = apply(_frames(batches))
        if out is not None and out.height:
            yield from to_batches(out, arrow)

    return frame.mapInArrow(run, schema)


def each_batch(
    frame: DataFrame, schema: T.StructType, apply: Callable[[pl.DataFrame], pl.DataFrame]
) -> DataFrame:
    """``apply`` on every Arrow batch of ``frame`` (as a Polars frame), on the executors."""
    arrow = arrow_schema(schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for part in _frames(batches):
            yield from to_batches(apply(part), arrow)

    return frame.mapInArrow(run, schema)


def reading(frame: DataFrame, exprs: Iterable[pl.Expr], *columns: str) -> DataFrame:
    """``frame`` cut to ``ROW``, ``columns`` and the columns ``exprs`` read: a pass through a
    Python worker ships every column of its input as Arrow, so it gets only those."""
    names = {ROW, *columns}
    for expr in exprs:
        names.update(expr.meta.root_names())
    return frame.select(*[c for c in frame.columns if c in names])


def _schema_of(columns: dict[str, pl.DataType]) -> T.StructType:
    return T.StructType([T.StructField(n, spark_type(d)) for n, d in columns.items()])


def _concat(frames: Iterable[pl.DataFrame]) -> pl.DataFrame | None:
    parts = list(frames)
    return pl.concat(parts, how="vertical") if parts else None


def numbered(frame: DataFrame) -> DataFrame:
    """``frame`` with ``ROW``: its rows numbered from 1 in partition order, which is file order
    for one file (Spark splits a file into partitions in order).

    Rows per partition are counted first (one small job), then each row's number is its
    partition's offset plus its place in the partition: no global sort, no single partition.
    """
    mid = F.monotonically_increasing_id()
    partition = F.shiftrightunsigned(mid, _PARTITION_BITS)
    counts = {
        int(r["p"]): int(r["count"])
        for r in frame.select(partition.alias("p")).groupBy("p").count().collect()
    }
    offsets, total = [], 0
    for p in range(max(counts, default=0) + 1):
        offsets.append(total)
        total += counts.get(p, 0)
    start = F.element_at(F.lit(offsets).cast("array<bigint>"), (partition + 1).cast("int"))
    return frame.withColumn(ROW, start + mid.bitwiseAND(F.lit(_RECORD)) + 1)


def numbered_files(frame: DataFrame) -> DataFrame:
    """``frame``, a scan of Parquet files, with ``ROW``: its rows numbered from 1 in file order,
    the files in name order, as ``io.parts`` scans a directory of part files.

    Spark packs files into partitions largest first, so partition order is not the files'
    order: rows per file are counted first (one small job), then each row's number is its
    file's offset plus its index in the file (``_metadata.row_index``).
    """
    path = F.col("_metadata.file_path")
    counts = sorted(
        (str(r["f"]), int(r["count"])) for r in frame.groupBy(path.alias("f")).count().collect()
    )
    pairs: list[Column] = []
    total = 0
    for name, n in counts:
        pairs += [F.lit(name), F.lit(total).cast("long")]
        total += n
    start = F.create_map(*pairs)[path] if pairs else F.lit(0).cast("long")
    return frame.withColumn(ROW, start + F.col("_metadata.row_index") + 1)


@dataclass(frozen=True)
class SparkRows:
    """:class:`~sistack.domain.transaction_rows.TypedRows` over typed rows on the executors.

    Every query evaluates the domain's Polars expressions per partition and reduces there
    (counts, first rows, distinct values); Spark SQL combines the partitions' answers.
    """

    typed: DataFrame
    raw: DataFrame  # the numbered raw rows, for the values quoted in an error message

    def summary(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        names = [e.meta.output_name() for e in exprs]
        schema = T.StructType(
            [
                T.StructField(n, T.ArrayType(T.LongType()) if n.endswith("#rows") else T.LongType())
                for n in names
            ]
        )

        def partial(parts: Iterator[pl.DataFrame]) -> pl.DataFrame | None:
            whole = _concat(part.select(exprs) for part in parts)
            return None if whole is None else merge_summaries(whole)

        answers = each_partition(reading(self.typed, exprs), schema, partial)
        table = pl.from_arrow(answers.toArrow())
        assert isinstance(table, pl.DataFrame)
        return merge_summaries(table).row(0, named=True)

    def value_counts(self, where: pl.Expr, column: str) -> pl.DataFrame:
        schema = T.StructType(
            [self.typed.schema[column], T.StructField("n", T.LongType())],
        )

        def partial(parts: Iterator[pl.DataFrame]) -> pl.DataFrame | None:
            whole = _concat(
                p.filter(where).group_by(column).agg(pl.len().alias("n")) for p in parts
            )
            return None if whole is None else whole.group_by(column).agg(pl.col("n").sum())

        counts = (
            each_partition(reading(self.typed, [where], column), schema, partial)
            .groupBy(column)
            .agg(F.sum("n").alias("n"))
        )
        return _polars(counts)

    def distinct(self, where: pl.Expr, columns: list[str]) -> pl.DataFrame:
        schema = T.StructType([self.typed.schema[c] for c in columns])

        def partial(parts: Iterator[pl.DataFrame]) -> pl.DataFrame | None:
            whole = _concat(p.filter(where).select(columns).unique() for p in parts)
            return None if whole is None else whole.unique()

        return _polars(
            each_partition(reading(self.typed, [where], *columns), schema, partial).distinct()
        )

    def raw_values(self, column: str, rows: list[int]) -> list[Any]:
        found = self.raw.where(F.col(ROW).isin(rows)).select(ROW, column).orderBy(ROW)
        return _polars(found).get_column(column).cast(pl.String).to_list()


def _polars(frame: DataFrame) -> pl.DataFrame:
    table = pl.from_arrow(frame.toArrow())
    assert isinstance(table, pl.DataFrame)
    return table


def check_transactions(
    raw: DataFrame,
    mapping: ColumnMapping,
    *,
    reference_date: dt.date | None,
    cache: Callable[[DataFrame], DataFrame],
) -> tuple[DataFrame, Checked]:
    """Type the raw transaction rows ``raw`` (numbered: :func:`numbered` or
    :func:`numbered_files`) on the executors and check them.

    Returns the typed rows (cached with ``cache``; the caller frees them) and what the checks
    decided (quality report, reference date, levels, the filter of the used rows).
    """
    schema = _polars(raw.limit(0)).schema
    chosen = None
    sample = date_sample(schema, mapping)
    if sample is not None:
        where, text = sample

        def first_dates(parts: Iterator[pl.DataFrame]) -> pl.DataFrame | None:
            # The partition's lowest row numbers, not its first rows: a partition may hold
            # pieces of several files, largest first (numbered_files).
            found = None
            for part in parts:
                rows = part.filter(where).select(ROW, text.alias("t"))
                found = rows if found is None else pl.concat([found, rows])
                if found.height > DATE_SAMPLE:
                    found = found.bottom_k(DATE_SAMPLE, by=ROW)
            return found

        head_schema = T.StructType(
            [T.StructField(ROW, T.LongType()), T.StructField("t", T.StringType())]
        )
        # At most DATE_SAMPLE rows per partition; the lowest numbers of them all. The first
        # DATE_SPAN rows (a filter in the JVM) hold them in most files: all rows are looked at
        # only when those have too few dates.
        dates = reading(raw, [where, text])
        for scope in (dates.where(F.col(ROW) <= DATE_SPAN), dates):
            firsts = each_partition(scope, head_schema, first_dates)
            rows = firsts.orderBy(ROW).limit(DATE_SAMPLE).collect()
            if len(rows) == DATE_SAMPLE:
                break
        head = pl.DataFrame([(r[ROW], r["t"]) for r in rows], schema=[ROW, "t"], orient="row")
        chosen = date_format(head.sort(ROW).get_column("t"))
    # Built again on each executor from plain values (its date expression calls Python).
    columns = dict(schema)

    def typed_rows(part: pl.DataFrame) -> pl.DataFrame:
        return part.select(row_typing(pl.Schema(columns), mapping, chosen).columns)

    typing = row_typing(schema, mapping, chosen)
    typed_schema = _schema_of(dict(pl.DataFrame(schema=schema).select(typing.columns).schema))
    typed = cache(each_batch(reading(raw, typing.columns), typed_schema, typed_rows))
    checked = check_rows(typing, SparkRows(typed, raw), reference_date=reference_date)
    return typed, checked


def used_transactions(typed: DataFrame, checked: Checked) -> DataFrame:
    """The used rows with their levels, as ``transactions_per_customer`` takes them."""
    types = {f.name: f for f in typed.schema.fields}
    schema = T.StructType([types[c] for c in checked.keep])
    needed = reading(typed, [checked.used, *checked.level_of.values()], *checked.keep)
    return each_batch(needed, schema, lambda part: checked.transactions(part.lazy()).collect())
