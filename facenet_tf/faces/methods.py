"""Alignment methods by name (``--align-method``): from a detected face (or none) to a chip.

* ``arcface``: MTCNN's five landmarks onto the 112×112 ArcFace template (any ``size``).
* ``dlib_chip``: MTCNN's five landmarks onto dlib's chip (:data:`~facenet_tf.faces.templates.MTCNN_TEMPLATE`).
* ``dlib_landmarks``: dlib's own chain, as dlib's face recognition expects it: the face box
  (dlib's HOG detector's own with ``--detector dlib_hog``, else one mapped from MTCNN's) →
  dlib's 5-point shape predictor (:mod:`facenet_tf.faces.shape_predictor`) → dlib's chip
  (:func:`~facenet_tf.faces.chips.get_face_chip`).
* ``dlib_landmarks68``: the same chain with dlib's 68-point predictor and dlib's chip from 68
  points (:mod:`facenet_tf.faces.landmarks68`). Opt-in only: its model's training data forbid
  commercial use, so it carries a :attr:`AlignMethod.notice` and is never a recorded alignment.

Both dlib methods, where no face is detected, run dlib's predictor inside the whole image, as
dlib-bin's pipeline does for tight crops, so a face that is there still gets a proper chip;
only when that fails is the image resized (``on_failure="resize"``).

A method is a :class:`AlignMethod`: ``face_chip`` (a detected face → chip) and, optionally,
``no_face_chip`` (no face detected → a chip from the image, or ``None``). Both take
``predictor``, a zero-argument callable giving the method's shape predictor (dlib's 5-point one
unless ``predictor_file`` names another; loaded on first use).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import numpy as np

from facenet_tf.faces.detection import Face
from facenet_tf.faces.landmarks68 import EYE_CORNERS, NON_COMMERCIAL_NOTICE, default_shape_predictor_68_path
from facenet_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class AlignMethod:
    """One way to cut a chip.

    Attributes:
        face_chip: ``(image, face, config, predictor) -> uint8 [size, size, 3]``.
        no_face_chip: ``(image, config, predictor) -> chip or None`` for images where no face
            is detected (``None``: the method has no such path; the caller resizes or skips).
        predictor_file: ``() -> path`` of the shape predictor the method's ``predictor`` loads
            (``None``: dlib's 5-point one).
        notice: a line a command prints first when the method is chosen (a licence
            restriction); a method with a notice is opt-in only, never a model's recorded
            alignment (:meth:`facenet_tf.faces.aligner.AlignConfig.from_contract` refuses it).
        faces_as: the method whose faces it takes (every detector serving that one serves it;
            ``None``: its own name, :func:`facenet_tf.faces.detectors.check_method`).
    """

    face_chip: Callable[..., np.ndarray]
    no_face_chip: Optional[Callable[..., Optional[np.ndarray]]] = None
    predictor_file: Optional[Callable[[], str]] = None
    notice: Optional[str] = None
    faces_as: Optional[str] = None


#: The alignment methods by name; ``--align-method`` chooses one.
ALIGN_METHODS: "Registry[AlignMethod]" = Registry("alignment method", "--align-method")


def faces_of(method: str) -> str:
    """The method whose faces ``method`` takes (:attr:`AlignMethod.faces_as`, else itself): what
    :func:`facenet_tf.faces.detectors.check_method` is asked about."""
    return ALIGN_METHODS.get(method).faces_as or method


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


def dlib_chip_from_points(image: np.ndarray, points: np.ndarray, config: Any) -> np.ndarray:
    """dlib's chip from its predictor's points, as ``dlib.get_face_chip`` does: 5 points
    (:func:`~facenet_tf.faces.chips.get_face_chip`) or 68 (:mod:`facenet_tf.faces.landmarks68`)."""
    from facenet_tf.faces.chips import extract_image_chip, get_face_chip
    from facenet_tf.faces.landmarks68 import face_chip_details_68

    if len(points) == 68:
        return extract_image_chip(image, face_chip_details_68(points, config.size, config.padding))
    return get_face_chip(image, points, config.size, config.padding)


def eye_span(points: np.ndarray) -> float:
    """Distance in pixels between the eyes' corner midpoints of dlib's 5 or 68 points."""
    eyes = [(0, 1), (2, 3)] if len(points) == 5 else EYE_CORNERS
    (a, b), (c, d) = eyes
    return float(np.hypot(*((points[a] + points[b]) / 2 - (points[c] + points[d]) / 2)))


def _dlib_landmarks(image: np.ndarray, face: Face, config: Any, predictor: Any) -> np.ndarray:
    return dlib_chip_from_points(image, predictor().predict(image, dlib_box(face)), config)


def _dlib_landmarks_whole_image(image: np.ndarray, config: Any, predictor: Any) -> Optional[np.ndarray]:
    """The predictor in the whole-image box ``(0, 0, W-1, H-1)``; ``None`` when its eyes
    collapse (less than 2 px apart: no face it could place)."""
    from facenet_tf.faces.boxes import whole_image_box

    points = predictor().predict(image, whole_image_box(image.shape))
    if not np.isfinite(points).all() or eye_span(points) < 2.0:
        return None
    return dlib_chip_from_points(image, points, config)


ALIGN_METHODS.register("arcface", AlignMethod(_arcface),
                       help="MTCNN's 5 landmarks onto the 112x112 ArcFace template (scaled to --size)")
ALIGN_METHODS.register("dlib_chip", AlignMethod(_dlib_chip, _dlib_landmarks_whole_image),
                       help="MTCNN's 5 landmarks onto dlib's 150x150 face chip (padding 0.25); where no face is "
                            "detected, dlib's predictor in the whole image (as dlib does for crops), then a resize")
ALIGN_METHODS.register("dlib_landmarks", AlignMethod(_dlib_landmarks, _dlib_landmarks_whole_image),
                       help="dlib's 5-point shape predictor in the face box, then dlib's chip; no face detected: "
                            "as dlib_chip")
ALIGN_METHODS.register("dlib_landmarks68",
                       AlignMethod(_dlib_landmarks, _dlib_landmarks_whole_image, default_shape_predictor_68_path,
                                   NON_COMMERCIAL_NOTICE, faces_as="dlib_landmarks"),
                       help="NON-COMMERCIAL USE ONLY (opt-in; never a default): as dlib_landmarks with dlib's 68-point "
                            "predictor (trained on iBUG 300-W, whose licence forbids commercial use) and dlib's chip "
                            "from 68 points")
