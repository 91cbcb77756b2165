"""Tests of the synthetic data generator: determinism, layout, planted behaviour, files.

Expected numbers are worked out from the segment profiles in ``sistack.demo`` by hand (shares
20/30/20/15/15 %, Beta and Poisson means); tolerances are about four standard errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack import demo

CUSTOMER_SCHEMA = {
    "ID": pl.Int64, "Year_Birth": pl.Int64, "Education": pl.String,
    "Marital_Status": pl.String, "Income": pl.Float64, "Kidhome": pl.Int64,
    "Teenhome": pl.Int64, "Dt_Customer": pl.String, "Recency": pl.Int64,
    "MntWines": pl.Int64, "MntFruits": pl.Int64, "MntMeatProducts": pl.Int64,
    "MntFishProducts": pl.Int64, "MntSweetProducts": pl.Int64, "MntGoldProds": pl.Int64,
    "NumDealsPurchases": pl.Int64, "NumWebPurchases": pl.Int64,
    "NumCatalogPurchases": pl.Int64, "NumStorePurchases": pl.Int64,
    "NumWebVisitsMonth": pl.Int64, "AcceptedCmp3": pl.Int64, "AcceptedCmp4": pl.Int64,
    "AcceptedCmp5": pl.Int64, "AcceptedCmp1": pl.Int64, "AcceptedCmp2": pl.Int64,
    "Complain": pl.Int64, "Z_CostContact": pl.Int64, "Z_Revenue": pl.Int64,
    "Response": pl.Int64,
}  # fmt: skip
TRANSACTION_SCHEMA = {
    "customer_id": pl.Int64, "order_id": pl.String, "order_date": pl.String,
    "channel": pl.String, "category": pl.String, "amount": pl.Float64, "promo": pl.Int64,
    "discount": pl.Float64,
}  # fmt: skip
TRUTH_SCHEMA = {"customer_id": pl.Int64, "true_segment": pl.String}
PLANTED_SHARES = {
    "affluent_loyal": 0.20,
    "deal_seeking_families": 0.30,
    "lapsed": 0.20,
    "new_web_first": 0.15,
    "catalog_enthusiasts": 0.15,
}
GENERATORS: list[Callable[..., tuple[pl.DataFrame, pl.DataFrame]]] = [
    demo.generate_customers,
    demo.generate_transactions,
]
PURCHASES = pl.col("NumWebPurchases") + pl.col("NumCatalogPurchases") + pl.col("NumStorePurchases")


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    data, truth = demo.generate_customers(20_000, seed=11)
    return data.with_columns(segment=truth["true_segment"])


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    data, truth = demo.generate_transactions(5_000, seed=11)
    return data.join(truth, on="customer_id", maintain_order="left").rename(
        {"true_segment": "segment"}
    )


def test_segment_names() -> None:
    assert tuple(PLANTED_SHARES) == demo.SEGMENTS


@pytest.mark.parametrize("generate", GENERATORS)
def test_same_seed_same_frames_other_seed_other_frames(generate: Callable[..., tuple]) -> None:
    data, truth = generate(300, seed=5)
    again, again_truth = generate(300, seed=5)
    other, _ = generate(300, seed=6)
    assert data.equals(again)
    assert truth.equals(again_truth)
    assert not data.equals(other)


@pytest.mark.parametrize(
    ("generate", "schema"),
    [(demo.generate_customers, CUSTOMER_SCHEMA), (demo.generate_transactions, TRANSACTION_SCHEMA)],
)
@pytest.mark.parametrize("n", [0, 1, 250])
def test_columns_dtypes_and_truth(
    generate: Callable[..., tuple[pl.DataFrame, pl.DataFrame]], schema: dict, n: int
) -> None:
    data, truth = generate(n, seed=3, start_id=101)
    assert data.schema == pl.Schema(schema)  # names, order and dtypes
    assert truth.schema == pl.Schema(TRUTH_SCHEMA)
    assert truth["customer_id"].to_list() == list(range(101, 101 + n))
    assert set(truth["true_segment"]) <= set(demo.SEGMENTS)
    ids = data["ID"] if "ID" in data.columns else data["customer_id"].unique(maintain_order=True)
    assert ids.to_list() == truth["customer_id"].to_list()  # aligned; every customer has orders


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        demo.generate_customers(-1)


@pytest.mark.parametrize("frame_name", ["customers", "orders"])
def test_segment_proportions(frame_name: str, request: pytest.FixtureRequest) -> None:
    frame: pl.DataFrame = request.getfixturevalue(frame_name)
    per_customer = frame.unique("customer_id") if frame_name == "orders" else frame
    counts = per_customer["segment"].value_counts()
    shares = dict(zip(counts["segment"], counts["count"] / per_customer.height, strict=True))
    for name, planted in PLANTED_SHARES.items():
        tolerance = 4 * np.sqrt(planted * (1 - planted) / per_customer.height)
        assert abs(shares[name] - planted) < tolerance, name


@pytest.mark.parametrize(
    ("name", "value", "expected", "tolerance"),
    [
        ("income missing", pl.col("Income").is_null().mean(), 0.01, 0.003),
        ("implausible birth years", pl.col("Year_Birth").is_in([1893, 1899, 1900]).mean(),
         0.001, 0.0008),
        ("complaints", pl.col("Complain").mean(), 0.01, 0.003),
        ("response", pl.col("Response").mean(), 0.15, 0.015),
        # 0.2*.45 + 0.3*.5 + 0.2*.5 + 0.15*.55 + 0.15*.45 from the education profiles
        ("graduation", (pl.col("Education") == "Graduation").mean(), 0.49, 0.015),
        ("Z_CostContact", pl.col("Z_CostContact").std(), 0.0, 0.0),
        ("Z_Revenue", pl.col("Z_Revenue").mean(), 11.0, 0.0),
    ],
)  # fmt: skip
def test_customer_rates(
    customers: pl.DataFrame, name: str, value: pl.Expr, expected: float, tolerance: float
) -> None:
    assert_allclose(customers.select(value).item(), expected, atol=tolerance, err_msg=name)


@pytest.mark.parametrize(
    ("column", "allowed"),
    [
        ("Education", {"Graduation", "PhD", "Master", "Basic", "2n Cycle"}),
        ("Marital_Status",
         {"Married", "Together", "Single", "Divorced", "Widow", "YOLO", "Absurd"}),
        *[(c, {0, 1}) for c in ["AcceptedCmp1", "AcceptedCmp2", "AcceptedCmp3",
                                "AcceptedCmp4", "AcceptedCmp5", "Complain", "Response"]],
        ("Z_CostContact", {3}),
        ("Z_Revenue", {11}),
        ("Recency", set(range(100))),
        ("Kidhome", {0, 1, 2}),
        ("Teenhome", {0, 1, 2}),
    ],
)  # fmt: skip
def test_customer_value_domains(customers: pl.DataFrame, column: str, allowed: set) -> None:
    assert set(customers[column].unique()) <= allowed


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_implausible_birth_years_always_present_from_1000_customers(seed: int) -> None:
    data, _ = demo.generate_customers(1000, seed=seed)
    odd = data.filter(pl.col("Year_Birth") < 1940)["Year_Birth"]
    assert odd.len() >= 1
    assert set(odd) <= {1893, 1899, 1900}


@pytest.mark.parametrize("n", [1, 7, 5000])
def test_signup_dates_are_dd_mm_yyyy_and_end_on_29_06_2014(n: int) -> None:
    data, _ = demo.generate_customers(n, seed=8)
    assert data["Dt_Customer"].str.contains(r"^\d{2}-\d{2}-\d{4}$").all()
    dates = data["Dt_Customer"].str.to_date("%d-%m-%Y")
    assert dates.max() == date(2014, 6, 29)
    assert dates.min() >= date(2012, 7, 30)


def test_deals_are_a_subset_of_purchases(customers: pl.DataFrame) -> None:
    checks = customers.select(
        subset=(pl.col("NumDealsPurchases") <= PURCHASES).all(),
        at_least_one=(PURCHASES >= 1).all(),
        spend_non_negative=(pl.min_horizontal(pl.col("^Mnt.*$")) >= 0).all(),
    )
    assert checks.row(0) == (True, True, True)


# Per-segment means worked out from the profiles: E[Beta(a, b)] = a / (a + b), Poisson means
# are the planted rates (the per-customer gamma "activity" has mean 1).
@pytest.mark.parametrize(
    ("segment", "value", "expected", "tolerance"),
    [
        ("deal_seeking_families", pl.col("NumDealsPurchases").sum() / PURCHASES.sum(),
         12 / 22, 0.03),
        ("affluent_loyal", pl.col("NumDealsPurchases").sum() / PURCHASES.sum(), 1 / 17, 0.02),
        ("new_web_first", pl.col("NumWebPurchases").mean(), 7.0, 0.2),
        ("catalog_enthusiasts", pl.col("NumCatalogPurchases").mean(), 8.0, 0.25),
        ("affluent_loyal", pl.col("NumStorePurchases").mean(), 9.0, 0.25),
        ("lapsed", pl.col("Recency").mean(), (72 + 99) / 2, 1.0),
        ("affluent_loyal", pl.col("Recency").mean(), 20.0, 1.0),
        ("deal_seeking_families", pl.col("Kidhome").mean(), 1.5, 0.04),
        ("affluent_loyal", pl.col("Income").mean(), 80_000, 700),
        ("deal_seeking_families", pl.col("Income").mean(), 35_000, 500),
        ("new_web_first", pl.col("NumWebVisitsMonth").mean(), 6.5, 0.2),
        ("catalog_enthusiasts", pl.col("AcceptedCmp3").mean(), 0.35, 0.04),
        ("lapsed", pl.col("AcceptedCmp3").mean(), 0.02, 0.015),
    ],
)  # fmt: skip
def test_planted_segment_behaviour(
    customers: pl.DataFrame, segment: str, value: pl.Expr, expected: float, tolerance: float
) -> None:
    got = customers.filter(pl.col("segment") == segment).select(value).item()
    assert_allclose(got, expected, atol=tolerance, err_msg=segment)


@pytest.mark.parametrize(
    ("segment", "rule"),
    [
        ("lapsed", pl.col("Recency") >= 72),
        ("deal_seeking_families", pl.col("Kidhome") >= 1),
        ("new_web_first", pl.col("Year_Birth").is_between(1985, 1996)
         | pl.col("Year_Birth").is_in([1893, 1899, 1900])),
        ("new_web_first", pl.col("Dt_Customer").str.to_date("%d-%m-%Y") >= pl.date(2013, 12, 15)),
        ("catalog_enthusiasts", pl.col("Year_Birth") <= 1962),
    ],
)  # fmt: skip
def test_planted_segment_rules_hold_for_every_member(
    customers: pl.DataFrame, segment: str, rule: pl.Expr
) -> None:
    assert customers.filter(pl.col("segment") == segment).select(rule.all()).item()


def test_kmeans_recovers_the_planted_customer_segments() -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import RobustScaler

    data, truth = demo.generate_customers(5000, seed=42)
    signup = pl.col("Dt_Customer").str.to_date("%d-%m-%Y")
    features = data.select(
        pl.sum_horizontal(pl.col("^Mnt.*$")).log1p(),
        PURCHASES.log1p().alias("purchases"),
        *[(pl.col(c) / PURCHASES).alias(c) for c in
          ["NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases", "NumDealsPurchases"]],
        pl.col("Recency"),
        pl.col("Income").fill_null(pl.col("Income").median()),
        (pl.col("Kidhome") + pl.col("Teenhome")).alias("household"),
        (signup.max() - signup).dt.total_days().alias("tenure"),
        (signup.max().dt.year() - pl.col("Year_Birth")).alias("age"),
        pl.col("NumWebVisitsMonth").log1p(),
        pl.sum_horizontal(pl.col("^AcceptedCmp.*$")).log1p().alias("campaigns"),
    )  # fmt: skip
    x = RobustScaler().fit_transform(features.to_numpy())
    labels = KMeans(n_clusters=5, n_init=4, random_state=0).fit_predict(x)
    assert adjusted_rand_score(truth["true_segment"].to_numpy(), labels) >= 0.9


# ---------------------------------------------------------------- transaction layout


@pytest.mark.parametrize("n", [1, 20, 3000])
def test_order_dates_span_and_end_on_2023_12_31(n: int) -> None:
    data, _ = demo.generate_transactions(n, seed=4)
    assert data["order_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert data["order_date"].max() == "2023-12-31"
    assert data["order_date"].min() >= "2022-01-01"
    assert data.select(pl.col("order_date").str.to_date().is_not_null().all()).item()


def test_orders_are_well_formed(orders: pl.DataFrame) -> None:
    checks = orders.select(
        ids_unique=pl.col("order_id").n_unique() == pl.len(),
        ids_format=pl.col("order_id").str.contains(r"^O\d{8,}$").all(),
        first_id=pl.col("order_id").first() == "O00000001",
        amount_positive=(pl.col("amount") > 0).all(),
        amount_cents=(
            (pl.col("amount") * 100 - (pl.col("amount") * 100).round()).abs() < 1e-6
        ).all(),
        no_promo_no_discount=(pl.col("discount").filter(pl.col("promo") == 0) == 0).all(),
        promo_has_discount=(pl.col("discount").filter(pl.col("promo") == 1) > 0).all(),
        promo_binary=pl.col("promo").is_in([0, 1]).all(),
        channels=pl.col("channel").is_in(["web", "store", "catalog", "app"]).all(),
        categories=pl.col("category")
        .is_in(["wine", "meat", "fish", "fruit", "sweets", "gold"])
        .all(),
    )
    assert all(checks.row(0)), checks
    assert orders.equals(orders.sort("customer_id", "order_date", maintain_order=True))


def test_first_order_id_is_honoured() -> None:
    data, _ = demo.generate_transactions(3, seed=1, first_order_id=123_456_789)
    assert data["order_id"][0] == "O123456789"


# Orders per customer = 3 + Poisson((orders - 3) x activity), activity ~ Gamma(6, 1/6): mean =
# planted ``orders``, variance = (orders - 3) + (orders - 3)^2 / 6 (lapsed: 1 + 1/6); channel
# share = (30 * mix + 0.05) / 30.2 (Dirichlet smoothing); promo share = E[Beta(a, b)].
PER_CUSTOMER = pl.col("customer_id").value_counts().struct.field("count")


@pytest.mark.parametrize(
    ("segment", "value", "expected", "tolerance"),
    [
        ("affluent_loyal", pl.len() / pl.col("customer_id").n_unique(), 18.0, 1.2),
        ("lapsed", pl.len() / pl.col("customer_id").n_unique(), 4.0, 0.3),
        ("lapsed", PER_CUSTOMER.var(), 7 / 6, 0.25),
        ("catalog_enthusiasts", PER_CUSTOMER.var(), 9 + 81 / 6, 5.0),
        ("catalog_enthusiasts", (pl.col("channel") == "catalog").mean(), 21.65 / 30.2, 0.03),
        ("new_web_first", (pl.col("channel") == "app").mean(), 17.45 / 30.2, 0.03),
        ("deal_seeking_families", pl.col("promo").mean(), 12 / 22, 0.03),
        ("affluent_loyal", pl.col("promo").mean(), 1 / 17, 0.02),
    ],
)  # fmt: skip
def test_planted_order_behaviour(
    orders: pl.DataFrame, segment: str, value: pl.Expr, expected: float, tolerance: float
) -> None:
    got = orders.filter(pl.col("segment") == segment).select(value).item()
    assert_allclose(got, expected, atol=tolerance, err_msg=segment)


def test_every_customer_has_at_least_three_orders(orders: pl.DataFrame) -> None:
    per_customer = orders.group_by("customer_id", "segment").len()
    assert demo.MIN_ORDERS == 3
    assert per_customer["len"].min() == 3
    # Lapsed customers have 3 + Poisson(activity) orders: exactly three with probability
    # E[exp(-activity)] = (1 + 1/6)^-6 = 0.397 for activity ~ Gamma(6, 1/6).
    lapsed = per_customer.filter(pl.col("segment") == "lapsed")
    assert_allclose((lapsed["len"] == 3).mean(), (7 / 6) ** -6, atol=0.06)


def test_about_ten_orders_per_customer_and_lapsed_are_not_recent(orders: pl.DataFrame) -> None:
    # 0.2*18 + 0.3*10 + 0.2*4 + 0.15*9 + 0.15*12 = 10.55
    assert_allclose(orders.height / orders["customer_id"].n_unique(), 10.55, atol=0.4)
    last = orders.group_by("customer_id", "segment").agg(pl.col("order_date").max())
    lapsed = last.filter(pl.col("segment") == "lapsed")["order_date"]
    assert lapsed.max() <= "2023-06-14"  # the planted gap is at least 200 days


# ---------------------------------------------------------------- files


def _read(path: Path, schema: dict) -> pl.DataFrame:
    suffix = path.suffix
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        try:
            rows = list(book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()
        assert list(rows[0]) == list(schema)
        return pl.DataFrame(rows[1:], schema=schema, orient="row", strict=False)
    return pl.read_csv(path, separator="," if suffix == ".csv" else "\t", schema=schema)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".parquet", ".xlsx"])
@pytest.mark.parametrize(
    ("layout", "schema"), [("customers", CUSTOMER_SCHEMA), ("transactions", TRANSACTION_SCHEMA)]
)
def test_write_dataset_roundtrip(tmp_path: Path, suffix: str, layout: str, schema: dict) -> None:
    path, truth_path = tmp_path / f"data{suffix}", tmp_path / "truth.csv"
    rows = demo.write_dataset(
        path, customers=250, layout=layout, seed=9, truth_path=truth_path, chunk_customers=100
    )
    chunks = list(demo.iter_chunks(250, layout=layout, seed=9, chunk_customers=100))
    expected = pl.concat([data for data, _ in chunks])
    assert len(chunks) == 3
    assert rows == expected.height
    assert _read(path, schema).equals(expected)
    assert pl.read_csv(truth_path, schema=TRUTH_SCHEMA).equals(pl.concat([t for _, t in chunks]))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, truth_path.name])


@pytest.mark.parametrize("layout", ["customers", "transactions"])
def test_one_chunk_file_equals_the_generator(tmp_path: Path, layout: str) -> None:
    generate = demo.generate_customers if layout == "customers" else demo.generate_transactions
    path = tmp_path / "one.parquet"
    demo.write_dataset(path, customers=300, layout=layout, seed=2, chunk_customers=1000)
    assert pl.read_parquet(path).equals(generate(300, seed=2)[0])


def test_chunks_continue_ids_and_the_file_depends_only_on_its_arguments(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (first, second):
        demo.write_dataset(path, customers=450, layout="transactions", seed=4, chunk_customers=200)
    assert first.read_bytes() == second.read_bytes()
    data = pl.read_csv(first, schema=TRANSACTION_SCHEMA)
    assert data["customer_id"].unique().sort().to_list() == list(range(1, 451))
    assert data["order_id"].to_list() == [f"O{i:08d}" for i in range(1, data.height + 1)]
    # chunk 1 is drawn from SeedSequence([4, 1]), not a continuation of chunk 0's stream
    single, _ = demo.generate_transactions(450, seed=4)
    assert not data.equals(single)


@pytest.mark.parametrize("customers", [demo.XLSX_MAX_ROWS + 1, 2_000_000])
def test_xlsx_refuses_more_rows_than_a_sheet_holds(tmp_path: Path, customers: int) -> None:
    with pytest.raises(ValueError, match="1,048,575"):
        demo.write_dataset(tmp_path / "big.xlsx", customers=customers)
    assert list(tmp_path.iterdir()) == []


def test_xlsx_overflow_while_writing_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "XLSX_MAX_ROWS", 50)  # transactions: rows are known only later
    with pytest.raises(ValueError, match="at most 50"):
        demo.write_dataset(tmp_path / "orders.xlsx", customers=30, layout="transactions")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": Path("x.json"), "customers": 5}, "cannot tell the format"),
        ({"path": Path("x.csv"), "customers": 5, "truth_path": Path("t.json")}, "'t.json'"),
        ({"path": Path("x.csv"), "customers": 5, "layout": "orders"}, "layout must be"),
        ({"path": Path("x.csv"), "customers": -1}, ">= 0"),
        ({"path": Path("x.csv"), "customers": 5, "chunk_customers": 0}, ">= 1"),
    ],
)
def test_write_dataset_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        demo.write_dataset(**kwargs)
    assert list(tmp_path.iterdir()) == []


def test_empty_data_set_still_has_a_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    assert demo.write_dataset(path, customers=0) == 0
    assert path.read_text().strip() == ",".join(CUSTOMER_SCHEMA)
