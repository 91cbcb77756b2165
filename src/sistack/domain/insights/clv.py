"""Customer value: how much a customer is expected to spend over a horizon.

Two routes, depending on the data:

- Transactions: the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy
  way") predicts the number of future purchases from frequency, recency and age, and the
  Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves") predicts
  the value of those purchases. :func:`summary_from_transactions` builds their inputs from
  transactions; a run builds the same inputs from its customer table
  (:func:`sistack.domain.insights.value.model_inputs`), and both are tested against the
  published CDNOW summary.
- One row per customer only: :func:`proxy_value`, a documented spend-rate x activity heuristic.

:func:`summary_from_transactions` measures time in weeks, as the paper does; the model
functions work in any unit as long as recency, ``T`` and horizons share it (the fitted
``alpha`` is then in that unit).
Fitting costs O(customers) per likelihood evaluation; prediction is vectorised, so a caller may
fit on a deterministic sample and predict for everyone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from sistack.errors import InputError

FloatArray = NDArray[np.float64]

DAYS_PER_WEEK = 7.0
WEEKS_PER_MONTH = 365.25 / 12.0 / DAYS_PER_WEEK
_LOG_BOUND = 15.0  # fitted parameters stay in [e^-15, e^15]: wide, and no overflow on the way


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters: purchase rates ~ Gamma(r, alpha), dropout ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters: transaction values ~ Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class RFMSummary:
    """Per-customer inputs of the BG/NBD and Gamma-Gamma models (times in weeks)."""

    customer: NDArray[np.int64]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray


@dataclass(frozen=True)
class SegmentValue:
    """Distribution of customer value within one segment."""

    segment: int
    customers: int
    mean: float
    median: float
    p90: float
    total: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _floats(name: str, values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, ...]:
    x, t_x, age = np.broadcast_arrays(
        _floats("frequency", frequency), _floats("recency", recency), _floats("T", T)
    )
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T")
    return x, t_x, age


def _minimize(
    objective: Any, start: FloatArray, args: tuple[Any, ...], model: str
) -> optimize.OptimizeResult:
    result = optimize.minimize(
        objective,
        start,
        args=args,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )
    # L-BFGS-B may stop on a line-search failure at the optimum (nothing left to gain in float
    # precision); a small gradient is what matters. A parameter may end at the e^+-15 bound:
    # that is a limit of the model (e.g. q, v -> inf with v / q fixed: no heterogeneity in
    # spend), where predictions are still those of the limiting model.
    flat = np.max(np.abs(result.jac)) < 1e-4
    if not (result.success or flat) or not np.isfinite(result.fun):
        raise InputError(
            f"The {model} model did not converge on this data ({result.message}).",
            code="clv_fit_failed",
            details={"model": model, "parameters": np.exp(result.x).tolist()},
        )
    return result


def parameters_at_limit(
    params: BGNBDParams | GammaGammaParams, *, margin: float = 1.0
) -> dict[str, str]:
    """Fitted parameters at or near the optimiser's limit: name -> ``"upper"`` or ``"lower"``.

    Parameters live in [e^-15, e^15]. One within ``margin`` (in log units; 1 = a factor e) of
    either end means the likelihood kept improving towards a limiting model - e.g. the BG/NBD's
    a, b -> inf with a / (a + b) fixed: every customer has the same dropout probability; the
    Gamma-Gamma's q, v -> inf with v / q fixed: the mean spend per purchase is the same for
    every customer. On such a ridge the optimiser stops at the bound or somewhere on the way, so
    the number itself means only "very large" (or "very small"); predictions are those of the
    limiting model. Callers should say so.
    """
    names = ("r", "alpha", "a", "b") if isinstance(params, BGNBDParams) else ("p", "q", "v")
    found = {}
    for name in names:
        log_value = math.log(getattr(params, name))
        if log_value >= _LOG_BOUND - margin:
            found[name] = "upper"
        elif log_value <= -_LOG_BOUND + margin:
            found[name] = "lower"
    return found


# --- BG/NBD ---------------------------------------------------------------------------------


def _bgnbd_objective(
    theta: FloatArray,
    x_unique: FloatArray,
    x_share: FloatArray,
    age_new: FloatArray,
    repeaters: tuple[FloatArray, FloatArray, FloatArray],
    penalizer: float,
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood (paper eq. 6) and its gradient in log-parameters.

    ln L = ln A1 + ln A2 + ln(exp(A3) + [x > 0] exp(A4)). A1 and A2 depend on x alone and are
    summed over distinct frequencies (weighted by their share); customers without a repeat
    purchase (``age_new``) contribute A3 only; the others (``repeaters``: x, t_x, T) the
    log-sum-exp of A3 and A4.
    """
    params = np.exp(theta)
    r, alpha, a, b = params
    n = age_new.size + repeaters[0].size
    xu = x_unique
    by_x = special.gammaln(r + xu) - special.gammaln(r) + special.betaln(a, b + xu)
    d_ab = special.digamma(a + b) - special.digamma(a + b + xu)
    d_r = np.dot(x_share, special.digamma(r + xu) - special.digamma(r))
    d_b = np.dot(x_share, special.digamma(b + xu) - special.digamma(b) + d_ab)

    log_new = np.log(alpha + age_new)
    x, t_x, age = repeaters
    log_now = np.log(alpha + age)
    log_last = np.log(alpha + t_x)
    later = b + x - 1.0
    log_a3 = -(r + x) * log_now
    log_a4 = math.log(a) - np.log(later) - (r + x) * log_last
    log_tail = np.logaddexp(log_a3, log_a4)
    w3 = np.exp(log_a3 - log_tail)  # share of the likelihood from "alive at T"
    w4 = np.exp(log_a4 - log_tail)  # share from "dropped out after the last purchase"

    ll = (
        np.dot(x_share, by_x)
        - special.betaln(a, b)
        + r * math.log(alpha)
        + (np.sum(log_tail) - r * np.sum(log_new)) / n
    )
    grad = np.array(
        [
            d_r
            + math.log(alpha)
            - (np.sum(log_new) + np.dot(w3, log_now) + np.dot(w4, log_last)) / n,
            r / alpha
            - (
                r * np.sum(1.0 / (alpha + age_new))
                + np.dot(r + x, w3 / (alpha + age) + w4 / (alpha + t_x))
            )
            / n,
            np.dot(x_share, d_ab) + np.sum(w4) / (a * n),
            d_b - np.sum(w4 / later) / n,
        ]
    )
    value = -float(ll) + penalizer * float(np.sum(params**2))
    return value, -params * grad + 2.0 * penalizer * params**2


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, penalizer: float = 0.0
) -> BGNBDParams:
    """Fit the BG/NBD model by maximum likelihood.

    Args:
        frequency: Repeat purchases x per customer (purchases after the first).
        recency: Time t_x of the last purchase, measured from the first purchase.
        T: Time from the first purchase to the end of observation (same unit as recency).
        penalizer: L2 penalty on (r, alpha, a, b) added to the mean negative log-likelihood,
            as in the ``lifetimes`` package; 0 gives the plain maximum-likelihood estimate.

    Returns:
        The parameters and the unpenalised total log-likelihood at them.

    Raises:
        InputError: No customer has a repeat purchase, or the optimiser did not converge.
    """
    x, t_x, age = _rfm(frequency, recency, T)
    x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
    if penalizer < 0:
        raise ValueError("penalizer must be >= 0")
    if not np.any(x > 0):
        raise InputError(
            "Customer value needs some customers with repeat purchases; none were found.",
            code="clv_no_repeat_purchases",
        )
    x_unique, counts = np.unique(x, return_counts=True)
    repeat = x > 0
    # Start at r = a = b = 1 with alpha matching the observed purchase rate.
    alpha0 = np.clip(np.mean(age) / (np.mean(x) + 1.0), 1e-3, 1e3)
    start = np.log(np.array([1.0, alpha0, 1.0, 1.0]))
    data = (x_unique, counts / x.size, age[~repeat], (x[repeat], t_x[repeat], age[repeat]))
    result = _minimize(_bgnbd_objective, start, (*data, float(penalizer)), "BG/NBD")
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    ll, _ = _bgnbd_objective(result.x, *data, 0.0)
    return BGNBDParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=-ll * x.size, n=int(x.size))


def _log_dropout_odds(
    params: BGNBDParams, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> FloatArray:
    """log of P(dropped out) / P(alive) given (x, t_x, T); -inf when x = 0."""
    repeat = x > 0
    later = np.where(repeat, params.b + x - 1.0, 1.0)
    ratio = np.log(params.alpha + age) - np.log(params.alpha + t_x)
    odds = math.log(params.a) - np.log(later) + (params.r + x) * ratio
    return np.where(repeat, odds, -np.inf)


def probability_alive(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(customer still active at T | x, t_x, T) under the BG/NBD model.

    A customer without repeat purchases has had no chance to drop out (in the BG/NBD, dropout
    happens only right after a purchase), so the probability is exactly 1 for x = 0.
    """
    x, t_x, age = _rfm(frequency, recency, T)
    return np.asarray(special.expit(-_log_dropout_odds(params, x, t_x, age)), dtype=np.float64)


def expected_purchases(
    params: BGNBDParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Expected purchases in the next ``t`` periods given (x, t_x, T): paper eq. (10).

    E[Y(t)] = (a + b + x - 1) / (a - 1)
              * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]
              * P(alive),  with z = t / (alpha + T + t).
    The formula is singular at a = 1 (the limit is finite); ``a`` within 1e-6 of 1 is moved
    to 1 +- 1e-6, which changes the result by a relative amount of the same order.
    """
    x, t_x, age = _rfm(frequency, recency, T)
    horizon = _floats("t", t)
    if np.any(horizon < 0):
        raise ValueError("t must be >= 0")
    alive = special.expit(-_log_dropout_odds(params, x, t_x, age))
    return np.asarray(_purchases_if_alive(params, horizon, x, age) * alive)


def _purchases_if_alive(
    params: BGNBDParams, t: FloatArray | float, x: FloatArray, age: FloatArray
) -> FloatArray:
    """E[Y(t) | x, T, alive at T]: eq. (10) without the P(alive) factor."""
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1.0) > 1e-6 else 1.0 + math.copysign(1e-6, params.a - 1.0)
    ahead = alpha + age + t
    power = np.exp((r + x) * (np.log(alpha + age) - np.log(ahead)))
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, t / ahead)
    return np.asarray((a + b + x - 1.0) / (a - 1.0) * (1.0 - power * hyp))


# --- Gamma-Gamma ----------------------------------------------------------------------------


def _gg_objective(
    theta: FloatArray,
    x_unique: FloatArray,
    x_share: FloatArray,
    x: FloatArray,
    xm: FloatArray,
    constants: tuple[float, float],
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood of the mean spend m over x transactions, and gradient.

    Per customer: ln Gamma(px + q) - ln Gamma(px) - ln Gamma(q) + q ln v + (px - 1) ln m
    + px ln x - (px + q) ln(v + x m). Terms in x alone are summed over distinct frequencies
    (weighted by their share) and terms in the data alone are precomputed (``constants``).
    """
    params = np.exp(theta)
    p, q, v = params
    mean_x_log_xm, mean_log_m = constants
    pxu = p * x_unique
    psi = special.digamma(pxu + q)
    total = v + xm
    log_total = np.log(total)
    inverse = 1.0 / total
    mean_log_total = float(np.mean(log_total))
    mean_x_log_total = float(np.mean(x * log_total))
    by_x = float(np.dot(x_share, special.gammaln(pxu + q) - special.gammaln(pxu)))
    ll = (
        by_x
        - special.gammaln(q)
        + q * math.log(v)
        + p * mean_x_log_xm
        - mean_log_m
        - p * mean_x_log_total
        - q * mean_log_total
    )
    grad = np.array(
        [
            np.dot(x_share, x_unique * (psi - special.digamma(pxu)))
            + mean_x_log_xm
            - mean_x_log_total,
            np.dot(x_share, psi) - special.digamma(q) + math.log(v) - mean_log_total,
            q / v - p * float(np.mean(x * inverse)) - q * float(np.mean(inverse)),
        ]
    )
    return -float(ll), -params * grad


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only customers with a repeat purchase (x > 0) and a positive average repeat value are used:
    the model describes the mean of x transaction values, which is undefined for x = 0 and
    outside the Gamma support for values <= 0. ``n`` tells how many customers were used.

    Args:
        frequency: Repeat purchases x per customer.
        monetary_value: Mean value of the repeat purchases (first purchase excluded).

    Raises:
        InputError: Fewer than two usable customers, or the optimiser did not converge.
    """
    x_all, m_all = np.broadcast_arrays(
        _floats("frequency", frequency), np.asarray(monetary_value, dtype=np.float64)
    )
    repeat = x_all > 0
    if not np.all(np.isfinite(m_all[repeat])):
        raise ValueError("monetary_value must be finite for customers with repeat purchases")
    usable = repeat & (m_all > 0)
    x, m = x_all[usable], m_all[usable]
    if x.size < 2:
        raise InputError(
            "The spend model needs at least two customers with repeat purchases.",
            code="clv_no_repeat_purchases",
        )
    # Start at p = 1, q = 2, so that the population mean p v / (q - 1) is the observed mean.
    start = np.log(np.array([1.0, 2.0, float(np.mean(m))]))
    x_unique, counts = np.unique(x, return_counts=True)
    log_m = np.log(m)
    constants = (float(np.mean(x * (log_m + np.log(x)))), float(np.mean(log_m)))
    args = (x_unique, counts / x.size, x, x * m, constants)
    result = _minimize(_gg_objective, start, args, "Gamma-Gamma")
    p, q, v = (float(value) for value in np.exp(result.x))
    return GammaGammaParams(p=p, q=q, v=v, log_likelihood=-result.fun * x.size, n=int(x.size))


def expected_average_value(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """E[mean transaction value | x, m] = p (v + x m) / (p x + q - 1).

    For x = 0 this is the population mean p v / (q - 1) (``monetary_value`` is ignored there).
    A negative average (returns exceeding purchases) counts as 0, the edge of the model's
    support: the prediction then shrinks towards 0 but stays positive.
    """
    if params.q <= 1.0:
        raise ValueError("q <= 1: the Gamma-Gamma population mean spend is infinite")
    x = _floats("frequency", frequency)
    m = np.where(x > 0, np.fmax(np.asarray(monetary_value, dtype=np.float64), 0.0), 0.0)
    return np.asarray(params.p * (params.v + x * m) / (params.p * x + params.q - 1.0))


def expected_value(
    bgnbd: BGNBDParams,
    gg: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon: float,
    discount_rate: float = 0.0,
    step: float = WEEKS_PER_MONTH,
) -> FloatArray:
    """Expected spend over ``horizon`` = expected purchases x expected value per purchase.

    The product treats the number and the value of purchases as independent given the
    customer's history, which is the Gamma-Gamma model's assumption; it is the usual
    simplification (as in ``lifetimes``' customer_lifetime_value).

    Args:
        horizon: Length of the forecast, in the unit of ``T`` (weeks for
            :func:`summary_from_transactions`).
        discount_rate: Rate per ``step``. With a positive rate the horizon is cut into steps of
            length ``step`` (the last one shorter), the purchases expected within step i are
            discounted by (1 + rate)^-i (end of step), and the results added up. With 0 the
            value is undiscounted (and equal to the stepwise sum, which telescopes).
        step: Length of one discounting step; a month in weeks by default.
    """
    if horizon < 0 or discount_rate < 0 or step <= 0:
        raise ValueError("need horizon >= 0, discount_rate >= 0 and step > 0")
    spend = expected_average_value(gg, frequency, monetary_value)
    x, t_x, age = _rfm(frequency, recency, T)
    alive = special.expit(-_log_dropout_odds(bgnbd, x, t_x, age))
    # The hypergeometric term depends on (x, T) only: evaluate it once per distinct pair (few
    # when T comes from day counts), for every step edge.
    pairs, inverse = np.unique((x + 1j * age).ravel(), return_inverse=True)
    steps = max(1, math.ceil(horizon / step - 1e-9)) if discount_rate > 0 else 1
    edges = np.append(np.arange(steps) * step, horizon)
    discounted = np.zeros(pairs.size)
    before = np.zeros(pairs.size)
    for i, edge in enumerate(edges[1:], start=1):
        upto = _purchases_if_alive(bgnbd, float(edge), pairs.real, pairs.imag)
        discounted += (upto - before) / (1.0 + discount_rate) ** i
        before = upto
    return np.asarray(discounted[inverse].reshape(x.shape) * alive * spend)


# --- Inputs ---------------------------------------------------------------------------------


def summary_from_transactions(
    customer: ArrayLike, day: ArrayLike, amount: ArrayLike, *, reference_day: int
) -> RFMSummary:
    """Frequency, recency, T (in weeks) and monetary value per customer from transactions.

    Purchases are counted per day, as in the CDNOW data of the BG/NBD paper: several
    transactions of a customer on one day are one purchase whose value is their sum.

    - frequency: distinct purchase days - 1 (repeat purchases);
    - recency: (last purchase day - first purchase day) / 7;
    - T: (``reference_day`` - first purchase day) / 7;
    - monetary_value: mean value of the repeat purchase days (the first purchase excluded,
      as the Gamma-Gamma model expects); 0 for customers without a repeat purchase.

    Args:
        customer: Integer customer id of each transaction.
        day: Integer day number of each transaction (days since any fixed epoch).
        amount: Value of each transaction.
        reference_day: End of observation, as a day number; no transaction may be later.

    Returns:
        One entry per distinct customer id, in increasing id order (``customer``).
    """
    ids = np.asarray(customer)
    days = np.asarray(day)
    values = _floats("amount", amount)
    if not (ids.shape == days.shape == values.shape and ids.ndim == 1):
        raise ValueError("customer, day and amount must be 1-d arrays of the same length")
    if ids.size and not (
        np.issubdtype(ids.dtype, np.integer) and np.issubdtype(days.dtype, np.integer)
    ):
        raise ValueError("customer and day must be integer arrays")
    ids, days = ids.astype(np.int64, copy=False), days.astype(np.int64, copy=False)
    if ids.size == 0:
        empty = np.zeros(0)
        return RFMSummary(ids, empty, empty, empty, empty)
    first_day, last_day = int(days.min()), int(days.max())
    if last_day > reference_day:
        raise ValueError("transactions after reference_day; filter them out first")
    # One sort on a (customer, day) key groups transactions into purchase days, and purchase
    # days into customers; the stable sort keeps within-day sums independent of the platform.
    id_min, span = int(ids.min()), last_day - first_day + 1
    keys = (int(ids.max()) - id_min + 1) * span
    if keys >= 2**62:
        raise ValueError("customer id and day ranges too wide to combine")
    key = (ids - id_min) * span + (days - first_day)
    if keys <= 2**32:
        key = key.astype(np.uint32)  # sorts faster than int64
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    day_start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    day_total = np.add.reduceat(values, day_start)
    day_key = key[day_start]
    day_customer, day_number = np.divmod(day_key.astype(np.int64), span)
    cust_start = np.flatnonzero(np.concatenate(([True], day_customer[1:] != day_customer[:-1])))
    cust_end = np.append(cust_start[1:], day_customer.size) - 1
    repeats = (cust_end - cust_start).astype(np.float64)
    repeat_total = day_total.copy()
    repeat_total[cust_start] = 0.0
    repeat_sum = np.add.reduceat(repeat_total, cust_start)
    monetary = np.divide(repeat_sum, repeats, out=np.zeros_like(repeat_sum), where=repeats > 0)
    first = day_number[cust_start]
    return RFMSummary(
        customer=day_customer[cust_start] + id_min,
        frequency=repeats,
        recency=(day_number[cust_end] - first) / DAYS_PER_WEEK,
        T=(reference_day - first_day - first) / DAYS_PER_WEEK,
        monetary_value=monetary,
    )


# --- Customer-level proxy -------------------------------------------------------------------


def proxy_value(
    recency_days: ArrayLike,
    purchases: ArrayLike,
    spend: ArrayLike,
    tenure_days: ArrayLike,
    *,
    horizon_days: float = 365.0,
    min_tenure_days: float = 30.0,
    silence_gaps: float = 2.0,
    shape: float = 2.0,
) -> FloatArray:
    """Expected spend over ``horizon_days`` for data with one row per customer.

    value = spend rate x horizon x P(active), where

    - spend rate = spend / max(tenure, ``min_tenure_days``) per day: what the customer spent
      per day of the relationship. The floor keeps a customer who joined yesterday from being
      extrapolated to a year of daily purchases.
    - typical gap = max(tenure, ``min_tenure_days``) / max(purchases, 1) days.
    - P(active) = 1 / (1 + (recency / (``silence_gaps`` x gap))^``shape``): 1 right after a
      purchase, 1/2 after ``silence_gaps`` typical gaps of silence, then falling like a power.
      A live customer buying at a steady (Poisson) rate is silent for more than two of their
      gaps only e^-2 = 14% of the time, so by then churn is as likely an explanation as chance.
      The power-law tail (log-logistic rather than exponential) follows the BG/NBD and
      Pareto/NBD: once purchase rates vary between customers, silences have heavy tails.

    ``spend`` and ``purchases`` must cover the tenure window. NaN inputs give NaN.

    Args:
        recency_days: Days since the last purchase.
        purchases: Purchases over the observation window.
        spend: Total spend over the observation window.
        tenure_days: Days since the customer's first purchase or sign-up.
        horizon_days: Forecast length.
        min_tenure_days: Floor on tenure for rates and gaps.
        silence_gaps: Silence, in typical gaps, at which P(active) = 1/2.
        shape: Steepness of the decay (> 0).
    """
    recency, count, total, tenure = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (recency_days, purchases, spend, tenure_days))
    )
    for name, array in (("recency", recency), ("purchases", count), ("spend", total)):
        if np.any(array < 0):  # NaN compares False and passes through
            raise ValueError(f"{name} must be >= 0")
    if horizon_days < 0 or min_tenure_days <= 0 or silence_gaps <= 0 or shape <= 0:
        raise ValueError("need horizon_days >= 0 and positive min_tenure_days, silence_gaps, shape")
    window = np.fmax(tenure, min_tenure_days)
    window = np.where(np.isnan(tenure), np.nan, window)
    gap = window / np.fmax(count, 1.0)
    active = 1.0 / (1.0 + (recency / (silence_gaps * gap)) ** shape)
    return np.asarray(total / window * horizon_days * active)


def value_by_segment(value: ArrayLike, segment: ArrayLike) -> tuple[SegmentValue, ...]:
    """Customers, mean, median, 90th percentile and total of ``value`` per segment id (sorted).

    Percentiles use numpy's default linear interpolation. Values must be finite.
    """
    values = _floats("value", value)
    segments = np.asarray(segment)
    if values.shape != segments.shape or values.ndim != 1:
        raise ValueError("value and segment must be 1-d arrays of the same length")
    # Each group is summed in ascending order of value, so the bits do not depend on the row
    # order. A stable sort by segment, then a sort of each group's values, gives the same
    # sequences as one lexsort by (segment, value) at a fraction of its cost.
    order = np.argsort(segments, kind="stable")
    values, segments = values[order], segments[order]
    ids, starts, counts = np.unique(segments, return_index=True, return_counts=True)
    result = []
    for sid, start, n in zip(ids.tolist(), starts.tolist(), counts.tolist(), strict=True):
        group = np.sort(values[start : start + n])
        median, p90 = np.percentile(group, [50.0, 90.0])
        result.append(
            SegmentValue(
                segment=int(sid),
                customers=int(n),
                mean=float(np.mean(group)),
                median=float(median),
                p90=float(p90),
                total=float(np.sum(group)),
            )
        )
    return tuple(result)
