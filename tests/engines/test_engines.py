"""Choosing an engine: names, an engine that is not installed, master URLs (no Spark needed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.engines import SPARK_INSTALL, LocalEngine, check_engine, open_engine
from sistack.errors import SistackError
from sistack.service.pipeline import RunConfig

API = "/api/v1"
real_find_spec = importlib.util.find_spec


@pytest.fixture
def no_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make PySpark look uninstalled (whether or not it is)."""

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyspark":
            return None
        return real_find_spec(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_local_is_the_default() -> None:
    assert RunConfig().engine == "local"
    assert isinstance(open_engine(), LocalEngine)
    assert open_engine().describe() == {"name": "local"}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("spark", SPARK_INSTALL), ("dask", "use one of local, spark")],
)
def test_unavailable_engine_says_how_to_fix_it(no_pyspark: None, name: str, fragment: str) -> None:
    with pytest.raises(SistackError) as info:
        check_engine(name)
    assert info.value.code == "engine_unavailable"
    assert info.value.status == 422
    assert fragment in info.value.message


def test_api_refuses_a_missing_engine_before_queueing(
    no_pyspark: None, settings: Settings, customer_csv: Path
) -> None:
    with TestClient(create_app(settings)) as client, customer_csv.open("rb") as fh:
        dataset = client.post(f"{API}/datasets", files={"file": ("c.csv", fh)}).json()
        response = client.post(f"{API}/runs", json={"dataset_id": dataset["id"], "engine": "spark"})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "engine_unavailable"
        assert error["details"]["install"] == SPARK_INSTALL
        assert client.get(f"{API}/runs").json()["total"] == 0  # nothing was queued


def test_cli_missing_engine_exits_2(
    no_pyspark: None, cli_env: dict[str, str], customer_csv: Path
) -> None:
    result = CliRunner().invoke(
        cli_app, ["run", str(customer_csv), "--engine", "spark", "--json"], env=cli_env
    )
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["code"] == "engine_unavailable"


@pytest.mark.parametrize(
    ("master", "valid"),
    [
        ("local[2]", True),
        ("local[*]", True),
        ("spark://spark-master:7077", True),
        ("spark://a:7077,b:7077", True),
        ("k8s://https://10.0.0.1:6443", True),
        ("yarn", True),
        ("http://evil", False),
        ("local[2]; rm -rf /", False),
        ("spark://host:7077/../x", False),
    ],
)
def test_spark_master_urls(master: str, valid: bool) -> None:
    if valid:
        assert RunConfig(engine="spark", spark_master=master).spark_master == master
    else:
        with pytest.raises(ValueError, match="spark_master"):
            RunConfig(engine="spark", spark_master=master)
