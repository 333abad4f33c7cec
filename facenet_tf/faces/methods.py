"""Alignment methods by name (``--align-method``): from a detected face (or none) to a chip.

* ``arcface``: MTCNN's five landmarks onto the 112×112 ArcFace template (any ``size``).
* ``dlib_chip``: MTCNN's five landmarks onto dlib's chip (:data:`~facenet_tf.faces.templates.MTCNN_TEMPLATE`).
* ``dlib_landmarks``: dlib's own chain, as dlib's face recognition expects it: the face box
  (dlib's HOG detector's own with ``--detector dlib_hog``, else one mapped from MTCNN's) →
  dlib's 5-point shape predictor (:mod:`facenet_tf.faces.shape_predictor`) → dlib's chip
  (:func:`~facenet_tf.faces.chips.get_face_chip`).

Both dlib methods, where no face is detected, run dlib's predictor inside the whole image, as
dlib-bin's pipeline does for tight crops, so a face that is there still gets a proper chip;
only when that fails is the image resized (``on_failure="resize"``).

A method is a :class:`AlignMethod`: ``face_chip`` (a detected face → chip) and, optionally,
``no_face_chip`` (no face detected → a chip from the image, or ``None``). Both take
``predictor``, a zero-argument callable giving dlib's shape predictor (loaded on first use).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import numpy as np

from facenet_tf.faces.detection import Face
from facenet_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class AlignMethod:
    """One way to cut a chip.

    Attributes:
        face_chip: ``(image, face, config, predictor) -> uint8 [size, size, 3]``.
        no_face_chip: ``(image, config, predictor) -> chip or None`` for images where no face
            is detected (``None``: the method has no such path; the caller resizes or skips).
    """

    face_chip: Callable[..., np.ndarray]
    no_face_chip: Optional[Callable[..., Optional[np.ndarray]]] = None


#: The alignment methods by name; ``--align-method`` chooses one.
ALIGN_METHODS: "Registry[AlignMethod]" = Registry("alignment method", "--align-method")


def _arcface(image: np.ndarray, face: Face, config: Any, predictor: Any = None) -> np.ndarray:
    from facenet_tf.faces.transform import warp_face

    return warp_face(image, face.landmarks, config.size)


def _dlib_chip(image: np.ndarray, face: Face, config: Any, predictor: Any = None) -> np.ndarray:
    from facenet_tf.faces.chips import mtcnn_face_chip

    return mtcnn_face_chip(image, face.landmarks, config.size, config.padding)


def dlib_box(face: Face):
    """The ``(left, top, right, bottom)`` box dlib's shape predictor gets: dlib's detector's own
    rectangle where the face came from it (``face.predictor_box``), else, for an MTCNN face,
    the box dlib's detector would give (:func:`facenet_tf.faces.boxes.dlib_box_from_mtcnn`)."""
    from facenet_tf.faces.boxes import dlib_box_from_mtcnn

    if face.predictor_box is not None:
        return face.predictor_box
    return dlib_box_from_mtcnn(face.box)


def _dlib_landmarks(image: np.ndarray, face: Face, config: Any, predictor: Any) -> np.ndarray:
    from facenet_tf.faces.chips import get_face_chip

    return get_face_chip(image, predictor().predict(image, dlib_box(face)), config.size, config.padding)


def _dlib_landmarks_whole_image(image: np.ndarray, config: Any, predictor: Any) -> Optional[np.ndarray]:
    """The predictor in the whole-image box ``(0, 0, W-1, H-1)``; ``None`` when its eyes
    collapse (less than 2 px apart: no face it could place)."""
    from facenet_tf.faces.boxes import whole_image_box
    from facenet_tf.faces.chips import get_face_chip

    points = predictor().predict(image, whole_image_box(image.shape))
    eyes = (points[0] + points[1]) / 2 - (points[2] + points[3]) / 2
    if not np.isfinite(points).all() or float(np.hypot(*eyes)) < 2.0:
        return None
    return get_face_chip(image, points, config.size, config.padding)


ALIGN_METHODS.register("arcface", AlignMethod(_arcface),
                       help="MTCNN's 5 landmarks onto the 112x112 ArcFace template (scaled to --size)")
ALIGN_METHODS.register("dlib_chip", AlignMethod(_dlib_chip, _dlib_landmarks_whole_image),
                       help="MTCNN's 5 landmarks onto dlib's 150x150 face chip (padding 0.25); where no face is "
                            "detected, dlib's predictor in the whole image (as dlib does for crops), then a resize")
ALIGN_METHODS.register("dlib_landmarks", AlignMethod(_dlib_landmarks, _dlib_landmarks_whole_image),
                       help="dlib's 5-point shape predictor in the face box, then dlib's chip; no face detected: "
                            "as dlib_chip")
