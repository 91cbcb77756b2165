"""A disk that fills up during a run: the run fails cleanly, nothing half-written stays.

The artifact root is a real, tiny tmpfs (mounted for the test; the suite runs as root on the CI
machine), filled so that a run's files cannot all be written. The run must fail with
``disk_full`` and a message naming the artifact root, leave no run directory and no staging
leftover, keep the metadata consistent, and succeed once space is freed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sistack.service.runs import RunService
from tests.conftest import small_settings, three_groups

SIZE = 1 << 20  # bytes of the tmpfs: a small run needs a few hundred KB


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, *, leave: int) -> Path:
    """Write a filler file so that about ``leave`` bytes stay free."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def test_a_full_disk_fails_the_run_cleanly_and_a_freed_one_succeeds(
    tmp_path: Path, tiny_disk: Path
) -> None:
    root = tiny_disk / "runs"
    settings = small_settings(tmp_path / "home", artifact_root=root)
    data = tmp_path / "customers.csv"
    three_groups(300, seed=5).write_csv(data)
    service = RunService(settings)
    try:
        dataset, _ = service.add_dataset(data, filename="customers.csv", keep=False)
        filler = fill(tiny_disk, leave=24 * 1024)
        run = service.execute(service.create_run(dataset.id).id)
        assert (run.status, run.error_code) == ("failed", "disk_full"), run
        assert str(root) in (run.error_message or "")
        assert "Free some space" in (run.error_message or "")
        assert sorted(p.name for p in root.iterdir()) == [".staging"]
        assert list((root / ".staging").iterdir()) == []

        filler.unlink()
        again = service.execute(service.create_run(dataset.id).id)
        assert again.status == "succeeded", again
        assert sorted(p.name for p in root.iterdir()) == [".staging", again.id]
        runs, total = service.list_runs()
        assert (sorted(r.status for r in runs), total) == (["failed", "succeeded"], 2)
    finally:
        service.close()
