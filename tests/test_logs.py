"""Operator logs: JSON lines from ``sistack serve``, each line about a run carrying its id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sistack.logs import CURRENT_RUN, AccessFilter, JsonFormatter, RunIdFilter, TextFormatter
from tests.conftest import three_groups
from tests.live import API, server, upload_and_run, wait_for

RUN = "01HQWY77AT0000000000000007"


def access_record(path: str, status: int = 200) -> logging.LogRecord:
    """What uvicorn's access logger emits for one request."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "h11_impl.py",
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", path, "1.1", status),
        None,
    )


def formatted(record: logging.LogRecord, *filters: logging.Filter) -> dict[str, object]:
    for f in filters:
        f.filter(record)
    data: dict[str, object] = json.loads(JsonFormatter().format(record))
    return data


def test_access_lines_are_structured_and_carry_the_run_id_of_their_path() -> None:
    data = formatted(access_record(f"{API}/runs/{RUN}/segments?x=1", 404), AccessFilter())
    assert {k: data[k] for k in ("logger", "method", "path", "status", "run_id")} == {
        "logger": "uvicorn.access",
        "method": "GET",
        "path": f"{API}/runs/{RUN}/segments?x=1",
        "status": 404,
        "run_id": RUN,
    }
    assert data["message"] == f'127.0.0.1:50000 - "GET {API}/runs/{RUN}/segments?x=1 HTTP/1.1" 404'


def test_paths_without_a_run_have_no_run_id() -> None:
    for path in (f"{API}/runs", f"{API}/runs/{RUN}X", "/runs/not-an-id", "/health"):
        assert "run_id" not in formatted(access_record(path), AccessFilter())


def test_lines_written_during_a_run_get_its_id_from_the_context() -> None:
    token = CURRENT_RUN.set(RUN)
    try:
        record = logging.LogRecord("sistack.runs", logging.INFO, "x", 1, "stage done", (), None)
        assert formatted(record, RunIdFilter())["run_id"] == RUN
        text = TextFormatter("%(message)s")
        assert text.format(record) == f"stage done run_id={RUN}"
    finally:
        CURRENT_RUN.reset(token)


def test_serve_with_json_logs_writes_only_json_lines_naming_runs(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    data = tmp_path / "customers.csv"
    three_groups(90, seed=2).write_csv(data)
    with server(home, log, SISTACK_LOG_FORMAT="json") as (_, client):
        run_id = upload_and_run(client, data)
        assert wait_for(client, run_id, lambda r: r["status"] != "queued" and r["progress"] == 100)
        assert client.get(f"{API}/runs/{run_id}/segments").status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    assert {"sistack.serve", "uvicorn.error", "uvicorn.access"} <= loggers
    segments = [line for line in lines if str(line.get("path", "")).endswith("/segments")]
    assert [(line["run_id"], line["status"]) for line in segments] == [(run_id, 200)]
    assert all(
        line.get("run_id") == run_id
        for line in lines
        if line["logger"] == "uvicorn.access" and f"/runs/{run_id}" in str(line["path"])
    )
