"""Verification on a labelled set of embeddings: every same/different pair, class-balanced.

Used by ``evaluate.py --data-dir`` and by validation during training, so both report the
same numbers for the same embeddings.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from facenet_tf.evaluation.metrics import VerificationResult, verification_metrics
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
