"""Check the artifact root against the metadata store: every succeeded run intact, nothing else.

A succeeded run's directory must hold exactly the files its manifest lists (plus the manifest),
each with the recorded size and sha256. Anything else is reported: a succeeded run without a
directory, a directory that belongs to no succeeded run, files that are missing, changed, extra
or symbolic links, and leftovers in ``.staging`` (a crash, or a run in progress right now). The
check only reads; it never repairs, so what it reports is exactly what was found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sistack.io.store.artifacts import STAGING, ArtifactStore, sha256_file, valid_id
from sistack.io.store.metadata import SUCCEEDED, MetadataStore, RunRecord

MANIFEST = "manifest.json"
PAGE = 500

# Problem kinds, in the order a report lists them.
MISSING_DIRECTORY = "missing_directory"
UNREADABLE_MANIFEST = "unreadable_manifest"
MISSING_FILE = "missing_file"
CHANGED_FILE = "changed_file"
EXTRA_FILE = "extra_file"
SYMLINK = "symlink"
UNEXPECTED_DIRECTORY = "unexpected_directory"
STAGING_LEFTOVER = "staging_leftover"
KINDS = (
    MISSING_DIRECTORY,
    UNREADABLE_MANIFEST,
    MISSING_FILE,
    CHANGED_FILE,
    EXTRA_FILE,
    SYMLINK,
    UNEXPECTED_DIRECTORY,
    STAGING_LEFTOVER,
)


@dataclass(frozen=True)
class Problem:
    """One thing that is not as the metadata store and the manifests say it must be."""

    kind: str
    path: str  # relative to the artifact root
    message: str
    run_id: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    """What was checked and what was wrong."""

    root: Path
    runs_checked: int
    files_checked: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "artifact_root": str(self.root),
            "runs_checked": self.runs_checked,
            "files_checked": self.files_checked,
            "problems": [asdict(p) for p in self.problems],
        }


def diagnose(store: MetadataStore, artifacts: ArtifactStore) -> DoctorReport:
    """Verify every succeeded run's artifacts against its manifest and look for strays."""
    root = artifacts.root
    runs = {r.id: r for r in _all_runs(store)}
    problems: list[Problem] = []
    files = 0
    succeeded = [r for r in runs.values() if r.status == SUCCEEDED]
    for record in succeeded:
        found, checked = _check_run(root, record.id)
        problems.extend(found)
        files += checked
    problems.extend(_strays(root, runs))
    problems.sort(key=lambda p: (KINDS.index(p.kind), p.path))
    return DoctorReport(root, len(succeeded), files, tuple(problems))


def _all_runs(store: MetadataStore) -> Iterator[RunRecord]:
    offset = 0
    while True:
        page, total = store.list_runs(limit=PAGE, offset=offset)
        yield from page
        offset += len(page)
        if not page or offset >= total:
            return


def _check_run(root: Path, run_id: str) -> tuple[list[Problem], int]:
    """Problems of one succeeded run's directory, and how many files were hashed."""
    folder = root / run_id
    if folder.is_symlink():
        message = f"The directory of run {run_id} is a symbolic link; it was not followed."
        return [Problem(SYMLINK, run_id, message, run_id)], 0
    if not folder.is_dir():
        message = f"Run {run_id} succeeded but its directory is missing."
        return [Problem(MISSING_DIRECTORY, run_id, message, run_id)], 0
    try:
        listed = _listed_artifacts(folder / MANIFEST, run_id)
    except ValueError as exc:
        return [Problem(UNREADABLE_MANIFEST, f"{run_id}/{MANIFEST}", str(exc), run_id)], 0
    problems: list[Problem] = []
    hashed = 0
    present = {p.name: p for p in folder.iterdir()}
    # An engine's partitioned artifact is a directory whose files the manifest lists one by one
    # ("assignments/segment=1/part-0.parquet"): the directory is listed, a file it holds that the
    # manifest does not name is extra.
    tops = {name.split("/", 1)[0] for name in listed}
    for top in sorted(tops - listed.keys()):
        entry = present.get(top)
        if entry is not None and entry.is_symlink():
            message = f"Run {run_id} holds a symbolic link '{top}'; it was not followed."
            problems.append(Problem(SYMLINK, f"{run_id}/{top}", message, run_id))
            listed = {n: v for n, v in listed.items() if n.split("/", 1)[0] != top}
            continue
        if entry is None or not entry.is_dir():
            continue
        for inner in sorted(entry.rglob("*")):
            rel = inner.relative_to(folder).as_posix()
            if (inner.is_file() or inner.is_symlink()) and rel not in listed:
                message = f"Run {run_id} holds a file '{rel}' that its manifest does not list."
                problems.append(Problem(EXTRA_FILE, f"{run_id}/{rel}", message, run_id))
    for name in sorted(present.keys() - listed.keys() - tops - {MANIFEST}):
        entry, rel = present[name], f"{run_id}/{name}"
        if entry.is_symlink():
            message = f"Run {run_id} holds a symbolic link '{name}'; it was not followed."
            problems.append(Problem(SYMLINK, rel, message, run_id))
            continue
        what = "directory" if entry.is_dir() else "file"
        message = f"Run {run_id} holds a {what} '{name}' that its manifest does not list."
        problems.append(Problem(EXTRA_FILE, rel, message, run_id))
    for name, expected in sorted(listed.items()):
        path, rel = folder / name, f"{run_id}/{name}"
        if path.is_symlink():
            message = f"Artifact '{name}' of run {run_id} is a symbolic link; it was not read."
            problems.append(Problem(SYMLINK, rel, message, run_id))
        elif not path.is_file():
            message = f"Artifact '{name}' of run {run_id} is missing."
            problems.append(Problem(MISSING_FILE, rel, message, run_id))
        else:
            hashed += 1
            size, digest = path.stat().st_size, sha256_file(path)
            if (digest, size) != (expected.get("sha256"), expected.get("bytes")):
                message = (
                    f"Artifact '{name}' of run {run_id} changed: sha256 {digest[:12]}... "
                    f"({size:,} bytes), the manifest says {str(expected.get('sha256'))[:12]}... "
                    f"({expected.get('bytes')} bytes)."
                )
                problems.append(Problem(CHANGED_FILE, rel, message, run_id))
    return problems, hashed


def _listed_artifacts(manifest: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """The manifest's ``artifacts`` table; ValueError when it cannot be trusted."""
    if manifest.is_symlink() or not manifest.is_file():
        raise ValueError(f"Run {run_id} has no {MANIFEST}, so its files cannot be verified.")
    try:
        document = json.loads(manifest.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"The {MANIFEST} of run {run_id} cannot be read: {exc}.") from exc
    listed = document.get("artifacts") if isinstance(document, dict) else None
    if not isinstance(listed, dict) or document.get("run_id") != run_id:
        raise ValueError(f"The {MANIFEST} of run {run_id} is not this run's manifest.")
    names = [n for n in listed if not isinstance(listed[n], dict) or not _safe_name(n)]
    if names:
        raise ValueError(f"The {MANIFEST} of run {run_id} lists invalid artifacts {names[:3]}.")
    return listed


def _safe_name(name: str) -> bool:
    """A file name, or a relative path of at most three plain parts (partitioned artifacts)."""
    parts = name.split("/")
    return (
        0 < len(parts) <= 3
        and all(p not in ("", ".", "..") for p in parts)
        and not any(c in name for c in ("\\", "\x00", ":"))
        and all(Path(p).name == p for p in parts)
    )


def _strays(root: Path, runs: dict[str, RunRecord]) -> list[Problem]:
    """Entries of the root that belong to no succeeded run, and staging leftovers."""
    if not root.is_dir():
        return []
    problems = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name == STAGING and entry.is_dir() and not entry.is_symlink():
            for left in sorted(entry.iterdir()):
                message = (
                    f"'{STAGING}/{left.name}' is left from an interrupted or running run; "
                    "'sistack serve' removes such leftovers when it starts."
                )
                problems.append(Problem(STAGING_LEFTOVER, f"{STAGING}/{left.name}", message))
            continue
        record = runs.get(name) if valid_id(name) else None
        if record is not None and record.status == SUCCEEDED:
            continue  # checked by _check_run
        if record is not None:
            message = f"Run {name} is {record.status} but has a directory; it must have none."
        else:
            message = f"'{name}' belongs to no run in the metadata store."
        problems.append(Problem(UNEXPECTED_DIRECTORY, name, message, name if record else None))
    return problems
