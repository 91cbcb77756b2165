"""The Apache Spark engine: the data-parallel steps of a run on a Spark cluster.

What runs where:

* executors - copying a URI input into the dataset store as Parquet part files
  (:func:`write_source`), typing and checking transaction rows (the Polars expressions of
  ``domain.transaction_rows`` on each Arrow batch, see ``engines.spark_rows``), transactions ->
  one row per customer (Spark SQL), the canonical features (the
  Polars definitions of ``domain.features``, applied to each Arrow batch with ``mapInArrow``),
  scaling and assignment (``FeatureScaler`` and ``nearest`` of ``domain.segmentation``, same
  way), the k-means fit (MLlib, warm-started), profile aggregates (Spark SQL), and the
  partitioned ``assignments/`` artifact;
* driver - the same deterministic samples as the local engine (k selection with
  ``SegmentModel.warm_start``, so the chosen k is the local one by construction; scaler
  quantiles), the quality report and reference date from the checks' small answers, segment
  ordering, and the insights, which read the customer-level feature table
  collected once (one row per customer: bounded by customers, not transactions; see
  docs/spark.md for the memory this takes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from py4j.protocol import Py4JJavaError
from pyspark import SparkContext
from pyspark.errors import PySparkException
from pyspark.ml.feature import VectorAssembler
from pyspark.mllib.common import _java2py, callMLlibFunc
from pyspark.mllib.linalg import Vectors
from pyspark.mllib.util import MLUtils
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sistack.domain.features import FeatureMatrix, build_features
from sistack.domain.profiles import SegmentProfile, profiles_from_rows, summable
from sistack.domain.schema import CUSTOMERS, ColumnMapping
from sistack.domain.segmentation.model import FeatureScaler, SegmentModel, nearest, order_segments
from sistack.domain.segmentation.selection import sample_indices
from sistack.domain.validation import CustomerTable, validate_customers
from sistack.engines.base import Segmentation
from sistack.engines.spark_rows import (
    arrow_schema,
    check_transactions,
    numbered,
    numbered_files,
    to_batches,
    used_transactions,
)
from sistack.errors import InputError, SistackError

# Row order of every collected result: (POS, customer_id). Customer-level data keeps the input
# order (POS = row number, given by the driver); aggregated transactions are sorted by id (POS = 0),
# as the local engine's tables are. No global window over the data is needed for either.
POS = "_pos"
KEY = [POS, "customer_id"]
MAX_ITER = 50  # Lloyd iterations of the final fit; the warm start converges in a few
EPSILON = 1e-4  # a centre moving less than this (in scaled units) counts as converged
MAX_RECORDS_PER_FILE = 5_000_000  # assignments part files stay below ~100 MB
EXACT_MEDIAN_ROWS = 250_000  # above this many customers, medians are approximate (1e-4)
SESSION_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    # Partitioned artifacts are read by file listing: no _SUCCESS marker beside them.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}


def build_session(master: str | None) -> SparkSession:
    """This process's Spark session (created once, then shared by every run)."""
    active = SparkSession.getActiveSession()
    if active is None and SparkContext._active_spark_context is not None:
        # Started on another thread (the active session is per thread): the same one.
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        if master and active.sparkContext.master != master:
            raise SistackError(
                f"This process already runs Spark with master '{active.sparkContext.master}'; "
                f"a run cannot switch it to '{master}'. Start another process for that master.",
                code="spark_master_conflict",
                details={"active": active.sparkContext.master, "requested": master},
            )
        return active
    builder = SparkSession.builder.appName("sistack")
    if master:
        builder = builder.master(master)
    elif not os.environ.get("SPARK_MASTER") and "spark.master" not in os.environ.get(
        "PYSPARK_SUBMIT_ARGS", ""
    ):
        builder = builder.master("local[*]")
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def write_source(spark: SparkSession, uri: str, target: Path) -> Path:
    """Copy a CSV/TSV or Parquet file (or directory of part files) at any Hadoop-compatible URI
    (``hdfs://``, ``s3a://``, ``abfss://``, ``file://``) into ``target``, a new directory of
    Parquet part files written by the executors: no row passes through this process.

    Text files are read with every column as text, as ``io.readers`` reads them, so the same
    validation applies to the values; Spark's CSV reader itself is simpler (a fixed delimiter,
    UTF-8 only, one line per row: docs/spark.md lists the differences). Wholly empty rows are
    dropped, as the local reader drops them (it also counts them in a warning: here that would
    cost another pass). A path Spark cannot read is an ``InputError`` (``unreadable_input``).
    The parts are named in the order of the rows (``part-00000-...``), which is how
    ``io.parts`` and the engine number them. ``target`` must be on storage every executor can
    write at the same path.
    """
    try:
        lower = _format_name(spark, uri)
        if lower.endswith((".parquet", ".pq")):
            frame = spark.read.parquet(uri)
        elif lower.endswith(TEXT_SUFFIXES):
            sep = "\t" if ".tsv" in lower else ","
            frame = spark.read.option("header", True).option("sep", sep).csv(uri)
        else:
            raise InputError(
                f"'{uri}' is not a .csv, .tsv or .parquet path (or a folder of such files); "
                "Spark reads only those.",
                code="unsupported_format",
            )
        frame.dropna(how="all").write.parquet(target.resolve().as_uri())
    except (PySparkException, Py4JJavaError) as exc:
        # Spark's own message names the cause (no such path, a damaged file, no credentials).
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"Spark could not read '{uri}': {first}. Check that the path exists and holds CSV, "
            "TSV or Parquet files, and that this process may read it.",
            code="unreadable_input",
            details={"uri": uri},
        ) from None
    _drop_hadoop_files(target)
    return target


TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")


def _format_name(spark: SparkSession, uri: str) -> str:
    """The lower-case name that says a path's format: its own, or for a folder the name of its
    first data file (``.parquet`` when it holds no text file: Spark's own part files)."""
    lower = uri.lower().rstrip("/")
    if "." in lower.rsplit("/", 1)[-1]:
        return lower
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.getFileStatus(path).isDirectory():
        return lower
    names = sorted(
        str(status.getPath().getName()).lower()
        for status in fs.listStatus(path)
        if status.isFile() and not str(status.getPath().getName()).startswith((".", "_"))
    )
    return next((n for n in names if n.endswith(TEXT_SUFFIXES)), ".parquet")


def _drop_hadoop_files(folder: Path) -> None:
    """Remove Hadoop's local checksum files and job marker: they are not part of the data."""
    for extra in [*folder.rglob(".*.crc"), *folder.rglob("_SUCCESS")]:
        extra.unlink()


def _null_nan(column: str) -> Column:
    """The column with NaN read as missing (numpy's nan-aware statistics ignore both)."""
    return F.nanvl(F.col(column), F.lit(None).cast("double"))


class SparkEngine:
    """The data-parallel steps on Spark (see the module docstring).

    Args:
        master: Spark master URL (``local[2]``, ``spark://host:7077``, ``k8s://https://...``);
            None uses the active session or the submit configuration.
        session: an existing session to use (tests, notebooks).
    """

    name = "spark"

    def __init__(self, *, master: str | None = None, session: SparkSession | None = None) -> None:
        self.spark = session or build_session(master)
        self._customers: DataFrame | None = None
        self._features: DataFrame | None = None
        self._assigned: DataFrame | None = None
        self._cached: list[DataFrame] = []
        # Cached data outlives a run that fails before its artifacts are written (the writer
        # releases it otherwise): free it when the engine is garbage-collected.
        weakref.finalize(self, _unpersist, self._cached)

    def describe(self) -> dict[str, str]:
        sc = self.spark.sparkContext
        return {
            "name": self.name,
            "spark_version": self.spark.version,
            "master": str(sc.master),
            "default_parallelism": str(sc.defaultParallelism),
        }

    def _cache(self, frame: DataFrame) -> DataFrame:
        frame = frame.cache()
        self._cached.append(frame)
        return frame

    def _need(self, frame: DataFrame | None, step: str) -> DataFrame:
        if frame is None:
            raise RuntimeError(f"SparkEngine: call {step} first")
        return frame

    # 1. raw rows -> customer table -----------------------------------------------------------
    def prepare(
        self, raw: pl.DataFrame, mapping: ColumnMapping, *, reference_date: dt.date | None
    ) -> CustomerTable:
        """Validate customer rows here, or type, check and aggregate transaction rows on the
        executors (:meth:`prepare_file`'s way, from rows the caller holds already)."""
        if mapping.shape == CUSTOMERS:
            customers = validate_customers(raw, mapping, reference_date=reference_date)
            self._customers = self._cache(
                self._from_polars(customers.table.with_row_index(POS).cast({POS: pl.Int64}))
            )
            return customers
        return self._transactions(numbered(self._from_polars(raw)), mapping, reference_date)

    def prepare_file(
        self, path: Path | str, mapping: ColumnMapping, *, reference_date: dt.date | None
    ) -> CustomerTable:
        """Transaction rows of a Parquet file or directory of part files (a path every executor
        can read, or a Hadoop URI), typed, checked and aggregated on the executors: the rows
        never reach the driver, only the customer table and the quality report's counts and
        example rows do. Rows are numbered in file order, the files in name order."""
        uri = path.resolve().as_uri() if isinstance(path, Path) else path
        raw = numbered_files(self.spark.read.parquet(uri))
        return self._transactions(raw, mapping, reference_date)

    def _transactions(
        self, raw: DataFrame, mapping: ColumnMapping, reference_date: dt.date | None
    ) -> CustomerTable:
        """The rules of ``domain.transaction_rows`` on every Arrow batch of the numbered raw
        rows (``engines.spark_rows``), then the group-by per customer in Spark SQL."""
        typed, checked = check_transactions(
            raw, mapping, reference_date=reference_date, cache=self._cache
        )
        tx = self._cache(used_transactions(typed, checked))  # read twice: orders, days
        customers = transactions_per_customer(tx, checked.reference_date, levels=checked.levels)
        self._customers = self._cache(customers.withColumn(POS, F.lit(0).cast("long")))
        table = self._collect(self._customers).drop(POS)
        tx.unpersist()  # the customers are cached now
        typed.unpersist()
        return CustomerTable(
            table=table, report=checked.report, reference_date=checked.reference_date
        )

    def _from_polars(self, frame: pl.DataFrame) -> DataFrame:
        return self.spark.createDataFrame(frame.to_arrow())

    def _collect(self, frame: DataFrame) -> pl.DataFrame:
        table = frame.orderBy(*KEY).toArrow()
        return pl.from_arrow(table)  # type: ignore[return-value]

    # 2. features -------------------------------------------------------------------------------
    def features(self, customers: CustomerTable) -> FeatureMatrix:
        """``domain.features.build_features`` on every Arrow batch of the customer table."""
        table = self._need(self._customers, "prepare")
        reference = customers.reference_date
        specs = build_features(customers.table.head(0), reference_date=reference).specs
        names = [s.name for s in specs]
        sums = summable(customers.table)
        tenure_fill = _tenure_fill(customers)
        schema = T.StructType(
            [T.StructField(POS, T.LongType()), T.StructField("customer_id", T.StringType())]
            + [T.StructField(n, T.DoubleType()) for n in names]
            + [T.StructField(f"t__{c}", T.DoubleType()) for c in sums if c not in names]
        )
        arrow = arrow_schema(schema)
        extra = [c for c in sums if c not in names]

        def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                part = pl.from_arrow(batch)
                assert isinstance(part, pl.DataFrame)
                out = build_features(part, reference_date=reference).frame
                if tenure_fill is not None:
                    # build_features fills a missing tenure with the median of its input: here
                    # that must be the median of all customers, not of this batch.
                    out = out.with_columns(
                        tenure_days=pl.when(part.get_column("signup_date").is_null())
                        .then(pl.lit(tenure_fill))
                        .otherwise(pl.col("tenure_days"))
                    )
                out = out.with_columns(part.get_column(POS).cast(pl.Int64))
                out = out.with_columns(
                    [part.get_column(c).cast(pl.Float64).alias(f"t__{c}") for c in extra]
                )
                yield from to_batches(out, arrow)

        self._features = self._cache(table.mapInArrow(apply, schema))
        frame = self._collect(self._features.select(*KEY, *names)).drop(POS)
        return FeatureMatrix(frame=frame, specs=specs)

    # 3. scale, fit, assign ---------------------------------------------------------------------
    def segment(
        self,
        features: FeatureMatrix,
        X: np.ndarray,
        names: list[str],
        *,
        scaler: FeatureScaler,
        model: SegmentModel,
    ) -> Segmentation:
        """k from the shared selection sample; MLlib k-means from its centres on all rows."""
        source = self._need(self._features, "features")
        sel = sample_indices(len(X), model.selection_sample, seed=model.random_state)
        k_scores, k, start = model.warm_start(scaler.transform(X[sel]))
        scaled = self._cache(_scaled(source, names, scaler))
        z_cols = [f"z{j}" for j in range(len(names))]
        clipped = np.asarray(
            scaled.agg(*[F.sum(f"c{j}") for j in range(len(names))]).first(), dtype=np.int64
        )
        raw_centers = _mllib_kmeans(
            scaled, z_cols, start, seed=model.random_state, max_iter=MAX_ITER, epsilon=EPSILON
        )
        labelled = self._cache(_assign(scaled, z_cols, raw_centers))
        per_label = (
            labelled.groupBy("label")
            .agg(
                F.count("*").alias("n"),
                F.sum("monetary").alias("money"),
                F.sum(F.col("distance") ** 2).alias("inertia"),
            )
            .collect()
        )
        totals = {int(r["label"]): (float(r["n"]), float(r["money"] or 0.0)) for r in per_label}
        inertia = float(sum(r["inertia"] for r in per_label))
        counts = np.array([totals.get(j, (0.0, 0.0))[0] for j in range(k)])
        money = np.array([totals.get(j, (0.0, 0.0))[1] for j in range(k)])
        order = order_segments(raw_centers, counts, money)
        segment_of = F.create_map(
            *[x for pos, j in enumerate(order) for x in (F.lit(j), F.lit(pos + 1))]
        )
        self._assigned = self._cache(
            labelled.select(
                *KEY,
                segment_of[F.col("label")].cast("int").alias("segment"),
                "distance",
            )
        )
        result = self._collect(self._assigned.select(*KEY, "segment", "distance"))
        model.k_scores_ = k_scores
        model.cluster_centers_ = raw_centers[order]
        model.n_segments_ = k
        model.inertia_ = inertia
        model.n_iter_ = 0  # MLlib does not report it
        model.labels_ = result.get_column("segment").to_numpy().astype(np.int32) - 1
        model.distances_ = result.get_column("distance").to_numpy().astype(np.float64)
        return Segmentation(model=model, clipped=clipped)

    # 4. profiles -------------------------------------------------------------------------------
    def profiles(
        self,
        features: FeatureMatrix,
        customers: CustomerTable,
        segment: pl.Series,
        *,
        feature_names: list[str],
        model_features: list[str],
        centers: list[list[float]],
        stability: tuple[float, ...],
    ) -> tuple[SegmentProfile, ...]:
        """The aggregates of ``domain.profiles.build_profiles`` as one Spark SQL pass."""
        source = self._need(self._features, "features")
        assigned = self._need(self._assigned, "segment")
        sums = summable(customers.table)
        joined = source.join(assigned.select(*KEY, "segment"), on=KEY)
        n = customers.table.height
        aggs = profile_aggregates(
            joined,
            feature_names=feature_names,
            model_features=model_features,
            sums=sums,
            exact_medians=n <= EXACT_MEDIAN_ROWS,
        )
        rows = [
            r.asDict()
            for r in joined.groupBy("segment").agg(*aggs).collect()
            + joined.agg(*aggs).withColumn("segment", F.lit(0)).collect()
        ]
        return profiles_from_rows(
            rows,
            feature_names=feature_names,
            model_features=model_features,
            sums=sums,
            centers=centers,
            stability=stability,
        )

    # artifacts ---------------------------------------------------------------------------------
    def write_artifacts(self, folder: Path) -> list[str]:
        """``assignments/segment=<id>/part-*.parquet``, written by the executors.

        The folder must be on storage every executor can write (a shared file system, or the
        artifact root on HDFS/S3 for a cluster; see docs/spark.md).
        """
        assigned = self._need(self._assigned, "segment")
        target = folder / "assignments"
        (
            assigned.select("customer_id", "segment", "distance")
            .repartition("segment")
            .write.option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
            .partitionBy("segment")
            .parquet(target.resolve().as_uri())
        )
        _drop_hadoop_files(target)  # not artifacts
        return ["assignments"]

    def release(self) -> None:
        _unpersist(self._cached)
        self._customers = self._features = self._assigned = None


def _mllib_kmeans(
    scaled: DataFrame,
    z_cols: list[str],
    start: np.ndarray,
    *,
    seed: int,
    max_iter: int,
    epsilon: float,
) -> np.ndarray:
    """MLlib k-means on every row, from the centres ``start``; the fitted centres.

    The training vectors are assembled in the JVM (``VectorAssembler``, then an
    ``IndexedRowMatrix``'s rows), so no row passes through Python; the RDD API of
    ``pyspark.mllib`` would pickle every row to a Python worker and back (2.6x slower on
    200,000 rows, same centres). The warm start is why MLlib and not ``pyspark.ml``: only the
    former accepts initial centres.
    """
    sc = scaled.sparkSession.sparkContext
    vectors = VectorAssembler(inputCols=z_cols, outputCol="v").transform(scaled).select("v")
    vectors = MLUtils.convertVectorColumnsFromML(vectors, "v").select(
        F.monotonically_increasing_id().alias("index"), F.col("v").alias("vector")
    )
    rows = callMLlibFunc("createIndexedRowMatrix", vectors, 0, 0).toRowMatrix().rows()
    fitted = callMLlibFunc(
        "trainKMeansModel",
        rows.toJavaRDD(),
        len(start),
        max_iter,
        "k-means||",  # not used: the initial model below is
        seed,
        2,
        epsilon,
        [Vectors.dense(c) for c in start],
        "euclidean",
    )
    centers = _java2py(sc, fitted.clusterCenters())
    return np.array([np.asarray(c.toArray(), dtype=np.float64) for c in centers])


def _unpersist(frames: list[DataFrame]) -> None:
    for frame in frames:
        with contextlib.suppress(Exception):  # the session may already be stopped
            frame.unpersist()
    frames.clear()


def _tenure_fill(customers: CustomerTable) -> float | None:
    """The value ``build_features`` gives a customer without a signup date (the median tenure of
    all the others), or None when nothing needs filling."""
    table = customers.table
    if "signup_date" not in table.columns or table.get_column("signup_date").null_count() == 0:
        return None
    known = table.select("customer_id", "signup_date").drop_nulls()
    tenure = build_features(known, reference_date=customers.reference_date).frame
    if "tenure_days" not in tenure.columns or tenure.height == 0:
        return None
    value = tenure.get_column("tenure_days").median()
    return float(value) if value is not None else None  # type: ignore[arg-type]


def transactions_per_customer(
    tx: DataFrame, reference: dt.date, *, levels: dict[str, list[str]]
) -> DataFrame:
    """Spark SQL twin of ``domain.transactions.per_customer_table`` (same columns, same order).

    Money is summed as integer cents rounded half to even, exactly as the Polars aggregation
    does, so revenue matches to the cent whatever the partitioning. Distinct counts are sums
    over one row per order (orders; orders with a deal or in a channel) or per day (purchase
    days): Spark evaluates ``count_distinct`` of several columns by copying every row once per
    column (``Expand``). ``tx`` is read twice (orders, days): cache it.
    """
    cents = F.bround(F.col("amount") * 100).cast("long")
    zero = F.lit(0)

    def money(total: Column) -> Column:
        # x * 0.01 rather than x / 100: the bits Polars produces for the same expression.
        return F.greatest(F.coalesce(total, zero), zero) * F.lit(0.01)

    def count(flag: str) -> Column:
        return F.coalesce(F.sum(flag), zero)

    channels = levels.get("channel", [])
    categories = levels.get("category", [])
    response = "response" in tx.columns
    # One row per order: a missing order id groups as one order, as in Polars.
    per_order = [
        F.min("date").alias("_first"),
        F.max("date").alias("_last"),
        F.sum(cents).alias("_cents"),
        F.max(F.col("deal").cast("int")).alias("_deal"),
        *[
            F.max((F.col("channel") == ch).cast("int")).alias(f"_ch{i}")
            for i, ch in enumerate(channels)
        ],
        *[
            F.sum(F.when(F.col("category") == c, cents)).alias(f"_cat{i}")
            for i, c in enumerate(categories)
        ],
        *([F.max("response").alias("_response")] if response else []),
    ]
    aggs = [
        F.min("_first").alias("signup_date"),
        F.max("_last").alias("last_date"),
        F.count("*").alias("orders"),
        money(F.sum("_cents")).alias("revenue"),
        count("_deal").alias("deal_purchases"),
        *[count(f"_ch{i}").alias(f"purchases_{ch}") for i, ch in enumerate(channels)],
        *[money(F.sum(f"_cat{i}")).alias(f"spend_{c}") for i, c in enumerate(categories)],
        *([F.max("_response").alias("response")] if response else []),
    ]
    grouped = tx.groupBy("customer_id", "order").agg(*per_order).groupBy("customer_id").agg(*aggs)
    # The value model's inputs: purchase days, and the spend on the days after the first (every
    # day's but the first's; min_by: the first day's).
    days = (
        tx.groupBy("customer_id", "date")
        .agg(F.sum(cents).alias("_cents"))
        .groupBy("customer_id")
        .agg(
            F.count("date").alias("purchase_days"),
            money(
                F.coalesce(F.sum("_cents"), zero) - F.coalesce(F.min_by("_cents", "date"), zero)
            ).alias("repeat_revenue"),
        )
    )
    grouped = grouped.join(days, "customer_id")
    ref = F.lit(reference)
    grouped = grouped.withColumn("recency_days", F.datediff(ref, "last_date")).withColumn(
        "inter_purchase_days",
        F.when(
            F.col("orders") > 1,
            F.datediff("last_date", "signup_date") / (F.col("orders") - 1),
        ).otherwise(F.datediff(ref, "signup_date")),
    )
    numeric = [c for c in grouped.columns if c not in ("customer_id", "signup_date", "last_date")]
    return grouped.select(
        "customer_id", "signup_date", *[F.col(c).cast("double").alias(c) for c in numeric]
    )


def _scaled(source: DataFrame, names: list[str], scaler: FeatureScaler) -> DataFrame:
    """``FeatureScaler.transform`` on every batch: ``z<j>``, and ``c<j>`` = 1 where capped."""
    schema = T.StructType(
        [T.StructField(POS, T.LongType()), T.StructField("customer_id", T.StringType())]
        + [T.StructField("monetary", T.DoubleType())]
        + [T.StructField(f"z{j}", T.DoubleType()) for j in range(len(names))]
        + [T.StructField(f"c{j}", T.IntegerType()) for j in range(len(names))]
    )
    arrow = arrow_schema(schema)
    params = scaler.to_dict()

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fitted = FeatureScaler.from_dict(params)
        for batch in batches:
            part = pl.from_arrow(batch)
            assert isinstance(part, pl.DataFrame)
            X = part.select(names).to_numpy().astype(np.float64)
            logged = fitted._log(X)
            capped = (fitted.lower_ > logged) | (fitted.upper_ < logged)
            Z = fitted.transform(X)
            out = part.select(POS, "customer_id", "monetary").with_columns(
                [pl.Series(f"z{j}", Z[:, j]) for j in range(len(names))]
                + [pl.Series(f"c{j}", capped[:, j].astype(np.int32)) for j in range(len(names))]
            )
            yield from to_batches(out, arrow)

    return source.mapInArrow(apply, schema)


def _assign(scaled: DataFrame, z_cols: list[str], centers: np.ndarray) -> DataFrame:
    """``domain.segmentation.model.nearest`` on every batch: 0-based ``label`` and distance."""
    schema = T.StructType(
        [
            T.StructField(POS, T.LongType()),
            T.StructField("customer_id", T.StringType()),
            T.StructField("monetary", T.DoubleType()),
            T.StructField("label", T.IntegerType()),
            T.StructField("distance", T.DoubleType()),
        ]
    )
    arrow = arrow_schema(schema)

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            part = pl.from_arrow(batch)
            assert isinstance(part, pl.DataFrame)
            labels, dist = nearest(part.select(z_cols).to_numpy().astype(np.float64), centers)
            out = part.select(POS, "customer_id", "monetary").with_columns(
                pl.Series("label", labels), pl.Series("distance", dist)
            )
            yield from to_batches(out, arrow)

    return scaled.mapInArrow(apply, schema)


def profile_aggregates(
    frame: DataFrame,
    *,
    feature_names: list[str],
    model_features: list[str],
    sums: list[str],
    exact_medians: bool = True,
) -> list[Column]:
    """The aggregate columns ``domain.profiles.profiles_from_rows`` reads, NaN-aware like numpy.

    Medians are exact (``percentile``, interpolating like ``numpy.nanmedian``) up to
    ``EXACT_MEDIAN_ROWS`` customers and ``percentile_approx`` (relative rank error 1e-4) above.
    """

    def column(name: str) -> str:
        return name if name in frame.columns else f"t__{name}"

    def median(name: str) -> Column:
        if exact_medians:
            return F.percentile(_null_nan(name), F.lit(0.5))
        return F.percentile_approx(_null_nan(name), F.lit(0.5), F.lit(10_000))

    aggs: list[Column] = [
        F.count("*").alias("__n"),
        F.coalesce(F.sum("monetary"), F.lit(0.0)).alias("__revenue"),
    ]
    aggs += [F.avg(_null_nan(f)).alias(f"mean__{f}") for f in feature_names]
    aggs += [median(f).alias(f"median__{f}") for f in model_features]
    for c in sums:
        aggs.append(F.coalesce(F.sum(_null_nan(column(c))), F.lit(0.0)).alias(f"sum__{c}"))
        aggs.append(F.count(_null_nan(column(c))).alias(f"nn__{c}"))
    return aggs


__all__ = [
    "SparkEngine",
    "build_session",
    "profile_aggregates",
    "transactions_per_customer",
    "write_source",
]
