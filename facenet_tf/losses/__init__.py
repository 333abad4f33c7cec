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

Backend-neutral: written in ``keras.ops`` (one dispatch to native kernels,
:mod:`facenet_tf.losses._native`), so the functions and classes run under
``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch`` and import no TensorFlow under the others.
The ``--loss`` names live in :data:`LOSSES`, a :class:`facenet_tf.registry.Registry`: a new
loss is one module plus its line in the table below (or its own ``LOSSES.register``) and its
tests. A loss takes the hyperparameters its signature declares (``margin``, ``distance`` or
its own, given as ``--loss-options NAME=VALUE``).

Mining is a piece of its own (:mod:`facenet_tf.losses.margin`): each triplet loss is the
margin loss of the triplets a *miner* chooses, and each ``--loss`` name stands for its miner
(``semihard``: ``semihard``; ``hard``, ``soft_hard``: ``hardest``; ``batch_all``: ``all``),
which ``miner=`` (``--miner``) replaces. The miners live in :data:`MINERS`: a new one is one
:class:`~facenet_tf.losses.margin.Miner` registered there, plus its tests.
"""

import inspect
from typing import Tuple

from facenet_tf.errors import FacenetError
from facenet_tf.lazy import Lazy, exports
from facenet_tf.registry import Registry

#: ``--loss`` name -> loss class or factory taking its hyperparameters (:func:`hyperparameters`).
#: The built-in losses are listed here, each :class:`~facenet_tf.registry.Lazy` in its module,
#: so the table (``--loss``'s choices and help) costs no Keras import; a loss defined
#: elsewhere registers its class itself.
LOSSES = Registry("loss", "--loss")
LOSSES.register("semihard", Lazy("facenet_tf.losses.semihard", "TripletSemiHardLoss"),
                help="FaceNet semi-hard: per positive pair, the closest negative beyond it")
LOSSES.register("hard", Lazy("facenet_tf.losses.hard", "TripletHardLoss"),
                help="batch-hard: per anchor, its farthest positive and closest negative")
LOSSES.register("soft_hard", Lazy("facenet_tf.losses.hard", "soft_hard_loss"),
                help="batch-hard with the softplus soft margin (margin unused)")
LOSSES.register("batch_all", Lazy("facenet_tf.losses.batch_all", "TripletBatchAllLoss"),
                help="batch-all: the mean over every active triplet of the batch")

#: ``--miner`` name -> :class:`~facenet_tf.losses.margin.Miner` (lazy, as :data:`LOSSES`).
MINERS = Registry("miner", "--miner")
MINERS.register("semihard", Lazy("facenet_tf.losses.semihard", "SEMIHARD"),
                help="per positive pair, the closest negative beyond it (else the farthest)")
MINERS.register("hardest", Lazy("facenet_tf.losses.hard", "HARDEST"),
                help="per anchor, its farthest positive and closest negative")
MINERS.register("all", Lazy("facenet_tf.losses.batch_all", "ALL"),
                help="every triplet within the margin (the hinge loss only)")

#: public name → module under facenet_tf.losses that defines it (imported on first use, PEP 562).
_EXPORTS = {
    "TripletLossBase": "_base",
    "triplet_margin_loss": "margin", "Miner": "margin", "Mined": "margin", "Candidates": "margin",
    "TripletSemiHardLoss": "semihard", "triplet_semihard_loss": "semihard",
    "TripletHardLoss": "hard", "triplet_hard_loss": "hard",
    "TripletBatchAllLoss": "batch_all", "triplet_batch_all_loss": "batch_all",
}


#: Keyword arguments of every Keras loss, and the miner (``--miner``): not hyperparameters.
_KERAS_ARGUMENTS = ("name", "reduction", "dtype", "miner")


def _parameters(name: str) -> Tuple[str, ...]:
    return tuple(inspect.signature(LOSSES.get(name)).parameters)


def hyperparameters(name: str) -> Tuple[str, ...]:
    """The hyperparameters the loss registered as ``name`` takes: the keyword arguments of its
    class or factory (``margin``, ``distance``, or its own), read from its signature."""
    return tuple(p for p in _parameters(name) if p not in _KERAS_ARGUMENTS)


def get(name, margin=0.2, distance="squared_l2", miner=None, **options):
    """Loss object for a ``--loss`` name, built from :data:`LOSSES`.

    A loss takes the hyperparameters its signature declares (:func:`hyperparameters`):
    ``margin`` and ``distance`` are passed to those that take them, ``options`` are its own.

    Args:
        name: a name of :data:`LOSSES`: ``"semihard"``, ``"hard"``, ``"soft_hard"``
            (batch-hard with softplus; ``margin`` unused) or ``"batch_all"``.
        margin: float >= 0; default 0.2.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        miner: a name of :data:`MINERS` replacing the loss's own, or ``None`` (default).
        **options: the loss's own hyperparameters (``--loss-options NAME=VALUE``).

    Returns:
        A :class:`keras.losses.Loss` with ``compute`` (loss and statistics in one pass).

    Raises:
        FacenetError: unknown ``name``, ``distance`` or ``miner``, negative ``margin``, an
            option the loss does not take, or a ``miner`` for a loss that takes none.
    """
    accepted = hyperparameters(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise FacenetError(f"--loss {name} takes no {', '.join(unknown)}; its hyperparameters: {', '.join(accepted)}")
    common = {key: value for key, value in (("margin", margin), ("distance", distance)) if key in accepted}
    if miner is not None:
        common["miner"] = check_miner(name, miner)
    return LOSSES.build(name, **common, **options)


def check_miner(name: str, miner: str) -> str:
    """``miner`` when it is a name of :data:`MINERS` and the loss registered as ``name`` takes
    a miner (a ``miner`` keyword argument); else :class:`FacenetError` saying which."""
    MINERS.check(miner)
    if "miner" not in _parameters(name):
        raise FacenetError(f"--loss {name} takes no --miner (it mines its own way); received {miner!r}")
    return miner


__all__ = sorted(["LOSSES", "MINERS", "check_miner", "get", "hyperparameters", *_EXPORTS])


__getattr__, __dir__ = exports(__name__, _EXPORTS)
