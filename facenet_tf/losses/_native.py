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
* :func:`cond` / :func:`while_loop`: JAX runs ``lax.cond``/``lax.while_loop`` outside
  ``jit`` by tracing and compiling both branches and the body on *every* call (~20 s
  per semi-hard call at B = 32 on this CPU); when the predicate is a concrete value
  (eager JAX: the mining depends on labels and stop-gradient distances only), plain
  Python control flow runs the same ops instead.
* :func:`arg_extreme`: the backend's own argmin/argmax (first index on ties). Keras'
  float ``argmin`` on TF adds three [B, R] passes to map -0.0 (an XLA flush-to-zero
  fix); distances are >= 0 or +-inf here, so it is not needed (measured ~20% of eager
  TF semi-hard at B = 1024).
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


def _concrete_jax(value):
    """True when JAX is the backend and ``value`` is a concrete array, not a tracer."""
    if _backend() != "jax":
        return False
    import jax

    return not isinstance(value, jax.core.Tracer)


def cond(pred, true_fn, false_fn):
    """``keras.ops.cond``; a Python ``if`` where JAX holds a concrete ``pred``."""
    if _concrete_jax(pred):
        return true_fn() if bool(pred) else false_fn()
    return ops.cond(pred, true_fn, false_fn)


def while_loop(cond_fn, body, loop_vars, maximum_iterations, bound):
    """``keras.ops.while_loop``; a Python loop where JAX holds a concrete ``bound`` (the
    value the condition compares with)."""
    if _concrete_jax(bound):
        for _ in range(maximum_iterations):
            if not bool(cond_fn(*loop_vars)):
                break
            loop_vars = tuple(body(*loop_vars))
        return loop_vars
    return ops.while_loop(cond_fn, body, loop_vars, maximum_iterations=maximum_iterations)


def arg_extreme(values, largest):
    """Per row of ``values [B, R]``, the int32 column of its max (``largest``) or min,
    the lowest one on ties (outside XLA; see :func:`facenet_tf.losses._mining.first_extreme`)."""
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        pick = tf.argmax if largest else tf.argmin
        return pick(values, axis=1, output_type=tf.int32)
    if backend == "torch":
        import torch

        pick = torch.argmax if largest else torch.argmin
        return pick(values, dim=1).to(torch.int32)
    pick = ops.argmax if largest else ops.argmin
    return ops.cast(pick(values, axis=1), "int32")
