"""The Typer application and what every command shares: consoles, error handling, JSON output.

Exit codes: 0 success, 2 bad input or unknown id (message on stderr), 1 internal error,
3 a check that ran and failed (``reproduce`` found differences, ``doctor`` found problems).
``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sistack.config import Settings
from sistack.errors import InputError, SistackError

if TYPE_CHECKING:
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
CHECK_FAILED = 3  # exit code: the check ran and found differences or problems


@contextmanager
def open_service() -> Iterator[RunService]:
    # Imported here: the service pulls in scikit-learn and SciPy, which `sistack --help` and
    # argument errors should not wait for.
    from sistack.service.runs import RunService

    svc = RunService(Settings.from_env())
    try:
        yield svc
    finally:
        svc.close()


def fail(exc: SistackError) -> NoReturn:
    err.print(f"[bold red]error[/] \\[{exc.code}] {escape(exc.message)}", highlight=False)
    raise typer.Exit(2 if exc.status < 500 else 1)


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into a message and exit code 2; anything else into exit code 1."""

    # Builtin annotations only: typing resolves them in the wrapped command's module.
    def wrapper(*args: object, **kwargs: object) -> object:
        # --json promises one JSON object on stdout, failures included.
        as_json = kwargs.get("as_json", False)
        try:
            return func(*args, **kwargs)
        except SistackError as exc:
            if as_json:
                emit({"error": exc.to_dict()})
            fail(exc)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if as_json:
                emit({"error": {"code": "internal_error", "message": str(exc), "details": {}}})
            err.print(f"[bold red]internal error[/] {exc.__class__.__name__}: {escape(str(exc))}")
            raise typer.Exit(1) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


def output_path(path: Path) -> Path:
    """Refuse an output file whose folder does not exist, before any work is done."""
    if not path.parent.is_dir():
        raise InputError(
            f"Cannot write {path}: the folder {path.parent} does not exist.",
            code="output_folder_missing",
        )
    return path


def read_json_object(path: Path, *, what: str, code: str) -> dict[str, Any]:
    """A JSON object from a user's file, or exit 2 with a message naming the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"Cannot read the {what} file {path}: {exc}", code=code) from exc
    if not isinstance(data, dict):
        raise InputError(f"The {what} file must hold a JSON object.", code=code)
    return data


def emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, sort_keys=True) + "\n")


@contextmanager
def progress(enabled: bool) -> Iterator[Callable[[str, int], None]]:
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
