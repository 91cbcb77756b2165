"""The silhouette that chooses k agrees with scikit-learn's and with a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import silhouette_score
from sklearn.metrics.pairwise import euclidean_distances

from sistack.domain.segmentation.selection import distances, silhouette


def test_four_points_by_hand() -> None:
    # Clusters {0, 1} and {10, 12} on a line.
    # 0: a = 1, b = (10 + 12) / 2 = 11 -> 10/11;  1: a = 1, b = 10 -> 9/10
    # 10: a = 2, b = (10 + 9) / 2 = 9.5 -> 7.5/9.5;  12: a = 2, b = 11.5 -> 9.5/11.5
    X = np.array([[0.0], [1.0], [10.0], [12.0]])
    expected = np.mean([10 / 11, 9 / 10, 7.5 / 9.5, 9.5 / 11.5])
    assert_allclose(silhouette(distances(X), np.array([0, 0, 1, 1])), expected, rtol=1e-12)


def test_distances_match_scikit_learn() -> None:
    X = np.random.default_rng(5).normal(size=(300, 7))
    D = distances(X)
    assert_allclose(D, euclidean_distances(X), atol=1e-9)
    assert (np.diag(D) == 0).all() and np.allclose(D, D.T)


@pytest.mark.parametrize(
    ("n", "dims", "k", "seed"),
    [(50, 2, 2, 0), (300, 5, 3, 1), (2500, 15, 6, 2), (1500, 8, 9, 3)],
)
def test_matches_scikit_learn(n: int, dims: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dims)) + rng.integers(0, 4, size=(n, 1))
    labels = rng.integers(0, k, size=n)
    assert_allclose(
        silhouette(distances(X), labels), silhouette_score(X, labels), rtol=1e-9, atol=1e-12
    )


def test_singletons_and_duplicates_score_like_scikit_learn() -> None:
    # A one-member cluster scores 0; identical points give a = b = 0 (0, not NaN).
    X = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [9.0, 1.0]])
    labels = np.array([0, 0, 1, 1, 2])
    assert_allclose(silhouette(distances(X), labels), silhouette_score(X, labels), rtol=1e-12)


@pytest.mark.parametrize("labels", [[0, 0, 0], [0, 1, 2]])
def test_needs_two_to_n_minus_one_clusters(labels: list[int]) -> None:
    with pytest.raises(ValueError, match="2 to n-1 clusters"):
        silhouette(distances(np.arange(6.0).reshape(3, 2)), np.array(labels))
