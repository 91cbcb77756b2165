"""Which definition explains a number of an insights or comparison document.

The rule of ``sistack.domain.insights.report``: a number is defined under ``"<parent>.<key>"``
or ``"<key>"``; a number inside a map keyed by data values or inside a rate interval is defined
by that map or interval. Segment ids, seeds and the fitted models' parameters are structure.
"""

from collections.abc import Iterator, Mapping
from typing import Any

DATA_KEYED = {"shares", "index", "category_mix", "population_std", "tier_counts", "deltas"}
INTERVALS = {"observed", "interval"}
STRUCTURAL_KEYS = {"segment", "segment_a", "segment_b", "seed"}
STRUCTURAL_TREES = {("overall", "value_model"), ("response_model", "params")}


def numeric_leaves(doc: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every number (list positions left out); booleans are not numbers."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            yield from numeric_leaves(value, (*path, str(key)))
    elif isinstance(doc, list | tuple):
        for value in doc:
            yield from numeric_leaves(value, path)
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        yield path


def definition_of(path: tuple[str, ...], definitions: Mapping[str, str]) -> str | None:
    """The definition key of the number at ``path``: ``""`` for structure, None when missing."""
    if path[-1] in STRUCTURAL_KEYS or any(path[: len(t)] == t for t in STRUCTURAL_TREES):
        return ""
    if len(path) > 1 and path[-2] in DATA_KEYED | INTERVALS:
        path = path[:-1]
    candidates = [f"{path[-2]}.{path[-1]}"] if len(path) > 1 else []
    return next((c for c in [*candidates, path[-1]] if definitions.get(c)), None)


def undefined(doc: Mapping[str, Any], definitions: Mapping[str, str]) -> list[str]:
    """Paths of the numbers of ``doc`` that no definition explains."""
    missing = {p for p in numeric_leaves(doc) if definition_of(p, definitions) is None}
    return sorted("/".join(p) for p in missing)
