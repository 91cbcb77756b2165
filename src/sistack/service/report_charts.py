"""The report's SVG charts of a run: drawn once from its chart specs and cached with its exports.

A run stores its chart specs (``charts.json``); the report page and the PDF print them as SVG,
which vl-convert draws in about 1.5 s for a report (a third of it starting its renderer) while
holding the interpreter lock. So they are drawn when first needed and kept in
``<exports>/<run_id>/report-charts.<layout>.json`` (written to a temporary name and renamed
into place); runs written by earlier versions carry them as ``report-charts.json``, read as
they are.

A page that opens a run asks for them ahead (:meth:`ReportCharts.draw_soon`): they are then
drawn in a child process of their own, so the requests the server answers meanwhile do not
wait for the interpreter lock. The report page or PDF asked for before that has finished waits
for it (one lock per file) instead of drawing a second time. ``serve --workers N`` processes
each keep their own lock, so two of them may both draw (the rename keeps the file whole).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sistack.io.store.artifacts import dump_json, write_atomically

log = logging.getLogger("sistack.exports")

Specs = dict[str, dict[str, Any]]


class ReportCharts:
    """The cache of the report SVGs under ``root`` (the exports folder).

    Args:
        root: the exports folder (one sub-folder per run).
        layout: the exports' layout version: a cache written by another layout is redrawn.
        lock: the lock of a file (shared with the exports' builds).
    """

    def __init__(self, root: Path, layout: str, lock: Callable[[Path], threading.Lock]) -> None:
        self.root = root
        self.layout = layout
        self._lock = lock
        self._process: ProcessPoolExecutor | None = None
        self._process_guard = threading.Lock()

    def path(self, run_id: str) -> Path:
        """The cache file of a run (``run_id`` already validated by the caller)."""
        return self.root / run_id / f"report-charts.{self.layout}.json"

    def get(
        self,
        run_id: str,
        specs: Callable[[], tuple[Specs, int]],
        still_there: Callable[[], object],
        *,
        elsewhere: bool = False,
    ) -> dict[str, str]:
        """The cached SVGs of a run, drawn now if there are none (or none readable).

        ``specs`` gives the run's chart specs and its number of segments; ``still_there``
        raises if the run was deleted meanwhile (then nothing is written); ``elsewhere`` draws
        in the drawing process instead of this one.
        """
        path = self.path(run_id)
        with self._lock(path):
            cached = _read(path)
            if cached is not None:
                return cached
            charts, k = specs()
            drawn = self._draw_elsewhere(charts, k) if elsewhere else _draw(charts, k)
            still_there()  # deleted while we drew: leave no folder behind
            write_atomically(path, lambda tmp: tmp.write_bytes(dump_json(drawn)))
            for old in path.parent.glob("report-charts.*.json"):
                if old != path:  # drawn for an earlier layout
                    old.unlink(missing_ok=True)
            return drawn

    def draw_soon(self, run_id: str, pool: Executor, draw: Callable[[], object]) -> None:
        """Run ``draw`` on ``pool`` unless the run's SVGs are cached; failures are logged (the
        report page or PDF meets and shows the same error)."""
        if self.path(run_id).is_file():
            return

        def task() -> None:
            try:
                draw()
            except Exception:
                log.exception("drawing the report charts of run %s failed", run_id)

        with contextlib.suppress(RuntimeError):  # the service is closing: nothing to start
            pool.submit(task)

    def _draw_elsewhere(self, charts: Specs, k: int) -> dict[str, str]:
        from sistack.io.exports.charts import VL_VERSION
        from sistack.io.exports.drawing import report_svgs  # all the child imports

        try:
            with self._process_guard:
                if self._process is None:
                    # spawn, not fork: this process runs threads (fork would copy their locks)
                    context = multiprocessing.get_context("spawn")
                    self._process = ProcessPoolExecutor(1, mp_context=context)
                process = self._process
            drawn: dict[str, str] = process.submit(report_svgs, charts, k, VL_VERSION).result()
            return drawn
        # No child process here: it could not start (a daemonic process may have none:
        # multiprocessing asserts), or it died.
        except (BrokenProcessPool, OSError, RuntimeError, AssertionError) as exc:
            log.warning("drawing the report charts in this process instead: %s", exc)
            with self._process_guard:
                self._process = None
            return _draw(charts, k)

    def close(self) -> None:
        """Stop the drawing process (at shutdown)."""
        with self._process_guard:
            process, self._process = self._process, None
        if process is not None:
            process.shutdown(wait=True, cancel_futures=True)


def _draw(charts: Specs, k: int) -> dict[str, str]:
    from sistack.io.exports.report import report_svgs  # vl-convert

    return report_svgs(charts, k)


def _read(path: Path) -> dict[str, str] | None:
    """The cached SVGs, or None when there are none or the file cannot be read (redrawn)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("the cached report charts %s cannot be read; they are drawn again", path)
        return None
    return data if isinstance(data, dict) else None
