"""Batch-hard mining: :func:`triplet_hard_loss` and its Keras class."""

import functools

import keras
from keras import ops

from facenet_tf.errors import FacenetError
from facenet_tf.losses._base import TripletLossBase
from facenet_tf.losses._mining import positive_mask
from facenet_tf.losses.margin import Candidates, Mined, Miner, miner_entry, triplet_margin_loss


def triplet_hard_loss(labels, embeddings, margin=0.2, soft=False, distance="squared_l2",
                      return_stats=False, *, ref_labels=None, ref_embeddings=None,
                      anchor_offset=None):
    """Triplet loss with batch-hard mining (arXiv:1703.07737).

    For every anchor that has a positive, its farthest positive and closest negative::

        dp(a) = max_p D[a, p]        dn(a) = min_n D[a, n]
        loss  = mean over anchors with a positive and a negative of
                max(dp - dn + margin, 0)     or, if soft,    log(1 + exp(dp - dn))

    Differs from tensorflow-addons ``triplet_hard_loss`` in two documented ways: tfa
    averages over *all* anchors (an anchor without positive enters with ``dp = 0``,
    pushing its negatives away with no positive to pull), and tfa uses ``dn = max_j
    D[a, j]`` for an anchor without negative (only possible in a single-identity batch);
    here such a batch has no triplet and gives 0.0.

    Args:
        labels: int tensor ``[B]`` or ``[B, 1]``, identity of each embedding.
        embeddings: float tensor ``[B, D]``; float16/bfloat16 are computed in float32.
        margin: float >= 0, in units of the distance, unused if ``soft``; default 0.2.
        soft: use the soft-margin (softplus) form; default False.
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
        ``(loss, stats)`` where over anchors with a positive ``active_fraction`` is the
        fraction with ``dp - dn + margin > 0`` (``dp > dn`` if ``soft``, whose loss is
        never 0), ``semihard_fraction`` the fraction with ``dp < dn < dp + margin``, and
        ``mean_positive_distance`` / ``mean_negative_distance`` the means of ``dp``/``dn``.

    Raises:
        FacenetError: ``distance`` is not one of :data:`DISTANCES`, or the reference
            arguments are inconsistent.
    """
    return triplet_margin_loss(labels, embeddings, margin, distance, "hardest", soft, return_stats,
                               ref_labels=ref_labels, ref_embeddings=ref_embeddings, anchor_offset=anchor_offset)


def mine_hardest(candidates: Candidates, margin, reduce):
    """The ``hardest`` miner (:func:`triplet_hard_loss`): per anchor with a positive and a
    negative, its farthest positive and closest negative; one triplet per anchor."""
    dist, same, self_col = candidates.dist, candidates.same, candidates.self_col
    positive, negative = positive_mask(same, self_col), ~same
    has_neg = ops.any(negative, axis=1)
    has_pos = ops.any(positive, axis=1) & has_neg  # no negative, no triplet
    # Distances are >= 0, so 0 is a neutral fill for the max over positives. (initial=
    # because ops.max/min refuse the empty batch without it.)
    pos_dist = ops.max(ops.where(positive, dist, 0.0), axis=1, initial=0.0)
    neg_dist = ops.where(has_neg, ops.min(ops.where(negative, dist, float("inf")), axis=1,
                                          initial=float("inf")), 0.0)
    return reduce(Mined(pos_dist, neg_dist, has_pos))


#: ``--miner hardest``.
HARDEST = Miner(mine_hardest)


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletHardLoss(TripletLossBase):
    """Keras loss object for :func:`triplet_hard_loss` (same result).

    Args:
        margin: float >= 0, in units of the distance; default 0.2.
        soft: softplus instead of hinge, ``margin`` unused; default False.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        name: loss name, shown in logs; default ``"triplet_hard_loss"``.
        reduction: any Keras reduction; the result is one scalar, which every reduction
            passes through unchanged. Default ``"sum_over_batch_size"``.
        dtype: Keras loss dtype (labels are cast to it by ``Loss.__call__``, so they must
            be exact in it: below 2**24 for float32); default ``keras.backend.floatx()``.
        miner: a name of :data:`facenet_tf.losses.MINERS`; default ``"hardest"``.

    Raises:
        FacenetError: ``margin < 0``, unknown ``distance`` or ``miner``, ``soft`` with a miner
            of groups; a ``sample_weight`` at call time (one scalar for the whole batch cannot
            be weighted per sample).
    """

    default_miner = "hardest"

    def __init__(self, margin=0.2, soft=False, distance="squared_l2",
                 name="triplet_hard_loss", reduction="sum_over_batch_size", dtype=None, miner="hardest"):
        super().__init__(margin, distance, name, reduction, dtype, miner)
        self.soft = bool(soft)
        if self.soft and not miner_entry(self.miner).one_negative:
            raise FacenetError(f"soft=True needs a miner of one negative per triplet; miner {self.miner} sums the "
                               "hinge of its triplets")

    def _options(self):
        return {**super()._options(), "soft": self.soft}


#: ``--loss soft_hard``: batch-hard with the softplus soft margin.
soft_hard_loss = functools.partial(TripletHardLoss, soft=True)
