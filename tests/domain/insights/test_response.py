"""Response likelihood: Wilson intervals, the calibrated model, its JSON export, segment rates."""

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sistack.domain.insights.response import (
    ANY_CAMPAIGN,
    CANDIDATES,
    GRADIENT_BOOSTING,
    LOGISTIC,
    NO_LABEL,
    ResponseModel,
    TreeEnsembleScorer,
    campaign_rates,
    choose_candidate,
    fit_response_model,
    maybe_fit_response_model,
    maybe_fit_response_rows,
    segment_response,
    wilson_interval,
)

Z95 = 1.959963984540054  # 97.5% quantile of the standard normal
Z90 = 1.6448536269514722  # 95% quantile


def wilson_by_formula(x, n, z):
    """(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), written out."""
    p = x / n
    center = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return (center - half) / denom, (center + half) / denom


@pytest.mark.parametrize(
    ("successes", "trials", "rate", "low", "high"),
    [
        (10, 100, 0.1, 0.0552, 0.1744),
        # x = 0: low is 0; high = (z²/n) / (1 + z²/n) = 0.38415 / 1.38415
        (0, 10, 0.0, 0.0, 0.2775),
        # x = n: high is 1; low = 1 / (1 + z²/n)
        (10, 10, 1.0, 0.7225, 1.0),
        (1, 2, 0.5, 0.0945, 0.9055),
    ],
)
def test_wilson_hand_values(successes, trials, rate, low, high):
    r = wilson_interval(successes, trials)
    assert (r.successes, r.trials) == (successes, trials)
    assert r.rate == pytest.approx(rate)
    assert r.low == pytest.approx(low, abs=5e-5)
    assert r.high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(
    ("successes", "trials", "confidence", "z"),
    [(10, 100, 0.95, Z95), (3, 7, 0.95, Z95), (250, 1000, 0.90, Z90), (1, 40, 0.90, Z90)],
)
def test_wilson_matches_closed_formula(successes, trials, confidence, z):
    r = wilson_interval(successes, trials, confidence=confidence)
    assert_allclose([r.low, r.high], wilson_by_formula(successes, trials, z), rtol=1e-12)


def test_wilson_exact_ends_and_no_trials():
    assert wilson_interval(0, 10).low == 0.0
    assert wilson_interval(10, 10).high == 1.0
    empty = wilson_interval(0, 0)
    assert empty.trials == 0
    assert all(math.isnan(v) for v in (empty.rate, empty.low, empty.high))
    assert empty.to_dict() == {"successes": 0, "trials": 0, "rate": None, "low": None, "high": None}


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"), [(3, 2, 0.95), (-1, 5, 0.95), (1, 5, 1.0), (1, 5, 0.0)]
)
def test_wilson_rejects_bad_input(successes, trials, confidence):
    with pytest.raises(ValueError):
        wilson_interval(successes, trials, confidence=confidence)


# --- the model --------------------------------------------------------------------------------

NAMES = ["x0", "x1", "x2", "x3", "x4"]


def planted(n, seed):
    """P(y = 1) = sigmoid(-2 + 1.5 x0 - 1.0 x1); x2..x4 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    p = 1.0 / (1.0 + np.exp(-(-2.0 + 1.5 * X[:, 0] - 1.0 * X[:, 1])))
    y = (rng.random(n) < p).astype(np.float64)
    return X, y, p


@pytest.fixture(scope="module")
def planted_models():
    X, y, _ = planted(4000, seed=11)
    return {c: fit_response_model(X, y, NAMES, seed=5, candidates=c) for c in CASES}


CASES = [(LOGISTIC,), (GRADIENT_BOOSTING,), CANDIDATES]


@pytest.mark.parametrize("candidates", CASES)
def test_planted_mechanism_is_recovered(planted_models, candidates):
    model = planted_models[candidates]
    assert [c.name for c in model.candidates] == list(candidates)
    best = max(model.candidates, key=lambda c: c.auc_mean)
    assert best.chosen and best.name == model.kind
    assert best.auc_mean > 0.75
    assert len(best.fold_auc) == 5 and best.auc_std == pytest.approx(np.std(best.fold_auc))
    assert model.rows_used == model.labelled_rows == 4000
    # Calibration on the cross-validated scores, and better than always predicting the base rate.
    assert model.calibrator.method == "isotonic"
    assert sum(b.count for b in model.calibration) == 4000
    for b in model.calibration:
        assert abs(b.mean_predicted - b.observed_rate) < 0.08
    assert model.brier_base_rate == pytest.approx(model.base_rate * (1 - model.base_rate))
    assert model.brier < model.brier_base_rate
    # Drivers: x0 raises the response, x1 lowers it; the noise comes after both.
    assert [(d.feature, d.direction) for d in model.drivers[:2]] == [("x0", 1), ("x1", -1)]
    assert model.drivers[1].importance > 3 * max(d.importance for d in model.drivers[2:])


@pytest.mark.parametrize("candidates", CASES)
def test_planted_probabilities_hold_on_fresh_customers(planted_models, candidates):
    """Calibration checked on new customers against the true probabilities."""
    X, _, p_true = planted(20_000, seed=99)
    prob = planted_models[candidates].predict_proba(X)
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert abs(prob.mean() - p_true.mean()) < 0.02
    order = np.argsort(prob, kind="stable")
    for chunk in np.array_split(order, 10):
        assert abs(prob[chunk].mean() - p_true[chunk].mean()) < 0.05


def test_logistic_drivers_are_standardised_coefficients(planted_models):
    model = planted_models[(LOGISTIC,)]
    coef = model.estimator[-1].coef_[0]
    assert model.driver_measure == "absolute_standardised_coefficient"
    by_name = {d.feature: d for d in model.drivers}
    for name, c in zip(NAMES, coef, strict=True):
        assert by_name[name].importance == pytest.approx(abs(c))
        assert by_name[name].direction == int(np.sign(c))
    # Standardised inputs (sd 1): the coefficients approach the planted 1.5 and -1.0.
    assert coef[0] == pytest.approx(1.5, abs=0.25)
    assert coef[1] == pytest.approx(-1.0, abs=0.2)


@pytest.mark.parametrize(
    ("auc", "winner"),
    [
        ({LOGISTIC: 0.70, GRADIENT_BOOSTING: 0.71}, GRADIENT_BOOSTING),
        ({LOGISTIC: 0.72, GRADIENT_BOOSTING: 0.71}, LOGISTIC),
        ({LOGISTIC: 0.71, GRADIENT_BOOSTING: 0.71}, LOGISTIC),
        ({GRADIENT_BOOSTING: 0.71, LOGISTIC: 0.71}, LOGISTIC),
        ({GRADIENT_BOOSTING: 0.6}, GRADIENT_BOOSTING),
    ],
)
def test_choose_candidate_tie_goes_to_logistic(auc, winner):
    assert choose_candidate(auc) == winner


def test_same_inputs_same_model():
    X, y, _ = planted(2000, seed=3)
    first = fit_response_model(X, y, NAMES, seed=8)
    second = fit_response_model(X.copy(), y.copy(), list(NAMES), seed=8)
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())
    assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_sample_is_capped_and_unknown_labels_are_left_out():
    X, y, _ = planted(3000, seed=4)
    y[::3] = np.nan  # 1000 unknown
    model = fit_response_model(X, y, NAMES, seed=1, max_rows=600, candidates=(LOGISTIC,))
    assert model.labelled_rows == 2000
    assert model.rows_used == 600
    assert model.calibrator.method == "platt"  # fewer than 1000 rows
    again = fit_response_model(X, y, NAMES, seed=1, max_rows=600, candidates=(LOGISTIC,))
    assert again.to_dict() == model.to_dict()


# --- no model: a reason instead of a number ---------------------------------------------------


def labels(pos, neg, unknown=0):
    return np.array([1.0] * pos + [0.0] * neg + [np.nan] * unknown)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (None, NO_LABEL),
        (labels(0, 0, unknown=200), "Every value of the response label is missing."),
        (labels(0, 200), "Every labelled customer has the same response, 0 (did not respond)"),
        (labels(200, 0), "Every labelled customer has the same response, 1 (responded)"),
        (labels(10, 20, unknown=170), "Only 30 customers have a known response (at least 50"),
        (labels(3, 197), "Only 3 labelled customers responded (at least 5 are needed"),
        (labels(196, 4), "Only 4 labelled customers did not respond"),
        (np.array([0.0, 1.0, 2.0] * 70), "The response label has values other than 0 and 1"),
    ],
)
def test_no_model_gives_a_reason(y, message):
    X = np.random.default_rng(0).normal(size=(200 if y is None else len(y), 5))
    model, reason = maybe_fit_response_model(X, y, NAMES, seed=0)
    assert model is None
    assert reason.startswith(message)
    # The reason says why, not what is shown instead: that depends on the other columns and is
    # added by promotion.response_insights (tests/domain/insights/test_promotion.py).
    assert "instead" not in reason and reason.endswith(".")
    if y is not None:
        with pytest.raises(ValueError, match=message[:20]):
            fit_response_model(X, y, NAMES, seed=0)


def test_no_model_when_the_sample_lacks_responders():
    # 6 responders in 1,000 labelled customers pass the check; a sample of 100 keeps fewer than 5.
    y = labels(6, 994)
    X = np.random.default_rng(0).normal(size=(1000, 5))
    model, reason = maybe_fit_response_model(X, y, NAMES, seed=0, max_rows=100)
    assert model is None and "customers responded" in reason


def test_only_the_labelled_sample_is_built():
    """The row-getter path asks for the sampled labelled rows only, and gives the model the
    whole matrix gives (what lets 10M customers skip a 2.4 GB matrix)."""
    X, y, _ = planted(3000, seed=4)
    y[::3] = np.nan
    asked: list[np.ndarray] = []

    def rows_of(rows):
        asked.append(rows)
        return X[rows]

    model, reason = maybe_fit_response_rows(
        rows_of, y, NAMES, seed=1, max_rows=600, candidates=(LOGISTIC,)
    )
    assert reason is None and len(asked) == 1
    assert len(asked[0]) == 600 and not np.isnan(y[asked[0]]).any()
    assert np.all(np.diff(asked[0]) > 0)  # sorted, no repeats
    whole = fit_response_model(X, y, NAMES, seed=1, max_rows=600, candidates=(LOGISTIC,))
    assert model.to_dict() == whole.to_dict()
    assert model.labelled_rows == 2000  # counted on the whole label, not the sample
    # A label that cannot support a model is judged whole: no row is asked for.
    asked.clear()
    bad = np.array([0.0, 1.0, 2.0] * 1000)
    model, reason = maybe_fit_response_rows(rows_of, bad, NAMES, seed=1, max_rows=600)
    assert model is None and reason.startswith("The response label has values other") and not asked


def test_maybe_fit_returns_the_model():
    X, y, _ = planted(500, seed=2)
    model, reason = maybe_fit_response_model(X, y, NAMES, seed=0, candidates=(LOGISTIC,))
    assert reason is None and isinstance(model, ResponseModel)


# --- export without pickle --------------------------------------------------------------------


def messy(n, seed):
    """Planted data with missing and infinite values and unknown labels."""
    X, y, _ = planted(n, seed)
    rng = np.random.default_rng(seed + 1)
    X[rng.random(n) < 0.2, 0] = np.nan
    X[rng.random(n) < 0.05, 2] = np.inf
    y[rng.random(n) < 0.1] = np.nan
    return X, y


@pytest.mark.parametrize("kind", [LOGISTIC, GRADIENT_BOOSTING])
@pytest.mark.parametrize(("n", "method"), [(1500, "isotonic"), (400, "platt")])
def test_json_round_trip_predicts_like_the_fitted_estimator(kind, n, method):
    X, y = messy(n, seed=21)
    model = fit_response_model(X, y, NAMES, seed=2, candidates=(kind,))
    assert model.kind == kind and model.calibrator.method == method
    doc = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    rebuilt = ResponseModel.from_dict(doc)
    assert rebuilt.estimator is None
    assert rebuilt.summary() == model.summary()
    assert json.dumps(rebuilt.to_dict()) == json.dumps(model.to_dict())

    # New customers, with missing values in every column (also where training had none).
    X_new, _ = messy(3000, seed=77)
    X_new[np.random.default_rng(5).random(X_new.shape) < 0.1] = np.nan
    finite = np.where(np.isfinite(X_new), X_new, np.nan)  # scikit-learn refuses inf
    expected = model.calibrate(model.estimator.decision_function(finite))
    assert_allclose(rebuilt.predict_proba(X_new), expected, rtol=0, atol=1e-9)
    assert_allclose(model.predict_proba(X_new), expected, rtol=0, atol=1e-9)
    # A customer's score does not depend on which other customers are scored with it.
    full = rebuilt.predict_proba(X_new)
    assert_array_equal(full[2995:], rebuilt.predict_proba(X_new[2995:]))
    assert_array_equal(full[:1], rebuilt.predict_proba(X_new[:1]))


def test_gbm_export_holds_plain_tree_arrays():
    X, y = messy(800, seed=3)
    doc = fit_response_model(X, y, NAMES, seed=0, candidates=(GRADIENT_BOOSTING,)).to_dict()
    fields = {"value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right"}
    assert len(doc["model"]["trees"]) == 100
    assert fields | {"is_leaf"} == set(doc["model"]["trees"][0])
    assert isinstance(doc["model"]["baseline_prediction"], float)
    with pytest.raises(ValueError):
        ResponseModel.from_dict({**doc, "version": 99})


def test_tree_rule_by_hand():
    """Left when x <= threshold (equality too); missing per missing_go_to_left; None = +inf."""
    tree = {
        "value": [0.0, -1.0, 0.0, 2.0, 5.0],
        "feature_idx": [0, 0, 1, 0, 0],
        "num_threshold": [1.0, 0.0, None, 0.0, 0.0],
        "missing_go_to_left": [1, 0, 0, 0, 0],
        "left": [1, 0, 3, 0, 0],
        "right": [2, 0, 4, 0, 0],
        "is_leaf": [0, 1, 0, 1, 1],
    }
    stump = {k: [v[1]] for k, v in tree.items()}  # a single leaf worth -1
    scorer = TreeEnsembleScorer.from_dict(
        {"baseline_prediction": 0.5, "trees": [tree, stump]}, n_features=2
    )
    X = np.array(
        [
            [1.0, 0.0],  # equal to 1.0: left leaf -1
            [np.nan, 0.0],  # missing goes left: -1
            [0.5, np.nan],
            [2.0, 7.0],  # right, then 7 <= +inf: left leaf 2
            [2.0, np.nan],  # right, then missing goes right: 5
            [1.0 + 1e-12, -3.0],  # just above 1.0: right, left leaf 2
        ]
    )
    assert_allclose(scorer.raw(X), [-1.5, -1.5, -1.5, 1.5, 4.5, 1.5], rtol=0, atol=0)


@pytest.mark.parametrize(
    "change",
    [
        {"left": [1, 0, 9, 0, 0]},  # child outside the tree
        {"feature_idx": [0, 0, 2, 0, 0]},  # feature outside the model
        {"left": [1, 0, 0, 0, 0]},  # a node reached twice (cycle)
        {"value": [0.0]},  # fields of different length
    ],
)
def test_tree_import_rejects_broken_structures(change):
    tree = {
        "value": [0.0, -1.0, 0.0, 2.0, 5.0],
        "feature_idx": [0, 0, 1, 0, 0],
        "num_threshold": [1.0, 0.0, None, 0.0, 0.0],
        "missing_go_to_left": [1, 0, 0, 0, 0],
        "left": [1, 0, 3, 0, 0],
        "right": [2, 0, 4, 0, 0],
        "is_leaf": [0, 1, 0, 1, 1],
    }
    with pytest.raises(ValueError):
        TreeEnsembleScorer.from_dict(
            {"baseline_prediction": 0.0, "trees": [{**tree, **change}]}, n_features=2
        )


# --- per-segment rates ------------------------------------------------------------------------


def test_segment_response_by_hand():
    prob = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    segment = np.array([2, 1, 2, 1, 1])
    y = np.array([0.0, 1.0, np.nan, 0.0, 1.0])
    one, two = segment_response(prob, segment, y)
    # Segment 1: customers 1, 3, 4 -> probabilities .2 .4 .5, labels 1 0 1.
    assert (one.segment, one.customers) == (1, 3)
    assert one.expected_rate == pytest.approx(1.1 / 3)
    assert one.expected_responders == pytest.approx(1.1)
    assert (one.observed.successes, one.observed.trials) == (2, 3)
    assert one.observed.rate == pytest.approx(2 / 3)
    assert_allclose([one.observed.low, one.observed.high], wilson_by_formula(2, 3, Z95))
    # Segment 2: customers 0, 2 -> probabilities .1 .3; the second label is unknown.
    assert (two.segment, two.customers) == (2, 2)
    assert two.expected_rate == pytest.approx(0.2)
    assert two.expected_responders == pytest.approx(0.4)
    assert (two.observed.successes, two.observed.trials) == (0, 1)
    assert two.to_dict()["observed"]["low"] == 0.0

    without = segment_response(prob, segment, None)
    assert [s.observed for s in without] == [None, None]
    assert [s.expected_responders for s in without] == pytest.approx([1.1, 0.4])


def test_segment_response_without_any_label_in_a_segment():
    (only,) = segment_response(np.array([0.3, 0.5]), np.array([4, 4]), np.array([np.nan] * 2))
    assert only.observed.trials == 0 and math.isnan(only.observed.rate)
    assert only.to_dict()["observed"]["rate"] is None


def test_campaign_rates_by_hand():
    segment = np.array([1, 1, 2, 2, 2])
    accepted = {
        "AcceptedCmp1": np.array([1, 0, 0, 0, np.nan]),
        "AcceptedCmp2": np.array([0, 0, 1, 0, 0]),
    }
    rates = campaign_rates(accepted, segment)
    got = [
        (r.segment, r.campaign, r.customers, r.interval.successes, r.interval.trials) for r in rates
    ]
    assert got == [
        (1, "AcceptedCmp1", 2, 1, 2),
        (1, "AcceptedCmp2", 2, 0, 2),
        (1, ANY_CAMPAIGN, 2, 1, 2),
        (2, "AcceptedCmp1", 3, 0, 2),  # the missing value is not counted
        (2, "AcceptedCmp2", 3, 1, 3),
        # any: (0, 1) accepted, (0, 0) did not, (missing, 0) unknown
        (2, ANY_CAMPAIGN, 3, 1, 2),
    ]
    assert_allclose([rates[4].interval.low, rates[4].interval.high], wilson_by_formula(1, 3, Z95))


def test_campaign_rates_edge_cases():
    assert campaign_rates({}, np.array([1, 2])) == ()
    with pytest.raises(ValueError):
        campaign_rates({ANY_CAMPAIGN: np.array([1, 0])}, np.array([1, 2]))
    with pytest.raises(ValueError):
        campaign_rates({"c": np.array([1, 2])}, np.array([1, 2]))
