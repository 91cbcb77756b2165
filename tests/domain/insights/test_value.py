"""Customer value of a run: the model's inputs from the customer table, the published CDNOW
estimates through the product's own path, the 12-month horizon, and notes on limiting fits."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sistack.domain.features import build_features
from sistack.domain.insights import clv, value
from sistack.domain.schema import detect_mapping
from sistack.domain.transactions import aggregate_transactions
from tests.domain.insights.cdnow import (
    CALIBRATION_END,
    PUBLISHED_BGNBD,
    PUBLISHED_GG,
    PUBLISHED_LL,
    TRANSACTIONS,
    assert_is_published_summary,
    published_summary,
)


def customers_of(frame, reference=None):
    """The run's customer table and features for transaction rows (the product's path)."""
    table = aggregate_transactions(frame, detect_mapping(frame), reference_date=reference)
    features = build_features(table.table, reference_date=table.reference_date).frame
    return table.table, features


@pytest.fixture(scope="module")
def cdnow():
    raw = pl.read_csv(TRANSACTIONS, infer_schema=False)
    table, features = customers_of(raw, CALIBRATION_END)
    # The customer table is sorted by id as text; the published summary by number.
    order = np.argsort(table.get_column("customer_id").cast(pl.Int64).to_numpy())
    table, features = table[order], features[order]
    return table, features, published_summary()


@pytest.fixture(scope="module")
def cdnow_value(cdnow):
    table, features, _ = cdnow
    ones = np.ones(table.height, dtype=np.int64)
    return value.value_insights(features, ones, [1], shape="transactions", table=table)


# --- the CDNOW sample through the product ----------------------------------------------------


def test_model_inputs_from_the_customer_table_are_the_published_summary(cdnow):
    table, features, published = cdnow
    assert_array_equal(table.get_column("customer_id").cast(pl.Int64), published["ID"])
    inputs = value.model_inputs(features, table)
    assert inputs is not None and inputs.per_day
    assert_is_published_summary(inputs, published)


def test_the_run_reproduces_the_published_cdnow_estimates(cdnow_value):
    assert cdnow_value.basis == "bgnbd_gamma_gamma"
    bgnbd, gamma_gamma = cdnow_value.params["bgnbd"], cdnow_value.params["gamma_gamma"]
    for name, published in PUBLISHED_BGNBD.items():
        assert bgnbd[name] == pytest.approx(published, rel=0.01), name
    assert bgnbd["log_likelihood"] == pytest.approx(PUBLISHED_LL, abs=0.5)
    assert bgnbd["n"] == 2357
    for name, published in PUBLISHED_GG.items():
        assert gamma_gamma[name] == pytest.approx(published, rel=0.02), name
    assert cdnow_value.params["purchases"] == "per_day"
    assert cdnow_value.notes == ()  # an interior optimum: nothing to warn about


def test_twelve_month_value_of_a_cdnow_customer_by_hand(cdnow, cdnow_value):
    # Customer 1 bought 29.33 on 1997-01-01, 29.73 on 01-18 and 14.96 on 08-02: x = 2 repeat
    # purchases, t_x = 213 days, T = 272 days to 1997-09-30, repeat spend (29.73 + 14.96) / 2.
    table, _, _ = cdnow
    row = table.get_column("customer_id").to_list().index("1")
    bgnbd = clv.BGNBDParams(**cdnow_value.params["bgnbd"])
    gg = clv.GammaGammaParams(**cdnow_value.params["gamma_gamma"])
    x, t_x, T, spend = 2.0, 213 / 7, 272 / 7, (29.73 + 14.96) / 2
    weeks = 365 / 7  # the horizon: 12 months in the models' unit
    purchases = clv.expected_purchases(bgnbd, weeks, x, t_x, T)
    per_purchase = gg.p * (gg.v + x * spend) / (gg.p * x + gg.q - 1.0)
    expected = float(purchases * per_purchase)
    assert cdnow_value.per_customer[row] == pytest.approx(expected, rel=1e-9)
    # With the published parameters: E[Y(52.14 weeks)] = 1.562 purchases x E[spend] = 6.25 x
    # (15.44 + 2 x 22.345) / (6.25 x 2 + 3.74 - 1) = 24.66 per purchase = 38.53.
    assert cdnow_value.per_customer[row] == pytest.approx(38.53, rel=0.01)


# --- a small case worked by hand -------------------------------------------------------------

ROWS = [  # customer, order, date, amount
    ("A", "o1", "2023-01-01", "10.00"),
    ("A", "o2", "2023-01-01", "5.00"),  # same day as o1: one purchase of 15
    ("A", "o3", "2023-01-15", "20.00"),
    ("A", "o4", "2023-02-12", "30.00"),
    ("B", "o5", "2023-02-01", "7.00"),
    ("B", "o6", "2023-02-01", "3.00"),  # one purchase day only
]
REFERENCE = dt.date(2023, 2, 26)


@pytest.fixture(scope="module")
def small():
    frame = pl.DataFrame(
        ROWS, schema=["customer_id", "order_id", "order_date", "amount"], orient="row"
    )
    return customers_of(frame, REFERENCE)


def test_model_inputs_by_hand(small):
    table, features = small
    inputs = value.model_inputs(features, table)
    assert inputs is not None and inputs.per_day
    # A: 3 purchase days; first 01-01, last 02-12 (42 days = 6 weeks), reference 56 days later
    # than the first (8 weeks); repeat spend (20 + 30) / 2. B: one purchase day, 25 days ago.
    assert_allclose(inputs.frequency, [2.0, 0.0])
    assert_allclose(inputs.recency, [6.0, 0.0])
    assert_allclose(inputs.T, [8.0, 25 / 7])
    assert_allclose(inputs.monetary_value, [25.0, 0.0])


def test_without_purchase_days_orders_count_as_purchases(small):
    table, features = small
    inputs = value.model_inputs(features, table.drop("purchase_days", "repeat_revenue"))
    assert inputs is not None and not inputs.per_day
    # A: 4 orders -> x = 3, spend 65 / 4 (first purchase included); B: 2 orders -> x = 1.
    assert_allclose(inputs.frequency, [3.0, 1.0])
    assert_allclose(inputs.monetary_value, [65 / 4, 10 / 2])
    assert_allclose(inputs.recency, [6.0, 0.0])  # t_x and T do not depend on the counting


def test_the_approximation_is_noted(cdnow):
    table, features, _ = cdnow
    ones = np.ones(table.height, dtype=np.int64)
    bare = table.drop("purchase_days", "repeat_revenue")
    result = value.value_insights(features, ones, [1], shape="transactions", table=bare)
    assert result.basis == "bgnbd_gamma_gamma"
    assert result.params["purchases"] == "per_order"
    assert value.ORDERS_AS_PURCHASES in result.notes


def test_customer_level_data_use_the_proxy_over_twelve_months():
    features = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "monetary": [730.0, 100.0],
            "frequency": [10.0, 2.0],
            "tenure_days": [365.0, 20.0],
            "recency_days": [0.0, 20.0],
        }
    )
    result = value.value_insights(features, np.array([1, 2]), [1, 2], shape="customers")
    # a: 730 / 365 per day x 365 days x P(active) 1 = 730. b: tenure floored at 30 days, gap
    # 30 / 2 = 15 days, silence 20 / (2 x 15) -> P(active) = 1 / (1 + (2/3)^2) = 9/13.
    assert result.basis == "proxy"
    assert_allclose(result.per_customer.to_numpy(), [730.0, 100 / 30 * 365 * 9 / 13])
    assert result.segments[0]["value_12m"]["total"] == pytest.approx(730 + 100 / 30 * 365 * 9 / 13)
    assert result.segments[2]["historical"]["mean"] == pytest.approx(100.0)


# --- fits at the optimiser's limit -----------------------------------------------------------


@pytest.mark.parametrize(
    ("log_b", "log_a", "expected"),
    [
        (15.0, 0.0, {"b": "upper"}),
        (14.2, 0.0, {"b": "upper"}),  # within a factor e of the limit: on the way there
        (13.9, 0.0, {}),
        (1.0, -14.5, {"a": "lower"}),
        (14.9, 14.8, {"a": "upper", "b": "upper"}),
    ],
)
def test_parameters_at_the_limit(log_b, log_a, expected):
    params = clv.BGNBDParams(r=1.0, alpha=5.0, a=math.exp(log_a), b=math.exp(log_b),
                             log_likelihood=0.0, n=1)  # fmt: skip
    assert clv.parameters_at_limit(params) == expected


def test_limit_notes_say_what_the_limiting_case_means():
    interior = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n=1)
    same_dropout = clv.BGNBDParams(r=1.5, alpha=6.0, a=6e4, b=3e6, log_likelihood=0.0, n=1)
    (note,) = value.limit_notes(same_dropout, interior)
    # 6e4 / (6e4 + 3e6) = 1.96%: every customer drops out with the same chance.
    assert "b = 3e+06" in note and "about 2.0% for every customer" in note
    no_dropout = clv.BGNBDParams(r=1.5, alpha=6.0, a=3.1e-7, b=2.0, log_likelihood=0.0, n=1)
    assert "almost no customer drops out" in value.limit_notes(no_dropout, interior)[0]
    same_spend = clv.GammaGammaParams(p=2.0, q=3e6, v=3e7, log_likelihood=0.0, n=1)
    interior_bg = clv.BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, n=1)
    (note,) = value.limit_notes(interior_bg, same_spend)
    # Population mean spend p v / (q - 1) = 2 x 3e7 / (3e6 - 1) = 20.00.
    assert note.startswith("The Gamma-Gamma fit") and "about 20 for every customer" in note
    assert value.limit_notes(interior_bg, interior) == []


def test_a_fit_running_to_the_limit_is_noted_in_the_value_insight():
    # Customers who keep buying until the end of the data: nobody drops out, so the BG/NBD's
    # dropout parameter a runs to its lower limit.
    rng = np.random.default_rng(0)
    n = 300
    age = rng.integers(100, 365, n).astype(float)
    repeats = rng.poisson(rng.gamma(2.0, 1 / 40, n) * age)
    last = np.array(
        [age[i] * (rng.uniform(size=k).max() if k else 0) for i, k in enumerate(repeats)]
    )
    features = pl.DataFrame(
        {
            "customer_id": [str(i) for i in range(n)],
            "monetary": 20.0 * (repeats + 1),
            "frequency": repeats + 1.0,
            "tenure_days": age,
            "recency_days": age - last.round(),
        }
    )
    spend = 20.0 * repeats * rng.uniform(0.9, 1.1, n)  # the spend model needs some spread
    table = pl.DataFrame({"purchase_days": repeats + 1.0, "repeat_revenue": spend})
    ones = np.ones(n, dtype=np.int64)
    result = value.value_insights(features, ones, [1], shape="transactions", table=table)
    assert result.params["at_limit"]["bgnbd"] == {"a": "lower"}
    assert len(result.notes) == 1 and "almost no customer drops out" in result.notes[0]
