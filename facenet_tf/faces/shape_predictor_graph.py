"""dlib's 5-point shape predictor as TensorFlow ops, for graphs that serve the whole pipeline.

:class:`ShapePredictorGraph` holds the regression-tree cascade of a
:class:`~facenet_tf.faces.shape_predictor.ShapePredictor` as constants and runs it with
TensorFlow ops only (no Python callbacks), so that a ``tf.function`` traced with unknown image
size and face count, and a SavedModel holding it, find the landmarks without NumPy or
facenet_tf. The trees are gathers: per cascade all splits' comparisons are read at once
(``[F, trees · splits]``), each tree is walked ``depth`` steps by gathering its next node, and
the leaves are gathered and summed.

The arithmetic follows the NumPy version step by step (its module docstring), so that the
points are the same (on CPU: equal bit for bit to ``ShapePredictor.predict`` on 2000 ORL
faces with jittered boxes, before and after the rounding to whole pixels):

* the similarity of the mean shape onto the current shape in float64, rounded to float32;
* the feature pixels' positions in float32, then float64 into image pixels and
  ``floor(v + 0.5)``; a pixel is ``(r + g + b) // 3`` and 0 outside the image;
* the leaves are added to the shape one after the other in float32: a ``cumsum`` along the
  trees (TensorFlow's CPU kernel scans each line sequentially, as dlib adds; a GPU's parallel
  scan may round the last bit differently, which can move a point by a whole pixel in rare
  faces).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf


class ShapePredictorGraph(tf.Module):
    """dlib's regression-tree cascade in TensorFlow ops, vectorised over the faces of one image.

    Args:
        predictor: a loaded :class:`~facenet_tf.faces.shape_predictor.ShapePredictor`; its
            arrays become constants of this module (saved with a SavedModel that calls it).
        subpixel: ``False`` (default) rounds the points to whole pixels as dlib does, as
            ``ShapePredictor.predict`` does; ``True`` returns them before that rounding.
    """

    def __init__(self, predictor, subpixel: bool = False, name: Optional[str] = None):
        super().__init__(name=name or "shape_predictor_graph")
        cascades, trees, splits = predictor.split_thresholds.shape
        self.num_parts = int(predictor.initial_shape.shape[0])
        self.subpixel = bool(subpixel)
        self._depth = int(splits).bit_length()  # splits = 2**depth - 1
        self._num_cascades, self._num_trees, self._num_splits = int(cascades), int(trees), int(splits)
        initial = np.asarray(predictor.initial_shape, np.float32)
        centred = initial.astype(np.float64) - initial.astype(np.float64).mean(axis=0)
        self._norm = float((centred ** 2).sum())
        self._initial = tf.constant(initial)
        self._split_a = tf.constant(predictor.split_pixels[..., 0].reshape(cascades, -1).astype(np.int32))
        self._split_b = tf.constant(predictor.split_pixels[..., 1].reshape(cascades, -1).astype(np.int32))
        self._thresholds = tf.constant(predictor.split_thresholds.reshape(cascades, -1).astype(np.float32))
        self._leaves = tf.constant(predictor.leaf_values.reshape(cascades * trees * (splits + 1), -1).astype(np.float32))
        self._anchors = tf.constant(predictor.anchors.astype(np.int32))
        self._deltas = tf.constant(np.transpose(predictor.deltas, (0, 2, 1)).astype(np.float32))  # [C, 2, features]
        # Columns: the weights of Σ s·t and Σ s×t over the flat (x0, y0, x1, ...) centred shape.
        self._fit_weights = tf.constant(np.stack([centred.ravel(), np.stack([-centred[:, 1], centred[:, 0]], 1).ravel()], 1))
        self._tree_first = tf.constant(np.arange(trees, dtype=np.int32) * splits)
        self._leaf_first = tf.constant(np.arange(trees, dtype=np.int32) * (splits + 1) - splits)

    @classmethod
    def load(cls, path: Optional[str] = None, subpixel: bool = False) -> "ShapePredictorGraph":
        """The graph of dlib's shape predictor file (``None``: the packaged 5-point model).

        Raises:
            FacenetError: as :meth:`facenet_tf.faces.shape_predictor.ShapePredictor.load`.
        """
        from facenet_tf.faces.shape_predictor import ShapePredictor

        return cls(ShapePredictor.load(path), subpixel=subpixel)

    def __call__(self, image: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
        """Landmarks of the faces in ``boxes``, as ``ShapePredictor.predict(image, box)`` finds them.

        Args:
            image: uint8 ``[H, W, 3]`` RGB (H, W may be unknown when traced).
            boxes: float32 ``[F, 4]`` dlib rectangles ``(left, top, right, bottom)``, inclusive,
                in pixels; each side is rounded as dlib rounds a ``drectangle``
                (``floor(v + 0.5)``). F may be 0. Boxes may reach outside the image. Unlike
                the NumPy version nothing is checked: an empty or non-finite box gives
                meaningless points instead of an error.

        Returns:
            float32 ``[F, P, 2]`` (x, y) image pixels (whole pixels unless ``subpixel``).
        """
        image = tf.convert_to_tensor(image, tf.uint8)
        corners = tf.floor(tf.cast(tf.reshape(boxes, [-1, 4]), tf.float64) + 0.5)
        origin, scale = corners[:, :2], corners[:, 2:] - corners[:, :2]  # float64 [F, 2]
        pixels = _PixelReader(image)
        faces = tf.shape(corners)[0]
        shape = tf.tile(self._initial[None], [faces, 1, 1])  # float32 [F, P, 2]

        def cascade_step(cascade, shape):
            values = self._feature_pixels(pixels, cascade, shape, scale, origin)
            return cascade + 1, self._apply_forest(cascade, values, shape)

        # A loop, not 15 unrolled copies: the graph (and its tracing) stays one cascade large.
        _, shape = tf.while_loop(lambda cascade, _: cascade < self._num_cascades, cascade_step,
                                 (tf.constant(0), shape),
                                 shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, self.num_parts, 2])))
        points = tf.cast(shape, tf.float64) * scale[:, None] + origin[:, None]
        if not self.subpixel:
            points = tf.floor(points + 0.5)
        return tf.cast(points, tf.float32)

    def _similarity(self, shape: tf.Tensor):
        """``find_tform_about_origin`` of the mean shape onto ``shape`` (float32 ``[F, P, 2]``),
        in float64 rounded to float32 as dlib: ``(first, second)`` float32 ``[F, 2, 1]``, the
        columns ``(m00, m10)`` and ``(m01, m11)`` of ``[[a, -b], [b, a]]``."""
        if self._norm == 0:  # a mean shape of one point: no rotation or scale to fit (as NumPy)
            first = tf.tile(tf.constant([[[1.0], [0.0]]]), [tf.shape(shape)[0], 1, 1])
            return first, tf.reverse(first, axis=[1])
        t = tf.cast(shape, tf.float64)
        t = tf.reshape(t - tf.reduce_mean(t, axis=1, keepdims=True), [-1, 2 * self.num_parts])
        # One product gives both sums, a = Σ s·t and b = Σ s×t; its order of additions may
        # differ from numpy's in float64's last bit, which the float32 rounding hides (equal
        # on every one of 2000 ORL faces measured).
        a_b = tf.cast(tf.matmul(t, self._fit_weights) / self._norm, tf.float32)  # [F, 2]
        first = a_b[:, :, None]  # (a, b)
        second = tf.stack([-a_b[:, 1], a_b[:, 0]], axis=1)[:, :, None]  # (-b, a)
        return first, second

    def _feature_pixels(self, pixels: "_PixelReader", cascade: tf.Tensor, shape, scale, origin) -> tf.Tensor:
        """dlib's ``extract_feature_pixel_values``: float32 ``[F, features]`` grey values, 0 outside."""
        first, second = self._similarity(shape)
        deltas = tf.gather(self._deltas, cascade)  # [2, features]
        anchor = tf.gather(tf.transpose(shape, [0, 2, 1]), tf.gather(self._anchors, cascade), axis=2)
        # float32 as dlib (each product and sum rounded), then float64 into the image's pixels.
        position = (first * deltas[0] + second * deltas[1]) + anchor  # [F, 2, features]
        position = tf.floor(tf.cast(position, tf.float64) * scale[:, :, None] + origin[:, :, None] + 0.5)
        return pixels.read(position)

    def _apply_forest(self, cascade: tf.Tensor, values: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
        """Walk all trees of a cascade for all faces; add the leaves one after the other."""
        # Every split's comparison at once; dlib goes left (2i + 1) when a - b > threshold.
        go_right = tf.cast(tf.gather(values, tf.gather(self._split_a, cascade), axis=1)
                           - tf.gather(values, tf.gather(self._split_b, cascade), axis=1)
                           <= tf.gather(self._thresholds, cascade), tf.int32)  # [F, trees · splits]
        node = tf.zeros([tf.shape(values)[0], self._num_trees], tf.int32)
        for _ in range(self._depth):
            node = 2 * node + 1 + tf.gather(go_right, self._tree_first + node, batch_dims=1)
        first_leaf = self._leaf_first + cascade * self._num_trees * (self._num_splits + 1)
        leaves = tf.gather(self._leaves, first_leaf + node)  # [F, trees, 2P]
        flat = tf.reshape(shape, [-1, 1, 2 * self.num_parts])
        total = tf.cumsum(tf.concat([flat, leaves], axis=1), axis=1)[:, -1]
        return tf.reshape(total, [-1, self.num_parts, 2])


class _PixelReader:
    """dlib's pixel lookup in one RGB image: ``(r + g + b) // 3`` at whole pixels, 0 outside."""

    def __init__(self, image: tf.Tensor):
        size = tf.shape(image)
        self.limit = tf.cast(tf.stack([size[1], size[0]]), tf.float64)[None, :, None] - 1  # (W-1, H-1)
        self.width = tf.cast(size[1], tf.float64)
        # An empty image still needs a row to gather from (every position is outside it).
        self.flat = tf.cond(tf.size(image) > 0, lambda: tf.reshape(image, [-1, 3]),
                            lambda: tf.zeros([1, 3], tf.uint8))

    def read(self, position: tf.Tensor) -> tf.Tensor:
        """float32 ``[F, n]`` grey values at whole-pixel positions float64 ``[F, 2 (x, y), n]``."""
        inside = tf.reduce_all((position >= 0) & (position <= self.limit), axis=1)
        index = tf.where(inside, position[:, 1] * self.width + position[:, 0], 0)
        grey = tf.reduce_sum(tf.cast(tf.gather(self.flat, tf.cast(index, tf.int64)), tf.int32), axis=-1) // 3
        return tf.where(inside, tf.cast(grey, tf.float32), 0)
