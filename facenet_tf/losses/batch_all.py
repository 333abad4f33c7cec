"""Batch-all: :func:`triplet_batch_all_loss` (every active triplet) and its Keras class."""

import keras
from keras import ops

from facenet_tf.losses._base import TripletLossBase
from facenet_tf.losses._mining import (batched_searchsorted, masked_mean, positive_mask, safe_divide, sort_negatives,
                                       take_rows)
from facenet_tf.losses.margin import Candidates, Mined, Miner, triplet_margin_loss


def triplet_batch_all_loss(labels, embeddings, margin=0.2, distance="squared_l2",
                           return_stats=False, *, ref_labels=None, ref_embeddings=None,
                           anchor_offset=None):
    """Triplet loss averaged over every active triplet of the batch (arXiv:1703.07737).

    A triplet ``(a, p, n)`` is valid for every positive pair ``(a, p)`` and negative
    ``n`` of ``a``; it is active when its loss is positive::

        loss = sum_{a,p,n} max(D[a, p] - D[a, n] + margin, 0) / #{active triplets}

    0.0 if no triplet is active. There are O(B³) triplets, but none is materialised:
    for a positive pair, the active negatives are those with ``D[a, n] < D[a, p] +
    margin``, so with each anchor's negative distances sorted once, a binary search
    gives their count ``k`` and a prefix sum their total ``S``, and the pair contributes
    ``k (D[a, p] + margin) - S``. Exact; O(B R log R) time, O(B R) memory.

    Args:
        labels: int tensor ``[B]`` or ``[B, 1]``, identity of each embedding.
        embeddings: float tensor ``[B, D]``; float16/bfloat16 are computed in float32.
        margin: float >= 0, in units of the distance; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        return_stats: also return the statistics dict; default False.
        ref_labels: int tensor ``[R]``, labels of the reference rows, or None (default) to
            mine inside the batch. Given together with ``ref_embeddings``.
        ref_embeddings: float tensor ``[R, D]``, the rows positives and negatives are
            mined among, or None (default).
        anchor_offset: int or int scalar tensor, the reference row of anchor 0 (anchor
            ``i`` is row ``anchor_offset + i``), or None (default): the anchors are not
            in the reference. Only with a reference.

    Returns:
        Scalar float32 loss (float64 for float64 embeddings); with ``return_stats``,
        ``(loss, stats)`` where ``active_fraction`` is the fraction of valid triplets
        that are active, ``semihard_fraction`` the fraction with ``D[a, p] < D[a, n] <
        D[a, p] + margin``, ``mean_positive_distance`` the mean ``D[a, p]`` over positive
        pairs and ``mean_negative_distance`` the mean ``D[a, n]`` over active triplets.

    Raises:
        FacenetError: ``distance`` is not one of :data:`DISTANCES`, or the reference
            arguments are inconsistent.
    """
    return triplet_margin_loss(labels, embeddings, margin, distance, "all", False, return_stats,
                               ref_labels=ref_labels, ref_embeddings=ref_embeddings, anchor_offset=anchor_offset)


def mine_all(candidates: Candidates, margin, reduce):
    """The ``all`` miner (:func:`triplet_batch_all_loss`): every active triplet, as one group
    per positive pair with its summed hinge ``k (D[a, p] + margin) - S`` (see there)."""
    dist, same, self_col = candidates.dist, candidates.same, candidates.self_col
    positive, negative = positive_mask(same, self_col), ~same
    num_neg, order, sorted_neg = sort_negatives(dist, negative)
    # Sorted negative distances again, now differentiable, 0 past the last negative.
    # Centred on the anchor's mean negative distance so the prefix sums stay small and
    # k (D[a, p] + margin) - S loses fewer digits to cancellation in float32.
    is_neg_rank = ops.arange(ops.shape(dist)[1], dtype="int32")[None, :] < num_neg[:, None]
    centre = ops.stop_gradient(masked_mean(dist, negative, axis=1))[:, None]
    ranked = ops.where(is_neg_rank, take_rows(dist, order) - centre, 0.0)
    prefix = ops.pad(ops.cumsum(ranked, axis=1), [[0, 0], [1, 0]])  # prefix[:, k]: first k
    plain = ops.stop_gradient(dist)
    count = batched_searchsorted(sorted_neg, plain + margin, side="left")  # D[a, n] < D[a, p] + m
    count = ops.where(positive, count, 0)
    count_f = ops.cast(count, dist.dtype)
    total = take_rows(prefix, count)
    pair_sum = count_f * (dist + margin - centre) - total
    num_active = ops.sum(count_f)

    def stats():
        num_valid = ops.sum(ops.where(positive, ops.cast(num_neg, dist.dtype)[:, None], 0.0))
        not_beyond = batched_searchsorted(sorted_neg, plain, side="right")  # D[a, n] <= D[a, p]
        semihard = ops.where(positive, ops.maximum(count - not_beyond, 0), 0)
        return (safe_divide(num_active, num_valid),
                safe_divide(ops.cast(ops.sum(semihard), dist.dtype), num_valid),
                masked_mean(dist, positive),
                safe_divide(ops.sum(ops.where(positive, total + count_f * centre, 0.0)), num_active))

    return reduce(Mined(dist, None, positive, hinge=pair_sum, count=count_f, stats=stats))


#: ``--miner all``: its entries are groups, so it serves the hinge (not the soft margin).
ALL = Miner(mine_all, one_negative=False)


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletBatchAllLoss(TripletLossBase):
    """Keras loss object for :func:`triplet_batch_all_loss` (same result).

    Args:
        margin: float >= 0, in units of the distance; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        name: loss name, shown in logs; default ``"triplet_batch_all_loss"``.
        reduction: any Keras reduction; the result is one scalar, which every reduction
            passes through unchanged. Default ``"sum_over_batch_size"``.
        dtype: Keras loss dtype (labels are cast to it by ``Loss.__call__``, so they must
            be exact in it: below 2**24 for float32); default ``keras.backend.floatx()``.
        miner: a name of :data:`facenet_tf.losses.MINERS`; default ``"all"``.

    Raises:
        FacenetError: ``margin < 0``, unknown ``distance`` or ``miner``; a ``sample_weight``
            at call time (one scalar for the whole batch cannot be weighted per sample).
    """

    default_miner = "all"

    def __init__(self, margin=0.2, distance="squared_l2", name="triplet_batch_all_loss",
                 reduction="sum_over_batch_size", dtype=None, miner="all"):
        super().__init__(margin, distance, name, reduction, dtype, miner)
