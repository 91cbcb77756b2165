"""Searches over 0/1 choices of segments: an exact knapsack, and the best set for any score.

Used by the campaign contact set (:mod:`.contacts`): the expected profit of a set is linear,
so the best set under a budget cap is a 0/1 knapsack, solved exactly here by meet in the
middle; a quantile of profit is not, so :func:`best_subset` tries every set while that is
cheap and climbs one flip at a time otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from sistack.domain.simulation.baseline import FloatArray

EXACT_HALF = 15  # meet in the middle: at most 2^15 subsets per half
ENUMERATION_WORK = 2**12 * 2_000  # sets x draws the quantile objective may try one by one
TOLERANCE = 1e-9  # relative slack on the budget cap (sums of costs in another order)


def subsets(count: int) -> NDArray[np.float64]:
    """Every subset of ``count`` items as 0/1 rows, shape (2^count, count)."""
    masks = np.arange(2**count)[:, None]
    return ((masks >> np.arange(count)) & 1).astype(np.float64)


def best_knapsack(values: FloatArray, costs: FloatArray, cap: float) -> NDArray[np.bool_]:
    """Exact 0/1 knapsack: the subset with the highest total value and total cost <= ``cap``.

    Meet in the middle: all subsets of each half; for each subset of the first half, the best
    second-half subset that still fits (sorted by cost, running maximum of value). Ties go to
    the first subset found, so the answer is deterministic.
    """
    m = len(values)
    if m > 2 * EXACT_HALF:
        raise ValueError(f"at most {2 * EXACT_HALF} candidates, got {m}")
    half = m // 2
    left, right = subsets(half), subsets(m - half)
    left_value, left_cost = left @ values[:half], left @ costs[:half]
    right_value, right_cost = right @ values[half:], right @ costs[half:]
    order = np.argsort(right_cost, kind="stable")
    sorted_cost = right_cost[order]
    running = np.maximum.accumulate(right_value[order])
    # where the running maximum was first reached: the positions that raise it, carried forward
    raises = np.concatenate([[True], running[1:] > running[:-1]])
    best_at = np.maximum.accumulate(np.where(raises, np.arange(len(order)), 0))
    slack = TOLERANCE * max(cap, 1.0)
    fits = np.searchsorted(sorted_cost, cap - left_cost + slack, side="right") - 1
    total = np.where(fits >= 0, left_value + running[np.maximum(fits, 0)], -np.inf)
    i = int(np.argmax(total))
    if not np.isfinite(total[i]):  # nothing fits (a negative cap): contact none
        return np.zeros(m, dtype=bool)
    j = int(order[best_at[fits[i]]])
    return np.concatenate([left[i], right[j]]).astype(bool)


def best_subset(
    score: Callable[[NDArray[np.bool_]], float],
    *,
    cost: FloatArray,
    forced: NDArray[np.bool_],
    free: NDArray[np.bool_],
    room: float,
    start: NDArray[np.bool_],
    draws: int,
) -> tuple[NDArray[np.bool_], str]:
    """The set (``forced`` plus some of ``free``, the free ones costing at most ``room``) with
    the highest ``score``, and how it was found.

    Every feasible set when that costs at most ``ENUMERATION_WORK`` (sets x ``draws``), else
    a local search from ``start`` and from ``forced`` alone (the better answer; ties: fewer
    segments). ``start`` wins ties in the enumeration.
    """
    slots = np.flatnonzero(free)
    limit = room * (1 + TOLERANCE)
    if 2 ** len(slots) * draws <= ENUMERATION_WORK:
        best, best_score = start, score(start)
        for row in subsets(len(slots)).astype(bool):
            x = forced.copy()
            x[slots[row]] = True
            if cost[slots[row]].sum() <= limit and (s := score(x)) > best_score:
                best, best_score = x, s
        return best, "enumeration"
    answers = [
        _climb(start, slots, cost, forced, limit, score),
        _climb(forced, slots, cost, forced, limit, score),
    ]
    return max(answers, key=lambda x: (score(x), -int(x.sum()))), "local_search"


def _climb(
    start: NDArray[np.bool_],
    slots: NDArray[np.intp],
    cost: FloatArray,
    forced: NDArray[np.bool_],
    limit: float,
    score: Callable[[NDArray[np.bool_]], float],
) -> NDArray[np.bool_]:
    """Flip the one free segment that raises the score most, until none does."""
    x, current = start.copy(), score(start)
    while True:
        best_i, best_score = -1, current
        for i in slots:
            y = x.copy()
            y[i] = not y[i]
            if float(cost[y & ~forced].sum()) > limit:
                continue
            if (s := score(y)) > best_score + 1e-12 * max(1.0, abs(best_score)):
                best_i, best_score = int(i), s
        if best_i < 0:
            return x
        x[best_i] = not x[best_i]
        current = best_score
