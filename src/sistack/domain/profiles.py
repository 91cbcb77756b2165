"""Per-segment sufficient statistics.

Profiles are what insights, comparison and simulation read: counts, sums, means and medians per
segment and for the whole population. They are small (k rows), so everything downstream of a run
costs the same for 2,000 customers as for 10 million.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

POPULATION = 0  # the "segment" id used for the whole customer base


@dataclass(frozen=True)
class SegmentProfile:
    """Statistics of one segment (``segment`` 1..k) or of the population (``segment`` 0)."""

    segment: int
    customers: int
    customer_share: float
    revenue: float
    revenue_share: float
    means: dict[str, float]
    medians: dict[str, float]
    sums: dict[str, float]
    non_null: dict[str, int]
    center: dict[str, float] = field(default_factory=dict)
    stability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentProfile:
        return cls(**data)


SUM_PREFIXES = ("purchases_", "spend_", "campaign_")
# The economics of a campaign when the data has them (Z_CostContact, Z_Revenue): the simulation
# reads sum / count of the population as the data's contact cost and value of a response. Sums
# (not medians) because every engine computes sums the same way, so a Spark run and a local run
# of the same file give the simulation the same number; the columns are constant in the usual
# layout, where the mean is the median.
ECONOMIC_COLUMNS = ("cost_contact", "revenue_per_response")
SUM_COLUMNS = (
    "deal_purchases",
    "response",
    "complaints",
    "web_visits",
    "orders",
    "revenue",
    "kids",
    "teens",
    *ECONOMIC_COLUMNS,
)


def summable(table: pl.DataFrame) -> list[str]:
    """Columns of ``table`` whose per-segment sums and non-null counts the profiles keep."""
    return [
        c
        for c in table.columns
        if (c.startswith(SUM_PREFIXES) or c in SUM_COLUMNS) and table.schema[c].is_numeric()
    ]


def _clean(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def finite_std(values: np.ndarray) -> float:
    """Standard deviation of the finite values; 0 when fewer than two (no warning, no NaN)."""
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size > 1 else 0.0


@dataclass(frozen=True)
class _Column:
    """One column in segment order, and whether it has missing values (NaN).

    Without NaN the plain reductions are used: they give the same bits as their ``nan*``
    versions (same values in the same order) without the masked copies.
    """

    values: np.ndarray
    has_nan: bool

    def mean(self, part: slice) -> float:
        values = self.values[part]
        if values.size == 0:
            return float("nan")
        if not self.has_nan:
            return float(np.sum(values) / values.size)
        return _nan_stat(np.nanmean, values)

    def median(self, part: slice) -> float:
        values = self.values[part]
        if values.size == 0:
            return float("nan")
        return float(np.median(values)) if not self.has_nan else _nan_stat(np.nanmedian, values)

    def total(self, part: slice) -> tuple[float, int]:
        """Sum of the present values and how many are present."""
        values = self.values[part]
        if not self.has_nan:
            return float(np.sum(values)), int(values.size)
        return float(np.nansum(values)), int(np.count_nonzero(~np.isnan(values)))


def _sorted_column(frame: pl.DataFrame, name: str, order: np.ndarray) -> _Column:
    values = frame.get_column(name).to_numpy().astype(np.float64, copy=False)[order]
    return _Column(values, bool(np.isnan(values).any()))


def _nan_stat(func: Any, values: np.ndarray) -> float:
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(func(values))


def build_profiles(
    features: pl.DataFrame,
    table: pl.DataFrame,
    segments: pl.Series,
    *,
    feature_names: list[str],
    model_features: list[str],
    centers: list[list[float]] | None = None,
    stability: tuple[float, ...] | None = None,
) -> tuple[SegmentProfile, ...]:
    """Profiles for the population (first) and each segment in id order.

    Args:
        features: feature frame (``customer_id`` + features), row-aligned with ``table``.
        table: validated canonical customer table.
        segments: segment id (1..k) per row.
        feature_names: features to average; ``model_features`` also get medians.
        centers: scaled centroids (segment order), recorded with the model feature names.
        stability: per-segment bootstrap stability.
    """
    sums = summable(table)
    if "monetary" not in feature_names:
        raise ValueError("profiles need the 'monetary' feature")
    # numpy on contiguous arrays: pairwise summation gives the same bits however the table was
    # chunked in memory, which a multi-threaded group-by does not promise. Every column is put
    # in segment order once (a stable sort, so rows keep their file order within a segment);
    # each segment is then a contiguous view, and the population is the whole sorted column.
    labels = segments.to_numpy()
    order = np.argsort(labels, kind="stable")
    ids, starts = np.unique(labels[order], return_index=True)
    bounds = [*starts.tolist(), len(labels)]
    slices = [(0, slice(0, len(labels)))] + [
        (int(i), slice(bounds[j], bounds[j + 1])) for j, i in enumerate(ids.tolist())
    ]
    # One sorted column at a time: at 10M customers the ~45 columns would take 3.6 GB at once.
    rows: list[dict[str, Any]] = [
        {"segment": seg_id, "__n": part.stop - part.start} for seg_id, part in slices
    ]
    medians = set(model_features)
    for f in feature_names:
        column = _sorted_column(features, f, order)
        for row, (_, part) in zip(rows, slices, strict=True):
            if f == "monetary":
                row["__revenue"] = float(np.sum(column.values[part]))
            row[f"mean__{f}"] = column.mean(part)
            if f in medians:
                row[f"median__{f}"] = column.median(part)
        del column
    for c in sums:
        column = _sorted_column(table, c, order)
        for row, (_, part) in zip(rows, slices, strict=True):
            row[f"sum__{c}"], row[f"nn__{c}"] = column.total(part)
        del column
    return profiles_from_rows(
        rows,
        feature_names=feature_names,
        model_features=model_features,
        sums=sums,
        centers=centers,
        stability=stability,
    )


def profiles_from_rows(
    rows: list[dict[str, Any]],
    *,
    feature_names: list[str],
    model_features: list[str],
    sums: list[str],
    centers: list[list[float]] | None = None,
    stability: tuple[float, ...] | None = None,
) -> tuple[SegmentProfile, ...]:
    """Profiles from aggregated rows, population (``segment`` 0) first, then segments in order.

    Each row holds ``segment``, ``__n``, ``__revenue``, ``mean__<feature>``,
    ``median__<model feature>``, ``sum__<column>`` and ``nn__<column>``. Any engine that computes
    these aggregates (numpy here, Spark SQL in ``sistack.engines.spark``) finishes through this
    one function, so shares and the profile layout cannot drift between engines.
    """
    rows = sorted(rows, key=lambda r: int(r["segment"]))
    total_n = rows[0]["__n"]
    total_rev = float(rows[0]["__revenue"])
    profiles: list[SegmentProfile] = []
    for row in rows:
        seg = int(row["segment"])
        n = int(row["__n"])
        revenue = float(row["__revenue"])
        center: dict[str, float] = {}
        if centers is not None and seg > 0:
            center = dict(zip(model_features, centers[seg - 1], strict=True))
        profiles.append(
            SegmentProfile(
                segment=seg,
                customers=n,
                customer_share=n / total_n,
                revenue=revenue,
                revenue_share=revenue / total_rev if total_rev > 0 else 0.0,
                means={f: _clean(row[f"mean__{f}"]) for f in feature_names},
                medians={f: _clean(row[f"median__{f}"]) for f in model_features},
                sums={c: _clean(row[f"sum__{c}"]) for c in sums},
                non_null={c: int(row[f"nn__{c}"]) for c in sums},
                center=center,
                stability=stability[seg - 1] if stability is not None and seg > 0 else None,
            )
        )
    return tuple(profiles)
