"""Promotion response likelihood per segment: the model where a label exists, observed rates always.

Basis of the expected rate, in order: a calibrated response model (label present and usable);
the observed response rate (label present, too few rows for a model); the observed acceptance
rate of any past campaign (no label). With none of these the expected rate is absent: no number
is invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from sistack.domain.insights import response as model_mod

# Keys follow the fields they define: ``expected_rate``, ``observed`` and ``campaigns`` of each
# segment's ``response``; ``response_rate`` and ``expected_response_rate`` of ``overall``; the
# rest of the response model's summary (``calibration.count`` = ``count`` in ``calibration``).
DEFINITIONS = {
    "expected_rate": "Expected share of the segment that responds to the next campaign: the mean "
    "calibrated probability of the response model, or an observed rate when no model could be "
    "fitted (see 'basis').",
    "expected_responders": "Expected number of responders in the segment: the sum of the "
    "customers' response probabilities (without a model: the observed rate x customers).",
    "observed": "Observed response: successes (customers who responded) out of trials (customers "
    "with a known response label), their rate and its 95% Wilson interval (low, high).",
    "campaigns.interval": "Acceptance of one past campaign: successes (customers who accepted) "
    "out of trials (customers whose value is known), their rate and its 95% Wilson interval; "
    "'any_campaign' = accepted at least one.",
    "response_rate": "Share of all customers with a known response label who responded (the "
    "observed rate of the whole run).",
    "expected_response_rate": "Expected share of all customers who respond to the next campaign "
    "(the expected_rate of the whole run).",
    "auc_mean": "Area under the ROC curve, mean over the cross-validation folds: 0.5 is chance, "
    "1 perfect.",
    "auc_std": "Standard deviation of the ROC AUC over the folds: how much it depends on the "
    "split.",
    "fold_auc": "ROC AUC on each cross-validation fold.",
    "folds": "Number of cross-validation folds.",
    "labelled_rows": "Customers with a known response label.",
    "rows_used": "Labelled customers the model was fitted on (a deterministic sample when there "
    "are more).",
    "base_rate": "Share of responders among the customers the model was fitted on.",
    "brier": "Mean squared error of the calibrated probabilities (lower is better).",
    "brier_base_rate": "Brier score of predicting the base rate for everyone: the model adds "
    "information when its Brier score is lower.",
    "calibration.mean_predicted": "Mean calibrated probability of the customers in the bin (bins "
    "of equal size by predicted probability).",
    "calibration.observed_rate": "Share of the customers in the bin who responded: close to "
    "mean_predicted when the probabilities are calibrated.",
    "calibration.count": "Customers in the bin.",
    "drivers.importance": "How much the feature moves the model: the absolute standardised "
    "coefficient (logistic regression) or the mean drop in ROC AUC when the feature is shuffled "
    "(gradient boosting); see driver_measure.",
    "drivers.direction": "+1 when a higher value makes a response more likely, -1 less likely, "
    "0 no clear direction.",
}


# What is shown in place of a model, by basis (None: nothing to show), appended to the reason.
FALLBACKS: dict[str | None, str] = {
    "observed_response": "The observed response rate is shown instead.",
    "campaign_acceptance": "Observed campaign acceptance rates are shown instead.",
    None: "The data has no past campaign columns either, so no response rate is shown.",
}


@dataclass(frozen=True)
class ResponseInsights:
    expected: dict[int, float]  # segment (0 = all customers) -> expected response rate
    observed_rate: float | None
    segments: dict[int, dict[str, Any]]
    per_customer: pl.Series
    model_summary: dict[str, Any]


def _label(table: pl.DataFrame) -> np.ndarray | None:
    if "response" not in table.columns:
        return None
    y = table.get_column("response").cast(pl.Float64).to_numpy()
    # Counts of responses (e.g. aggregated transactions) become "responded at least once".
    return np.where(np.isnan(y), np.nan, (y > 0).astype(np.float64))


Fitted = tuple["model_mod.ResponseModel | None", "str | None"]


def fit_response(
    features: pl.DataFrame, table: pl.DataFrame, *, seed: int, max_rows: int = 20_000
) -> Fitted:
    """Fit the response model (or say why not); independent of the segmentation, so a caller
    may run it concurrently with it."""
    names = [c for c in features.columns if c != "customer_id"]

    def rows_of(rows: np.ndarray) -> np.ndarray:  # the labelled sample only, never all rows
        # Row-major, as a row selection of the whole matrix is: the fits' last bits depend on
        # the memory layout.
        return np.ascontiguousarray(features.select(names)[rows].to_numpy(), dtype=np.float64)

    return model_mod.maybe_fit_response_rows(
        rows_of, _label(table), names, seed=seed, max_rows=max_rows
    )


PREDICT_ROWS = 100_000  # customers converted to a matrix and scored at once (25 MB at 30 features)


def score_customers(fitted: Fitted, features: pl.DataFrame) -> np.ndarray | None:
    """Every customer's response probability from a fitted model (None without one); a caller
    may compute it beside the segmentation and hand it to :func:`response_insights`."""
    model, _ = fitted
    return None if model is None else _predict(model, features)


def _predict(model: model_mod.ResponseModel, features: pl.DataFrame) -> np.ndarray:
    """Probabilities for every customer, a block of rows at a time: the all-features matrix of
    10M customers (1.6 GB) is never built. Scoring is row by row, so the bits are the same."""
    names = [c for c in features.columns if c != "customer_id"]
    blocks = [
        model.predict_proba(
            features.slice(start, PREDICT_ROWS).select(names).to_numpy().astype(np.float64)
        )
        for start in range(0, features.height, PREDICT_ROWS)
    ]
    return np.concatenate(blocks) if blocks else np.empty(0)


def response_insights(
    features: pl.DataFrame,
    table: pl.DataFrame,
    segment: np.ndarray,
    segments: list[int],
    *,
    seed: int,
    max_rows: int = 20_000,
    fitted: Fitted | None = None,
    probabilities: np.ndarray | None = None,
) -> ResponseInsights:
    """Expected and observed response per segment and for all customers (segment 0).

    ``fitted`` and ``probabilities`` (:func:`score_customers` of it) may come computed; else
    the model is fitted and every customer scored here.
    """
    y = _label(table)
    model, reason = fitted or fit_response(features, table, seed=seed, max_rows=max_rows)
    campaigns = {
        c.removeprefix("campaign_"): np.clip(table.get_column(c).cast(pl.Float64).to_numpy(), 0, 1)
        for c in table.columns
        if c.startswith("campaign_")
    }
    rates = model_mod.campaign_rates(campaigns, segment) if campaigns else ()
    everyone = np.zeros(len(segment), dtype=np.int64)
    rates_all = model_mod.campaign_rates(campaigns, everyone) if campaigns else ()
    by_segment: dict[int, list[dict[str, Any]]] = {}
    for r in (*rates_all, *rates):
        by_segment.setdefault(r.segment, []).append(r.to_dict())

    if model is not None:
        prob = probabilities if probabilities is not None else _predict(model, features)
        basis = "model"
    elif y is not None and np.isfinite(y).any():
        prob = None
        basis = "observed_response"
    elif campaigns:
        prob = None
        basis = "campaign_acceptance"
    else:
        prob, basis = None, None

    expected: dict[int, float] = {}
    out: dict[int, dict[str, Any]] = {}
    observed_rate = None
    for seg in [0, *segments]:
        mask = np.ones(len(segment), bool) if seg == 0 else segment == seg
        entry: dict[str, Any] = {"basis": basis, "campaigns": by_segment.get(seg, [])}
        if y is not None:
            known = y[mask][np.isfinite(y[mask])]
            observed = model_mod.wilson_interval(int(known.sum()), len(known))
            entry["observed"] = observed.to_dict()
            if seg == 0 and len(known):
                observed_rate = observed.rate
        if prob is not None:
            entry["expected_rate"] = float(prob[mask].mean())
            entry["expected_responders"] = float(prob[mask].sum())
        elif basis == "observed_response" and entry.get("observed", {}).get("trials"):
            entry["expected_rate"] = entry["observed"]["rate"]
            entry["expected_responders"] = entry["observed"]["rate"] * int(mask.sum())
        elif basis == "campaign_acceptance":
            anyrate = next(r for r in entry["campaigns"] if r["campaign"] == model_mod.ANY_CAMPAIGN)
            rate = anyrate["interval"]["rate"]
            entry["expected_rate"] = rate
            entry["expected_responders"] = rate * int(mask.sum()) if rate == rate else None
        if (
            entry.get("expected_rate") is not None
            and entry["expected_rate"] == entry["expected_rate"]
        ):
            expected[seg] = float(entry["expected_rate"])
        out[seg] = entry

    if model is None and reason is not None:
        reason = f"{reason} {FALLBACKS[basis]}"
    summary: dict[str, Any] = {"available": model is not None, "reason": reason}
    if model is not None:
        summary.update(model.summary())
        summary["params"] = model.to_dict()
    per_customer = pl.Series(
        "response_probability",
        prob if prob is not None else [None] * len(segment),
        dtype=pl.Float64,
    )
    return ResponseInsights(expected, observed_rate, out, per_customer, summary)
