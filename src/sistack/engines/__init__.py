"""Execution engines: where the data-parallel steps of a run execute.

``local`` (default) runs in this process with Polars and NumPy; ``spark`` runs them on an Apache
Spark cluster (optional extra ``spark``). :func:`open_engine` is the only way in, so an engine that
is not installed fails with one clear error, code ``engine_unavailable``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil

from sistack.engines.base import Engine, ReadsFiles, Segmentation
from sistack.engines.local import LocalEngine
from sistack.errors import InputError

ENGINES = ("local", "spark")
SPARK_INSTALL = "pip install 'strategic-intelligence-stack[spark]'"
# Masters a run may name: local[N], a standalone cluster, Kubernetes, YARN.
SPARK_MASTER = re.compile(
    r"^(local(\[(\d+|\*)(,\d+)?\])?"
    r"|spark://[A-Za-z0-9.\-]+(:\d+)?(,[A-Za-z0-9.\-]+(:\d+)?)*"
    r"|k8s://https?://[A-Za-z0-9.\-]+(:\d+)?"
    r"|yarn)$"
)

__all__ = [
    "ENGINES",
    "Engine",
    "LocalEngine",
    "ReadsFiles",
    "Segmentation",
    "check_engine",
    "open_engine",
]


class EngineUnavailable(InputError):
    """The engine a run asks for cannot run in this installation."""

    status = 422


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return f"PySpark is not installed; install the extra: {SPARK_INSTALL}"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and os.path.isdir(java_home)):
        return "Spark needs Java 17 or later and none was found (java on PATH or JAVA_HOME)."
    return None


def check_engine(name: str) -> None:
    """Raise :class:`EngineUnavailable` (code ``engine_unavailable``) unless ``name`` can run."""
    if name not in ENGINES:
        raise EngineUnavailable(
            f"Unknown engine '{name[:40]}': use one of {', '.join(ENGINES)}.",
            code="engine_unavailable",
            details={"engine": name[:40], "engines": list(ENGINES)},
        )
    if name == "spark" and (problem := _spark_missing()):
        raise EngineUnavailable(
            f"The Spark engine is not available: {problem}",
            code="engine_unavailable",
            details={"engine": name, "install": SPARK_INSTALL},
        )


def open_engine(name: str = "local", *, master: str | None = None) -> Engine:
    """The engine called ``name``; ``master`` is the Spark master URL (spark only)."""
    check_engine(name)
    if name == "local":
        return LocalEngine()
    from sistack.engines.spark import SparkEngine

    return SparkEngine(master=master)
