"""The shared Keras ``Loss`` base of the triplet loss classes: options checked, the
:func:`~facenet_tf.losses.margin.triplet_margin_loss` of the chosen miner, config."""

import keras
from keras import ops

from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.losses.margin import miner_entry, triplet_margin_loss


class TripletLossBase(keras.losses.Loss):
    """Shared constructor, checks and config of the triplet loss classes.

    ``miner``: a name of :data:`facenet_tf.losses.MINERS` (``None``: the class's
    :attr:`default_miner`, the one its ``--loss`` name stands for).
    """

    #: The miner of the class's ``--loss`` name.
    default_miner = "semihard"

    def __init__(self, margin=0.2, distance="squared_l2", name=None,
                 reduction="sum_over_batch_size", dtype=None, miner=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not margin >= 0:
            raise FacenetError(f"margin must be >= 0; received {margin!r}")
        self.margin = float(margin)
        self.distance = check_choice("distance", distance, DISTANCES)
        self.miner = miner or type(self).default_miner
        miner_entry(self.miner)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise FacenetError(
                f"{type(self).__name__} is a batch-level loss; sample_weight must be None"
            )
        return super().__call__(y_true, y_pred)

    def _options(self):
        return {"margin": self.margin, "distance": self.distance, "miner": self.miner}

    def call(self, y_true, y_pred):
        # Loss.__call__ has cast the labels to the loss dtype (exact below 2**24, so int32
        # holds them; JAX has no int64 unless x64 is enabled).
        return triplet_margin_loss(ops.cast(y_true, "int32"), y_pred, **self._options())

    def compute(self, labels, embeddings, ref_labels=None, ref_embeddings=None,
                anchor_offset=None, return_stats=False):
        """The pure loss function with this object's options, in one pass.

        For trainers that want the statistics with the loss, or mine against a reference
        set (another replica's or a memory bank's embeddings); ``Loss.__call__`` offers
        neither. No reduction or dtype policy is applied: the function's scalar is final.

        Args:
            labels: int tensor ``[B]`` or ``[B, 1]``.
            embeddings: float tensor ``[B, D]``.
            ref_labels: int tensor ``[R]`` or None (default: mine inside the batch).
            ref_embeddings: float tensor ``[R, D]`` or None, given with ``ref_labels``.
            anchor_offset: reference row of anchor 0 (int or int scalar tensor), or None
                (default): the anchors are not in the reference.
            return_stats: also return the statistics dict; default False.

        Returns:
            The scalar loss, or ``(loss, stats)`` with ``return_stats``; see the function.
        """
        return triplet_margin_loss(
            ops.convert_to_tensor(labels), embeddings, return_stats=return_stats,
            ref_labels=ref_labels, ref_embeddings=ref_embeddings,
            anchor_offset=anchor_offset, **self._options())

    def get_config(self):
        return {**super().get_config(), **self._options()}
