"""The executive report: one HTML document for the browser, the printer and the PDF.

:func:`render_report_html` fills ``templates/report.html`` from a run's documents (manifest,
profiles, insights, quality, model) and its saved scenarios. Nothing is computed here but
presentation: the numbers are the documents' own, formatted by the filters below (which the web
pages use too, so a number reads the same on screen and on paper). Autoescaping is on; charts
are images (``data:`` URLs of vl-convert's SVG), never markup of the document.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from sistack.io.exports import drawing
from sistack.io.exports.charts import VL_VERSION, segment_colors

PROJECTION_ROWS = 2000
DASH = "—"

# The run's headline numbers: (key in insights["overall"], label, filter, definition key).
KPIS: tuple[tuple[str, str, str, str], ...] = (
    ("customers", "Customers", "integer", "customers"),
    ("revenue", "Revenue", "money", "revenue"),
    ("avg_revenue", "Revenue per customer", "money", "avg_revenue"),
    ("top20_revenue_share", "Revenue from top 20%", "pct", "top20_revenue_share"),
    ("expected_response_rate", "Expected response", "pct", "expected_response_rate"),
    ("revenue_exposed", "Revenue depending on deals", "money", "revenue_exposed"),
    ("value_total", "Expected 12-month value", "money", "value_12m"),
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_integer(value: Any) -> str:
    """1352030 -> ``1,352,030``."""
    return DASH if _missing(value) else f"{round(value):,}"


def fmt_number(value: Any, digits: int = 2) -> str:
    return DASH if _missing(value) else f"{value:,.{digits}f}"


# Compact amounts: (shown from, divided by, suffix). Below 10,000 an amount is written in full.
MONEY_UNITS = ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "K"))


def fmt_money(value: Any) -> str:
    """Compact amounts with three significant digits: ``1.35M``, ``71.4K``, ``714K``, ``9,000``."""
    if _missing(value):
        return DASH
    if abs(value) >= 9999.5:  # round first, so 999,999 reads 1.00M and not 1,000K
        value = float(f"{value:.3g}")
    for start, unit, suffix in MONEY_UNITS:
        if abs(value) >= start:
            scaled = value / unit
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            return f"{scaled:,.{digits}f}{suffix}"
    return f"{value:,.0f}"


def fmt_signed_money(value: Any) -> str:
    """``+18.55K`` / ``-9,277``: a change, always with its sign (zero reads ``0``)."""
    if _missing(value):
        return DASH
    text = fmt_money(value)
    return text if value < 0 or text == "0" else f"+{text}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """0.2037 -> ``20.4%``."""
    return DASH if _missing(value) else f"{value * 100:.{digits}f}%"


def fmt_signed_pct(value: Any, digits: int = 1) -> str:
    """A change of a share in percentage points: 0.016 -> ``+1.6 pp``."""
    return DASH if _missing(value) else f"{value * 100:+.{digits}f} pp"


def fmt_ratio(value: Any) -> str:
    """2.5914 -> ``2.59×``."""
    return DASH if _missing(value) else f"{value:.2f}×"


def fmt_z(value: Any) -> str:
    return DASH if _missing(value) else f"{value:+.2f}"


def fmt_label(name: str) -> str:
    """``avg_order_value`` -> ``Avg order value``."""
    return str(name).replace("_", " ").capitalize()


def fmt_rows(rows: Iterable[int], limit: int = 5) -> str:
    rows = list(rows)
    more = ", …" if len(rows) > limit else ""
    return ", ".join(str(r) for r in rows[:limit]) + more


FILTERS: dict[str, Callable[..., str]] = {
    "integer": fmt_integer,
    "number": fmt_number,
    "money": fmt_money,
    "signed_money": fmt_signed_money,
    "pct": fmt_pct,
    "signed_pct": fmt_signed_pct,
    "ratio": fmt_ratio,
    "z": fmt_z,
    "label": fmt_label,
    "rows": fmt_rows,
}


def format_as(value: Any, name: str) -> str:
    """Apply the filter called ``name`` (tables of KPIs name their format)."""
    return FILTERS[name](value)


def add_filters(env: jinja2.Environment) -> jinja2.Environment:
    """Install the number formats (and the KPI list) in a Jinja2 environment."""
    env.filters.update(FILTERS)
    env.filters["format_as"] = format_as
    env.globals["kpis"] = KPIS
    return env


@functools.cache
def environment() -> jinja2.Environment:
    """The report's Jinja2 environment (built on first use, then shared); autoescape on."""
    loader = jinja2.PackageLoader("sistack.io.exports", "templates")
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    return add_filters(env)


@functools.cache
def stylesheet(name: str) -> Markup:
    """A stylesheet of the report (our own file, inserted as is)."""
    path = resources.files("sistack.io.exports").joinpath(f"templates/{name}")
    return Markup(path.read_text(encoding="utf-8"))


def report_svgs(specs: dict[str, dict[str, Any]], k: int) -> dict[str, str]:
    """SVG of each chart the report shows (of those the run has); scatter plots as raster."""
    return drawing.report_svgs(specs, k, VL_VERSION)


CHART_ALT = {
    "share": "Share of customers and of revenue per segment",
    "features": "How each segment differs from the average, feature by feature",
    "response": "Response rate per segment with its 95% interval",
    "value": "Expected 12-month value per customer of each segment",
    "k_scores": "Silhouette and Davies-Bouldin scores per number of segments",
    "projection": "A sample of customers on the two main axes, coloured by segment",
    "profile": "The features where segment {} differs most from the average",
    "channels": "Purchases by channel, segment {} next to all customers",
}


def chart_image(svg: str, name: str) -> Markup:
    """A chart's SVG as an ``<img>`` with a ``data:`` URL.

    WeasyPrint then draws each chart with its SVG renderer instead of laying out thousands of
    SVG elements as part of the page (about a fifth less time per PDF), and markup drawn by
    vl-convert never becomes part of the report's document, so it can run nothing.
    """
    kind, _, segment = name.partition("_")
    alt = CHART_ALT.get(name) or CHART_ALT.get(kind, "Chart").format(segment)
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Markup('<img src="data:image/svg+xml;base64,{}" alt="{}">').format(Markup(data), alt)


def read_projection_sample(
    features: Path, assignments: Path, *, rows: int = PROJECTION_ROWS
) -> pl.DataFrame:
    """:func:`projection_sample` of a run's stored feature and assignment files."""
    return projection_sample(pl.scan_parquet(features), pl.scan_parquet(assignments), rows=rows)


def projection_sample(
    features: pl.LazyFrame, assignments: pl.LazyFrame, *, rows: int = PROJECTION_ROWS
) -> pl.DataFrame:
    """Up to ``rows`` customers spread evenly through a run's feature table, with their segment.

    Deterministic (every n-th row), and cheap on a large run: only the sampled rows of the
    feature table are materialised, and two columns of the assignments.
    """
    total = int(features.select(pl.len()).collect().item())
    step = max(1, math.ceil(total / rows))
    sample = features.gather_every(step).head(rows).collect()
    segments = assignments.select("customer_id", "segment")
    ids = sample.get_column("customer_id")
    found = segments.filter(pl.col("customer_id").is_in(ids.implode())).collect()
    return sample.join(found, on="customer_id", how="inner", maintain_order="left")


def render_report_html(
    *,
    run: dict[str, Any],
    manifest: dict[str, Any],
    profiles: dict[str, Any],
    insights: dict[str, Any],
    quality: dict[str, Any],
    model: dict[str, Any],
    scenarios: list[dict[str, Any]],
    charts_svg: dict[str, str] | None = None,
    for_pdf: bool = False,
) -> str:
    """The executive report of a run as one self-contained HTML document.

    Pages: cover (provenance), executive summary, segments at a glance, one page per segment,
    saved scenarios (when there are any), then three appendix pages: method, definitions, data
    quality. ``scenarios`` are ``{"name": ..., "result": <simulate result>}``; ``charts_svg``
    maps chart names (see :func:`~sistack.io.exports.drawing.report_chart_names`) to SVG.
    ``for_pdf`` leaves out the screen-only toolbar.
    """
    segments = insights["segments"]
    colors = segment_colors(len(segments))
    stability = {p["segment"]: p.get("stability") for p in profiles["profiles"]}
    svgs = {name: chart_image(svg, name) for name, svg in (charts_svg or {}).items()}
    mapping = manifest.get("mapping") or {}
    mapping_rows = sorted((mapping.get("columns") or {}).items())
    mapping_rows += [(column, None) for column in mapping.get("ignored") or []]
    return (
        environment()
        .get_template("report.html")
        .render(
            run=run,
            manifest=manifest,
            profiles=profiles,
            insights=insights,
            overall=insights["overall"],
            definitions=insights.get("definitions", {}),
            segments=segments,
            color_of={s["segment"]: c for s, c in zip(segments, colors, strict=True)},
            stability=stability,
            quality=quality,
            model=model,
            scenarios=scenarios,
            charts=svgs,
            mapping_rows=mapping_rows,
            for_pdf=for_pdf,
            css=stylesheet("report.css"),
            screen_css=stylesheet("report-screen.css"),
        )
    )
