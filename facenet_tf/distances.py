"""Distances between embeddings: one name → definition table shared by every user.

The losses, the evaluation, the gallery and its faiss index all resolve a distance name
through :func:`get`, so a metric is defined once. Metrics, for rows ``x`` and ``y``::

    squared_l2(x, y) = ||x||² - 2 x·y + ||y||²          clamped at 0
    l2(x, y)         = sqrt(squared_l2(x, y))
    cosine(x, y)     = 1 - x·y / (||x|| ||y||)           clipped to [0, 2]

Each :class:`Distance` knows its matrix form on tensors (differentiable; the losses) and
on arrays (evaluation and gallery, float64 capable), its paired form, and how a flat faiss
index searches it (``IndexFlatL2``, or ``IndexFlatIP`` on unit rows for cosine). The
tensor forms are ``keras.ops`` (any Keras 3 backend); the array forms are NumPy. Keras is
imported inside the tensor forms only, so the name table (:data:`DISTANCES`, read by every
config and so by ``--help``) costs no TensorFlow import.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict

import numpy as np

from facenet_tf.errors import FacenetError, check_choice

# Norms below this are treated as this when normalising for the cosine distance, so a
# zero embedding gives distance 1 to everything instead of NaN (as tf.math.l2_normalize).
_NORM_EPSILON = 1e-12


def _squared_l2(a, b):
    from keras import ops

    return ops.maximum(
        ops.sum(ops.square(a), axis=1)[:, None] - 2.0 * ops.matmul(a, ops.transpose(b))
        + ops.sum(ops.square(b), axis=1)[None, :],
        0.0,
    )


def _cosine(a, b):
    from keras import ops

    return ops.clip(1.0 - ops.matmul(_unit_rows(a), ops.transpose(_unit_rows(b))), 0.0, 2.0)


def _squared_l2_numpy(a, b):
    return np.maximum((a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :], 0.0)


def _cosine_numpy(a, b):
    return np.clip(1.0 - unit_rows_numpy(a) @ unit_rows_numpy(b).T, 0.0, 2.0)


def _paired_squared_l2(a, b):
    return np.square(a - b).sum(1)


def _paired_cosine(a, b):
    return np.clip(1.0 - (unit_rows_numpy(a) * unit_rows_numpy(b)).sum(1), 0.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Distance:
    """One metric of the table.

    Attributes:
        name: its name, as in flags and metadata.
        matrix: ``(a [N, D], b [M, D]) -> [N, M]`` on tensors, before :attr:`root`.
        matrix_numpy: the same on arrays.
        paired_numpy: ``(a [N, D], b [N, D]) -> [N]`` on arrays, before :attr:`root`.
        root: the metric is the square root of the value above (``l2``).
        faiss_unit_inner_product: faiss searches it as inner product of unit rows
            (``IndexFlatIP``); otherwise as L2 (``IndexFlatL2``; same order for l2 and
            squared_l2).
    """

    name: str
    matrix: Callable
    matrix_numpy: Callable
    paired_numpy: Callable
    root: bool = False
    faiss_unit_inner_product: bool = False


_TABLE: Dict[str, Distance] = {
    "squared_l2": Distance("squared_l2", _squared_l2, _squared_l2_numpy, _paired_squared_l2),
    "l2": Distance("l2", _squared_l2, _squared_l2_numpy, _paired_squared_l2, root=True),
    "cosine": Distance("cosine", _cosine, _cosine_numpy, _paired_cosine, faiss_unit_inner_product=True),
}
#: The distance names, in table order.
DISTANCES = tuple(_TABLE)


def get(name: str, argument: str = "distance") -> Distance:
    """The :class:`Distance` called ``name``.

    Raises:
        FacenetError: unknown name (the message names ``argument`` and the choices).
    """
    return _TABLE[check_choice(argument, name, DISTANCES)]


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
    from keras import ops

    distance = get(metric, "metric")
    a = _as_float(a)
    same = b is None
    dist = distance.matrix(a, a if same else ops.cast(b, a.dtype))
    if same:
        # Rounding leaves ~1e-7 on the diagonal; the losses treat "distance to itself" as 0.
        dist = ops.where(ops.eye(ops.shape(a)[0], dtype="bool"), 0.0, dist)
    if distance.root:
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
    distance = get(metric, "metric")
    same = b is None
    a, b = _as_float_numpy(a, a if same else b)
    dist = distance.matrix_numpy(a, b)
    if same:
        np.fill_diagonal(dist, 0.0)
    return np.sqrt(dist) if distance.root else dist


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
    distance = get(metric, "metric")
    a, b = _as_float_numpy(a, b)
    if a.shape != b.shape:
        raise FacenetError(
            f"a and b must have the same shape; received {a.shape} and {b.shape}"
        )
    dist = distance.paired_numpy(a, b)
    return np.sqrt(dist) if distance.root else dist


def _as_float(x):
    import keras
    from keras import ops

    x = ops.convert_to_tensor(x)
    wide = keras.backend.standardize_dtype(x.dtype) == "float64"
    return ops.cast(x, "float64" if wide else "float32")


def _unit_rows(x):
    from keras import ops

    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True),
                                     _NORM_EPSILON))


def _as_float_numpy(a, b):
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.float64 if np.float64 in (a.dtype, b.dtype) else np.float32
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def unit_rows_numpy(x):
    """Rows scaled to unit L2 norm (a zero row stays zero), as the cosine distance uses."""
    return x / np.sqrt(np.maximum((x * x).sum(1, keepdims=True), _NORM_EPSILON))
