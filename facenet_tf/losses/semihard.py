"""Semi-hard negative mining (FaceNet): :func:`triplet_semihard_loss` and its Keras class."""

import keras
from keras import ops

from facenet_tf.losses import _native
from facenet_tf.losses._base import TripletLossBase
from facenet_tf.losses._mining import (batched_searchsorted, first_extreme, label_groups, positive_mask, sort_negatives,
                                       take_rows)
from facenet_tf.losses.margin import Candidates, Mined, Miner, triplet_margin_loss

# Semi-hard mining takes its fast path when no anchor's label occurs in more than this
# many reference rows (P×K batches: K); past it, it sorts each anchor's negatives.
# Measured crossover on CPU: see benchmarks/RESULTS.md, "Semi-hard vs batch-hard".
COMPACT_GROUP = 32


def triplet_semihard_loss(labels, embeddings, margin=0.2, distance="squared_l2",
                          return_stats=False, *, ref_labels=None, ref_embeddings=None,
                          anchor_offset=None):
    """Triplet loss with semi-hard negative mining (FaceNet, arXiv:1503.03832).

    For every positive pair ``(a, p)`` the negative is the closest one *beyond* the
    positive, or the farthest negative if none is beyond (the lowest reference row
    among equally distant ones)::

        n*(a, p) = argmin_n {D[a, n] : D[a, n] > D[a, p]}   if that set is not empty
                   argmax_n  D[a, n]                        otherwise
        loss = mean over positive pairs of max(D[a, p] - D[a, n*] + margin, 0)

    Identical to tensorflow-addons ``triplet_semihard_loss`` with the matching distance
    (``"l2"``: ``"L2"``, ``"squared_l2"``: ``"squared-L2"``, ``"cosine"``: ``"angular"``)
    on every batch with at least two identities. A batch without any triplet gives 0.0
    with zero gradients: no positive pair (tfa: NaN) or a single identity, where no anchor
    has a negative (tfa: ``mean D[a, p] + margin``, from taking ``D[a, n] = 0``).

    Cost, with ``G`` the largest number of reference rows sharing an anchor's label: if
    ``G <= 32`` (P×K batches with K <= 32), O(B R G) time and O(B R) memory: each
    anchor's positives are listed from the labels, and one masked minimum over its
    negatives per positive finds the negative. Otherwise O(B R log R): each anchor's
    negative distances are sorted once and a batched binary search finds, for every
    positive, the first negative beyond it. No B×R×R tensor either way.

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
        ``(loss, stats)`` where over positive pairs ``active_fraction`` is the fraction
        with non-zero loss, ``semihard_fraction`` the fraction whose negative is
        semi-hard (``D[a, p] < D[a, n*] < D[a, p] + margin``), ``mean_positive_distance``
        the mean ``D[a, p]`` and ``mean_negative_distance`` the mean ``D[a, n*]``.

    Raises:
        FacenetError: ``distance`` is not one of :data:`DISTANCES`, or the reference
            arguments are inconsistent.
    """
    return triplet_margin_loss(labels, embeddings, margin, distance, "semihard", False, return_stats,
                               ref_labels=ref_labels, ref_embeddings=ref_embeddings, anchor_offset=anchor_offset)


def mine_semihard(candidates: Candidates, margin, reduce):
    """The ``semihard`` miner (:func:`triplet_semihard_loss`): per positive pair, the closest
    negative beyond the positive, else the farthest; one triplet per positive pair. Each way
    (compact or sorted, chosen at run time) hands its triplets to ``reduce``."""
    labels, ref_labels, dist, same, self_col = candidates
    if dist.shape[1] == 0:  # empty reference: no triplet, and no column to gather from
        return reduce(Mined(dist, dist, ops.zeros_like(same)))
    perm, start, end = label_groups(labels, ref_labels)
    return _native.cond(
        ops.max(end - start, initial=0) <= COMPACT_GROUP,
        lambda: reduce(_semihard_compact(dist, same, self_col, perm, start, end)),
        lambda: reduce(_semihard_sorted(dist, same, self_col)))


def _semihard_compact(dist, same, self_col, perm, start, end) -> Mined:
    """Semi-hard triplets when every anchor's label occupies at most ``COMPACT_GROUP``
    reference rows: anchor ``a``'s candidate positives are ``perm[start[a]:end[a]]``
    (``[B, G]``), and for each slot one masked minimum over the negatives' row finds
    the first negative beyond it. O(B R G) instead of a sort of every row."""
    plain = ops.stop_gradient(dist)
    num_ref = ops.shape(dist)[1]
    slot_ids = ops.arange(COMPACT_GROUP, dtype="int32")[None, :]
    slot = start[:, None] + slot_ids
    candidate = ops.take(perm, ops.minimum(slot, num_ref - 1))  # [B, G] reference rows
    positive = (slot < end[:, None]) & (end - start < num_ref)[:, None]  # and a negative
    if self_col is not None:
        positive = positive & (candidate != self_col[:, None])
    neg = ops.where(same, float("inf"), plain)  # negatives' distances, +inf elsewhere
    # Farthest negative, the fallback; distances are >= 0, so -1 marks non-negatives.
    farthest = first_extreme(ops.where(same, -1.0, plain), largest=True)
    farthest_dist = take_rows(plain, farthest[:, None])[:, 0]
    pos_plain = take_rows(plain, candidate)

    def mine_slot(j, chosen):
        threshold = ops.take(pos_plain, j, axis=1)
        beyond = ops.where(neg > threshold[:, None], neg, float("inf"))
        exists = threshold < farthest_dist  # some negative is beyond the positive
        index = ops.where(exists, first_extreme(beyond, largest=False), farthest)
        return j + 1, ops.where(slot_ids == j, index[:, None], chosen)

    used = ops.minimum(ops.max(end - start, initial=0), COMPACT_GROUP)  # slots holding rows
    # Mining only: nothing in the loop carries a gradient (JAX cannot reverse-differentiate
    # a while loop), the distances of the chosen rows are taken after it.
    _, chosen = _native.while_loop(
        lambda j, chosen: j < used, mine_slot,
        (ops.convert_to_tensor(0, "int32"), ops.zeros_like(candidate)),
        maximum_iterations=COMPACT_GROUP, bound=used)
    return Mined(take_rows(dist, candidate), take_rows(dist, chosen), positive)


def _semihard_sorted(dist, same, self_col) -> Mined:
    """Semi-hard triplets for any batch: every anchor's negative distances are sorted once
    and a batched binary search finds, for each positive, the first negative beyond it."""
    negative = ~same
    positive = positive_mask(same, self_col) & ops.any(negative, axis=1)[:, None]
    num_neg, order, sorted_neg = sort_negatives(dist, negative)
    # First rank whose negative distance is strictly greater than D[a, p].
    beyond = batched_searchsorted(sorted_neg, ops.stop_gradient(dist), side="right")
    found = beyond < num_neg[:, None]
    first = take_rows(order, ops.minimum(beyond, ops.shape(dist)[1] - 1))
    farthest = first_extreme(ops.where(negative, ops.stop_gradient(dist), -1.0),
                              largest=True)
    chosen = ops.where(found, first, farthest[:, None])
    neg_dist = ops.where((num_neg > 0)[:, None], take_rows(dist, chosen), 0.0)
    return Mined(dist, neg_dist, positive)


#: ``--miner semihard``.
SEMIHARD = Miner(mine_semihard)


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletSemiHardLoss(TripletLossBase):
    """Keras loss object for :func:`triplet_semihard_loss` (same result).

    Args:
        margin: float >= 0, in units of the distance; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        name: loss name, shown in logs; default ``"triplet_semihard_loss"``.
        reduction: any Keras reduction; the result is one scalar, which every reduction
            passes through unchanged. Default ``"sum_over_batch_size"``.
        dtype: Keras loss dtype (labels are cast to it by ``Loss.__call__``, so they must
            be exact in it: below 2**24 for float32); default ``keras.backend.floatx()``.
        miner: a name of :data:`facenet_tf.losses.MINERS`; default ``"semihard"``.

    Raises:
        FacenetError: ``margin < 0``, unknown ``distance`` or ``miner``; a ``sample_weight``
            at call time (one scalar for the whole batch cannot be weighted per sample).

    Example::

        model.compile(optimizer="adam", loss=TripletSemiHardLoss(margin=0.2))
        model.fit(images, identity_labels, batch_size=P * K)
    """

    default_miner = "semihard"

    def __init__(self, margin=0.2, distance="squared_l2", name="triplet_semihard_loss",
                 reduction="sum_over_batch_size", dtype=None, miner="semihard"):
        super().__init__(margin, distance, name, reduction, dtype, miner)
