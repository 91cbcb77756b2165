"""The segmentation pipeline: raw table + mapping + config -> everything a run persists.

This module only sequences domain functions and times them; it reads no files and writes none
(``service.runs`` does). The same function serves ``sistack run``, the API's background jobs,
reproduce and the benchmarks, so they all exercise one code path.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator
from threadpoolctl import threadpool_limits

from sistack.domain.features import FeatureMatrix
from sistack.domain.insights.promotion import fit_response, score_customers
from sistack.domain.insights.report import Insights, build_insights
from sistack.domain.profiles import SegmentProfile, finite_std
from sistack.domain.quality import CHANGED, QualityIssue, QualityReport
from sistack.domain.schema import CUSTOMERS, TRANSACTIONS, ColumnMapping
from sistack.domain.segmentation.model import FeatureScaler, SegmentModel
from sistack.domain.segmentation.selection import sample_indices
from sistack.domain.segmentation.stability import Stability, bootstrap_stability
from sistack.domain.transactions_stream import aggregate_transactions_lazy
from sistack.domain.validation import CustomerTable, validate_customers
from sistack.engines import SPARK_MASTER, Engine, LocalEngine, ReadsFiles, open_engine
from sistack.errors import InputError
from sistack.io.spill import spill_to

Progress = Callable[[str, int], None]
TableReady = Callable[[str, pl.DataFrame], None]


class RunConfig(BaseModel):
    """Every parameter that affects a run's results; recorded in the manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int | None = Field(default=None, ge=2, le=30, description="Fixed number of segments.")
    k_min: int = Field(default=2, ge=2, le=30)
    k_max: int = Field(default=8, ge=2, le=30)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    reference_date: dt.date | None = Field(
        default=None, description="'As of' date; default: the latest date in the data."
    )
    selection_sample: int = Field(default=20_000, ge=100)
    silhouette_sample: int = Field(default=5_000, ge=100)
    fit_sample: int = Field(default=200_000, ge=1000)
    n_init: int = Field(default=4, ge=1, le=50)
    stability_resamples: int = Field(default=20, ge=0, le=500)
    stability_sample: int = Field(default=5_000, ge=100)
    response_sample: int = Field(
        default=20_000, ge=100, description="Labelled customers used to fit the response model."
    )
    clip_quantiles: tuple[float, float] = (0.01, 0.99)
    engine: Literal["local", "spark"] = Field(
        default="local", description="Where the data-parallel steps run (see docs/spark.md)."
    )
    spark_master: str | None = Field(
        default=None,
        max_length=300,
        pattern=SPARK_MASTER.pattern,
        description="Spark master URL (engine 'spark'): local[N], spark://host:7077, k8s://...",
    )

    @model_validator(mode="after")
    def _range(self) -> RunConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        low, high = self.clip_quantiles
        if not 0 <= low < high <= 1:
            raise ValueError("clip_quantiles must satisfy 0 <= low < high <= 1")
        return self


@dataclass(frozen=True)
class PipelineResult:
    """Everything a run persists, in memory."""

    customers: CustomerTable
    features: FeatureMatrix
    model_features: list[str]
    scaler: FeatureScaler
    model: SegmentModel
    stability: Stability
    assignments: pl.DataFrame
    profiles: tuple[SegmentProfile, ...]
    quality: QualityReport
    insights: Insights
    shape: str = CUSTOMERS
    timings: dict[str, float] = field(default_factory=dict)
    engine: dict[str, str] = field(default_factory=lambda: {"name": "local"})
    # Writes the engine's own artifacts (Spark: partitioned assignments) into a run folder.
    engine_artifacts: Callable[[Path], list[str]] | None = None

    def model_document(self) -> dict[str, Any]:
        """The fitted model as plain numbers (no pickle): features, scaler and centres."""
        return {
            "format": "sistack.segment-model/1",
            "shape": self.shape,
            "features": self.model_features,
            "reference_date": _iso(self.customers.reference_date),
            "scaler": self.scaler.to_dict(),
            "model": self.model.to_dict(),
            "stability": {
                "jaccard": list(self.stability.jaccard),
                "ari": self.stability.ari,
                "resamples": self.stability.resamples,
                "sample_size": self.stability.sample_size,
            },
        }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def min_customers(config: RunConfig) -> int:
    """Fewest usable customers a run accepts: two per segment of the smallest k asked for."""
    return 2 * (config.k if config.k is not None else config.k_min)


def prepare(
    raw: pl.DataFrame | pl.LazyFrame, mapping: ColumnMapping, *, reference_date: dt.date | None
) -> CustomerTable:
    """Validate customer rows, or aggregate transactions, into a canonical customer table."""
    if isinstance(raw, pl.LazyFrame):
        return prepare_streamed(raw, mapping, reference_date=reference_date)
    return LocalEngine().prepare(raw, mapping, reference_date=reference_date)


# Transaction rows aggregated in memory at once by the streaming path (one partition's worth).
ROWS_PER_PART = 4_000_000


def prepare_streamed(
    raw: pl.LazyFrame, mapping: ColumnMapping, *, reference_date: dt.date | None
) -> CustomerTable:
    """``prepare`` for a file scanned lazily (too large to read whole), in bounded memory.

    Customer rows are typed a few columns at a time; transaction rows are typed in one
    streaming pass, spilled to a temporary folder partitioned by customer, and aggregated one
    partition at a time. The result equals ``prepare`` on the whole table, bit for bit.
    """
    if mapping.shape == CUSTOMERS:
        return validate_customers(raw, mapping, reference_date=reference_date)
    rows = int(raw.select(pl.len()).collect(engine="streaming").item())
    with tempfile.TemporaryDirectory(prefix="sistack-spill-") as folder:
        return aggregate_transactions_lazy(
            raw,
            mapping,
            spill=spill_to(Path(folder)),
            parts=max(1, -(-rows // ROWS_PER_PART)),
            reference_date=reference_date,
        )


def model_matrix(features: FeatureMatrix, names: list[str]) -> np.ndarray:
    return features.frame.select(names).to_numpy().astype(np.float64, copy=False)


def run_pipeline(
    raw: pl.DataFrame | pl.LazyFrame,
    mapping: ColumnMapping,
    config: RunConfig,
    *,
    progress: Progress | None = None,
    engine: Engine | None = None,
    on_table: TableReady | None = None,
    source: Path | None = None,
) -> PipelineResult:
    """Validate -> features -> scale -> choose k and fit -> stability -> profiles.

    The data-parallel steps run on ``engine`` (default: the one ``config.engine`` names); the
    rest is domain code on this process, the same for every engine. ``on_table`` is called
    with each of the result's tables (``"features"``, ``"assignments"``, ``"scores"``) as soon
    as it is final, so a caller can write it while the rest is computed. ``source`` is a
    Parquet file holding the rows of ``raw`` (the run's input snapshot): an engine that reads
    files itself (Spark) reads transaction rows from it instead of from this process.
    """
    engine = engine or open_engine(config.engine, master=config.spark_master)
    # A second thread for the response model (see ``_run``); on a failure its queued work is
    # dropped and the run does not wait for a fit already under way.
    background = ThreadPoolExecutor(1)
    try:
        return _run(
            raw,
            mapping,
            config,
            engine,
            progress,
            on_table or (lambda name, frame: None),
            background,
            source,
        )
    except BaseException:
        engine.release()
        raise
    finally:
        background.shutdown(wait=False, cancel_futures=True)


def _run(
    raw: pl.DataFrame | pl.LazyFrame,
    mapping: ColumnMapping,
    config: RunConfig,
    engine: Engine,
    progress: Progress | None,
    on_table: TableReady,
    background: ThreadPoolExecutor,
    source: Path | None = None,
) -> PipelineResult:
    report = progress or (lambda stage, pct: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    report("validate", 10)
    if source is not None and mapping.shape == TRANSACTIONS and isinstance(engine, ReadsFiles):
        # The engine reads the rows itself (Spark: on its executors); none come here.
        customers = engine.prepare_file(source, mapping, reference_date=config.reference_date)
    elif isinstance(raw, pl.LazyFrame) and isinstance(engine, LocalEngine):
        # A file too large to read whole: typed/aggregated in bounded memory.
        customers = prepare_streamed(raw, mapping, reference_date=config.reference_date)
    else:
        frame = raw.collect(engine="streaming") if isinstance(raw, pl.LazyFrame) else raw
        customers = engine.prepare(frame, mapping, reference_date=config.reference_date)
        del frame
    n = customers.table.height
    needed = min_customers(config)
    if n < needed:
        raise InputError(
            f"Only {n} usable customers; segmentation into "
            f"{config.k or config.k_min} segments needs at least {needed}. Add customers or "
            "ask for fewer segments (--k).",
            code="too_few_customers",
            details={"customers": n, "required": needed},
        )
    lap("validate")

    report("features", 25)
    features = engine.features(customers)
    if "monetary" not in features.frame.columns:
        raise InputError("No monetary value could be derived.", code="missing_monetary")
    candidates = features.model_features
    # Constant features are found column by column, so the matrix is built once, of the kept
    # columns only (10M customers x 14 features is 1.1 GB per copy).
    names = [
        c
        for c in candidates
        if finite_std(features.frame.get_column(c).to_numpy().astype(np.float64, copy=False)) > 0
    ]
    if not names:
        raise InputError(
            "Every usable feature is constant: the customers cannot be told apart.",
            code="no_usable_features",
        )
    X = model_matrix(features, names)
    log_cols = [j for j, name in enumerate(names) if features_log(features, name)]
    # The response model needs features and labels only (of its labelled sample): fit it, then
    # score every customer, on a second thread while the segmentation (single-threaded k-means,
    # for reproducible bits) runs on this one.
    response_fit = background.submit(
        fit_response,
        features.frame,
        customers.table,
        seed=config.seed,
        max_rows=config.response_sample,
    )
    response_scores = background.submit(
        lambda: score_customers(response_fit.result(), features.frame)
    )
    on_table("features", features.frame)
    lap("features")

    report("scale", 35)
    fit_idx = sample_indices(n, config.fit_sample, seed=config.seed + 3)
    scaler = FeatureScaler(log_columns=log_cols, clip_quantiles=config.clip_quantiles)
    scaler.fit(X[fit_idx])
    lap("scale")

    report("segment", 45)
    model = SegmentModel(
        n_segments=config.k,
        k_range=(config.k_min, config.k_max),
        random_state=config.seed,
        selection_sample=config.selection_sample,
        silhouette_sample=config.silhouette_sample,
        fit_sample=config.fit_sample,
        n_init=config.n_init,
    )
    # One OpenMP thread: k-means reduces per-thread partial sums in arbitrary order, which would
    # change the last bits of the centres from one run to the next.
    with threadpool_limits(limits=1):
        fitted = engine.segment(features, X, names, scaler=scaler, model=model)
    model, clipped = fitted.model, fitted.clipped
    # Only the stability sample of the model matrix is used from here on: free the rest.
    stab_idx = sample_indices(n, config.stability_sample, seed=config.seed + 4)
    X_stab = X[stab_idx]
    del X
    lap("segment")

    report("stability", 75)
    with threadpool_limits(limits=1):
        stability = bootstrap_stability(
            scaler.transform(X_stab),
            model.cluster_centers_,
            resamples=config.stability_resamples,
            seed=config.seed + 5,
        )
    lap("stability")

    report("profiles", 88)
    segment = pl.Series("segment", model.labels_ + 1, dtype=pl.Int32)
    assignments = pl.DataFrame(
        {
            "customer_id": features.frame.get_column("customer_id"),
            "segment": segment,
            "distance": pl.Series("distance", model.distances_, dtype=pl.Float64),
        }
    )
    on_table("assignments", assignments)
    profiles = engine.profiles(
        features,
        customers,
        segment,
        feature_names=[s.name for s in features.specs],
        model_features=names,
        centers=model.cluster_centers_.tolist(),
        stability=stability.jaccard,
    )
    quality = _with_capping(customers.report, names, clipped, config.clip_quantiles)
    lap("profiles")

    report("insights", 92)
    insights = build_insights(
        features.frame,
        customers.table,
        segment.to_numpy(),
        profiles,
        shape=mapping.shape,
        reference_date=customers.reference_date,
        seed=config.seed,
        response_sample=config.response_sample,
        response_fit=response_fit.result(),
        response_scores=response_scores.result(),
    )
    on_table("scores", insights.customer_scores)
    lap("insights")
    return PipelineResult(
        customers=customers,
        features=features,
        model_features=names,
        scaler=scaler,
        model=model,
        stability=stability,
        assignments=assignments,
        profiles=profiles,
        quality=quality,
        insights=insights,
        shape=mapping.shape,
        timings=timings,
        engine=engine.describe(),
        engine_artifacts=_artifacts_then_release(engine),
    )


def _artifacts_then_release(engine: Engine) -> Callable[[Path], list[str]] | None:
    """The engine's artifact writer, releasing its cached data once written (or at once when the
    engine writes nothing of its own)."""
    if isinstance(engine, LocalEngine):
        return None

    def write(folder: Path) -> list[str]:
        try:
            return engine.write_artifacts(folder)
        finally:
            engine.release()

    return write


def features_log(features: FeatureMatrix, name: str) -> bool:
    return next(s.log for s in features.specs if s.name == name)


def _with_capping(
    report: QualityReport, names: list[str], clipped: np.ndarray, quantiles: tuple[float, float]
) -> QualityReport:
    """Add one entry per feature whose outliers were capped for modelling."""
    extra = [
        QualityIssue(
            CHANGED,
            "capped_for_model",
            name,
            int(count),
            (),
            f"{int(count)} values of feature '{name}' beyond the {quantiles[0]:.0%}-"
            f"{quantiles[1]:.0%} quantiles were capped for segmentation (stored values unchanged).",
        )
        for name, count in zip(names, clipped, strict=True)
        if count > 0
    ]
    return QualityReport(report.rows_read, report.rows_used, report.issues + tuple(extra))
