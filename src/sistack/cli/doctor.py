"""``sistack doctor``: verify every succeeded run's artifacts against its manifest."""

from __future__ import annotations

import typer
from rich.markup import escape

from sistack.cli.app import CHECK_FAILED, JsonFlag, app, emit, guard, open_service, out


@app.command()
@guard
def doctor(as_json: JsonFlag = False) -> None:
    """Check run artifacts against their manifests (sha256, sizes) and look for strays.

    Exit code 0 when everything is intact, 1 when anything is missing, changed or left over.
    """
    with open_service() as svc:
        from sistack.service.doctor import diagnose

        report = diagnose(svc.store, svc.artifacts)
    if as_json:
        emit(report.to_dict())
    elif report.ok:
        out.print(
            f"[green]ok[/] {report.runs_checked} succeeded run(s), {report.files_checked} "
            f"file(s) verified under {escape(str(report.root))}."
        )
    else:
        out.print(
            f"[bold red]{len(report.problems)} problem(s)[/] under {escape(str(report.root))}:"
        )
        for p in report.problems:
            out.print(f"  [red]{p.kind}[/] {escape(p.path)}", highlight=False)
            out.print(f"      {escape(p.message)}", highlight=False)
        out.print(
            f"{report.runs_checked} succeeded run(s) checked, {report.files_checked} file(s) "
            "verified."
        )
    if not report.ok:
        raise typer.Exit(CHECK_FAILED)
