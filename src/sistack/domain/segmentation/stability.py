"""Bootstrap stability of segments (Hennig's clusterboot idea, on a sample).

For B resamples (with replacement) of a fixed sample, k-means is refitted and every sample point
assigned to the nearest refitted centre. For each original segment the Jaccard similarity with its
best-matching bootstrap cluster is recorded; a segment's stability is the mean over resamples
(above ~0.75 is usually called stable, below ~0.5 dissolved). The mean adjusted Rand index
between the original and the bootstrap assignments is the overall figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from sistack.domain.segmentation.model import nearest


@dataclass(frozen=True)
class Stability:
    """Mean Jaccard per segment (index 0 = segment 1) and mean ARI over resamples."""

    jaccard: tuple[float, ...]
    ari: float
    resamples: int
    sample_size: int


def bootstrap_stability(
    X: np.ndarray, centers: np.ndarray, *, resamples: int, seed: int, n_init: int = 1
) -> Stability:
    """Stability of the segmentation given by ``centers`` on the sample ``X``."""
    k = len(centers)
    reference, _ = nearest(X, centers)
    if resamples <= 0 or len(X) < 2 * k:
        return Stability(tuple([float("nan")] * k), float("nan"), 0, len(X))
    jaccard = np.zeros((resamples, k))
    aris = np.zeros(resamples)
    for b in range(resamples):
        rng = np.random.default_rng([seed, b])
        idx = rng.integers(0, len(X), size=len(X))
        km = KMeans(n_clusters=k, n_init=n_init, random_state=int(rng.integers(2**31)))
        km.fit(X[idx])
        boot, _ = nearest(X, km.cluster_centers_)
        aris[b] = adjusted_rand_score(reference, boot)
        for j in range(k):
            a = reference == j
            best = 0.0
            for c in range(k):
                bmask = boot == c
                union = np.count_nonzero(a | bmask)
                if union:
                    best = max(best, np.count_nonzero(a & bmask) / union)
            jaccard[b, j] = best
    return Stability(
        tuple(float(v) for v in jaccard.mean(axis=0)), float(aris.mean()), resamples, len(X)
    )
