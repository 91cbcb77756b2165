"""Bad customer files, each built here, through BOTH the CLI and the API.

Every case says what a person must see: the error code (CLI exit 2 with ``[code]`` on stderr and
one JSON error object with ``--json``; an API 4xx with ``error.code``, or a run that fails with
that code), or, for files that are accepted, the warning and where it is reported (the quality
report, or the reader's warnings in the dataset and the run manifest). Never a 500, an exit code
1 or a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.service.runs import RunService
from tests.conftest import small_settings, three_groups

API = "/api/v1"
N = 60  # customers in the base file (three groups of 20)
Build = Callable[[pl.DataFrame], bytes]


def csv(frame: pl.DataFrame, **options: Any) -> bytes:
    return frame.write_csv(**options).encode()


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def joined(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def with_line(index: int, edit: Callable[[str], str]) -> Build:
    """The base CSV with file line ``index`` (0 = header) edited."""

    def build(frame: pl.DataFrame) -> bytes:
        rows = lines(csv(frame))
        rows[index] = edit(rows[index])
        return joined(rows)

    return build


def text_cells(column: str, values: dict[int, str]) -> Build:
    """The base CSV with some cells of ``column`` replaced (keys: 1-based data rows)."""

    def build(frame: pl.DataFrame) -> bytes:
        cells = frame.get_column(column).cast(pl.String).to_list()
        for row, value in values.items():
            cells[row - 1] = value
        return csv(frame.with_columns(pl.Series(column, cells, dtype=pl.String)))

    return build


def latin1(frame: pl.DataFrame) -> bytes:
    names = ["José", "Zoë", "Ångström"] * (frame.height // 3)
    return csv(frame.with_columns(pl.Series("Name", names))).decode().encode("latin-1")


def xlsx(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    return buffer.getvalue()


def zip_without_workbook(_: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    """One bad input and what the user must be told.

    ``code`` is the error code, or for an accepted file the warning code ("" when there is none).
    ``http`` is the status of a refusal before any run (the upload, or ``POST /runs``); ``None``
    means the run is accepted (202) and then fails with ``code``. ``where`` says where an accepted
    file's warning shows: ``"quality"`` (the run's quality report) or ``"read"`` (the dataset's
    warnings and the manifest's ``input.read_warnings``).
    """

    id: str
    filename: str
    build: Build
    code: str
    accepted: bool = False
    http: int | None = 422
    where: str = "quality"
    k: int | None = None
    count: int | None = None  # of the quality issue
    column: str | None = None  # the quality issue names this column...
    rows: tuple[int, ...] = ()  # ...and these 1-based data rows
    says: tuple[str, ...] = ()  # fragments of the message
    customers: int = N  # customers of an accepted run


CASES = [
    Case("empty", "empty.csv", lambda f: b"", "empty_file", says=("empty",)),
    Case("blank", "blank.csv", lambda f: b"  \n\n \n", "empty_file"),
    Case(
        "header_only",
        "header.csv",
        lambda f: lines(csv(f))[0].encode() + b"\n",
        "no_data_rows",
        says=("no data rows",),
    ),
    Case("bom", "bom.csv", lambda f: b"\xef\xbb\xbf" + csv(f), "", accepted=True, http=None),
    Case(
        "latin1",
        "latin1.csv",
        latin1,
        "encoding_fallback",
        accepted=True,
        where="read",
        says=("not valid UTF-8",),
    ),
    Case(
        "utf16",
        "utf16.csv",
        lambda f: f.write_csv().encode("utf-16"),
        "",
        accepted=True,
    ),
    Case("semicolon", "semicolon.csv", lambda f: csv(f, separator=";"), "", accepted=True),
    Case(
        "ragged",
        "ragged.csv",
        with_line(5, lambda line: line + ",9,9"),
        "ragged_rows",
        says=("more fields than the header's 9 columns", "row 6"),
    ),
    Case(
        "duplicate_columns",
        "dupcols.csv",
        with_line(0, lambda line: line.replace("MntMeatProducts", "MntWines")),
        "duplicate_columns",
        says=("'MntWines' at positions 3, 4",),
    ),
    Case(
        "unbalanced_quote",
        "quote.csv",
        with_line(4, lambda line: '"' + line),
        "malformed_csv",
        says=("quotes are balanced",),
    ),
    Case(
        "nul_byte",
        "nul.csv",
        with_line(2, lambda line: line.replace(",", ",\x00", 1)),
        "binary_content",
        says=("NUL byte",),
    ),
    Case(
        "duplicate_ids",
        "dupids.csv",
        text_cells("ID", {2: "1", 3: "1"}),
        "duplicate_customer_id",
        accepted=True,
        count=2,
        column="ID",
        rows=(2, 3),
        customers=N - 2,
    ),
    Case(
        "text_in_numbers",
        "text.csv",
        text_cells("Income", {4: "abc", 11: "n/a?"}),
        "non_numeric_values",
        http=None,
        says=("Column 'Income' has 2 values that are not numbers", "rows 4, 11", "'abc'"),
    ),
    Case(
        "all_missing_column",
        "allmissing.csv",
        text_cells("Income", dict.fromkeys(range(1, N + 1), "")),
        "all_missing_column",
        accepted=True,
        column="Income",
    ),
    Case(
        "constant_column",
        "constant.csv",
        text_cells("NumDealsPurchases", dict.fromkeys(range(1, N + 1), "5")),
        "constant_column",
        accepted=True,
        column="NumDealsPurchases",
    ),
    Case(
        "one_row",
        "one.csv",
        lambda f: csv(f.head(1)),
        "too_few_customers",
        http=None,
        says=("Only 1 usable customers", "at least 4"),
    ),
    Case(
        "fewer_rows_than_k",
        "eight.csv",
        lambda f: csv(f.head(8)),
        "too_few_customers",
        http=None,
        k=5,
        says=("Only 8 usable customers", "5 segments needs at least 10"),
    ),
    Case(
        "no_usable_ids",
        "noids.csv",
        text_cells("ID", dict.fromkeys(range(1, N + 1), "")),
        "no_usable_rows",
        http=None,
        says=("'ID'",),
    ),
    Case(
        "not_dates",
        "dates.csv",
        text_cells("Dt_Customer", dict.fromkeys(range(1, N + 1), "soon")),
        "invalid_dates",
        http=None,
        says=("Column 'Dt_Customer'", "60 values are not dates"),
    ),
    Case(
        "xlsx_named_csv",
        "really-a-workbook.csv",
        xlsx,
        "extension_mismatch",
        accepted=True,
        where="read",
        says=("named like a .csv file but holds an Excel workbook",),
    ),
    Case(
        "png",
        "picture.csv",
        lambda f: b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        "unsupported_format",
        http=415,
        says=("PNG image",),
    ),
    Case(
        "pdf",
        "report.csv",
        lambda f: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        "unsupported_format",
        http=415,
    ),
    Case(
        "legacy_xls",
        "old.xls",
        lambda f: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
        "unsupported_format",
        http=415,
        says=("legacy Excel .xls",),
    ),
    Case("zip", "archive.csv", zip_without_workbook, "unsupported_format", http=415),
    Case(
        "damaged_gzip",
        "customers.csv.gz",
        lambda f: gzip.compress(csv(f))[:100],
        "malformed_gzip",
    ),
    Case(
        "no_id_column",
        "noid.csv",
        lambda f: csv(f.rename({"ID": "Reference"})),
        "missing_customer_id",
        says=("No customer id column",),
    ),
    Case(
        "no_monetary_column",
        "nomoney.csv",
        lambda f: csv(f.drop("MntWines", "MntMeatProducts")),
        "missing_monetary",
        says=("No monetary column",),
    ),
]
# The all-missing column is read and reported correctly, but numpy warns on the way.
KNOWN_BUGS: dict[str, str] = {}


def params() -> list[Any]:
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[pytest.mark.xfail(reason=KNOWN_BUGS[c.id], strict=True)]
            if c.id in KNOWN_BUGS
            else [],
        )
        for c in CASES
    ]


def test_the_table_is_wide_enough() -> None:
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


def flat(text: str) -> str:
    """Rich wraps long messages; compare them with their whitespace collapsed."""
    return " ".join(text.split())


# --- CLI ------------------------------------------------------------------------------------


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli_app, list(args), env=env, catch_exceptions=False)


def one_json(stdout: str) -> dict[str, Any]:
    """stdout holds exactly one JSON object (and nothing else)."""
    text = stdout.strip()
    assert text.count("\n") == 0, stdout
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("case", params())
def test_cli(case: Case, tmp_path: Path, settings: Settings, cli_env: dict[str, str]) -> None:
    path = tmp_path / case.filename
    path.write_bytes(case.build(three_groups(N, seed=1)))
    k = ["--k", str(case.k)] if case.k else []
    if not case.accepted:
        plain = invoke(cli_env, "run", str(path), *k)
        assert plain.exit_code == 2, plain.output
        stderr = flat(plain.stderr)
        assert f"[{case.code}]" in stderr
        for fragment in case.says:
            assert fragment in stderr
        assert "Traceback" not in plain.output
        assert "internal error" not in plain.output
        as_json = invoke(cli_env, "run", str(path), "--json", *k)
        assert as_json.exit_code == 2
        assert one_json(as_json.stdout)["error"]["code"] == case.code
        return

    result = invoke(cli_env, "run", str(path), "--json", *k)
    assert result.exit_code == 0, result.output
    out = one_json(result.stdout)
    assert (out["status"], out["n_customers"]) == ("succeeded", case.customers)
    shown = invoke(cli_env, "runs", "show", out["run_id"], "--json")
    manifest = one_json(shown.stdout)["manifest"]
    service = RunService(settings)
    try:
        quality = service.quality(out["run_id"])
    finally:
        service.close()
    check_accepted(case, manifest, quality)


def check_accepted(case: Case, manifest: dict[str, Any], quality: dict[str, Any]) -> None:
    """The warning of an accepted file is where the case says, with its count and message."""
    read = {w["code"]: w["message"] for w in manifest["input"]["read_warnings"]}
    issues = {i["code"]: i for i in quality["issues"]}
    assert manifest["mapping"]["columns"]["ID"] == "customer_id"
    assert quality["rows_used"] == case.customers
    if not case.code:
        assert read == {}
        return
    if case.where == "read":
        assert case.code in read
        for fragment in case.says:
            assert fragment in read[case.code]
        # ... and in the quality report, first, as a warning on the whole file.
        first = quality["issues"][0]
        assert (first["kind"], first["code"], first["count"]) == ("warning", case.code, 0)
        assert first["message"] == read[case.code]
        return
    assert case.code in issues, sorted(issues)
    issue = issues[case.code]
    if case.count is not None:
        assert issue["count"] == case.count
    assert (issue["column"], tuple(issue["rows"])) == (case.column, case.rows)
    assert f"'{case.column}'" in issue["message"]
    assert quality["rows_excluded"] == N - case.customers


# --- API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = small_settings(tmp_path_factory.mktemp("bad-inputs") / "home")
    with TestClient(create_app(settings)) as fresh:
        yield fresh


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", params())
def test_api(case: Case, client: TestClient) -> None:
    data = case.build(three_groups(N, seed=1))
    response = client.post(f"{API}/datasets", files={"file": (case.filename, data)})
    assert response.status_code < 500, response.text
    if response.status_code != 201:
        assert (response.status_code, error_of(response)["code"]) == (case.http, case.code)
        for fragment in case.says:
            assert fragment in error_of(response)["message"]
        return
    dataset = response.json()
    assert dataset["mapping"]["columns"].get("ID") == "customer_id" or not case.accepted
    options = {"k": case.k} if case.k else {}
    response = client.post(f"{API}/runs", json={"dataset_id": dataset["id"], **options})
    if response.status_code != 202:
        assert not case.accepted, response.text
        assert (response.status_code, error_of(response)["code"]) == (case.http, case.code)
        for fragment in case.says:
            assert fragment in error_of(response)["message"]
        return
    run_id = response.json()["id"]
    client.app.state.jobs.wait(run_id, timeout=60)  # type: ignore[attr-defined]
    run = client.get(f"{API}/runs/{run_id}").json()
    if not case.accepted:
        assert case.http is None, "refused after the upload instead of up front"
        assert (run["status"], run["error"]["code"]) == ("failed", case.code)
        for fragment in case.says:
            assert fragment in run["error"]["message"]
        return
    assert (run["status"], run["error"]) == ("succeeded", None)
    assert run["n_customers"] == case.customers
    manifest = client.get(f"{API}/runs/{run_id}/manifest").json()
    quality = client.get(f"{API}/runs/{run_id}/quality").json()
    check_accepted(case, manifest, quality)
    if case.where == "read" and case.code:
        assert case.code in {w["code"] for w in dataset["warnings"]}


def test_bom_does_not_stick_to_the_first_column_name(client: TestClient) -> None:
    data = b"\xef\xbb\xbf" + csv(three_groups(N))
    dataset = client.post(f"{API}/datasets", files={"file": ("bom.csv", data)}).json()
    assert dataset["columns"][0] == "ID"
    assert (dataset["encoding"], dataset["warnings"]) == ("utf-8-sig", [])
    assert dataset["mapping"]["columns"]["ID"] == "customer_id"


def test_latin1_text_is_decoded_not_mangled(client: TestClient) -> None:
    dataset = client.post(
        f"{API}/datasets", files={"file": ("latin1.csv", latin1(three_groups(N)))}
    ).json()
    assert dataset["encoding"] == "cp1252"
    assert [row["Name"] for row in dataset["preview"][:3]] == ["José", "Zoë", "Ångström"]
    assert [w["code"] for w in dataset["warnings"]] == ["encoding_fallback"]


def test_semicolon_file_reads_the_same_numbers(client: TestClient) -> None:
    frame = three_groups(N)
    dataset = client.post(
        f"{API}/datasets", files={"file": ("semi.csv", csv(frame, separator=";"))}
    ).json()
    assert (dataset["delimiter"], dataset["columns"]) == (";", frame.columns)
    assert dataset["preview"][0]["MntWines"] == str(frame.get_column("MntWines")[0])


def test_cli_reports_a_missing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    for args in (["run"], ["inspect"]):
        result = invoke(cli_env, *args, str(tmp_path / "nope.csv"))
        assert result.exit_code == 2
        assert "[file_not_found]" in flat(result.stderr)
        assert "nope.csv" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--k", "1"], "invalid_option"),
        (["--k", "31"], "invalid_option"),
        (["--seed", "-1"], "invalid_option"),
        (["--shape", "orders"], "invalid_shape"),
    ],
)
def test_cli_bad_options_are_input_errors(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], code: str
) -> None:
    path = tmp_path / "ok.csv"
    three_groups(N).write_csv(path)
    result = invoke(cli_env, "run", str(path), *args)
    assert result.exit_code == 2, result.output
    assert f"[{code}]" in flat(result.stderr)
    assert "internal error" not in result.output
