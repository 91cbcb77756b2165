"""The ``sistack`` command line, driven through ``typer.testing.CliRunner``.

Every command runs against a fresh ``SISTACK_HOME``. Numbers are checked against the file the
test wrote (customer counts, revenue from the spend columns) and across commands (what ``score``
assigns equals what ``export`` exported).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from sistack.cli import app
from sistack.config import Settings
from sistack.io.store.artifacts import valid_id
from sistack.service.runs import COMPARED, RunService
from tests.conftest import Invoke, three_groups
from tests.stored import hashes_differing, other_k, with_k

SPEND = [
    "MntWines",
    "MntFruits",
    "MntMeatProducts",
    "MntFishProducts",
    "MntSweetProducts",
    "MntGoldProds",
]


def one_json(stdout: str) -> dict[str, Any]:
    """``--json`` output: exactly one JSON object on one line, nothing else."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


def flat(text: str) -> str:
    return " ".join(text.split())


def run_json(sistack: Invoke, *args: str | Path) -> dict[str, Any]:
    return one_json(sistack("run", *args, "--json").stdout)


def export_assignments(sistack: Invoke, run_id: str, path: Path) -> pl.DataFrame:
    sistack("export", run_id, "--what", "assignments", "-o", path)
    return read_frame(path)


def read_frame(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, schema_overrides={"customer_id": pl.String})
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.DataFrame(json.loads(path.read_text()))


# --- run --------------------------------------------------------------------------------------


def test_run_json_prints_one_object_with_segments_that_add_up(
    sistack: Invoke, customer_csv: Path, tmp_path: Path
) -> None:
    out = run_json(sistack, customer_csv)
    assert set(out) == {"run_id", "status", "n_customers", "k", "segments"}
    assert valid_id(out["run_id"])
    assert (out["status"], out["n_customers"]) == ("succeeded", 300)
    assert 2 <= out["k"] <= 4  # SISTACK_K_MAX=4
    segments = out["segments"]
    assert [s["id"] for s in segments] == list(range(1, out["k"] + 1))
    sizes = np.array([s["customers"] for s in segments])
    assert sizes.sum() == 300
    assert_allclose([s["customer_share"] for s in segments], sizes / 300)
    shares = np.array([s["revenue_share"] for s in segments])
    assert_allclose(shares.sum(), 1.0)
    assert list(shares) == sorted(shares, reverse=True)

    # Revenue shares recomputed from the file and the exported assignments.
    frame = pl.read_csv(customer_csv).select(
        pl.col("ID").cast(pl.String).alias("customer_id"),
        pl.sum_horizontal(SPEND).cast(pl.Float64).alias("revenue"),
    )
    assigned = export_assignments(sistack, out["run_id"], tmp_path / "a.parquet")
    by_segment = (
        assigned.join(frame, on="customer_id")
        .group_by("segment")
        .agg(pl.len(), pl.col("revenue").sum())
        .sort("segment")
    )
    assert by_segment.get_column("len").to_list() == sizes.tolist()
    revenue = by_segment.get_column("revenue").to_numpy()
    assert_allclose(shares, revenue / frame.get_column("revenue").sum())


def test_run_without_json_prints_a_table_and_where_it_is_stored(
    sistack: Invoke, customer_csv: Path, settings: Settings
) -> None:
    result = sistack("run", customer_csv, "--k", "3", "--name", "March file")
    text = flat(result.stdout)
    assert "3 segments, 300 customers" in text
    run_id = text.split("Run ", 1)[1].split(":", 1)[0]
    assert (settings.artifacts / run_id / "manifest.json").is_file()
    listed = one_json(sistack("runs", "list", "--json").stdout)
    assert [(r["run_id"], r["name"], r["k"]) for r in listed["items"]] == [
        (run_id, "March file", 3)
    ]


def test_fixed_k_and_seed_are_recorded(sistack: Invoke, customer_csv: Path) -> None:
    out = run_json(sistack, customer_csv, "--k", "2", "--seed", "7")
    assert out["k"] == len(out["segments"]) == 2
    manifest = one_json(sistack("runs", "show", out["run_id"], "--json").stdout)["manifest"]
    assert (manifest["config"]["k"], manifest["config"]["seed"]) == (2, 7)
    assert manifest["model"]["k_chosen_automatically"] is False


# --- inspect and --mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "listed"),
    [
        (["foo", "bar", "baz"], "Columns with no role: 'foo', 'bar', 'baz'."),
        ([f"col{i}" for i in range(1, 10)],
         "Columns with no role: 'col1', 'col2', 'col3', 'col4', 'col5', ... (9 in all)."),
    ],
)  # fmt: skip
def test_nothing_mappable_names_the_columns_in_plain_words(
    sistack: Invoke, tmp_path: Path, columns: list[str], listed: str
) -> None:
    path = tmp_path / "unknown.csv"
    pl.DataFrame({c: [1, 2, 3] for c in columns}).write_csv(path)
    refused = flat(sistack("run", path, code=2).stderr)
    assert "[missing_customer_id] No customer id column was found" in refused
    assert listed in refused
    as_json = one_json(sistack("run", path, "--json", code=2).stdout)["error"]
    assert listed in as_json["message"]
    assert as_json["details"]["ignored_columns"] == columns

    inspected = sistack("inspect", path)  # the mapping is printed; stderr says what is missing
    assert one_json(inspected.stdout)["mapping"]["ignored"] == columns
    warned = flat(inspected.stderr)
    assert warned.startswith("warning [missing_customer_id]")
    assert listed in warned
    assert one_json(sistack("runs", "list", "--json").stdout)["total"] == 0


def test_inspect_of_a_runnable_file_warns_of_nothing(sistack: Invoke, customer_csv: Path) -> None:
    assert sistack("inspect", customer_csv).stderr == ""


@pytest.mark.parametrize("pass_back", ["whole inspect output", "mapping object only"])
def test_inspect_mapping_edited_and_passed_back_is_honoured(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, pass_back: str
) -> None:
    inspected = one_json(sistack("inspect", customer_csv).stdout)
    assert inspected["rows"] == 300
    assert inspected["mapping"]["columns"]["Income"] == "income"
    assert len(inspected["preview"]) == 3

    inspected["mapping"]["columns"]["Income"] = "ignore"
    edited = tmp_path / "mapping.json"
    data = inspected if pass_back == "whole inspect output" else inspected["mapping"]
    edited.write_text(json.dumps(data, indent=2))
    out = run_json(sistack, customer_csv, "--mapping", edited)
    assert out["status"] == "succeeded"

    manifest = one_json(sistack("runs", "show", out["run_id"], "--json").stdout)["manifest"]
    assert "Income" not in manifest["mapping"]["columns"]
    assert "Income" in manifest["mapping"]["ignored"]
    assert manifest["mapping"]["columns"]["MntWines"] == "spend:wines"
    assert "income" not in manifest["model"]["features"]

    default = one_json(
        sistack("runs", "show", run_json(sistack, customer_csv)["run_id"], "--json").stdout
    )
    assert "income" in default["manifest"]["model"]["features"]


@pytest.mark.parametrize(
    ("content", "code", "says"),
    [
        ("{not json", "invalid_mapping", "Cannot read the mapping file"),
        ("[1, 2]", "invalid_mapping", "JSON object"),
        ('{"columns": {"Nope": "income", "ID": "customer_id"}}', "invalid_mapping", "Nope"),
        ('{"columns": {"ID": "customer_id", "MntWines": "colour"}}', "unknown_role", "colour"),
        ('{"columns": {"ID": "customer_id", "Recency": "recency_days"}}', "missing_monetary", ""),
    ],
)
def test_bad_mapping_file_is_exit_2_with_a_reason(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, content: str, code: str, says: str
) -> None:
    mapping = tmp_path / "m.json"
    mapping.write_text(content)
    result = sistack("run", customer_csv, "--mapping", mapping, code=2)
    assert f"[{code}]" in flat(result.stderr)
    assert says in flat(result.stderr)
    assert one_json(sistack("runs", "list", "--json").stdout)["total"] == 0


# --- runs list / show / delete ------------------------------------------------------------------


def test_runs_list_show_and_delete(
    sistack: Invoke, customer_csv: Path, settings: Settings, tmp_path: Path
) -> None:
    first = run_json(sistack, customer_csv, "--k", "2")
    small = tmp_path / "eight.csv"
    three_groups(8).write_csv(small)
    failed = one_json(sistack("run", small, "--k", "5", "--json", code=2).stdout)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "too_few_customers")
    second = run_json(sistack, customer_csv, "--k", "3")

    listed = one_json(sistack("runs", "list", "--json").stdout)
    assert listed["total"] == 3
    assert [r["run_id"] for r in listed["items"]] == [
        second["run_id"],
        failed["run_id"],
        first["run_id"],
    ]
    assert [r["status"] for r in listed["items"]] == ["succeeded", "failed", "succeeded"]
    page = one_json(sistack("runs", "list", "--json", "--limit", "1", "--offset", "1").stdout)
    assert (page["total"], [r["run_id"] for r in page["items"]]) == (3, [failed["run_id"]])
    done = one_json(sistack("runs", "list", "--status", "succeeded", "--json").stdout)
    assert (done["total"], {r["k"] for r in done["items"]}) == (2, {2, 3})
    assert "3 runs" in flat(sistack("runs", "list").stdout)

    shown = one_json(sistack("runs", "show", first["run_id"], "--json").stdout)
    assert shown["segments"] == first["segments"]
    assert shown["manifest"]["run_id"] == first["run_id"]
    assert shown["manifest"]["input"]["rows"] == 300
    shown_failed = one_json(sistack("runs", "show", failed["run_id"], "--json").stdout)
    assert shown_failed["manifest"] is None
    assert shown_failed["error"]["code"] == "too_few_customers"
    text = flat(sistack("runs", "show", failed["run_id"]).stdout)
    assert "failed" in text and "too_few_customers" in text

    result = sistack("runs", "delete", first["run_id"])
    assert f"Deleted run {first['run_id']}" in flat(result.stderr)
    assert not (settings.artifacts / first["run_id"]).exists()
    gone = sistack("runs", "show", first["run_id"], code=2)
    assert "[run_not_found]" in flat(gone.stderr)
    assert "[run_not_found]" in flat(sistack("runs", "delete", first["run_id"], code=2).stderr)
    assert one_json(sistack("runs", "list", "--json").stdout)["total"] == 2
    assert (settings.artifacts / second["run_id"] / "manifest.json").is_file()


@pytest.mark.parametrize("run_id", ["01HQWY77AT0000000000000007", "../../etc", "abc", "A" * 300])
def test_unknown_or_malformed_run_ids_are_exit_2(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, run_id: str
) -> None:
    for args in (
        ["runs", "show", run_id],
        ["runs", "show", run_id, "--json"],
        ["runs", "delete", run_id],
        ["reproduce", run_id],
        ["score", run_id, customer_csv, "-o", tmp_path / "s.csv"],
        ["export", run_id, "--what", "manifest", "-o", tmp_path / "m.json"],
    ):
        result = sistack(*args, code=2)
        assert "[run_not_found]" in flat(result.stderr)
        if "--json" in args:
            assert one_json(result.stdout)["error"]["code"] == "run_not_found"
    assert not (tmp_path / "s.csv").exists()


# --- reproduce, score, export --------------------------------------------------------------------


def test_reproduce_json_is_identical(sistack: Invoke, customer_csv: Path) -> None:
    original = run_json(sistack, customer_csv)
    out = one_json(sistack("reproduce", original["run_id"], "--json").stdout)
    assert (out["run_id"], out["identical"], out["differing"]) == (
        original["run_id"],
        True,
        [],
    )
    assert valid_id(out["new_run_id"]) and out["new_run_id"] != original["run_id"]
    again = one_json(sistack("runs", "show", out["new_run_id"], "--json").stdout)
    assert again["segments"] == original["segments"]
    assert "identical" in flat(sistack("reproduce", original["run_id"]).stdout)


def test_reproduce_json_names_what_differs_from_the_stored_run(
    sistack: Invoke, customer_csv: Path, settings: Settings
) -> None:
    """The stored config says another k: the recomputation differs in everything k decides,
    and the command says so in its JSON (exit 1), and in words."""
    original = run_json(sistack, customer_csv)
    k = other_k(original["k"])
    svc = RunService(settings)
    try:
        with_k(svc, original["run_id"], k)
    finally:
        svc.close()
    result = sistack("reproduce", original["run_id"], "--json", code=3)
    out = one_json(result.stdout)
    expected = [n for n in COMPARED if n not in ("features.parquet", "quality.json")]
    assert (out["run_id"], out["identical"], out["differing"]) == (
        original["run_id"],
        False,
        expected,
    )
    again = one_json(sistack("runs", "show", out["new_run_id"], "--json").stdout)
    assert (again["k"], again["n_customers"]) == (k, 300)
    svc = RunService(settings)
    try:
        assert hashes_differing(svc, original["run_id"], out["new_run_id"]) == expected
    finally:
        svc.close()
    words = flat(sistack("reproduce", original["run_id"], code=3).stdout)
    assert f"different ({', '.join(expected)})" in words


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_score_assigns_the_same_segments_as_the_run(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, suffix: str
) -> None:
    run_id = run_json(sistack, customer_csv)["run_id"]
    scored_path = tmp_path / f"scored{suffix}"
    result = sistack("score", run_id, customer_csv, "-o", scored_path)
    assert "Scored 300 customers" in flat(result.stderr)
    scored = read_frame(scored_path)
    expected = export_assignments(sistack, run_id, tmp_path / "assignments.parquet")
    both = expected.join(scored, on="customer_id", suffix="_scored")
    assert both.height == scored.height == 300
    assert both.filter(pl.col("segment") != pl.col("segment_scored")).height == 0
    assert_allclose(both["distance_scored"], both["distance"], rtol=1e-9)


def test_score_needs_the_model_features(
    sistack: Invoke, customer_csv: Path, tmp_path: Path
) -> None:
    run_id = run_json(sistack, customer_csv)["run_id"]
    thin = tmp_path / "thin.csv"
    pl.read_csv(customer_csv).select("ID", "MntWines").write_csv(thin)
    result = sistack("score", run_id, thin, "-o", tmp_path / "out.csv", code=2)
    assert "[missing_features]" in flat(result.stderr)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("what", "suffix"),
    [
        ("assignments", ".csv"),
        ("assignments", ".parquet"),
        ("assignments", ".json"),
        ("profiles", ".csv"),
        ("profiles", ".parquet"),
        ("profiles", ".json"),
        ("manifest", ".json"),
    ],
)
def test_export_writes_each_format(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, what: str, suffix: str
) -> None:
    out = run_json(sistack, customer_csv)
    path = tmp_path / f"{what}{suffix}"
    result = sistack("export", out["run_id"], "--what", what, "-o", path)
    assert f"Exported {what}" in flat(result.stderr)
    if what == "manifest":
        manifest = json.loads(path.read_text())
        assert (manifest["run_id"], manifest["model"]["k"]) == (out["run_id"], out["k"])
        return
    frame = read_frame(path)
    if what == "assignments":
        assert frame.columns == ["customer_id", "segment", "distance"]
        assert frame.height == 300
        counts = frame.group_by("segment").len().sort("segment").get_column("len")
        assert counts.to_list() == [s["customers"] for s in out["segments"]]
    else:
        assert frame.get_column("segment").to_list() == list(range(out["k"] + 1))
        assert frame.get_column("customers").to_list() == [
            300,
            *(s["customers"] for s in out["segments"]),
        ]
        assert_allclose(frame.get_column("revenue_share")[1:].sum(), 1.0)
        assert_allclose(
            frame.get_column("revenue")[0], frame.get_column("revenue")[1:].sum(), rtol=1e-12
        )
        assert "mean_monetary" in frame.columns


@pytest.mark.parametrize(
    ("what", "name", "code"),
    [
        ("manifest", "manifest.csv", "unsupported_export_format"),
        ("assignments", "a.xlsx", "unsupported_export_format"),
        ("everything", "a.json", "unknown_export"),
    ],
)
def test_export_refuses_unknown_kinds_and_formats(
    sistack: Invoke, customer_csv: Path, tmp_path: Path, what: str, name: str, code: str
) -> None:
    run_id = run_json(sistack, customer_csv)["run_id"]
    result = sistack("export", run_id, "--what", what, "-o", tmp_path / name, code=2)
    assert f"[{code}]" in flat(result.stderr)
    assert not (tmp_path / name).exists()


FORMULAS = ['=HYPERLINK("x")', "+SUM(A1:A2)", "@cmd", "=1+1"]


def test_csv_exports_neutralise_formula_like_ids(sistack: Invoke, tmp_path: Path) -> None:
    frame = three_groups(30)
    ids = [*FORMULAS, *(f"C{i}" for i in range(len(FORMULAS), 30))]
    frame = frame.with_columns(pl.Series("ID", ids))
    source = tmp_path / "formulas.csv"
    frame.write_csv(source)
    run_id = run_json(sistack, source, "--k", "2")["run_id"]

    for command in (
        ["export", run_id, "--what", "assignments", "-o", tmp_path / "a.csv"],
        ["score", run_id, source, "-o", tmp_path / "s.csv"],
    ):
        sistack(*command)
        written = pl.read_csv(command[-1], schema_overrides={"customer_id": pl.String})
        exported = set(written.get_column("customer_id"))
        assert {f"'{f}" for f in FORMULAS} <= exported
        assert not any(str(v).startswith(("=", "+", "@")) for v in exported)
        assert "C10" in exported  # ordinary ids are untouched
    raw = export_assignments(sistack, run_id, tmp_path / "a.parquet")
    assert set(FORMULAS) <= set(raw.get_column("customer_id"))  # only CSV is neutralised


# --- generate and demo ----------------------------------------------------------------------------


def test_generate_writes_data_and_truth(sistack: Invoke, tmp_path: Path) -> None:
    data, truth = tmp_path / "f.csv", tmp_path / "t.csv"
    result = sistack("generate", "--customers", "300", "-o", data, "--truth", truth)
    assert "Wrote 300 rows" in flat(result.stderr)
    frame, planted = pl.read_csv(data), pl.read_csv(truth)
    assert frame.height == planted.height == 300
    assert frame.get_column("ID").n_unique() == 300
    assert {"ID", "Income", "MntWines", "Dt_Customer", "NumWebPurchases"} <= set(frame.columns)
    assert planted.columns == ["customer_id", "true_segment"]
    assert planted.get_column("customer_id").to_list() == frame.get_column("ID").to_list()
    assert planted.get_column("true_segment").n_unique() == 5
    again = tmp_path / "g.csv"
    sistack("generate", "--customers", "300", "-o", again)
    assert again.read_bytes() == data.read_bytes()  # same seed, same file


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--layout", "orders"], "invalid_option"),
        (["-o", "PLACEHOLDER.doc"], "invalid_option"),
    ],
)
def test_generate_refuses_bad_options(
    sistack: Invoke, tmp_path: Path, args: list[str], code: str
) -> None:
    args = [a.replace("PLACEHOLDER", str(tmp_path / "x")) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "x.csv")]
    result = sistack("generate", "--customers", "100", *args, code=2)
    assert f"[{code}]" in flat(result.stderr)


def test_demo_json(sistack: Invoke) -> None:
    out = one_json(sistack("demo", "--customers", "200", "--json").stdout)
    assert (out["status"], out["n_customers"]) == ("succeeded", 200)
    assert sum(s["customers"] for s in out["segments"]) == 200
    assert_allclose(sum(s["revenue_share"] for s in out["segments"]), 1.0)


def test_output_into_a_missing_folder_is_refused_before_any_work(
    sistack: Invoke, customer_csv: Path, tmp_path: Path
) -> None:
    run_id = run_json(sistack, customer_csv)["run_id"]
    missing = tmp_path / "no" / "such" / "folder"
    for args in (
        ["export", run_id, "--what", "assignments", "-o", missing / "a.csv"],
        ["score", run_id, customer_csv, "-o", missing / "s.parquet"],
        ["generate", "--customers", "100", "-o", missing / "f.csv"],
        ["generate", "--customers", "100", "-o", tmp_path / "f.csv", "--truth", missing / "t.csv"],
    ):
        result = sistack(*args, code=2)
        assert "[output_folder_missing]" in flat(result.stderr)
        assert "internal error" not in result.output
    assert not (tmp_path / "f.csv").exists()
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("other_workspace", [False, True])
def test_runs_list_shows_whole_ids_at_80_columns(
    sistack: Invoke, cli_env: dict[str, str], tmp_path: Path, other_workspace: bool
) -> None:
    """Ids are copied into the next command: a narrow terminal must not cut or wrap them."""
    small = tmp_path / "groups.csv"
    three_groups(30).write_csv(small)
    name = "Quarterly segmentation of the loyalty programme customers"
    first = run_json(sistack, small, "--k", "2", "--name", name)
    where = ["--workspace", "marketing-team"] if other_workspace else []
    second = run_json(sistack, small, "--k", "3", *where)
    result = CliRunner().invoke(app, ["runs", "list"], env={**cli_env, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run_id in (first["run_id"], second["run_id"]):
        (row,) = [line for line in lines if run_id in line]
        assert row.split()[0] == run_id
        assert " succeeded " in row
    # A workspace column only when a run outside 'default' is listed.
    assert ("default" in result.stdout) is ("marketin" in result.stdout) is other_workspace
    # The long name wraps (or folds) inside its column, nothing of it cut.
    header = next(i for i, line in enumerate(lines) if line.startswith("id "))
    start = lines[header].index("name")
    after = lines[header][start + len("name") :]
    end = len(lines[header]) - len(after.lstrip())  # where the next column's header starts
    cells = "".join(line[start:end] for line in lines[header + 2 :])
    assert name.replace(" ", "") in cells.replace(" ", "")
    assert "…" not in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--status", "done"], "[invalid_option] Unknown status 'done'"),
        (["--limit", "0"], "Invalid value for '--limit'"),
        (["--offset", "-1"], "Invalid value for '--offset'"),
    ],
)
def test_runs_list_refuses_bad_options(sistack: Invoke, args: list[str], says: str) -> None:
    result = sistack("runs", "list", *args, code=2)
    assert says in flat(result.stderr)


def test_insights_and_compare(sistack: Invoke, customer_csv: Path) -> None:
    original = run_json(sistack, customer_csv)
    doc = one_json(sistack("insights", original["run_id"], "--json").stdout)
    shares = [s["contribution"]["customer_share"] for s in doc["segments"]]
    assert shares == pytest.approx([s["customer_share"] for s in original["segments"]])
    text = flat(sistack("insights", original["run_id"]).stdout)
    assert doc["segments"][0]["persona"]["name"].split(":")[0] in text
    assert "1. segment" in text

    again = one_json(sistack("reproduce", original["run_id"], "--json").stdout)
    compared = one_json(sistack("compare", again["new_run_id"], "--json").stdout)
    assert compared["run_a"] == original["run_id"] and compared["ari"] == pytest.approx(1.0)
    explicit = one_json(
        sistack("compare", original["run_id"], again["new_run_id"], "--json").stdout
    )
    assert explicit["migration"] == compared["migration"]
    assert "ARI 1.000" in flat(sistack("compare", again["new_run_id"]).stdout)
    sistack("compare", original["run_id"], code=2)  # no parent


def test_simulate_and_optimize(sistack: Invoke, customer_csv: Path, tmp_path: Path) -> None:
    original = run_json(sistack, customer_csv)
    k = original["k"]
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps({"levers": [{"lever": "price", "params": {"change": {"1": 0.1}}}]})
    )
    result = one_json(
        sistack("simulate", original["run_id"], "--scenario", scenario, "--json").stdout
    )
    seg1 = next(s for s in result["segments"] if s["segment"] == 1)
    # Price +10% at the default elasticity -1.2: revenue x (1.1 x 0.88 - 1) = -3.2%.
    assert seg1["delta"]["revenue"] == pytest.approx(seg1["baseline"]["revenue"] * (1.1 * 0.88 - 1))
    assert (
        "Baseline vs scenario"
        in sistack("simulate", original["run_id"], "--scenario", scenario).stdout
    )
    scenario.write_text(
        json.dumps({"levers": [{"lever": "price", "params": {"change": {str(k + 3): 0.1}}}]})
    )
    sistack("simulate", original["run_id"], "--scenario", scenario, code=2)
    best = one_json(sistack("optimize", original["run_id"], "--budget", "500", "--json").stdout)
    assert sum(s["budget"] for s in best["segments"]) == pytest.approx(500, rel=1e-6)
    assert one_json(sistack("levers", "--json").stdout)["levers"]


def test_run_with_a_parent_compares_with_it(sistack: Invoke, customer_csv: Path) -> None:
    march = run_json(sistack, customer_csv, "--name", "March")
    april = run_json(sistack, customer_csv, "--name", "April", "--parent", march["run_id"])
    shown = one_json(sistack("runs", "show", april["run_id"], "--json").stdout)
    assert shown["manifest"]["parent_id"] == march["run_id"]
    # Same file, same settings: the comparison with the parent is an identity.
    compared = one_json(sistack("compare", april["run_id"], "--json").stdout)
    assert (compared["run_a"], compared["run_b"]) == (march["run_id"], april["run_id"])
    assert compared["ari"] == pytest.approx(1.0)
    # An unknown parent is refused before anything is read or stored.
    missing = sistack("run", customer_csv, "--parent", "01HQWY77AT0000000000000007", code=2)
    assert "[run_not_found]" in flat(missing.stderr)
    assert one_json(sistack("runs", "list", "--json").stdout)["total"] == 2


def test_run_reports_data_quality_and_file_warnings(
    sistack: Invoke, customer_csv: Path, tmp_path: Path
) -> None:
    latin = tmp_path / "latin.csv"
    text = customer_csv.read_text(encoding="utf-8").splitlines()
    text[1] = text[1].replace(text[1].split(",")[0], text[1].split(",")[0] + "é", 1)
    latin.write_bytes("\n".join(text).encode("latin-1") + b"\n")
    result = sistack("run", latin, "--k", "3")
    out, err = flat(result.stdout), flat(result.stderr)
    assert "Data quality: 300 of 300 rows used, 0 excluded" in out
    assert "warning [encoding_fallback]" in err and "not valid UTF-8" in err
    run_id = out.split("Run ", 1)[1].split(":", 1)[0]
    shown = flat(sistack("runs", "show", run_id).stdout)
    assert "Data quality: 300 of 300 rows used, 0 excluded" in shown
    assert "warning [encoding_fallback] whole file: The file is not valid UTF-8" in shown
    # A clean file: the summary line, and no warning.
    clean = sistack("run", customer_csv, "--k", "3")
    assert "Data quality: 300 of 300 rows used" in flat(clean.stdout)
    assert "warning" not in clean.stderr
