"""The pages without a browser: parsed HTML shows the numbers the API returns, formatted.

Each page's numbers are read from the markup (``html.parser``) and compared with the JSON twin
the page names in its footer.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest

from sistack.io.exports.report import KPIS, fmt_integer, fmt_number, fmt_pct, format_as
from tests.web.conftest import Live


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def iter(self) -> Any:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        """Descendants by tag and attributes (``True`` = present; ``class_`` = one of classes)."""
        found = []
        for node in self.iter():
            if tag and node.tag != tag:
                continue
            ok = True
            for name, want in attrs.items():
                key = "class" if name == "class_" else name.replace("_", "-")
                have = node.attrs.get(key)
                if want is True:
                    ok = ok and have is not None
                elif key == "class":
                    ok = ok and str(want) in (have or "").split()
                else:
                    ok = ok and have == want
            if ok:
                found.append(node)
        return found

    def find(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, (tag, attrs)
        return found[0]


class TreeBuilder(HTMLParser):
    VOID = frozenset({"meta", "link", "input", "br", "img", "hr", "source", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    return builder.root


def get_page(live: Live, path: str, status: int = 200) -> Node:
    response = live.http.get(path)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return parse(response.text)


def twins(doc: Node) -> list[str]:
    return [a.attrs["href"] for a in doc.find("footer").find_all("a")]


def clean(text: str) -> str:
    return " ".join(text.split())


def test_overview_shows_the_insights_numbers(live: Live, finished_run: str) -> None:
    doc = get_page(live, f"/runs/{finished_run}")
    insights = live.api("GET", f"/api/v1/runs/{finished_run}/insights")
    assert f"/api/v1/runs/{finished_run}/insights" in twins(doc)
    assert clean(doc.find(id="banner").text) == clean(insights["banner"])
    overall = insights["overall"]
    for key, _, fmt, _ in KPIS:
        card = doc.find("div", data_kpi=key)
        assert float(card.attrs["data-value"]) == overall[key]
        assert card.find(class_="kpi-value").text == format_as(overall[key], fmt)
    titles = [clean(n.text) for n in doc.find(class_="action-list").find_all(class_="action-title")]
    assert titles == [clean(a["title"]) for a in insights["top_actions"][:3]]
    spec = json.loads(doc.find("script", data_chart_spec="share").text)
    rows = {(r["label"], r["measure"]): r["share"] for r in spec["datasets"]["rows"]}
    for s in insights["segments"]:
        label = f"{s['segment']} · {s['persona']['name']}"
        assert rows[(label, "Revenue")] == s["contribution"]["revenue_share"]


def test_segments_table_matches_the_segments_endpoint(live: Live, finished_run: str) -> None:
    doc = get_page(live, f"/runs/{finished_run}/segments")
    segments = live.api("GET", f"/api/v1/runs/{finished_run}/segments")["segments"]
    personas = live.api("GET", f"/api/v1/runs/{finished_run}/personas")["personas"]
    rows = doc.find("table", id="segment-table").find("tbody").find_all("tr")
    assert len(rows) == len(segments) == len(personas)
    for row, seg, persona in zip(rows, segments, personas, strict=True):
        cells = [clean(c.text) for c in row.find_all("td")]
        assert clean(row.find("th").text) == f"{seg['segment']} · {persona['name']}"
        assert cells[0] == fmt_integer(seg["customers"])
        assert cells[1] == fmt_pct(seg["customer_share"])
        assert cells[2] == fmt_pct(seg["revenue_share"])
    cards = doc.find_all("article", class_="persona")
    assert [clean(c.find("h3").text) for c in cards] == [p["name"] for p in personas]
    for script in doc.find_all("script", data_chart_spec=True):
        name = script.attrs["data-chart-spec"]
        holder = doc.find(data_chart=name)
        assert int(holder.attrs["style"].split(":")[1].strip().rstrip("px")) > 100, name
        assert json.loads(script.text)["$schema"].startswith("https://vega.github.io/schema/")


def test_quality_page_is_the_audit_trail(live: Live, finished_run: str) -> None:
    doc = get_page(live, f"/runs/{finished_run}/quality")
    manifest = live.api("GET", f"/api/v1/runs/{finished_run}/manifest")
    quality = live.api("GET", f"/api/v1/runs/{finished_run}/quality")
    assert doc.find(id="input-sha256").text == manifest["input"]["sha256"]
    issues = doc.find("table", id="issues-table").find("tbody").find_all("tr")
    assert len(issues) == max(1, len(quality["issues"]))
    pairs = {
        clean(row.find("th").text): clean(row.find("td").text)
        for row in doc.find("main").find_all("tr")
        if row.find_all("th", scope="row") and row.find_all("td")
    }
    for package, version in manifest["versions"].items():
        assert pairs[package] == version
    assert pairs["seed"] == str(manifest["config"]["seed"])


SIM_METRICS = {"revenue": "money", "margin": "money", "cost": "money", "profit": "money"}
SIM_METRICS["roi"] = "ratio"


def test_simulation_page_shows_the_baseline_before_any_lever(live: Live, finished_run: str) -> None:
    doc = get_page(live, f"/runs/{finished_run}/simulation")
    baseline = live.api("GET", f"/api/v1/runs/{finished_run}/baseline")
    assert f"/api/v1/runs/{finished_run}/baseline" in twins(doc)
    for key, fmt in SIM_METRICS.items():
        value = doc.find(id=f"metric-{key}").find(class_="metric-value")
        assert float(value.attrs["data-value"]) == baseline["overall"][key], key
        assert value.text == format_as(baseline["overall"][key], fmt), key
    table = doc.find("table", id="baseline-table")
    rows = [*baseline["segments"], baseline["overall"]]
    for row in rows:
        cells = {
            c.attrs["data-key"]: c
            for c in table.find("tr", data_segment=str(row["segment"])).find_all("td")
        }
        assert set(cells) == {"customers", *SIM_METRICS}
        assert cells["customers"].text == fmt_integer(row["customers"])
        for key, fmt in SIM_METRICS.items():
            assert float(cells[key].attrs["data-value"]) == row[key], (row["segment"], key)
            assert cells[key].text == format_as(row[key], fmt), (row["segment"], key)
    data = json.loads(doc.find("script", id="sim-data").text)
    assert data["baseline"] == baseline


def test_campaign_form_labels_every_field_and_names_the_defaults(
    live: Live, finished_run: str
) -> None:
    doc = get_page(live, f"/runs/{finished_run}/simulation")
    baseline = live.api("GET", f"/api/v1/runs/{finished_run}/baseline")
    form = doc.find("form", id="campaign-form")
    labelled = {label.attrs["for"] for label in form.find_all("label")}
    fields = [*form.find_all("input"), *form.find_all("select")]
    assert {f.attrs["id"] for f in fields} == labelled  # every field has its label
    rules = form.find_all("select", data_segment=True)
    assert [r.attrs["data-segment"] for r in rules] == [
        str(s["segment"]) for s in baseline["segments"]
    ]
    economics = baseline["assumptions"]["economics"]
    for field, key in (("cpc", "cost_per_contact"), ("rpr", "revenue_per_response")):
        hint = doc.find(id=f"campaign-{field}-hint").text
        assert hint == f"Blank: {fmt_number(economics[key])} ({economics['sources'][key]})"


def test_new_analysis_lists_the_roles_of_the_api(live: Live) -> None:
    doc = get_page(live, "/runs/new")
    embedded = json.loads(doc.find("script", id="roles-data").text)
    for shape, roles in embedded.items():
        assert roles == live.api("GET", f"/api/v1/roles?shape={shape}")
    assert set(embedded) == {"customers", "transactions"}
    assert "/api/v1/roles" in twins(doc)


def test_home_lists_runs_with_their_file(live: Live, finished_run: str) -> None:
    doc = get_page(live, "/")
    run = live.api("GET", f"/api/v1/runs/{finished_run}")
    row = doc.find("tr", data_run_id=finished_run)
    cells = [clean(c.text) for c in row.find_all("td")]
    assert cells[0].startswith(run["name"])
    assert cells[2] == run["filename"] == "demo-customers.csv"
    assert cells[3] == fmt_integer(run["n_customers"])
    assert cells[4] == str(run["k"])
    assert "/api/v1/runs?limit=50" in twins(doc)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, "run_not_found"),
        ("/runs/not-an-id/segments", 404, "run_not_found"),
        ("/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/report", 404, "run_not_found"),
    ],
)
def test_errors_are_pages_with_the_apis_message(
    live: Live, path: str, status: int, code: str
) -> None:
    doc = get_page(live, path, status)
    api = live.http.get("/api/v1/runs/" + path.split("/")[2]).json()["error"]
    assert api["code"] == code
    assert clean(doc.find("h1").text) == api["message"]


def test_vega_bundle_and_stylesheet_are_served_locally(live: Live) -> None:
    bundle = live.http.get("/vendor/vega-bundle.js", headers={"accept-encoding": "gzip"})
    assert bundle.status_code == 200
    assert bundle.headers["content-encoding"] == "gzip"
    assert "vegaEmbed" in bundle.text  # httpx decodes the gzip
    assert int(bundle.headers["content-length"]) < len(bundle.content) // 2
    again = live.http.get(
        "/vendor/vega-bundle.js", headers={"if-none-match": bundle.headers["etag"]}
    )
    assert again.status_code == 304
    css = live.http.get("/static/app.css")
    assert css.status_code == 200 and "--accent" in css.text
    page = live.http.get("/").text
    assert "cdn" not in page.lower() and "https://" not in page
