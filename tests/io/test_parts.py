"""A table stored as a directory of Parquet part files (what Spark writes): read from its
footers and first rows, scanned in name order, hashed, and linked into a run's snapshot."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl
import pytest

from sistack.errors import InputError
from sistack.io.parts import (
    link_parts,
    part_files,
    parts_changed,
    sha256_parts,
    sha256_path,
    size_of,
)
from sistack.io.readers import ReadLimits, read_table

LIMITS = ReadLimits()
# Written out of name order, of different sizes; the rows, in name order, are 0..9.
PARTS = {
    "part-00001-x.snappy.parquet": range(3, 8),
    "part-00000-x.snappy.parquet": range(0, 3),
    "part-00002-x.snappy.parquet": range(8, 10),
}


def _rows(numbers: range) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"c{i}" for i in numbers],
            # missing on rows 1, 4 and 9: one per part
            "amount": [None if i in (1, 4, 9) else f"{i}.50" for i in numbers],
        },
        schema={"id": pl.String, "amount": pl.String},
    )


@pytest.fixture
def parts(tmp_path: Path) -> Path:
    folder = tmp_path / "orders"
    folder.mkdir()
    for name, numbers in PARTS.items():
        _rows(numbers).write_parquet(folder / name)
    (folder / ".part-00000-x.snappy.parquet.crc").write_bytes(b"crc")  # Hadoop's, not data
    (folder / "_SUCCESS").write_bytes(b"")
    return folder


def test_a_directory_is_read_from_its_footers_and_scanned_in_name_order(parts: Path) -> None:
    raw = read_table(parts, limits=LIMITS)
    assert raw.format == "parquet"
    assert raw.source is not None
    assert [p.name for p in raw.source.parts] == sorted(PARTS)
    assert (raw.height, raw.source.columns) == (10, ("id", "amount"))
    assert raw.source.null_counts == (0, 3)
    whole = _rows(range(10))
    assert raw.frame.equals(whole)  # the sample: all 10 rows, in name order
    assert raw.source.scan().collect().equals(whole)


def test_null_counts_without_footer_statistics_are_counted(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for name, numbers in PARTS.items():
        _rows(numbers).write_parquet(folder / name, statistics=False)
    raw = read_table(folder, limits=LIMITS)
    assert raw.source is not None
    assert raw.source.null_counts == (0, 3)


def test_hash_size_and_links(parts: Path, tmp_path: Path) -> None:
    names = sorted(PARTS)
    lines = "".join(f"{n}\t{hashlib.sha256((parts / n).read_bytes()).hexdigest()}\n" for n in names)
    assert sha256_parts(parts) == sha256_path(parts) == hashlib.sha256(lines.encode()).hexdigest()
    assert size_of(parts) == sum((parts / n).stat().st_size for n in names)

    snapshot = tmp_path / "run" / "input.parquet"
    snapshot.parent.mkdir()
    link_parts(part_files(parts), snapshot)
    assert sorted(p.name for p in snapshot.iterdir()) == names  # no .crc, no _SUCCESS
    for n in names:
        assert os.stat(snapshot / n).st_ino == os.stat(parts / n).st_ino  # a link, not a copy
    assert sha256_parts(snapshot) == sha256_parts(parts)

    recorded = {
        f"input.parquet/{n}": {"sha256": hashlib.sha256((parts / n).read_bytes()).hexdigest()}
        for n in names
    } | {"model.json": {"sha256": "0" * 64}}
    assert not parts_changed(snapshot, recorded)
    (snapshot / names[0]).unlink()
    _rows(range(3)).head(1).write_parquet(snapshot / names[0])  # replaced: the link is broken
    assert parts_changed(snapshot, recorded)
    assert sha256_parts(parts) != sha256_parts(snapshot)  # the dataset kept its bytes
    (snapshot / names[0]).unlink()
    assert parts_changed(snapshot, recorded)  # a part missing


def test_parts_are_copied_where_links_cannot_be_made(
    parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    copy = tmp_path / "copy"
    link_parts(part_files(parts), copy)
    for name in PARTS:
        assert (copy / name).read_bytes() == (parts / name).read_bytes()
        assert os.stat(copy / name).st_ino != os.stat(parts / name).st_ino


def test_a_directory_without_parts_or_with_two_schemas_is_refused(
    parts: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_bytes(b"")
    with pytest.raises(InputError) as caught:
        read_table(empty, limits=LIMITS)
    assert caught.value.code == "empty_file"

    pl.DataFrame({"id": ["x"], "amount": [1.5]}).write_parquet(parts / "part-00003-x.parquet")
    with pytest.raises(InputError) as caught:
        read_table(parts, limits=LIMITS)
    assert caught.value.code == "corrupt_parquet"
    assert "part-00003-x.parquet differ from part-00000-x.snappy.parquet" in caught.value.message
