"""Run artifacts: one directory per run under the artifact root, written atomically.

A run's files are written into ``<root>/.staging/<run_id>.<token>/`` and renamed to
``<root>/<run_id>/`` in one step when complete, so a reader never sees a half-written run; a crash
leaves only a staging directory, which the next start removes. Names and ids that come from a
request are validated before any path is built.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sistack.errors import NotFound, StorageError

RUN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
ARTIFACTS = (
    "input.parquet",
    "features.parquet",
    "assignments.parquet",
    "model.json",
    "profiles.json",
    "quality.json",
    "insights.json",
    "scores.parquet",
    "charts.json",
    "report-charts.json",
    "manifest.json",
)
STAGING = ".staging"
MANIFEST = "manifest.json"
SNAPSHOT = "input.parquet"


def valid_id(value: str) -> bool:
    """True for a well-formed ULID (the only ids the store creates)."""
    return bool(RUN_ID.match(value))


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary file beside ``path``, then rename it into place: a reader never
    sees half of the file, and a failed write leaves nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target (os.replace is atomic only within one file system); the real
    # suffix last, since some writers choose the format from it.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o644)  # mkstemp makes files private; these are as readable as a run
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_json(data: Any) -> bytes:
    """Canonical JSON (sorted keys, fixed separators): same data, same bytes."""
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=True).encode()


class ArtifactStore:
    """Directories of run artifacts under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, run_id: str) -> Path:
        if not valid_id(run_id):
            raise NotFound(f"Run '{run_id[:40]}' does not exist.", code="run_not_found")
        return self.root / run_id

    def exists(self, run_id: str) -> bool:
        if not valid_id(run_id):
            return False
        folder = self._dir(run_id)
        return folder.is_dir() and not folder.is_symlink()

    def path(self, run_id: str, name: str) -> Path:
        """Path of a named artifact of a finished run; only names from ARTIFACTS are allowed."""
        if name not in ARTIFACTS:
            raise NotFound(f"Artifact '{name[:60]}' does not exist.", code="artifact_not_found")
        folder = self._dir(run_id)
        path = folder / name
        # Never follow a link: a symlink planted in (or as) a run directory could point anywhere.
        if folder.is_symlink() or path.is_symlink() or not path.is_file():
            raise NotFound(
                f"Run '{run_id}' has no artifact '{name}' (is the run finished?).",
                code="artifact_not_found",
            )
        return path

    def snapshot(self, run_id: str) -> Path:
        """A finished run's input snapshot ``input.parquet``: a file, or a directory of Parquet
        part files for a dataset Spark wrote (``io.parts``); never a link."""
        folder = self._dir(run_id)
        path = folder / SNAPSHOT
        if folder.is_symlink() or path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise NotFound(
                f"Run '{run_id}' has no artifact '{SNAPSHOT}' (is the run finished?).",
                code="artifact_not_found",
            )
        return path

    def read_json(self, run_id: str, name: str) -> Any:
        """A JSON artifact, checked against the sha256 its run's manifest recorded.

        The documents are small (per-segment numbers), so hashing them on every read costs
        well under a millisecond and turns a damaged or edited file into a clear
        ``artifact_corrupt`` error instead of wrong numbers or a crash further down.
        """
        data = self.path(run_id, name).read_bytes()
        if name != MANIFEST:
            recorded = self._load(run_id, MANIFEST, self.path(run_id, MANIFEST).read_bytes())
            expected = _recorded_sha256(recorded, name)
            if expected != hashlib.sha256(data).hexdigest():
                raise _corrupt(run_id, name, "its sha256 differs from the manifest's")
        return self._load(run_id, name, data)

    @staticmethod
    def _load(run_id: str, name: str, data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise _corrupt(run_id, name, "it is not valid JSON") from exc

    @contextmanager
    def staging(self, run_id: str) -> Iterator[Path]:
        """Yield an empty directory; on success it becomes the run's directory atomically."""
        final = self._dir(run_id)
        tmp = self.root / STAGING / f"{run_id}.{secrets.token_hex(4)}"
        try:
            tmp.mkdir(parents=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot write to the artifact root {self.root}: {exc.strerror}.",
                code="artifact_root_unwritable",
            ) from exc
        try:
            yield tmp
            _fsync_dir(tmp)
            if final.exists():
                raise StorageError(f"Run directory {final} already exists.", code="run_exists")
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if _out_of_space(exc):
                raise StorageError(
                    f"The disk holding the artifact root {self.root} is full; the run's files "
                    "were removed and nothing was kept. Free some space (or point "
                    "SISTACK_ARTIFACT_ROOT at a larger disk) and start the run again.",
                    code="disk_full",
                ) from exc
            raise

    def delete(self, run_id: str) -> None:
        path = self._dir(run_id)
        if path.is_dir():
            # Rename first so a half-deleted directory is never visible under the run id.
            doomed = self.root / STAGING / f"{run_id}.deleted.{secrets.token_hex(4)}"
            doomed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def clean_staging(self) -> int:
        """Remove leftovers of interrupted runs; returns how many were removed."""
        staging = self.root / STAGING
        if not staging.is_dir():
            return 0
        removed = 0
        for entry in staging.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        return removed


# ENOSPC and EDQUOT; Polars reports them inside its own exception's message ("os error 28").
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXT = (*(f"os error {code})" for code in _NO_SPACE), "No space left on device")


def _out_of_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    return any(text in str(exc) for text in _NO_SPACE_TEXT)


def _recorded_sha256(manifest: Any, name: str) -> str | None:
    try:
        return str(manifest["artifacts"][name]["sha256"])
    except (KeyError, TypeError):
        return None


def _corrupt(run_id: str, name: str, why: str) -> StorageError:
    return StorageError(
        f"Run '{run_id}' has a damaged artifact '{name}': {why}. Run `sistack doctor` to list "
        f"damaged runs, then `sistack reproduce {run_id}` to recompute it from its input.",
        code="artifact_corrupt",
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
