"""Vega-Lite chart specs of a run, built with Altair from the run's documents.

One spec serves the screen (rendered in the browser by vega-embed from the locally served
bundle, :func:`vega_bundle`) and paper (rendered to SVG by vl-convert, :func:`to_svg`). Every
chart colours a segment with the same colour (:func:`segment_colors`), so a reader follows
segment 3 from the overview to the heatmap to the PDF. Specs only plot numbers the documents
hold; the only arithmetic here is presentation (a z-score against the population, a 2-D PCA
projection of a sample of customers).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import altair as alt
import numpy as np
import polars as pl
import vl_convert as vlc

from sistack.domain.segmentation.model import FeatureScaler
from sistack.io.exports import drawing


def _vl_version() -> str:
    """The newest Vega-Lite that vl-convert bundles, not newer than the one Altair writes."""
    wanted = tuple(int(p) for p in alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    known = [tuple(int(p) for p in v.split(".")[:2]) for v in vlc.get_vegalite_versions()]
    usable = [v for v in known if v[0] == wanted[0] and v <= wanted] or [wanted]
    major, minor = max(usable)
    return f"{major}.{minor}"


VL_VERSION = _vl_version()
BASE_COLORS = (
    "#2f5d8c", "#d9822b", "#3a9278", "#c4474f", "#7a68a6",
    "#8c6d4f", "#cf7fb5", "#5f7183", "#b5a14a", "#4ba3c3",
)  # fmt: skip
NEUTRAL = "#b8c0cc"
CHANNEL_COLORS = ("#1f3a5f", "#4f6d8f", "#8fa6bf", "#c5d2e0", "#e4eaf1")
TIER_COLORS = {"low": "#dfe6ee", "medium": "#e8b07a", "high": "#c4474f"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
WIDTH = 520
PROFILE_FEATURES = 8
CONFIG: dict[str, Any] = {
    "font": FONT,
    "view": {"stroke": None},
    "axis": {
        "labelColor": "#4a5463",
        "titleColor": "#4a5463",
        "gridColor": "#eceff3",
        "domainColor": "#c9d0d9",
        "tickColor": "#c9d0d9",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": 500,
    },
    "axisY": {"labelLimit": 240},
    "legend": {"labelColor": "#4a5463", "titleColor": "#4a5463", "labelLimit": 240},
    "title": {"color": "#1b2330", "fontSize": 13, "fontWeight": 600, "anchor": "start"},
}


def segment_colors(k: int) -> list[str]:
    """``k`` distinct colours, segment 1 first; past ten, the base colours again, lighter."""
    colors = []
    for i in range(k):
        base = BASE_COLORS[i % len(BASE_COLORS)]
        colors.append(_tint(base, min(0.25 * (i // len(BASE_COLORS)), 0.75)))
    return colors


def _tint(color: str, amount: float) -> str:
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def segment_label(segment: int, name: str) -> str:
    return f"{segment} · {name}"


def feature_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _labels(insights: dict[str, Any]) -> list[str]:
    return [segment_label(s["segment"], s["persona"]["name"]) for s in insights["segments"]]


def _color(labels: list[str], **kwargs: Any) -> alt.Color:
    scale = alt.Scale(domain=labels, range=segment_colors(len(labels)))
    return alt.Color("label:N", scale=scale, **kwargs)


def _data(name: str = "rows") -> alt.Data:
    """A named data source; the rows are attached by :func:`_spec` (Altair never walks them)."""
    return alt.Data(name=name)


def _room_for_labels(values: Iterable[float]) -> alt.Scale:
    """An x scale from zero with room after the longest bar for its value label."""
    top = max((v for v in values if v is not None), default=0.0)
    return alt.Scale(domain=[0, top * 1.12 if top > 0 else 1], nice=False)


def _spec(chart: alt.TopLevelMixin, **datasets: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = chart.to_dict(validate=False)
    spec["datasets"] = datasets
    spec["config"] = CONFIG
    return spec


def share_chart(insights: dict[str, Any]) -> dict[str, Any]:
    """Customer share and revenue share per segment, side by side in the segment's colour."""
    labels = _labels(insights)
    measures = ["Customers", "Revenue"]
    rows = []
    for label, s in zip(labels, insights["segments"], strict=True):
        c = s["contribution"]
        rows.append({"label": label, "measure": measures[0], "share": c["customer_share"]})
        rows.append({"label": label, "measure": measures[1], "share": c["revenue_share"]})
    base = alt.Chart(_data("rows")).encode(
        y=alt.Y("label:N", sort=labels, title=None),
        yOffset=alt.YOffset("measure:N", sort=measures),
        x=alt.X(
            "share:Q",
            axis=alt.Axis(format="%"),
            title="Share of all customers / revenue",
            scale=_room_for_labels(r["share"] for r in rows),
        ),
    )
    bars = base.mark_bar(cornerRadiusEnd=2).encode(
        color=_color(labels, legend=None),
        opacity=alt.Opacity(
            "measure:N",
            sort=measures,
            scale=alt.Scale(domain=measures, range=[0.35, 1.0]),
            legend=alt.Legend(title=None, orient="top", symbolFillColor="#5f7183"),
        ),
        tooltip=["label:N", "measure:N", alt.Tooltip("share:Q", format=".1%")],
    )
    text = base.mark_text(align="left", dx=4, fontSize=10, color="#4a5463").encode(
        text=alt.Text("share:Q", format=".0%")
    )
    return _spec((bars + text).properties(width=WIDTH, height=alt.Step(17)), rows=rows)


def _stacked_bars(
    rows: list[dict[str, Any]],
    labels: list[str],
    parts: list[str],
    colors: list[str],
    **titles: str,
) -> dict[str, Any]:
    """One 100%-stacked bar per label; rows hold ``label``, ``part``, ``value``."""
    order = {p: i for i, p in enumerate(parts)}
    for r in rows:
        r["order"] = order[r["part"]]
    chart = (
        alt.Chart(_data("rows"))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=labels, title=None),
            x=alt.X("value:Q", stack="normalize", axis=alt.Axis(format="%"), title=titles["x"]),
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=parts, range=colors),
                legend=alt.Legend(title=titles["legend"], orient="top"),
            ),
            order="order:Q",
            tooltip=["label:N", alt.Tooltip("part:N", title=titles["legend"]), "value:Q"],
        )
    )
    return _spec(chart.properties(width=WIDTH, height=alt.Step(26)), rows=rows)


def channel_chart(insights: dict[str, Any]) -> dict[str, Any]:
    """Share of purchases per channel, one stacked bar per segment and one for everyone."""
    labels = ["All customers", *_labels(insights)]
    entries = [insights["overall"], *insights["segments"]]
    rows = [
        {"label": label, "part": channel, "value": share}
        for label, e in zip(labels, entries, strict=True)
        for channel, share in ((e.get("channels") or {}).get("shares") or {}).items()
    ]
    channels = list(dict.fromkeys(r["part"] for r in rows))
    colors = [CHANNEL_COLORS[i % len(CHANNEL_COLORS)] for i in range(len(channels))]
    return _stacked_bars(rows, labels, channels, colors, x="Purchases", legend="Channel")


def discount_chart(insights: dict[str, Any]) -> dict[str, Any]:
    """Customers per discount-dependency tier (low / medium / high deal share) per segment."""
    labels = ["All customers", *_labels(insights)]
    entries = [insights["overall"], *insights["segments"]]
    rows = [
        {"label": label, "part": tier, "value": counts.get(tier, 0)}
        for label, e in zip(labels, entries, strict=True)
        if (counts := (e.get("discount") or {}).get("tier_counts"))
        for tier in TIER_COLORS
    ]
    colors = list(TIER_COLORS.values())
    return _stacked_bars(
        rows, labels, list(TIER_COLORS), colors, x="Customers", legend="Deal dependency"
    )


def response_chart(insights: dict[str, Any]) -> dict[str, Any] | None:
    """Observed response rate per segment with its 95% Wilson interval (expected rate marked)."""
    labels = _labels(insights)
    rows = []
    for label, s in zip(labels, insights["segments"], strict=True):
        response = s.get("response") or {}
        observed = response.get("observed")
        if observed is None:
            continue
        rows.append(
            {
                "label": label,
                "rate": observed["rate"],
                "low": observed["low"],
                "high": observed["high"],
                "expected": response.get("expected_rate"),
            }
        )
    if not rows:
        return None
    base = alt.Chart(_data("rows")).encode(y=alt.Y("label:N", sort=labels, title=None))
    axis = alt.Axis(format="%")
    title = "Response rate (95% interval)"
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", axis=axis, title=title),
        x2="high:Q",
        color=_color(labels, legend=None),
    )
    points = base.mark_point(filled=True, size=70).encode(
        x="rate:Q",
        color=_color(labels, legend=None),
        tooltip=[
            "label:N",
            alt.Tooltip("rate:Q", format=".1%", title="observed"),
            alt.Tooltip("low:Q", format=".1%"),
            alt.Tooltip("high:Q", format=".1%"),
            alt.Tooltip("expected:Q", format=".1%", title="expected next campaign"),
        ],
    )
    expected = base.mark_tick(color="#1b2330", thickness=1.5, size=14).encode(x="expected:Q")
    return _spec((bars + points + expected).properties(width=WIDTH, height=alt.Step(30)), rows=rows)


def value_chart(insights: dict[str, Any]) -> dict[str, Any] | None:
    """Expected 12-month value per customer of each segment."""
    labels = _labels(insights)
    rows = [
        {
            "label": label,
            "mean": v["mean"],
            "median": v["median"],
            "total": v["total"],
        }
        for label, s in zip(labels, insights["segments"], strict=True)
        if (v := (s.get("value") or {}).get("value_12m")) and v.get("mean") is not None
    ]
    if not rows:
        return None
    base = alt.Chart(_data("rows")).encode(
        y=alt.Y("label:N", sort=labels, title=None),
        x=alt.X(
            "mean:Q",
            title="Expected 12-month value per customer",
            axis=alt.Axis(format=",.0f", tickCount=6),
            scale=_room_for_labels(r["mean"] for r in rows),
        ),
    )
    bars = base.mark_bar(cornerRadiusEnd=2).encode(
        color=_color(labels, legend=None),
        tooltip=[
            "label:N",
            alt.Tooltip("mean:Q", format=",.0f", title="mean per customer"),
            alt.Tooltip("median:Q", format=",.0f"),
            alt.Tooltip("total:Q", format=",.0f", title="segment total"),
        ],
    )
    text = base.mark_text(align="left", dx=4, fontSize=10, color="#4a5463").encode(
        text=alt.Text("mean:Q", format=",.0f")
    )
    return _spec((bars + text).properties(width=WIDTH, height=alt.Step(30)), rows=rows)


def z_scores(profiles: dict[str, Any], insights: dict[str, Any]) -> list[dict[str, Any]]:
    """Segment mean minus population mean, in population standard deviations, per feature."""
    population, *segments = profiles["profiles"]
    stds = insights["population_std"]
    names = {s["segment"]: s["persona"]["name"] for s in insights["segments"]}
    rows = []
    for p in segments:
        for f in profiles["features"]:
            name = f["name"]
            std, mean, pop = stds.get(name), p["means"].get(name), population["means"].get(name)
            if not std or mean is None or pop is None:
                continue
            rows.append(
                {
                    "segment": p["segment"],
                    "label": segment_label(p["segment"], names.get(p["segment"], "")),
                    "feature": feature_label(name),
                    "z": (mean - pop) / std,
                    "mean": mean,
                }
            )
    return rows


def feature_heatmap(profiles: dict[str, Any], insights: dict[str, Any]) -> dict[str, Any]:
    """Segment x feature, coloured by the standardised difference from the population."""
    rows = z_scores(profiles, insights)
    labels = _labels(insights)
    base = alt.Chart(_data("rows")).encode(
        x=alt.X(
            "feature:N",
            sort=None,
            title=None,
            axis=alt.Axis(labelAngle=-40, labelLimit=120, orient="top"),
        ),
        y=alt.Y("label:N", sort=labels, title=None),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color(
            "z:Q",
            scale=alt.Scale(
                domain=[-2, 0, 2],
                range=["#3b6ea8", "#f4f5f7", "#c4474f"],
                clamp=True,
                interpolate="lab",
            ),
            legend=alt.Legend(title="Std. dev. from average", orient="bottom", gradientLength=180),
        ),
        tooltip=["label:N", "feature:N", alt.Tooltip("z:Q", format="+.2f"), "mean:Q"],
    )
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("z:Q", format="+.1f"),
        color=alt.condition("abs(datum.z) > 1.3", alt.value("white"), alt.value("#1b2330")),
    )
    return _spec((cells + text).properties(width=alt.Step(30), height=alt.Step(26)), rows=rows)


def k_chart(model: dict[str, Any]) -> dict[str, Any] | None:
    """Silhouette (higher is better) and Davies-Bouldin (lower is better) per k; chosen k marked."""
    scores = model.get("model", {}).get("k_scores") or []
    if not scores:
        return None
    rows = [{"k": s["k"], "silhouette": s["silhouette"], "db": s["davies_bouldin"]} for s in scores]
    chosen = [{"k": s["k"], "text": f"chosen k = {s['k']}"} for s in scores if s.get("chosen")]
    base = alt.Chart(_data("rows")).encode(
        x=alt.X("k:O", title="Number of segments (k)", axis=alt.Axis(labelAngle=0))
    )
    sil = base.mark_line(point=alt.OverlayMarkDef(color="#1f3a5f"), color="#1f3a5f").encode(
        y=alt.Y("silhouette:Q", title="Silhouette (higher is better)", scale=alt.Scale(zero=False)),
        tooltip=["k:O", alt.Tooltip("silhouette:Q", format=".3f")],
    )
    db = base.mark_line(
        point=alt.OverlayMarkDef(color="#d9822b"), color="#d9822b", strokeDash=[5, 3]
    ).encode(
        y=alt.Y("db:Q", title="Davies-Bouldin (lower is better)", scale=alt.Scale(zero=False)),
        tooltip=["k:O", alt.Tooltip("db:Q", format=".3f", title="Davies-Bouldin")],
    )
    lines = alt.layer(sil, db).resolve_scale(y="independent")
    mark = alt.Chart(_data("chosen")).encode(x="k:O")
    rule = mark.mark_rule(color="#5f7183", strokeDash=[2, 2])
    label = mark.mark_text(align="left", dx=4, y=8, fontSize=10, color="#1b2330").encode(
        text="text:N"
    )
    return _spec(
        alt.layer(lines, rule, label).properties(width=WIDTH, height=220), chosen=chosen, rows=rows
    )


def projection_points(
    projection: pl.DataFrame, model: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D PCA of a sample of customers in the model's scaled feature space.

    ``projection`` holds the model's feature columns and ``segment``. Returns the customers'
    coordinates, the centroids' coordinates (segment 1 first) and the share of variance of each
    component. Signs are fixed so each component's largest loading is positive: the picture
    does not flip between calls.
    """
    names: list[str] = model["features"]
    X = projection.select(names).to_numpy().astype(np.float64)
    Z = FeatureScaler.from_dict(model["scaler"]).transform(X)
    centers = np.asarray(model["model"]["centers"], dtype=np.float64)
    mean = Z.mean(axis=0)
    _, sv, vt = np.linalg.svd(Z - mean, full_matrices=False)
    vt = vt[:2] * np.sign(vt[:2][np.arange(2), np.abs(vt[:2]).argmax(axis=1)])[:, None]
    explained = (sv[:2] ** 2) / max(float((sv**2).sum()), 1e-12)
    return (Z - mean) @ vt.T, (centers - mean) @ vt.T, explained


def projection_chart(
    projection: pl.DataFrame, model: dict[str, Any], insights: dict[str, Any]
) -> dict[str, Any]:
    """Scatter of the sample on the first two principal components, centroids as diamonds."""
    labels = _labels(insights)
    by_segment = dict(zip((s["segment"] for s in insights["segments"]), labels, strict=True))
    points, centers, explained = projection_points(projection, model)
    segments = projection.get_column("segment").to_list()
    rows = [
        {"label": by_segment.get(int(s), "?"), "pc1": round(x, 4), "pc2": round(y, 4)}
        for s, (x, y) in zip(segments, points.tolist(), strict=True)
    ]
    centroids = [
        {"label": label, "pc1": x, "pc2": y}
        for label, (x, y) in zip(labels, centers.tolist(), strict=False)
    ]
    color = _color(labels, legend=alt.Legend(title="Segment", orient="right"))
    x = alt.X("pc1:Q", title=f"Component 1 ({explained[0]:.0%} of variance)")
    y = alt.Y("pc2:Q", title=f"Component 2 ({explained[1]:.0%} of variance)")
    dots = alt.Chart(_data("rows")).mark_circle(size=14, opacity=0.45)
    marks = alt.Chart(_data("centroids")).mark_point(
        shape="diamond", size=180, filled=True, stroke="#1b2330", strokeWidth=1.5, opacity=1
    )
    chart = alt.layer(
        dots.encode(x=x, y=y, color=color),
        marks.encode(x=x, y=y, color=color, tooltip=["label:N"]),
    )
    return _spec(chart.properties(width=WIDTH, height=320), rows=rows, centroids=centroids)


def segment_profile_chart(
    segment: int, rows: list[dict[str, Any]], color: str
) -> dict[str, Any] | None:
    """The features where one segment differs most from the average, in standard deviations."""
    own = sorted((r for r in rows if r["segment"] == segment), key=lambda r: -abs(r["z"]))
    own = own[:PROFILE_FEATURES]
    if not own:
        return None
    chart = (
        alt.Chart(_data("own"))
        .mark_bar(color=color, cornerRadiusEnd=2)
        .encode(
            y=alt.Y("feature:N", sort=[r["feature"] for r in own], title=None),
            x=alt.X("z:Q", title="Std. dev. from average", scale=alt.Scale(domain=[-3, 3])),
            tooltip=["feature:N", alt.Tooltip("z:Q", format="+.2f"), "mean:Q"],
        )
    )
    zero = alt.Chart(alt.Data(values=[{"z": 0}])).mark_rule(color="#5f7183").encode(x="z:Q")
    return _spec((chart + zero).properties(width=200, height=alt.Step(20)), own=own)


def segment_channel_chart(
    entry: dict[str, Any], overall: dict[str, Any], color: str
) -> dict[str, Any] | None:
    """One segment's channel shares next to everyone's."""
    own = (entry.get("channels") or {}).get("shares") or {}
    everyone = (overall.get("channels") or {}).get("shares") or {}
    if not own:
        return None
    who = ["This segment", "All customers"]
    rows = [{"channel": ch, "who": who[0], "share": v} for ch, v in own.items()]
    rows += [{"channel": ch, "who": who[1], "share": v} for ch, v in everyone.items()]
    chart = (
        alt.Chart(_data("rows"))
        .mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2)
        .encode(
            x=alt.X("channel:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("who:N", sort=who),
            y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="Purchases"),
            color=alt.Color(
                "who:N",
                scale=alt.Scale(domain=who, range=[color, NEUTRAL]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["channel:N", "who:N", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    return _spec(chart.properties(width=220, height=150), rows=rows)


def migration_chart(compare: dict[str, Any]) -> dict[str, Any]:
    """Customers in both runs, by their segment in the reference run (rows) and this run."""
    rows = [
        {"from": f"{i + 1}", "to": f"{j + 1}", "customers": n}
        for i, row in enumerate(compare["migration"])
        for j, n in enumerate(row)
    ]
    base = alt.Chart(_data("rows")).encode(
        y=alt.Y("from:O", title="Segment in the reference run"),
        x=alt.X("to:O", title="Segment in this run", axis=alt.Axis(labelAngle=0, orient="top")),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "customers:Q",
            scale=alt.Scale(range=["#f4f5f7", "#1f3a5f"]),
            legend=alt.Legend(title="Customers"),
        ),
        tooltip=["from:O", "to:O", alt.Tooltip("customers:Q", format=",")],
    )
    dark = 0.6 * max((r["customers"] for r in rows), default=0)
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition(f"datum.customers > {dark}", alt.value("white"), alt.value("#1b2330")),
    )
    return _spec((cells + text).properties(width=alt.Step(44), height=alt.Step(32)), rows=rows)


def run_charts(
    *,
    profiles: dict[str, Any],
    insights: dict[str, Any],
    model: dict[str, Any],
    projection: pl.DataFrame | None,
) -> dict[str, dict[str, Any]]:
    """Every chart of a run: name -> Vega-Lite spec.

    Run-wide: ``share``, ``channels``, ``discount``, ``response``, ``value``, ``features``,
    ``k_scores``, ``projection``; per segment s: ``profile_s`` and ``channels_s``. A chart whose
    data the run lacks (no response label, no sample) is left out.
    """
    colors = segment_colors(len(insights["segments"]))
    z = z_scores(profiles, insights)
    charts: dict[str, dict[str, Any] | None] = {
        "share": share_chart(insights),
        "channels": channel_chart(insights),
        "discount": discount_chart(insights),
        "response": response_chart(insights),
        "value": value_chart(insights),
        "features": feature_heatmap(profiles, insights),
        "k_scores": k_chart(model),
        "projection": (
            projection_chart(projection, model, insights)
            if projection is not None and projection.height
            else None
        ),
    }
    for entry, color in zip(insights["segments"], colors, strict=True):
        s = entry["segment"]
        charts[f"profile_{s}"] = segment_profile_chart(s, z, color)
        charts[f"channels_{s}"] = segment_channel_chart(entry, insights["overall"], color)
    return {name: spec for name, spec in charts.items() if spec is not None}


def to_svg(spec: dict[str, Any]) -> str:
    """Render a spec to SVG with the same Vega-Lite version the browser bundle carries."""
    return drawing.svg(spec, vl_version=VL_VERSION)


def to_raster_svg(spec: dict[str, Any], *, scale: float = 2.0) -> str:
    """A PNG of the chart inside an SVG (see :func:`sistack.io.exports.drawing.raster_svg`)."""
    return drawing.raster_svg(spec, vl_version=VL_VERSION, scale=scale)


@functools.cache
def vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script (about 900 kB; built once per process)."""
    # The default snippet (snippet=None, which the stubs do not allow) puts vegaEmbed on window.
    bundle: str = vlc.javascript_bundle(vl_version=VL_VERSION)  # type: ignore[call-arg]
    return bundle
