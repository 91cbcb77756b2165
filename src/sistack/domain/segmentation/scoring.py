"""Scoring: assign new customers to a run's segments with the stored model, without refitting."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from sistack.domain.features import build_features
from sistack.domain.segmentation.model import FeatureScaler, SegmentModel
from sistack.domain.validation import CustomerTable
from sistack.errors import InputError


def score_table(customers: CustomerTable, model_doc: dict[str, Any]) -> pl.DataFrame:
    """``customer_id, segment, distance`` for every customer of a validated table.

    The new file must yield every feature the model was fitted on; features are computed the same
    way as in the run, with the new data's own reference date.
    """
    features = build_features(customers.table, reference_date=customers.reference_date)
    names: list[str] = model_doc["features"]
    missing = [n for n in names if n not in features.frame.columns]
    if missing:
        raise InputError(
            f"The file lacks what the model needs to compute: {', '.join(missing)}. Provide the "
            "same kinds of columns as the run's input.",
            code="missing_features",
            details={"missing_features": missing},
        )
    X = features.frame.select(names).to_numpy().astype(np.float64)
    scaler = FeatureScaler.from_dict(model_doc["scaler"])
    model = SegmentModel.from_dict(model_doc["model"])
    Z = scaler.transform(X)
    labels = model.predict(Z)
    distance = model.transform(Z)[np.arange(len(Z)), labels]
    return pl.DataFrame(
        {
            "customer_id": features.frame.get_column("customer_id"),
            "segment": pl.Series("segment", labels + 1, dtype=pl.Int32),
            "distance": pl.Series("distance", distance, dtype=pl.Float64),
        }
    )
