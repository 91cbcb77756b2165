"""Commands on simulation: the lever catalogue, what-if scenarios and the budget optimiser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sistack.cli.app import JsonFlag, app, emit, guard, open_service, out, read_json_object
from sistack.errors import InputError


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
    budget: Annotated[float, typer.Option(help="Total marketing budget to allocate.")],
    objective: Annotated[
        str, typer.Option(help="expected or quantile (risk-averse).")
    ] = "expected",
    quantile: Annotated[float, typer.Option(help="Quantile of profit for 'quantile'.")] = 0.1,
    as_json: JsonFlag = False,
) -> None:
    """Best split of a marketing budget across a run's segments."""
    if objective != "expected" and objective != "quantile":
        raise InputError("--objective must be 'expected' or 'quantile'.", code="invalid_option")
    if not budget > 0:
        raise InputError("--budget must be positive.", code="invalid_option")
    with open_service() as svc:
        from sistack.service.simulation import SimulationService

        result = SimulationService(svc).optimize(
            run_id,
            total_budget=budget,
            objective="quantile" if objective == "quantile" else "expected",
            quantile=quantile,
        )
    if as_json:
        emit(result)
        return
    table = Table(title=f"Allocation of {budget:,.0f}")
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
    out.print(table)
