"""The triplet margin loss over the triplets a miner chose: :func:`triplet_margin_loss`.

Mining and loss are separate pieces, as pytorch-metric-learning separates miners from
losses. A *miner* (:class:`Miner`, registered by name in :data:`facenet_tf.losses.MINERS`)
reads the batch's :class:`Candidates` (distances and label masks) and chooses triplets
``(a, p, n)``; the *loss* (:func:`reduce_margin`) turns them into one scalar and the
statistics. Nothing ``[B, R, R]`` is built: a miner hands its triplets over as
:class:`Mined` entries, one triplet per entry (semi-hard: one per positive pair; hardest:
one per anchor), or groups of triplets sharing ``(a, p)`` whose hinge the miner summed in
closed form (all: every active triplet).

A new miner is one :class:`Miner` registered in :data:`~facenet_tf.losses.MINERS` (plus
its tests); every triplet loss takes it by name (``miner=``, ``--miner``).
"""

import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Optional, Tuple

from keras import ops

from facenet_tf.errors import FacenetError
from facenet_tf.losses._mining import masked_mean, mining_stats, prepare, safe_divide

#: The statistics :func:`reduce_margin` gives after the loss, in order.
STATS = ("active_fraction", "semihard_fraction", "mean_positive_distance", "mean_negative_distance")


class Candidates(NamedTuple):
    """What a miner chooses from (:func:`facenet_tf.losses._mining.prepare`).

    Attributes:
        labels: int ``[B]``, the anchors' labels.
        ref_labels: int ``[R]``, the reference rows' labels (the batch itself by default).
        dist: float ``[B, R]``, ``D[a, r]`` (differentiable; mine on ``ops.stop_gradient(dist)``).
        same: bool ``[B, R]``, same label.
        self_col: int ``[B]``, the reference row of each anchor itself, or ``None``.
    """

    labels: Any
    ref_labels: Any
    dist: Any
    same: Any
    self_col: Any


class Mined(NamedTuple):
    """Triplets a miner chose, as entries of one shape (``[B, K]`` or ``[B]``): entry ``e``
    holds the triplets of one anchor ``a`` and positive ``p``.

    Attributes:
        positive: float, ``D[a, p]`` (gradients flow through it).
        negative: float, ``D[a, n]`` of the entry's one negative; ``None`` for groups.
        entries: bool, the entries holding triplets: what the loss averages over.
        hinge: ``None`` (one triplet per entry), or float: per entry the summed hinge
            ``sum_n max(D[a, p] - D[a, n] + margin, 0)`` of its group, every triplet of which
            is active; the loss is then the mean over those triplets.
        count: with ``hinge``, float: the triplets of each entry's group (0 outside ``entries``).
        stats: with ``hinge``, a function returning the four :data:`STATS` scalars (called only
            when the statistics are asked for).
    """

    positive: Any
    negative: Any
    entries: Any
    hinge: Any = None
    count: Any = None
    stats: Optional[Callable[[], Tuple[Any, ...]]] = None


@dataclasses.dataclass(frozen=True)
class Miner:
    """A :data:`~facenet_tf.losses.MINERS` entry.

    Attributes:
        mine: ``(candidates, margin, reduce) -> reduce(Mined(...))``: chooses triplets from
            :class:`Candidates` and returns what ``reduce`` makes of them (a miner choosing
            between ways at run time, ``keras.ops.cond``, reduces in each branch, so that both
            return the same scalars).
        one_negative: its entries hold one triplet each (``hinge`` unused), so the soft-margin
            loss can take them.
    """

    mine: Callable[[Candidates, float, Callable[[Mined], Tuple[Any, ...]]], Tuple[Any, ...]]
    one_negative: bool = True


def reduce_margin(mined: Mined, margin: float, soft: bool = False, stats: bool = True) -> Tuple[Any, ...]:
    """The triplet margin loss of ``mined`` and its statistics (zeros unless ``stats``)::

        loss = mean over triplets of max(D[a, p] - D[a, n] + margin, 0)   or, if soft, log(1 + exp(D[a, p] - D[a, n]))

    Returns:
        ``(loss, *STATS)``, scalars: over the entries, ``active_fraction`` the fraction with
        non-zero hinge (``D[a, p] > D[a, n]`` if ``soft``), ``semihard_fraction`` the fraction
        with ``D[a, p] < D[a, n] < D[a, p] + margin``, and the mean distances.
    """
    if mined.hinge is not None:
        loss = safe_divide(ops.sum(ops.where(mined.entries, mined.hinge, 0.0)), ops.sum(mined.count))
        return (loss, *(mined.stats() if stats else (ops.zeros_like(loss),) * len(STATS)))
    gap = mined.positive - mined.negative
    loss = masked_mean(ops.softplus(gap) if soft else ops.maximum(gap + margin, 0.0), mined.entries)
    if not stats:
        return (loss, *(ops.zeros_like(loss),) * len(STATS))
    active = gap > 0.0 if soft else gap + margin > 0.0
    semihard = (mined.negative > mined.positive) & (mined.negative < mined.positive + margin)
    dtype = gap.dtype
    return (loss, masked_mean(ops.cast(active, dtype), mined.entries),
            masked_mean(ops.cast(semihard, dtype), mined.entries),
            masked_mean(mined.positive, mined.entries), masked_mean(mined.negative, mined.entries))


def miner_entry(miner: str) -> Miner:
    """The :class:`Miner` registered as ``miner`` (:class:`FacenetError` naming the choices)."""
    from facenet_tf.losses import MINERS

    return MINERS.get(miner, "miner")


def triplet_margin_loss(labels, embeddings, margin=0.2, distance="squared_l2", miner="semihard", soft=False,
                        return_stats=False, *, ref_labels=None, ref_embeddings=None, anchor_offset=None):
    """Triplet loss of the triplets ``miner`` chooses (:func:`reduce_margin` of its :class:`Mined`).

    Args:
        labels: int tensor ``[B]`` or ``[B, 1]``, identity of each embedding.
        embeddings: float tensor ``[B, D]``; float16/bfloat16 are computed in float32.
        margin: float >= 0, in units of the distance (unused by the loss if ``soft``); default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        miner: a name of :data:`facenet_tf.losses.MINERS`; default ``"semihard"``.
        soft: the softplus soft margin instead of the hinge (a ``one_negative`` miner only).
        return_stats: also return the statistics dict (the package docstring); default False.
        ref_labels, ref_embeddings, anchor_offset: the reference set (the package docstring).

    Returns:
        Scalar float32 loss (float64 for float64 embeddings); with ``return_stats``, ``(loss, stats)``.

    Raises:
        FacenetError: unknown ``distance`` or ``miner``, ``soft`` with a miner of groups, or
            inconsistent reference arguments.
    """
    entry = miner_entry(miner)
    if soft and not entry.one_negative:
        raise FacenetError(f"miner {miner} sums the hinge of its triplets; the soft margin needs a miner of one "
                           "negative per triplet")
    labels, ref_labels, emb, dist, same, self_col = prepare(
        labels, embeddings, distance, ref_labels, ref_embeddings, anchor_offset)
    reduce = functools.partial(reduce_margin, margin=margin, soft=soft, stats=return_stats)
    terms = entry.mine(Candidates(labels, ref_labels, dist, same, self_col), margin, reduce)
    if not return_stats:
        return terms[0]
    return terms[0], mining_stats(emb, dict(zip(STATS, terms[1:])))
