"""Argument checks of the verification metrics: shapes, values and targets, one-line errors."""

from __future__ import annotations

import numpy as np

from facenet_tf.errors import FacenetError


def _check_pairs(distances, issame, sample_weight):
    """Validate pair inputs; return float64 distances, bool issame, float64 weights."""
    try:
        d = np.asarray(distances, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise FacenetError(f"distances must be numbers; {err}") from None
    same = np.asarray(issame)
    if d.ndim != 1 or same.ndim != 1:
        raise FacenetError(
            f"distances and issame must be 1-D; received shapes {d.shape} and {same.shape}"
        )
    if d.size != same.size:
        raise FacenetError(
            f"distances and issame must have the same length; received {d.size} and {same.size}"
        )
    if not np.all(np.isfinite(d)):
        raise FacenetError(f"distances must be finite; received {int((~np.isfinite(d)).sum())} NaN/inf")
    if same.dtype != bool:
        if same.size and not np.all((same == 0) | (same == 1)):
            raise FacenetError(f"issame must be bool or 0/1; received values {np.unique(same)[:5]}")
        same = same.astype(bool)
    if sample_weight is None:
        w = np.ones_like(d)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != d.shape:
            raise FacenetError(
                f"sample_weight must have the shape of distances {d.shape}; received {w.shape}"
            )
        if not np.all(np.isfinite(w) & (w >= 0)):
            raise FacenetError("sample_weight must be finite and non-negative")
    num_positive = int(same.sum())
    if num_positive == 0 or num_positive == d.size:
        raise FacenetError(
            "issame must hold both same- and different-person pairs; received "
            f"{num_positive} same and {d.size - num_positive} different"
        )
    if w[same].sum() <= 0 or w[~same].sum() <= 0:
        raise FacenetError("sample_weight must give both classes a positive total weight")
    return d, same, w


def _check_curve(far, tar):
    far = np.asarray(far, dtype=np.float64)
    tar = np.asarray(tar, dtype=np.float64)
    if far.ndim != 1 or far.shape != tar.shape or far.size < 2:
        raise FacenetError(
            f"far and tar must be 1-D of equal length >= 2; received shapes {far.shape} and {tar.shape}"
        )
    return far, tar


def _check_far_target(target, name):
    target = float(target)
    if not 0.0 < target <= 1.0:
        raise FacenetError(f"{name} must be in (0, 1]; received {target!r}")
    return target
