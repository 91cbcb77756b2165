"""Shared fixtures: isolated settings, small deterministic customer files, a throw-away PostgreSQL.

Every test gets its own home directory, so runs, datasets and the SQLite database never leak
between tests. Segmentation settings are kept small (3 stability resamples, k up to 4) so an
end-to-end run over a few hundred customers takes well under a second.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest

from sistack.config import Settings

if TYPE_CHECKING:
    from sistack.service.runs import RunService

SMALL = {"stability_resamples": 3, "k_max": 4}
SMALL_ENV = {"SISTACK_STABILITY_RESAMPLES": "3", "SISTACK_K_MAX": "4"}
PG_HOST = "127.0.0.1:5432"

try:  # the generator of the product; the fallback below keeps these tests independent of it
    from sistack.demo import write_dataset as _demo_write
except ImportError:  # pragma: no cover - only while demo.py does not exist
    _demo_write = None


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignore the developer's own ``SISTACK_*`` variables (a database URL, a home...)."""
    for name in list(os.environ):
        if name.startswith("SISTACK_"):
            monkeypatch.delenv(name)


def small_settings(home: Path, **overrides: object) -> Settings:
    """Settings with their own ``home`` and small segmentation values (explicit over env)."""
    values: dict[str, object] = {"home": home, "database_url": None, "artifact_root": None}
    return Settings(**{**values, **SMALL, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh home and small segmentation settings."""
    return small_settings(tmp_path / "home")


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for ``CliRunner.invoke``: the same home and small settings as ``settings``."""
    return {"SISTACK_HOME": str(settings.home), **SMALL_ENV}


@pytest.fixture
def runs(settings: Settings) -> Iterator[RunService]:
    """A run service on ``settings``' home (a test's own, or a second one beside an API
    client on the same home, to change stored runs behind its back)."""
    from sistack.service.runs import RunService

    svc = RunService(settings)
    yield svc
    svc.close()


Invoke = Callable[..., Any]


@pytest.fixture
def sistack(cli_env: dict[str, str]) -> Invoke:
    """``sistack(*args, code=0)``: run a command and check its exit code."""
    from typer.testing import CliRunner  # only the CLI tests pay for importing the CLI

    from sistack.cli import app

    def invoke(*args: str | Path, code: int = 0) -> Any:
        result = CliRunner().invoke(
            app, [str(a) for a in args], env=cli_env, catch_exceptions=False
        )
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    return invoke


def three_groups(customers: int = 90, *, seed: int = 0) -> pl.DataFrame:
    """A small customer table with three well-separated groups (rows cycle through them).

    Group 0 spends little and buys on deals, group 1 buys on the web, group 2 spends most in
    stores; the columns follow the marketing layout, signup dates as dd-mm-yyyy.
    """
    rng = np.random.default_rng(seed)
    group = np.arange(customers) % 3

    def around(centres: list[float], spread: float) -> np.ndarray:
        return np.array(centres)[group] + rng.integers(0, int(spread) + 1, customers)

    days = around([600, 300, 100], 30)
    signup = [(dt.date(2014, 6, 29) - dt.timedelta(days=int(d))).strftime("%d-%m-%Y") for d in days]
    return pl.DataFrame(
        {
            "ID": np.arange(1, customers + 1),
            "Income": around([30_000, 60_000, 95_000], 4_000).astype(np.float64),
            "MntWines": around([20, 300, 900], 20),
            "MntMeatProducts": around([10, 150, 600], 20),
            "NumWebPurchases": around([2, 6, 3], 1),
            "NumStorePurchases": around([1, 4, 10], 1),
            "NumDealsPurchases": around([5, 2, 0], 1),
            "Recency": around([80, 40, 10], 4),
            "Dt_Customer": signup,
        }
    )


@pytest.fixture
def make_customers() -> Callable[..., pl.DataFrame]:
    """``make_customers(n, seed=...)``: the three-group table of :func:`three_groups`."""
    return three_groups


def _write_customers(
    path: Path, *, customers: int = 300, seed: int = 7, response: bool = True
) -> Path:
    """The marketing layout; ``response=False`` leaves out the ``Response`` label column."""
    if _demo_write is not None:
        _demo_write(path, customers=customers, seed=seed)
        if not response:
            pl.read_csv(path).drop("Response").write_csv(path)
    else:  # pragma: no cover
        three_groups(customers, seed=seed).write_csv(path)
    return path


@pytest.fixture
def write_customers() -> Callable[..., Path]:
    """``write_customers(path, customers=300, seed=7)`` writes a customer-level CSV."""
    return _write_customers


@pytest.fixture
def customer_csv(tmp_path: Path) -> Path:
    """300 synthetic customers in the marketing layout (planted segments), no ``Response``.

    With a response label every run also fits the response model of the insights stage, about
    3 s for 300 customers; the CLI and API tests run dozens of runs and are not about that model
    (``tests/api`` keeps the label in its shared run).
    """
    return _write_customers(tmp_path / "customers.csv", customers=300, seed=7, response=False)


# --- PostgreSQL -------------------------------------------------------------------------------


def _admin() -> tuple[object, str]:
    """An autocommit connection to the server's ``postgres`` database and the user that worked."""
    import psycopg

    problems = []
    for user in ("postgres", "root"):
        try:
            conn = psycopg.connect(
                f"postgresql://{user}@{PG_HOST}/postgres", autocommit=True, connect_timeout=3
            )
        except psycopg.Error as exc:
            problems.append(f"{user}: {exc}".strip())
            continue
        return conn, user
    raise ConnectionError("; ".join(problems))


def _dispose_engines(database: str) -> None:
    """Close the pools of engines a test left open on ``database`` before it is dropped."""
    from sqlalchemy.engine import Engine

    for obj in gc.get_objects():
        if isinstance(obj, Engine) and obj.url.database == database:
            obj.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the local server; dropped (connections forced out) afterwards."""
    try:
        conn, user = _admin()
    except (ConnectionError, ImportError) as exc:
        message = f"PostgreSQL at {PG_HOST} is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"sistack_test_{uuid.uuid4().hex[:8]}"
    try:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}/{name}"
    finally:
        _dispose_engines(name)
        conn, _ = _admin()
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        finally:
            conn.close()  # type: ignore[attr-defined]


# --- the API in-process -----------------------------------------------------------------------


def run_file(client: Any, path: Path, *, wait: bool = True) -> tuple[dict[str, Any], str]:
    """Upload ``path`` through ``client`` (a TestClient), queue a run of it and, with ``wait``,
    let the app's inline job runner finish it. Returns the dataset record and the run id."""
    with path.open("rb") as fh:
        upload = client.post("/api/v1/datasets", files={"file": (path.name, fh)})
    assert upload.status_code == 201, upload.text
    dataset: dict[str, Any] = upload.json()
    started = client.post("/api/v1/runs", json={"dataset_id": dataset["id"]})
    assert started.status_code == 202, started.text
    run_id = str(started.json()["id"])
    if wait:
        client.app.state.jobs.wait(run_id, timeout=60)
    return dataset, run_id
