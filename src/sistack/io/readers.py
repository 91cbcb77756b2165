"""Read a table file (CSV/TSV, XLSX, Parquet, optionally gzipped) into a raw table.

The format is decided by the file's content, never by its name. Limits are enforced before or
while reading, so a hostile or accidental upload fails early with a message a person can act on.
Nothing here interprets columns: text formats come back as all-``String`` frames, and the domain
layer does the typing (and counts every change it makes).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import io
import itertools
import math
import mmap
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from python_calamine import CalamineError, CalamineWorkbook

from sistack.errors import InputError, LimitExceeded, UnsupportedFormat, row_examples

if TYPE_CHECKING:
    from sistack.config import Settings

_HEAD_BYTES = 64 * 1024  # enough to sniff the delimiter; the header line is read whole
_MAX_HEADER_BYTES = 16 * 1024**2
_MAX_PROLOG_BYTES = 1024**2  # XML before a workbook part's root element
_BOMS = (codecs.BOM_UTF8, b"\xff\xfe", b"\xfe\xff")
_SNIFF_LINES = 50
SAMPLE_ROWS = 100_000  # rows of a streamed file held in memory (mapping detection, previews)
_DELIMITERS = (",", "\t", ";", "|")
_MB = 1024**2
_POLARS_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException)
# format -> (how to name it in a message, extensions that fit it)
_FORMATS = {
    "text": ("CSV text", {".csv", ".tsv", ".txt", ".tab"}),
    "xlsx": ("an Excel workbook (xlsx)", {".xlsx", ".xlsm", ".xls"}),
    "parquet": ("a Parquet file", {".parquet", ".pq"}),
    "gzip": ("gzip-compressed data", {".gz", ".gzip"}),
}
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive",
    b"\x7fELF": "a program",
}


@dataclass(frozen=True)
class ReadLimits:
    """Size limits enforced while reading; each one maps to a ``SISTACK_`` setting."""

    max_bytes: int = 2 * 1024**3
    max_columns: int = 2000
    max_cell_chars: int = 1_000_000
    max_xlsx_uncompressed_bytes: int = 4 * 1024**3
    max_xlsx_ratio: int = 200  # per zip entry: uncompressed/compressed, for entries > 1 MB
    # CSV (UTF-8) and Parquet files larger than this are scanned lazily instead of read whole.
    stream_above_bytes: int = 256 * 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        """Take the reading limits from the product settings."""
        return cls(
            max_bytes=settings.max_upload_bytes,
            max_columns=settings.max_columns,
            max_cell_chars=settings.max_cell_chars,
            max_xlsx_uncompressed_bytes=settings.max_xlsx_uncompressed_bytes,
            max_xlsx_ratio=settings.max_xlsx_ratio,
            stream_above_bytes=settings.stream_above_bytes,
        )


@dataclass(frozen=True)
class ReadWarning:
    """Something the reader did that the user should know about; the data was still read."""

    code: str
    message: str


@dataclass(frozen=True)
class TableSource:
    """A file too large to read whole: how to scan it lazily, and what a full pass counted.

    The scan yields what reading the file whole would (all-``String`` text columns, the same
    names, wholly empty rows removed), so every consumer gets the same rows either way.
    """

    path: Path
    kind: str  # "csv" or "parquet"
    delimiter: str | None
    columns: tuple[str, ...]
    rows: int  # data rows, wholly empty rows excluded
    null_counts: tuple[int, ...]
    empty_rows: int
    # A directory of Parquet part files (``io.parts``): the parts, in the order of their rows.
    parts: tuple[Path, ...] = ()

    def scan(self) -> pl.LazyFrame:
        if self.kind == "parquet":
            lazy = pl.scan_parquet(list(self.parts) or self.path)
        else:
            lazy = _scan_csv(self.path, self.delimiter or ",", list(self.columns))
        if self.empty_rows:
            lazy = lazy.filter(~pl.all_horizontal(pl.all().is_null()))
        return lazy


@dataclass(frozen=True)
class RawTable:
    """A file read as a table, before any typing or validation.

    ``source`` is set for a file scanned lazily (see ``ReadLimits.stream_above_bytes``): then
    ``frame`` holds only its first ``SAMPLE_ROWS`` rows, for mapping detection and previews.
    """

    frame: pl.DataFrame
    format: str
    delimiter: str | None
    encoding: str | None
    warnings: tuple[ReadWarning, ...]
    source: TableSource | None = None

    @property
    def height(self) -> int:
        """Data rows of the whole file."""
        return self.source.rows if self.source is not None else self.frame.height

    def data(self) -> pl.DataFrame | pl.LazyFrame:
        """All the rows: the frame, or a lazy scan of a file too large to read whole."""
        return self.source.scan() if self.source is not None else self.frame


def sniff_format(head: bytes) -> str:
    """Name the format of a file from its first bytes.

    Returns:
        ``"xlsx"``, ``"parquet"``, ``"ole2"`` (legacy .xls or an encrypted workbook), ``"gzip"``,
        ``"binary"`` (a known non-table format such as PNG or PDF) or ``"text"``.
    """
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "ole2"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return "binary" if _binary_kind(head) else "text"


def read_table(path: Path, *, limits: ReadLimits, filename: str | None = None) -> RawTable:
    """Read ``path`` as a table, choosing the reader by content.

    Args:
        path: The file on disk, or a directory of Parquet part files (``io.parts``).
        limits: Size limits, enforced before or while reading.
        filename: The user's original file name; only used to warn when the extension does
            not match the content.

    Raises:
        LimitExceeded: ``file_too_large``, ``too_many_columns``, ``cell_too_long`` or
            ``xlsx_too_large``.
        UnsupportedFormat: The content is not a table format we read.
        InputError: The file is a table format but cannot be used as given.
    """
    if Path(path).is_dir():  # a directory of Parquet part files, as Spark writes a table
        from sistack.io.parts import read_parts  # it builds on this module

        return read_parts(Path(path), limits=limits)
    return _read(Path(path), limits, filename, nested=False)


def _read(path: Path, limits: ReadLimits, filename: str | None, *, nested: bool) -> RawTable:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _limit("file_too_large", f"The file is {_size(size)}", _size(limits.max_bytes))
    if size == 0:
        raise InputError("The file is empty.", code="empty_file")
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    fmt = sniff_format(head)
    warnings = _extension_warnings(filename, fmt)
    if fmt == "ole2":
        raise UnsupportedFormat(
            "This is a legacy Excel .xls file or a password-protected workbook, which cannot be "
            "read. Save it as .xlsx or CSV without a password and upload it again."
        )
    if fmt == "binary" or (fmt == "gzip" and nested):
        found = _binary_kind(head) or "gzip data compressed twice"
        raise UnsupportedFormat(
            f"This looks like {found}, not a table. Upload a CSV, TSV, XLSX "
            "or Parquet file (gzip-compressed at most once)."
        )
    if fmt == "gzip":
        table = _read_gzip(path, limits, filename)
    elif fmt == "xlsx":
        table = _read_xlsx(path, limits)
    elif fmt == "parquet":
        table = _read_parquet(path, size, limits)
    else:
        table = _read_text(path, size, limits)
    return replace(table, warnings=(*warnings, *table.warnings))


def _read_gzip(path: Path, limits: ReadLimits, filename: str | None) -> RawTable:
    """Inflate into a temporary file, counting bytes, then read the content by its own magic."""
    inner_name = filename[:-3] if filename and filename.lower().endswith(".gz") else None
    with tempfile.TemporaryDirectory(prefix="sistack-gz-", ignore_cleanup_errors=True) as tmp:
        inner, total = Path(tmp) / "decompressed", 0
        try:
            with gzip.open(path, "rb") as src, inner.open("wb") as dst:
                while chunk := src.read(_MB):  # read(n) never inflates more than n bytes
                    total += len(chunk)
                    if total > limits.max_bytes:
                        found = f"The file decompresses to more than {_size(limits.max_bytes)}"
                        raise _limit("file_too_large", found, _size(limits.max_bytes))
                    dst.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise InputError(
                f"The gzip data is damaged and cannot be decompressed ({exc}).",
                code="malformed_gzip",
            ) from exc
        table = _read(inner, limits, inner_name, nested=True)
    note = ReadWarning("gzip_decompressed", "The file was gzip-compressed and was decompressed.")
    return replace(table, warnings=(note, *table.warnings))


# --- text (CSV/TSV) -------------------------------------------------------------------------


class _NotUtf8(Exception):
    """Polars met invalid UTF-8 after the sniffed head: decode the file in Python instead."""


def _read_text(path: Path, size: int, limits: ReadLimits) -> RawTable:
    """Hand valid UTF-8 straight to polars; decode anything else in Python first."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
        while b"\n" not in head and len(head) < min(size, _MAX_HEADER_BYTES):
            head += f.read(_HEAD_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = path.read_bytes().decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"The file starts like UTF-16 text but cannot be decoded ({exc}).",
                code="malformed_csv",
            ) from exc
        return _parse_csv(text.encode(), text, "utf-16", limits, [])
    _reject_nul(path)
    truncated = len(head) < size
    try:
        head_text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=not truncated)
        encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        return _parse_csv(path, head_text, encoding, limits, [], truncated=truncated)
    except (UnicodeDecodeError, _NotUtf8):
        data = path.read_bytes()
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; latin-1 maps them all
            text, encoding = data.decode("latin-1"), "latin-1"
        note = ReadWarning(
            "encoding_fallback",
            f"The file is not valid UTF-8 and was read as "
            f"{encoding}. Check accented letters, or save it as UTF-8.",
        )
        return _parse_csv(text.encode(), text, encoding, limits, [note])


def _reject_nul(path: Path) -> None:
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = mm.find(b"\x00")  # memchr over the mapped file: no copy, milliseconds per 100 MB
    if pos >= 0:
        raise InputError(
            f"The file contains a NUL byte (at byte {pos}), so it is not a text table. "
            "Export it again as CSV (UTF-8); UTF-16 text needs a byte-order mark.",
            code="binary_content",
        )


def _parse_csv(
    source: Path | bytes,
    head_text: str,
    encoding: str,
    limits: ReadLimits,
    warnings: list[ReadWarning],
    *,
    truncated: bool | None = None,
) -> RawTable:
    """Check the header from ``head_text``, then let polars read ``source`` as all-String."""
    if truncated is None:  # the whole text was given: sniff on its head
        head_text, truncated = head_text[:_HEAD_BYTES], len(head_text) > _HEAD_BYTES
    if not head_text.strip() and not truncated:
        raise InputError("The file is empty (it holds only blank space).", code="empty_file")
    delimiter, header = _sniff_delimiter(head_text, truncated)
    if not header:
        raise InputError(
            "The first line is empty; it must hold the column names.", code="malformed_csv"
        )
    _check_column_count(len(header), limits)
    names = _clean_names(header, warnings)
    if isinstance(source, Path) and source.stat().st_size > limits.stream_above_bytes:
        try:
            return _stream(_scan_csv(source, delimiter, names), source, "csv", delimiter,
                           encoding, limits, warnings)  # fmt: skip
        except _POLARS_ERRORS as exc:
            raise _csv_error(exc, source, delimiter, names) from exc
    try:
        frame = pl.read_csv(
            source,
            separator=delimiter,
            infer_schema=False,
            has_header=True,
            quote_char='"',
            null_values=[""],
            truncate_ragged_lines=False,
        )
    except _POLARS_ERRORS as exc:
        raise _csv_error(exc, source, delimiter, names) from exc
    if frame.width != len(names):
        raise InputError(
            f"The header has {len(names)} columns but polars read {frame.width}; "
            "check the quoting of the first line.",
            code="malformed_csv",
        )
    frame.columns = names
    return _finish(frame, "csv", delimiter, encoding, limits, warnings)


def _scan_csv(path: Path, delimiter: str, names: list[str]) -> pl.LazyFrame:
    """The lazy twin of the ``read_csv`` call above: same options, the cleaned names."""
    return pl.scan_csv(
        path,
        separator=delimiter,
        infer_schema=False,
        has_header=True,
        quote_char='"',
        null_values=[""],
        truncate_ragged_lines=False,
        new_columns=names,
    )


def _csv_error(exc: Exception, source: Path | bytes, delimiter: str, names: list[str]) -> Exception:
    """What a polars parse failure means for the user (or ``_NotUtf8``: decode in Python)."""
    reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    if "utf-8" in reason.lower() and isinstance(source, Path):
        return _NotUtf8()
    lines = _ragged_lines(source, delimiter, len(names)) if "more fields" in reason else []
    if lines:
        return InputError(
            f"Some lines have more fields than the header's {len(names)} "
            f"columns (file {row_examples(lines)}). Check the delimiter and "
            "quoting on those lines.",
            code="ragged_rows",
            details={"lines": lines[:100]},
        )
    return InputError(
        f"The file could not be parsed as CSV: {reason}. Check that quotes are "
        "balanced and that fields containing the delimiter are quoted.",
        code="malformed_csv",
    )


def _stream(
    lazy: pl.LazyFrame,
    path: Path,
    kind: str,
    delimiter: str | None,
    encoding: str | None,
    limits: ReadLimits,
    warnings: list[ReadWarning],
) -> RawTable:
    """Register a large file from one streaming pass (rows, empty rows, nulls, cell lengths)
    and a sample of its first rows; what ``_finish`` checks on a frame, checked on the scan."""
    schema = lazy.collect_schema()
    names = list(schema.names())
    if not names:
        raise InputError("The file holds no columns.", code="empty_file")
    texts = [n for n, t in schema.items() if t == pl.String]
    empty = pl.all_horizontal(pl.all().is_null())
    stats = (
        lazy.select(
            pl.len().alias("#rows"),
            empty.sum().alias("#empty"),
            *(pl.col(n).null_count().alias(f"null#{n}") for n in names),
            *(pl.col(n).str.len_bytes().max().alias(f"bytes#{n}") for n in texts),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    empty_rows = int(stats["#empty"])
    rows = int(stats["#rows"]) - empty_rows
    if empty_rows:
        note = f"{empty_rows} wholly empty row(s) were skipped."
        warnings.append(ReadWarning("empty_rows_skipped", note))
    if rows == 0:
        raise InputError("The file has column names but no data rows.", code="no_data_rows")
    cap = limits.max_cell_chars
    for name in texts:
        nbytes = stats[f"bytes#{name}"]
        if nbytes is not None and nbytes > cap:
            chars = lazy.select(pl.col(name).str.len_chars().max()).collect(engine="streaming")
            if (found := chars.item()) is not None and found > cap:
                message = f"A value in column '{name}' is {found:,} characters long"
                raise _limit("cell_too_long", message, f"{cap:,} characters")
    source = TableSource(
        path=path,
        kind=kind,
        delimiter=delimiter,
        columns=tuple(names),
        rows=rows,
        null_counts=tuple(int(stats[f"null#{n}"]) - empty_rows for n in names),
        empty_rows=empty_rows,
    )
    sample = source.scan().head(SAMPLE_ROWS).collect(engine="streaming")
    return RawTable(sample, kind, delimiter, encoding, tuple(warnings), source)


def _sniff_delimiter(head_text: str, truncated: bool) -> tuple[str, list[str]]:
    """Pick the delimiter whose header has >1 field and that most lines agree with.

    Ties go to the wider header, then to the order of ``_DELIMITERS``. Returns the delimiter and
    the header fields as the csv module parsed them (quotes respected).
    """
    best: tuple[int, int, int] | None = None
    choice: tuple[str, list[str]] = (",", [])
    for rank, delim in enumerate(_DELIMITERS):
        records: list[list[str]] = []
        try:
            rows = csv.reader(io.StringIO(head_text), delimiter=delim, quotechar='"')
            records.extend(itertools.islice(rows, _SNIFF_LINES + 1))
        except csv.Error:
            pass  # a huge or broken field: judge on the records read so far
        if truncated and len(records) > 1:
            records.pop()  # the last record may be cut off at the end of the head
        if records:
            width = len(records[0])
            agree = sum(len(r) == width for r in records[1:]) if width > 1 else -1
            if best is None or (agree, width, -rank) > best:
                best, choice = (agree, width, -rank), (delim, records[0])
    return choice


def _clean_names(header: list[str], warnings: list[ReadWarning]) -> list[str]:
    """Strip names, name empty ones ``column_<n>`` (warned) and refuse duplicates."""
    names = [h.strip() or f"column_{i}" for i, h in enumerate(header, start=1)]
    unnamed = [i for i, h in enumerate(header, start=1) if not h.strip()]
    if unnamed:
        warnings.append(
            ReadWarning(
                "empty_column_names",
                f"{len(unnamed)} column(s) had no name "
                f"and were named column_<position>: positions {unnamed[:20]}.",
            )
        )
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    dupes = {n: p for n, p in positions.items() if len(p) > 1}
    if dupes:
        listed = "; ".join(f"'{n}' at positions {', '.join(map(str, p))}" for n, p in dupes.items())
        raise InputError(
            f"Column names must be unique: {listed}. Rename the columns and retry.",
            code="duplicate_columns",
            details={"duplicates": dupes},
        )
    return names


def _ragged_lines(source: Path | bytes, delimiter: str, width: int) -> list[int]:
    """1-based file lines starting a record with more fields than the header (failure path)."""
    if isinstance(source, Path):
        stream = source.open(encoding="utf-8-sig", errors="replace", newline="")
    else:
        stream = io.TextIOWrapper(io.BytesIO(source), encoding="utf-8", newline="")
    found: list[int] = []
    with stream:
        reader, start = csv.reader(stream, delimiter=delimiter, quotechar='"'), 1
        try:
            for record in reader:
                if len(record) > width:
                    found.append(start)
                start = reader.line_num + 1  # a quoted field may span several lines
        except csv.Error:
            pass  # report what was found before the broken part
    return found


# --- xlsx -----------------------------------------------------------------------------------


def _read_xlsx(path: Path, limits: ReadLimits) -> RawTable:
    """Read the first worksheet; its first non-empty row is the header."""
    warnings = []
    if _check_workbook_zip(path, limits):
        warnings.append(
            ReadWarning(
                "macros_ignored",
                "The workbook contains macros; only its "
                "data was read and the macros were never run.",
            )
        )
    try:
        # from_filelike detects the format by content; from_path trusts the extension (.xls).
        with path.open("rb") as handle, CalamineWorkbook.from_filelike(handle) as book:
            rows = book.get_sheet_by_index(0).iter_rows()
            header: list[Any] = next((r for r in rows if any(v != "" for v in r)), [])
            header = header[: _last_filled(header)]
            if not header:
                raise InputError("The first worksheet is empty.", code="empty_file")
            _check_column_count(len(header), limits)
            body = [[_cell_text(v) for v in r] for r in rows]
    except CalamineError as exc:
        raise InputError(f"The workbook could not be read: {exc}.", code="malformed_xlsx") from exc
    width = max([len(header), *(_last_filled(r) for r in body)])  # data right of the header
    _check_column_count(width, limits)
    header_text = [_cell_text(v) or "" for v in header] + [""] * (width - len(header))
    names = _clean_names(header_text, warnings)
    series = [
        pl.Series(n, [r[i] if i < len(r) else None for r in body], dtype=pl.String)
        for i, n in enumerate(names)
    ]
    return _finish(pl.DataFrame(series), "xlsx", None, None, limits, warnings)


def _check_workbook_zip(path: Path, limits: ReadLimits) -> bool:
    """Refuse zip bombs, DTDs and non-workbooks before inflating; return True if macros exist."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)  # declared sizes, read from the directory
            big = [i.file_size / max(i.compress_size, 1) for i in infos if i.file_size > _MB]
            ratio = max(big, default=0.0)
            if total > limits.max_xlsx_uncompressed_bytes or ratio > limits.max_xlsx_ratio:
                raise LimitExceeded(
                    f"The workbook expands to {_size(total)} (compression ratio up to "
                    f"{ratio:.0f}:1); the limits are {_size(limits.max_xlsx_uncompressed_bytes)} "
                    f"and {limits.max_xlsx_ratio}:1. This looks like a zip bomb; if it is not, "
                    "raise SISTACK_MAX_XLSX_UNCOMPRESSED_BYTES or SISTACK_MAX_XLSX_RATIO.",
                    code="xlsx_too_large",
                )
            names = {i.filename for i in infos}
            if "xl/workbook.xml" not in names:
                raise UnsupportedFormat(
                    "This is a zip archive but not an Excel workbook. "
                    "Upload an .xlsx, CSV or Parquet file."
                )
            for info in infos:
                if info.filename.lower().endswith((".xml", ".rels")):
                    with zf.open(info) as part:
                        unsafe = _declares_dtd(part)
                    if unsafe:
                        raise InputError(
                            f"The workbook part {info.filename} declares a DTD or "
                            "entities, which are not allowed for safety. Re-save "
                            "the file from Excel.",
                            code="unsafe_xlsx",
                        )
            return "xl/vbaProject.bin" in names
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError) as exc:
        raise InputError(
            f"The workbook is damaged and cannot be opened ({exc}).", code="malformed_xlsx"
        ) from exc


def _declares_dtd(part: IO[bytes]) -> bool:
    """True when an XML part declares a DTD (so entities) before its root element.

    A DTD may only stand in the prolog, but comments and processing instructions may precede it
    in any number, so the prolog is walked up to the root element instead of sniffing the first
    bytes. NULs are removed, so UTF-16 markup reads as ASCII. A prolog longer than
    ``_MAX_PROLOG_BYTES`` is refused too: no spreadsheet program writes one.
    """
    data = b""
    while True:
        chunk = part.read(_HEAD_BYTES)
        data += chunk.replace(b"\x00", b"")
        verdict = _prolog_verdict(data, complete=not chunk)
        if verdict is not None:
            return verdict
        if len(data) > _MAX_PROLOG_BYTES:
            return True


def _prolog_verdict(data: bytes, *, complete: bool) -> bool | None:
    """True: a declaration comes before the root; False: it does not; None: read more."""
    pos = next((len(bom) for bom in _BOMS if data.startswith(bom)), 0)
    while True:
        while data[pos : pos + 1] in (b" ", b"\t", b"\r", b"\n"):
            pos += 1
        rest = data[pos:]
        if len(rest) < 4 and not complete:
            return None
        if rest.startswith((b"<?", b"<!--")):
            close = b"?>" if rest.startswith(b"<?") else b"-->"
            end = rest.find(close, 2 if close == b"?>" else 4)
            if end < 0:
                return None if not complete else False  # unterminated: not well-formed XML
            pos += end + len(close)
            continue
        return rest.startswith(b"<!")  # <!DOCTYPE, <!ENTITY...; else the root or not XML


def _cell_text(value: Any) -> str | None:
    """Spreadsheet cell -> text: 5.0 -> "5", dates in ISO 8601, booleans lower-case."""
    if value == "" or value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _last_filled(row: list[Any]) -> int:
    """Width of ``row`` without its trailing empty cells."""
    return next((i + 1 for i in range(len(row) - 1, -1, -1) if row[i] not in ("", None)), 0)


# --- parquet --------------------------------------------------------------------------------


def _read_parquet(path: Path, size: int, limits: ReadLimits) -> RawTable:
    """Check both magics and the schema width, then read with the stored dtypes."""
    with path.open("rb") as f:
        f.seek(max(size - 4, 0))
        tail = f.read(4)
    try:
        if size < 12 or tail != b"PAR1":
            raise ValueError("the footer is missing; the file may be truncated")
        with pq.ParquetFile(path) as meta:
            _check_column_count(len(meta.schema_arrow), limits)
            info = meta.metadata
            # Compressed columns: what decides memory is their uncompressed size.
            inflated = sum(info.row_group(i).total_byte_size for i in range(info.num_row_groups))
        if max(size, inflated) > limits.stream_above_bytes:
            return _stream(pl.scan_parquet(path), path, "parquet", None, None, limits, [])
        frame = pl.read_parquet(path)
    except (pa.ArrowException, *_POLARS_ERRORS, OSError, ValueError) as exc:
        raise InputError(
            f"The Parquet file is damaged and cannot be read ({exc}).", code="corrupt_parquet"
        ) from exc
    return _finish(frame, "parquet", None, None, limits, [])


# --- shared ---------------------------------------------------------------------------------


def _finish(
    frame: pl.DataFrame,
    fmt: str,
    delimiter: str | None,
    encoding: str | None,
    limits: ReadLimits,
    warnings: list[ReadWarning],
) -> RawTable:
    """Drop wholly empty rows (blank lines; warned), then require data and check cell lengths."""
    if frame.width == 0:
        raise InputError("The file holds no columns.", code="empty_file")
    if frame.height and all(frame.null_count().row(0)):  # else no row can be all-null
        keep = ~pl.all_horizontal(pl.all().is_null())
        empty = frame.height - frame.select(keep.sum()).item()
        if empty:
            frame = frame.filter(keep)
            note = f"{empty} wholly empty row(s) were skipped."
            warnings.append(ReadWarning("empty_rows_skipped", note))
    if frame.height == 0:
        raise InputError("The file has column names but no data rows.", code="no_data_rows")
    _check_cell_lengths(frame, limits)
    return RawTable(frame, fmt, delimiter, encoding, tuple(warnings))


def _check_cell_lengths(frame: pl.DataFrame, limits: ReadLimits) -> None:
    cap, texts = limits.max_cell_chars, frame.select(pl.col(pl.String))
    # Byte length is O(1) per cell and bounds the character count: count only the suspects.
    byte_max = texts.select(pl.all().str.len_bytes().max()).row(0) if texts.width else ()
    for name, nbytes in zip(texts.columns, byte_max, strict=True):
        chars = texts[name].str.len_chars().max() if nbytes is not None and nbytes > cap else 0
        if isinstance(chars, int) and chars > cap:
            found = f"A value in column '{name}' is {chars:,} characters long"
            raise _limit("cell_too_long", found, f"{cap:,} characters")


def _check_column_count(count: int, limits: ReadLimits) -> None:
    if count > limits.max_columns:
        limit = f"{limits.max_columns:,}"
        raise _limit("too_many_columns", f"The file has {count:,} columns", limit)


_SETTINGS = {
    "file_too_large": "SISTACK_MAX_UPLOAD_BYTES",
    "too_many_columns": "SISTACK_MAX_COLUMNS",
    "cell_too_long": "SISTACK_MAX_CELL_CHARS",
}


def _limit(code: str, found: str, limit: str) -> LimitExceeded:
    setting = _SETTINGS[code]
    return LimitExceeded(
        f"{found}; the limit is {limit}. Raise it with {setting} if needed.",
        code=code,
        details={"limit": limit, "setting": setting},
    )


def _extension_warnings(filename: str | None, fmt: str) -> list[ReadWarning]:
    ext = Path(filename).suffix.lower() if filename else ""
    known = set().union(*(exts for _, exts in _FORMATS.values()))
    if fmt not in _FORMATS or ext not in known or ext in _FORMATS[fmt][1]:
        return []
    message = f"'{filename}' is named like a {ext} file but holds {_FORMATS[fmt][0]}; read as such."
    return [ReadWarning("extension_mismatch", message)]


def _binary_kind(head: bytes) -> str | None:
    return next((kind for magic, kind in _BINARY_MAGIC.items() if head.startswith(magic)), None)


def _size(n: int) -> str:
    """Human-readable size: ``"124 bytes"``, ``"2.0 GB"``."""
    if n < 1024:
        return f"{n:,} bytes"
    value, unit = n / 1024, "KB"
    for bigger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
