"""Issue 16: every loss and distance gives a finite loss and finite gradients on degenerate batches."""

import numpy as np
import pytest
import tensorflow as tf

from facenet_tf import losses
from facenet_tf.distances import DISTANCES


def batches():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(8, 16)).astype(np.float32)
    pk = np.repeat(np.arange(4), 2)
    return {
        "identical embeddings": (pk, np.tile(normal[:1], (8, 1))),
        "one identity": (np.zeros(8, int), normal),
        "no positive pair": (np.arange(8), normal),
        "float16": (pk, normal.astype(np.float16)),
        "huge norms": (pk, normal * 1e15),
        "tiny norms": (pk, normal * 1e-20),
        "zero embeddings": (pk, np.zeros((8, 16), np.float32)),
        "empty batch": (np.zeros(0, int), np.zeros((0, 16), np.float32)),
    }


@pytest.mark.parametrize("name", losses.LOSSES)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("case", list(batches()))
def test_finite_loss_and_gradients(name, distance, case):
    labels, embeddings = batches()[case]
    loss = losses.get(name, margin=0.2, distance=distance)
    x = tf.Variable(tf.constant(embeddings))
    with tf.GradientTape() as tape:
        value, stats = loss.compute(tf.constant(labels), x, return_stats=True)
    grad = tape.gradient(value, x)
    assert np.isfinite(value.numpy()), (case, value)
    assert grad is None or np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())), case
    assert all(np.isfinite(v.numpy()) for v in stats.values()), (case, stats)
