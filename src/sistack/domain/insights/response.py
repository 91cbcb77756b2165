"""Promotion response likelihood: observed rates with Wilson intervals and a calibrated model.

Two kinds of evidence, never mixed up:

* **Observed rates** (``wilson_interval``, ``campaign_rates``, the observed part of
  ``segment_response``): counts of customers who accepted, with a Wilson score interval. These
  need no model and exist for any data with 0/1 acceptance columns.
* **Modelled likelihood** (``fit_response_model``): only when a response label exists. Two
  candidates - a regularised logistic regression on imputed, standardised inputs and a small
  histogram gradient-boosting model - are compared by stratified k-fold ROC AUC on a
  deterministic sample of at most ``max_rows`` labelled customers; the better mean AUC wins and a
  tie goes to the logistic model (simpler, explainable). The winner's out-of-fold scores are
  calibrated (isotonic regression, or Platt scaling below ``ISOTONIC_MIN_ROWS`` rows), so the
  probabilities it reports mean what they say. The Brier score and calibration table are
  computed on the calibrated out-of-fold scores with the calibrator fitted on the same scores,
  so they describe the calibration fit rather than a fully independent test.

The fitted model is held as plain numbers (imputation medians, scaler, coefficients; or every
tree's node arrays) and predicts with NumPy alone, so ``ResponseModel.to_dict()`` is strict JSON
and ``ResponseModel.from_dict`` rebuilds the predictor without scikit-learn or pickle.

This module is over the usual one-concept length budget: it was written as one unit. Its three
sections (observed rates; the exported predictor parts; fitting) are the places to split it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sistack.domain.segmentation.selection import sample_indices

LOGISTIC = "logistic"
GRADIENT_BOOSTING = "gradient_boosting"
CANDIDATES = (LOGISTIC, GRADIENT_BOOSTING)
MIN_LABELLED = 50
ISOTONIC_MIN_ROWS = 1000
CALIBRATION_BINS = 10
PERMUTATION_REPEATS = 3
PERMUTATION_ROWS = 3_000
ANY_CAMPAIGN = "any_campaign"
FORMAT = "sistack.response_model"
FORMAT_VERSION = 1
# Modest and fixed: 100 rounds without early stopping keeps the fit deterministic (no random
# validation split) and a 50,000-row comparison within a few seconds.
GBM_SETTINGS: dict[str, Any] = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}
FALLBACK = "observed campaign acceptance rates are shown instead."
NO_LABEL = f"The data has no response label; {FALLBACK}"
_SCORE_ROWS = 65_536  # rows cleaned and scored at once
_PREDICT_CHUNK = 100_000  # rows x trees evaluated at once by the tree predictor (cache-sized)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- observed rates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RateInterval:
    """A rate ``successes / trials`` with its Wilson score interval; all nan when trials == 0."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an undefined rate (no trials) becomes ``None``, never a made-up number."""
        return {
            "successes": self.successes,
            "trials": self.trials,
            "rate": _finite_or_none(self.rate),
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
        }


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> RateInterval:
    """Wilson score interval for a binomial proportion.

    Chosen over the normal approximation because it stays inside [0, 1] and behaves at 0 and
    at ``trials`` successes, which are common for small segments and rare campaigns.

    Args:
        successes: number of successes (0..trials).
        trials: number of trials; 0 gives rate, low and high = nan.
        confidence: two-sided confidence level in (0, 1).

    Raises:
        ValueError: counts out of range or confidence outside (0, 1).
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if trials == 0:
        return RateInterval(int(successes), 0, math.nan, math.nan, math.nan)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    z2n = z * z / trials
    denom = 1.0 + z2n
    center = (p + z2n / 2.0) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials)) / denom
    # At 0 and at ``trials`` successes the exact bound is 0 or 1; skip the rounding residue.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return RateInterval(int(successes), int(trials), p, low, high)


def _as_labels(values: np.ndarray, what: str) -> np.ndarray:
    """Float array of 0, 1 or nan (unknown)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    known = arr[~np.isnan(arr)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise ValueError(f"{what} must be 0, 1 or missing")
    return arr


@dataclass(frozen=True)
class SegmentResponse:
    """Expected (model) and observed (label) response of one segment.

    ``observed`` counts responders among customers with a known label (``successes`` /
    ``trials``); it is ``None`` when no label was given.
    """

    segment: int
    customers: int
    expected_rate: float
    expected_responders: float
    observed: RateInterval | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["observed"] = None if self.observed is None else self.observed.to_dict()
        return data


def segment_response(
    prob: np.ndarray, segment: np.ndarray, y: np.ndarray | None
) -> tuple[SegmentResponse, ...]:
    """Per segment id (ascending): mean and sum of response probability, observed rate.

    Args:
        prob: calibrated response probability per customer.
        segment: segment id per customer.
        y: observed 0/1 response per customer (nan = unknown, ignored), or ``None``.
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    seg = np.asarray(segment).ravel()
    labels = None if y is None else _as_labels(y, "response labels")
    if len(seg) != len(p) or (labels is not None and len(labels) != len(p)):
        raise ValueError("prob, segment and y must have one value per customer")
    out = []
    for s in np.unique(seg):
        mask = seg == s
        observed = None
        if labels is not None:
            known = labels[mask]
            known = known[~np.isnan(known)]
            observed = wilson_interval(int(known.sum()), len(known))
        out.append(
            SegmentResponse(
                segment=int(s),
                customers=int(mask.sum()),
                expected_rate=float(p[mask].mean()),
                expected_responders=float(p[mask].sum()),
                observed=observed,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class CampaignRate:
    """Acceptance of one campaign in one segment.

    ``interval.successes`` is the number of acceptances and ``interval.trials`` the number of
    customers whose value is known; ``customers`` counts every customer of the segment.
    """

    segment: int
    campaign: str
    customers: int
    interval: RateInterval

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = self.interval.to_dict()
        return data


def campaign_rates(
    accepted: Mapping[str, np.ndarray], segment: np.ndarray
) -> tuple[CampaignRate, ...]:
    """Acceptance rate with Wilson interval per segment (ascending) and campaign.

    Campaigns come in the mapping's order, followed by ``ANY_CAMPAIGN``: a customer accepted
    "any" campaign if any value is 1, did not if every value is 0, and is unknown otherwise.

    Args:
        accepted: campaign name -> 0/1 per customer (nan = unknown).
        segment: segment id per customer.
    """
    if not accepted:
        return ()
    if ANY_CAMPAIGN in accepted:
        raise ValueError(f"'{ANY_CAMPAIGN}' is reserved for the any-campaign rate")
    seg = np.asarray(segment).ravel()
    columns = {name: _as_labels(v, f"campaign '{name}'") for name, v in accepted.items()}
    if any(len(v) != len(seg) for v in columns.values()):
        raise ValueError("every campaign column needs one value per customer")
    stacked = np.vstack(list(columns.values()))
    any_yes = (stacked == 1.0).any(axis=0)
    all_known = ~np.isnan(stacked).any(axis=0)
    columns[ANY_CAMPAIGN] = np.where(any_yes, 1.0, np.where(all_known, 0.0, np.nan))
    out = []
    for s in np.unique(seg):
        mask = seg == s
        for name, values in columns.items():
            known = values[mask]
            known = known[~np.isnan(known)]
            out.append(
                CampaignRate(
                    segment=int(s),
                    campaign=name,
                    customers=int(mask.sum()),
                    interval=wilson_interval(int(known.sum()), len(known)),
                )
            )
    return tuple(out)


# --- model parts held as plain numbers --------------------------------------------------------


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


# --- the fitted model -------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateScore:
    """Cross-validated ROC AUC of one candidate (std over folds, ddof=0)."""

    name: str
    auc_mean: float
    auc_std: float
    fold_auc: tuple[float, ...]
    chosen: bool


@dataclass(frozen=True)
class CalibrationBin:
    """One quantile bin of calibrated out-of-fold probabilities."""

    mean_predicted: float
    observed_rate: float
    count: int


@dataclass(frozen=True)
class Driver:
    """How much a feature moves the response model, and in which direction (+1, -1 or 0).

    ``importance`` is the absolute standardised coefficient (logistic) or the mean drop in ROC
    AUC when the feature is permuted on a held-out fold (gradient boosting; may be slightly
    negative for a useless feature).
    """

    feature: str
    importance: float
    direction: int


DRIVER_MEASURES = {
    LOGISTIC: "absolute_standardised_coefficient",
    GRADIENT_BOOSTING: "permutation_auc_drop",
}


@dataclass(frozen=True, eq=False)
class ResponseModel:
    """A calibrated response model: its report and its parameters as plain numbers.

    ``estimator`` is the scikit-learn object fitted in this process, kept for inspection; it is
    never exported and is ``None`` after ``from_dict``. Predictions always go through the
    exported numbers, so a rebuilt model predicts exactly what the fitted one did.
    """

    kind: str
    feature_names: tuple[str, ...]
    seed: int
    folds: int
    labelled_rows: int
    rows_used: int
    base_rate: float
    candidates: tuple[CandidateScore, ...]
    brier: float
    brier_base_rate: float
    calibration: tuple[CalibrationBin, ...]
    drivers: tuple[Driver, ...]
    scorer: LogisticScorer | TreeEnsembleScorer = field(repr=False)
    calibrator: Calibrator = field(repr=False)
    estimator: Any = field(default=None, repr=False)

    @property
    def driver_measure(self) -> str:
        return DRIVER_MEASURES[self.kind]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds of response per row of ``X`` (nan/inf = missing)."""
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != len(self.feature_names):
            raise ValueError(f"X needs {len(self.feature_names)} columns: {self.feature_names}")
        out = np.empty(len(data), dtype=np.float64)
        for start in range(0, len(data), _SCORE_ROWS):  # bounded memory for 10M customers
            out[start : start + _SCORE_ROWS] = self.scorer.raw(
                _clean(data[start : start + _SCORE_ROWS])
            )
        return out

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw log-odds scores."""
        return self.calibrator(np.asarray(raw, dtype=np.float64))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of response per row of ``X`` (NumPy only)."""
        return self.calibrate(self.decision_function(X))

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready plain types."""
        return {
            "model": self.kind,
            "features": list(self.feature_names),
            "seed": self.seed,
            "folds": self.folds,
            "labelled_rows": self.labelled_rows,
            "rows_used": self.rows_used,
            "base_rate": self.base_rate,
            "candidates": [{**asdict(c), "fold_auc": list(c.fold_auc)} for c in self.candidates],
            "brier": self.brier,
            "brier_base_rate": self.brier_base_rate,
            "calibration_method": self.calibrator.method,
            "calibration": [asdict(b) for b in self.calibration],
            "driver_measure": self.driver_measure,
            "drivers": [asdict(d) for d in self.drivers],
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to predict and report, as strict JSON (no pickle, no nan/inf)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "model": self.scorer.to_dict(),
            "calibrator": self.calibrator.to_dict(),
            "report": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResponseModel:
        """Rebuild from ``to_dict()`` output; needs no scikit-learn object."""
        if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} version {FORMAT_VERSION} document")
        kind, names = data["kind"], tuple(str(n) for n in data["feature_names"])
        scorer: LogisticScorer | TreeEnsembleScorer
        if kind == LOGISTIC:
            scorer = LogisticScorer.from_dict(data["model"], len(names))
        elif kind == GRADIENT_BOOSTING:
            scorer = TreeEnsembleScorer.from_dict(data["model"], len(names))
        else:
            raise ValueError(f"unknown response model kind {kind!r}")
        rep = data["report"]
        return cls(
            kind=kind,
            feature_names=names,
            seed=int(rep["seed"]),
            folds=int(rep["folds"]),
            labelled_rows=int(rep["labelled_rows"]),
            rows_used=int(rep["rows_used"]),
            base_rate=float(rep["base_rate"]),
            candidates=tuple(
                CandidateScore(**{**c, "fold_auc": tuple(c["fold_auc"])}) for c in rep["candidates"]
            ),
            brier=float(rep["brier"]),
            brier_base_rate=float(rep["brier_base_rate"]),
            calibration=tuple(CalibrationBin(**b) for b in rep["calibration"]),
            drivers=tuple(Driver(**d) for d in rep["drivers"]),
            scorer=scorer,
            calibrator=Calibrator.from_dict(data["calibrator"]),
        )


# --- fitting ----------------------------------------------------------------------------------


def _estimator(name: str, seed: int) -> Pipeline | HistGradientBoostingClassifier:
    if name == LOGISTIC:
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=1.0, max_iter=1000),
        )
    return HistGradientBoostingClassifier(**GBM_SETTINGS, random_state=seed)


def choose_candidate(auc_means: Mapping[str, float]) -> str:
    """The candidate with the highest mean AUC; a tie goes to the logistic model (simpler)."""
    return max(auc_means, key=lambda name: (auc_means[name], name == LOGISTIC))


def _labelled_sample(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    known = np.flatnonzero(~np.isnan(y))
    return known[sample_indices(len(known), max_rows, seed=seed)]


def _unfit_reason(y: np.ndarray | None, *, folds: int) -> str | None:
    """Why no model can be fitted on these labels (``None`` when one can)."""
    if y is None:
        return NO_LABEL
    known = y[~np.isnan(y)]
    if len(known) == 0:
        return NO_LABEL
    if not np.isin(known, (0.0, 1.0)).all():
        return f"The response label has values other than 0 and 1; {FALLBACK}"
    positives = int(known.sum())
    negatives = len(known) - positives
    if positives == 0 or negatives == 0:
        value = "1 (responded)" if negatives == 0 else "0 (did not respond)"
        return (
            f"Every labelled customer has the same response, {value}; a response model needs "
            f"responders and non-responders, so {FALLBACK}"
        )
    if len(known) < MIN_LABELLED:
        return (
            f"Only {len(known)} customers have a known response (at least {MIN_LABELLED} are "
            f"needed to model it); {FALLBACK}"
        )
    if min(positives, negatives) < folds:
        who = "responded" if positives < negatives else "did not respond"
        return (
            f"Only {min(positives, negatives)} labelled customers {who} (at least {folds} are "
            f"needed for {folds}-fold cross-validation); {FALLBACK}"
        )
    return None


def _check_inputs(
    X: np.ndarray,
    y: np.ndarray | None,
    feature_names: Sequence[str],
    *,
    folds: int,
    max_rows: int,
    candidates: Sequence[str],
) -> tuple[np.ndarray, np.ndarray | None]:
    data = np.asarray(X, dtype=np.float64)  # cleaned after sampling: no copy of 10M rows
    if data.ndim != 2:
        raise ValueError("X must be a 2-D array (customers x features)")
    labels = None if y is None else np.asarray(y, dtype=np.float64).ravel()
    if labels is not None and len(labels) != len(data):
        raise ValueError(f"X has {len(data)} rows but y has {len(labels)}")
    if data.shape[1] != len(feature_names):
        raise ValueError(f"X has {data.shape[1]} columns but {len(feature_names)} feature names")
    if folds < 2:
        raise ValueError("folds must be at least 2")
    if max_rows < MIN_LABELLED:
        raise ValueError(f"max_rows must be at least {MIN_LABELLED}")
    unknown = set(candidates) - set(CANDIDATES)
    if not candidates or unknown:
        raise ValueError(f"candidates must be a non-empty subset of {CANDIDATES}")
    return data, labels


def maybe_fit_response_model(
    X: np.ndarray,
    y: np.ndarray | None,
    feature_names: Sequence[str],
    *,
    seed: int,
    folds: int = 5,
    max_rows: int = 50_000,
    candidates: Sequence[str] = CANDIDATES,
) -> tuple[ResponseModel | None, str | None]:
    """``(model, None)``, or ``(None, reason)`` when the labels cannot support a model.

    The reason is a sentence for the user (no label, one class, too few labelled rows, too few
    responders for the folds); no number is invented in its place. Arguments as in
    ``fit_response_model``; ``y`` may be ``None`` (no label column).
    """
    data, labels = _check_inputs(
        X, y, feature_names, folds=folds, max_rows=max_rows, candidates=candidates
    )
    reason = _unfit_reason(labels, folds=folds)
    if reason is None and labels is not None:
        # The sample, not the whole label, has to carry enough of each class.
        reason = _unfit_reason(labels[_labelled_sample(labels, max_rows, seed)], folds=folds)
    if reason is not None:
        return None, reason
    assert labels is not None
    return _fit(
        data,
        labels,
        list(feature_names),
        seed=seed,
        folds=folds,
        max_rows=max_rows,
        candidates=candidates,
    ), None


def fit_response_model(
    X: np.ndarray,
    y: np.ndarray,
    feature_names: list[str],
    *,
    seed: int,
    folds: int = 5,
    max_rows: int = 50_000,
    candidates: Sequence[str] = CANDIDATES,
) -> ResponseModel:
    """Compare the candidates by cross-validated ROC AUC, refit the winner, calibrate it.

    Args:
        X: customers x features; nan/inf are missing (imputed with the median for the
            logistic model, routed natively by gradient boosting).
        y: 0/1 response per customer; nan = unknown, left out of fitting.
        feature_names: one name per column of ``X``.
        seed: drives the row sample, the fold split, the boosting model and the permutations.
        folds: number of stratified cross-validation folds.
        max_rows: at most this many labelled customers (a deterministic sample) are used.
        candidates: model kinds to compare, a subset of ``CANDIDATES``.

    Raises:
        ValueError: inconsistent inputs, or labels that cannot support a model (use
            ``maybe_fit_response_model`` to get the reason as a message instead).
    """
    data, labels = _check_inputs(
        X, y, feature_names, folds=folds, max_rows=max_rows, candidates=candidates
    )
    assert labels is not None
    return _fit(
        data,
        labels,
        feature_names,
        seed=seed,
        folds=folds,
        max_rows=max_rows,
        candidates=candidates,
    )


def _fit(
    data: np.ndarray,
    labels: np.ndarray,
    feature_names: list[str],
    *,
    seed: int,
    folds: int,
    max_rows: int,
    candidates: Sequence[str],
) -> ResponseModel:
    rows = _labelled_sample(labels, max_rows, seed)
    reason = _unfit_reason(labels[rows], folds=folds)
    if reason is not None:
        raise ValueError(reason)
    # One OpenMP/BLAS thread: the numbers cannot depend on the machine's core count, and the
    # boosting fits do not collapse when other processes share the cores (measured on 2 busy
    # cores: 2 OpenMP threads were 5-10x slower than 1).
    with threadpool_limits(limits=1):
        model = _fit_sample(
            _clean(data[rows]),
            labels[rows].astype(np.int64),
            feature_names,
            labelled_rows=int((~np.isnan(labels)).sum()),
            seed=seed,
            folds=folds,
            candidates=candidates,
        )
    return model


def _fit_sample(
    Xs: np.ndarray,
    ys: np.ndarray,
    feature_names: list[str],
    *,
    labelled_rows: int,
    seed: int,
    folds: int,
    candidates: Sequence[str],
) -> ResponseModel:
    """Cross-validate the candidates on the sample, refit and calibrate the winner."""
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(Xs, ys))
    oof: dict[str, np.ndarray] = {}
    fold_auc: dict[str, list[float]] = {}
    first_fold_model: dict[str, Any] = {}
    for name in candidates:
        oof[name] = np.empty(len(ys), dtype=np.float64)
        fold_auc[name] = []
        for i, (train, test) in enumerate(splits):
            est = _estimator(name, seed).fit(Xs[train], ys[train])
            oof[name][test] = est.decision_function(Xs[test])
            fold_auc[name].append(float(roc_auc_score(ys[test], oof[name][test])))
            if i == 0:
                first_fold_model[name] = est
    means = {name: float(np.mean(fold_auc[name])) for name in candidates}
    kind = choose_candidate(means)
    scores = tuple(
        CandidateScore(n, means[n], float(np.std(fold_auc[n])), tuple(fold_auc[n]), n == kind)
        for n in candidates
    )

    final = _estimator(kind, seed).fit(Xs, ys)
    scorer: LogisticScorer | TreeEnsembleScorer
    if kind == LOGISTIC:
        scorer = LogisticScorer.from_pipeline(final)
        importance, direction = np.abs(scorer.coef), np.sign(scorer.coef).astype(int)
    else:
        scorer = TreeEnsembleScorer.from_estimator(final)
        # Permutation importance of the first fold's model on its held-out fold (at most
        # PERMUTATION_ROWS rows per repeat keeps it cheap); the direction is the sign of each
        # feature's correlation with the out-of-fold score.
        test = splits[0][1]
        perm = permutation_importance(
            first_fold_model[kind],
            Xs[test],
            ys[test],
            scoring="roc_auc",
            n_repeats=PERMUTATION_REPEATS,
            max_samples=min(len(test), PERMUTATION_ROWS),
            random_state=seed,
        )
        importance = np.asarray(perm.importances_mean, dtype=np.float64)
        direction = _correlation_signs(Xs, oof[kind])
    order = sorted(range(len(feature_names)), key=lambda j: (-importance[j], j))

    calibrator = Calibrator.fit(oof[kind], ys)
    calibrated = calibrator(oof[kind])
    base_rate = float(ys.mean())
    return ResponseModel(
        kind=kind,
        feature_names=tuple(feature_names),
        seed=seed,
        folds=folds,
        labelled_rows=labelled_rows,
        rows_used=len(ys),
        base_rate=base_rate,
        candidates=scores,
        brier=float(np.mean((calibrated - ys) ** 2)),
        brier_base_rate=base_rate * (1.0 - base_rate),
        calibration=_calibration_table(calibrated, ys),
        drivers=tuple(
            Driver(feature_names[j], float(importance[j]), int(direction[j])) for j in order
        ),
        scorer=scorer,
        calibrator=calibrator,
        estimator=final,
    )


def _correlation_signs(X: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Sign of the Pearson correlation of each feature with the score (0 when undefined)."""
    signs = np.zeros(X.shape[1], dtype=int)
    for j in range(X.shape[1]):
        ok = ~np.isnan(X[:, j])
        if ok.sum() < 2:
            continue
        x = X[ok, j] - X[ok, j].mean()
        s = score[ok] - score[ok].mean()
        if float(x @ x) > 0 and float(s @ s) > 0:
            signs[j] = int(np.sign(float(x @ s)))
    return signs


def _calibration_table(prob: np.ndarray, y: np.ndarray) -> tuple[CalibrationBin, ...]:
    """Up to ``CALIBRATION_BINS`` quantile bins; equal probabilities share a bin."""
    edges = np.quantile(prob, np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, prob, side="left")
    table = []
    for b in np.unique(bins):
        mask = bins == b
        table.append(
            CalibrationBin(
                mean_predicted=float(prob[mask].mean()),
                observed_rate=float(y[mask].mean()),
                count=int(mask.sum()),
            )
        )
    return tuple(table)
