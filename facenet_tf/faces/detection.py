"""Face detection with MTCNN (optional extra: ``pip install 'facenet_tf[align]'``).

MTCNN's weights ship inside the ``mtcnn`` package; nothing is downloaded. The package's three
stages (PNet proposals over an image pyramid, RNet and ONet refinements, its NMS and box
arithmetic) are used as they are; two things are done differently from its ``detect_faces``,
both for speed and both leaving the faces unchanged (``tests/test_faces_detection.py``):

* each network runs as one TensorFlow graph (a ``tf.function`` traced once: PNet for any image
  size, RNet and ONet for their fixed patch sizes) instead of layer by layer in eager mode, where
  Keras' per-layer Python dominated the time (×3 on ORL one image at a time);
* a batch is converted to one normalised float32 tensor once, not once per pyramid scale, and
  images of one shape are detected together (:meth:`MtcnnDetector.detect_many` groups them).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np

from facenet_tf.errors import FacenetError

#: MTCNN's keypoint names, in the order of :attr:`Face.landmarks`.
MTCNN_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: Images detected in one call at most (memory: the pyramid of a batch of large photos).
MAX_BATCH = 16


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


def _graph_stages():
    """MTCNN's PNet, RNet and ONet stages, each network wrapped in a ``tf.function``.

    A stage keeps its network in ``_model`` (``mtcnn.stages.base.StageBase``) and calls it on a
    float32 batch; the wrapper traces it once for the input shape given (``None`` = any).
    """
    import mtcnn  # noqa: F401 - the package itself first: its stages may be cached without it
    import tensorflow as tf
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    stages = []
    for stage_class, shape in ((StagePNet, [None, None, None, 3]), (StageRNet, [None, 24, 24, 3]),
                               (StageONet, [None, 48, 48, 3])):
        stage = stage_class()
        network = getattr(stage, "_model", None)
        if network is not None:  # another mtcnn layout: keep its own (eager) call
            graph = tf.function(lambda x, network=network: network(x, training=False),
                                input_signature=[tf.TensorSpec(shape, tf.float32)])
            stage._model = lambda x, graph=graph: graph(tf.cast(x, tf.float32))
        stages.append(stage)
    return stages


class MtcnnDetector:
    """MTCNN faces scoring at least ``min_confidence``.

    Raises:
        FacenetError: the ``mtcnn`` package is not installed.
    """

    def __init__(self, min_confidence: float = 0.9):
        try:
            self._stages = _graph_stages()
        except ImportError:
            raise FacenetError(
                "face alignment needs the optional 'mtcnn' package: pip install 'facenet_tf[align]'"
            ) from None
        self.min_confidence = min_confidence

    def detect(self, image: np.ndarray) -> List[Face]:
        """Faces in uint8 ``[H, W, 3]``, in the detector's order."""
        return self._detect_same_shape([image])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """:meth:`detect` for each image; images of one shape go through MTCNN together
        (at most :data:`MAX_BATCH` at a time), in any order of the input."""
        images = list(images)
        by_shape: Dict[tuple, List[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(np.shape(image), []).append(i)
        out: List[List[Face]] = [[] for _ in images]
        for indices in by_shape.values():
            for start in range(0, len(indices), MAX_BATCH):
                chunk = indices[start:start + MAX_BATCH]
                for i, faces in zip(chunk, self._detect_same_shape([images[i] for i in chunk])):
                    out[i] = faces
        return out

    def _detect_same_shape(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """MTCNN on images of one shape: ``mtcnn.MTCNN.detect_faces`` with the batch normalised once."""
        import tensorflow as tf

        batch = np.stack([np.asarray(image) for image in images])
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise FacenetError(f"face detection takes RGB images [H, W, 3]; received shape {batch.shape[1:]}")
        shapes = np.array([batch.shape[1:]] * len(batch))
        normalized = (tf.constant(batch, tf.float32) - 127.5) / 128.0  # as mtcnn.utils.images.normalize_images
        rows = None
        try:
            for stage in self._stages:
                rows = stage(bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes)
        except tf.errors.InvalidArgumentError:  # the package's own signal for "no proposals left"
            rows = None
        return [self._faces(rows, i, batch.shape[1:3]) for i in range(len(batch))]

    def _faces(self, rows, index: int, shape) -> List[Face]:
        """The faces of image ``index`` from ONet's rows ``[image, x1, y1, x2, y2, score, 5 x, 5 y]``,
        as ``detect_faces`` reports them: the box clipped to the image, then box and landmarks
        rounded to whole pixels (``mtcnn.utils.bboxes.limit_bboxes``, ``to_json``)."""
        if rows is None or len(rows) == 0:
            return []
        rows = np.asarray(rows, np.float64)
        rows = rows[rows[:, 0] == index]
        height, width = shape
        faces = []
        for row in rows:
            confidence = float(row[5])
            if confidence < self.min_confidence:
                continue
            x1, x2 = (min(max(v, 0.0), width - 1.0) for v in (row[1], row[3]))
            y1, y2 = (min(max(v, 0.0), height - 1.0) for v in (row[2], row[4]))
            box = tuple(float(v) for v in np.round([x1, y1, x2 - x1, y2 - y1]).astype(int))
            landmarks = np.round(np.stack([row[6:11], row[11:16]], axis=1)).astype(int).astype(np.float64)
            faces.append(Face(box, confidence, landmarks))
        return faces
