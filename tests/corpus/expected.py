"""What the product must answer for each corpus file (see ``generate.py``), API and CLI alike.

Three outcomes:

- ``refused``: an error before any run. The API answers ``status`` with ``error.code == code``
  (at the upload, or at ``POST /runs`` when ``stage == "create"``); the CLI exits 2 with the code.
- ``failed``: the upload is accepted, the run is queued (202) and then fails with ``code``; the
  CLI exits 2 with the code. No run directory may exist afterwards.
- ``accepted``: the run succeeds; ``code`` names the warning a person must see ("" for none) and
  ``where`` says where: ``read`` (the dataset's warnings and the manifest's
  ``input.read_warnings``) or ``quality`` (an issue of the run's quality report on ``column``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.corpus.generate import N

REFUSED, FAILED, ACCEPTED = "refused", "failed", "accepted"
UPLOAD_LIMIT = 64 * 1024  # SISTACK_MAX_UPLOAD_BYTES for the over-limit case


@dataclass(frozen=True)
class Expect:
    file: str
    outcome: str
    code: str = ""
    status: int | None = None  # HTTP status of a refusal
    stage: str = "upload"  # where a refusal happens: "upload" or "create" (POST /runs)
    where: str = ""  # for accepted files with a warning: "read" or "quality"
    column: str | None = None  # the column a quality warning names
    customers: int = N  # customers of an accepted run
    k: int | None = None
    upload_name: str | bytes | None = None  # the multipart file name sent to the API
    filename: str | None = None  # the cleaned name the dataset keeps (default: the file's)
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.file.replace(".", "_")


def refused(file: str, status: int, code: str, **kw: object) -> Expect:
    return Expect(file, REFUSED, code, status, **kw)  # type: ignore[arg-type]


def failed(file: str, code: str, **kw: object) -> Expect:
    return Expect(file, FAILED, code, **kw)  # type: ignore[arg-type]


def accepted(file: str, code: str = "", where: str = "", **kw: object) -> Expect:
    return Expect(file, ACCEPTED, code, where=where, **kw)  # type: ignore[arg-type]


def quality(file: str, code: str, column: str, **kw: object) -> Expect:
    return accepted(file, code, "quality", column=column, **kw)


LONG_NAME = "n" * 296 + ".csv"

CASES: list[Expect] = [
    # Empty and nearly empty.
    refused("empty.csv", 422, "empty_file"),
    refused("blank.csv", 422, "empty_file"),
    refused("header_only.csv", 422, "no_data_rows"),
    # Encodings and delimiters.
    accepted("bom.csv"),
    accepted("latin1.csv", "encoding_fallback", "read"),
    accepted("utf16_bom.csv"),
    refused("utf16_no_bom.csv", 422, "binary_content"),
    accepted("semicolon.csv"),
    accepted("tab.csv"),
    accepted("crlf.csv"),
    accepted("blank_lines.csv", "empty_rows_skipped", "read"),
    # Broken structure.
    refused("ragged.csv", 422, "ragged_rows"),
    refused("unbalanced_quote.csv", 422, "malformed_csv"),
    refused("nul.csv", 422, "binary_content"),
    refused("duplicate_columns.csv", 422, "duplicate_columns"),
    accepted("unnamed_column.csv", "empty_column_names", "read"),
    # Ids.
    refused("missing_id.csv", 422, "missing_customer_id", stage="create"),
    failed("no_usable_ids.csv", "no_usable_rows"),
    quality("duplicate_ids.csv", "duplicate_customer_id", "ID", customers=N - 2),
    # Values.
    quality("negative_spend.csv", "negative_value", "MntWines"),
    quality("null_tokens.csv", "imputed_median", "Income"),
    quality("inf.csv", "non_finite", "Income"),
    quality("huge_1e308.csv", "non_finite", "MntWines"),
    quality("future_dates.csv", "date_after_reference", "Dt_Customer"),
    quality("mixed_dates.csv", "mixed_date_formats", "Dt_Customer"),
    failed("not_dates.csv", "invalid_dates"),
    failed("text_in_numeric.csv", "non_numeric_values"),
    quality("currency.csv", "cleaned_number", "Income"),
    quality("decimal_comma.csv", "cleaned_number", "Income"),
    # Too little data, useless columns.
    failed("one_row.csv", "too_few_customers"),
    failed("fewer_rows_than_k.csv", "too_few_customers", k=5),
    quality("constant_column.csv", "constant_column", "NumDealsPurchases"),
    quality("all_missing_column.csv", "all_missing_column", "Income"),
    # Content aimed at whoever opens the results.
    accepted("formulas.csv"),
    accepted("html.csv"),
    accepted("emoji_rtl.csv"),
    # Workbooks.
    accepted("valid.xlsx"),
    refused("zip_bomb.xlsx", 413, "xlsx_too_large"),
    refused("doctype.xlsx", 422, "unsafe_xlsx"),
    refused("external_entity.xlsx", 422, "unsafe_xlsx"),
    refused("billion_laughs.xlsx", 422, "unsafe_xlsx"),
    refused("doctype_after_comment.xlsx", 422, "unsafe_xlsx"),
    accepted("macros.xlsm", "macros_ignored", "read"),
    refused("legacy.xls", 415, "unsupported_format"),
    refused("encrypted.xlsx", 415, "unsupported_format"),
    refused("zip_not_workbook.xlsx", 415, "unsupported_format"),
    # Size limits (defaults, except the upload limit of the last one).
    refused("wide_10000_columns.csv", 413, "too_many_columns"),
    refused("cell_10mb.csv", 413, "cell_too_long"),
    refused("over_limit.csv", 413, "file_too_large", settings={"max_upload_bytes": UPLOAD_LIMIT}),
    # Content that does not match its name; compression.
    accepted("xlsx_named.csv", "extension_mismatch", "read"),
    refused("png_named.csv", 415, "unsupported_format"),
    refused("pdf_named.csv", 415, "unsupported_format"),
    accepted("customers.csv.gz", "gzip_decompressed", "read"),
    accepted("gzip_named.csv", "gzip_decompressed", "read"),
    refused("double_gzip.csv.gz", 415, "unsupported_format"),
    refused("damaged.csv.gz", 422, "malformed_gzip"),
    # Parquet.
    accepted("valid.parquet"),
    refused("corrupt_footer.parquet", 422, "corrupt_parquet"),
    refused("truncated.parquet", 422, "corrupt_parquet"),
    # Hostile upload names: stored under a server-made name, the cleaned name kept as metadata.
    accepted("name_dotdot.csv", upload_name="../../etc/passwd", filename="passwd"),
    accepted("name_backslash.csv", upload_name="..\\..\\windows\\win.ini", filename="win.ini"),
    accepted(
        "name_encoded.csv",
        upload_name="%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        filename="%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    ),
    accepted("name_nul.csv", upload_name=b"a.csv\x00.exe", filename="a.csv.exe"),
    accepted("name_long.csv", upload_name=LONG_NAME, filename=LONG_NAME[:120]),
]
