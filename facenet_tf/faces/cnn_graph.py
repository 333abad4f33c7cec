"""dlib's CNN face detector (MMOD) as one TensorFlow graph, for images of any size.

:class:`CnnGraphDetector` is :meth:`facenet_tf.faces.cnn_detector.CnnFaceDetector.detect` with
every step in TensorFlow ops, so a SavedModel that holds it detects faces without Python:
``pyramid_up`` (:func:`facenet_tf.faces.pyramid_graph.pyramid_up`), the tiled pyramid laid out
and filled in the graph (:func:`~facenet_tf.faces.pyramid_graph.tiled_rects`,
:func:`~facenet_tf.faces.pyramid_graph.tiled_canvas`), the same Keras network and weights, the
positions mapped to boxes (nearest level, ``rect_up`` per level, rounding) and dlib's
non-maximum suppression as a ``tf.while_loop`` over the candidates, best first. The boxes equal
the NumPy detector's and the scores agree within 1e-3 (tests/test_graph_detector.py; on CPU the
pixels fed to the network are bit-identical).
"""

from __future__ import annotations

from typing import Optional, Tuple

import tensorflow as tf

from facenet_tf.errors import FacenetError
from facenet_tf.faces.cnn_detector import PYRAMID, MAX_UPSAMPLE, CnnFaceDetector
from facenet_tf.faces.pyramid_graph import pyramid_up, tiled_canvas, tiled_rects

_F64 = tf.float64


class CnnGraphDetector(tf.Module):
    """:meth:`CnnFaceDetector.detect(image, upsample) <facenet_tf.faces.cnn_detector.CnnFaceDetector.detect>`
    in TensorFlow ops (a ``tf.Module``: its network's weights are saved with a SavedModel holding it).

    Args:
        detector: the NumPy/Keras detector whose network (and file's settings) this runs.
        upsample: how many times the image is doubled first (0 to
            :data:`~facenet_tf.faces.cnn_detector.MAX_UPSAMPLE`), fixed in the graph.

    Raises:
        FacenetError: ``upsample`` out of range.
    """

    def __init__(self, detector: CnnFaceDetector, upsample: int = 1):
        super().__init__(name="cnn_graph_detector")
        if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= MAX_UPSAMPLE:
            raise FacenetError(f"upsample must be an integer from 0 to {MAX_UPSAMPLE}; received {upsample!r}")
        self.network = detector.model
        self.mean = tf.constant(detector.mean, tf.float32)
        self._upsample = upsample
        self._padding, self._outer_padding = detector.padding, detector.outer_padding
        self._half_window = ((detector.window[0] - 1) / 2.0, (detector.window[1] - 1) / 2.0)
        self._nms = detector.nms
        self._scale, self._offset = detector.scale, detector.offset
        self.convs = tuple(detector.convs)

    @classmethod
    def load(cls, path: Optional[str] = None, upsample: int = 1) -> "CnnGraphDetector":
        """The graph of :meth:`CnnFaceDetector.load(path) <facenet_tf.faces.cnn_detector.CnnFaceDetector.load>`
        (default: the packaged ``mmod_human_face_detector.dat``)."""
        return cls(CnnFaceDetector.load(path), upsample)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    def __call__(self, image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Faces in ``image``, best first.

        Args:
            image: uint8 ``[H, W, 3]`` RGB.

        Returns:
            ``(boxes, scores)``: float32 ``[K, 4]`` dlib's inclusive rectangles ``(left, top, right,
            bottom)`` in the image's pixels (whole numbers; they may reach outside the image) and
            float32 ``[K]`` the network's scores (> 0); ``K`` may be 0.
        """
        for _ in range(self._upsample):
            image = pyramid_up(image)
        rects, canvas_shape = tiled_rects(tf.shape(image)[0], tf.shape(image)[1], self._padding,
                                          self._outer_padding, PYRAMID)
        score_map = tf.cond(self._scores_anything(canvas_shape),
                            lambda: self._scores(image, rects, canvas_shape),
                            lambda: tf.zeros([0, 0], tf.float32))
        boxes, scores = self._candidates(score_map, rects)
        order = tf.argsort(-scores, stable=True)
        boxes, scores = tf.gather(boxes, order), tf.gather(scores, order)
        kept = self._suppressed(boxes)
        boxes, scores = tf.cast(tf.boolean_mask(boxes, kept), _F64), tf.boolean_mask(scores, kept)
        for _ in range(self._upsample):  # pyramid_down<2>::rect_down, then one rounding
            boxes = boxes / 2.0 - tf.constant([1.25, 0.75, 1.25, 0.75], _F64)
        return tf.cast(_round(boxes), tf.float32), scores

    def _scores_anything(self, canvas_shape: tf.Tensor) -> tf.Tensor:
        """Whether the canvas leaves any output position (else dlib finds nothing; the network could not run)."""
        size = tf.reduce_min(canvas_shape)
        for kernel, stride, pad in self.convs:
            size = (size + 2 * pad - kernel) // stride + 1
        return size >= 1

    def _scores(self, image: tf.Tensor, rects: tf.Tensor, canvas_shape: tf.Tensor) -> tf.Tensor:
        """The network's float32 ``[h, w]`` scores of dlib's tiled canvas of ``image``."""
        first = (tf.cast(image, tf.float32)[None] - self.mean) / 256.0
        canvas = tiled_canvas(first, rects, canvas_shape, self._padding)
        return self.network(canvas, training=False)[0, :, :, 0]

    def _candidates(self, score_map: tf.Tensor, rects: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """``loss_mmod_::to_label`` before suppression: int64 ``[K, 4]`` boxes of the positive
        positions (row-major order) and their float32 scores."""
        where = tf.where(score_map > 0)
        scores = tf.gather_nd(score_map, where)
        centres = tf.stack([where[:, 1], where[:, 0]], 1) * self._scale + self._offset
        rects = tf.cast(rects, tf.int64)
        x, y = centres[:, :1], centres[:, 1:]
        dx = tf.maximum(tf.maximum(rects[None, :, 0] - x, x - rects[None, :, 2]), 0)
        dy = tf.maximum(tf.maximum(rects[None, :, 1] - y, y - rects[None, :, 3]), 0)
        level = tf.argmin(tf.sqrt(tf.cast(dx * dx + dy * dy, _F64)), axis=1, output_type=tf.int32)  # first nearest
        half = tf.constant(self._half_window, _F64)
        centres = tf.cast(centres, _F64)
        origin = tf.cast(tf.gather(rects, level)[:, :2], _F64)
        corners = tf.concat([centres - half, centres + half], 1) - tf.concat([origin, origin], 1)

        def up(step, corners):  # rect_up: p·6/5 + 0.3, once per level above the image
            moved = corners * (PYRAMID / (PYRAMID - 1.0)) + 0.3
            return step + 1, tf.where((level >= step)[:, None], moved, corners)

        _, corners = tf.while_loop(lambda step, _: step < tf.shape(rects)[0], up, (1, corners))
        return _round(corners), scores

    def _suppressed(self, boxes: tf.Tensor) -> tf.Tensor:
        """dlib's non-maximum suppression of boxes sorted best first: bool ``[K]``, kept where no
        better kept box overlaps (:func:`facenet_tf.faces.hog_detector._overlaps`)."""
        count = tf.shape(boxes)[0]
        match, covered = self._nms
        box_area = _area(boxes)

        def visit(k, kept):
            box = boxes[k]
            width = tf.minimum(boxes[:, 2], box[2]) - tf.maximum(boxes[:, 0], box[0]) + 1
            height = tf.minimum(boxes[:, 3], box[3]) - tf.maximum(boxes[:, 1], box[1]) + 1
            inner = tf.cast(width * height, _F64)
            outer = tf.cast((tf.maximum(boxes[:, 2], box[2]) - tf.minimum(boxes[:, 0], box[0]) + 1)
                            * (tf.maximum(boxes[:, 3], box[3]) - tf.minimum(boxes[:, 1], box[1]) + 1), _F64)
            overlap = (width > 0) & (height > 0) & ((inner / outer > match) | (inner / box_area > covered)
                                                    | (inner / box_area[k] > covered))
            alone = tf.logical_not(tf.reduce_any(overlap & kept))
            return k + 1, tf.tensor_scatter_nd_update(kept, [[k]], [alone])

        _, kept = tf.while_loop(lambda k, _: k < count, visit, (0, tf.zeros([count], tf.bool)))
        return kept


def _area(boxes: tf.Tensor) -> tf.Tensor:
    return tf.cast((boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1), _F64)


def _round(values: tf.Tensor) -> tf.Tensor:
    """:func:`facenet_tf.faces.hog_detector._round` (halves away from zero) → int64."""
    return tf.cast(tf.sign(values) * tf.floor(tf.abs(values) + 0.5), tf.int64)
