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

Observed rates live in ``rates``, the exported predictor parts in ``predictors``; this module
fits and holds the model (and re-exports both, the names its callers have always imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sistack.domain.insights.predictors import (
    Calibrator,
    LogisticScorer,
    TreeEnsembleScorer,
    _clean,
)
from sistack.domain.insights.rates import ANY_CAMPAIGN as ANY_CAMPAIGN
from sistack.domain.insights.rates import CampaignRate as CampaignRate
from sistack.domain.insights.rates import RateInterval as RateInterval
from sistack.domain.insights.rates import SegmentResponse as SegmentResponse
from sistack.domain.insights.rates import campaign_rates as campaign_rates
from sistack.domain.insights.rates import segment_response as segment_response
from sistack.domain.insights.rates import wilson_interval as wilson_interval
from sistack.domain.segmentation.selection import sample_indices

LOGISTIC = "logistic"
GRADIENT_BOOSTING = "gradient_boosting"
CANDIDATES = (LOGISTIC, GRADIENT_BOOSTING)
MIN_LABELLED = 50
CALIBRATION_BINS = 10
PERMUTATION_REPEATS = 3
PERMUTATION_ROWS = 3_000
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
# Reasons say why there is no model; what is shown instead depends on the other columns and is
# added by the caller (``promotion.response_insights``).
NO_LABEL = "The data has no response label."
_SCORE_ROWS = 65_536  # rows cleaned and scored at once


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
        return "Every value of the response label is missing."
    if not np.isin(known, (0.0, 1.0)).all():
        return "The response label has values other than 0 and 1."
    positives = int(known.sum())
    negatives = len(known) - positives
    if positives == 0 or negatives == 0:
        value = "1 (responded)" if negatives == 0 else "0 (did not respond)"
        return (
            f"Every labelled customer has the same response, {value}; a response model needs "
            "responders and non-responders."
        )
    if len(known) < MIN_LABELLED:
        return (
            f"Only {len(known)} customers have a known response (at least {MIN_LABELLED} are "
            "needed to model it)."
        )
    if min(positives, negatives) < folds:
        who = "responded" if positives < negatives else "did not respond"
        return (
            f"Only {min(positives, negatives)} labelled customers {who} (at least {folds} are "
            f"needed for {folds}-fold cross-validation)."
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
    return data, labels


def _check_params(*, folds: int, max_rows: int, candidates: Sequence[str]) -> None:
    if folds < 2:
        raise ValueError("folds must be at least 2")
    if max_rows < MIN_LABELLED:
        raise ValueError(f"max_rows must be at least {MIN_LABELLED}")
    unknown = set(candidates) - set(CANDIDATES)
    if not candidates or unknown:
        raise ValueError(f"candidates must be a non-empty subset of {CANDIDATES}")


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
    return maybe_fit_response_rows(
        lambda rows: data[rows],
        labels,
        feature_names,
        seed=seed,
        folds=folds,
        max_rows=max_rows,
        candidates=candidates,
    )


def maybe_fit_response_rows(
    rows_of: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray | None,
    feature_names: Sequence[str],
    *,
    seed: int,
    folds: int = 5,
    max_rows: int = 50_000,
    candidates: Sequence[str] = CANDIDATES,
) -> tuple[ResponseModel | None, str | None]:
    """``maybe_fit_response_model`` for customers too many to hold every feature of at once.

    ``rows_of(rows)`` returns the features (customers x ``feature_names``) of the customers
    at the sorted positions ``rows`` only: just the labelled sample is ever built (10M
    customers x 30 features would be 2.4 GB), and the model is the same as from the whole
    matrix.
    """
    _check_params(folds=folds, max_rows=max_rows, candidates=candidates)
    labels = None if y is None else np.asarray(y, dtype=np.float64).ravel()
    reason = _unfit_reason(labels, folds=folds)
    if reason is not None:
        return None, reason
    assert labels is not None
    rows = _labelled_sample(labels, max_rows, seed)
    # The sample, not the whole label, has to carry enough of each class.
    reason = _unfit_reason(labels[rows], folds=folds)
    if reason is not None:
        return None, reason
    # One OpenMP/BLAS thread: the numbers cannot depend on the machine's core count, and the
    # boosting fits do not collapse when other processes share the cores (measured on 2 busy
    # cores: 2 OpenMP threads were 5-10x slower than 1).
    with threadpool_limits(limits=1):
        model = _fit_sample(
            _clean(np.asarray(rows_of(rows), dtype=np.float64)),
            labels[rows].astype(np.int64),
            list(feature_names),
            labelled_rows=int((~np.isnan(labels)).sum()),
            seed=seed,
            folds=folds,
            candidates=candidates,
        )
    return model, None


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
    model, reason = maybe_fit_response_model(
        X, y, feature_names, seed=seed, folds=folds, max_rows=max_rows, candidates=candidates
    )
    if model is None:
        raise ValueError(reason)
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
