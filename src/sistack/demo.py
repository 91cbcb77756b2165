"""Deterministic synthetic customer data with planted, recoverable segments.

Feeds ``sistack demo`` and ``sistack generate``, the tests (clustering must find the planted
segments again) and the benchmarks (up to ten million rows). Two layouts are produced:

* ``customers``: one row per customer, exactly the columns of the widely used "customer
  personality analysis" marketing file (dd-mm-yyyy signup dates, ~1% empty incomes, a few
  implausible birth years, constant ``Z_CostContact``/``Z_Revenue``);
* ``transactions``: one row per order (customer, date, channel, category, amount, promo,
  discount), about ten orders per customer and at least :data:`MIN_ORDERS` each.

Every draw comes from an explicit ``np.random.Generator``; there is no wall clock and no global
random state. Large files are written chunk by chunk: chunk ``i`` draws from
``np.random.SeedSequence([seed, i])``, so a file depends only on ``(customers, seed,
chunk_customers)`` and never on memory. ``generate_*`` use chunk 0, so a one-chunk file equals
what they return.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
import polars.selectors as cs

SEGMENTS: tuple[str, ...] = (
    "affluent_loyal",
    "deal_seeking_families",
    "lapsed",
    "new_web_first",
    "catalog_enthusiasts",
)
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "ID", "Year_Birth", "Education", "Marital_Status", "Income", "Kidhome", "Teenhome",
    "Dt_Customer", "Recency", "MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts",
    "MntSweetProducts", "MntGoldProds", "NumDealsPurchases", "NumWebPurchases",
    "NumCatalogPurchases", "NumStorePurchases", "NumWebVisitsMonth", "AcceptedCmp3",
    "AcceptedCmp4", "AcceptedCmp5", "AcceptedCmp1", "AcceptedCmp2", "Complain",
    "Z_CostContact", "Z_Revenue", "Response",
)  # fmt: skip
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "customer_id", "order_id", "order_date", "channel", "category", "amount", "promo", "discount",
)  # fmt: skip
LAYOUTS: tuple[str, ...] = ("customers", "transactions")
XLSX_MAX_ROWS = 1_048_575  # sheet limit of 1,048,576 rows minus the header

EDUCATION = ("Graduation", "PhD", "Master", "2n Cycle", "Basic")
MARITAL = ("Married", "Together", "Single", "Divorced", "Widow", "YOLO", "Absurd")
CHANNELS = ("web", "catalog", "store", "app")
CATEGORIES = ("wine", "fruit", "meat", "fish", "sweets", "gold")  # order of the Mnt* columns
IMPLAUSIBLE_BIRTH_YEARS = (1893, 1899, 1900)

_SIGNUP_FIRST = np.datetime64("2012-07-30")
_SIGNUP_DAYS = 699  # 2012-07-30 .. 2014-06-29, the last day always occurs
_ORDER_FIRST = np.datetime64("2022-01-01")
_ORDER_DAYS = 729  # 2022-01-01 .. 2023-12-31, the last day always occurs
_CATEGORY_PRICE = np.array([1.3, 0.5, 1.1, 0.9, 0.5, 1.6])  # order value relative to the mean
_CAMPAIGN_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 0.2])  # Cmp3, 4, 5, 1, 2: Cmp2 is rarely taken
_RESPONSE_INTERCEPT = -3.3  # calibrated so that about 15% of customers respond
# Per-customer gamma "activity" (mean 1, CV 0.41) scaling purchase counts, in both layouts.
_ACTIVITY_SHAPE = 6.0
# Every customer of the transaction layout is a repeat customer. With one or two orders, a
# customer's channel and category shares, deal share and time between orders each rest on one
# or two events (all-or-nothing shares; a "mean gap" that is one gap, or the time since the only
# order), so such customers resemble each other whatever their segment and gather in a cluster
# that is not planted. Order-level analyses commonly set them aside for the same reason.
MIN_ORDERS = 3


@dataclass(frozen=True)
class _Profile:
    """Generating parameters of one planted segment (ranges are inclusive)."""

    share: float
    income: tuple[float, float]  # mean, standard deviation
    kids: tuple[int, float]  # minimum Kidhome, probability of each of the remaining (max 2)
    teen_p: float  # Teenhome ~ Binomial(2, teen_p)
    birth: tuple[int, int]
    recency: tuple[int, int]  # days since the last purchase (customer layout)
    tenure: tuple[float, float]  # signup / first order as a fraction of the date window
    purchases: tuple[float, float, float]  # mean web, catalog, store purchases
    deal: tuple[float, float]  # Beta(a, b) of the share of purchases made with a deal
    order_value: float  # median spend per purchase
    categories: tuple[float, ...]  # Dirichlet weights, in CATEGORIES order
    visits: float  # mean web visits per month
    campaign: float  # probability of accepting each campaign
    response: float  # segment term of the response logit
    orders: float  # mean orders over the two transaction years (at least MIN_ORDERS)
    last_gap: tuple[int, int]  # days from the last order to 2023-12-31 (transaction layout)
    channels: tuple[float, float, float, float]  # order channel mix, in CHANNELS order
    education: tuple[float, ...]  # in EDUCATION order
    marital: tuple[float, ...]  # in MARITAL order


_PROFILES: tuple[_Profile, ...] = (
    _Profile(  # affluent_loyal
        share=0.20, income=(80_000, 9_000), kids=(0, 0.02), teen_p=0.12, birth=(1958, 1984),
        recency=(0, 40), tenure=(0.0, 0.5), purchases=(4.0, 2.5, 9.0), deal=(1.0, 16.0),
        order_value=70.0, categories=(10.0, 1.2, 7.0, 1.5, 1.0, 1.0), visits=2.0,
        campaign=0.16, response=0.3, orders=18.0, last_gap=(0, 45),
        channels=(0.15, 0.15, 0.65, 0.05), education=(0.45, 0.3, 0.2, 0.05, 0.0),
        marital=(0.45, 0.28, 0.14, 0.09, 0.04, 0.0, 0.0),
    ),
    _Profile(  # deal_seeking_families
        share=0.30, income=(35_000, 8_000), kids=(1, 0.5), teen_p=0.35, birth=(1962, 1984),
        recency=(0, 55), tenure=(0.1, 0.75), purchases=(5.0, 0.4, 3.5), deal=(12.0, 10.0),
        order_value=12.0, categories=(4.0, 1.2, 2.0, 1.0, 1.0, 1.5), visits=7.5,
        campaign=0.02, response=-0.6, orders=10.0, last_gap=(0, 120),
        channels=(0.45, 0.03, 0.47, 0.05), education=(0.5, 0.12, 0.15, 0.15, 0.08),
        marital=(0.5, 0.32, 0.06, 0.1, 0.02, 0.0, 0.0),
    ),
    _Profile(  # lapsed
        share=0.20, income=(55_000, 11_000), kids=(0, 0.1), teen_p=0.3, birth=(1955, 1985),
        recency=(72, 99), tenure=(0.0, 0.35), purchases=(1.0, 0.15, 2.2), deal=(1.5, 8.0),
        order_value=15.0, categories=(6.0, 1.0, 2.5, 1.0, 1.0, 1.0), visits=3.0,
        campaign=0.02, response=-0.6, orders=4.0, last_gap=(200, 480),
        channels=(0.35, 0.05, 0.58, 0.02), education=(0.5, 0.22, 0.16, 0.09, 0.03),
        marital=(0.36, 0.24, 0.2, 0.14, 0.06, 0.0, 0.0),
    ),
    _Profile(  # new_web_first
        share=0.15, income=(47_000, 9_000), kids=(0, 0.05), teen_p=0.0, birth=(1985, 1996),
        recency=(0, 35), tenure=(0.72, 1.0), purchases=(7.0, 0.5, 2.0), deal=(2.0, 10.0),
        order_value=40.0, categories=(4.0, 2.0, 3.5, 2.0, 1.5, 1.0), visits=6.5,
        campaign=0.06, response=0.4, orders=9.0, last_gap=(0, 30),
        channels=(0.35, 0.02, 0.05, 0.58), education=(0.55, 0.1, 0.2, 0.12, 0.03),
        marital=(0.2, 0.22, 0.51, 0.06, 0.0, 0.005, 0.005),
    ),
    _Profile(  # catalog_enthusiasts
        share=0.15, income=(60_000, 8_000), kids=(0, 0.03), teen_p=0.25, birth=(1940, 1962),
        recency=(5, 60), tenure=(0.25, 0.85), purchases=(1.5, 8.0, 3.0), deal=(1.5, 12.0),
        order_value=55.0, categories=(5.0, 1.5, 3.0, 1.5, 3.5, 4.0), visits=3.0,
        campaign=0.35, response=0.8, orders=12.0, last_gap=(0, 60),
        channels=(0.08, 0.72, 0.17, 0.03), education=(0.45, 0.25, 0.18, 0.1, 0.02),
        marital=(0.4, 0.22, 0.12, 0.14, 0.12, 0.0, 0.0),
    ),
)  # fmt: skip


def _param(name: str) -> np.ndarray:
    """One profile field as an array indexed by segment code (rows = segments)."""
    return np.array([getattr(p, name) for p in _PROFILES], dtype=np.float64)


def _rng(seed: int, chunk: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, chunk]))


def _categorical(rng: np.random.Generator, probs: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Draw one category per element of ``owner`` from the probability row ``probs[owner]``.

    Row ``c``'s cumulative probabilities are shifted by ``c`` and laid end to end, so a single
    ``searchsorted`` serves any number of rows without materialising a (draws x k) matrix.
    """
    k = probs.shape[1]
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    flat = (cum + np.arange(len(probs))[:, None]).ravel()
    hit = np.searchsorted(flat, owner + rng.random(len(owner)), side="right")
    return np.minimum(hit - owner * k, k - 1)


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Row-wise Dirichlet draws for a matrix of (per-row) concentration parameters."""
    g = rng.gamma(alpha)
    return g / g.sum(axis=1, keepdims=True)


def _dates(first: np.datetime64, days: np.ndarray, fmt: str) -> pl.Series:
    """Format ``first + days`` (whole days) as strings."""
    dates = (first + days.astype("timedelta64[D]")).astype("datetime64[D]")
    return pl.Series(dates).dt.strftime(fmt)


def _labels(names: tuple[str, ...], codes: np.ndarray) -> pl.Series:
    """``names[codes]`` as a String column (a gather is much faster than numpy strings)."""
    return pl.Series(names, dtype=pl.String).gather(codes)


def _segments(rng: np.random.Generator, n: int) -> np.ndarray:
    if n < 0:
        raise ValueError(f"the number of customers must be >= 0, got {n}")
    return rng.choice(len(SEGMENTS), size=n, p=_param("share"))


def _truth(ids: np.ndarray, seg: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": ids, "true_segment": _labels(SEGMENTS, seg)},
        schema={"customer_id": pl.Int64, "true_segment": pl.String},
    )


def _customers(
    rng: np.random.Generator, n: int, start_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    seg = _segments(rng, n)
    ids = np.arange(start_id, start_id + n, dtype=np.int64)
    inc_mu, inc_sd = _param("income").T
    income = np.clip(rng.normal(inc_mu[seg], inc_sd[seg]), 4_000, 180_000).round()
    kid_min, kid_p = _param("kids").T
    kids = kid_min[seg] + rng.binomial((2 - kid_min[seg]).astype(np.int64), kid_p[seg])
    teens = rng.binomial(2, _param("teen_p")[seg])
    lo, hi = _param("birth").T.astype(np.int64)
    birth = rng.integers(lo[seg], hi[seg] + 1)
    odd = rng.random(n) < 0.001
    if n >= 1000 and not odd.any():  # the real file always has a few
        odd[rng.integers(n)] = True
    birth[odd] = rng.choice(IMPLAUSIBLE_BIRTH_YEARS, size=int(odd.sum()))
    t_lo, t_hi = _param("tenure").T
    signup = np.round((t_lo[seg] + (t_hi[seg] - t_lo[seg]) * rng.random(n)) * _SIGNUP_DAYS)
    if n:  # the latest signup is the data's reference date: pin it to the window end
        signup[np.argmax(signup)] = _SIGNUP_DAYS
    r_lo, r_hi = _param("recency").T.astype(np.int64)
    recency = rng.integers(r_lo[seg], r_hi[seg] + 1)

    # Purchase counts share one gamma "activity" per customer (negative binomial counts, and
    # busy customers are busy in every channel); deals are a subset of the purchases.
    activity = rng.gamma(_ACTIVITY_SHAPE, 1 / _ACTIVITY_SHAPE, n)
    rates = _param("purchases")[seg]
    counts = rng.poisson(rates * activity[:, None])
    none = counts.sum(axis=1) == 0
    counts[none, np.argmax(rates[none], axis=1)] = 1
    total = counts.sum(axis=1)
    deal_a, deal_b = _param("deal").T
    deals = rng.binomial(total, rng.beta(deal_a[seg], deal_b[seg]))
    spend = total * _param("order_value")[seg] * rng.lognormal(0.0, 0.35, n)
    amounts = np.floor(spend[:, None] * _dirichlet(rng, _param("categories")[seg]))
    visits = np.minimum(rng.poisson(_param("visits")[seg]), 20)
    accepted = rng.random((n, 5)) < _param("campaign")[seg, None] * _CAMPAIGN_FACTOR
    complain = rng.random(n) < 0.01
    logit = (
        _RESPONSE_INTERCEPT
        + _param("response")[seg]
        - 0.03 * (recency - 50)
        + 0.9 * accepted.sum(axis=1)
        + 0.15 * (income - 52_000) / 10_000
    )
    response = rng.random(n) < 1 / (1 + np.exp(-logit))
    income[rng.random(n) < 0.01] = np.nan
    education = _categorical(rng, _param("education"), seg)
    marital = _categorical(rng, _param("marital"), seg)

    columns: list[Any] = [
        ids, birth, _labels(EDUCATION, education), _labels(MARITAL, marital),
        pl.Series(income).fill_nan(None), kids, teens,
        _dates(_SIGNUP_FIRST, signup, "%d-%m-%Y"), recency, *amounts.T, deals, *counts.T,
        visits, *accepted.T, complain, np.full(n, 3), np.full(n, 11), response,
    ]  # fmt: skip
    frame = pl.DataFrame(
        {name: pl.Series(col) for name, col in zip(CUSTOMER_COLUMNS, columns, strict=True)}
    )
    frame = frame.with_columns((cs.numeric() | cs.boolean()).exclude("Income").cast(pl.Int64))
    return frame, _truth(ids, seg)


def _transactions(
    rng: np.random.Generator, n: int, start_id: int, first_order_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    seg = _segments(rng, n)
    ids = np.arange(start_id, start_id + n, dtype=np.int64)
    activity = rng.gamma(_ACTIVITY_SHAPE, 1 / _ACTIVITY_SHAPE, n)
    n_orders = MIN_ORDERS + rng.poisson((_param("orders")[seg] - MIN_ORDERS) * activity)
    t_lo, t_hi = _param("tenure").T
    first = np.round((t_lo[seg] + (t_hi[seg] - t_lo[seg]) * rng.random(n)) * _ORDER_DAYS)
    gap_lo, gap_hi = _param("last_gap").T.astype(np.int64)
    last = _ORDER_DAYS - rng.integers(gap_lo[seg], gap_hi[seg] + 1)
    if n:  # the latest order is the data's reference date: pin it to the window end
        last[np.argmax(last)] = _ORDER_DAYS
    first = np.minimum(first, last).astype(np.int64)

    # Orders fall uniformly between a customer's first and last day; the first drawn order of
    # each customer is moved to the last day so that recency is exactly as planted.
    owner = np.repeat(np.arange(n), n_orders)
    day = first[owner] + np.floor(rng.random(len(owner)) * (last - first + 1)[owner]).astype(
        np.int64
    )
    day[np.cumsum(n_orders) - n_orders] = last
    day = day[np.lexsort((day, owner))]  # owner is already grouped: sorts days per customer

    channel_mix = _dirichlet(rng, 30.0 * _param("channels")[seg] + 0.05)
    category_mix = _dirichlet(rng, _param("categories")[seg])
    channel = _categorical(rng, channel_mix, owner)
    category = _categorical(rng, category_mix, owner)
    deal_a, deal_b = _param("deal").T
    promo = rng.random(len(owner)) < rng.beta(deal_a[seg], deal_b[seg])[owner]
    gross = (
        _param("order_value")[seg][owner]
        * _CATEGORY_PRICE[category]
        * rng.lognormal(0.0, 0.5, len(owner))
    )
    gross = np.maximum(gross, 1.0)
    discount = np.where(
        promo, np.round(gross * rng.choice([0.1, 0.15, 0.2, 0.3], len(owner)), 2), 0
    )
    amount = np.round(gross - discount, 2)

    order_no = pl.Series(np.arange(first_order_id, first_order_id + len(owner)), dtype=pl.Int64)
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(ids[owner], dtype=pl.Int64),
            "order_id": "O" + order_no.cast(pl.String).str.zfill(8),
            "order_date": _dates(_ORDER_FIRST, day, "%Y-%m-%d"),
            "channel": _labels(CHANNELS, channel),
            "category": _labels(CATEGORIES, category),
            "amount": pl.Series(amount, dtype=pl.Float64),
            "promo": pl.Series(promo, dtype=pl.Int64),
            "discount": pl.Series(discount, dtype=pl.Float64),
        }
    )
    return frame, _truth(ids, seg)


def generate_customers(
    n: int, *, seed: int = 42, start_id: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate ``n`` customers in the customer-personality marketing layout.

    Args:
        n: Number of customers (rows).
        seed: Non-negative seed; draws come from ``SeedSequence([seed, 0])``, i.e. chunk 0 of
            :func:`write_dataset`.
        start_id: ``ID`` of the first customer; ids are consecutive.

    Returns:
        The data (columns :data:`CUSTOMER_COLUMNS`) and the truth frame
        (``customer_id: Int64``, ``true_segment: String``), row-aligned with the data.
    """
    return _customers(_rng(seed, 0), n, start_id)


def generate_transactions(
    n_customers: int, *, seed: int = 42, start_id: int = 1, first_order_id: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate the orders of ``n_customers`` customers (about ten each, at least
    :data:`MIN_ORDERS`), one row per order.

    ``amount`` is what the customer paid; ``discount`` is the amount taken off by a promotion
    (0 when ``promo`` is 0). Rows are sorted by customer, then date.

    Args:
        n_customers: Number of customers; each has at least :data:`MIN_ORDERS` orders.
        seed: Non-negative seed; draws come from ``SeedSequence([seed, 0])``.
        start_id: ``customer_id`` of the first customer.
        first_order_id: Number of the first order (``"O00000001"`` for 1); lets a caller that
            generates chunks keep order ids unique.

    Returns:
        The orders (columns :data:`TRANSACTION_COLUMNS`) and the truth frame, one row per
        customer.
    """
    return _transactions(_rng(seed, 0), n_customers, start_id, first_order_id)


def iter_chunks(
    customers: int, *, layout: str = "customers", seed: int = 42, chunk_customers: int = 250_000
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Yield ``(data, truth)`` chunk by chunk; what :func:`write_dataset` writes, in memory.

    Chunk ``i`` holds customers ``i * chunk_customers + 1 ...`` and draws from
    ``SeedSequence([seed, i])``; order ids continue across chunks. Zero customers give one
    empty chunk, so a written file still has its header and schema.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if customers < 0 or chunk_customers < 1:
        raise ValueError("customers must be >= 0 and chunk_customers >= 1")
    return _chunks(customers, layout, seed, chunk_customers)  # arguments checked eagerly


def _chunks(
    customers: int, layout: str, seed: int, chunk_customers: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    next_order = 1
    starts = range(0, customers, chunk_customers) or range(1)  # 0 customers: one empty chunk
    for i, start in enumerate(starts):
        n, rng = min(chunk_customers, customers - start), _rng(seed, i)
        if layout == "customers":
            yield _customers(rng, n, start + 1)
        else:
            data, truth = _transactions(rng, n, start + 1, next_order)
            next_order += data.height
            yield data, truth


class _ChunkWriter(Protocol):
    def write(self, frame: pl.DataFrame) -> None: ...
    def close(self) -> None: ...


class _TextWriter:
    def __init__(self, path: Path, separator: str) -> None:
        self._file = path.open("wb")
        self._separator = separator
        self._header = True

    def write(self, frame: pl.DataFrame) -> None:
        frame.write_csv(self._file, separator=self._separator, include_header=self._header)
        self._header = False

    def close(self) -> None:
        self._file.close()


class _ParquetWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None

    def write(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _XlsxWriter:
    """Streams rows into one sheet (``constant_memory``: a row is flushed once written)."""

    def __init__(self, path: Path) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self._sheet = self._book.add_worksheet("data")
        self._row = 0

    def write(self, frame: pl.DataFrame) -> None:
        if self._row + frame.height > XLSX_MAX_ROWS:
            raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_ROWS:,} data rows")
        if self._row == 0:
            self._sheet.write_row(0, 0, frame.columns)
        for values in frame.iter_rows():
            self._row += 1
            self._sheet.write_row(self._row, 0, values)

    def close(self) -> None:
        self._book.close()


def _open_writer(path: Path, partial: Path) -> _ChunkWriter:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _TextWriter(partial, ",")
    if suffix in (".tsv", ".txt"):
        return _TextWriter(partial, "\t")
    if suffix == ".parquet":
        return _ParquetWriter(partial)
    if suffix == ".xlsx":
        return _XlsxWriter(partial)
    raise ValueError(
        f"cannot tell the format of {path.name!r}: use .csv, .tsv, .txt, .parquet or .xlsx"
    )


def write_dataset(
    path: Path,
    *,
    customers: int,
    layout: str = "customers",
    seed: int = 42,
    truth_path: Path | None = None,
    chunk_customers: int = 250_000,
) -> int:
    """Write a synthetic data set chunk by chunk, so memory stays bounded at any size.

    The format follows the extension: ``.csv`` (comma), ``.tsv``/``.txt`` (tab), ``.parquet``,
    ``.xlsx`` (one sheet, at most :data:`XLSX_MAX_ROWS` rows). Files are written under a
    temporary name and renamed into place, so a failed write leaves nothing behind. The content
    depends only on ``(customers, layout, seed, chunk_customers)``; see :func:`iter_chunks`.

    Args:
        path: Output file.
        customers: Number of customers.
        layout: ``"customers"`` (one row per customer) or ``"transactions"`` (one per order).
        seed: Non-negative seed.
        truth_path: Optional file for ``customer_id, true_segment`` (format by extension too).
        chunk_customers: Customers generated and written at a time.

    Returns:
        The number of data rows written (header excluded).

    Raises:
        ValueError: Unknown layout or extension, or more rows than an XLSX sheet holds.
    """
    targets = [Path(path)] if truth_path is None else [Path(path), Path(truth_path)]
    if customers > XLSX_MAX_ROWS and any(t.suffix.lower() == ".xlsx" for t in targets):
        raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_ROWS:,} data rows")
    chunks = iter_chunks(customers, layout=layout, seed=seed, chunk_customers=chunk_customers)
    partials = [t.with_name(f".{t.name}.partial") for t in targets]
    writers: list[_ChunkWriter] = []
    rows = 0
    try:
        writers.extend(_open_writer(t, p) for t, p in zip(targets, partials, strict=True))
        for frames in chunks:  # (data, truth); the truth is written only when asked for
            for writer, frame in zip(writers, frames, strict=False):
                writer.write(frame)
            rows += frames[0].height
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            with contextlib.suppress(Exception):  # the original error is the one to report
                writer.close()
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    for target, partial in zip(targets, partials, strict=True):
        os.replace(partial, target)
    return rows
