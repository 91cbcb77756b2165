"""The CDNOW sample of Fader, Hardie & Lee (2005) and the estimates they published for it
(``data/README.md``), shared by the tests of the models and of a run's customer value."""

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

DATA = Path(__file__).parent / "data"
TRANSACTIONS = DATA / "cdnow_calibration_transactions.csv"
CALIBRATION_END = dt.date(1997, 9, 30)  # end of the 39-week calibration period

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def published_summary() -> np.ndarray:
    """The published per-customer summary: ``ID``, ``x``, ``t_x``, ``T``, ``zbar``."""
    return np.genfromtxt(DATA / "cdnow_summary.csv", delimiter=",", names=True)


def assert_is_published_summary(inputs: Any, published: np.ndarray) -> None:
    """``inputs`` (``frequency``, ``recency``, ``T``, ``monetary_value`` per customer, in the
    order of ``published``) are the published x, t_x, T and zbar."""
    assert_array_equal(inputs.frequency, published["x"])  # same-day orders count once
    for ours, theirs in [
        (inputs.recency, published["t_x"]),
        (inputs.T, published["T"]),
        (inputs.monetary_value, published["zbar"]),
    ]:
        assert_allclose(ours, theirs, rtol=0, atol=0.005 + 1e-9)  # published to 2 decimals
