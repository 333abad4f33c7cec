"""Evaluation of face embeddings: verification metrics, pairs, one-shot identification.

* :mod:`~facenet_tf.evaluation.metrics`: ROC, AUC, EER, TAR@FAR and k-fold accuracy
  from pair distances (:func:`verification_metrics`).
* :mod:`~facenet_tf.evaluation.pairs`: LFW ``pairs.txt`` and all pairs of a labelled set.
* :mod:`~facenet_tf.evaluation.identification`: enrol K images per identity, identify
  the rest, closed-set top-k and open-set DIR.
"""

from facenet_tf.evaluation.identification import identification_metrics, split_enrolment
from facenet_tf.evaluation.metrics import (
    VerificationResult,
    auc,
    best_threshold,
    equal_error_rate,
    far_key,
    roc_curve,
    tar_at_far,
    verification_metrics,
)
from facenet_tf.evaluation.pairs import Pair, PairSet, all_pairs, lfw_pair_paths, read_lfw_pairs

__all__ = [
    "Pair",
    "PairSet",
    "VerificationResult",
    "all_pairs",
    "auc",
    "best_threshold",
    "equal_error_rate",
    "far_key",
    "identification_metrics",
    "lfw_pair_paths",
    "read_lfw_pairs",
    "roc_curve",
    "split_enrolment",
    "tar_at_far",
    "verification_metrics",
]
