"""The one backend dispatch of the losses: native kernels where a benchmark shows they pay.

Everything else in :mod:`facenet_tf.losses` is ``keras.ops``. Here, and only here, the
active Keras backend is asked for a faster form of three steps (figures in
benchmarks/RESULTS.md, "Triplet losses on every Keras 3 backend"):

* :func:`compiled`: whether the current computation is compiled by XLA (every JAX
  program; TensorFlow inside ``jit_compile=True``, which ``model.fit`` turns on). XLA's
  CPU backend neither vectorises a two-output argmin nor lowers TF's searchsorted
  without a B×R×R compare, so the callers pick XLA-friendly forms there.
* :func:`searchsorted_rows`: a native batched binary search (``tf.searchsorted``
  outside XLA, ``torch.searchsorted``), ~3x faster than binary lifting in ``keras.ops``.
* :func:`stable_sort_rows`: TF's ``top_k`` sorts and returns the values in one op.
* :func:`take_rows`: TF's ``gather(batch_dims=1)``, which (unlike Keras'
  ``take_along_axis`` on TF) accepts an empty batch and adds no broadcasting ops.

TensorFlow and PyTorch are imported here only when they are the Keras backend, so the
losses import neither under JAX.
"""

import keras
from keras import ops


def _backend():
    return keras.backend.backend()


def compiled():
    """True when the ops being built run compiled by XLA (see the module docstring)."""
    backend = _backend()
    if backend == "jax":
        return True
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # private module moved: the XLA-safe forms are right everywhere
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def searchsorted_rows(sorted_rows, values, side):
    """Native row-wise ``searchsorted`` of ``values [B, R]`` in ``sorted_rows [B, R]``
    as int32, or None where the backend has none worth using."""
    backend = _backend()
    if backend == "tensorflow" and not compiled():
        import tensorflow as tf

        return tf.searchsorted(sorted_rows, values, side=side)
    if backend == "torch":
        import torch

        return torch.searchsorted(sorted_rows.contiguous(), values.contiguous(),
                                  right=side == "right", out_int32=True)
    return None


def stable_sort_rows(values):
    """``(order, sorted_values)``: each row of ``values [B, R]`` ascending, equal values
    in column order; ``order`` int32."""
    if _backend() == "tensorflow":
        import tensorflow as tf

        # top_k of the negated row is a stable sort and returns the values too.
        negated, order = tf.math.top_k(-values, k=ops.shape(values)[1], sorted=True)
        return order, -negated
    order = ops.cast(ops.argsort(values, axis=1), "int32")  # stable in keras.ops
    return order, ops.take_along_axis(values, order, axis=1)


def take_rows(values, columns):
    """``out[i, j] = values[i, columns[i, j]]`` for ``values [B, R]``, ``columns [B, K]``."""
    if _backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(values, columns, batch_dims=1)
    return ops.take_along_axis(values, columns, axis=1)
