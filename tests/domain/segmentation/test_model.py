"""SegmentModel and FeatureScaler: estimator contract, ordering, JSON round trip."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from sistack.domain.segmentation.model import FeatureScaler, SegmentModel
from sistack.domain.segmentation.selection import KScore, choose_k, pick_k, sample_indices
from sistack.domain.segmentation.stability import bootstrap_stability


def blobs(n_per=200, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0], [8, 0], [0, 8]], dtype=float)
    X = np.vstack([rng.normal(c, 0.5, size=(n_per, 2)) for c in centers])
    truth = np.repeat(np.arange(3), n_per)
    return X, truth


def test_scaler_numbers_by_hand():
    X = np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 1.0], [7.0, 1.0], [100.0, 1.0]])
    scaler = FeatureScaler(log_columns=[0], clip_quantiles=(0.0, 1.0)).fit(X)
    logged = np.log1p(X[:, 0])
    q25, q50, q75 = np.quantile(logged, [0.25, 0.5, 0.75])
    assert_allclose(scaler.center_, [q50, 1.0])
    # scale = max(IQR / 1.349, std); column 1 is constant: scale 1, so it becomes all zeros.
    scale = max((q75 - q25) / 1.349, logged.std())
    assert_allclose(scaler.scale_, [scale, 1.0])
    assert_allclose(scaler.transform(X)[:, 0], (logged - q50) / scale)
    assert_allclose(scaler.transform(X)[:, 1], 0.0)


def test_scaler_winsorises_at_quantiles():
    X = np.arange(101, dtype=float).reshape(-1, 1)
    scaler = FeatureScaler(clip_quantiles=(0.1, 0.9)).fit(X)
    assert_allclose(scaler.lower_, [10.0])
    assert_allclose(scaler.upper_, [90.0])
    assert scaler.clipped_counts(X).tolist() == [20]


@pytest.mark.parametrize("estimator", [FeatureScaler(), SegmentModel(n_segments=2)])
def test_not_fitted(estimator):
    with pytest.raises(NotFittedError):
        estimator.predict(np.zeros((2, 2))) if hasattr(estimator, "predict") else (
            estimator.transform(np.zeros((2, 2)))
        )


def test_init_stores_parameters_only():
    model = SegmentModel(n_segments=3, random_state=7)
    assert model.get_params()["n_segments"] == 3
    assert not hasattr(model, "cluster_centers_")


def test_chooses_k_and_recovers_blobs():
    X, truth = blobs()
    model = SegmentModel(random_state=1, n_init=2)
    assert model.fit(X) is model
    assert model.n_segments_ == 3
    chosen = [s.k for s in model.k_scores_ if s.chosen]
    assert chosen == [3]
    assert adjusted_rand_score(truth, model.labels_) == pytest.approx(1.0)


def test_segments_ordered_by_revenue():
    X, truth = blobs()
    revenue = np.select([truth == 0, truth == 1, truth == 2], [1.0, 10.0, 5.0])
    model = SegmentModel(n_segments=3, random_state=3).fit(X, revenue=revenue)
    # The richest blob (truth 1) must be segment index 0, then truth 2, then truth 0.
    assert_array_equal(model.labels_[truth == 1], 0)
    assert_array_equal(model.labels_[truth == 2], 1)
    assert_array_equal(model.labels_[truth == 0], 2)


def test_ordering_does_not_depend_on_row_order():
    X, truth = blobs()
    revenue = truth.astype(float) + 1
    perm = np.random.default_rng(5).permutation(len(X))
    a = SegmentModel(n_segments=3, random_state=3).fit(X, revenue=revenue)
    b = SegmentModel(n_segments=3, random_state=3).fit(X[perm], revenue=revenue[perm])
    assert_array_equal(a.labels_[perm], b.labels_)


def test_json_round_trip_predicts_the_same():
    X, _ = blobs()
    scaler = FeatureScaler().fit(X)
    Z = scaler.transform(X)
    model = SegmentModel(n_segments=3, random_state=0).fit(Z)
    scaler2 = FeatureScaler.from_dict(scaler.to_dict())
    model2 = SegmentModel.from_dict(model.to_dict())
    assert_array_equal(model2.predict(scaler2.transform(X)), model.labels_)


def test_sample_indices_deterministic_and_sorted():
    a = sample_indices(1000, 100, seed=3)
    assert_array_equal(a, sample_indices(1000, 100, seed=3))
    assert (np.diff(a) > 0).all() and len(a) == 100
    assert_array_equal(sample_indices(50, 100, seed=3), np.arange(50))


def test_choose_k_prefers_smaller_k_on_ties():
    X, _ = blobs()
    scores, k, centers = choose_k(X, [2, 3, 4], seed=0, silhouette_n=600)
    assert k == 3 and centers.shape == (3, 2)
    assert [s.k for s in scores] == [2, 3, 4]
    assert max(scores, key=lambda s: s.silhouette).k == 3


def test_stability_high_for_clear_blobs_low_for_noise():
    X, _ = blobs()
    model = SegmentModel(n_segments=3, random_state=0).fit(X)
    clear = bootstrap_stability(X, model.cluster_centers_, resamples=5, seed=0)
    assert min(clear.jaccard) > 0.95 and clear.ari > 0.95
    noise = np.random.default_rng(0).normal(size=(600, 2))
    fuzzy = SegmentModel(n_segments=6, random_state=0).fit(noise)
    unstable = bootstrap_stability(noise, fuzzy.cluster_centers_, resamples=5, seed=0)
    assert np.mean(unstable.jaccard) < np.mean(clear.jaccard)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        # (k, silhouette, davies_bouldin): k=3 has the best silhouette by 0.002, k=5 is within
        # the 0.01 tolerance and has the lower Davies-Bouldin -> 5 (numbers from a real run).
        ([(2, 0.261, 1.515), (3, 0.308, 1.294), (4, 0.289, 1.22), (5, 0.306, 1.228)], 5),
        # k=4 has the lowest DB but is 0.019 below the best silhouette -> not a candidate.
        ([(3, 0.297, 1.34), (4, 0.281, 1.257), (5, 0.296, 1.265)], 5),
        # A clear silhouette winner wins whatever the DB of the others.
        ([(2, 0.6, 0.9), (3, 0.4, 0.5)], 2),
        # Equal DB among candidates: the smaller k.
        ([(2, 0.5, 1.0), (3, 0.5, 1.0)], 2),
    ],
)
def test_pick_k_criterion(scores, expected):
    assert pick_k([KScore(k, sil, 0.0, db, 0.0) for k, sil, db in scores]) == expected


def test_transform_in_blocks_is_the_formula_bit_for_bit(monkeypatch):
    import sistack.domain.segmentation.model as model

    monkeypatch.setattr(model, "CHUNK_ROWS", 7)  # several blocks and a remainder
    rng = np.random.default_rng(3)
    X = rng.lognormal(size=(50, 3))
    X[::4, 1] = np.nan
    X[5, 2] = -2.0
    X[6, 0] = np.inf
    scaler = FeatureScaler(log_columns=[0, 2], clip_quantiles=(0.1, 0.9)).fit(X[:30])
    Z = np.array(X)
    for j in (0, 2):
        Z[:, j] = np.log1p(np.maximum(Z[:, j], 0.0))
    low, high = scaler.lower_, scaler.upper_
    capped = ((low > Z) | (high < Z)).sum(axis=0)
    expected = np.nan_to_num((np.clip(Z, low, high) - scaler.center_) / scaler.scale_)
    got, clipped = scaler.transform_counting(X)
    assert got.tobytes() == expected.tobytes()
    assert clipped.tolist() == capped.tolist()
    assert capped[0] > 0 and np.isnan(X[:, 1]).any() and (got[np.isnan(X[:, 1]), 1] == 0).all()
    # An infinite bound: infinities that stay after clipping become the largest float.
    scaler.upper_[0] = np.inf
    got, _ = scaler.transform_counting(X)
    assert got[6, 0] == np.finfo(np.float64).max


def test_fitted_labels_are_the_nearest_ordered_centre(monkeypatch):
    import sistack.domain.segmentation.model as model

    monkeypatch.setattr(model, "CHUNK_ROWS", 64)
    X, _ = blobs(n_per=150, seed=4)
    revenue = np.where(X[:, 1] > 4, 10.0, 1.0)  # the blob at (0, 8) is segment 1
    fitted = SegmentModel(n_segments=3, random_state=1, fit_sample=1000).fit(X, revenue=revenue)
    labels, dist = model.nearest(X, fitted.cluster_centers_)
    assert_array_equal(fitted.labels_, labels)
    assert fitted.distances_.tobytes() == dist.tobytes()
    assert fitted.cluster_centers_[0][1] > 4
