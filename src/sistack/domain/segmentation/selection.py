"""Choosing the number of segments.

Criterion (documented for users): every k in the range is fitted with k-means on a deterministic
sample of at most ``selection_sample`` customers; the silhouette score is computed on at most
``silhouette_n`` of them. Every k whose silhouette is within ``SILHOUETTE_TOLERANCE`` (0.01) of
the best is a candidate: a difference that small is within the noise of a sampled silhouette.
Among the candidates the lowest Davies-Bouldin index (compact, well separated segments) wins;
a tie goes to the smaller k. Calinski-Harabasz is recorded beside them for the analyst.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

SILHOUETTE_TOLERANCE = 0.01


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


def distances(X: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of the rows of ``X`` (exact zeros on the diagonal)."""
    X = np.asarray(X, dtype=np.float64)
    squared = np.einsum("ij,ij->i", X, X)
    # In place on the Gram matrix: no temporary n x n arrays (5,000 rows: 200 MB each).
    d2 = X @ X.T
    d2 *= -2.0
    d2 += squared[:, None]
    d2 += squared[None, :]
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2, out=d2)


def silhouette(D: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient from a distance matrix ``D`` (the definition of
    ``sklearn.metrics.silhouette_score``; members of a one-customer cluster score 0).

    Every candidate k is scored on the same rows, so ``choose_k`` computes ``D`` once and each
    k costs one product of ``D`` with its one-hot labels (per-cluster distance sums) instead
    of a distance computation of its own: about 6x less CPU for k = 2..8 on 5,000 rows.
    """
    ids, inverse = np.unique(labels, return_inverse=True)
    n, k = len(D), len(ids)
    if not 2 <= k < n:
        raise ValueError(f"silhouette needs 2 to n-1 clusters, got {k} for {n} rows")
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), inverse] = 1.0
    sums = D @ onehot
    rows = np.arange(n)
    own = counts[inverse]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = sums[rows, inverse] / np.maximum(own - 1.0, 1.0)
        other = sums / counts
        other[rows, inverse] = np.inf
        b = other.min(axis=1)
        score = (b - a) / np.maximum(a, b)
    score[own == 1] = 0.0
    return float(np.nan_to_num(score, nan=0.0).mean())


def choose_k(
    X: np.ndarray,
    ks: list[int],
    *,
    seed: int,
    silhouette_n: int,
    n_init: int = 4,
    workers: int = 2,
) -> tuple[list[KScore], int, np.ndarray]:
    """Score each k on ``X`` (already a sample).

    Returns the scores, the chosen k and that k's centres on the sample (a warm start for the
    final fit).
    """
    if not ks:
        raise ValueError("no candidate k")
    sil_idx = sample_indices(len(X), silhouette_n, seed=seed + 2)
    sil_distances = distances(X[sil_idx])

    def score(k: int) -> tuple[KScore, np.ndarray]:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
        labels = km.labels_
        if len(np.unique(labels)) < 2 or len(np.unique(labels[sil_idx])) < 2:
            return KScore(k, -1.0, 0.0, float("inf"), float(km.inertia_)), km.cluster_centers_
        return (
            KScore(
                k=k,
                silhouette=silhouette(sil_distances, labels[sil_idx]),
                calinski_harabasz=float(calinski_harabasz_score(X, labels)),
                davies_bouldin=float(davies_bouldin_score(X, labels)),
                inertia=float(km.inertia_),
            ),
            km.cluster_centers_,
        )

    # Candidates are independent: score them on parallel threads (k-means and the metrics run
    # in native code without the GIL). Results come back in k order, so nothing depends on
    # which thread finishes first.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(score, ks))
    scores = [s for s, _ in results]
    centers = {s.k: c for s, c in results}
    k = pick_k(scores)
    marked = [KScore(**{**s.to_dict(), "chosen": s.k == k}) for s in scores]
    return marked, k, centers[k]


def pick_k(scores: list[KScore]) -> int:
    """The documented criterion (see the module docstring) applied to computed scores."""
    top = max(s.silhouette for s in scores)
    near = [s for s in scores if s.silhouette >= top - SILHOUETTE_TOLERANCE]
    return min(near, key=lambda s: (s.davies_bouldin, s.k)).k
