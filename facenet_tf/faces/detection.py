"""Face detection with MTCNN (optional extra: ``pip install 'facenet_tf[align]'``).

MTCNN's weights ship inside the ``mtcnn`` package; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from facenet_tf.errors import FacenetError

#: MTCNN's keypoint names, in the order of :attr:`Face.landmarks`.
MTCNN_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(x, y, width, height)`` in image pixels (MTCNN's box, or a HOG rectangle's).
        confidence: the detector's score (MTCNN: 0..1; dlib's HOG: its filter response
            minus the threshold, >= 0).
        landmarks: float64 ``[5, 2]`` (x, y) in MTCNN's order (:data:`MTCNN_KEYPOINTS`), or
            ``None`` for a detector without landmarks.
        predictor_box: ``(left, top, right, bottom)``, the rectangle dlib's shape predictor
            takes as is (dlib's own detector's), or ``None``: one is derived from ``box``.
    """

    box: tuple
    confidence: float
    landmarks: Optional[np.ndarray]
    predictor_box: Optional[tuple] = None


class MtcnnDetector:
    """MTCNN faces scoring at least ``min_confidence``.

    Raises:
        FacenetError: the ``mtcnn`` package is not installed.
    """

    def __init__(self, min_confidence: float = 0.9):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise FacenetError(
                "face alignment needs the optional 'mtcnn' package: pip install 'facenet_tf[align]'"
            ) from None
        self.min_confidence = min_confidence
        self._mtcnn = MTCNN()

    def detect(self, image: np.ndarray) -> List[Face]:
        """Faces in uint8 ``[H, W, 3]``, in the detector's order."""
        return self._faces(self._mtcnn.detect_faces(image))

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """:meth:`detect` for each image (one batched MTCNN call when they share a shape)."""
        images = list(images)
        if not images:
            return []
        if len(images) == 1 or len({im.shape for im in images}) > 1:
            return [self.detect(im) for im in images]
        return [self._faces(found) for found in self._mtcnn.detect_faces(images)]

    def _faces(self, found) -> List[Face]:
        return [Face(tuple(float(v) for v in f["box"]), float(f["confidence"]),
                     np.array([f["keypoints"][k] for k in MTCNN_KEYPOINTS], np.float64))
                for f in found if f["confidence"] >= self.min_confidence]
