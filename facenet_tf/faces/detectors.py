"""Face detectors by name (``--detector``): from images to :class:`~facenet_tf.faces.detection.Face` lists.

* ``mtcnn``: MTCNN (:mod:`facenet_tf.faces.detection`): boxes, scores in 0..1 and five
  landmarks; every alignment method can use it.
* ``dlib_hog``: dlib's own pipeline first: its HOG frontal face detector
  (:mod:`facenet_tf.faces.hog_detector`, boxes equal to dlib-bin's ``detector(image, upsample)``),
  whose rectangle dlib's shape predictor takes as is, so the chip is the one dlib-bin makes;
  where it finds no face, MTCNN's faces (their boxes mapped to dlib-like ones by
  :func:`facenet_tf.faces.boxes.dlib_box_from_mtcnn`). HOG faces carry no MTCNN landmarks, so
  this detector serves ``dlib_landmarks`` only.

A detector is a factory ``(config) -> object`` with ``detect_many(images) -> [[Face, ...], ...]``;
``config`` is the :class:`~facenet_tf.faces.aligner.AlignConfig`. Adding one is one
registration here (plus its tests).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from facenet_tf.faces.detection import Face
from facenet_tf.registry import Registry

#: Face detectors by name; ``--detector`` chooses one.
DETECTORS: "Registry[Any]" = Registry("face detector", "--detector")

#: Alignment methods a detector's faces can serve (absent: every method).
SERVES = {"dlib_hog": ("dlib_landmarks",)}


def _mtcnn(config) -> Any:
    from facenet_tf.faces.detection import MtcnnDetector

    return MtcnnDetector(config.min_confidence)


class HogThenMtcnn:
    """dlib's HOG detector (``upsample`` times), MTCNN for the images where it finds nothing.

    Args:
        upsample: how many times the image is doubled before the HOG scan (dlib-bin's
            pipelines use 1: faces down to ~40 px).
        min_confidence: the MTCNN score of the fallback.
        hog: a :class:`~facenet_tf.faces.hog_detector.HogFaceDetector` (default: the packaged one).
    """

    #: Its scan runs in Python and NumPy holding the GIL: a folder is detected in worker
    #: processes to use more than one core (:func:`facenet_tf.faces.aligner.parallel_workers`).
    in_processes = True

    def __init__(self, upsample: int = 1, min_confidence: float = 0.9, hog=None):
        from facenet_tf.faces.hog_detector import HogFaceDetector

        self.upsample = upsample
        self.min_confidence = min_confidence
        self._hog = hog or HogFaceDetector.load()
        self._mtcnn = None

    def mtcnn(self):
        """The fallback MTCNN detector, built on first need (the ``mtcnn`` extra)."""
        if self._mtcnn is None:
            from facenet_tf.faces.detection import MtcnnDetector

            self._mtcnn = MtcnnDetector(self.min_confidence)
        return self._mtcnn

    def hog_faces(self, image: np.ndarray) -> List[Face]:
        """The HOG detections of uint8 ``[H, W, 3]``, best first, as faces whose
        ``predictor_box`` is dlib's rectangle."""
        found = self._hog.detect(image, self.upsample)
        return [Face((float(l), float(t), float(r - l + 1), float(b - t + 1)), float(score), None,
                     predictor_box=(int(l), int(t), int(r), int(b)))
                for (l, t, r, b), score in zip(found.boxes, found.scores)]

    def detect(self, image: np.ndarray) -> List[Face]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """HOG faces per image; MTCNN (batched) on the images without one."""
        found = [self.hog_faces(image) for image in images]
        missing = [i for i, faces in enumerate(found) if not faces]
        if missing:
            for i, faces in zip(missing, self.mtcnn().detect_many([images[i] for i in missing])):
                found[i] = faces
        return found


def _dlib_hog(config) -> HogThenMtcnn:
    return HogThenMtcnn(config.hog_upsample, config.min_confidence)


DETECTORS.register("mtcnn", _mtcnn, help="MTCNN: boxes and five landmarks (every alignment method)")
DETECTORS.register("dlib_hog", _dlib_hog,
                   help="dlib's HOG detector (its exact boxes, so dlib_landmarks makes dlib-bin's own chips), "
                        "MTCNN where it finds no face; dlib_landmarks only")


def detector_serving(method: str) -> str:
    """The first registered detector whose faces serve alignment ``method`` (``mtcnn`` serves every one)."""
    return next(name for name in DETECTORS.names() if check_method(name, method) is None)


def check_method(detector: str, method: str) -> Optional[str]:
    """``None`` if ``detector``'s faces can serve alignment ``method``, else the one-line reason."""
    allowed = SERVES.get(detector)
    if allowed is None or method in allowed:
        return None
    return (f"detector {detector!r} gives boxes without MTCNN's landmarks: it serves "
            f"--align-method {', '.join(allowed)}; received {method!r}")
