"""A run's chart specs, built once when the run is written (``charts.json``).

The specs of a large run take a few tenths of a second to build (a sample of the customers read
from the feature table, Altair writing each spec). A run is immutable, so that is done once,
while the run is written, and kept as an artifact beside the others (listed in the manifest
with its sha256, checked by ``sistack doctor`` and compared by ``reproduce``): every spec of
:func:`~sistack.io.exports.charts.run_charts`, which the dashboard embeds. The specs are made
from the run's documents exactly as they are stored (the documents pass through the same JSON
encoding first), so they equal what would be built later from the stored files.

The report's SVGs are not drawn here: vl-convert takes about 1.3 s for a report's 15 charts
(half of it starting its renderer) and holds the interpreter meanwhile, a sixth of a
1M-customer run. They are drawn from ``charts.json`` when the dashboard first opens the run
(in a drawing process) or by its first report page or PDF, and cached with its exports
(:mod:`sistack.service.report_charts`). Runs written by earlier versions carry them as
``report-charts.json``, which is read as it is.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from sistack.io.exports.charts import run_charts
from sistack.io.exports.report import projection_sample
from sistack.io.store.artifacts import dump_json

CHARTS = "charts.json"
REPORT_CHARTS = "report-charts.json"  # the report's SVGs, in runs of earlier versions


def as_stored(document: Any) -> Any:
    """A document as a reader of its stored JSON sees it (string keys, lists for tuples)."""
    return json.loads(dump_json(document))


def chart_documents(
    *,
    profiles: dict[str, Any],
    insights: dict[str, Any],
    model: dict[str, Any],
    features: pl.DataFrame,
    assignments: pl.DataFrame,
) -> dict[str, dict[str, Any]]:
    """``{"charts.json": {name: spec}}`` of a run.

    ``profiles``, ``insights`` and ``model`` are the run's documents as stored; ``features``
    and ``assignments`` the run's tables in memory (row-aligned, as the pipeline makes them),
    from which the projection chart samples its customers the way
    :func:`~sistack.io.exports.report.read_projection_sample` samples the stored files.
    """
    sample = projection_sample(features.lazy(), assignments.lazy())
    specs = run_charts(profiles=profiles, insights=insights, model=model, projection=sample)
    return {CHARTS: as_stored(specs)}
