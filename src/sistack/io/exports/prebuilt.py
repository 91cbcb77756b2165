"""A run's charts, built once when the run is written: the dashboard's specs and the report's SVGs.

Building the charts of a large run costs about two seconds (a sample of the customers read
from the feature file, Altair writing the specs, vl-convert drawing the report's SVGs). A run
is immutable, so that work is done once, while the run is written, and kept as two artifacts
beside the others (listed in the manifest with their sha256, checked by ``sistack doctor`` and
compared by ``reproduce``):

* ``charts.json``: every Vega-Lite spec of :func:`~sistack.io.exports.charts.run_charts`, the
  specs the dashboard embeds;
* ``report-charts.json``: the SVG of each chart the report prints
  (:func:`~sistack.io.exports.report.report_svgs`), which the PDF and the report page insert.

Both are made from the run's documents exactly as they are stored (the documents pass through
the same JSON encoding first), so they equal what would be built later from the stored files.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from sistack.io.exports.charts import run_charts
from sistack.io.exports.report import projection_sample, report_svgs
from sistack.io.store.artifacts import dump_json

CHARTS = "charts.json"
REPORT_CHARTS = "report-charts.json"
PREBUILT = (CHARTS, REPORT_CHARTS)


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
    """``{"charts.json": {name: spec}, "report-charts.json": {name: svg}}`` of a run.

    ``profiles``, ``insights`` and ``model`` are the run's documents as stored; ``features``
    and ``assignments`` the run's tables in memory (row-aligned, as the pipeline makes them),
    from which the projection chart samples its customers the way
    :func:`~sistack.io.exports.report.read_projection_sample` samples the stored files.
    """
    sample = projection_sample(features.lazy(), assignments.lazy())
    specs = run_charts(profiles=profiles, insights=insights, model=model, projection=sample)
    specs = as_stored(specs)
    svgs = report_svgs(specs, len(insights["segments"]))
    return {CHARTS: specs, REPORT_CHARTS: svgs}
