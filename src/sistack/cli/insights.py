"""Commands on insights: the decision view of a run and the comparison of two runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sistack.cli.app import (
    JsonFlag,
    app,
    emit,
    guard,
    open_service,
    out,
)


@app.command()
@guard
def insights(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run's decision banner, KPIs, personas and top actions."""
    with open_service() as svc:
        doc = svc.insights(run_id)
    if as_json:
        emit(doc)
        return
    overall = doc["overall"]
    out.print(f"[bold]{escape(doc['banner'])}[/]")
    out.print(
        f"{overall['customers']:,} customers · revenue {overall['revenue']:,.0f} · "
        f"{overall['avg_revenue']:,.1f} per customer · top 20% bring "
        f"{overall['top20_revenue_share']:.0%} of revenue"
    )
    table = Table(title="Segments")
    for col in (
        "seg",
        "persona",
        "customers",
        "revenue",
        "index",
        "resp.",
        "deal-dep.",
        "12m value",
    ):
        table.add_column(col, justify="left" if col == "persona" else "right")
    for seg in doc["segments"]:
        c = seg["contribution"]
        resp = (seg.get("response") or {}).get("expected_rate")
        deal = (seg.get("discount") or {}).get("deal_dependent_share")
        value = ((seg.get("value") or {}).get("value_12m") or {}).get("total")
        table.add_row(
            str(seg["segment"]),
            escape(seg["persona"]["name"]),
            f"{c['customer_share']:.1%}",
            f"{c['revenue_share']:.1%}",
            f"{c['revenue_index']:.2f}",
            "-" if resp is None else f"{resp:.1%}",
            "-" if deal is None else f"{deal:.0%}",
            "-" if value is None else f"{value:,.0f}",
        )
    out.print(table)
    for i, action in enumerate(doc["top_actions"], 1):
        out.print(
            f"{i}. segment {action['segment']}: {escape(action['title'])} "
            f"(revenue at stake {action['revenue_at_stake']:,.0f})"
        )


@app.command()
@guard
def compare(
    run_a: Annotated[str, typer.Argument(help="The reference run (e.g. the earlier one).")],
    run_b: Annotated[str | None, typer.Argument(help="The other run; default: A's parent.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two runs: matched segments, KPI deltas, migrations, agreement (ARI)."""
    with open_service() as svc:
        doc = svc.compare(run_a, None) if run_b is None else svc.compare(run_b, run_a)
    if as_json:
        emit(doc)
        return
    table = Table(title=f"{doc['run_a']} -> {doc['run_b']}")
    for col in ("A", "B", "match quality", "Δ customer share", "Δ revenue share"):
        table.add_column(col, justify="right")
    for m in doc["matches"]:
        table.add_row(
            str(m["segment_a"]),
            str(m["segment_b"]),
            f"{m['quality']:.2f}" + (" (weak)" if m["weak"] else ""),
            f"{m['deltas']['customer_share']:+.1%}",
            f"{m['deltas']['revenue_share']:+.1%}",
        )
    out.print(table)
    if doc["migration"] is not None:
        out.print(f"{doc['shared_customers']:,} shared customers, ARI {doc['ari']:.3f}")
        for i, row in enumerate(doc["migration"], 1):
            out.print(f"  from {i}: " + "  ".join(f"{v:>6,}" for v in row))
