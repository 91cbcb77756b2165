"""The in-process engine: Polars and NumPy on one machine (the default)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from sistack.domain.features import FeatureMatrix, build_features
from sistack.domain.profiles import SegmentProfile, build_profiles
from sistack.domain.schema import CUSTOMERS, ColumnMapping
from sistack.domain.segmentation.model import FeatureScaler, SegmentModel
from sistack.domain.transactions import aggregate_transactions
from sistack.domain.validation import CustomerTable, validate_customers
from sistack.engines.base import Segmentation


class LocalEngine:
    """Every step in this process; ``segment`` fits on ``fit_sample`` rows, assigns all."""

    name = "local"

    def describe(self) -> dict[str, str]:
        return {"name": self.name}

    def prepare(
        self, raw: pl.DataFrame, mapping: ColumnMapping, *, reference_date: dt.date | None
    ) -> CustomerTable:
        if mapping.shape == CUSTOMERS:
            return validate_customers(raw, mapping, reference_date=reference_date)
        return aggregate_transactions(raw, mapping, reference_date=reference_date)

    def features(self, customers: CustomerTable) -> FeatureMatrix:
        return build_features(customers.table, reference_date=customers.reference_date)

    def segment(
        self,
        features: FeatureMatrix,
        X: np.ndarray,
        names: list[str],
        *,
        scaler: FeatureScaler,
        model: SegmentModel,
    ) -> Segmentation:
        Z, clipped = scaler.transform_counting(X)
        revenue = features.frame.get_column("monetary").to_numpy()
        model.fit(Z, revenue=revenue)
        return Segmentation(model=model, clipped=clipped)

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
        return build_profiles(
            features.frame,
            customers.table,
            segment,
            feature_names=feature_names,
            model_features=model_features,
            centers=centers,
            stability=stability,
        )

    def write_artifacts(self, folder: Path) -> list[str]:
        return []

    def release(self) -> None:
        return None
