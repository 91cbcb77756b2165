"""One Spark session (``local[2]``, 4 shuffle partitions, no UI, quiet) for the Spark tests.

Without PySpark or Java the Spark tests are skipped on a developer's machine and FAIL in CI
(``CI=true``), like the PostgreSQL tests: CI installs the ``spark`` extra, so a missing engine
there is a broken build, not an optional feature.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from sistack.engines import check_engine
from sistack.errors import SistackError


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    try:
        check_engine("spark")
        from pyspark.sql import SparkSession

        from sistack.engines.spark import SESSION_CONF

        builder = SparkSession.builder.master("local[2]").appName("sistack-tests")
        for key, value in {
            **SESSION_CONF,
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
        }.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    except (SistackError, ImportError, RuntimeError) as exc:
        message = f"Spark is not available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
