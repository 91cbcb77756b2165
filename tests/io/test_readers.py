"""Tests for ``sistack.io.readers``: every file is built here, in ``tmp_path``."""

from __future__ import annotations

import datetime as dt
import gzip
import zipfile
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from polars.testing import assert_frame_equal

from sistack.config import Settings
from sistack.errors import InputError, LimitExceeded, UnsupportedFormat
from sistack.io.readers import RawTable, ReadLimits, read_table, sniff_format

LIMITS = ReadLimits()


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _read(tmp_path: Path, name: str, content: bytes, limits: ReadLimits = LIMITS) -> RawTable:
    return read_table(_write(tmp_path, name, content), limits=limits, filename=name)


def _codes(table: RawTable) -> list[str]:
    return [w.code for w in table.warnings]


def _xlsx(path: Path, rows: list[list[object]], *, start_row: int = 0) -> Path:
    """Write rows to the first sheet; datetimes get a date-time number format."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    date_fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp_fmt = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for r, row in enumerate(rows, start=start_row):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, stamp_fmt)
            elif isinstance(value, dt.date):
                sheet.write_datetime(r, c, value, date_fmt)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    return path


def _rewrite_zip(src: Path, dst: Path, edit: dict[str, bytes | None]) -> Path:
    """Copy a zip, replacing (bytes), adding (new name) or keeping (None) entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = edit.get(info.filename)
            zout.writestr(info.filename, zin.read(info) if data is None else data)
        for name, data in edit.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)
    return dst


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"PK\x03\x04\x14\x00", "xlsx"),
        (b"PAR1\x15\x04", "parquet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x89PNG\r\n\x1a\n", "binary"),
        (b"%PDF-1.7\n", "binary"),
        (b"id,name\n1,Ann\n", "text"),
        (b"\xff\xfei\x00d\x00", "text"),
    ],
)
def test_sniff_format_by_magic_bytes(head: bytes, expected: str) -> None:
    assert sniff_format(head) == expected


def test_limits_come_from_settings() -> None:
    settings = Settings(max_upload_bytes=10, max_columns=3, max_cell_chars=7, max_xlsx_ratio=9)
    limits = ReadLimits.from_settings(settings)
    assert (limits.max_bytes, limits.max_columns, limits.max_cell_chars) == (10, 3, 7)
    assert limits.max_xlsx_ratio == 9
    assert limits.max_xlsx_uncompressed_bytes == 4 * 1024**3


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "delimiter", "encoding", "rows"),
    [
        ("comma.csv", b"id,name\n1,Ann\n2,Bob\n", ",", "utf-8", [("1", "Ann"), ("2", "Bob")]),
        ("semi.csv", b"id;amount\n1;3,50\n2;4,00\n", ";", "utf-8", [("1", "3,50"), ("2", "4,00")]),
        ("tab.csv", b"ID\tIncome\n1\t58138\n2\t\n", "\t", "utf-8", [("1", "58138"), ("2", None)]),
        ("pipe.txt", b"a|b\n1|x, y\n", "|", "utf-8", [("1", "x, y")]),
        ("crlf.csv", b"a,b\r\n1,2\r\n", ",", "utf-8", [("1", "2")]),
        (
            "quoted.csv",
            b'a,b\n1,"x, y"\n2,"say ""hi"""\n',
            ",",
            "utf-8",
            [("1", "x, y"), ("2", 'say "hi"')],
        ),
        ("empty_quoted.csv", b'a,b\n1,""\n2,\n', ",", "utf-8", [("1", None), ("2", None)]),
        ("bom.csv", b"\xef\xbb\xbfa,b\n1,2\n", ",", "utf-8-sig", [("1", "2")]),
        ("short.csv", b"a,b,c\n1,2\n3,4,5\n", ",", "utf-8", [("1", "2", None), ("3", "4", "5")]),
    ],
)
def test_delimited_text(
    tmp_path: Path, name: str, content: bytes, delimiter: str, encoding: str, rows: list[tuple]
) -> None:
    table = _read(tmp_path, name, content)
    assert (table.format, table.delimiter, table.encoding) == ("csv", delimiter, encoding)
    assert table.frame.rows() == rows
    assert set(table.frame.schema.values()) == {pl.String}
    assert table.warnings == ()


def test_column_names_are_stripped_and_empty_ones_named(tmp_path: Path) -> None:
    table = _read(tmp_path, "names.csv", b" id ,, Income \n1,x,5\n")
    assert table.frame.columns == ["id", "column_2", "Income"]
    assert _codes(table) == ["empty_column_names"]


@pytest.mark.parametrize(
    ("content", "encoding", "warnings"),
    [
        ("name,city\nMüller,café\n".encode("latin-1"), "cp1252", ["encoding_fallback"]),
        (
            "name,city\nMüller,café\n".encode("cp1252") + b"\x81x,y\n",
            "latin-1",
            ["encoding_fallback"],
        ),
        ("name,city\nMüller,café\n".encode("utf-16"), "utf-16", []),
        (b"\xfe\xff" + "name,city\nMüller,café\n".encode("utf-16-be"), "utf-16", []),
        # The invalid byte is past the sniffed head: polars finds it and the reader falls back.
        (
            b"name,city\n" + b"x,y\n" * 20_000 + "Müller,café\n".encode("cp1252"),
            "cp1252",
            ["encoding_fallback"],
        ),
    ],
)
def test_encodings_are_decoded_never_garbled(
    tmp_path: Path, content: bytes, encoding: str, warnings: list[str]
) -> None:
    table = _read(tmp_path, "people.csv", content)
    assert table.encoding == encoding
    assert _codes(table) == warnings
    assert table.frame.columns == ["name", "city"]
    assert ("Müller", "café") in table.frame.rows()


@pytest.mark.parametrize(
    ("content", "code", "fragments"),
    [
        (b"a,b\n1,\x002\n", "binary_content", ["NUL byte (at byte 6)"]),
        (b"", "empty_file", ["empty"]),
        (b"  \n\t\n \r\n", "empty_file", ["blank"]),
        (b"\xef\xbb\xbf", "empty_file", ["empty"]),
        (b"a,b\n", "no_data_rows", ["no data rows"]),
        (b"a,b\n\n\n", "no_data_rows", ["no data rows"]),
        (b"a,b,a\n1,2,3\n", "duplicate_columns", ["'a' at positions 1, 3"]),
        (b"a , b,a\n1,2,3\n", "duplicate_columns", ["'a' at positions 1, 3"]),
        (b"a,b\n1,2\n3,4,5\n6,7\n8,9,10,11\n", "ragged_rows", ["rows 3, 5", "2 columns"]),
        (b'a,b\n1,"x\n2,3\n', "malformed_csv", ["quotes"]),
        (b'a,b\n1,2\n3,"4\n', "malformed_csv", ["quotes"]),
        (b'a,b\n"1"x,2\n', "malformed_csv", ["could not parse"]),
        (b"\na,b\n1,2\n", "malformed_csv", ["first line is empty"]),
    ],
)
def test_text_input_errors(tmp_path: Path, content: bytes, code: str, fragments: list[str]) -> None:
    with pytest.raises(InputError) as err:
        _read(tmp_path, "bad.csv", content)
    assert err.value.code == code
    for fragment in fragments:
        assert fragment in err.value.message


def test_ragged_rows_reports_file_lines_after_multiline_field(tmp_path: Path) -> None:
    content = b'a,b\n1,"two\nlines"\n3,4,5\n'
    with pytest.raises(InputError) as err:
        _read(tmp_path, "bad.csv", content)
    assert err.value.code == "ragged_rows"
    assert err.value.details["lines"] == [4]


def test_utf8_character_across_the_sniffed_head_is_not_a_fallback(tmp_path: Path) -> None:
    prefix = b"name,city\n" + b"x" * (64 * 1024 - 12) + b","  # "é" straddles the 64 KB head
    table = _read(tmp_path, "edge.csv", prefix + "é\nMüller,café\n".encode())
    assert (table.encoding, table.warnings) == ("utf-8", ())
    assert table.frame["city"].to_list() == ["é", "café"]


def test_header_longer_than_the_sniffed_head(tmp_path: Path) -> None:
    names = [f"a_rather_long_column_name_{i:05d}" for i in range(3000)]  # ~100 KB header line
    content = (",".join(names) + "\n" + ",".join("1" * 3000) + "\n").encode()
    table = _read(tmp_path, "wide.csv", content, ReadLimits(max_columns=3000))
    assert table.frame.shape == (1, 3000)
    assert table.frame.columns[-1] == "a_rather_long_column_name_02999"


def test_blank_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    table = _read(tmp_path, "gaps.csv", b"a,b\n1,2\n\n3,4\n,\n")
    assert table.frame.rows() == [("1", "2"), ("3", "4")]
    assert _codes(table) == ["empty_rows_skipped"]
    assert "2 wholly empty" in table.warnings[0].message


# --- gzip -------------------------------------------------------------------------------------


def test_gzip_csv_is_decompressed(tmp_path: Path) -> None:
    table = _read(tmp_path, "data.csv.gz", gzip.compress(b"id;name\n1;Ann\n2;Bob\n"))
    assert (table.format, table.delimiter) == ("csv", ";")
    assert table.frame.rows() == [("1", "Ann"), ("2", "Bob")]
    assert _codes(table) == ["gzip_decompressed"]


def test_gzip_decompressed_size_is_limited_while_inflating(tmp_path: Path) -> None:
    content = gzip.compress(b"a,b\n" + b"1,2\n" * 100_000)  # 400 KB inflated, ~1 KB on disk
    with pytest.raises(LimitExceeded) as err:
        _read(tmp_path, "data.csv.gz", content, ReadLimits(max_bytes=50_000))
    assert err.value.code == "file_too_large"
    assert "SISTACK_MAX_UPLOAD_BYTES" in err.value.message


def test_damaged_gzip(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        _read(tmp_path, "data.csv.gz", gzip.compress(b"a,b\n1,2\n" * 1000)[:30])
    assert err.value.code == "malformed_gzip"


# --- xlsx -------------------------------------------------------------------------------------


def test_xlsx_cells_become_text(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["ID", " Income ", "Dt_Customer", "Seen", "Flag", "Ratio", "Note"],
        [5, 58138.0, dt.date(2014, 3, 5), dt.datetime(2014, 3, 5, 10, 11, 12), True, 0.1, "x"],
        [6, None, dt.datetime(2013, 1, 2), None, False, 2.5, ""],
        [None] * 7,
        [7, 3.0, None, None, None, None, "y"],
    ]
    path = _xlsx(tmp_path / "people.xlsx", rows, start_row=2)
    table = read_table(path, limits=LIMITS, filename="people.xlsx")
    assert (table.format, table.delimiter, table.encoding) == ("xlsx", None, None)
    assert table.frame.columns == ["ID", "Income", "Dt_Customer", "Seen", "Flag", "Ratio", "Note"]
    assert set(table.frame.schema.values()) == {pl.String}
    assert table.frame.rows() == [
        ("5", "58138", "2014-03-05", "2014-03-05T10:11:12", "true", "0.1", "x"),
        ("6", None, "2013-01-02", None, "false", "2.5", None),
        ("7", "3", None, None, None, None, "y"),
    ]
    assert _codes(table) == ["empty_rows_skipped"]


@pytest.mark.parametrize(
    ("name", "warnings"),
    [("data.xlsx", []), ("data.csv", ["extension_mismatch"]), ("data.xls", [])],
)
def test_xlsx_is_recognised_by_content(tmp_path: Path, name: str, warnings: list[str]) -> None:
    path = _xlsx(tmp_path / name, [["a", "b"], [1, "x"]])
    table = read_table(path, limits=LIMITS, filename=name)
    assert table.format == "xlsx"
    assert table.frame.rows() == [("1", "x")]
    assert _codes(table) == warnings


def test_xlsx_macros_are_ignored(tmp_path: Path) -> None:
    plain = _xlsx(tmp_path / "plain.xlsx", [["a"], [1]])
    macro = _rewrite_zip(plain, tmp_path / "macro.xlsm", {"xl/vbaProject.bin": b"\x00" * 64})
    table = read_table(macro, limits=LIMITS, filename="macro.xlsm")
    assert table.frame.rows() == [("1",)]
    assert _codes(table) == ["macros_ignored"]


@pytest.mark.parametrize("declaration", [b'<!DOCTYPE x [<!ENTITY e "boom">]>', b"<!ENTITY e 'x'>"])
def test_xlsx_with_dtd_is_refused(tmp_path: Path, declaration: bytes) -> None:
    plain = _xlsx(tmp_path / "plain.xlsx", [["a"], [1]])
    with zipfile.ZipFile(plain) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    end_of_decl = sheet.index(b"?>") + 2
    poisoned = sheet[:end_of_decl] + declaration + sheet[end_of_decl:]
    path = _rewrite_zip(plain, tmp_path / "dtd.xlsx", {"xl/worksheets/sheet1.xml": poisoned})
    with pytest.raises(InputError) as err:
        read_table(path, limits=LIMITS)
    assert err.value.code == "unsafe_xlsx"
    assert "xl/worksheets/sheet1.xml" in err.value.message


@pytest.mark.parametrize(
    "limits",
    [
        ReadLimits(),  # per-entry ratio ~1000:1 > 200:1
        ReadLimits(max_xlsx_uncompressed_bytes=10 * 1024**2, max_xlsx_ratio=10**9),  # total
    ],
)
def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, limits: ReadLimits) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", b"<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * (50 * 1024**2))
    assert path.stat().st_size < 200_000
    with pytest.raises(LimitExceeded) as err:
        read_table(path, limits=limits)
    assert err.value.code == "xlsx_too_large"
    assert "zip bomb" in err.value.message


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFormat) as err:
        read_table(path, limits=LIMITS)
    assert err.value.code == "unsupported_format"
    assert "not an Excel workbook" in err.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "legacy Excel .xls"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
    ],
)
def test_unsupported_binary_formats(tmp_path: Path, content: bytes, fragment: str) -> None:
    with pytest.raises(UnsupportedFormat) as err:
        _read(tmp_path, "upload.csv", content)
    assert err.value.code == "unsupported_format"
    assert fragment in err.value.message


# --- parquet ----------------------------------------------------------------------------------


def _parquet_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2],
            "income": [58138.5, None],
            "name": ["Ann", "Bob"],
            "since": [dt.date(2012, 9, 4), dt.date(2014, 3, 8)],
            "response": [True, False],
        }
    )


def test_parquet_keeps_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    _parquet_frame().write_parquet(path)
    table = read_table(path, limits=LIMITS, filename="customers.parquet")
    assert (table.format, table.delimiter, table.encoding) == ("parquet", None, None)
    assert table.frame.schema == _parquet_frame().schema
    assert table.frame.rows() == _parquet_frame().rows()


@pytest.mark.parametrize("damage", ["truncate", "footer"])
def test_corrupt_parquet(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "customers.parquet"
    _parquet_frame().write_parquet(path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-10]
    else:  # keep both magics, scramble the footer metadata before its length field
        data[-40:-8] = b"\xff" * 32
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        read_table(path, limits=LIMITS)
    assert err.value.code == "corrupt_parquet"


# --- limits -----------------------------------------------------------------------------------


def _wide_csv(tmp_path: Path) -> Path:
    header = ",".join(f"c{i}" for i in range(11))
    # The body is broken on purpose: the column limit must trip before the body is parsed.
    return _write(tmp_path, "wide.csv", f'{header}\n"unbalanced,1\n'.encode())


def _wide_xlsx(tmp_path: Path) -> Path:
    return _xlsx(tmp_path / "wide.xlsx", [[f"c{i}" for i in range(11)], list(range(11))])


def _wide_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "wide.parquet"
    pl.DataFrame({f"c{i}": [i] for i in range(11)}).write_parquet(path)
    return path


@pytest.mark.parametrize("make", [_wide_csv, _wide_xlsx, _wide_parquet])
def test_too_many_columns(tmp_path: Path, make) -> None:
    with pytest.raises(LimitExceeded) as err:
        read_table(make(tmp_path), limits=ReadLimits(max_columns=10))
    assert err.value.code == "too_many_columns"
    assert "11 columns" in err.value.message and "limit is 10" in err.value.message
    assert "SISTACK_MAX_COLUMNS" in err.value.message


def test_file_too_large(tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded) as err:
        _read(tmp_path, "big.csv", b"a,b\n" + b"1,2\n" * 30, ReadLimits(max_bytes=100))
    assert err.value.code == "file_too_large"
    assert "124 bytes" in err.value.message and "100 bytes" in err.value.message
    assert "SISTACK_MAX_UPLOAD_BYTES" in err.value.message


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("long.csv", lambda p: _write(p, "long.csv", f"id,Note\n1,{'é' * 51}\n".encode())),
        ("long.xlsx", lambda p: _xlsx(p / "long.xlsx", [["id", "Note"], [1, "x" * 51]])),
    ],
)
def test_cell_too_long(tmp_path: Path, name: str, make) -> None:
    with pytest.raises(LimitExceeded) as err:
        read_table(make(tmp_path), limits=ReadLimits(max_cell_chars=50), filename=name)
    assert err.value.code == "cell_too_long"
    assert "column 'Note'" in err.value.message and "51 characters" in err.value.message
    assert "SISTACK_MAX_CELL_CHARS" in err.value.message


def test_cell_at_the_limit_in_bytes_but_not_chars_is_accepted(tmp_path: Path) -> None:
    table = _read(
        tmp_path, "ok.csv", f"id,Note\n1,{'é' * 50}\n".encode(), ReadLimits(max_cell_chars=50)
    )
    assert table.frame["Note"].to_list() == ["é" * 50]


# --- streaming: files above ``stream_above_bytes`` are scanned lazily, with the same result ---

STREAM = replace(LIMITS, stream_above_bytes=0)
READABLE = {
    "plain": b"id,amount,city\n1,10.5,Paris\n2,,Lyon\n3,7,\n",
    "bom_and_tabs": b"\xef\xbb\xbfid\tamount\n1\t2\n2\t3\n",
    "blank_and_empty_rows": b"a,b\n1,2\n\n3,4\n,\n5,\n",
    "quoted_multiline": b'a,b\n1,"two\nlines"\n3,"x, y"\n',
    "semicolons": "name;city\nMüller;Köln\nDupont;Nîmes\n".encode(),
    "empty_names": b"a,,c\n1,2,3\n",
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_streamed_text_reads_like_the_whole_file(tmp_path: Path, name: str) -> None:
    whole = _read(tmp_path, "whole.csv", READABLE[name])
    streamed = _read(tmp_path, "streamed.csv", READABLE[name], STREAM)
    assert whole.source is None and streamed.source is not None
    assert_frame_equal(streamed.source.scan().collect(), whole.frame)
    assert_frame_equal(streamed.frame, whole.frame)  # the sample holds every row here
    assert streamed.height == whole.height
    assert streamed.source.null_counts == tuple(whole.frame.null_count().row(0))
    assert (streamed.warnings, streamed.delimiter, streamed.encoding) == (
        whole.warnings,
        whole.delimiter,
        whole.encoding,
    )


@pytest.mark.parametrize(
    ("content", "limits", "code"),
    [
        (b"a,b\n1,2\n3,4,5\n6,7\n", STREAM, "ragged_rows"),
        (b'a,b\n1,"x\n2,3\n', STREAM, "malformed_csv"),
        (b"a,b\n\n\n", STREAM, "no_data_rows"),
        (b"a,b\n1,abcdefghijk\n", replace(STREAM, max_cell_chars=10), "cell_too_long"),
        (
            b"a,b\n1,\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n",
            replace(STREAM, max_cell_chars=3),
            "cell_too_long",
        ),
    ],
)
def test_streamed_text_enforces_the_same_limits_and_errors(
    tmp_path: Path, content: bytes, limits: ReadLimits, code: str
) -> None:
    with pytest.raises(InputError) as whole:
        _read(
            tmp_path,
            "whole.csv",
            content,
            replace(limits, stream_above_bytes=LIMITS.stream_above_bytes),
        )
    with pytest.raises(InputError) as streamed:
        _read(tmp_path, "streamed.csv", content, limits)
    assert streamed.value.code == whole.value.code == code
    assert streamed.value.message == whole.value.message
    assert streamed.value.details == whole.value.details


def test_streamed_limit_on_bytes_is_checked_before_scanning(tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded) as err:
        _read(tmp_path, "big.csv", b"a,b\n1,2\n", replace(STREAM, max_bytes=4))
    assert err.value.code == "file_too_large"


def test_streamed_text_that_is_not_utf8_is_decoded_whole(tmp_path: Path) -> None:
    table = _read(tmp_path, "latin.csv", "name\nMüller\n".encode("cp1252"), STREAM)
    assert table.source is None and table.encoding == "cp1252"
    assert table.frame["name"].to_list() == ["Müller"]


def test_streamed_parquet_reads_like_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pl.DataFrame({"id": [1, 2, None], "x": ["a", None, None]}).write_parquet(path)
    whole = read_table(path, limits=LIMITS)
    streamed = read_table(path, limits=STREAM)
    assert streamed.source is not None and streamed.source.kind == "parquet"
    assert_frame_equal(streamed.source.scan().collect(), whole.frame)
    assert (streamed.height, streamed.source.null_counts) == (2, (0, 1))  # row 3 is empty
