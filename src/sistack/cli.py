"""The ``sistack`` command line: thin commands over the service layer.

Exit codes: 0 success, 2 bad input or unknown id (message on stderr), 1 internal error.
``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sistack.config import Settings
from sistack.errors import InputError, SistackError
from sistack.io.exports import profiles_frame, write_frame, write_json
from sistack.io.store.metadata import STATUSES, SUCCEEDED, RunRecord
from sistack.service.runs import RunService

app = typer.Typer(
    help="Strategic Intelligence Stack: segment customers and explain the segments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List, show and delete runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@contextmanager
def _service() -> Iterator[RunService]:
    svc = RunService(Settings())
    try:
        yield svc
    finally:
        svc.close()


def _fail(exc: SistackError) -> None:
    err.print(f"[bold red]error[/] \\[{exc.code}] {escape(exc.message)}", highlight=False)
    raise typer.Exit(2 if exc.status < 500 else 1)


def _guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into a message and exit code 2; anything else into exit code 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # --json promises one JSON object on stdout, failures included.
        as_json = kwargs.get("as_json", False)
        try:
            return func(*args, **kwargs)
        except SistackError as exc:
            if as_json:
                _emit({"error": exc.to_dict()})
            _fail(exc)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if as_json:
                _emit({"error": {"code": "internal_error", "message": str(exc), "details": {}}})
            err.print(f"[bold red]internal error[/] {exc.__class__.__name__}: {escape(str(exc))}")
            raise typer.Exit(1) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


def _output(path: Path) -> Path:
    """Refuse an output file whose folder does not exist, before any work is done."""
    if not path.parent.is_dir():
        raise InputError(
            f"Cannot write {path}: the folder {path.parent} does not exist.",
            code="output_folder_missing",
        )
    return path


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, sort_keys=True) + "\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], None]]:
    if not enabled:
        yield lambda stage, pct: None
        return
    with Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=100)
        yield lambda stage, pct: bar.update(task, completed=pct, description=stage)


def _segments_table(record: RunRecord) -> Table:
    table = Table(title=f"Run {record.id}: {record.k} segments, {record.n_customers:,} customers")
    for name in ("segment", "customers", "customer share", "revenue share"):
        table.add_column(name, justify="right")
    for s in (record.summary or {}).get("segments", []):
        table.add_row(
            str(s["segment"]),
            f"{s['customers']:,}",
            f"{s['customer_share']:.1%}",
            f"{s['revenue_share']:.1%}",
        )
    return table


def _run_json(record: RunRecord) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run_id": record.id,
        "status": record.status,
        "n_customers": record.n_customers,
        "k": record.k,
        "segments": [
            {**s, "id": s["segment"], "label": f"Segment {s['segment']}"}
            for s in (record.summary or {}).get("segments", [])
        ],
    }
    if record.error_code:
        data["error"] = {"code": record.error_code, "message": record.error_message}
    return data


def _analyse(
    svc: RunService,
    path: Path,
    *,
    mapping: dict[str, Any] | None,
    shape: str | None,
    k: int | None,
    seed: int | None,
    name: str | None,
    show_progress: bool,
) -> RunRecord:
    if not path.is_file():
        raise InputError(f"No file at {path}.", code="file_not_found")
    config = svc.default_config(k=k, seed=seed)
    # The file name lets the reader warn when the extension does not match the content.
    dataset, inspection = svc.add_dataset(path, filename=path.name, keep=False, shape=shape)
    record = svc.create_run(dataset.id, config=config, mapping=mapping, name=name)
    with _progress(show_progress) as report:
        return svc.execute(record.id, raw=inspection.raw, progress=report)


def _finish(record: RunRecord, svc: RunService, as_json: bool) -> None:
    if as_json:
        _emit(_run_json(record))
    if record.status != SUCCEEDED:
        if not as_json:
            err.print(
                f"[bold red]error[/] \\[{record.error_code}] {escape(record.error_message or '')}",
                highlight=False,
            )
        raise typer.Exit(1 if record.error_code == "internal_error" else 2)
    if not as_json:
        out.print(_segments_table(record))
        out.print(f"Stored in [bold]{svc.artifacts.root / record.id}[/]")
        out.print(
            f"Open it: [bold]sistack serve[/], then http://127.0.0.1:8000/api/v1/runs/{record.id}"
            f"/segments  ·  [bold]sistack runs show {record.id}[/]"
        )


@app.command()
@_guard
def demo(
    customers: Annotated[int, typer.Option(help="Number of synthetic customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generator and the run.")] = 42,
    as_json: JsonFlag = False,
) -> None:
    """Generate a realistic customer file, segment it and print the summary."""
    from sistack.demo import write_dataset

    settings = Settings()
    path = settings.home / "demo" / f"demo-customers-{customers}-{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(path, customers=customers, seed=seed)
    if not as_json:
        out.print(f"Generated {customers:,} synthetic customers in [bold]{path}[/]")
    with _service() as svc:
        record = _analyse(
            svc,
            path,
            mapping=None,
            shape=None,
            k=None,
            seed=seed,
            name=f"Demo ({customers:,} customers)",
            show_progress=not as_json,
        )
        _finish(record, svc, as_json)


@app.command()
@_guard
def generate(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="File to write (.csv .tsv .parquet .xlsx).")
    ],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 2000,
    layout: Annotated[str, typer.Option(help="customers or transactions.")] = "customers",
    seed: Annotated[int, typer.Option(help="Seed.")] = 42,
    truth: Annotated[Path | None, typer.Option(help="Also write customer_id,true_segment.")] = None,
) -> None:
    """Write a synthetic data set with planted segments."""
    from sistack.demo import write_dataset

    if layout not in ("customers", "transactions"):
        raise InputError("--layout must be 'customers' or 'transactions'.", code="invalid_option")
    _output(output)
    if truth is not None:
        _output(truth)
    try:
        rows = write_dataset(
            output, customers=customers, layout=layout, seed=seed, truth_path=truth
        )
    except ValueError as exc:
        raise InputError(str(exc), code="invalid_option") from exc
    err.print(f"Wrote {rows:,} rows to {output}")


@app.command()
@_guard
def inspect(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX or Parquet file.")],
    shape: Annotated[str | None, typer.Option(help="Force 'customers' or 'transactions'.")] = None,
) -> None:
    """Print the detected shape and column mapping as JSON (edit it and pass it to --mapping)."""
    if not file.is_file():
        raise InputError(f"No file at {file}.", code="file_not_found")
    with _service() as svc:
        info = svc.inspect(file, filename=file.name, shape=shape).to_dict(preview_rows=3)
    _emit(info)


def _read_mapping(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"Cannot read the mapping file {path}: {exc}", code="invalid_mapping"
        ) from exc
    if not isinstance(data, dict):
        raise InputError("The mapping file must hold a JSON object.", code="invalid_mapping")
    if isinstance(data.get("mapping"), dict):  # the whole output of 'sistack inspect'
        return data["mapping"]
    return data


@app.command()
@_guard
def run(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX or Parquet file.")],
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping JSON (from 'sistack inspect').")
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="Fixed number of segments (default: automatic).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default 42).")] = None,
    shape: Annotated[str | None, typer.Option(help="Force 'customers' or 'transactions'.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Segment the customers of a file and store the run."""
    with _service() as svc:
        record = _analyse(
            svc,
            file,
            mapping=_read_mapping(mapping),
            shape=shape,
            k=k,
            seed=seed,
            name=name,
            show_progress=not as_json,
        )
        _finish(record, svc, as_json)


@runs_app.command("list")
@_guard
def runs_list(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    limit: Annotated[int, typer.Option(help="Page size.", min=1)] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many.", min=0)] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first."""
    if status is not None and status not in STATUSES:
        raise InputError(
            f"Unknown status '{status}': use one of {', '.join(STATUSES)}.", code="invalid_option"
        )
    with _service() as svc:
        items, total = svc.list_runs(status=status, limit=limit, offset=offset)
    if as_json:
        _emit({"total": total, "items": [_run_json(r) | {"name": r.name} for r in items]})
        return
    table = Table(title=f"{total} runs")
    for col in ("id", "name", "status", "customers", "k", "created"):
        table.add_column(col)
    for r in items:
        table.add_row(
            r.id,
            r.name,
            r.status,
            f"{r.n_customers or 0:,}",
            str(r.k or ""),
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@runs_app.command("show")
@_guard
def runs_show(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run's status and segments."""
    with _service() as svc:
        record = svc.get_run(run_id)
        if as_json:
            _emit(
                _run_json(record)
                | {"manifest": svc.manifest(run_id) if record.status == SUCCEEDED else None}
            )
            return
        out.print(
            f"{record.id}  {record.name}  [bold]{record.status}[/] ({record.stage}, "
            f"{record.progress}%)"
        )
        if record.error_message:
            out.print(f"[red]{record.error_code}[/]: {record.error_message}")
        if record.status == SUCCEEDED:
            out.print(_segments_table(record))


@runs_app.command("delete")
@_guard
def runs_delete(run_id: str) -> None:
    """Delete a run: its files and its record."""
    with _service() as svc:
        svc.delete_run(run_id)
    err.print(f"Deleted run {run_id}")


@app.command()
@_guard
def reproduce(run_id: str, as_json: JsonFlag = False) -> None:
    """Recompute a run from its stored input and config and check it is identical."""
    with _service() as svc, _progress(not as_json) as report:
        result = svc.reproduce(run_id, progress=report)
    data = {
        "run_id": result.run_id,
        "new_run_id": result.new_run_id,
        "identical": result.identical,
        "differing": result.differing,
    }
    if as_json:
        _emit(data)
    else:
        verdict = "[green]identical[/]" if result.identical else "[red]different[/]"
        out.print(
            f"Reproduced {run_id} as {result.new_run_id}: {verdict}"
            + (f" ({', '.join(result.differing)})" if result.differing else "")
        )
    if not result.identical:
        raise typer.Exit(1)


@app.command()
@_guard
def score(
    run_id: str,
    file: Annotated[Path, typer.Argument(help="New customers, same kinds of columns.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write (.csv .parquet .json).")
    ],
) -> None:
    """Assign new customers to a run's segments without refitting."""
    if not file.is_file():
        raise InputError(f"No file at {file}.", code="file_not_found")
    _output(output)
    with _service() as svc:
        frame = svc.score(run_id, file, filename=file.name)
    write_frame(frame, output)
    err.print(f"Scored {frame.height:,} customers into {output}")


@app.command()
@_guard
def export(
    run_id: str,
    what: Annotated[str, typer.Option(help="assignments, profiles or manifest.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File (.csv .parquet .json).")],
) -> None:
    """Export a run's assignments, segment profiles or manifest."""
    _output(output)
    with _service() as svc:
        if what == "assignments":
            # The whole file: a slice length past polars' index size (u32 on some builds) overflows.
            write_frame(pl.read_parquet(svc.assignments_path(run_id)), output)
        elif what == "profiles":
            write_frame(profiles_frame(svc.profiles(run_id)), output)
        elif what == "manifest":
            write_json(svc.manifest(run_id), output)
        else:
            raise InputError(
                f"Unknown export '{what}': use assignments, profiles or manifest.",
                code="unknown_export",
            )
    err.print(f"Exported {what} of {run_id} to {output}")


@app.command()
@_guard
def insights(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run's decision banner, KPIs, personas and top actions."""
    with _service() as svc:
        doc = svc.insights(run_id)
    if as_json:
        _emit(doc)
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
@_guard
def compare(
    run_a: Annotated[str, typer.Argument(help="The reference run (e.g. the earlier one).")],
    run_b: Annotated[str | None, typer.Argument(help="The other run; default: A's parent.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two runs: matched segments, KPI deltas, migrations, agreement (ARI)."""
    with _service() as svc:
        doc = svc.compare(run_a, None) if run_b is None else svc.compare(run_b, run_a)
    if as_json:
        _emit(doc)
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


@app.command()
@_guard
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Start the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from sistack.api.app import create_app

    settings = Settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    err.print(f"Serving on http://{bind_host}:{bind_port}  (API docs: /docs)")
    uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_level="info")


def main() -> None:
    app()
