"""Shared steps of the triplet losses: masks, reference handling, sorting, searching, means.

Written in ``keras.ops`` so the losses run on every Keras 3 backend. The few steps with a
faster backend-specific form (a native batched binary search, a one-pass argmin, a
native sort of label groups) go through :mod:`facenet_tf.losses._native`, the one place
that names a backend.
"""

import keras
from keras import ops

from facenet_tf.distances import DISTANCES, pairwise_distances
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.losses import _native


def prepare(labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset):
    """Checked inputs: anchor and reference labels, anchor embeddings in the compute
    dtype, ``D`` ``[B, R]``, ``same`` ``[B, R]`` (same label) and ``self_col`` ``[B]``,
    the reference row of each anchor itself (None if the anchors are not in it)."""
    check_choice("distance", distance, DISTANCES)
    embeddings = ops.convert_to_tensor(embeddings)
    if keras.backend.standardize_dtype(embeddings.dtype) != "float64":
        embeddings = ops.cast(embeddings, "float32")
    labels = ops.reshape(ops.convert_to_tensor(labels), [-1])
    if (ref_labels is None) != (ref_embeddings is None):
        raise FacenetError(
            "ref_labels and ref_embeddings must be given together; received "
            f"ref_labels {'None' if ref_labels is None else 'set'} and ref_embeddings "
            f"{'None' if ref_embeddings is None else 'set'}")
    num_anchors = ops.shape(labels)[0]
    if ref_embeddings is None:
        if anchor_offset is not None:
            raise FacenetError("anchor_offset needs ref_labels and ref_embeddings; "
                               f"received anchor_offset={anchor_offset!r} without them")
        # b=None: the diagonal is exactly 0 with zero gradient.
        dist = pairwise_distances(embeddings, metric=distance)
        ref_labels, self_col = labels, ops.arange(num_anchors, dtype="int32")
    else:
        if isinstance(anchor_offset, (bool, float)) or (
                isinstance(anchor_offset, int) and anchor_offset < 0):
            raise FacenetError("anchor_offset must be None, an int >= 0 or an int tensor; "
                               f"received {anchor_offset!r}")
        ref_labels = ops.cast(ops.reshape(ops.convert_to_tensor(ref_labels), [-1]),
                              labels.dtype)
        ref_embeddings = ops.convert_to_tensor(ref_embeddings)
        rows = (ref_labels.shape[0], ref_embeddings.shape[0])
        if None not in rows and rows[0] != rows[1]:
            raise FacenetError("ref_labels and ref_embeddings must have as many rows; "
                               f"received {rows[0]} and {rows[1]}")
        dist = pairwise_distances(embeddings, ref_embeddings, metric=distance)
        self_col = None if anchor_offset is None else (
            ops.arange(num_anchors, dtype="int32") + ops.cast(anchor_offset, "int32"))
    same = ops.equal(labels[:, None], ref_labels[None, :])
    return labels, ref_labels, embeddings, dist, same, self_col


def positive_mask(same, self_col):
    """``[B, R]``: same label and not the anchor itself."""
    if self_col is None:
        return same
    columns = ops.arange(ops.shape(same)[1], dtype="int32")
    return same & (columns[None, :] != self_col[:, None])


def label_groups(labels, ref_labels):
    """Reference rows grouped by label: ``perm`` lists them sorted by label (stably),
    and anchor ``i``'s label occupies ``perm[start[i]:end[i]]`` (empty if absent)."""
    perm = ops.cast(ops.argsort(ref_labels), "int32")  # stable on every backend
    if _native.compiled():
        # Two fused [B, R] count reductions compile faster than two binary searches.
        start = ops.sum(ops.cast(ref_labels[None, :] < labels[:, None], "int32"), axis=1)
        end = start + ops.sum(ops.cast(ref_labels[None, :] == labels[:, None], "int32"),
                              axis=1)
        return perm, start, end
    sorted_labels = ops.take(ref_labels, perm)
    start = ops.searchsorted(sorted_labels, labels, side="left")
    end = ops.searchsorted(sorted_labels, labels, side="right")
    return perm, ops.cast(start, "int32"), ops.cast(end, "int32")


def first_extreme(values, largest):
    """Per row, the column of the smallest (or largest) value; the lowest column on ties.

    Eagerly ``argmin``/``argmax`` (one pass). Compiled by XLA (TF ``jit_compile``, every
    JAX program) those are a two-output reduction that XLA's CPU backend does not
    vectorise, so there the extreme value is found first and then its lowest column, two
    plain reductions that fuse with the producer of ``values`` (measured ~1.5x faster at
    B = 1024–2048, see RESULTS.md)."""
    if not _native.compiled():
        pick = ops.argmax if largest else ops.argmin
        return ops.cast(pick(values, axis=1), "int32")
    extreme = (ops.max if largest else ops.min)(values, axis=1, keepdims=True)
    cols = ops.shape(values)[1]
    columns = ops.arange(cols, dtype="int32")[None, :]
    return ops.min(ops.where(values == extreme, columns, cols), axis=1)


def sort_negatives(dist, negative):
    """Per anchor: number of negatives, their column indices and distances, ascending.

    Non-negatives are +inf so they sort last; ties keep column order (a stable sort)."""
    masked = ops.where(negative, ops.stop_gradient(dist), float("inf"))
    order, sorted_dist = _native.stable_sort_rows(masked)
    num_neg = ops.sum(ops.cast(negative, "int32"), axis=1)
    return num_neg, order, sorted_dist


def batched_searchsorted(sorted_rows, values, side):
    """Row-wise search on ``[B, R]`` rows: per value, the count of its row's elements
    ``<= value`` (``side="right"``) or ``< value`` (``side="left"``); int32 ``[B, R]``.

    ``keras.ops.searchsorted`` takes one 1-D sequence, so where the backend has no native
    batched search that pays (see :mod:`._native`), the search is done by binary lifting:
    log2(R) steps, each one gather of B·R elements. (TF under XLA lowers
    ``tf.searchsorted`` to a compare of every value with every element, a B×R×R tensor,
    33 GB at B = 2048; this form never builds one.)
    """
    native = _native.searchsorted_rows(sorted_rows, values, side)
    if native is not None:
        return native
    rows, length = ops.shape(sorted_rows)[0], ops.shape(sorted_rows)[1]
    flat = ops.reshape(sorted_rows, [-1])
    # int32 flat indices: fine while B·R < 2**31, i.e. B < 46341 for R = B.
    offsets = (ops.arange(rows, dtype="int32") * length)[:, None]
    found = ops.zeros(ops.shape(values), "int32")  # invariant: found elements satisfy it
    steps = sorted_rows.shape[1].bit_length() if sorted_rows.shape[1] else 31
    for step in (1 << k for k in reversed(range(steps))):
        candidate = found + step
        probe = ops.take(flat, offsets + ops.minimum(candidate, length) - 1)
        below = probe <= values if side == "right" else probe < values
        found = ops.where((candidate <= length) & below, candidate, found)
    return found


def take_rows(values, columns):
    """``out[i, j] = values[i, columns[i, j]]`` for ``values [B, R]``, ``columns [B, K]``."""
    return _native.take_rows(values, columns)


def safe_divide(total, count):
    return total / ops.maximum(ops.cast(count, total.dtype), 1.0)


def masked_mean(values, mask, axis=None):
    return safe_divide(ops.sum(ops.where(mask, values, 0.0), axis=axis),
                       ops.sum(ops.cast(mask, values.dtype), axis=axis))


def mining_stats(embeddings, stats):
    norms = ops.norm(embeddings, axis=1)
    stats["embedding_norm"] = safe_divide(ops.sum(norms), ops.shape(norms)[0])
    return {key: ops.cast(ops.stop_gradient(value), "float32")
            for key, value in stats.items()}
