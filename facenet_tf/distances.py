"""Distances between embeddings, shared by the losses, evaluation and the gallery.

One name table, :data:`DISTANCES`, and three functions:

* :func:`pairwise_distances` on tensors (differentiable; used inside the losses),
* :func:`pairwise_distances_numpy` and :func:`paired_distances_numpy` on arrays (used by
  evaluation and the gallery, float64 capable).

Metrics, for rows ``x`` and ``y``::

    squared_l2(x, y) = ||x||² - 2 x·y + ||y||²          clamped at 0
    l2(x, y)         = sqrt(squared_l2(x, y))
    cosine(x, y)     = 1 - x·y / (||x|| ||y||)           clipped to [0, 2]
"""

import numpy as np
import tensorflow as tf
from keras import ops

from facenet_tf.errors import FacenetError, check_choice

DISTANCES = ("squared_l2", "l2", "cosine")

# Norms below this are treated as this when normalising for the cosine distance, so a
# zero embedding gives distance 1 to everything instead of NaN (as tf.math.l2_normalize).
_NORM_EPSILON = 1e-12


def pairwise_distances(a, b=None, metric="squared_l2"):
    """Distance between every row of ``a`` and every row of ``b``.

    ``out[i, j] = metric(a[i], b[j])`` with the formulas of :mod:`facenet_tf.distances`.
    float16 and bfloat16 inputs are computed in float32.

    Args:
        a: float tensor, shape ``[N, D]``.
        b: float tensor, shape ``[M, D]``, or ``None`` (default) to compare ``a`` with
            itself; then the diagonal is exactly 0 and has zero gradient.
        metric: one of :data:`DISTANCES`; default ``"squared_l2"``.

    Returns:
        Tensor ``[N, M]``: float32 (float64 if the input is float64), all values ``>= 0``.

    Raises:
        FacenetError: ``metric`` is not one of :data:`DISTANCES`.
    """
    check_choice("metric", metric, DISTANCES)
    a = _as_float(a)
    same = b is None
    b = a if same else ops.cast(b, a.dtype)
    if metric == "cosine":
        a, b = _unit_rows(a), _unit_rows(b)
        dist = ops.clip(1.0 - ops.matmul(a, ops.transpose(b)), 0.0, 2.0)
    else:
        dist = ops.maximum(
            ops.sum(ops.square(a), axis=1)[:, None]
            - 2.0 * ops.matmul(a, ops.transpose(b))
            + ops.sum(ops.square(b), axis=1)[None, :],
            0.0,
        )
    if same:
        # Rounding leaves ~1e-7 on the diagonal; the losses treat "distance to itself" as 0.
        dist = ops.where(ops.eye(ops.shape(a)[0], dtype="bool"), 0.0, dist)
    if metric == "l2":
        # d sqrt(x)/dx is infinite at x = 0 (identical embeddings, and the diagonal), and
        # inf * 0 in backprop is NaN. Take the sqrt of 1 there instead and select 0 after,
        # so both the value and the gradient at 0 are 0.
        positive = dist > 0.0
        dist = ops.where(positive, ops.sqrt(ops.where(positive, dist, 1.0)), 0.0)
    return dist


def pairwise_distances_numpy(a, b=None, metric="squared_l2"):
    """NumPy twin of :func:`pairwise_distances` (no gradient; float64 if given float64).

    Args:
        a: array ``[N, D]``.
        b: array ``[M, D]``, or ``None`` (default) for ``a`` against itself (zero diagonal).
        metric: one of :data:`DISTANCES`; default ``"squared_l2"``.

    Returns:
        Array ``[N, M]``, float64 if either input is float64, else float32.

    Raises:
        FacenetError: ``metric`` is not one of :data:`DISTANCES`.
    """
    check_choice("metric", metric, DISTANCES)
    same = b is None
    a, b = _as_float_numpy(a, a if same else b)
    if metric == "cosine":
        dist = np.clip(1.0 - _unit_rows_numpy(a) @ _unit_rows_numpy(b).T, 0.0, 2.0)
    else:
        dist = (a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]
        dist = np.maximum(dist, 0.0)
    if same:
        np.fill_diagonal(dist, 0.0)
    if metric == "l2":
        dist = np.sqrt(dist)
    return dist


def paired_distances_numpy(a, b, metric="squared_l2"):
    """Distance between row ``i`` of ``a`` and row ``i`` of ``b``, for every ``i``.

    Args:
        a: array ``[N, D]``.
        b: array ``[N, D]``.
        metric: one of :data:`DISTANCES`; default ``"squared_l2"``.

    Returns:
        Array ``[N]``, float64 if either input is float64, else float32.

    Raises:
        FacenetError: ``metric`` is not one of :data:`DISTANCES`, or the shapes differ.
    """
    check_choice("metric", metric, DISTANCES)
    a, b = _as_float_numpy(a, b)
    if a.shape != b.shape:
        raise FacenetError(
            f"a and b must have the same shape; received {a.shape} and {b.shape}"
        )
    if metric == "cosine":
        return np.clip(
            1.0 - (_unit_rows_numpy(a) * _unit_rows_numpy(b)).sum(1), 0.0, 2.0
        )
    dist = np.square(a - b).sum(1)
    return np.sqrt(dist) if metric == "l2" else dist


def _as_float(x):
    x = ops.convert_to_tensor(x)
    return ops.cast(x, "float64" if x.dtype == tf.float64 else "float32")


def _unit_rows(x):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True),
                                     _NORM_EPSILON))


def _as_float_numpy(a, b):
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.float64 if np.float64 in (a.dtype, b.dtype) else np.float32
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _unit_rows_numpy(x):
    return x / np.sqrt(np.maximum((x * x).sum(1, keepdims=True), _NORM_EPSILON))
