"""Commands on data and runs: demo, generate, inspect, run, runs, reproduce, score, export."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from sistack.cli.app import (
    CHECK_FAILED,
    JsonFlag,
    app,
    emit,
    err,
    guard,
    open_service,
    out,
    output_path,
    progress,
    read_json_object,
    runs_app,
)
from sistack.config import Settings
from sistack.errors import SERVER_SIDE_CODES, InputError
from sistack.io.exports import profiles_frame, write_frame, write_json
from sistack.io.store.metadata import DEFAULT_WORKSPACE, STATUSES, SUCCEEDED, RunRecord

if TYPE_CHECKING:
    from sistack.service.runs import RunService

RUN_ID_LENGTH = 26  # a ULID in Crockford base 32


def _segments_table(record: RunRecord) -> Table:
    table = Table(title=f"Run {record.id}: {record.k} segments, {record.n_customers:,} customers")
    for name in ("segment", "persona", "customers", "customer share", "revenue share"):
        table.add_column(name, justify="left" if name == "persona" else "right")
    for s in (record.summary or {}).get("segments", []):
        table.add_row(
            str(s["segment"]),
            escape(s.get("name") or ""),
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
            {**s, "id": s["segment"], "label": s.get("name") or f"Segment {s['segment']}"}
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
    engine: str | None = None,
    spark_master: str | None = None,
    keep: bool = False,
    parent: str | None = None,
) -> RunRecord:
    if not (path.is_file() or path.is_dir()):  # a directory: the Parquet parts Spark wrote
        raise InputError(f"No file at {path}.", code="file_not_found")
    if parent is not None:
        svc.get_run(parent)  # an unknown parent is said before the file is read
    config = svc.default_config(k=k, seed=seed, engine=engine, spark_master=spark_master)
    # The file name lets the reader warn when the extension does not match the content.
    dataset, inspection = svc.add_dataset(path, filename=path.name, keep=keep, shape=shape)
    # Held: this process executes it now, a queue worker on the same database must not.
    record = svc.create_run(
        dataset.id, config=config, mapping=mapping, name=name, hold=True, parent_id=parent
    )
    # A kept file moved under the home: the run reads it there (what was read points at the
    # old place).
    with progress(show_progress) as report:
        return svc.execute(record.id, raw=None if keep else inspection.raw, progress=report)


def _fetch_with_spark(uri: str, master: str | None, folder: Path) -> Path:
    """Have Spark copy a Hadoop-compatible URI into a directory of Parquet part files under
    ``folder``, which the run registers as its dataset (kept under the home, like an upload):
    the executors read and write the rows, none passes through this process."""
    from sistack.engines.spark import build_session, write_source

    base = uri.rstrip("/").rsplit("/", 1)[-1] or "input"
    target = folder / (base.split(".", 1)[0] or "input")
    return write_source(build_session(master), uri, target)


def _finish(record: RunRecord, svc: RunService, as_json: bool) -> None:
    if as_json:
        emit(_run_json(record))
    if record.status != SUCCEEDED:
        if not as_json:
            err.print(
                f"[bold red]error[/] \\[{record.error_code}] {escape(record.error_message or '')}",
                highlight=False,
            )
        raise typer.Exit(1 if record.error_code in SERVER_SIDE_CODES else 2)
    if not as_json:
        out.print(_segments_table(record))
        banner = (record.summary or {}).get("banner")
        if banner:
            out.print(escape(banner))
        _print_quality(svc.quality(record.id), record.id)
        out.print(f"Stored in [bold]{svc.artifacts.root / record.id}[/]")
        out.print(
            f"Open it: [bold]sistack serve[/], then http://127.0.0.1:8000/runs/{record.id} "
            f"(API: /api/v1/runs/{record.id}/insights)  ·  [bold]sistack insights {record.id}[/]"
        )


def _quality_headline(quality: dict[str, Any]) -> str:
    return (
        f"Data quality: {quality['rows_used']:,} of {quality['rows_read']:,} rows used, "
        f"{quality['rows_excluded']:,} excluded"
    )


def _print_quality(quality: dict[str, Any], run_id: str) -> None:
    """One line on what the data-quality report holds, and every warning about the whole file
    (an encoding fallback, an extension that does not match the content) in full."""
    issues = quality["issues"]
    changed = sum(i["count"] for i in issues if i["kind"] == "changed")
    out.print(
        f"{_quality_headline(quality)}, {changed:,} values changed "
        f"({len(issues)} entries: [bold]sistack runs show {run_id}[/])",
        highlight=False,
    )
    for issue in issues:
        if issue["kind"] == "warning" and issue["column"] is None:
            err.print(f"[yellow]warning[/] \\[{issue['code']}] {escape(issue['message'])}")


# The local CLI acts for the machine's administrator (no key); a run it makes belongs to
# ``default`` unless it names the workspace whose API keys should see it.
WorkspaceOption = Annotated[
    str | None, typer.Option(help="Workspace of the new dataset and run (default: 'default').")
]


def _check_workspace(workspace: str | None) -> None:
    if workspace is not None:
        from sistack.service.auth import check_workspace

        check_workspace(workspace)


@app.command()
@guard
def demo(
    customers: Annotated[int, typer.Option(help="Number of synthetic customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generator and the run.")] = 42,
    workspace: WorkspaceOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a realistic customer file, segment it and print the summary."""
    from sistack.demo import write_dataset

    _check_workspace(workspace)
    settings = Settings.from_env()
    path = settings.home / "demo" / f"demo-customers-{customers}-{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dataset(path, customers=customers, seed=seed)
    if not as_json:
        out.print(f"Generated {customers:,} synthetic customers in [bold]{path}[/]")
    with open_service() as svc:
        record = _analyse(
            svc.scoped(workspace) if workspace else svc,
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
@guard
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
    output_path(output)
    if truth is not None:
        output_path(truth)
    try:
        rows = write_dataset(
            output, customers=customers, layout=layout, seed=seed, truth_path=truth
        )
    except ValueError as exc:
        raise InputError(str(exc), code="invalid_option") from exc
    err.print(f"Wrote {rows:,} rows to {output}")


@app.command()
@guard
def inspect(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX or Parquet file.")],
    shape: Annotated[str | None, typer.Option(help="Force 'customers' or 'transactions'.")] = None,
) -> None:
    """Print the detected shape and column mapping as JSON (edit it and pass it to --mapping).

    When the detected mapping could not be run as it is (no customer id, no money column),
    stderr says so and names the columns that got no role; the JSON is printed all the same.
    """
    from sistack.domain.schema import require_roles

    if not file.is_file():
        raise InputError(f"No file at {file}.", code="file_not_found")
    with open_service() as svc:
        inspection = svc.inspect(file, filename=file.name, shape=shape)
    emit(inspection.to_dict(preview_rows=3))
    try:
        require_roles(inspection.mapping)
    except InputError as exc:
        err.print(f"[bold yellow]warning[/] \\[{exc.code}] {escape(exc.message)}", highlight=False)


def _read_mapping(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = read_json_object(path, what="mapping", code="invalid_mapping")
    if isinstance(data.get("mapping"), dict):  # the whole output of 'sistack inspect'
        return data["mapping"]
    return data


@app.command()
@guard
def run(
    file: Annotated[
        str,
        typer.Argument(
            help="CSV, TSV, XLSX or Parquet file; with --engine spark also an hdfs://, s3a://, "
            "abfss:// ... URI of a CSV/Parquet file or directory."
        ),
    ],
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping JSON (from 'sistack inspect').")
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="Fixed number of segments (default: automatic).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default 42).")] = None,
    shape: Annotated[str | None, typer.Option(help="Force 'customers' or 'transactions'.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    parent: Annotated[
        str | None,
        typer.Option(
            help="Run this one follows (e.g. last month's): 'sistack compare RUN' then "
            "compares with it."
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    engine: Annotated[
        str | None, typer.Option(help="'local' (default) or 'spark' (extra: sistack[spark]).")
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(help="Spark master URL: local[2], spark://host:7077, k8s://https://..."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Segment the customers of a file and store the run."""
    from sistack.engines import ENGINES, check_engine

    _check_workspace(workspace)
    if spark_master is not None and engine is None:
        engine = "spark"
    if engine is not None and engine not in ENGINES:
        raise InputError(
            f"Unknown engine '{engine}': use one of {', '.join(ENGINES)}.", code="invalid_option"
        )
    if engine is not None:
        check_engine(engine)  # before reading the file: a missing extra is said at once
    # A local directory stands for its Parquet part files, which only Spark reads.
    remote = "://" in file or Path(file).is_dir()
    if remote and engine != "spark":
        raise InputError(
            f"'{file}' is a URI or a directory: add --engine spark to read it through Spark.",
            code="invalid_option",
        )
    uri = file if "://" in file else Path(file).resolve().as_uri()
    with open_service() as svc, tempfile.TemporaryDirectory(dir=svc.settings.home) as tmp:
        path = _fetch_with_spark(uri, spark_master, Path(tmp)) if remote else Path(file)
        record = _analyse(
            svc.scoped(workspace) if workspace else svc,
            path,
            keep=remote,
            mapping=_read_mapping(mapping),
            shape=shape,
            k=k,
            seed=seed,
            name=name,
            show_progress=not as_json,
            engine=engine,
            spark_master=spark_master,
            parent=parent,
        )
        _finish(record, svc, as_json)


@runs_app.command("list")
@guard
def runs_list(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Only this workspace (default: every workspace).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Page size.", min=1)] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many.", min=0)] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List runs of every workspace, newest first (the local CLI is the administrator)."""
    if status is not None and status not in STATUSES:
        raise InputError(
            f"Unknown status '{status}': use one of {', '.join(STATUSES)}.", code="invalid_option"
        )
    with open_service() as svc:
        if workspace is not None:
            svc = svc.scoped(workspace)
        items, total = svc.list_runs(status=status, limit=limit, offset=offset)
    if as_json:
        emit(
            {
                "total": total,
                "items": [_run_json(r) | {"name": r.name, "workspace": r.workspace} for r in items],
            }
        )
        return
    out.print(_runs_table(items, total))


def _runs_table(items: list[RunRecord], total: int) -> Table:
    """The runs as a table that fits 80 columns without cutting an id: ids are what people
    copy into the next command, so that column never wraps or shrinks; names and dates wrap.
    The workspace column appears when a run of another workspace than 'default' is listed."""
    with_workspace = any(r.workspace != DEFAULT_WORKSPACE for r in items)
    table = Table(
        title=f"{total} runs",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("id", no_wrap=True, min_width=RUN_ID_LENGTH)
    table.add_column("name", overflow="fold")
    if with_workspace:
        table.add_column("workspace", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("customers", justify="right", no_wrap=True)
    table.add_column("k", justify="right", no_wrap=True)
    table.add_column("created", overflow="fold")  # wraps between the date and the time
    for r in items:
        table.add_row(
            r.id,
            escape(r.name),
            *([escape(r.workspace)] if with_workspace else []),
            r.status,
            f"{r.n_customers or 0:,}",
            str(r.k or ""),
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


@runs_app.command("show")
@guard
def runs_show(run_id: str, as_json: JsonFlag = False) -> None:
    """Show a run's status and segments."""
    with open_service() as svc:
        record = svc.get_run(run_id)
        if as_json:
            emit(
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
            _print_quality_report(svc.quality(run_id))


def _print_quality_report(quality: dict[str, Any]) -> None:
    """Every entry of a run's data-quality report, one per paragraph (any terminal width)."""
    out.print(_quality_headline(quality), highlight=False)
    for i in quality["issues"]:
        where = i["column"] if i["column"] is not None else "whole file"
        count = f", {i['count']:,} rows" if i["count"] else ""
        out.print(
            f"  {i['kind']} \\[{i['code']}] {escape(where)}{count}: {escape(i['message'])}",
            highlight=False,
        )


@runs_app.command("delete")
@guard
def runs_delete(run_id: str) -> None:
    """Delete a run: its files and its record."""
    with open_service() as svc:
        svc.delete_run(run_id)
    err.print(f"Deleted run {run_id}")


@app.command()
@guard
def reproduce(run_id: str, as_json: JsonFlag = False) -> None:
    """Recompute a run from its stored input and config and check it is identical."""
    with open_service() as svc, progress(not as_json) as report:
        result = svc.reproduce(run_id, progress=report)
    data = {
        "run_id": result.run_id,
        "new_run_id": result.new_run_id,
        "identical": result.identical,
        "differing": result.differing,
    }
    if as_json:
        emit(data)
    else:
        verdict = "[green]identical[/]" if result.identical else "[red]different[/]"
        out.print(
            f"Reproduced {run_id} as {result.new_run_id}: {verdict}"
            + (f" ({', '.join(result.differing)})" if result.differing else "")
        )
    if not result.identical:
        raise typer.Exit(CHECK_FAILED)


@app.command()
@guard
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
    output_path(output)
    with open_service() as svc:
        frame = svc.score(run_id, file, filename=file.name)
    write_frame(frame, output)
    err.print(f"Scored {frame.height:,} customers into {output}")


# Exports that exist in one format only: built (and cached) by the export service.
DOCUMENTS = {"report": "report.pdf", "workbook": "workbook.xlsx"}


@app.command()
@guard
def export(
    run_id: str,
    what: Annotated[
        str, typer.Option(help="assignments, profiles, manifest, report (PDF) or workbook (XLSX).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="File (.csv .parquet .json .pdf .xlsx).")
    ],
) -> None:
    """Export a run's assignments, segment profiles, manifest, PDF report or XLSX workbook."""
    output_path(output)
    with open_service() as svc:
        if what == "assignments":
            # The whole file: a slice length past polars' index size (u32 on some builds) overflows.
            write_frame(pl.read_parquet(svc.assignments_path(run_id)), output)
        elif what == "profiles":
            write_frame(profiles_frame(svc.profiles(run_id)), output)
        elif what == "manifest":
            write_json(svc.manifest(run_id), output)
        elif what in DOCUMENTS:
            suffix = Path(DOCUMENTS[what]).suffix
            if output.suffix.lower() != suffix:
                raise InputError(
                    f"The {what} is a {suffix} file; name it '{output.stem}{suffix}'.",
                    code="unsupported_export_format",
                    details={"allowed": [suffix]},
                )
            from sistack.service.exports import ExportService

            ExportService(svc).copy_to(run_id, DOCUMENTS[what], output)
        else:
            raise InputError(
                f"Unknown export '{what}': use assignments, profiles, manifest, report or "
                "workbook.",
                code="unknown_export",
            )
    err.print(f"Exported {what} of {run_id} to {output}")


@app.command()
@guard
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="API processes (default SISTACK_WORKERS or 1); >1 needs queue."),
    ] = None,
) -> None:
    """Start the REST API (OpenAPI docs at /docs).

    With ``--workers N`` (N > 1) uvicorn forks N processes that each build the app from
    ``sistack.api.app:create_app``. That needs ``SISTACK_EXECUTION=queue``: inline runners in
    several processes would each fail the others' runs at start-up.
    """
    import uvicorn

    from sistack.api.app import create_app
    from sistack.io.store.metadata import MetadataStore
    from sistack.logs import configure_logging, logging_config
    from sistack.service.auth import KeyService, bind_decision

    settings = Settings.from_env()
    bind_host, bind_port = host or settings.host, port or settings.port
    processes = workers or settings.workers
    store = MetadataStore(settings.db_url)
    try:
        keys_enabled = KeyService(store).enabled()
    finally:
        store.close()
    refused = bind_decision(bind_host, keys_enabled=keys_enabled)
    if refused:
        raise InputError(refused, code="no_keys_for_public_bind")
    if processes > 1 and settings.execution != "queue":
        raise InputError(
            f"--workers {processes} needs SISTACK_EXECUTION=queue (and 'sistack worker' "
            "processes to execute runs): with inline execution every API process would run jobs "
            "itself and fail the other processes' runs when it starts.",
            code="invalid_option",
        )
    lines = [
        f"Serving on http://{bind_host}:{bind_port}  (API docs: /docs, {processes} process(es), "
        f"{settings.execution} execution)",
        "API keys exist: every API call needs a key, the web UI a login (/login)."
        if keys_enabled
        else "Local mode: no API key exists, so there is no authentication; listening on this "
        "machine only. Create a key with `sistack keys create` to serve others.",
    ]
    if settings.log_format == "json":  # every line on stderr is then a JSON object
        configure_logging("json")
        for line in lines:
            logging.getLogger("sistack.serve").info(line)
    else:
        err.print(lines[0])
        err.print(lines[1], style=None if keys_enabled else "yellow")
    # Applied by uvicorn in every process it starts: sistack's and uvicorn's lines alike are
    # text or JSON (SISTACK_LOG_FORMAT), access lines carry the run id found in their path.
    log_config = logging_config(settings.log_format)
    if processes == 1:
        uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_config=log_config)
    else:
        uvicorn.run(
            "sistack.api.app:create_app",
            factory=True,
            workers=processes,
            host=bind_host,
            port=bind_port,
            log_config=log_config,
        )
