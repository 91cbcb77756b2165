"""Memory stays bounded under many simultaneous uploads: at most N files are read at once.

Each registration reads the whole file into memory (shape, mapping, counts), so ten 100 MB
uploads at once would hold ten tables. ``Settings.concurrent_reads`` caps how many one process
reads at the same time; the others wait for a slot (bench/load.py measures the memory).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sistack.io import readers
from sistack.service import runs
from sistack.service.runs import RunService
from tests.conftest import small_settings, three_groups


class Gauge:
    """Wraps ``read_table``: counts calls in progress and remembers the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> readers.RawTable:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)  # long enough for every thread to arrive while one reads
            return readers.read_table(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_simultaneous_registrations_read_at_most_the_configured_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slots: int
) -> None:
    data = tmp_path / "customers.csv"
    three_groups(60, seed=1).write_csv(data)
    gauge = Gauge()
    monkeypatch.setattr(runs, "read_table", gauge)
    service = RunService(small_settings(tmp_path / "home", concurrent_reads=slots))
    try:
        with ThreadPoolExecutor(8) as pool:
            added = list(pool.map(lambda _: service.add_dataset(data, keep=False), range(8)))
        # A scoped view shares the same slots.
        scoped = service.scoped("other")
        with ThreadPoolExecutor(4) as pool:
            added += list(pool.map(lambda _: scoped.add_dataset(data, keep=False), range(4)))
    finally:
        service.close()
    assert gauge.most == slots
    assert len({record.id for record, _ in added}) == 12
    assert {inspection.raw.frame.height for _, inspection in added} == {60}
