"""Guardrails that look at a whole scenario, not at one lever.

A lever warns about what it alone does (a deeper discount into a discount-dependent segment, a
rate above the data's range). What only the levers together do is checked here, on their summed
effects: a marketing budget taken to zero or below by several budget moves.
"""

from __future__ import annotations

import numpy as np

from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.registry import Guardrail, Lever

BUDGET_TOLERANCE = 1e-9  # relative: a net budget this close to 0 counts as emptied


def emptied_budgets(
    baseline: Baseline, budget: FloatArray, levers: list[Lever], costs: list[FloatArray]
) -> list[Guardrail]:
    """Warn for each segment whose marketing budget the levers together take to 0 or below.

    Checked on the net budget of the whole scenario (two shifts of 0.7 from one segment move
    140% of its budget although neither lever alone empties it); the scenario's cost of such a
    segment is then held at 0 (see :func:`.scenario.simulate`).

    Args:
        baseline: per-segment inputs.
        budget: baseline marketing budget per segment.
        levers: the scenario's levers.
        costs: each lever's marketing-cost delta per segment at the point estimates.
    """
    net = budget + np.sum(costs, axis=0)
    out = []
    for j, seg in enumerate(baseline.ids):
        takers = sorted({lv.name for lv, c in zip(levers, costs, strict=True) if c[j] < 0})
        if not takers or net[j] > BUDGET_TOLERANCE * budget[j]:
            continue
        moved = budget[j] - net[j]
        message = (
            f"The levers take {moved:,.2f} from segment {seg}'s marketing budget of "
            f"{budget[j]:,.2f}, which empties it"
        )
        if net[j] < -BUDGET_TOLERANCE * budget[j]:
            message += (
                f"; its cost is held at 0, and the {-net[j]:,.2f} moved beyond its budget is "
                "new money the targets spend"
            )
        out.append(
            Guardrail(
                "budget_emptied",
                message + ".",
                segment=seg,
                lever=takers[0] if len(takers) == 1 else None,
                values={"budget": float(budget[j]), "net_budget": float(net[j])},
            )
        )
    return out
