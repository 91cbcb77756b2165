"""Uncertain inputs of a what-if and how their spread is summarised.

What is uncertain, and how it is drawn:

* response rates: from each segment's Beta posterior (see :mod:`.baseline`); a rate known
  without a count stays fixed, an unknown rate stays unknown (NaN);
* elasticities: Normal(value, 0.25 |value|) truncated to the allowed range
  (:meth:`.registry.LeverContext.elasticity`);
* rates a person typed in (an uplift, a loss rate, a share): fixed, they are decisions or
  explicit assumptions;
* retention: fixed. The change of retention is typed in (a decision), and the segment's
  12-month value it multiplies is persisted as a model projection without an interval: the
  run keeps its spread across customers (mean, median, P90), which says how customers differ,
  not how uncertain the segment's total is. Drawing from that spread would give an interval
  that looks like uncertainty and is not, so the retention lever's interval is its point value
  until the insights persist an interval for the value.

Random numbers come from explicitly seeded generators, one stream per purpose: stream 0 for
response rates, stream ``i + 1`` for the lever at position ``i``. The same scenario and seed give
the same numbers, and adding a lever does not change the draws of the levers before it.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.stats import beta as beta_dist

from sistack.domain.simulation.baseline import Baseline, FloatArray

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_NAMES = ("p10", "p50", "p90")
RESPONSE_STREAM = 0


def generator(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of a seeded run."""
    return np.random.default_rng([seed, stream])


def point_response(baseline: Baseline) -> FloatArray:
    """Response rates at their point estimates, shape (1, k)."""
    return np.asarray(baseline.response_rate, dtype=np.float64)[None, :].copy()


def response_draws(baseline: Baseline, *, draws: int, seed: int) -> FloatArray:
    """Draws of every segment's response rate, shape (draws, k)."""
    out = np.broadcast_to(baseline.response_rate, (draws, baseline.k)).copy()
    mask = np.isfinite(baseline.response_alpha) & np.isfinite(baseline.response_beta)
    if mask.any():
        rng = generator(seed, RESPONSE_STREAM)
        out[:, mask] = rng.beta(
            baseline.response_alpha[mask], baseline.response_beta[mask], size=(draws, mask.sum())
        )
    return out


def quantiles(columns: FloatArray) -> FloatArray:
    """P10, P50 and P90 of each column of a (draws, m) array, shape (3, m).

    A column with NaN (e.g. an ROI where the cost is 0) gives NaN. Columns that do not vary
    across draws (most of them in a typical scenario) are not sorted: their quantiles are their
    value, which keeps the cost of a 10,000-draw summary to the columns that actually vary.
    """
    low, high = columns.min(axis=0), columns.max(axis=0)
    out = np.broadcast_to(low, (len(QUANTILES), columns.shape[1])).copy()
    varying = np.flatnonzero(low != high)  # includes columns with NaN: their quantile is NaN
    if varying.size:
        out[:, varying] = np.quantile(columns[:, varying], QUANTILES, axis=0)
    return out


@functools.lru_cache(maxsize=32)
def quantile_weights(draws: int, q: float) -> FloatArray:
    """Harrell-Davis weights: the q-quantile as a smooth weighted sum of order statistics.

    The plain empirical quantile jumps from one draw to another as the budgets move, which a
    gradient-based solver cannot follow; the Harrell-Davis estimate moves smoothly and agrees
    with it to within the Monte Carlo error. Cached (read-only): a search asks for the same
    weights many times.
    """
    edges = beta_dist.cdf(np.arange(draws + 1) / draws, q * (draws + 1), (1 - q) * (draws + 1))
    weights = np.diff(edges)
    weights.flags.writeable = False
    return weights


def harrell_davis(values: FloatArray, q: float) -> float:
    """Harrell-Davis estimate of the q-quantile of ``values`` (one value per draw)."""
    return float(quantile_weights(len(values), q) @ np.sort(values))


class QuantileBatch:
    """Collects named (draws, ...) arrays, takes all their quantiles at once, hands them back.

    One call over all outputs of a scenario instead of one per output: the constant columns
    are skipped together and the varying ones sorted together.
    """

    def __init__(self) -> None:
        self.arrays: list[FloatArray] = []
        self.slices: dict[str, tuple[slice, tuple[int, ...]]] = {}
        self.width = 0

    def add(self, key: str, array: FloatArray) -> None:
        flat = array.reshape(array.shape[0], -1)
        self.slices[key] = (slice(self.width, self.width + flat.shape[1]), array.shape[1:])
        self.width += flat.shape[1]
        self.arrays.append(flat)

    def quantiles(self) -> dict[str, FloatArray]:
        q = quantiles(np.concatenate(self.arrays, axis=1))
        return {k: q[:, s].reshape(3, *shape) for k, (s, shape) in self.slices.items()}
