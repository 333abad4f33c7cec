"""The one similarity-transform fit of the project, and the template warp built on it.

A similarity transform (rotation, uniform scale, shift; no reflection or shear) fitted by
least squares. In 2-D the fit (Umeyama 1991) has a closed form: with ``s``, ``t`` the centred
points, the rotation + scale is ``[[a, -b], [b, a]]``, ``a = Σ(s·t)/Σ|s|²``,
``b = Σ(s×t)/Σ|s|²``, the least-squares solution over every ``(a, b)``, so never a
reflection. :func:`similarity_transform` (dlib's ``find_similarity_transform``, which dlib
solves by an SVD: the two agree to 2e-15 relative on ORL's chips, and the chips
(:mod:`facenet_tf.faces.chips`) stay bit-identical to ``dlib.get_face_chip``) and
:func:`similarity_about_origin` (batched over faces in dlib's shape predictor's rounding,
:mod:`facenet_tf.faces.shape_predictor`) both compute it in :func:`_rotation_scale`.

Rule for degenerate input: ``source`` points that all coincide have no scale to fit, so
:func:`similarity_transform` raises :class:`~facenet_tf.errors.FacenetError`. Any other input
has an answer: collinear points too (the closed form needs no choice of reflection), and
coincident ``target`` points give scale 0 (every point maps onto their centre).
"""

from __future__ import annotations

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.templates import TEMPLATE_112


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``source`` points onto ``target``.

    Args:
        source: float ``[N, 2]`` points (x, y), N >= 2, not all equal.
        target: float ``[N, 2]`` corresponding points.

    Returns:
        float64 ``[2, 3]`` matrix ``M`` with ``target ≈ source @ M[:, :2].T + M[:, 2]``.

    Raises:
        FacenetError: shapes differ or are not ``[N, 2]`` with N >= 2, or the ``source``
            points all coincide (module docstring).
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise FacenetError(f"source and target points must both be [N, 2] with N >= 2; received "
                           f"{source.shape} and {target.shape}")
    s, t = source - source.mean(axis=0), target - target.mean(axis=0)
    norm = (s ** 2).sum()
    if not norm > 0:
        raise FacenetError("the source points of a similarity transform all coincide: no scale can be fitted")
    a, b = (float(v[0]) for v in _rotation_scale(s[None], norm, t[None]))
    rotation = np.array([[a, -b], [b, a]])
    return np.hstack([rotation, (target.mean(axis=0) - rotation @ source.mean(axis=0))[:, None]])


def _rotation_scale(centred_source: np.ndarray, norm: float, centred_target: np.ndarray):
    """The least-squares rotation + uniform scale ``[[a, -b], [b, a]]`` of centred point sets:
    ``a = Σ(s·t)/Σ|s|²``, ``b = Σ(s×t)/Σ|s|²``; float64 ``[N]`` each for ``[N, P, 2]`` targets."""
    t = centred_target
    a = (centred_source * t).sum(axis=(1, 2)) / norm
    b = (centred_source[..., 0] * t[:, :, 1] - centred_source[..., 1] * t[:, :, 0]).sum(axis=1) / norm
    return a, b


def similarity_about_origin(centred_source: np.ndarray, norm: float, target: np.ndarray):
    """The 2×2 part of :func:`similarity_transform` for many point sets against one, cast to float32:
    dlib's shape predictor's ``find_tform_about_origin``.

    The same least-squares fit (Umeyama) in its closed form for 2-D points, batched over faces
    and in dlib's rounding (double, then float32) so the landmarks stay dlib's bit for bit;
    the rotation + uniform scale is
    ``[[a, -b], [b, a]]`` with ``a = Σ(s·t)/Σ|s|²`` and ``b = Σ(s×t)/Σ|s|²`` over the centred
    points (``centred_source`` and its ``norm`` = Σ|s|² are the mean shape's, fixed).

    Returns:
        float32 ``[N, 1]`` each: m00, m01, m10, m11.
    """
    t = target.astype(np.float64)
    t = t - t.sum(axis=1, keepdims=True) / t.shape[1]
    if norm == 0:
        one, zero = np.ones((len(t), 1), np.float32), np.zeros((len(t), 1), np.float32)
        return one, zero, zero, one
    a, b = _rotation_scale(centred_source, norm, t)
    a, b = a[:, None], b[:, None]
    return a.astype(np.float32), (-b).astype(np.float32), b.astype(np.float32), a.astype(np.float32)


def warp_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Crop of ``image`` with ``landmarks`` moved onto the ArcFace template scaled to ``size``.

    Args:
        image: uint8 ``[H, W, 3]``.
        landmarks: ``[5, 2]`` (x, y) in MTCNN's order (see :data:`TEMPLATE_112`).
        size: output side in pixels.

    Returns:
        uint8 ``[size, size, 3]``; pixels from outside ``image`` are black.
    """
    from PIL import Image

    matrix = similarity_transform(landmarks, TEMPLATE_112 * (size / 112.0))
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # Pillow maps output → input
    warped = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, tuple(inverse.ravel()),
                                              resample=Image.Resampling.BILINEAR)
    return np.asarray(warped)
