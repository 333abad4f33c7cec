"""Verification metrics from pair distances: ROC, AUC, EER, TAR@FAR and accuracy.

A smaller distance means "same person": a pair is accepted as the same person iff its
distance is ``<=`` the threshold. Every metric comes from one sort of the distances:
cumulative sums of the positive and negative weight along the sorted distances give the
true-accept and false-accept weight at every distinct distance at once, so nothing loops
over thresholds or pairs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.evaluation._checks import _check_curve, _check_far_target, _check_pairs


def roc_curve(distances, issame, sample_weight=None):
    """ROC curve of a distance-based verifier, one point per distinct distance.

    For each threshold ``t``::

        TAR(t) = w(same pairs with d <= t) / w(same pairs)
        FAR(t) = w(different pairs with d <= t) / w(different pairs)

    Equal distances form one threshold step, so a verifier that gives every pair the
    same distance has the two points (0, 0), (1, 1) and an AUC of exactly 0.5.

    Args:
        distances: 1-D array of pair distances, float.
        issame: 1-D array of bool (or 0/1), True where the pair shows one person.
        sample_weight: optional 1-D array of non-negative pair weights; default all 1.

    Returns:
        ``(far, tar, thresholds)``: 1-D float64 arrays of equal length, ``far`` and
        ``tar`` non-decreasing from 0 to 1. ``thresholds[0]`` lies just below the
        smallest distance (nothing accepted); ``thresholds[i]``, ``i >= 1``, is the i-th
        distinct distance in increasing order.

    Raises:
        FacenetError: if the inputs differ in length, are not 1-D, are not finite, or
            hold only one class.
    """
    d, same, w = _check_pairs(distances, issame, sample_weight)
    return _roc_sorted(*_sort(d, same, w))


def _roc_sorted(d_sorted, same_sorted, w_sorted):
    values, tp, fp, total_pos, total_neg = _sweep(d_sorted, same_sorted, w_sorted)
    thresholds = np.concatenate([[np.nextafter(values[0], -np.inf)], values])
    tar = np.concatenate([[0.0], tp / total_pos])
    far = np.concatenate([[0.0], fp / total_neg])
    return far, tar, thresholds


def auc(far, tar):
    """Area under the ROC curve by the trapezoid rule.

    Args:
        far: 1-D non-decreasing array of false-accept rates, as from :func:`roc_curve`.
        tar: 1-D array of true-accept rates, same length.

    Returns:
        float in [0, 1]: 1 for perfectly separated pairs, 0.5 for chance, 0 if reversed.

    Raises:
        FacenetError: if the arrays are not 1-D of equal length >= 2.
    """
    far, tar = _check_curve(far, tar)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def equal_error_rate(far, tar):
    """Equal error rate: the FAR at which FAR equals the false-reject rate ``1 - TAR``.

    ``g = FAR + TAR - 1`` rises from -1 to 1 along the curve; the EER is read off where
    ``g`` crosses 0, interpolating linearly between the two ROC points around it.

    Args:
        far: 1-D non-decreasing array of false-accept rates, as from :func:`roc_curve`.
        tar: 1-D array of true-accept rates, same length.

    Returns:
        float in [0, 1]: 0 for perfectly separated pairs, 0.5 for chance.

    Raises:
        FacenetError: if the arrays are not 1-D of equal length >= 2.
    """
    far, tar = _check_curve(far, tar)
    g = far + tar - 1.0
    i = int(np.argmax(g >= 0.0)) if np.any(g >= 0.0) else len(g) - 1
    if i == 0 or g[i] <= 0.0:
        return float(far[i])
    # Linear interpolation between points i-1 (g < 0) and i (g > 0).
    t = -g[i - 1] / (g[i] - g[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def tar_at_far(far, tar, target, thresholds=None):
    """Largest TAR reachable with FAR <= ``target`` (the "VAL@FAR" of FaceNet papers).

    Args:
        far: 1-D non-decreasing array of false-accept rates, as from :func:`roc_curve`.
        tar: 1-D array of true-accept rates, same length.
        target: the largest admissible FAR, a float in (0, 1]. A relative slack of 1e-9
            absorbs rounding (3/300 counts as 1e-2).
        thresholds: optional 1-D array from :func:`roc_curve`, same length.

    Returns:
        ``(tar_value, threshold)``: floats; ``threshold`` is the distance threshold of
        that ROC point (the largest accepted distance), or None if ``thresholds`` was not
        given.

    Raises:
        FacenetError: if ``target`` is outside (0, 1] or the arrays do not match.
    """
    far, tar = _check_curve(far, tar)
    target = _check_far_target(target, "target")
    # far and tar are both non-decreasing, so the last admissible point has the best TAR.
    admissible = np.nonzero(far <= target * (1.0 + 1e-9))[0]
    i = int(admissible[-1]) if admissible.size else 0
    if thresholds is None:
        return float(tar[i]), None
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != far.shape:
        raise FacenetError(
            f"thresholds must have the shape of far {far.shape}; received {thresholds.shape}"
        )
    return float(tar[i]), float(thresholds[i])


def best_threshold(distances, issame, sample_weight=None):
    """Distance threshold that maximises (weighted) verification accuracy.

    Accuracy at threshold ``t`` is ``(w(same, d <= t) + w(different, d > t)) / w(all)``.
    Every cut between two consecutive distinct distances is scored from one sorted pass;
    the best cut's threshold lies midway between those two distances, which generalises
    better to new pairs than either end. If accepting nothing is best the threshold lies
    just below the smallest distance; if accepting all is best it is the largest distance.
    Among equally accurate cuts the smallest threshold wins.

    Args:
        distances: 1-D array of pair distances, float.
        issame: 1-D array of bool (or 0/1), True where the pair shows one person.
        sample_weight: optional 1-D array of non-negative pair weights; default all 1.
            Weight each class by ``0.5 / class size`` to maximise balanced accuracy.

    Returns:
        float: the threshold; predict "same" iff distance <= threshold.

    Raises:
        FacenetError: as :func:`roc_curve`.
    """
    d, same, w = _check_pairs(distances, issame, sample_weight)
    return _best_threshold_sorted(*_sort(d, same, w))


def _best_threshold_sorted(d_sorted, same_sorted, w_sorted):
    values, tp, fp, _, total_neg = _sweep(d_sorted, same_sorted, w_sorted)
    # correct[k] = weight classified correctly when the first k distinct values are
    # accepted; k = 0 accepts nothing.
    correct = np.concatenate([[total_neg], tp + (total_neg - fp)])
    k = int(np.argmax(correct))
    if k == 0:
        return float(np.nextafter(values[0], -np.inf))
    if k == len(values):
        return float(values[-1])
    return float((values[k - 1] + values[k]) / 2.0)


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """Verification figures of one set of pairs; see :func:`verification_metrics`.

    ``far``, ``tar`` and ``thresholds`` are the ROC arrays of all pairs;
    ``fold_accuracies`` the held-out accuracy of each fold.
    """

    accuracy: float
    accuracy_std: float
    auc: float
    eer: float
    val_at_far: dict
    threshold: float
    threshold_at_far: dict
    num_pairs: int
    num_positive: int
    num_negative: int
    far: np.ndarray = dataclasses.field(repr=False, compare=False)
    tar: np.ndarray = dataclasses.field(repr=False, compare=False)
    thresholds: np.ndarray = dataclasses.field(repr=False, compare=False)
    fold_accuracies: np.ndarray = dataclasses.field(repr=False, compare=False)

    def to_json_dict(self):
        """Flat dict of plain Python floats and ints, e.g. ``val_at_far_1e-3``."""
        out = {
            "accuracy": float(self.accuracy),
            "accuracy_std": float(self.accuracy_std),
            "auc": float(self.auc),
            "eer": float(self.eer),
        }
        for target, value in self.val_at_far.items():
            out[f"val_at_far_{far_key(target)}"] = float(value)
        out["threshold"] = float(self.threshold)
        for target, value in self.threshold_at_far.items():
            out[f"threshold_at_far_{far_key(target)}"] = float(value)
        out["num_pairs"] = int(self.num_pairs)
        out["num_positive_pairs"] = int(self.num_positive)
        out["num_negative_pairs"] = int(self.num_negative)
        return out


#: Folds of the LFW protocol when a set of pairs names none (a plain pairs list, a folder's pairs).
FOLDS = 10


def verification_metrics(
    distances,
    issame,
    folds=None,
    n_folds=FOLDS,
    far_targets=(1e-3, 1e-2),
    balanced=True,
    seed=0,
):
    """All verification figures of a set of pairs, accuracy by the LFW k-fold protocol.

    Accuracy: for each fold, the best-accuracy threshold (:func:`best_threshold`) is
    chosen on the other folds and applied to the held-out fold; ``accuracy`` and
    ``accuracy_std`` are the mean and (population) standard deviation over folds. AUC,
    EER, TAR@FAR and ``threshold`` use all pairs at once.

    ``balanced=True`` weights the two classes equally: every same-person pair weighs
    ``0.5 / num_positive`` and every different-person pair ``0.5 / num_negative``, so

        accuracy = (TAR + TNR) / 2

    both when choosing thresholds and when scoring a fold. Without it, the many
    different-person pairs of an "all pairs" evaluation dominate, and accepting nothing
    scores close to 1. On LFW's balanced View 2 both settings agree. ROC, AUC, EER and
    TAR@FAR are per-class rates and do not depend on ``balanced``.

    Args:
        distances: 1-D array of pair distances, float; smaller means same person.
        issame: 1-D array of bool (or 0/1), True for same-person pairs.
        folds: optional 1-D int array, the fold id of each pair (LFW View 2 gives ten).
            Default: ``n_folds`` folds stratified by class, shuffled with ``seed``.
        n_folds: number of folds when ``folds`` is None, an int >= 2; default 10.
        far_targets: FAR values in (0, 1] for ``val_at_far``; default (1e-3, 1e-2).
        balanced: weight both classes equally (see above); default True.
        seed: int seed of the fold shuffle; default 0.

    Returns:
        :class:`VerificationResult`.

    Raises:
        FacenetError: if the inputs differ in length, are not 1-D, are not finite, hold
            one class only, or a fold's training part lacks a class.
    """
    d, same, _ = _check_pairs(distances, issame, None)
    targets = tuple(_check_far_target(t, "far_targets") for t in far_targets)
    fold_ids = _fold_ids(same, folds, n_folds, seed)
    # The one sort: every fold's training part is a mask of it, still sorted.
    order = np.argsort(d, kind="stable")
    d, same, fold_ids = d[order], same[order], fold_ids[order]

    fold_accuracies = _fold_accuracies(d, same, fold_ids, balanced)
    far, tar, thresholds = _roc_sorted(d, same, np.ones_like(d))
    val_at_far, threshold_at_far = {}, {}
    for target in targets:
        val_at_far[target], threshold_at_far[target] = tar_at_far(far, tar, target, thresholds)
    num_positive = int(same.sum())
    return VerificationResult(
        accuracy=float(fold_accuracies.mean()),
        accuracy_std=float(fold_accuracies.std()),
        auc=auc(far, tar),
        eer=equal_error_rate(far, tar),
        val_at_far=val_at_far,
        threshold=_best_threshold_sorted(d, same, _class_weights(same) if balanced else np.ones_like(d)),
        threshold_at_far=threshold_at_far,
        num_pairs=int(d.size),
        num_positive=num_positive,
        num_negative=int(d.size) - num_positive,
        far=far,
        tar=tar,
        thresholds=thresholds,
        fold_accuracies=fold_accuracies,
    )


def _fold_accuracies(d, same, fold_ids, balanced):
    """Each fold's accuracy at the best threshold of the other folds (pairs sorted by
    distance ``d``): float64 ``[folds]``.

    Raises:
        FacenetError: the pairs outside a fold hold one class only.
    """
    accuracies = []
    for fold in np.unique(fold_ids):  # one loop step per fold (10), not per pair
        test = fold_ids == fold
        train = ~test
        if same[train].all() or not same[train].any():
            raise FacenetError(
                f"folds: the pairs outside fold {fold} must hold both same- and "
                f"different-person pairs to choose a threshold; they hold one class only"
            )
        weight = _class_weights(same[train]) if balanced else np.ones(int(train.sum()))
        threshold = _best_threshold_sorted(d[train], same[train], weight)
        accuracies.append(_accuracy(d[test], same[test], threshold, balanced))
    return np.asarray(accuracies)


def far_key(far):
    """Short text of a FAR for result keys: 1e-3 -> "1e-3", 0.015 -> "1.5e-2"."""
    return np.format_float_scientific(float(far), trim="-", exp_digits=1)


def _sort(d, same, w):
    order = np.argsort(d, kind="stable")
    return d[order], same[order], w[order]


def _sweep(d_sorted, same_sorted, w_sorted):
    """The pass over sorted pairs: accepted same / different weight per distinct distance.

    Returns ``(values, tp, fp, total_pos, total_neg)``: ``values`` the distinct distances
    ascending, ``tp[k]`` / ``fp[k]`` the same / different weight with distance <= values[k].
    """
    cum_pos = np.cumsum(np.where(same_sorted, w_sorted, 0.0))
    cum_neg = np.cumsum(np.where(same_sorted, 0.0, w_sorted))
    # Last index of each run of equal distances: ties move together as one step.
    last = np.concatenate([np.nonzero(np.diff(d_sorted))[0], [d_sorted.size - 1]])
    return d_sorted[last], cum_pos[last], cum_neg[last], cum_pos[-1], cum_neg[-1]


def _class_weights(same):
    """Weights giving each class half of the total weight."""
    num_positive = same.sum()
    return np.where(same, 0.5 / num_positive, 0.5 / (same.size - num_positive))


def _accuracy(d, same, threshold, balanced):
    correct = (d <= threshold) == same
    if not balanced:
        return float(correct.mean())
    # Mean of the per-class rates (TAR, TNR) over the classes present in this fold.
    rates = [correct[mask].mean() for mask in (same, ~same) if mask.any()]
    return float(np.mean(rates))


def _fold_ids(same, folds, n_folds, seed):
    """Fold id per pair: the given ``folds``, else class-stratified and shuffled by seed."""
    if folds is not None:
        folds = np.asarray(folds)
        if folds.shape != same.shape or not np.issubdtype(folds.dtype, np.integer):
            raise FacenetError(
                f"folds must be a 1-D int array with one fold id per pair ({same.size}); "
                f"received shape {folds.shape}, dtype {folds.dtype}"
            )
        if np.unique(folds).size < 2:
            raise FacenetError("folds must name at least 2 distinct folds")
        return folds
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise FacenetError(f"n_folds must be an integer of at least 2; received {n_folds!r}")
    if n_folds > same.size:
        raise FacenetError(f"n_folds={n_folds} needs at least {n_folds} pairs (one per fold); received {same.size}")
    rng = np.random.default_rng(seed)
    fold_ids = np.empty(same.size, dtype=np.int64)
    offset = 0
    for cls in (True, False):
        members = rng.permutation(np.nonzero(same == cls)[0])
        # Round robin within each class; the second class continues where the first
        # stopped so fold sizes differ by at most one.
        fold_ids[members] = (np.arange(members.size) + offset) % n_folds
        offset += members.size
    return fold_ids
