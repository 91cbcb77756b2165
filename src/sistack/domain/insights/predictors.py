"""The response model's parts held as plain numbers, predicting with NumPy alone.

Imputation medians, scaler and coefficients (``LogisticScorer``), every tree's node arrays
(``TreeEnsembleScorer``) and the calibration map (``Calibrator``): each rebuilds from strict
JSON without scikit-learn or pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline

ISOTONIC_MIN_ROWS = 1000
_PREDICT_CHUNK = 100_000  # rows x trees evaluated at once by the tree predictor (cache-sized)


def _clean(X: np.ndarray) -> np.ndarray:
    """2-D float64 copy with every non-finite value (inf too) treated as missing."""
    arr = np.array(X, dtype=np.float64, ndmin=2)
    if arr.ndim != 2:
        raise ValueError("X must be a 2-D array (customers x features)")
    arr[~np.isfinite(arr)] = np.nan
    return arr


@dataclass(frozen=True, eq=False)
class LogisticScorer:
    """Median imputation -> standardisation -> linear log-odds."""

    medians: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def raw(self, X: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(X), self.medians, X)
        # A row-wise sum rather than BLAS: each row's score cannot depend on how many rows
        # are scored together or on the BLAS build.
        return (((filled - self.mean) / self.scale) * self.coef).sum(axis=1) + self.intercept

    def to_dict(self) -> dict[str, Any]:
        return {
            "imputer_median": self.medians.tolist(),
            "scaler_mean": self.mean.tolist(),
            "scaler_scale": self.scale.tolist(),
            "coefficients": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], n_features: int) -> LogisticScorer:
        arrays = [
            np.asarray(data[k], dtype=np.float64)
            for k in ("imputer_median", "scaler_mean", "scaler_scale", "coefficients")
        ]
        if any(a.shape != (n_features,) for a in arrays):
            raise ValueError(f"logistic parameters must have {n_features} values each")
        medians, mean, scale, coef = arrays
        return cls(medians, mean, scale, coef, intercept=float(data["intercept"]))

    @classmethod
    def from_pipeline(cls, pipe: Pipeline) -> LogisticScorer:
        imputer, scaler, logistic = (step for _, step in pipe.steps)
        # An all-missing column is imputed with 0 (keep_empty_features=True).
        medians = np.nan_to_num(np.asarray(imputer.statistics_, dtype=np.float64), nan=0.0)
        return cls(
            medians=medians,
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=np.asarray(scaler.scale_, dtype=np.float64),
            coef=np.asarray(logistic.coef_[0], dtype=np.float64),
            intercept=float(logistic.intercept_[0]),
        )


_TREE_FIELDS = (
    "value",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
    "left",
    "right",
    "is_leaf",
)


@dataclass(frozen=True, eq=False)
class TreeEnsembleScorer:
    """Baseline + sum of regression trees, the trees' nodes concatenated into flat arrays.

    scikit-learn's rule - go left when ``x <= num_threshold``, a missing value goes left when
    ``missing_go_to_left`` - is evaluated with one comparison: each node reads column
    ``f`` of ``[X with missing = +inf, X with missing = -inf]`` (``f + n_features`` when
    missing goes left) and goes right when ``x > threshold``, thresholds clipped to finite
    values. Leaves point to themselves, so a tree of depth d is finished after d steps; trees
    are evaluated deepest first and each step only touches the trees not yet finished.
    """

    baseline: float
    trees: tuple[dict[str, list[Any]], ...]
    n_features: int
    roots: np.ndarray  # root node per tree, deepest tree first
    depths: np.ndarray  # depth per tree, same order (descending)
    column: np.ndarray  # per node
    threshold: np.ndarray  # per node
    children: np.ndarray  # [2 * node] = left, [2 * node + 1] = right
    value: np.ndarray  # per node (leaf value; 0 for inner nodes)

    def raw(self, X: np.ndarray) -> np.ndarray:
        n_trees = len(self.roots)
        out = np.empty(len(X), dtype=np.float64)
        # Trees deeper than d, for each step d (trees are stored deepest first).
        active = [int(np.searchsorted(-self.depths, -d)) for d in range(int(self.depths[0]))]
        step = max(1, _PREDICT_CHUNK // n_trees)
        for start in range(0, len(X), step):
            block = X[start : start + step]
            m = len(block)
            missing = np.isnan(block)
            # Rows of ``wide``: the features with missing as +inf (goes right), then as -inf.
            wide = np.concatenate(
                [np.where(missing, np.inf, block).T, np.where(missing, -np.inf, block).T]
            ).ravel()
            offset = self.column * m
            cols = np.arange(m)
            node = np.repeat(self.roots[:, None], m, axis=1)  # (trees, rows)
            index = np.empty((n_trees, m), dtype=np.intp)
            x = np.empty((n_trees, m), dtype=np.float64)
            threshold = np.empty((n_trees, m), dtype=np.float64)
            right = np.empty((n_trees, m), dtype=bool)
            for k in active:  # preallocated buffers: this loop dominates scoring time
                np.take(offset, node[:k], out=index[:k])
                index[:k] += cols
                np.take(wide, index[:k], out=x[:k])
                np.take(self.threshold, node[:k], out=threshold[:k])
                np.greater(x[:k], threshold[:k], out=right[:k])
                np.multiply(node[:k], 2, out=index[:k])
                index[:k] += right[:k]
                np.take(self.children, index[:k], out=node[:k])
            out[start : start + step] = self.baseline + self.value[node].sum(axis=0)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_prediction": self.baseline, "trees": [dict(t) for t in self.trees]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], n_features: int) -> TreeEnsembleScorer:
        trees: list[dict[str, list[Any]]] = []
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("column", "thr", "kids", "value")}
        roots: list[int] = []
        depths: list[int] = []
        offset = 0
        big = np.finfo(np.float64).max
        for tree in data["trees"]:
            t = {k: list(tree[k]) for k in _TREE_FIELDS}
            n = len(t["value"])
            if n == 0 or any(len(t[k]) != n for k in _TREE_FIELDS):
                raise ValueError("every tree needs the same number of entries in each field")
            leaf = np.asarray(t["is_leaf"], dtype=bool)
            left = np.asarray(t["left"], dtype=np.int64)
            right = np.asarray(t["right"], dtype=np.int64)
            feature = np.asarray(t["feature_idx"], dtype=np.int64)
            inner = ~leaf
            if (
                (np.minimum(left, right)[inner] < 0).any()
                or (np.maximum(left, right)[inner] >= n).any()
                or (feature[inner] < 0).any()
                or (feature[inner] >= n_features).any()
            ):
                raise ValueError("tree node points outside the tree or the feature list")
            depths.append(_tree_depth(left, right, leaf))
            own = np.arange(n)
            thresholds = np.array(
                [math.inf if v is None else float(v) for v in t["num_threshold"]], np.float64
            )
            go_left_missing = np.asarray(t["missing_go_to_left"], dtype=bool)
            roots.append(offset)
            parts["column"].append(np.where(leaf, 0, feature + n_features * go_left_missing))
            parts["thr"].append(np.clip(thresholds, -big, big))
            kids = np.column_stack([np.where(leaf, own, left), np.where(leaf, own, right)])
            parts["kids"].append(kids.ravel() + offset)
            parts["value"].append(np.where(leaf, np.asarray(t["value"], dtype=np.float64), 0.0))
            trees.append(t)
            offset += n
        if not trees:
            raise ValueError("a gradient-boosting model needs at least one tree")
        order = np.argsort(-np.asarray(depths), kind="stable")
        return cls(
            baseline=float(data["baseline_prediction"]),
            trees=tuple(trees),
            n_features=n_features,
            roots=np.asarray(roots, dtype=np.intp)[order],
            depths=np.asarray(depths, dtype=np.intp)[order],
            column=np.concatenate(parts["column"]).astype(np.intp),
            threshold=np.concatenate(parts["thr"]),
            children=np.concatenate(parts["kids"]).astype(np.intp),
            value=np.concatenate(parts["value"]),
        )

    @classmethod
    def from_estimator(cls, model: HistGradientBoostingClassifier) -> TreeEnsembleScorer:
        trees = []
        for (predictor,) in model._predictors:  # binary: one tree per iteration
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported by the exported model")
            tree = {k: nodes[k].tolist() for k in _TREE_FIELDS}
            # +inf ("everything not missing goes left") is not valid JSON: store None instead.
            tree["num_threshold"] = [
                None if math.isinf(v) and v > 0 else v for v in tree["num_threshold"]
            ]
            trees.append(tree)
        baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        n_features = int(model.n_features_in_)
        return cls.from_dict({"baseline_prediction": baseline, "trees": trees}, n_features)


def _tree_depth(left: np.ndarray, right: np.ndarray, leaf: np.ndarray) -> int:
    """Longest root-to-leaf path; refuses cycles and unreachable-leaf structures."""
    depth, stack, seen = 0, [(0, 0)], np.zeros(len(leaf), dtype=bool)
    while stack:
        node, d = stack.pop()
        if seen[node]:
            raise ValueError("tree nodes must form a tree (a node is reached twice)")
        seen[node] = True
        if leaf[node]:
            depth = max(depth, d)
        else:
            stack.extend([(int(left[node]), d + 1), (int(right[node]), d + 1)])
    return depth


@dataclass(frozen=True, eq=False)
class Calibrator:
    """Maps raw log-odds to calibrated probabilities.

    ``isotonic``: piecewise-linear interpolation through (``x``, ``y``) on the uncalibrated
    probability scale, clipped at both ends (scikit-learn's ``out_of_bounds="clip"``).
    ``platt``: ``sigmoid(slope * raw + intercept)``.
    """

    method: str
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(expit(raw), self.x, self.y)
        return np.asarray(expit(self.slope * raw + self.intercept), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x.tolist(), "y": self.y.tolist()}
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        if data["method"] == "isotonic":
            x = np.asarray(data["x"], dtype=np.float64)
            y = np.asarray(data["y"], dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or len(x) == 0 or (np.diff(x) < 0).any():
                raise ValueError("isotonic calibrator needs matching, increasing x and y")
            return cls("isotonic", x=x, y=y)
        if data["method"] == "platt":
            return cls("platt", slope=float(data["slope"]), intercept=float(data["intercept"]))
        raise ValueError(f"unknown calibration method {data['method']!r}")

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Isotonic regression from ``ISOTONIC_MIN_ROWS`` rows on, Platt scaling below."""
        if len(y) >= ISOTONIC_MIN_ROWS:
            iso = IsotonicRegression(out_of_bounds="clip").fit(expit(raw), y)
            return cls(
                "isotonic",
                x=np.asarray(iso.X_thresholds_, dtype=np.float64),
                y=np.asarray(iso.y_thresholds_, dtype=np.float64),
            )
        # Platt's smoothed targets keep the coefficients finite on separable data.
        n_pos = float(y.sum())
        target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (len(y) - n_pos + 2.0))

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = w[0] * raw + w[1]
            resid = expit(z) - target
            value = float(np.sum(np.logaddexp(0.0, z) - target * z))
            return value, np.array([np.sum(resid * raw), np.sum(resid)])

        res = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        return cls("platt", slope=float(res.x[0]), intercept=float(res.x[1]))
