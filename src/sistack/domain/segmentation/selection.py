"""Choosing the number of segments.

Criterion (documented for users): every k in the range is fitted with k-means on a deterministic
sample of at most ``selection_sample`` customers; the silhouette score is computed on at most
``silhouette_n`` of them. The k with the highest silhouette wins; a tie goes to the smaller k.
Calinski-Harabasz and Davies-Bouldin are recorded beside it for the analyst.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score


@dataclass(frozen=True)
class KScore:
    """Scores of one candidate k."""

    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    inertia: float
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_indices(n: int, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a deterministic sample without replacement (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def choose_k(
    X: np.ndarray, ks: list[int], *, seed: int, silhouette_n: int, n_init: int = 4
) -> tuple[list[KScore], int, np.ndarray]:
    """Score each k on ``X`` (already a sample).

    Returns the scores, the chosen k and that k's centres on the sample (a warm start for the
    final fit).
    """
    if not ks:
        raise ValueError("no candidate k")
    sil_idx = sample_indices(len(X), silhouette_n, seed=seed + 2)
    scores: list[KScore] = []
    centers: dict[int, np.ndarray] = {}
    for k in ks:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
        centers[k] = km.cluster_centers_
        labels = km.labels_
        if len(np.unique(labels)) < 2 or len(np.unique(labels[sil_idx])) < 2:
            scores.append(KScore(k, -1.0, 0.0, float("inf"), float(km.inertia_)))
            continue
        scores.append(
            KScore(
                k=k,
                silhouette=float(silhouette_score(X[sil_idx], labels[sil_idx])),
                calinski_harabasz=float(calinski_harabasz_score(X, labels)),
                davies_bouldin=float(davies_bouldin_score(X, labels)),
                inertia=float(km.inertia_),
            )
        )
    best = max(scores, key=lambda s: (s.silhouette, -s.k))
    marked = [KScore(**{**s.to_dict(), "chosen": s.k == best.k}) for s in scores]
    return marked, best.k, centers[best.k]
