"""The interface of an execution engine: the data-parallel steps of a run, and nothing else.

A run is one sequence (``service.pipeline.run_pipeline``). Three of its steps touch every
customer (or every transaction) and have one implementation per engine:

1. ``prepare``  - raw rows -> the canonical customer table (validation, transaction aggregation);
2. ``features`` - customer table -> canonical feature matrix (the definitions in
   ``domain.features``, evaluated where the data lives);
3. ``segment``  - scale every row, fit k-means from the shared warm start, assign every row;
4. ``profiles`` - per-segment sufficient statistics, finished by ``domain.profiles``.

Everything else - choosing k on a sample, scaler parameters, stability, the response model,
insights, personas, actions - is domain code that runs once, on the driver, for every engine.
So the engines cannot disagree on definitions, only on the arithmetic of a sum.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

from sistack.domain.features import FeatureMatrix
from sistack.domain.profiles import SegmentProfile
from sistack.domain.schema import ColumnMapping
from sistack.domain.segmentation.model import FeatureScaler, SegmentModel
from sistack.domain.validation import CustomerTable


@dataclass(frozen=True)
class Segmentation:
    """A fitted model (``labels_``/``distances_`` for every customer, in feature-row order) and,
    per model feature, how many values winsorising capped."""

    model: SegmentModel
    clipped: np.ndarray


class Engine(Protocol):
    """One implementation of the data-parallel steps (see the module docstring)."""

    name: str

    def describe(self) -> dict[str, str]:
        """What the manifest records about the engine (name, versions, where it ran)."""
        ...

    def prepare(
        self, raw: pl.DataFrame, mapping: ColumnMapping, *, reference_date: dt.date | None
    ) -> CustomerTable: ...

    def features(self, customers: CustomerTable) -> FeatureMatrix: ...

    def segment(
        self,
        features: FeatureMatrix,
        X: np.ndarray,
        names: list[str],
        *,
        scaler: FeatureScaler,
        model: SegmentModel,
    ) -> Segmentation:
        """Fit ``model`` (unfitted, parameters set) on the features scaled by ``scaler``
        (fitted). ``X`` is the driver's copy of the model features, for the selection sample."""
        ...

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
    ) -> tuple[SegmentProfile, ...]: ...

    def write_artifacts(self, folder: Path) -> list[str]:
        """Write the engine's own extra artifacts into ``folder``; returns their names."""
        ...

    def release(self) -> None:
        """Free what the engine keeps between steps of one run (cached data)."""
        ...


@runtime_checkable
class ReadsFiles(Protocol):
    """An engine that reads a transaction file itself (Spark): its rows never come to the
    process that runs the pipeline, only the customer table and the quality report do."""

    def prepare_file(
        self, path: Path, mapping: ColumnMapping, *, reference_date: dt.date | None
    ) -> CustomerTable:
        """``prepare`` for the transaction rows of the Parquet file at ``path``."""
        ...
