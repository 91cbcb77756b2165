"""The UI in a real browser: what a user clicks, and the numbers the page shows next to the API's.

Each page is also saved as a screenshot under test-artifacts/ (not committed), at 1280x800 and,
for the dashboard and the simulation, at phone width.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sistack.demo import write_dataset
from sistack.io.exports.report import KPIS, fmt_money, fmt_signed_money, format_as
from sistack.service.exports import REGISTRY
from tests.web.conftest import Live, screenshot

pytestmark = pytest.mark.usefixtures("browser")
PRICE_UP = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
PRICE_DOWN = {"levers": [{"lever": "price", "params": {"change": {"1": -0.03}}}]}


def open_run(page: Any, live: Live, run_id: str, tab: str = "") -> None:
    page.goto(f"{live.url}/runs/{run_id}{'/' + tab if tab else ''}")
    page.wait_for_load_state("networkidle")


def wait_charts(page: Any) -> None:
    """Every chart on the page has been drawn by vega-embed.

    (Predicates are written as functions: Playwright evaluates those once, where the page's
    Content-Security-Policy allows it; an expression would be re-evaluated with eval, which the
    policy forbids.)"""
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')]"
        ".every(e => e.dataset.ready === '1' && e.querySelector('svg'))"
    )


def move_slider(page: Any, selector: str, steps: int) -> None:
    """Move a range input with the keyboard, as a user without a mouse would."""
    page.focus(selector)
    key = "ArrowRight" if steps > 0 else "ArrowLeft"
    for _ in range(abs(steps)):
        page.keyboard.press(key)


def wait_result(page: Any, scenario: dict[str, Any]) -> float:
    """Wait until the page shows the result of ``scenario``; return the profit it displays."""
    page.wait_for_function(
        """expected => {
            const card = document.getElementById('result-card');
            return card.dataset.scenario === expected && card.getAttribute('aria-busy') === 'false';
        }""",
        arg=json.dumps(scenario, separators=(",", ":")),
    )
    return float(page.get_attribute("#metric-profit .metric-value", "data-value"))


def test_demo_from_the_home_page_to_the_dashboard(live: Live, page: Any) -> None:
    page.goto(live.url + "/")
    screenshot(page, "01-home")
    page.click("[data-demo] >> nth=0")
    page.wait_for_url(re.compile(r"/runs/[0-9A-Z]{26}$"))
    run_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#banner", timeout=90_000)  # the progress page reloads when done
    insights = live.api("GET", f"/api/v1/runs/{run_id}/insights")
    assert page.inner_text("#banner") == insights["banner"]
    overall = insights["overall"]
    for key, _, fmt, _ in KPIS:
        card = page.locator(f'.kpi[data-kpi="{key}"]')
        assert float(card.get_attribute("data-value")) == overall[key], key
        assert card.locator(".kpi-value").inner_text() == format_as(overall[key], fmt), key
    titles = page.locator("#actions-title + .action-list .action-title").all_inner_texts()
    assert titles == [a["title"] for a in insights["top_actions"][:3]]
    wait_charts(page)
    screenshot(page, "03-overview")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "03-overview-phone")
    # the home page now lists the run as succeeded, with its customers
    page.goto(live.url + "/")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    assert row.locator(".badge").inner_text().lower() == "succeeded"
    assert row.locator("td.num").first.inner_text() == f"{overall['customers']:,}"


def test_upload_edit_a_role_watch_progress_see_segments(
    live: Live, page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "shop-customers.csv"
    write_dataset(path, customers=500, seed=3)
    page.goto(live.url + "/runs/new")
    screenshot(page, "02-new-analysis")
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector("#mapping-step:not([hidden])")
    role = page.locator('select[data-column="Complain"]')
    assert role.input_value() == "complaints"  # detected
    role.select_option("ignore")
    assert "Complain" in page.inner_text("#unmapped")
    assert page.locator('tr[data-column="Income"] td.num').inner_text() != "0"  # missing values
    screenshot(page, "02-new-analysis-mapping")
    page.click("#start-button")
    page.wait_for_selector("#run-step:not([hidden])")
    page.wait_for_url(re.compile(r"/runs/[0-9A-Z]{26}$"), timeout=90_000)
    run_id = page.url.rsplit("/", 1)[1]
    run = live.api("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "succeeded"
    assert "Complain" not in run["config"]["mapping"]["columns"]
    assert run["config"]["mapping"]["columns"]["Income"] == "income"
    page.click("nav.tabs >> text=Segments")
    page.wait_for_url(f"**/runs/{run_id}/segments")
    personas = live.api("GET", f"/api/v1/runs/{run_id}/personas")["personas"]
    assert page.locator(".persona-name").all_inner_texts() == [p["name"] for p in personas]
    assert len(personas) == run["k"]


def test_bad_files_get_the_apis_own_message(live: Live, page: Any, tmp_path: Path) -> None:
    image = tmp_path / "photo.csv"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with image.open("rb") as fh:
        refused = live.http.post("/api/v1/datasets", files={"file": ("photo.csv", fh)})
    assert refused.status_code == 415
    page.goto(live.url + "/runs/new")
    page.set_input_files("#file-input", str(image))
    page.wait_for_selector("#upload-error:not([hidden])")
    assert page.inner_text("#upload-error") == refused.json()["error"]["message"]
    # a table without any column we can use: the file uploads, starting the run is refused
    tiny = tmp_path / "two-columns.csv"
    tiny.write_text("a,b\n1,2\n")
    page.set_input_files("#file-input", str(tiny))
    page.wait_for_selector("#mapping-step:not([hidden])")
    page.click("#start-button")
    page.wait_for_selector("#run-error:not([hidden])")
    with tiny.open("rb") as fh:
        dataset = live.http.post("/api/v1/datasets", files={"file": ("two-columns.csv", fh)})
    body = {"dataset_id": dataset.json()["id"], "mapping": {"shape": "customers", "columns": {}}}
    refused = live.http.post("/api/v1/runs", json=body)
    assert refused.status_code == 422
    assert page.inner_text("#run-error") == refused.json()["error"]["message"]
    screenshot(page, "02-new-analysis-error")


def test_segments_and_quality_pages(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run, "segments")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    wait_charts(page)
    names = {c.get_attribute("data-chart") for c in page.locator("[data-chart]").all()}
    assert {"channels", "discount", "response", "value", "features", "projection"} <= names
    assert {"k_scores", "profile_1", "channels_1"} <= names
    screenshot(page, "04-segments")
    open_run(page, live, finished_run, "quality")
    manifest = live.api("GET", f"/api/v1/runs/{finished_run}/manifest")
    assert page.inner_text("#input-sha256") == manifest["input"]["sha256"]
    screenshot(page, "07-quality")


def test_simulation_shows_the_baseline_before_a_slider_moves(
    live: Live, page: Any, finished_run: str
) -> None:
    open_run(page, live, finished_run, "simulation")
    baseline = live.api("GET", f"/api/v1/runs/{finished_run}/baseline")
    assert page.get_attribute("#result-card", "data-scenario") == "baseline"
    assert page.inner_text("#sim-status").startswith("Baseline")
    shown_as = {"revenue": "money", "margin": "money", "cost": "money", "profit": "money"}
    for key, fmt in {**shown_as, "roi": "ratio"}.items():
        shown = page.locator(f"#metric-{key} .metric-value")
        assert float(shown.get_attribute("data-value")) == baseline["overall"][key], key
        assert shown.inner_text() == format_as(baseline["overall"][key], fmt), key
    for segment in baseline["segments"]:
        row = page.locator(f'#baseline-table tbody tr[data-segment="{segment["segment"]}"]')
        cell = row.locator('td[data-key="profit"]')
        assert float(cell.get_attribute("data-value")) == segment["profit"]
        assert cell.inner_text() == fmt_money(segment["profit"])
    assert float(page.input_value("#budget")) == baseline["overall"]["cost"]
    screenshot(page, "05-simulation-baseline")


def test_moving_a_slider_shows_the_apis_profit(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run, "simulation")
    baseline = float(page.get_attribute("#metric-profit .metric-value", "data-value"))
    neutral = {"levers": [{"lever": "price", "params": {"change": {"1": 0}}}]}
    api = live.api("POST", f"/api/v1/runs/{finished_run}/simulate", json=neutral)
    assert baseline == api["overall"]["baseline"]["profit"] == api["overall"]["scenario"]["profit"]
    move_slider(page, "#price-change-1", 5)
    shown = wait_result(page, PRICE_UP)
    expected = live.api("POST", f"/api/v1/runs/{finished_run}/simulate", json=PRICE_UP)["overall"]
    assert shown == expected["scenario"]["profit"] != baseline
    assert page.inner_text("#metric-profit .metric-value") == fmt_money(shown)
    delta = page.inner_text("#metric-profit .metric-delta")
    assert delta == fmt_signed_money(expected["delta"]["profit"])
    base = page.inner_text("#metric-profit .metric-base")
    assert base == f"Baseline {fmt_money(expected['baseline']['profit'])}"
    first = page.locator('#segment-results tr[data-segment="1"] td').first
    segment = live.api("POST", f"/api/v1/runs/{finished_run}/simulate", json=PRICE_UP)
    assert float(first.get_attribute("data-value")) == segment["segments"][0]["delta"]["profit"]
    screenshot(page, "05-simulation")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "05-simulation-phone")


def test_save_load_and_compare_scenarios(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run, "simulation")
    move_slider(page, "#price-change-1", 5)
    wait_result(page, PRICE_UP)
    page.fill("#scenario-name", "Premium price +5%")
    page.click("#save-form button[type=submit]")
    page.wait_for_selector("#scenario-list li[data-scenario-id]")
    move_slider(page, "#price-change-1", -8)
    wait_result(page, PRICE_DOWN)
    page.fill("#scenario-name", "Premium price -3%")
    page.click("#save-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('#scenario-list li[data-scenario-id]').length >= 2"
    )
    saved = live.api("GET", f"/api/v1/runs/{finished_run}/scenarios")
    by_name = {s["name"]: s for s in saved}
    assert by_name["Premium price +5%"]["scenario"] == PRICE_UP
    assert by_name["Premium price -3%"]["scenario"] == PRICE_DOWN
    ids = [by_name["Premium price +5%"]["id"], by_name["Premium price -3%"]["id"]]
    for sid in ids:
        page.check(f"#pick-{sid}")
    page.click("#compare-button")
    page.wait_for_selector("#scenario-compare:not([hidden])")
    compared = live.api(
        "POST", f"/api/v1/runs/{finished_run}/scenarios/compare", json={"scenario_ids": ids}
    )
    row = page.locator("#scenario-compare tr", has_text="Δ profit")
    shown = [float(v) for v in row.locator("td").evaluate_all("t => t.map(c => c.dataset.value)")]
    assert shown == [s["result"]["overall"]["delta"]["profit"] for s in compared["scenarios"]]
    # loading the first scenario puts its values back on the controls
    page.click(f'li[data-scenario-id="{ids[0]}"] >> text=Load')
    wait_result(page, PRICE_UP)
    assert page.input_value("#price-change-1") == "0.05"
    screenshot(page, "05-simulation-scenarios")


def test_optimiser_shows_the_allocation(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run, "simulation")
    page.wait_for_function("() => document.getElementById('budget').value !== ''")
    budget = float(page.input_value("#budget"))
    page.click("#optimize-form button[type=submit]")
    page.wait_for_selector("#optimize-result:not([hidden])")
    api = live.api("POST", f"/api/v1/runs/{finished_run}/optimize", json={"total_budget": budget})
    cells = page.locator("#allocation tbody tr td:nth-child(3)").all_inner_texts()
    assert cells == [fmt_money(s["budget"]) for s in api["segments"]]


def test_compare_two_runs(live: Live, page: Any, finished_run: str, other_run: str) -> None:
    page.goto(f"{live.url}/runs/{finished_run}/compare")
    page.select_option("#other", other_run)
    page.click("form.inline-form button[type=submit]")
    page.wait_for_url(f"**/compare?other={other_run}")
    wait_charts(page)
    comparison = live.api("GET", f"/api/v1/runs/{finished_run}/compare/{other_run}")
    assert page.locator("#matches-table tbody tr").count() == len(comparison["matches"])
    assert page.inner_text("#shared") == f"{comparison['shared_customers']:,}"
    screenshot(page, "06-compare")


def test_exports_tab_and_report_page(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run, "exports")
    links = {
        a.get_attribute("data-export"): a.get_attribute("href")
        for a in page.locator("a[data-export]").all()
    }
    base = f"/api/v1/runs/{finished_run}/exports/"
    assert links.pop("report.html") == f"/runs/{finished_run}/report"
    assert links == {name: base + name for name in REGISTRY}  # one link per export format
    screenshot(page, "08-exports")
    # the workbook is prepared in the background (progress shown), then downloaded
    with page.expect_download(timeout=60_000) as started:
        page.click("a[data-export='workbook.xlsx']")
    download = started.value
    assert download.suggested_filename == f"{finished_run}-workbook.xlsx"
    with open(download.path(), "rb") as fh:  # the downloaded file has no extension
        book = openpyxl.load_workbook(fh, read_only=True)
    assert book.sheetnames[0] == "Summary" and "Customers" in book.sheetnames
    assert page.get_attribute("a[data-export='workbook.xlsx']", "data-state") == "ready"
    screenshot(page, "08-exports-workbook")
    with page.expect_download() as started:
        page.click("a[data-export='report.pdf']")
    assert started.value.suggested_filename == f"{finished_run}-report.pdf"
    page.click("a[data-export='report.html']")
    page.wait_for_selector("section.cover")
    assert finished_run in page.inner_text("section.cover")
    screenshot(page, "09-report")


def test_keyboard_reaches_the_content_first(live: Live, page: Any, finished_run: str) -> None:
    open_run(page, live, finished_run)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
