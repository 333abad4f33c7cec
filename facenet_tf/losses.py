"""Triplet losses with online mining inside the batch, or against a reference set.

Each loss exists twice, as in ``keras/src/losses/losses.py``: a pure function
``triplet_*_loss(labels, embeddings, ...)`` and a thin :class:`keras.losses.Loss` subclass
that stores the options. Unlike Keras' per-sample losses these are *batch-level*: mining
compares every sample with every other, so the function returns one scalar, already the
documented mean, and ``Loss.__call__`` passes a scalar through unchanged. (It then also
skips Keras' 1/replicas scaling: under ``tf.distribute`` with several replicas, average
the replicas' losses yourself or mine over all replicas' embeddings, see below.)

Notation: the anchors are the ``B`` rows of the batch; positives and negatives are mined
among the ``R`` rows of the *reference*, which is the batch itself unless ``ref_labels``
and ``ref_embeddings`` are given. ``D`` is the ``[B, R]`` matrix
:func:`facenet_tf.distances.pairwise_distances` ``(embeddings, reference)``; ``(a, p)`` is
a *positive pair* (same label, ``p`` not ``a`` itself); ``n`` is a *negative* of ``a``
(different label). A triplet needs both, so a batch with no positive pair or with a single
identity gives 0.0 and zero gradients (in a batch of two or more identities every anchor
has a negative). Mining (which ``n`` or ``p``) is not differentiated; gradients flow
through the chosen distances only.

Reference set (``keras.losses.circle`` has the same hook): ``ref_labels`` ``[R]`` and
``ref_embeddings`` ``[R, D]`` come together, and ``anchor_offset`` says which reference
row is each anchor itself: row ``anchor_offset + i`` is anchor ``i``, never its own
positive. ``anchor_offset=None`` means the anchors are not in the reference (a memory
bank: every reference row with the anchor's label is a positive). Without a reference,
the batch is the reference with offset 0. For mining over the global batch across
replicas, each replica passes its local batch as anchors, the all-gathered global batch as
reference and ``anchor_offset = replica_id * local_batch``. When the replicas hold equal
numbers of what the loss averages over (positive pairs for semi-hard, anchors with a
positive for batch-hard), the mean of the replicas' losses is the global-batch loss, with
the same gradients. Batch-all divides by its number of active triplets, which differs
between replicas: the global loss is ``sum_h n_h loss_h / sum_h n_h`` with ``n_h`` the
active triplets of replica ``h``, ``n_h = active_fraction_h * sum_a P_a N_a`` over its
anchors (``P_a``, ``N_a``: positives and negatives of ``a`` in the reference).

Every function takes ``return_stats``; with ``True`` it returns ``(loss, stats)``, where
``stats`` holds float32 scalars computed from the same ``D`` (0.0 on empty batches):
``active_fraction``, ``semihard_fraction``, ``mean_positive_distance``,
``mean_negative_distance``, ``embedding_norm`` (mean norm of the anchors' embeddings).
Each function documents their meaning.
"""

import keras
import tensorflow as tf
from keras import ops

from facenet_tf.distances import DISTANCES, pairwise_distances
from facenet_tf.errors import FacenetError, check_choice

LOSSES = ("semihard", "hard", "soft_hard", "batch_all")

# Semi-hard mining takes its fast path when no anchor's label occurs in more than this
# many reference rows (P×K batches: K); past it, it sorts each anchor's negatives.
# Measured crossover on CPU: see benchmarks/RESULTS.md, "Semi-hard vs batch-hard".
_COMPACT_GROUP = 32


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
    labels, ref_labels, emb, dist, same, self_col = _prepare(
        labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset)
    if dist.shape[1] == 0:  # empty reference: no triplet, and no column to gather from
        terms = (ops.sum(dist),) * 5
    else:
        perm, start, end = _label_groups(labels, ref_labels)
        terms = tf.cond(
            tf.reduce_max(end - start) <= _COMPACT_GROUP,
            lambda: _semihard_compact(dist, same, self_col, perm, start, end, margin),
            lambda: _semihard_sorted(dist, same, self_col, margin))
    if not return_stats:
        return terms[0]
    return terms[0], _stats(emb, dict(zip(
        ("active_fraction", "semihard_fraction", "mean_positive_distance",
         "mean_negative_distance"), terms[1:])))


def _semihard_compact(dist, same, self_col, perm, start, end, margin):
    """Semi-hard terms when every anchor's label occupies at most ``_COMPACT_GROUP``
    reference rows: anchor ``a``'s candidate positives are ``perm[start[a]:end[a]]``
    (``[B, G]``), and for each slot one masked minimum over the negatives' row finds
    the first negative beyond it. O(B R G) instead of a sort of every row."""
    plain = ops.stop_gradient(dist)
    num_ref = ops.shape(dist)[1]
    slot = start[:, None] + tf.range(_COMPACT_GROUP, dtype="int32")[None, :]
    candidate = tf.gather(perm, ops.minimum(slot, num_ref - 1))  # [B, G] reference rows
    positive = (slot < end[:, None]) & (end - start < num_ref)[:, None]  # and a negative
    if self_col is not None:
        positive = positive & (candidate != self_col[:, None])
    neg = ops.where(same, float("inf"), plain)  # negatives' distances, +inf elsewhere
    # Farthest negative, the fallback; distances are >= 0, so -1 marks non-negatives.
    farthest = _first_extreme(ops.where(same, -1.0, plain), largest=True)
    farthest_dist = tf.gather(plain, farthest, batch_dims=1)
    pos_plain = tf.gather(plain, candidate, batch_dims=1)
    slot_ids = tf.range(_COMPACT_GROUP, dtype="int32")[None, :]

    def mine_slot(j, chosen, found):
        threshold = pos_plain[:, j]
        beyond = ops.where(neg > threshold[:, None], neg, float("inf"))
        exists = threshold < farthest_dist  # some negative is beyond the positive
        index = ops.where(exists, _first_extreme(beyond, largest=False), farthest)
        hot = slot_ids == j
        return (j + 1, ops.where(hot, index[:, None], chosen),
                ops.where(hot, exists[:, None], found))

    used = ops.minimum(tf.reduce_max(end - start), _COMPACT_GROUP)  # slots holding rows
    _, chosen, found = tf.while_loop(
        lambda j, chosen, found: j < used, mine_slot,
        (tf.constant(0), tf.zeros_like(candidate), tf.zeros_like(positive)),
        maximum_iterations=_COMPACT_GROUP)
    return _semihard_terms(tf.gather(dist, candidate, batch_dims=1),
                           tf.gather(dist, chosen, batch_dims=1), found, positive, margin)


def _semihard_sorted(dist, same, self_col, margin):
    """Semi-hard terms for any batch: every anchor's negative distances are sorted once
    and a batched binary search finds, for each positive, the first negative beyond it."""
    negative = ~same
    positive = _positive_mask(same, self_col) & ops.any(negative, axis=1)[:, None]
    num_neg, order, sorted_neg = _sort_negatives(dist, negative)
    # First rank whose negative distance is strictly greater than D[a, p].
    beyond = _searchsorted(sorted_neg, ops.stop_gradient(dist), side="right")
    found = beyond < num_neg[:, None]
    first = tf.gather(order, ops.minimum(beyond, ops.shape(dist)[1] - 1), batch_dims=1)
    farthest = _first_extreme(ops.where(negative, ops.stop_gradient(dist), -1.0),
                              largest=True)
    chosen = ops.where(found, first, farthest[:, None])
    neg_dist = ops.where((num_neg > 0)[:, None], tf.gather(dist, chosen, batch_dims=1), 0.0)
    return _semihard_terms(dist, neg_dist, found, positive, margin)


def _semihard_terms(pos_dist, neg_dist, found, positive, margin):
    """Loss and the four statistics over the positive pairs marked in ``positive``."""
    pair_loss = ops.maximum(pos_dist - neg_dist + margin, 0.0)
    semihard = found & (neg_dist < pos_dist + margin)
    return (_masked_mean(pair_loss, positive),
            _masked_mean(ops.cast(pair_loss > 0.0, pos_dist.dtype), positive),
            _masked_mean(ops.cast(semihard, pos_dist.dtype), positive),
            _masked_mean(pos_dist, positive),
            _masked_mean(neg_dist, positive))


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
    _, _, emb, dist, same, self_col = _prepare(
        labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset)
    positive, negative = _positive_mask(same, self_col), ~same
    has_neg = ops.any(negative, axis=1)
    has_pos = ops.any(positive, axis=1) & has_neg  # no negative, no triplet
    # Distances are >= 0, so 0 is a neutral fill for the max over positives. (tf.reduce_*
    # because ops.max/min refuse the empty batch.)
    pos_dist = tf.reduce_max(ops.where(positive, dist, 0.0), axis=1)
    neg_dist = ops.where(has_neg, tf.reduce_min(ops.where(negative, dist, float("inf")),
                                                axis=1), 0.0)
    gap = pos_dist - neg_dist
    anchor_loss = ops.softplus(gap) if soft else ops.maximum(gap + margin, 0.0)

    loss = _masked_mean(anchor_loss, has_pos)
    if not return_stats:
        return loss
    active = gap > 0.0 if soft else gap + margin > 0.0
    return loss, _stats(emb, {
        "active_fraction": _masked_mean(ops.cast(active, dist.dtype), has_pos),
        "semihard_fraction": _masked_mean(
            ops.cast((gap < 0.0) & (gap + margin > 0.0), dist.dtype), has_pos),
        "mean_positive_distance": _masked_mean(pos_dist, has_pos),
        "mean_negative_distance": _masked_mean(neg_dist, has_pos),
    })


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
    _, _, emb, dist, same, self_col = _prepare(
        labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset)
    positive, negative = _positive_mask(same, self_col), ~same
    num_neg, order, sorted_neg = _sort_negatives(dist, negative)
    # Sorted negative distances again, now differentiable, 0 past the last negative.
    # Centred on the anchor's mean negative distance so the prefix sums stay small and
    # k (D[a, p] + margin) - S loses fewer digits to cancellation in float32.
    is_neg_rank = ops.arange(ops.shape(dist)[1])[None, :] < num_neg[:, None]
    centre = ops.stop_gradient(_masked_mean(dist, negative, axis=1))[:, None]
    ranked = ops.where(is_neg_rank, tf.gather(dist, order, batch_dims=1) - centre, 0.0)
    prefix = ops.pad(ops.cumsum(ranked, axis=1), [[0, 0], [1, 0]])  # prefix[:, k]: first k
    plain = ops.stop_gradient(dist)
    count = _searchsorted(sorted_neg, plain + margin, side="left")  # D[a, n] < D[a, p] + m
    count = ops.where(positive, count, 0)
    count_f = ops.cast(count, dist.dtype)
    total = tf.gather(prefix, count, batch_dims=1)
    pair_sum = count_f * (dist + margin - centre) - total
    num_active = ops.sum(count_f)

    loss = _safe_divide(ops.sum(ops.where(positive, pair_sum, 0.0)), num_active)
    if not return_stats:
        return loss
    num_valid = ops.sum(ops.where(positive, ops.cast(num_neg, dist.dtype)[:, None], 0.0))
    not_beyond = _searchsorted(sorted_neg, plain, side="right")  # D[a, n] <= D[a, p]
    semihard = ops.where(positive, ops.maximum(count - not_beyond, 0), 0)
    return loss, _stats(emb, {
        "active_fraction": _safe_divide(num_active, num_valid),
        "semihard_fraction": _safe_divide(ops.cast(ops.sum(semihard), dist.dtype),
                                          num_valid),
        "mean_positive_distance": _masked_mean(dist, positive),
        "mean_negative_distance": _safe_divide(
            ops.sum(ops.where(positive, total + count_f * centre, 0.0)), num_active),
    })


class _TripletLoss(keras.losses.Loss):
    """Shared constructor, checks and config of the triplet loss classes."""

    _function = None

    def __init__(self, margin=0.2, distance="squared_l2", name=None,
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not margin >= 0:
            raise FacenetError(f"margin must be >= 0; received {margin!r}")
        self.margin = float(margin)
        self.distance = check_choice("distance", distance, DISTANCES)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise FacenetError(
                f"{type(self).__name__} is a batch-level loss; sample_weight must be None"
            )
        return super().__call__(y_true, y_pred)

    def _options(self):
        return {"margin": self.margin, "distance": self.distance}

    def call(self, y_true, y_pred):
        # Loss.__call__ has cast the labels to the loss dtype (exact below 2**24).
        return type(self)._function(ops.cast(y_true, "int64"), y_pred, **self._options())

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
        return type(self)._function(
            ops.convert_to_tensor(labels), embeddings, return_stats=return_stats,
            ref_labels=ref_labels, ref_embeddings=ref_embeddings,
            anchor_offset=anchor_offset, **self._options())

    def call_with_stats(self, y_true, y_pred):
        """Deprecated alias of ``compute(y_true, y_pred, return_stats=True)``."""
        return self.compute(y_true, y_pred, return_stats=True)

    def get_config(self):
        return {**super().get_config(), **self._options()}


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletSemiHardLoss(_TripletLoss):
    """Keras loss object for :func:`triplet_semihard_loss` (same result).

    Args:
        margin: float >= 0, in units of the distance; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        name: loss name, shown in logs; default ``"triplet_semihard_loss"``.
        reduction: any Keras reduction; the result is one scalar, which every reduction
            passes through unchanged. Default ``"sum_over_batch_size"``.
        dtype: Keras loss dtype (labels are cast to it by ``Loss.__call__``, so they must
            be exact in it: below 2**24 for float32); default ``keras.backend.floatx()``.

    Raises:
        FacenetError: ``margin < 0`` or unknown ``distance``; a ``sample_weight`` at call
            time (one scalar for the whole batch cannot be weighted per sample).

    Example::

        model.compile(optimizer="adam", loss=TripletSemiHardLoss(margin=0.2))
        model.fit(images, identity_labels, batch_size=P * K)
    """

    _function = staticmethod(triplet_semihard_loss)

    def __init__(self, margin=0.2, distance="squared_l2", name="triplet_semihard_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(margin, distance, name, reduction, dtype)


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletHardLoss(_TripletLoss):
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

    Raises:
        FacenetError: ``margin < 0`` or unknown ``distance``; a ``sample_weight`` at call
            time (one scalar for the whole batch cannot be weighted per sample).
    """

    _function = staticmethod(triplet_hard_loss)

    def __init__(self, margin=0.2, soft=False, distance="squared_l2",
                 name="triplet_hard_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(margin, distance, name, reduction, dtype)
        self.soft = bool(soft)

    def _options(self):
        return {**super()._options(), "soft": self.soft}


@keras.saving.register_keras_serializable(package="facenet_tf")
class TripletBatchAllLoss(_TripletLoss):
    """Keras loss object for :func:`triplet_batch_all_loss` (same result).

    Args:
        margin: float >= 0, in units of the distance; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        name: loss name, shown in logs; default ``"triplet_batch_all_loss"``.
        reduction: any Keras reduction; the result is one scalar, which every reduction
            passes through unchanged. Default ``"sum_over_batch_size"``.
        dtype: Keras loss dtype (labels are cast to it by ``Loss.__call__``, so they must
            be exact in it: below 2**24 for float32); default ``keras.backend.floatx()``.

    Raises:
        FacenetError: ``margin < 0`` or unknown ``distance``; a ``sample_weight`` at call
            time (one scalar for the whole batch cannot be weighted per sample).
    """

    _function = staticmethod(triplet_batch_all_loss)

    def __init__(self, margin=0.2, distance="squared_l2", name="triplet_batch_all_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(margin, distance, name, reduction, dtype)


def get(name, margin=0.2, distance="squared_l2"):
    """Loss object for a ``--loss`` name.

    Args:
        name: one of :data:`LOSSES`: ``"semihard"``, ``"hard"``, ``"soft_hard"``
            (batch-hard with softplus; ``margin`` unused) or ``"batch_all"``.
        margin: float >= 0; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.

    Returns:
        A :class:`keras.losses.Loss` with ``compute`` (loss and statistics in one pass).

    Raises:
        FacenetError: unknown ``name`` or ``distance``, or negative ``margin``.
    """
    check_choice("loss", name, LOSSES)
    if name == "semihard":
        return TripletSemiHardLoss(margin=margin, distance=distance)
    if name == "batch_all":
        return TripletBatchAllLoss(margin=margin, distance=distance)
    return TripletHardLoss(margin=margin, soft=name == "soft_hard", distance=distance)


def _prepare(labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset):
    """Checked inputs: anchor and reference labels, anchor embeddings in the compute
    dtype, ``D`` ``[B, R]``, ``same`` ``[B, R]`` (same label) and ``self_col`` ``[B]``,
    the reference row of each anchor itself (None if the anchors are not in it)."""
    check_choice("distance", distance, DISTANCES)
    embeddings = ops.convert_to_tensor(embeddings)
    if embeddings.dtype != tf.float64:
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
        ref_labels, self_col = labels, tf.range(num_anchors, dtype="int32")
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
            tf.range(num_anchors, dtype="int32") + ops.cast(anchor_offset, "int32"))
    same = ops.equal(labels[:, None], ref_labels[None, :])
    return labels, ref_labels, embeddings, dist, same, self_col


def _positive_mask(same, self_col):
    """``[B, R]``: same label and not the anchor itself."""
    if self_col is None:
        return same
    return same & (tf.range(ops.shape(same)[1], dtype="int32")[None, :] != self_col[:, None])


def _label_groups(labels, ref_labels):
    """Reference rows grouped by label: ``perm`` lists them sorted by label (stably),
    and anchor ``i``'s label occupies ``perm[start[i]:end[i]]`` (empty if absent)."""
    perm = tf.argsort(ref_labels, stable=True)
    if _in_xla_context():
        # Two fused [B, R] count reductions compile faster than two binary searches.
        start = ops.sum(ops.cast(ref_labels[None, :] < labels[:, None], "int32"), axis=1)
        end = start + ops.sum(ops.cast(ref_labels[None, :] == labels[:, None], "int32"),
                              axis=1)
        return perm, start, end
    sorted_labels = tf.gather(ref_labels, perm)[None, :]
    start = _searchsorted(sorted_labels, labels[None, :], side="left")[0]
    end = _searchsorted(sorted_labels, labels[None, :], side="right")[0]
    return perm, ops.cast(start, "int32"), ops.cast(end, "int32")


def _first_extreme(values, largest):
    """Per row, the column of the smallest (or largest) value; the lowest column on ties.

    Outside XLA ``tf.argmin``/``argmax`` (one pass). Under XLA those are a two-output
    reduction that XLA's CPU backend does not vectorise, so there the extreme value is
    found first and then its lowest column, two plain reductions that fuse with the
    producer of ``values`` (measured ~1.5x faster at B = 1024–2048, see RESULTS.md)."""
    if not _in_xla_context():
        reduce = tf.argmax if largest else tf.argmin
        return reduce(values, axis=1, output_type=tf.int32)
    extreme = (tf.reduce_max if largest else tf.reduce_min)(values, axis=1, keepdims=True)
    cols = ops.shape(values)[1]
    columns = tf.range(cols, dtype="int32")[None, :]
    return tf.reduce_min(ops.where(values == extreme, columns, cols), axis=1)


def _sort_negatives(dist, negative):
    """Per anchor: number of negatives, their column indices and distances, ascending.

    Non-negatives are +inf so they sort last. top_k of the negated row is a stable sort
    (ties keep index order) and returns the values too, saving a gather.
    """
    masked = ops.where(negative, ops.stop_gradient(dist), float("inf"))
    neg_sorted, order = tf.math.top_k(-masked, k=ops.shape(dist)[1], sorted=True)
    num_neg = ops.sum(ops.cast(negative, "int32"), axis=1)
    return num_neg, order, -neg_sorted


def _searchsorted(sorted_rows, values, side):
    """``tf.searchsorted`` on ``[B, B]`` rows: per value, the count of row elements
    ``<= value`` (``side="right"``) or ``< value`` (``side="left"``).

    Under XLA (``jit_compile=True``, which ``model.fit`` turns on by default) TF lowers
    searchsorted to a compare of every value with every element, a B×B×B tensor (33 GB
    at B = 2048), so there the search is done by binary lifting instead: log2(B) steps,
    each one gather of B² elements. Outside XLA the native kernel is ~3x faster than that.
    """
    if not _in_xla_context():
        return tf.searchsorted(sorted_rows, values, side=side)
    rows, length = ops.shape(sorted_rows)[0], ops.shape(sorted_rows)[1]
    flat = ops.reshape(sorted_rows, [-1])
    # int32 flat indices: fine while B² < 2**31, i.e. B < 46341.
    offsets = (ops.arange(rows, dtype="int32") * length)[:, None]
    found = ops.zeros(ops.shape(values), "int32")  # invariant: found elements satisfy it
    steps = sorted_rows.shape[1].bit_length() if sorted_rows.shape[1] else 31
    for step in (1 << k for k in reversed(range(steps))):
        candidate = found + step
        probe = ops.take(flat, offsets + ops.minimum(candidate, length) - 1)
        below = probe <= values if side == "right" else probe < values
        found = ops.where((candidate <= length) & below, candidate, found)
    return found


def _in_xla_context():
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # private module moved: the XLA-safe search is right everywhere
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _safe_divide(total, count):
    return total / ops.maximum(ops.cast(count, total.dtype), 1.0)


def _masked_mean(values, mask, axis=None):
    return _safe_divide(ops.sum(ops.where(mask, values, 0.0), axis=axis),
                        ops.sum(ops.cast(mask, values.dtype), axis=axis))


def _stats(embeddings, stats):
    norms = ops.norm(embeddings, axis=1)
    stats["embedding_norm"] = _safe_divide(ops.sum(norms), ops.shape(norms)[0])
    return {key: ops.cast(ops.stop_gradient(value), "float32")
            for key, value in stats.items()}
