import numpy as np
import pytest
import tensorflow as tf

from facenet_tf.distances import (
    DISTANCES,
    paired_distances_numpy,
    pairwise_distances,
    pairwise_distances_numpy,
)
from facenet_tf.errors import FacenetError


def reference(a, b, metric):
    """Loop over pairs, float64, straight from the definitions."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if metric == "cosine":
                out[i, j] = 1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
            else:
                out[i, j] = np.sum((x - y) ** 2)
    return np.sqrt(out) if metric == "l2" else out


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("metric", DISTANCES)
def test_pairwise_matches_reference(rng, metric):
    a = rng.normal(size=(9, 5)).astype("float32")
    b = rng.normal(size=(4, 5)).astype("float32")
    got = pairwise_distances(a, b, metric=metric)
    assert got.dtype == tf.float32 and got.shape == (9, 4)
    np.testing.assert_allclose(got, reference(a, b, metric), atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(pairwise_distances_numpy(a, b, metric), got, atol=2e-5)
    np.testing.assert_allclose(paired_distances_numpy(a[:4], b, metric),
                               np.diag(reference(a[:4], b, metric)), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("metric", DISTANCES)
def test_self_distances_have_exact_zero_diagonal(rng, metric):
    a = (rng.normal(size=(6, 3)) * 100).astype("float32")
    got = pairwise_distances(a, metric=metric).numpy()
    assert np.all(np.diag(got) == 0.0) and np.all(got >= 0.0)
    assert np.all(np.diag(pairwise_distances_numpy(a, metric=metric)) == 0.0)
    np.testing.assert_allclose(got, got.T, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(rng, dtype):
    a = tf.cast(rng.normal(size=(5, 4)), dtype)
    got = pairwise_distances(a, metric="l2")
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, reference(tf.cast(a, "float64"), tf.cast(a, "float64"),
                                              "l2"), atol=1e-5, rtol=1e-5)


def test_numpy_twin_keeps_float64(rng):
    a = rng.normal(size=(4, 3))
    assert pairwise_distances_numpy(a, metric="cosine").dtype == np.float64
    assert paired_distances_numpy(a, a[::-1], metric="l2").dtype == np.float64
    np.testing.assert_allclose(pairwise_distances_numpy(a, metric="l2"),
                               reference(a, a, "l2"), atol=1e-12)
    assert pairwise_distances_numpy(a.astype("float32")).dtype == np.float32


@pytest.mark.parametrize("metric", DISTANCES)
def test_gradient_is_finite_for_identical_rows(metric):
    x = tf.Variable(tf.ones([4, 3]))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(pairwise_distances(x, metric=metric))
    grad = tape.gradient(total, x)
    assert np.all(np.isfinite(grad)) and abs(float(total)) < 1e-5


def test_cosine_accepts_raw_embeddings(rng):
    a = rng.normal(size=(5, 4)).astype("float32")
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    np.testing.assert_allclose(pairwise_distances(a * 37.0, metric="cosine"),
                               pairwise_distances(unit, metric="cosine"), atol=1e-6)


def test_unknown_metric_names_argument_choices_and_value():
    for call in (lambda: pairwise_distances(np.ones((2, 2)), metric="L2"),
                 lambda: pairwise_distances_numpy(np.ones((2, 2)), metric="L2"),
                 lambda: paired_distances_numpy(np.ones((2, 2)), np.ones((2, 2)), "L2")):
        with pytest.raises(FacenetError, match=r"metric.*'squared_l2', 'l2', 'cosine'.*'L2'"):
            call()


def test_paired_shape_mismatch():
    with pytest.raises(FacenetError, match="same shape"):
        paired_distances_numpy(np.ones((2, 3)), np.ones((3, 3)))
