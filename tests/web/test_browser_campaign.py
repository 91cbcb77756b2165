"""The campaign optimiser card of the Simulation tab, in a real browser.

The form is filled with the keyboard; what the card shows is checked against the API's answer
to the same request (POST /api/v1/runs/{id}/optimize with ``campaign``), formatted by the
server's own number formats, which the page's script mirrors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sistack.io.exports.report import fmt_integer, fmt_money, fmt_number, fmt_signed_money
from tests.web.conftest import ARTIFACTS, Live, screenshot

pytestmark = pytest.mark.usefixtures("browser")


def open_simulation(page: Any, live: Live, run_id: str) -> None:
    page.goto(f"{live.url}/runs/{run_id}/simulation")
    page.wait_for_load_state("networkidle")


def fill_campaign(page: Any, *, cap: str, rpr: str, quantile: str, rules: dict[int, str]) -> None:
    """Fill the campaign form field by field, then submit it with Enter (no mouse)."""
    page.select_option("#campaign-objective", "quantile")
    page.fill("#campaign-quantile", quantile)
    page.fill("#campaign-rpr", rpr)
    for segment, rule in rules.items():
        page.select_option(f"#campaign-rule-{segment}", rule)
    page.fill("#campaign-budget", cap)
    page.focus("#campaign-budget")
    page.keyboard.press("Enter")


def summary(page: Any) -> dict[str, str]:
    terms = page.locator("#campaign-summary dt").all_inner_texts()
    return dict(zip(terms, page.locator("#campaign-summary dd").all_inner_texts(), strict=True))


def test_campaign_plan_error_and_apply(live: Live, page: Any, finished_run: str) -> None:
    run = f"/api/v1/runs/{finished_run}"
    segments = [s["segment"] for s in live.api("GET", f"{run}/baseline")["segments"]]
    never, must = segments[1], segments[-1]
    open_simulation(page, live, finished_run)

    # 1. A capped, risk-averse plan with one segment ruled out and one forced in.
    fill_campaign(page, cap="1500", rpr="40", quantile="0.2", rules={never: "never", must: "must"})
    page.wait_for_selector("#campaign-result:not([hidden])")
    body = {
        "campaign": True,
        "objective": "quantile",
        "total_budget": 1500,
        "quantile": 0.2,
        "economics": {"revenue_per_response": 40},
        "never": [never],
        "always": [must],
    }
    assert json.loads(page.get_attribute("#campaign-result", "data-request")) == body
    plan = live.api("POST", f"{run}/optimize", json=body)
    contact = {row["segment"]: row["contact"] for row in plan["segments"]}
    assert contact[must] and not contact[never]  # the rules reached the optimiser
    assert plan["spent"] <= 1500 and plan["contacted"]

    shown = summary(page)
    interval = plan["profit_interval"]
    assert shown == {
        "Customers contacted": fmt_integer(plan["customers_contacted"]),
        "Expected responders": fmt_number(plan["expected_responders"], 1),
        "Campaign cost": f"{fmt_money(plan['spent'])} of {fmt_money(1500)}",
        "Expected profit": fmt_money(plan["expected_profit"]),
        "Profit P10 – P90": f"{fmt_money(interval['p10'])} – {fmt_money(interval['p90'])}",
        "Profit P20 (maximised)": fmt_money(plan["objective_value"]),
        "Expected profit, contacting all": fmt_money(plan["contact_all"]["expected_profit"]),
        "Expected gain over contacting all": fmt_signed_money(plan["improvement"]),
    }
    rows = page.locator("#campaign-segments tbody tr")
    assert rows.count() == len(plan["segments"])
    for i, row in enumerate(plan["segments"]):
        tr = rows.nth(i)
        assert tr.get_attribute("data-segment") == str(row["segment"])
        assert tr.get_attribute("data-contact") == str(row["contact"]).lower()
        cells = tr.locator("td").all_inner_texts()
        note = {must: " (always)", never: " (never)"}.get(row["segment"], "")
        assert cells == [
            ("Contact" if row["contact"] else "Skip") + note,
            fmt_integer(row["contacts"]),
            fmt_money(row["cost"]),
            fmt_number(row["responders"], 1),
            fmt_signed_money(row["profit"]),
        ]
    verdict = page.inner_text("#campaign-verdict")
    assert verdict.endswith(
        f": {fmt_integer(plan['customers_contacted'])} customers, "
        f"{fmt_number(plan['expected_responders'], 1)} expected responders, "
        f"for {fmt_money(plan['spent'])}."
    )
    for segment in plan["contacted"]:
        assert f"{segment} · " in verdict
    warnings = page.locator("#campaign-warnings li").all_inner_texts()
    assert warnings == [w["message"] for w in plan["warnings"]]
    screenshot(page, "05-simulation-campaign")
    page.locator("#campaign-card").screenshot(path=str(ARTIFACTS / "05-campaign-card.png"))

    # 2. An invalid cap: the API's own message (and its problem list), no stale plan.
    page.fill("#campaign-budget", "-5")
    page.focus("#campaign-budget")
    page.keyboard.press("Enter")
    page.wait_for_selector("#campaign-error:not([hidden])")
    refused = live.http.post(f"{run}/optimize", json={**body, "total_budget": -5})
    assert refused.status_code == 422
    error = refused.json()["error"]
    alert = page.locator("#campaign-error")
    assert alert.evaluate("e => e.firstChild.textContent") == error["message"]
    problems = alert.locator(".details").all_inner_texts()
    assert problems == [f"{p['field']}: {p['message']}" for p in error["details"]["problems"]]
    assert page.is_hidden("#campaign-result")
    page.locator("#campaign-card").screenshot(path=str(ARTIFACTS / "05-campaign-error.png"))

    # 3. Back to the valid plan; loading it fills the scenario editor, which simulates it.
    page.fill("#campaign-budget", "1500")
    page.focus("#campaign-budget")
    page.keyboard.press("Enter")
    page.wait_for_selector("#campaign-result:not([hidden])")
    page.focus("#campaign-apply")
    page.keyboard.press("Enter")
    page.wait_for_function(
        """() => {
            const card = document.getElementById('result-card');
            return card.dataset.scenario.includes('"campaign"')
                && card.getAttribute('aria-busy') === 'false';
        }"""
    )
    assert json.loads(page.get_attribute("#result-card", "data-scenario")) == plan["scenario"]
    page.locator("#result-card").screenshot(path=str(ARTIFACTS / "05-campaign-applied.png"))
    assert page.is_checked("#lever-campaign") and not page.is_checked("#lever-price")
    assert page.input_value("#campaign-which") == "list"
    for segment in segments:
        checked = page.is_checked(f"#campaign-segments-{segment}")
        assert checked == (segment in plan["contacted"]), segment
    simulated = live.api("POST", f"{run}/simulate", json=plan["scenario"])["overall"]
    shown_profit = float(page.get_attribute("#metric-profit .metric-value", "data-value"))
    assert shown_profit == simulated["scenario"]["profit"]
    # the contact set's profit is the scenario's change in profit
    assert simulated["delta"]["profit"] == pytest.approx(plan["expected_profit"])
    # the assumptions line says the campaign lever's own value of a response (40), not only
    # the run's (11)
    assert page.text_content("#assumptions").endswith(
        "The campaign lever uses its own revenue per response 40.00."
    )
    # ... and it saves under the name the card suggests
    name = f"Campaign: contact segments {', '.join(map(str, plan['contacted']))}"
    assert page.evaluate("document.activeElement.id") == "scenario-name"
    assert page.input_value("#scenario-name") == name
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#scenario-list li[data-scenario-id] >> text="{name}"')
    saved = {s["name"]: s for s in live.api("GET", f"{run}/scenarios")}
    assert saved[name]["scenario"] == plan["scenario"]
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#campaign-card").screenshot(path=str(ARTIFACTS / "05-campaign-phone.png"))
    screenshot(page, "05-simulation-campaign-phone")


def test_a_plan_that_contacts_nobody_says_so(live: Live, page: Any, finished_run: str) -> None:
    # At the data's own economics (3 per contact, 11 per response) no segment of the demo pays
    # for its contacts: the card says so and offers nothing to load.
    run = f"/api/v1/runs/{finished_run}"
    plan = live.api("POST", f"{run}/optimize", json={"campaign": True, "objective": "expected"})
    assert plan["contacted"] == [] and plan["scenario"] is None
    open_simulation(page, live, finished_run)
    page.click("#campaign-form button[type=submit]")
    page.wait_for_selector("#campaign-result:not([hidden])")
    assert json.loads(page.get_attribute("#campaign-result", "data-request")) == {
        "campaign": True,
        "objective": "expected",
    }
    assert page.inner_text("#campaign-verdict").startswith("Contact no segment:")
    assert page.is_disabled("#campaign-apply")
    assert (
        page.inner_text("#campaign-apply-status")
        == "Nothing to load: the plan contacts no segment."
    )
    shown = summary(page)
    assert shown["Customers contacted"] == "0"
    assert shown["Campaign cost"] == fmt_money(plan["spent"])
    assert shown["Expected profit, contacting all"] == fmt_money(
        plan["contact_all"]["expected_profit"]
    )
    assert "Profit P10 (maximised)" not in shown  # the expected-profit objective
    decisions = page.locator("#campaign-segments tbody td:first-of-type").all_inner_texts()
    assert decisions == ["Skip"] * len(plan["segments"])
    page.locator("#campaign-card").screenshot(path=str(ARTIFACTS / "05-campaign-nobody.png"))
