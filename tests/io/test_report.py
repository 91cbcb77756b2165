"""The executive report (HTML and PDF) and the chart specs it is drawn from.

One 300-customer run (with a response label, so every chart exists) is shared by the module.
Page counts, cover text and formats are checked against numbers worked out here: the run id and
the sha256 of the file this test wrote, the layout formula of the report, hand-made documents
for the chart arithmetic.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack.io.exports import charts
from sistack.io.exports.report import (
    fmt_money,
    fmt_pct,
    fmt_signed_money,
    read_projection_sample,
    render_report_html,
    report_svgs,
)
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.conftest import _write_customers, small_settings

pypdf = pytest.importorskip("pypdf")


@dataclass(frozen=True)
class Run:
    sha256: str
    docs: dict[str, Any]  # run, manifest, profiles, insights, quality, model
    projection: pl.DataFrame
    scenario: dict[str, Any]  # {"name", "result"} of one simulated scenario


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("report")
    csv = _write_customers(root / "customers.csv", customers=300, seed=7)
    svc = RunService(small_settings(root / "home"))
    try:
        dataset, _ = svc.add_dataset(csv, keep=False)
        record = svc.execute(svc.create_run(dataset.id, name="Report test").id)
        assert record.status == "succeeded", record.error_message
        rid = record.id
        docs = {
            "run": {"id": rid, "name": record.name},
            "manifest": svc.manifest(rid),
            "profiles": svc.profiles(rid),
            "insights": svc.insights(rid),
            "quality": svc.quality(rid),
            "model": svc.model(rid),
        }
        folder = svc.artifacts.path(rid, "features.parquet").parent
        projection = read_projection_sample(
            folder / "features.parquet", folder / "assignments.parquet"
        )
        body = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
        result = SimulationService(svc).simulate(rid, body)
    finally:
        svc.close()
    sha = hashlib.sha256(csv.read_bytes()).hexdigest()
    return Run(sha, docs, projection, {"name": "Price +5% for segment 1", "result": result})


def render(run: Run, *, docs: dict[str, Any] | None = None, **options: Any) -> str:
    docs = docs or run.docs
    return render_report_html(**docs, **{"scenarios": [], **options})


def page_texts(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [page.extract_text() or "" for page in reader.pages]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- the PDF ----------------------------------------------------------------------------------


def test_pdf_pages_cover_personas_and_scenarios(run: Run) -> None:
    pdf = pytest.importorskip("sistack.io.exports.pdf")
    docs = run.docs
    segments = docs["insights"]["segments"]
    specs = charts.run_charts(
        profiles=docs["profiles"],
        insights=docs["insights"],
        model=docs["model"],
        projection=run.projection,
    )
    html = render(run, scenarios=[run.scenario], charts_svg=report_svgs(specs, len(segments)))
    data = pdf.html_to_pdf(html)
    assert data.startswith(b"%PDF-")
    texts = page_texts(data)
    # cover + summary + segments at a glance + one page per segment + scenarios + 3 appendices,
    # the definitions appendix (one for every number of the insights) running over two pages
    assert len(texts) == 1 + 1 + 1 + len(segments) + 1 + 3 + 1
    cover = squash(texts[0])
    assert docs["run"]["id"] in cover
    assert run.sha256 in cover
    assert "Executive summary" in texts[1]
    for page, segment in zip(texts[3:], segments, strict=False):
        assert squash(segment["persona"]["name"]) in squash(page)
    scenario_page = squash(texts[3 + len(segments)])
    assert squash(run.scenario["name"]) in scenario_page
    delta = run.scenario["result"]["overall"]["delta"]["profit"]
    assert squash(fmt_signed_money(delta)) in scenario_page
    assert "AppendixC" in squash(texts[-1])


def test_report_without_scenarios_has_no_scenario_page(run: Run) -> None:
    html = render(run)
    assert 'id="scenarios"' not in html
    sections = re.findall(r'<section class="page[^"]*" id="([^"]+)"', html)
    k = len(run.docs["insights"]["segments"])
    expected = ["cover", "summary", "glance"] + [f"segment-{s}" for s in range(1, k + 1)]
    assert sections == [*expected, "method", "definitions", "quality"]


def test_report_shows_the_documents_numbers(run: Run) -> None:
    html = render(run)
    overall = run.docs["insights"]["overall"]
    assert f">{fmt_money(overall['revenue'])}<" in html
    assert f">{fmt_pct(overall['top20_revenue_share'])}<" in html
    assert run.docs["insights"]["banner"].split(";")[0].replace("&", "&amp;") in html
    for action in run.docs["insights"]["top_actions"][:3]:
        assert action["title"].replace("&", "&amp;") in html


def test_values_from_the_data_are_escaped(run: Run) -> None:
    docs = copy.deepcopy(run.docs)
    evil = "<script>alert('x')</script>"
    docs["insights"]["segments"][0]["persona"]["name"] = evil
    docs["run"]["name"] = evil
    docs["manifest"]["input"]["filename"] = evil + ".csv"
    specs = charts.run_charts(
        profiles=docs["profiles"], insights=docs["insights"], model=docs["model"], projection=None
    )
    svgs = {name: charts.to_svg(specs[name]) for name in ("share", "profile_1")}
    html = render(run, docs=docs, charts_svg=svgs)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;script&gt;" in svgs["share"]  # vl-convert escapes the chart's text too


def test_screen_version_has_a_toolbar_and_the_pdf_version_not(run: Run) -> None:
    rid = run.docs["run"]["id"]
    assert f'href="/api/v1/runs/{rid}/exports/report.pdf"' in render(run)
    assert "/exports/report.pdf" not in render(run, for_pdf=True)


@pytest.mark.parametrize(
    ("value", "money", "signed"),
    [
        (1_352_030, "1.35M", "+1.35M"),
        (71_359.3, "71.4K", "+71.4K"),
        (713_593, "714K", "+714K"),
        (999_999, "1.00M", "+1.00M"),
        (9_000, "9,000", "+9,000"),
        (451.2, "451", "+451"),
        (-18_553.4, "-18.6K", "-18.6K"),
        (0.0, "0", "0"),
        (None, "—", "—"),
        (float("nan"), "—", "—"),
    ],
)
def test_money_format(value: float | None, money: str, signed: str) -> None:
    assert (fmt_money(value), fmt_signed_money(value)) == (money, signed)


# --- charts -----------------------------------------------------------------------------------


def test_segment_colors_are_distinct_and_stable() -> None:
    assert charts.segment_colors(3) == list(charts.BASE_COLORS[:3])
    thirty = charts.segment_colors(30)
    assert len(set(thirty)) == 30
    assert thirty[10] != thirty[0] and thirty[:10] == list(charts.BASE_COLORS)


def test_every_chart_of_a_run_and_one_colour_per_segment(run: Run) -> None:
    docs = run.docs
    specs = charts.run_charts(
        profiles=docs["profiles"],
        insights=docs["insights"],
        model=docs["model"],
        projection=run.projection,
    )
    k = len(docs["insights"]["segments"])
    wide = {"share", "channels", "discount", "response", "value", "features", "k_scores"}
    per_segment = {f"{kind}_{s}" for kind in ("profile", "channels") for s in range(1, k + 1)}
    assert set(specs) == wide | {"projection"} | per_segment
    colors = charts.segment_colors(k)
    for name in ("share", "response", "value", "projection"):
        scales = [
            layer["encoding"]["color"]["scale"]
            for layer in specs[name]["layer"]
            if "color" in layer.get("encoding", {})
        ]
        assert scales and all(s["range"] == colors for s in scales), name
    share = {(r["label"][0], r["measure"]): r["share"] for r in specs["share"]["datasets"]["rows"]}
    first = docs["insights"]["segments"][0]["contribution"]
    assert share[("1", "Revenue")] == first["revenue_share"]
    assert share[("1", "Customers")] == first["customer_share"]
    assert len(specs["projection"]["datasets"]["rows"]) == run.projection.height <= 2000
    svg = charts.to_svg(specs["share"])
    assert svg.startswith("<svg") and "Revenue" in svg


def test_z_scores_against_the_population() -> None:
    profiles = {
        "features": [{"name": "income"}, {"name": "age"}],
        "profiles": [
            {"segment": 0, "means": {"income": 50.0, "age": 40.0}},
            {"segment": 1, "means": {"income": 70.0, "age": 40.0}},
            {"segment": 2, "means": {"income": 40.0, "age": 55.0}},
        ],
    }
    insights = {
        "population_std": {"income": 10.0, "age": 5.0},
        "segments": [
            {"segment": 1, "persona": {"name": "Rich"}},
            {"segment": 2, "persona": {"name": "Older"}},
        ],
    }
    z = {(r["segment"], r["feature"]): r["z"] for r in charts.z_scores(profiles, insights)}
    assert z == {(1, "Income"): 2.0, (1, "Age"): 0.0, (2, "Income"): -1.0, (2, "Age"): 3.0}


def test_projection_is_pca_of_the_scaled_features() -> None:
    # Identity scaling; points spread along the first feature (variance 4) far more than the
    # second (variance 1/4): component 1 is the first feature, the centroids land on it.
    x = np.array([-2.0, 2.0, -2.0, 2.0])
    y = np.array([-0.5, -0.5, 0.5, 0.5])
    model = {
        "features": ["a", "b"],
        "scaler": {
            "log_columns": [],
            "clip_quantiles": [0.0, 1.0],
            "lower": [-100.0, -100.0],
            "upper": [100.0, 100.0],
            "center": [0.0, 0.0],
            "scale": [1.0, 1.0],
        },
        "model": {"centers": [[1.0, 0.0], [-3.0, 0.25]]},
    }
    frame = pl.DataFrame({"a": x, "b": y, "segment": [1, 1, 2, 2]})
    points, centers, explained = charts.projection_points(frame, model)
    assert_allclose(points, np.column_stack([x, y]), atol=1e-12)
    assert_allclose(centers, [[1.0, 0.0], [-3.0, 0.25]], atol=1e-12)
    assert_allclose(explained, [4.0 / 4.25, 0.25 / 4.25])


def test_vega_bundle_is_served_from_the_package() -> None:
    bundle = charts.vega_bundle()
    assert "vegaEmbed" in bundle and len(bundle) > 100_000
    assert charts.vega_bundle() is bundle  # built once
