"""Translating a scenario's segment references from one run to another.

Segment ids are per run (ordered by revenue), so a scenario saved on run A refers to A's ids.
Given the matching of A's segments to B's (see :mod:`sistack.domain.insights.compare`), every
segment reference in the levers' parameters is rewritten; a segment without a partner raises
``KeyError`` with its id.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

SEGMENT_LISTS = ("sources", "targets", "segments")
SEGMENT_KEYED = ("uplift", "loss_rate", "change", "elasticity")


def remap_segments(scenario: Mapping[str, Any], mapping: Mapping[int, int]) -> dict[str, Any]:
    """A copy of ``scenario`` with segment ids translated by ``mapping`` (old id -> new id)."""

    def new(segment: Any) -> int:
        key = int(segment)
        if key not in mapping:
            raise KeyError(key)
        return mapping[key]

    out = copy.deepcopy(dict(scenario))
    for lever in out.get("levers", []):
        params = lever.get("params", {})
        for name in SEGMENT_LISTS:
            if isinstance(params.get(name), list):
                params[name] = [new(s) for s in params[name]]
        for name in SEGMENT_KEYED:
            if isinstance(params.get(name), dict):
                params[name] = {str(new(s)): v for s, v in params[name].items()}
    return out
