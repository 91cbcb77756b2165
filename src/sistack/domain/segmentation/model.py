"""Preprocessing and the segment model, following the scikit-learn estimator contract.

``FeatureScaler`` applies ``log1p`` to heavy-tailed columns, winsorises at data quantiles and
robust-scales (median / IQR). ``SegmentModel`` chooses k (unless fixed), fits k-means on a
deterministic sample, and orders segments by revenue so segment 1 is the largest revenue
contributor in every run. Both store only numbers, so they round-trip through JSON: nothing is
ever pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

from sistack.domain.segmentation.selection import KScore, choose_k, sample_indices

CHUNK_ROWS = 16_384  # rows per block of the per-row passes: their temporaries stay in cache
IQR_PER_SIGMA = 1.349  # IQR of a standard normal distribution


class FeatureScaler(TransformerMixin, BaseEstimator):
    """log1p (selected columns) -> winsorise at quantiles -> (x - median) / scale.

    ``scale`` is max(IQR / 1.349, winsorised standard deviation).

    Args:
        log_columns: indices of columns transformed with ``log1p`` (values below 0 become 0).
        clip_quantiles: lower and upper quantiles for winsorising.
    """

    def __init__(
        self, *, log_columns: Sequence[int] = (), clip_quantiles: tuple[float, float] = (0.01, 0.99)
    ) -> None:
        self.log_columns = log_columns
        self.clip_quantiles = clip_quantiles

    def _log(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64, copy=True)
        for j in self.log_columns:
            X[:, j] = np.log1p(np.maximum(X[:, j], 0.0))
        return X

    def fit(self, X: np.ndarray, y: Any = None) -> FeatureScaler:
        Z = self._log(X)
        low, high = self.clip_quantiles
        self.lower_ = np.nanquantile(Z, low, axis=0)
        self.upper_ = np.nanquantile(Z, high, axis=0)
        Z = np.clip(Z, self.lower_, self.upper_)
        self.center_ = np.nanmedian(Z, axis=0)
        q25, q75 = np.nanquantile(Z, [0.25, 0.75], axis=0)
        iqr_sigma = (q75 - q25) / IQR_PER_SIGMA
        std = np.nanstd(Z, axis=0)
        # The IQR (as a normal-equivalent sigma) resists outliers, but on a discrete feature whose
        # values mostly coincide (e.g. 5 of 6 categories bought) it is tiny and would blow rare
        # values up into a segment of their own; the winsorised std is the floor. A constant
        # column keeps scale 1 and contributes nothing.
        scale = np.maximum(iqr_sigma, std)
        scale = np.where(scale > 0, scale, 1.0)
        self.scale_ = scale
        self.constant_ = std == 0
        self.n_features_in_ = Z.shape[1]
        return self

    def clipped_counts(self, X: np.ndarray) -> np.ndarray:
        """How many values per column winsorising changes."""
        return self.transform_counting(X)[1]

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.transform_counting(X)[0]

    def transform_counting(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The transform and, per column, how many values winsorising changed (one pass).

        Row blocks of ``CHUNK_ROWS`` keep each step's operands in cache (1M x 14 at once is
        seven passes over 112 MB); every step is elementwise, so the bits are the same.
        """
        self._check()
        X = np.asarray(X)
        Z = np.empty(X.shape, dtype=np.float64)
        clipped = np.zeros(X.shape[1], dtype=np.int64)
        # Clipped to finite bounds, a value is finite or NaN: only NaN needs replacing then.
        finite = bool(np.isfinite(self.lower_).all() and np.isfinite(self.upper_).all())
        for start in range(0, len(X), CHUNK_ROWS):
            z = Z[start : start + CHUNK_ROWS]
            z[...] = X[start : start + CHUNK_ROWS]
            for j in self.log_columns:
                np.log1p(np.maximum(z[:, j], 0.0), out=z[:, j])
            clipped += ((self.lower_ > z) | (self.upper_ < z)).sum(axis=0)
            np.clip(z, self.lower_, self.upper_, out=z)
            z -= self.center_
            z /= self.scale_
            if finite:
                z[np.isnan(z)] = 0.0
            else:
                np.nan_to_num(z, nan=0.0, copy=False)
        return Z, clipped

    def _check(self) -> None:
        if not hasattr(self, "scale_"):
            raise NotFittedError("FeatureScaler is not fitted yet; call fit first.")

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "log_columns": [int(j) for j in self.log_columns],
            "clip_quantiles": list(self.clip_quantiles),
            "lower": self.lower_.tolist(),
            "upper": self.upper_.tolist(),
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        scaler = cls(
            log_columns=tuple(data["log_columns"]),
            clip_quantiles=(data["clip_quantiles"][0], data["clip_quantiles"][1]),
        )
        scaler.lower_ = np.asarray(data["lower"], dtype=np.float64)
        scaler.upper_ = np.asarray(data["upper"], dtype=np.float64)
        scaler.center_ = np.asarray(data["center"], dtype=np.float64)
        scaler.scale_ = np.asarray(data["scale"], dtype=np.float64)
        scaler.constant_ = np.zeros(len(scaler.scale_), dtype=bool)
        scaler.n_features_in_ = len(scaler.scale_)
        return scaler


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center and the Euclidean distance to it, computed in chunks."""
    labels = np.empty(len(X), dtype=np.int32)
    dist = np.empty(len(X), dtype=np.float64)
    for start in range(0, len(X), CHUNK_ROWS):
        block = X[start : start + CHUNK_ROWS]
        d2 = np.stack([((block - c) ** 2).sum(axis=1) for c in centers], axis=1)
        idx = d2.argmin(axis=1)
        labels[start : start + len(block)] = idx
        dist[start : start + len(block)] = np.sqrt(d2[np.arange(len(block)), idx])
    return labels, dist


def order_segments(centers: np.ndarray, counts: np.ndarray, money: np.ndarray) -> list[int]:
    """Positions of ``centers`` in segment order: revenue desc, then size desc, then the centre's
    coordinates (a total order, so labels never depend on k-means' arbitrary numbering)."""
    return sorted(range(len(centers)), key=lambda j: (-money[j], -counts[j], tuple(centers[j])))


class SegmentModel(ClusterMixin, BaseEstimator):
    """k-means segmentation with automatic k, sample-based fitting and revenue ordering.

    Args:
        n_segments: fixed k, or None to choose k in ``k_range`` by silhouette.
        k_range: inclusive range of k tried when choosing.
        random_state: seed for every random step (sampling, k-means initialisation).
        selection_sample: rows used to score each candidate k.
        silhouette_sample: rows of that sample used for the silhouette score.
        fit_sample: above this many rows, k-means is fitted on a sample and all rows assigned.
        n_init: k-means restarts.
    """

    def __init__(
        self,
        *,
        n_segments: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        random_state: int = 42,
        selection_sample: int = 20_000,
        silhouette_sample: int = 5_000,
        fit_sample: int = 200_000,
        n_init: int = 4,
    ) -> None:
        self.n_segments = n_segments
        self.k_range = k_range
        self.random_state = random_state
        self.selection_sample = selection_sample
        self.silhouette_sample = silhouette_sample
        self.fit_sample = fit_sample
        self.n_init = n_init

    def fit(
        self, X: np.ndarray, y: Any = None, *, revenue: np.ndarray | None = None
    ) -> SegmentModel:
        """Fit on scaled features ``X``; ``revenue`` (per row) orders the segments."""
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        sel = sample_indices(n, self.selection_sample, seed=self.random_state)
        self.k_scores_, k, start = self.warm_start(X[sel])
        # The restarts ran on the selection sample; the final fit refines the best of them on a
        # larger sample (all rows up to fit_sample), which converges in a few iterations.
        fit_idx = sample_indices(n, self.fit_sample, seed=self.random_state + 1)
        km = KMeans(n_clusters=k, init=start, n_init=1, random_state=self.random_state)
        km.fit(X[fit_idx])
        raw_labels, distances = nearest(X, km.cluster_centers_)
        counts = np.bincount(raw_labels, minlength=k).astype(np.float64)
        money = (
            np.bincount(raw_labels, weights=revenue, minlength=k) if revenue is not None else counts
        )
        centers = km.cluster_centers_
        order = order_segments(centers, counts, money)
        self.cluster_centers_ = centers[order]
        self.n_segments_ = k
        self.inertia_ = float(km.inertia_)
        self.n_iter_ = int(km.n_iter_)
        # Renumbered rather than assigned again: the same nearest centre and distance (a row
        # exactly as far from two centres keeps the one k-means numbered first).
        position = np.empty(k, dtype=np.int32)
        position[order] = np.arange(k, dtype=np.int32)
        self.labels_, self.distances_ = position[raw_labels], distances
        return self

    def warm_start(self, X_sel: np.ndarray) -> tuple[list[KScore], int, np.ndarray]:
        """Scores of the candidate k, the k used and its centres, from the selection sample.

        Every engine calls this on the same deterministic sample, so the chosen k and the
        starting centres do not depend on where the final fit runs.
        """
        if self.n_segments is not None:
            k = int(self.n_segments)
            coarse = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
            return [], k, coarse.fit(X_sel).cluster_centers_
        low, high = self.k_range
        ks = [k for k in range(low, high + 1) if k < len(X_sel)]
        return choose_k(
            X_sel,
            ks,
            seed=self.random_state,
            silhouette_n=self.silhouette_sample,
            n_init=self.n_init,
        )

    def _check(self) -> None:
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("SegmentModel is not fitted yet; call fit first.")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0-based segment index (segment id minus one) of the nearest centre."""
        self._check()
        return nearest(np.asarray(X, dtype=np.float64), self.cluster_centers_)[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Distances to every centre."""
        self._check()
        X = np.asarray(X, dtype=np.float64)
        return np.stack(
            [np.sqrt(((X - c) ** 2).sum(axis=1)) for c in self.cluster_centers_], axis=1
        )

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "n_segments": self.n_segments_,
            "random_state": self.random_state,
            "centers": self.cluster_centers_.tolist(),
            "inertia_sample": self.inertia_,
            "k_scores": [s.to_dict() for s in self.k_scores_],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentModel:
        model = cls(n_segments=data["n_segments"], random_state=data["random_state"])
        model.cluster_centers_ = np.asarray(data["centers"], dtype=np.float64)
        model.n_segments_ = int(data["n_segments"])
        model.inertia_ = float(data.get("inertia_sample", 0.0))
        model.k_scores_ = [KScore(**s) for s in data.get("k_scores", [])]
        return model
