"""dlib's 5-point shape predictor as TensorFlow ops, for graphs that serve the whole pipeline.

:class:`ShapePredictorGraph` holds the regression-tree cascade of a
:class:`~facenet_tf.faces.shape_predictor.ShapePredictor` as constants and runs it with
TensorFlow ops only (no Python callbacks), so that a ``tf.function`` traced with unknown image
size and face count, and a SavedModel holding it, find the landmarks without NumPy or
facenet_tf. The trees are gathers: per cascade all splits' comparisons are read at once
(``[F, trees · splits]``), each tree is walked ``depth`` steps by gathering its next node, and
the leaves are gathered and summed.

The arithmetic follows the NumPy version step by step (its module docstring), so that the
points are the same:

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
        self._centred = tf.constant(centred)
        self._split_a = tf.constant(predictor.split_pixels[..., 0].reshape(cascades, -1).astype(np.int32))
        self._split_b = tf.constant(predictor.split_pixels[..., 1].reshape(cascades, -1).astype(np.int32))
        self._thresholds = tf.constant(predictor.split_thresholds.reshape(cascades, -1).astype(np.float32))
        self._leaves = tf.constant(
            predictor.leaf_values.reshape(cascades, trees * (splits + 1), -1).astype(np.float32))
        self._anchors = tf.constant(predictor.anchors.astype(np.int32))
        self._delta_x = tf.constant(predictor.deltas[..., 0].astype(np.float32))
        self._delta_y = tf.constant(predictor.deltas[..., 1].astype(np.float32))
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
        for cascade in range(self._num_cascades):
            values = self._feature_pixels(pixels, cascade, shape, scale, origin)
            shape = self._apply_forest(cascade, values, shape)
        points = tf.cast(shape, tf.float64) * scale[:, None] + origin[:, None]
        if not self.subpixel:
            points = tf.floor(points + 0.5)
        return tf.cast(points, tf.float32)

    def _similarity(self, shape: tf.Tensor):
        """``find_tform_about_origin`` of the mean shape onto ``shape`` (float32 ``[F, P, 2]``),
        in the NumPy version's order of sums: float32 ``[F, 1]`` each of m00, m01, m10, m11."""
        t = tf.cast(shape, tf.float64)
        total = t[:, 0]
        for part in range(1, self.num_parts):  # numpy adds a short axis point after point
            total = total + t[:, part]
        t = t - (total / self.num_parts)[:, None]
        if self._norm == 0:
            one = tf.ones([tf.shape(shape)[0], 1], tf.float32)
            return one, tf.zeros_like(one), tf.zeros_like(one), one
        a = _numpy_sum(tf.reshape(self._centred[None] * t, [-1, 2 * self.num_parts])) / self._norm
        cross = self._centred[None, :, 0] * t[:, :, 1] - self._centred[None, :, 1] * t[:, :, 0]
        b = _numpy_sum(cross) / self._norm
        a, b = tf.cast(a[:, None], tf.float32), tf.cast(b[:, None], tf.float32)
        return a, -b, b, a

    def _feature_pixels(self, pixels: "_PixelReader", cascade: int, shape, scale, origin) -> tf.Tensor:
        """dlib's ``extract_feature_pixel_values``: float32 ``[F, features]`` grey values, 0 outside."""
        r00, r01, r10, r11 = self._similarity(shape)
        dx, dy = self._delta_x[cascade], self._delta_y[cascade]
        anchor = tf.gather(shape, self._anchors[cascade], axis=1)  # [F, features, 2]
        x = (r00 * dx + r01 * dy) + anchor[..., 0]
        y = (r10 * dx + r11 * dy) + anchor[..., 1]
        x = tf.floor(tf.cast(x, tf.float64) * scale[:, :1] + origin[:, :1] + 0.5)
        y = tf.floor(tf.cast(y, tf.float64) * scale[:, 1:] + origin[:, 1:] + 0.5)
        return pixels.read(x, y)

    def _apply_forest(self, cascade: int, values: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
        """Walk all trees of a cascade for all faces; add the leaves one after the other."""
        # Every split's comparison at once; dlib goes left (2i + 1) when a - b > threshold.
        go_right = tf.cast(tf.gather(values, self._split_a[cascade], axis=1)
                           - tf.gather(values, self._split_b[cascade], axis=1)
                           <= self._thresholds[cascade], tf.int32)  # [F, trees · splits]
        node = tf.zeros([tf.shape(values)[0], self._num_trees], tf.int32)
        for _ in range(self._depth):
            node = 2 * node + 1 + tf.gather(go_right, self._tree_first + node, batch_dims=1)
        leaves = tf.gather(self._leaves[cascade], self._leaf_first + node)  # [F, trees, 2P]
        flat = tf.reshape(shape, [-1, 1, 2 * self.num_parts])
        total = tf.cumsum(tf.concat([flat, leaves], axis=1), axis=1)[:, -1]
        return tf.reshape(total, [-1, self.num_parts, 2])


class _PixelReader:
    """dlib's pixel lookup in one RGB image: ``(r + g + b) // 3`` at whole pixels, 0 outside."""

    def __init__(self, image: tf.Tensor):
        size = tf.shape(image)
        self.height, self.width = tf.cast(size[0], tf.float64), tf.cast(size[1], tf.float64)
        # One black pixel past the end stands for every position outside the image (and
        # keeps the gather valid for an empty image).
        self.flat = tf.concat([tf.reshape(tf.cast(image, tf.int32), [-1, 3]), tf.zeros([1, 3], tf.int32)], axis=0)

    def read(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """float32 grey values at whole-pixel positions ``x``, ``y`` (float64, same shape)."""
        inside = (x >= 0) & (x <= self.width - 1) & (y >= 0) & (y <= self.height - 1)
        outside = self.height * self.width
        index = tf.cast(tf.where(inside, y * self.width + x, outside), tf.int64)
        rgb = tf.gather(self.flat, index)
        return tf.cast(tf.reduce_sum(rgb, axis=-1) // 3, tf.float32)


def _numpy_sum(values: tf.Tensor) -> tf.Tensor:
    """Sum over the last axis (of static length) in numpy's order for a contiguous row: sequential
    below 8 values, else 8 running sums combined pairwise, then the rest one by one."""
    n = values.shape[-1]
    if n < 8:
        total = values[..., 0]
        for i in range(1, n):
            total = total + values[..., i]
        return total
    partial = [values[..., i] for i in range(8)]
    for start in range(8, n - n % 8, 8):
        partial = [partial[i] + values[..., start + i] for i in range(8)]
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
    for i in range(n - n % 8, n):
        total = total + values[..., i]
    return total
