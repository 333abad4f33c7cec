"""Verification on a labelled set of embeddings: every same/different pair, class-balanced.

Used by ``evaluate.py --data-dir`` and by validation during training, so both report the
same numbers for the same embeddings.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.metrics import VerificationResult, tar_at_far, verification_metrics
from facenet_tf.evaluation.pairs import PairSet, all_pairs

#: Default cap on the number of pairs; above it pairs are sampled (all positives first).
MAX_PAIRS = 1_000_000


def verify_labelled(
    embeddings: np.ndarray,
    labels: np.ndarray,
    distance: str = "squared_l2",
    max_pairs: int = MAX_PAIRS,
    seed: int = 0,
) -> Tuple[VerificationResult, PairSet, np.ndarray]:
    """Verification metrics over all pairs of a labelled embedding set.

    Pairs: every ``i < j`` pair (see :func:`all_pairs`; sampled down to ``max_pairs``,
    keeping all same-person pairs if they fit in half). Classes are balanced by weight
    (accuracy = (TAR + TNR) / 2), 10-fold cross-validated thresholds (LFW protocol).

    Args:
        embeddings: float ``[N, D]``.
        labels: ``[N]`` identity of each embedding.
        distance: one of :data:`facenet_tf.distances.DISTANCES`.
        max_pairs: pair cap.
        seed: seed of pair sampling and fold assignment.

    Returns:
        ``(result, pairs, pair_distances)``.
    """
    from facenet_tf.distances import paired_distances_numpy

    embeddings = np.asarray(embeddings, np.float32)
    pairs = all_pairs(labels, max_pairs=max_pairs, seed=seed)
    d = paired_distances_numpy(embeddings[pairs.idx_a], embeddings[pairs.idx_b], distance)
    return verification_metrics(d, pairs.issame, seed=seed), pairs, d


def threshold_at_far(embeddings: np.ndarray, labels: np.ndarray, distance: str, far_target: float = 1e-3,
                     max_pairs: Optional[int] = None, seed: int = 0):
    """The largest threshold whose false-accept rate over every pair of a labelled embedding set
    stays within ``far_target`` (:func:`~facenet_tf.evaluation.metrics.tar_at_far`), with the rates
    it gives: what ``gallery calibrate`` stores.

    Args:
        embeddings: float ``[N, D]``.
        labels: ``[N]`` person of each embedding (ints or strings).
        distance: a name of :data:`facenet_tf.distances.DISTANCES`.
        far_target: the largest admissible false-accept rate, in (0, 1].
        max_pairs: pair cap (see :func:`facenet_tf.evaluation.pairs.all_pairs`); None: all.
        seed: pair sampling and fold assignment.

    Returns:
        ``(threshold, far, tar, result, pairs, distances)``: the threshold and the FAR/TAR it
        gives, the :class:`~facenet_tf.evaluation.metrics.VerificationResult` (folds for a
        report), the :class:`~facenet_tf.evaluation.pairs.PairSet` and the float64 pair
        distances.

    Raises:
        FacenetError: fewer than 2 genuine or 2 impostor pairs; a bad ``far_target``.
    """
    from facenet_tf.distances import paired_distances_numpy

    pairs = all_pairs(np.asarray(labels), max_pairs=max_pairs, seed=seed)
    genuine = int(pairs.issame.sum())
    impostor = pairs.num_pairs - genuine
    if genuine < 2 or impostor < 2:
        raise FacenetError(f"calibration needs at least 2 same-person and 2 different-person pairs; the labelled "
                           f"images give {genuine} and {impostor}: add people, or images per person")
    e = np.asarray(embeddings, np.float32)
    d = paired_distances_numpy(e[pairs.idx_a], e[pairs.idx_b], distance).astype(np.float64)
    result = verification_metrics(d, pairs.issame, n_folds=min(10, genuine, impostor), far_targets=(far_target,),
                                  seed=seed)
    tar, threshold = tar_at_far(result.far, result.tar, far_target, result.thresholds)
    far = float(np.mean(d[~pairs.issame] <= threshold))
    return threshold, far, tar, result, pairs, d
