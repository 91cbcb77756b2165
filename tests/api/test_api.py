"""The REST API end to end: upload, run, results, reproduce, score, delete, errors.

One module-wide app serves a 300-customer synthetic file; its run is shared by the read-only
tests. Expected numbers (revenue, counts, imputed rows) are recomputed here from the CSV the test
wrote, never taken from the API itself.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from sistack import __version__
from sistack.api.app import create_app
from sistack.config import Settings
from sistack.io.store.artifacts import valid_id
from tests.conftest import _write_customers, small_settings, three_groups

API = "/api/v1"
SPEND = ["MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts", "MntSweetProducts"]
SPEND.append("MntGoldProds")
KNOWN_ROLES = {
    "ID": "customer_id",
    "Income": "income",
    "Dt_Customer": "signup_date",
    "Recency": "recency_days",
    "MntWines": "spend:wines",
    "MntMeatProducts": "spend:meat",
    "MntGoldProds": "spend:gold",
    "NumWebPurchases": "purchases:web",
    "NumStorePurchases": "purchases:store",
    "NumDealsPurchases": "deal_purchases",
    "AcceptedCmp1": "campaign:cmp1",
    "Year_Birth": "birth_year",
    "Kidhome": "kids",
}
RUN_TIMEOUT = 60.0


def upload(client: TestClient, path: Path, name: str | None = None) -> Any:
    with path.open("rb") as fh:
        files = {"file": (name or path.name, fh, "application/octet-stream")}
        return client.post(f"{API}/datasets", files=files)


def finish(client: TestClient, run_id: str) -> dict[str, Any]:
    """Wait for a submitted run and return its final state as the API reports it."""
    client.app.state.jobs.wait(run_id, timeout=RUN_TIMEOUT)  # type: ignore[attr-defined]
    response = client.get(f"{API}/runs/{run_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["status"] in ("succeeded", "failed"), body
    return body


def start_run(client: TestClient, dataset_id: str, **options: Any) -> dict[str, Any]:
    response = client.post(f"{API}/runs", json={"dataset_id": dataset_id, **options})
    assert response.status_code == 202, response.text
    return finish(client, response.json()["id"])


def error_of(response: Any) -> dict[str, Any]:
    """The error body; every error answer has exactly code, message and details."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Served:
    client: TestClient
    settings: Settings
    csv: Path
    frame: pl.DataFrame  # the CSV as written, typed by polars
    dataset: dict[str, Any]
    run: dict[str, Any]  # GET /runs/{id} of the succeeded run


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("api")
    settings = small_settings(root / "home")
    csv = _write_customers(root / "customers.csv", customers=300, seed=7)
    with TestClient(create_app(settings)) as client:
        uploaded = upload(client, csv)
        assert uploaded.status_code == 201, uploaded.text
        dataset = uploaded.json()
        run = start_run(client, dataset["id"])
        assert run["status"] == "succeeded", run
        yield Served(client, settings, csv, pl.read_csv(csv), dataset, run)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A fresh app of its own, for tests that change state or need other settings."""
    with TestClient(create_app(settings)) as fresh:
        yield fresh


def revenue_by_customer(frame: pl.DataFrame) -> pl.DataFrame:
    """customer_id (text) and the total of the spend columns, computed from the file."""
    return frame.select(
        pl.col("ID").cast(pl.String).alias("customer_id"),
        pl.sum_horizontal(SPEND).cast(pl.Float64).alias("revenue"),
    )


# --- upload -----------------------------------------------------------------------------------


def test_upload_reports_shape_mapping_preview_and_missing_values(served: Served) -> None:
    ds, frame = served.dataset, served.frame
    assert valid_id(ds["id"])
    assert (ds["filename"], ds["format"], ds["shape"]) == ("customers.csv", "csv", "customers")
    assert (ds["rows"], ds["columns"]) == (300, frame.columns)
    assert (ds["delimiter"], ds["encoding"]) == (",", "utf-8")
    raw = served.csv.read_bytes()
    assert (ds["sha256"], ds["size_bytes"]) == (hashlib.sha256(raw).hexdigest(), len(raw))
    columns = ds["mapping"]["columns"]
    assert {c: columns[c] for c in KNOWN_ROLES} == KNOWN_ROLES
    assert {"Education", "Marital_Status"} <= set(ds["mapping"]["ignored"])
    assert ds["missing_values"] == {"Income": frame.get_column("Income").null_count()}
    assert ds["warnings"] == []
    assert len(ds["preview"]) == 10
    first = frame.row(0, named=True)
    assert ds["preview"][0]["ID"] == str(first["ID"])
    assert ds["preview"][0]["Dt_Customer"] == first["Dt_Customer"]
    assert float(ds["preview"][0]["MntWines"]) == first["MntWines"]


def test_upload_needs_multipart_with_a_file_field(served: Served) -> None:
    response = served.client.post(f"{API}/datasets", content=b"ID,x\n1,2\n")
    assert response.status_code == 422
    assert error_of(response)["code"] == "upload_expected"
    response = served.client.post(f"{API}/datasets", files={"other": ("a.csv", b"ID\n1\n")})
    assert response.status_code == 422
    assert error_of(response)["code"] == "upload_expected"


# --- the run and its results ------------------------------------------------------------------


def test_run_record_reports_success_and_links(served: Served) -> None:
    run, n_ids = served.run, served.frame.get_column("ID").n_unique()
    assert (run["status"], run["stage"], run["progress"], run["error"]) == (
        "succeeded",
        "done",
        100,
        None,
    )
    assert run["n_customers"] == n_ids == 300
    assert 2 <= run["k"] <= 4  # settings: k_min 2, k_max 4
    assert run["dataset_id"] == served.dataset["id"]
    base = f"{API}/runs/{run['id']}"
    assert run["links"] == {
        "self": base,
        "segments": f"{base}/segments",
        "assignments": f"{base}/assignments",
        "quality": f"{base}/quality",
        "manifest": f"{base}/manifest",
    }
    assert run["config"]["run"]["stability_resamples"] == 3
    summary = run["summary"]["segments"]
    assert sum(s["customers"] for s in summary) == 300
    assert_allclose(sum(s["revenue_share"] for s in summary), 1.0)


def test_runs_list_contains_the_run(served: Served) -> None:
    response = served.client.get(f"{API}/runs", params={"status": "succeeded", "limit": 500})
    assert response.status_code == 200
    page = response.json()
    assert served.run["id"] in {r["id"] for r in page["items"]}
    assert page["total"] == len(page["items"])
    assert all(r["status"] == "succeeded" for r in page["items"])


def test_segments_add_up_and_match_the_file(served: Served) -> None:
    client, run_id = served.client, served.run["id"]
    response = client.get(f"{API}/runs/{run_id}/segments")
    assert response.status_code == 200
    doc = response.json()
    segments, population = doc["segments"], doc["population"]
    assert doc["k"] == len(segments) == served.run["k"]
    assert [s["segment"] for s in segments] == list(range(1, doc["k"] + 1))

    # Sizes: sum to the unique ids of the file; shares are sizes over the total.
    n_ids = served.frame.get_column("ID").n_unique()
    sizes = np.array([s["customers"] for s in segments])
    assert sizes.sum() == population["customers"] == n_ids
    assert_allclose([s["customer_share"] for s in segments], sizes / n_ids)

    # Revenue: the population's is the sum of the six spend columns of the CSV.
    revenue = revenue_by_customer(served.frame)
    assert_allclose(population["revenue"], revenue.get_column("revenue").sum())
    shares = np.array([s["revenue_share"] for s in segments])
    assert_allclose(shares.sum(), 1.0)
    assert shares[0] == shares.max()  # segment 1 brings the most revenue
    assert list(shares) == sorted(shares, reverse=True)

    # Per segment: recomputed from the assignments and the file.
    frame, _ = assignments(client, run_id)
    per_segment = (
        frame.join(revenue, on="customer_id")
        .group_by("segment")
        .agg(pl.len().alias("customers"), pl.col("revenue").sum())
        .sort("segment")
    )
    assert per_segment.get_column("customers").to_list() == sizes.tolist()
    assert_allclose([s["revenue"] for s in segments], per_segment.get_column("revenue"))
    assert_allclose(shares, per_segment.get_column("revenue") / population["revenue"])
    in_model = {f["name"] for f in doc["features"] if f["in_model"]}
    assert "monetary" in in_model


def assignments(client: TestClient, run_id: str, limit: int = 10_000) -> tuple[pl.DataFrame, int]:
    response = client.get(f"{API}/runs/{run_id}/assignments", params={"limit": limit})
    assert response.status_code == 200
    page = response.json()
    return pl.DataFrame(page["items"]), page["total"]


def test_assignment_pages_are_disjoint_and_cover_every_customer(served: Served) -> None:
    client, run_id = served.client, served.run["id"]
    ids: list[str] = []
    for offset in range(0, 300, 70):
        response = client.get(
            f"{API}/runs/{run_id}/assignments", params={"limit": 70, "offset": offset}
        )
        page = response.json()
        assert (page["total"], page["limit"], page["offset"]) == (300, 70, offset)
        assert len(page["items"]) == min(70, 300 - offset)
        ids.extend(item["customer_id"] for item in page["items"])
    assert len(ids) == len(set(ids)) == 300
    assert set(ids) == set(served.frame.get_column("ID").cast(pl.String))
    beyond = client.get(f"{API}/runs/{run_id}/assignments", params={"offset": 300}).json()
    assert (beyond["items"], beyond["total"]) == ([], 300)
    for bad in ({"limit": 0}, {"limit": 10_001}, {"offset": -1}, {"format": "xlsx"}):
        response = client.get(f"{API}/runs/{run_id}/assignments", params=bad)
        assert response.status_code == 422
        assert error_of(response)["code"] == "invalid_request"


def test_assignment_downloads_hold_the_same_rows(served: Served) -> None:
    client, run_id = served.client, served.run["id"]
    expected, _ = assignments(client, run_id)
    response = client.get(f"{API}/runs/{run_id}/assignments", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"{run_id}-assignments.csv" in response.headers["content-disposition"]
    as_csv = pl.read_csv(io.BytesIO(response.content), schema_overrides={"customer_id": pl.String})
    assert as_csv.height == 300
    assert (
        as_csv.get_column("customer_id").to_list() == expected.get_column("customer_id").to_list()
    )
    assert as_csv.get_column("segment").to_list() == expected.get_column("segment").to_list()
    assert_allclose(as_csv.get_column("distance"), expected.get_column("distance"))

    response = client.get(f"{API}/runs/{run_id}/assignments", params={"format": "parquet"})
    assert response.status_code == 200
    assert response.content.startswith(b"PAR1")
    as_parquet = pl.read_parquet(io.BytesIO(response.content))
    assert (
        as_parquet.select("customer_id", "segment").to_dicts()
        == expected.select("customer_id", "segment").to_dicts()
    )


def test_quality_report_counts_what_was_changed(served: Served) -> None:
    response = served.client.get(f"{API}/runs/{served.run['id']}/quality")
    assert response.status_code == 200
    quality = response.json()
    assert (quality["rows_read"], quality["rows_used"], quality["rows_excluded"]) == (300, 300, 0)
    issues = {(i["code"], i["column"]): i for i in quality["issues"]}
    income = served.frame.get_column("Income")
    empty_rows = (income.is_null().arg_true() + 1).to_list()  # 1-based data rows
    assert empty_rows, "the generator leaves about 1% of incomes empty"
    imputed = issues["imputed_median", "Income"]
    assert (imputed["kind"], imputed["count"], imputed["rows"]) == (
        "changed",
        len(empty_rows),
        empty_rows[:10],
    )
    assert f"({income.median():g})" in imputed["message"]
    for constant in ("Z_CostContact", "Z_Revenue"):
        assert issues["constant_column", constant]["kind"] == "warning"


def test_manifest_records_input_mapping_and_artifacts(served: Served) -> None:
    manifest = served.client.get(f"{API}/runs/{served.run['id']}/manifest").json()
    assert manifest["run_id"] == served.run["id"]
    assert manifest["input"]["sha256"] == served.dataset["sha256"]
    assert manifest["input"]["rows"] == 300
    assert manifest["mapping"] == served.dataset["mapping"]
    assert manifest["model"]["k"] == served.run["k"]
    assert {"assignments.parquet", "model.json", "profiles.json"} <= set(manifest["artifacts"])
    folder = served.settings.artifacts / served.run["id"]
    on_disk = hashlib.sha256((folder / "assignments.parquet").read_bytes()).hexdigest()
    assert manifest["artifacts"]["assignments.parquet"]["sha256"] == on_disk


def test_reproduce_gives_identical_artifacts(served: Served) -> None:
    client, run_id = served.client, served.run["id"]
    response = client.post(f"{API}/runs/{run_id}/reproduce")
    assert response.status_code == 200
    body = response.json()
    assert (body["run_id"], body["identical"], body["differing"]) == (run_id, True, [])
    again = client.get(f"{API}/runs/{body['new_run_id']}").json()
    assert (again["status"], again["parent_id"]) == ("succeeded", run_id)
    assert again["summary"]["segments"] == served.run["summary"]["segments"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_scoring_the_same_file_gives_the_same_segments(served: Served, fmt: str) -> None:
    client, run_id = served.client, served.run["id"]
    with served.csv.open("rb") as fh:
        response = client.post(
            f"{API}/runs/{run_id}/score",
            params={"format": fmt},
            files={"file": ("again.csv", fh, "text/csv")},
        )
    assert response.status_code == 200, response.text
    if fmt == "csv":
        scored = pl.read_csv(
            io.BytesIO(response.content), schema_overrides={"customer_id": pl.String}
        )
    else:
        scored = pl.DataFrame(response.json())
    expected, _ = assignments(client, run_id)
    both = expected.join(scored, on="customer_id", suffix="_scored")
    assert both.height == scored.height == 300
    assert (both["segment"] == both["segment_scored"]).all()
    assert_allclose(both["distance_scored"], both["distance"], rtol=1e-9)


# --- state changes, on an app of their own ---------------------------------------------------


def test_delete_removes_the_run_and_its_files(
    client: TestClient, settings: Settings, customer_csv: Path
) -> None:
    dataset = upload(client, customer_csv).json()
    keep = start_run(client, dataset["id"])
    run = start_run(client, dataset["id"], k=3, name="to delete")
    assert (run["status"], run["k"], run["name"]) == ("succeeded", 3, "to delete")
    folder = settings.artifacts / run["id"]
    assert (folder / "manifest.json").is_file()

    response = client.delete(f"{API}/runs/{run['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert not folder.exists()
    assert not any((settings.artifacts / ".staging").glob(f"{run['id']}*"))
    for path in ("", "/segments", "/assignments", "/manifest"):
        gone = client.get(f"{API}/runs/{run['id']}{path}")
        assert gone.status_code == 404
        assert error_of(gone)["code"] == "run_not_found"
    assert error_of(client.delete(f"{API}/runs/{run['id']}"))["code"] == "run_not_found"
    listed = client.get(f"{API}/runs").json()
    assert [r["id"] for r in listed["items"]] == [keep["id"]]
    assert listed["total"] == 1
    assert (settings.artifacts / keep["id"] / "manifest.json").is_file()


def test_demo_run_succeeds(client: TestClient) -> None:
    response = client.post(f"{API}/demo", json={"customers": 200, "seed": 5})
    assert response.status_code == 202
    queued = response.json()
    assert queued["name"] == "Demo (200 customers)"
    run = finish(client, queued["id"])
    assert (run["status"], run["n_customers"]) == ("succeeded", 200)
    segments = client.get(f"{API}/runs/{run['id']}/segments").json()["segments"]
    assert sum(s["customers"] for s in segments) == 200
    assert_allclose(sum(s["revenue_share"] for s in segments), 1.0)


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "version": __version__},
    )


# --- errors -----------------------------------------------------------------------------------

UNKNOWN = "01HQWY77AT0000000000000007"  # well formed, never created
RUN_ENDPOINTS = [
    ("get", ""),
    ("get", "/segments"),
    ("get", "/assignments"),
    ("get", "/assignments?format=csv"),
    ("get", "/assignments?format=parquet"),
    ("get", "/quality"),
    ("get", "/manifest"),
    ("post", "/reproduce"),
    ("delete", ""),
]


@pytest.mark.parametrize(("method", "suffix"), RUN_ENDPOINTS)
def test_unknown_run_is_404_with_the_error_body(served: Served, method: str, suffix: str) -> None:
    response = getattr(served.client, method)(f"{API}/runs/{UNKNOWN}{suffix}")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "run_not_found"
    assert UNKNOWN in error["message"]


def test_scoring_against_an_unknown_run_is_404(served: Served) -> None:
    response = served.client.post(
        f"{API}/runs/{UNKNOWN}/score", files={"file": ("a.csv", b"ID,MntWines\n1,2\n")}
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "run_not_found"


MALFORMED_IDS = [
    "..%2F..%2Fetc",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fsistack.db",
    "..",
    "abc",
    "A" * 300,
    "%00",
    "..%5C..%5Cwindows",
    UNKNOWN.lower(),
    "%C3%A9" * 13,
]


@pytest.mark.parametrize("run_id", MALFORMED_IDS)
@pytest.mark.parametrize(("method", "suffix"), RUN_ENDPOINTS)
def test_malformed_run_ids_are_4xx_never_500(
    served: Served, run_id: str, method: str, suffix: str
) -> None:
    response = getattr(served.client, method)(f"{API}/runs/{run_id}{suffix}")
    assert response.status_code in (404, 422), response.text
    assert error_of(response)["code"] in ("run_not_found", "not_found", "invalid_request")


def test_unknown_dataset_is_404(served: Served) -> None:
    for dataset_id in (UNKNOWN, "../x", "Z" * 64):
        response = served.client.post(f"{API}/runs", json={"dataset_id": dataset_id})
        assert response.status_code == 404
        assert error_of(response)["code"] == "dataset_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 1}, "k"),
        ({"k": 31}, "k"),
        ({"k_min": 5, "k_max": 3}, "k_min"),
        ({"seed": -1}, "seed"),
        ({"dataset_id": ""}, "dataset_id"),
        ({"colour": "red"}, "colour"),
        ({"reference_date": "31-12-2020"}, "reference_date"),
    ],
)
def test_invalid_run_requests_are_422_naming_the_field(
    served: Served, body: dict[str, Any], field: str
) -> None:
    response = served.client.post(f"{API}/runs", json={"dataset_id": served.dataset["id"], **body})
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert field in error["message"]


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home", max_upload_bytes=10_000)
    body = three_groups(600).write_csv().encode()
    assert len(body) > 10_000
    with TestClient(create_app(settings)) as client:
        for response in (
            client.post(f"{API}/datasets", files={"file": ("big.csv", body)}),
            # No content-length header: the limit is counted while the body streams in.
            client.post(
                f"{API}/datasets",
                content=(body[i : i + 4096] for i in range(0, len(body), 4096)),
                headers={"content-type": "multipart/form-data; boundary=xyz"},
            ),
        ):
            assert response.status_code == 413
            error = error_of(response)
            assert error["code"] == "file_too_large"
            assert error["details"] == {"limit_bytes": 10_000}
            assert "10,000 bytes" in error["message"]
        small = client.post(f"{API}/datasets", files={"file": ("ok.csv", body[:5_000])})
        assert small.status_code == 201, small.text
        assert client.get(f"{API}/runs").json()["total"] == 0
    incoming = settings.datasets_dir / ".incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []


@pytest.mark.parametrize(
    ("columns", "code", "named"),
    [
        (
            {"ID": "customer_id", "Nope": "income", "MntWines": "spend:wines"},
            "invalid_mapping",
            "Nope",
        ),
        ({"ID": "customer_id", "MntWines": "favourite_colour"}, "unknown_role", "favourite_colour"),
        (
            {"ID": "customer_id", "MntWines": "income", "Income": "income"},
            "invalid_mapping",
            "Income",
        ),
        ({"ID": "ignore", "MntWines": "spend:wines"}, "missing_customer_id", "customer id"),
        ({"ID": "customer_id", "Recency": "recency_days"}, "missing_monetary", "monetary"),
        ({"ID": "customer_id", "MntWines": 3}, "invalid_mapping", "MntWines"),
    ],
)
def test_bad_mapping_is_422_naming_the_column(
    served: Served, columns: dict[str, Any], code: str, named: str
) -> None:
    mapping = {"shape": "customers", "columns": columns}
    response = served.client.post(
        f"{API}/runs", json={"dataset_id": served.dataset["id"], "mapping": mapping}
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == code
    assert named in error["message"]


def test_results_of_a_failed_run_are_409(client: TestClient, tmp_path: Path) -> None:
    """k above half the customers: accepted (202), then the run fails with too_few_customers."""
    path = tmp_path / "twenty.csv"
    three_groups(20).write_csv(path)
    dataset = upload(client, path).json()
    assert dataset["rows"] == 20
    response = client.post(f"{API}/runs", json={"dataset_id": dataset["id"], "k": 11})
    assert response.status_code == 202
    run = finish(client, response.json()["id"])
    assert run["status"] == "failed"
    assert run["error"]["code"] == "too_few_customers"
    assert "Only 20 usable customers" in run["error"]["message"]
    assert "at least 22" in run["error"]["message"]
    assert (run["summary"], run["links"]) == (None, {"self": f"{API}/runs/{run['id']}"})
    for suffix in ("/segments", "/assignments", "/quality", "/manifest", "/reproduce"):
        method = client.post if suffix == "/reproduce" else client.get
        response = method(f"{API}/runs/{run['id']}{suffix}")
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "run_not_ready"
        assert error["details"]["status"] == "failed"
    assert not (client.app.state.service.settings.artifacts / run["id"]).exists()  # type: ignore[attr-defined]
    # k = 10 is exactly half of 20 customers: allowed.
    ok = start_run(client, dataset["id"], k=10)
    assert (ok["status"], ok["k"]) == ("succeeded", 10)


def test_upload_file_name_is_display_only(client: TestClient, settings: Settings) -> None:
    data = three_groups(30).write_csv().encode()
    response = client.post(
        f"{API}/datasets", files={"file": ("../../outside\x07/..\\evil.csv", data)}
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["filename"] == "evil.csv"
    stored = list(settings.datasets_dir.glob("*/*"))
    assert [p.relative_to(settings.datasets_dir).parts for p in stored] == [
        (dataset["id"], "upload.bin")
    ]
    assert not (settings.home.parent / "outside").exists()


def test_queued_runs_cannot_be_deleted_and_run_at_the_next_start(
    settings: Settings, customer_csv: Path
) -> None:
    with TestClient(create_app(settings)) as client:
        dataset = upload(client, customer_csv).json()
        # Queued but never submitted: as if the process stopped before a worker took it.
        service = client.app.state.service  # type: ignore[attr-defined]
        run = service.create_run(dataset["id"], name="stranded")
        response = client.delete(f"{API}/runs/{run.id}")
        assert response.status_code == 409
        assert error_of(response)["code"] == "run_busy"
        response = client.get(f"{API}/runs/{run.id}/segments")
        assert response.status_code == 409
        assert error_of(response)["details"] == {"status": "queued", "progress": 0}

    # A queued run never started: the next start executes it (only running ones are lost).
    with TestClient(create_app(settings)) as restarted:
        restarted.app.state.jobs.wait(run.id, timeout=RUN_TIMEOUT)  # type: ignore[attr-defined]
        after = restarted.get(f"{API}/runs/{run.id}").json()
        assert (after["status"], after["name"], after["error"]) == ("succeeded", "stranded", None)
        assert restarted.delete(f"{API}/runs/{run.id}").status_code == 204


def test_csv_downloads_neutralise_formula_like_ids(client: TestClient, tmp_path: Path) -> None:
    formulas = ['=HYPERLINK("x")', "+1+1", "@SUM(A1)"]
    frame = three_groups(30).with_columns(
        pl.Series("ID", [*formulas, *(f"C{i}" for i in range(3, 30))])
    )
    data = frame.write_csv().encode()
    dataset = client.post(f"{API}/datasets", files={"file": ("f.csv", data)}).json()
    run = start_run(client, dataset["id"], k=2)
    assert run["status"] == "succeeded"
    downloads = [
        client.get(f"{API}/runs/{run['id']}/assignments", params={"format": "csv"}),
        client.post(f"{API}/runs/{run['id']}/score", files={"file": ("f.csv", data)}),
    ]
    for response in downloads:
        assert response.status_code == 200
        ids = pl.read_csv(
            io.BytesIO(response.content), schema_overrides={"customer_id": pl.String}
        ).get_column("customer_id")
        assert {f"'{f}" for f in formulas} <= set(ids)
        assert "C3" in set(ids)
    page = client.get(f"{API}/runs/{run['id']}/assignments", params={"limit": 3}).json()
    assert [item["customer_id"] for item in page["items"]] == formulas  # JSON keeps the value


@pytest.mark.postgres
def test_the_same_flow_on_postgresql(postgres_url: str, tmp_path: Path, customer_csv: Path) -> None:
    settings = small_settings(tmp_path / "home", database_url=postgres_url)
    with TestClient(create_app(settings)) as client:
        dataset = upload(client, customer_csv).json()
        run = start_run(client, dataset["id"], k=3)
        assert (run["status"], run["n_customers"], run["k"]) == ("succeeded", 300, 3)
        assert run["created_at"].endswith(("Z", "+00:00"))
        segments = client.get(f"{API}/runs/{run['id']}/segments").json()["segments"]
        assert sum(s["customers"] for s in segments) == 300
        assert client.post(f"{API}/runs/{run['id']}/reproduce").json()["identical"] is True
        listed = client.get(f"{API}/runs").json()
        assert listed["total"] == 2
        assert client.delete(f"{API}/runs/{run['id']}").status_code == 204
        assert client.get(f"{API}/runs").json()["total"] == 1
    assert not (settings.home / "sistack.db").exists()  # nothing went to SQLite


def test_insights_personas_and_compare(served: Served) -> None:
    run_id = served.run["id"]
    insights = served.client.get(f"{API}/runs/{run_id}/insights")
    assert insights.status_code == 200, insights.text
    doc = insights.json()
    segments = served.client.get(f"{API}/runs/{run_id}/segments").json()["segments"]
    # The insight numbers are the persisted profile numbers, segment by segment.
    for seg, profile in zip(doc["segments"], segments, strict=True):
        assert seg["contribution"]["customers"] == profile["customers"]
        assert seg["contribution"]["revenue_index"] == pytest.approx(
            profile["revenue_share"] / profile["customer_share"]
        )
    assert doc["banner"] and doc["definitions"]["revenue_index"]
    personas = served.client.get(f"{API}/runs/{run_id}/personas").json()["personas"]
    assert [p["name"] for p in personas] == [s["persona"]["name"] for s in doc["segments"]]
    assert all(2 <= len(p["actions"]) <= 4 for p in personas)

    again = served.client.post(f"{API}/runs/{run_id}/reproduce").json()
    compared = served.client.get(f"{API}/runs/{again['new_run_id']}/compare/parent")
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["ari"] == pytest.approx(1.0)
    assert all(
        m["segment_a"] == m["segment_b"] and m["quality"] == pytest.approx(1.0)
        for m in body["matches"]
    )
    no_parent = served.client.get(f"{API}/runs/{run_id}/compare/parent")
    assert no_parent.status_code == 404 and error_of(no_parent)["code"] == "no_parent"


def test_simulation_endpoints(served: Served) -> None:
    client, run_id = served.client, served.run["id"]
    catalogue = client.get(f"{API}/levers").json()
    names = {lever["name"] for lever in catalogue}
    assert {
        "budget_shift",
        "campaign",
        "discount_depth",
        "channel_shift",
        "retention",
        "price",
    } <= names
    shift = next(lever for lever in catalogue if lever["name"] == "budget_shift")
    assert shift["parameters"]["properties"]["shift"]["maximum"] == 1

    k = served.run["k"]
    body = {
        "levers": [
            {"lever": "budget_shift", "params": {"sources": [k], "targets": [1], "shift": 0.5}}
        ],
        "monte_carlo": {"draws": 500, "seed": 1},
    }
    first = client.post(f"{API}/runs/{run_id}/simulate", json=body)
    assert first.status_code == 200, first.text
    result = first.json()
    again = client.post(f"{API}/runs/{run_id}/simulate", json=body).json()
    assert again["overall"] == result["overall"]  # same seed, same numbers
    bands = result["overall"]["uncertainty"]["scenario"]["profit"]
    assert bands["p10"] <= bands["p50"] <= bands["p90"]

    bad = client.post(
        f"{API}/runs/{run_id}/simulate",
        json={
            "levers": [
                {
                    "lever": "budget_shift",
                    "params": {"sources": [k + 5], "targets": [1], "shift": 0.5},
                }
            ]
        },
    )
    assert bad.status_code == 422
    assert error_of(bad)["code"] == "invalid_scenario"
    assert str(k + 5) in error_of(bad)["message"]

    saved = client.post(f"{API}/runs/{run_id}/scenarios", json={"name": "half", "scenario": body})
    assert saved.status_code == 201, saved.text
    sid = saved.json()["id"]
    assert [s["id"] for s in client.get(f"{API}/runs/{run_id}/scenarios").json()] == [sid]
    compared = client.post(f"{API}/runs/{run_id}/scenarios/compare", json={"scenario_ids": [sid]})
    assert compared.json()["scenarios"][0]["result"]["overall"] == result["overall"]
    assert client.delete(f"{API}/runs/{run_id}/scenarios/{sid}").status_code == 204
    assert client.get(f"{API}/runs/{run_id}/scenarios/{sid}").status_code == 404

    optimum = client.post(f"{API}/runs/{run_id}/optimize", json={"total_budget": 1000})
    assert optimum.status_code == 200, optimum.text
    spent = sum(s["budget"] for s in optimum.json()["segments"])
    assert spent == pytest.approx(1000, rel=1e-6)
