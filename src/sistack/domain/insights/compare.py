"""Comparing two runs: matched segments, KPI deltas, migrations and agreement.

Segments are matched by the Hungarian algorithm on the distance between their feature means,
standardised with the first run's population standard deviations (a common feature space even
when the two runs were fitted separately). Match quality is exp(-d) with d the root mean squared
standardised difference: 1 for identical segments, about 0.37 at one standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from sistack.domain.profiles import SegmentProfile

WEAK_MATCH = float(np.exp(-1.0))
KPIS = ("customer_share", "revenue_share", "revenue_index", "avg_revenue")

# Keys follow the fields of a comparison (``quality`` and ``deltas`` of each match).
DEFINITIONS = {
    "quality": "Match quality, exp(-d), d = root mean squared difference of the segments' "
    "feature means in population standard deviations: 1 identical, below 0.37 a weak match.",
    "deltas": "Change of each KPI from the reference run to this one for a matched pair of "
    "segments: this run's customer_share, revenue_share, revenue_index and avg_revenue minus "
    "the reference run's.",
    "vanished": "Segments of the reference run with no partner in this run (this run has fewer "
    "segments).",
    "new": "Segments of this run with no partner in the reference run (this run has more "
    "segments).",
    "shared_customers": "Customers present in both runs (same customer id).",
    "migration": "Customers present in both runs, counted by their segment in each.",
    "ari": "Adjusted Rand index between the two assignments of the shared customers: 1 the same "
    "grouping, about 0 no better than chance.",
}


@dataclass(frozen=True)
class SegmentMatch:
    segment_a: int
    segment_b: int
    quality: float
    weak: bool
    deltas: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    features: tuple[str, ...]
    matches: tuple[SegmentMatch, ...]
    vanished: tuple[int, ...]  # segments of A without a partner in B
    new: tuple[int, ...]  # segments of B without a partner in A
    shared_customers: int
    migration: tuple[tuple[int, ...], ...] | None  # rows: segments of A, columns: of B
    ari: float | None


def _kpis(p: SegmentProfile) -> dict[str, float]:
    index = p.revenue_share / p.customer_share if p.customer_share else float("nan")
    avg = p.revenue / p.customers if p.customers else float("nan")
    return {
        "customer_share": p.customer_share,
        "revenue_share": p.revenue_share,
        "revenue_index": index,
        "avg_revenue": avg,
    }


def match_segments(
    a: tuple[SegmentProfile, ...],
    b: tuple[SegmentProfile, ...],
    *,
    stds: dict[str, float],
) -> tuple[tuple[str, ...], list[SegmentMatch], list[int], list[int]]:
    """Match segments of two runs (profiles include the population first)."""
    seg_a, seg_b = a[1:], b[1:]
    features = tuple(f for f in a[0].medians if f in b[0].medians and stds.get(f, 0.0) > 0)
    if not features:
        features = tuple(f for f in a[0].means if f in b[0].means and stds.get(f, 0.0) > 0)
    center = np.array([a[0].means[f] for f in features])
    scale = np.array([stds[f] for f in features])

    def z(ps: tuple[SegmentProfile, ...]) -> np.ndarray:
        return (np.array([[p.means[f] for f in features] for p in ps]) - center) / scale

    za, zb = z(seg_a), z(seg_b)
    cost = np.sqrt(((za[:, None, :] - zb[None, :, :]) ** 2).mean(axis=2))
    rows, cols = linear_sum_assignment(cost)
    matches = []
    for i, j in sorted(zip(rows.tolist(), cols.tolist(), strict=True)):
        quality = float(np.exp(-cost[i, j]))
        ka, kb = _kpis(seg_a[i]), _kpis(seg_b[j])
        matches.append(
            SegmentMatch(
                segment_a=seg_a[i].segment,
                segment_b=seg_b[j].segment,
                quality=quality,
                weak=quality < WEAK_MATCH,
                deltas={k: kb[k] - ka[k] for k in KPIS},
            )
        )
    vanished = [p.segment for i, p in enumerate(seg_a) if i not in set(rows.tolist())]
    new = [p.segment for j, p in enumerate(seg_b) if j not in set(cols.tolist())]
    return features, matches, vanished, new


def migration_matrix(
    seg_a: np.ndarray, seg_b: np.ndarray, *, k_a: int, k_b: int
) -> tuple[tuple[tuple[int, ...], ...], float]:
    """Counts of shared customers by (segment in A, segment in B), and the ARI."""
    matrix = np.zeros((k_a, k_b), dtype=np.int64)
    np.add.at(matrix, (seg_a - 1, seg_b - 1), 1)
    ari = float(adjusted_rand_score(seg_a, seg_b)) if len(seg_a) else float("nan")
    return tuple(tuple(int(v) for v in row) for row in matrix), ari


def compare_runs(
    a: tuple[SegmentProfile, ...],
    b: tuple[SegmentProfile, ...],
    *,
    stds: dict[str, float],
    shared: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """Compare run A with run B; ``shared`` holds both segment ids of the common customers."""
    features, matches, vanished, new = match_segments(a, b, stds=stds)
    migration, ari, n_shared = None, None, 0
    if shared is not None and len(shared[0]):
        migration, ari = migration_matrix(shared[0], shared[1], k_a=len(a) - 1, k_b=len(b) - 1)
        n_shared = len(shared[0])
    return Comparison(
        features, tuple(matches), tuple(vanished), tuple(new), n_shared, migration, ari
    )
