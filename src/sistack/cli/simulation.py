"""Commands on simulation: the lever catalogue, what-if scenarios and the budget optimiser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sistack.cli.app import JsonFlag, app, emit, guard, open_service, out, read_json_object


def _read_json(path: Path) -> dict[str, Any]:
    data = read_json_object(path, what="scenario", code="invalid_scenario")
    return data.get("scenario", data) if "levers" not in data else data


def _outcome_table(result: dict[str, Any]) -> Table:
    table = Table(title="Baseline vs scenario")
    for col in ("segment", "revenue", "Δ revenue", "cost", "Δ cost", "profit", "Δ profit", "ROI"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for row in (*result["segments"], result["overall"]):
        scen, delta = row["scenario"], row["delta"]
        roi = scen["roi"]
        table.add_row(
            escape(row["name"] if row["segment"] == 0 else f"{row['segment']} {row['name']}"),
            f"{scen['revenue']:,.0f}",
            f"{delta['revenue']:+,.0f}",
            f"{scen['cost']:,.0f}",
            f"{delta['cost']:+,.0f}",
            f"{scen['profit']:,.0f}",
            f"{delta['profit']:+,.0f}",
            "-" if roi is None else f"{roi:.2f}",
        )
    return table


@app.command()
@guard
def levers(as_json: JsonFlag = False) -> None:
    """List the simulation levers and their parameters."""
    from sistack.domain.simulation import lever_catalogue

    catalogue = lever_catalogue()
    if as_json:
        emit({"levers": catalogue})
        return
    for lever in catalogue:
        params = ", ".join(lever["parameters"].get("properties", {}))
        out.print(f"[bold]{lever['name']}[/] — {escape(lever['description'])}\n  params: {params}")


@app.command()
@guard
def simulate(
    run_id: str,
    scenario: Annotated[Path, typer.Option(help='Scenario JSON: {"levers": [...]}.')],
    sensitivity: Annotated[bool, typer.Option(help="Add tornado data.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """What if: apply a scenario's levers to a run's segments (nothing is refitted or saved)."""
    body = _read_json(scenario)
    with open_service() as svc:
        from sistack.service.simulation import SimulationService

        result = SimulationService(svc).simulate(run_id, body, sensitivity=sensitivity)
    if as_json:
        emit(result)
        return
    out.print(_outcome_table(result))
    for warning in result["warnings"]:
        out.print(f"[yellow]warning[/] {escape(warning['message'])}")
    for bar in result.get("sensitivity", [])[:5]:
        out.print(
            f"  {bar['parameter']}: profit {bar['profit_low']:+,.0f} .. {bar['profit_high']:+,.0f}"
        )


@app.command()
@guard
def optimize(
    run_id: str,
    budget: Annotated[
        float | None,
        typer.Option(
            help="Total marketing budget to allocate; with --campaign, the cap on the "
            "campaign's cost (optional)."
        ),
    ] = None,
    campaign: Annotated[
        bool,
        typer.Option(
            "--campaign",
            help="Choose which segments to contact once instead of splitting a budget.",
        ),
    ] = False,
    always: Annotated[
        list[int] | None,
        typer.Option(help="With --campaign: a segment to contact whatever it returns (repeat)."),
    ] = None,
    never: Annotated[
        list[int] | None,
        typer.Option(help="With --campaign: a segment never to contact (repeat)."),
    ] = None,
    objective: Annotated[
        str, typer.Option(help="expected or quantile (risk-averse).")
    ] = "expected",
    quantile: Annotated[float, typer.Option(help="Quantile of profit for 'quantile'.")] = 0.1,
    draws: Annotated[int, typer.Option(help="Draws of the response rates.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Best split of a marketing budget across a run's segments, or (--campaign) the best set of
    segments to contact."""
    request: dict[str, Any] = {
        "campaign": campaign,
        "objective": objective,
        "quantile": quantile,
        "draws": draws,
        "seed": seed,
    }
    if budget is not None:
        request["total_budget"] = budget
    if always:
        request["always"] = always
    if never:
        request["never"] = never
    with open_service() as svc:
        from sistack.service.simulation import SimulationService

        result = SimulationService(svc).optimize(run_id, request)
    if as_json:
        emit(result)
        return
    out.print(_contact_table(result) if campaign else _allocation_table(result))
    interval = result["profit_interval"]
    out.print(
        f"Expected profit {result['expected_profit']:,.0f} "
        f"(P10 {interval['p10']:,.0f}, P90 {interval['p90']:,.0f})"
    )
    if campaign:
        out.print(f"Contacting every segment: {result['contact_all']['expected_profit']:,.0f}")
    else:
        out.print(f"Current split: {result['current_expected_profit']:,.0f}")
    for warning in result["warnings"]:
        out.print(f"[yellow]warning[/] {escape(warning['message'])}")


def _allocation_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"Allocation of {result['total_budget']:,.0f}")
    for col in ("segment", "budget", "current", "expected responders", "revenue"):
        table.add_column(col, justify="right")
    for seg in result["segments"]:
        table.add_row(
            str(seg["segment"]),
            f"{seg['budget']:,.0f}",
            f"{seg['current_budget']:,.0f}",
            f"{seg['responders']:,.1f}",
            f"{seg['revenue']:,.0f}",
        )
    return table


def _contact_table(result: dict[str, Any]) -> Table:
    table = Table(title="Segments to contact")
    for col in ("segment", "contact", "contacts", "cost", "expected responders", "profit"):
        table.add_column(col, justify="right")
    for seg in result["segments"]:
        table.add_row(
            str(seg["segment"]),
            "yes" if seg["contact"] else "no",
            f"{seg['contacts']:,.0f}",
            f"{seg['cost']:,.0f}",
            f"{seg['responders']:,.1f}",
            f"{seg['profit']:+,.0f}",
        )
    return table
