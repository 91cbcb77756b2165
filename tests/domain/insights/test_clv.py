"""Customer value: published CDNOW results, closed forms, quadrature, hand-worked numbers."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate, special

from sistack.domain.insights import clv
from sistack.errors import InputError
from tests.domain.insights.cdnow import (
    PUBLISHED_BGNBD,
    PUBLISHED_GG,
    PUBLISHED_LL,
    TRANSACTIONS,
    assert_is_published_summary,
    published_summary,
)


@pytest.fixture(scope="module")
def cdnow():
    return published_summary()


@pytest.fixture(scope="module")
def cdnow_fit(cdnow):
    return clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def cdnow_transactions():
    table = np.genfromtxt(TRANSACTIONS, delimiter=",", names=True, dtype=None)
    dates = [f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" for d in table["date"]]
    epoch = np.datetime64("1997-01-01")
    days = (np.array(dates, dtype="datetime64[D]") - epoch).astype(np.int64)
    reference = int((np.datetime64("1997-09-30") - epoch).astype(np.int64))
    return table["customer"].astype(np.int64), days, table["amount"], reference


# --- published results ----------------------------------------------------------------------


def test_bgnbd_reproduces_the_published_cdnow_estimates(cdnow_fit):
    fitted = {name: getattr(cdnow_fit, name) for name in PUBLISHED_BGNBD}
    for name, published in PUBLISHED_BGNBD.items():
        assert fitted[name] == pytest.approx(published, rel=0.01), name
    assert cdnow_fit.log_likelihood == pytest.approx(PUBLISHED_LL, abs=0.5)
    assert cdnow_fit.n == 2357


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow):
    fitted = clv.fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert fitted.n == 946  # customers with a repeat purchase
    for name, published in PUBLISHED_GG.items():
        assert getattr(fitted, name) == pytest.approx(published, rel=0.02), name


def test_conditional_expectation_matches_hardies_spreadsheet(cdnow_fit):
    assert clv.expected_purchases(cdnow_fit, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=1e-3)


def test_unconditional_expectation_matches_hardies_spreadsheet(cdnow_fit):
    # With nothing observed yet (x = t_x = T = 0), eq. 10 is E[X(t)] (paper eq. 9).
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    assert_allclose(clv.expected_purchases(cdnow_fit, times, 0, 0, 0), published, atol=5e-4)


def test_summary_from_the_cdnow_transactions_reproduces_the_published_summary(
    cdnow, cdnow_transactions
):
    customer, day, amount, reference = cdnow_transactions
    summary = clv.summary_from_transactions(customer, day, amount, reference_day=reference)
    assert_array_equal(summary.customer, cdnow["ID"].astype(np.int64))
    assert_is_published_summary(summary, cdnow)
    spend = clv.fit_gamma_gamma(summary.frequency, summary.monetary_value)
    for name, published in PUBLISHED_GG.items():
        assert getattr(spend, name) == pytest.approx(published, rel=0.02), name


# --- BG/NBD: closed forms and an independent quadrature ---------------------------------------


def by_quadrature(params, t, x, t_x, T):
    """E[Y(t) | x, t_x, T] and P(alive) by integrating over the dropout probability p.

    Given lambda and p, an active customer makes (1 - exp(-lambda p t)) / p expected purchases
    in t; integrating lambda over its Gamma posterior in closed form leaves one integral over
    p ~ Beta(a, b), done here by adaptive quadrature, so no hypergeometric function is involved.
    Everything is scaled by (alpha + T)^(r + x).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    scale = alpha + T

    def gain(p):
        if p == 0.0:
            return (r + x) * t / scale
        return -math.expm1(-(r + x) * math.log1p(p * t / scale)) / p

    def beta_integral(f):
        options = {"weight": "alg", "wvar": (a - 1, b - 1), "epsabs": 0.0, "epsrel": 1e-11}
        return integrate.quad(f, 0, 1, limit=200, **options)[0]

    alive = beta_integral(lambda p: (1 - p) ** x)
    dead = 0.0
    if x > 0:
        ratio = math.exp((r + x) * (math.log(alpha + T) - math.log(alpha + t_x)))
        dead = ratio * beta_integral(lambda p: p * (1 - p) ** (x - 1))
    expected = beta_integral(lambda p: (1 - p) ** x * gain(p))
    return expected / (alive + dead), alive / (alive + dead)


PARAMS = [
    clv.BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0.0, n=0),
    clv.BGNBDParams(r=2.0, alpha=30.0, a=3.5, b=0.6, log_likelihood=0.0, n=0),
]
CUSTOMERS = [  # t, x, t_x, T
    (39.0, 0, 0.0, 38.86),
    (39.0, 2, 30.43, 38.86),
    (10.0, 5, 3.0, 40.0),
    (52.0, 30, 35.0, 39.0),
    (52.0, 100, 38.0, 39.0),
    (200.0, 300, 100.0, 104.0),
]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize(("t", "x", "t_x", "T"), CUSTOMERS)
def test_expected_purchases_and_p_alive_agree_with_quadrature(params, t, x, t_x, T):
    expected, alive = by_quadrature(params, t, x, t_x, T)
    assert clv.expected_purchases(params, t, x, t_x, T) == pytest.approx(expected, rel=1e-9)
    assert clv.probability_alive(params, x, t_x, T) == pytest.approx(alive, rel=1e-12)


@pytest.mark.parametrize("params", PARAMS)
def test_expected_purchases_for_a_customer_without_repeat_purchases(params):
    # x = 0: alive for sure, lambda | data ~ Gamma(r, alpha + T), p ~ Beta(a, b), so
    # E[Y(t)] = (a + b - 1) / (a - 1) * [1 - (s / (s + t))^r 2F1(r, b; a + b - 1; t / (s + t))]
    # with s = alpha + T (the paper's eq. 9 with alpha replaced by alpha + T).
    r, a, b = params.r, params.a, params.b
    s, t = params.alpha + 20.0, 26.0
    hand = (
        (a + b - 1)
        / (a - 1)
        * (1 - (s / (s + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (s + t)))
    )
    assert clv.expected_purchases(params, t, 0, 0.0, 20.0) == pytest.approx(hand, rel=1e-12)
    # Over a short horizon the expected count is t x E[lambda | x = 0] = t r / (alpha + T).
    tiny = 1e-6
    rate = clv.expected_purchases(params, tiny, 0, 0.0, 20.0) / tiny
    assert rate == pytest.approx(r / s, rel=1e-5)


def test_expected_purchases_is_zero_over_no_time(cdnow_fit):
    assert_array_equal(clv.expected_purchases(cdnow_fit, 0.0, [0, 3], [0.0, 10.0], [5.0, 20.0]), 0)


def test_probability_alive_is_one_without_repeat_purchases(cdnow_fit):
    assert_array_equal(clv.probability_alive(cdnow_fit, [0, 0, 0], [0.0, 0.0, 0.0], [0, 1, 500]), 1)


def test_probability_alive_worked_by_hand():
    # x = 1, t_x = 1, T = 3 with r = alpha = a = b = 1:
    # P = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)) = 1 / (1 + 2^2)
    params = clv.BGNBDParams(r=1.0, alpha=1.0, a=1.0, b=1.0, log_likelihood=0.0, n=0)
    assert clv.probability_alive(params, 1, 1.0, 3.0) == pytest.approx(0.2, rel=1e-14)


def test_probability_alive_rises_with_recency_and_stays_in_range(cdnow_fit):
    recency = np.linspace(0.0, 38.0, 39)
    for x in (1, 3, 10, 50):
        alive = clv.probability_alive(cdnow_fit, x, recency, 38.0)
        assert np.all(np.diff(alive) > 0)
        assert np.all((alive > 0) & (alive <= 1))


def test_bgnbd_fit_is_unit_free(cdnow, cdnow_fit):
    in_days = clv.fit_bgnbd(cdnow["x"], cdnow["t_x"] * 7, cdnow["T"] * 7)
    assert in_days.alpha == pytest.approx(7 * cdnow_fit.alpha, rel=1e-6)
    for name in ("r", "a", "b"):
        assert getattr(in_days, name) == pytest.approx(getattr(cdnow_fit, name), rel=1e-6)


def test_penalizer_shrinks_every_parameter(cdnow, cdnow_fit):
    shrunk = clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], penalizer=0.1)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(shrunk, name) < getattr(cdnow_fit, name), name
    assert shrunk.log_likelihood < cdnow_fit.log_likelihood


def simulate(n, seed, *, r, alpha, a, b, p, q, v):
    """Customers drawn from the BG/NBD and Gamma-Gamma generative processes (T in weeks)."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 39.0, n)
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n)
    arrivals = rng.poisson(rate * T)
    # Drop out after the k-th repeat purchase, k ~ Geometric(p); purchase times are uniform
    # order statistics, so the x-th of n arrivals is at T x Beta(x, n - x + 1).
    x = np.minimum(arrivals, rng.geometric(dropout))
    repeat = x > 0
    t_x = np.zeros(n)
    t_x[repeat] = T[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    nu = rng.gamma(q, 1.0 / v, n)
    m = np.zeros(n)
    m[repeat] = rng.gamma(p * x[repeat], 1.0 / (x[repeat] * nu[repeat]))
    return x.astype(float), t_x, T, m


def test_fits_recover_simulated_parameters():
    truth = {**PUBLISHED_BGNBD, **PUBLISHED_GG}
    x, t_x, T, m = simulate(200_000, 7, **truth)
    purchases = clv.fit_bgnbd(x, t_x, T)
    spend = clv.fit_gamma_gamma(x, m)
    assert purchases.r == pytest.approx(truth["r"], rel=0.05)
    assert purchases.alpha == pytest.approx(truth["alpha"], rel=0.05)
    # a and b are strongly correlated; their ratio (the mean dropout chance) is well determined.
    dropout = purchases.a / (purchases.a + purchases.b)
    assert dropout == pytest.approx(truth["a"] / (truth["a"] + truth["b"]), rel=0.03)
    assert purchases.a == pytest.approx(truth["a"], rel=0.2)
    assert purchases.b == pytest.approx(truth["b"], rel=0.2)
    for name in ("p", "q", "v"):
        assert getattr(spend, name) == pytest.approx(truth[name], rel=0.1), name
    mean = spend.p * spend.v / (spend.q - 1)
    assert mean == pytest.approx(truth["p"] * truth["v"] / (truth["q"] - 1), rel=0.03)


def test_fit_needs_repeat_purchases():
    with pytest.raises(InputError) as error:
        clv.fit_bgnbd([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 6.0, 7.0])
    assert error.value.code == "clv_no_repeat_purchases"
    with pytest.raises(InputError):
        clv.fit_gamma_gamma([0, 2], [0.0, 10.0])


@pytest.mark.parametrize(
    ("frequency", "recency", "T"),
    [([1], [5.0], [4.0]), ([-1], [0.0], [4.0]), ([1], [np.nan], [4.0])],
)
def test_inconsistent_rfm_is_rejected(frequency, recency, T):
    with pytest.raises(ValueError):
        clv.fit_bgnbd(frequency, recency, T)


# --- Gamma-Gamma and value --------------------------------------------------------------------

SPEND = clv.GammaGammaParams(p=6.0, q=4.0, v=15.0, log_likelihood=0.0, n=0)


@pytest.mark.parametrize(
    ("x", "m", "expected"),
    [
        (0, np.nan, 30.0),  # population mean p v / (q - 1) = 90 / 3
        (2, 20.0, 22.0),  # 6 (15 + 40) / (12 + 3)
        (10, 100.0, 6 * 1015 / 63),
        (2, -5.0, 6 * 15 / 15),  # net returns count as an average of 0
    ],
)
def test_expected_average_value_worked_by_hand(x, m, expected):
    assert clv.expected_average_value(SPEND, x, m) == pytest.approx(expected, rel=1e-14)


def test_gamma_gamma_without_heterogeneity_predicts_the_common_mean():
    # Every customer's purchases are Gamma(2, scale 20) (mean 40): the MLE runs to q, v -> inf
    # with v / q fixed, and the limiting model predicts 40 for everyone, whatever their history.
    rng = np.random.default_rng(3)
    x = rng.integers(1, 10, 20_000).astype(float)
    m = rng.gamma(2.0 * x, 20.0 / x)
    spend = clv.fit_gamma_gamma(x, m)
    assert spend.q > 1e4
    predicted = clv.expected_average_value(spend, [0, 1, 9], [0.0, 200.0, 10.0])
    assert_allclose(predicted, 40.0, rtol=0.01)


def test_expected_average_value_needs_a_finite_population_mean():
    heavy = clv.GammaGammaParams(p=6.0, q=0.9, v=15.0, log_likelihood=0.0, n=0)
    with pytest.raises(ValueError):
        clv.expected_average_value(heavy, [1], [10.0])


def test_expected_value_is_purchases_times_average_value(cdnow_fit):
    x, t_x, T, m = np.array([0, 2, 7]), np.array([0.0, 30.43, 29.43]), 38.86, np.array([0, 20, 70])
    value = clv.expected_value(cdnow_fit, SPEND, x, t_x, T, m, horizon=52.0)
    purchases = clv.expected_purchases(cdnow_fit, 52.0, x, t_x, T)
    assert_allclose(value, purchases * clv.expected_average_value(SPEND, x, m), rtol=1e-14)


def test_discounting_in_steps_worked_by_hand(cdnow_fit):
    customer = (2, 30.43, 38.86)
    spend = clv.expected_average_value(SPEND, 2, 20.0)
    by_step = [clv.expected_purchases(cdnow_fit, t, *customer) for t in (4.0, 8.0, 10.0)]
    # Horizon 10 in steps of 4: (0, 4], (4, 8], (8, 10], discounted 1.1^-1, 1.1^-2, 1.1^-3.
    hand = (
        by_step[0] / 1.1 + (by_step[1] - by_step[0]) / 1.1**2 + (by_step[2] - by_step[1]) / 1.1**3
    ) * spend
    value = clv.expected_value(
        cdnow_fit, SPEND, *customer, 20.0, horizon=10.0, discount_rate=0.1, step=4.0
    )
    assert value == pytest.approx(hand, rel=1e-12)
    undiscounted = clv.expected_value(cdnow_fit, SPEND, *customer, 20.0, horizon=10.0)
    assert undiscounted == pytest.approx(by_step[2] * spend, rel=1e-12)
    assert value < undiscounted


def test_expected_value_for_many_customers_matches_one_at_a_time(cdnow_fit):
    # Customers share (x, T) pairs but not recency: the per-pair evaluation must map back.
    x = np.array([2, 2, 0, 7, 2, 0])
    t_x = np.array([30.43, 10.0, 0.0, 29.43, 30.43, 0.0])
    T = np.array([38.86, 38.86, 38.86, 38.86, 32.0, 5.0])
    m = np.array([20.0, 35.0, 0.0, 70.0, 20.0, 0.0])
    for rate in (0.0, 0.01):
        options = {"horizon": 52.0, "discount_rate": rate}
        together = clv.expected_value(cdnow_fit, SPEND, x, t_x, T, m, **options)
        alone = [
            clv.expected_value(cdnow_fit, SPEND, *c, **options)
            for c in zip(x, t_x, T, m, strict=True)
        ]
        assert_allclose(together, alone, rtol=1e-14)
    assert together[0] > together[1]  # same x and T, the more recent buyer is worth more


# --- inputs -----------------------------------------------------------------------------------

EPOCH = 19_000  # day numbers are days since any epoch


def test_summary_from_transactions_worked_by_hand():
    # Customer 5 buys on days 0, 7, 7, 21 (two orders on day 7 are one purchase of 25);
    # customer 2 buys twice on day 14 only; customer 9 on days 3 and 10 (given out of order).
    customer = np.array([5, 9, 5, 2, 5, 5, 2, 9])
    day = EPOCH + np.array([7, 10, 0, 14, 21, 7, 14, 3])
    amount = np.array([20.0, 6.0, 10.0, 8.0, 30.0, 5.0, 2.0, 4.0])
    summary = clv.summary_from_transactions(customer, day, amount, reference_day=EPOCH + 28)
    assert_array_equal(summary.customer, [2, 5, 9])
    assert_array_equal(summary.frequency, [0, 2, 1])
    assert_allclose(summary.recency, [0.0, 3.0, 1.0], rtol=1e-15)
    assert_allclose(summary.T, [2.0, 4.0, 25 / 7], rtol=1e-15)
    assert_allclose(summary.monetary_value, [0.0, (25 + 30) / 2, 6.0], rtol=1e-15)


def test_summary_from_no_transactions_is_empty():
    empty = np.zeros(0, dtype=np.int64)
    summary = clv.summary_from_transactions(empty, empty, np.zeros(0), reference_day=0)
    assert summary.customer.size == summary.frequency.size == 0


@pytest.mark.parametrize(
    ("customer", "day", "amount", "reference"),
    [
        ([1, 2], [5, 9], [1.0, 2.0], 8),  # a transaction after the reference day
        ([1.0, 2.0], [5, 6], [1.0, 2.0], 8),  # ids must be integers
        ([1, 2], [5, 6], [1.0, np.inf], 8),
        ([1, 2], [5], [1.0, 2.0], 8),
    ],
)
def test_summary_rejects_bad_transactions(customer, day, amount, reference):
    with pytest.raises(ValueError):
        clv.summary_from_transactions(
            np.array(customer), np.array(day), np.array(amount), reference_day=reference
        )


# --- customer-level proxy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recency", "purchases", "spend", "tenure", "horizon", "expected"),
    [
        # 600 over 360 days, gap 60 days; silent 30 days: P = 1 / (1 + (30 / 120)^2) = 16/17.
        (30, 6, 600, 360, 365, 600 / 360 * 365 * 16 / 17),
        (120, 6, 600, 360, 365, 600 / 360 * 365 / 2),  # two gaps of silence: P = 1/2
        (0, 6, 600, 360, 365, 600 / 360 * 365),
        (30, 6, 600, 360, 182.5, 600 / 360 * 182.5 * 16 / 17),
        # Joined 10 days ago: tenure floored to 30 days, gap 30: P = 1 / (1 + (5 / 60)^2).
        (5, 1, 50, 10, 365, 50 / 30 * 365 * 144 / 145),
        # Spend without a recorded purchase counts as one purchase over the tenure.
        (100, 0, 90, 400, 365, 90 / 400 * 365 / (1 + (100 / 800) ** 2)),
        (10, 0, 0, 400, 365, 0.0),
    ],
)
def test_proxy_value_worked_by_hand(recency, purchases, spend, tenure, horizon, expected):
    value = clv.proxy_value(recency, purchases, spend, tenure, horizon_days=horizon)
    assert value == pytest.approx(expected, rel=1e-12)


def test_proxy_value_falls_with_silence_and_passes_missing_values_through():
    value = clv.proxy_value(np.arange(0, 400, 10), 6, 600, 360)
    assert np.all(np.diff(value) < 0)
    missing = clv.proxy_value([10, np.nan, 10], [2, 2, 2], [100, 100, np.nan], [300, 300, 300])
    assert np.isfinite(missing[0]) and np.isnan(missing[1]) and np.isnan(missing[2])
    with pytest.raises(ValueError):
        clv.proxy_value([-1], [2], [100], [300])


# --- per segment ------------------------------------------------------------------------------


def test_value_by_segment_worked_by_hand():
    value = np.array([10.0, 5.0, 1.0, 3.0, 5.0, 2.0, 4.0])
    segment = np.array([2, 1, 2, 2, 1, 2, 2])
    one, two = clv.value_by_segment(value, segment)
    assert one == clv.SegmentValue(
        segment=1, customers=2, mean=5.0, median=5.0, p90=5.0, total=10.0
    )
    # Segment 2 sorted: 1, 2, 3, 4, 10; p90 at position 0.9 x 4 = 3.6: 4 + 0.6 x (10 - 4) = 7.6.
    assert (two.segment, two.customers, two.mean, two.median, two.total) == (2, 5, 4.0, 3.0, 20.0)
    assert two.p90 == pytest.approx(7.6, rel=1e-14)
    assert two.p90 == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90), rel=1e-15)
    assert one.to_dict()["customers"] == 2


def test_value_by_segment_rejects_mismatched_arrays():
    with pytest.raises(ValueError):
        clv.value_by_segment(np.ones(3), np.ones(2))
