"""Drawing chart specs for paper with vl-convert: SVG, or a PNG inside an SVG for dense charts.

It imports vl-convert and nothing of the chart builders, so a process that only draws (the
report charts' drawing process, :mod:`sistack.service.report_charts`) starts in 0.2 s instead
of 1.7 s with Altair and scikit-learn. The Vega-Lite version is passed in: it is chosen where
Altair is loaded (:data:`sistack.io.exports.charts.VL_VERSION`).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import vl_convert as vlc

PAPER_FONT = "Arial, 'Liberation Sans', Helvetica, sans-serif"
RASTER_CHARTS = frozenset({"projection"})
Spec = dict[str, Any]


def for_paper(spec: Spec) -> Spec:
    """The spec with a font that vl-convert and the reader of the SVG measure alike.

    vl-convert places text with its own font metrics; with "system-ui" a browser or WeasyPrint
    may draw a wider font and right-aligned labels spill out of the picture. Arial and its
    metric twin Liberation Sans are where every renderer finds them.
    """
    return {**spec, "config": {**spec.get("config", {}), "font": PAPER_FONT}}


def svg(spec: Spec, *, vl_version: str) -> str:
    """Render a spec to SVG. No URL may be fetched while rendering: every chart carries its
    data inline."""
    drawn: str = vlc.vegalite_to_svg(for_paper(spec), vl_version=vl_version, allowed_base_urls=[])
    return drawn


def raster_svg(spec: Spec, *, vl_version: str, scale: float = 2.0) -> str:
    """An SVG holding a PNG of the chart: for charts of thousands of marks (the projection).

    WeasyPrint spends over a second laying out 2,000 vector circles; a 2x raster prints the
    same and costs a tenth of that. Text stays sharp enough at print size.
    """
    png = vlc.vegalite_to_png(
        for_paper(spec), vl_version=vl_version, scale=scale, allowed_base_urls=[]
    )
    width, height = (v / scale for v in _png_size(png))
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}"><image width="{width:g}" height="{height:g}" '
        f'href="data:image/png;base64,{data}"/></svg>'
    )


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def report_chart_names(k: int) -> list[str]:
    """The charts the report shows, in order (the PDF renders only these to SVG)."""
    names = ["share", "features", "response", "value", "k_scores", "projection"]
    for s in range(1, k + 1):
        names += [f"profile_{s}", f"channels_{s}"]
    return names


def report_svgs(specs: dict[str, Spec], k: int, vl_version: str) -> dict[str, str]:
    """SVG of each chart the report shows (of those the run has); scatter plots as raster."""
    return {
        name: stable_ids(
            (raster_svg if name in RASTER_CHARTS else svg)(specs[name], vl_version=vl_version),
            name,
        )
        for name in report_chart_names(k)
        if name in specs
    }


_ID = re.compile(r'((?<=\s)id="|url\(#|(?<=\s)href="#)([^")]+)')


def stable_ids(svg: str, prefix: str) -> str:
    """The SVG with its element ids renamed ``<prefix>-0``, ``<prefix>-1``... in order.

    Vega numbers clip paths with a counter that runs for the whole process (``clip17``), so the
    same chart drawn twice differed in its ids, and a run's stored SVGs were not reproducible;
    the chart's name as prefix also keeps ids unique when every chart is inlined in one page.
    """
    names: dict[str, str] = {}
    for match in _ID.finditer(svg):
        if match.group(1) == 'id="':  # an element's id (attributes follow a space)
            names.setdefault(match.group(2), f"{prefix}-{len(names)}")
    return _ID.sub(lambda m: m.group(1) + names.get(m.group(2), m.group(2)), svg)
