"""dlib's frontal face detector (``dlib.get_frontal_face_detector()``) in NumPy: the same boxes.

dlib's HOG detector (``object_detector<scan_fhog_pyramid<pyramid_down<6>>>``) slides five
linear filters over the fHOG features of an image pyramid: a frontal face, one looking left,
one looking right, and the frontal one rotated 27° either way (80×80-pixel windows, 10×10
cells of 8 pixels, 31 feature planes each). A window whose score reaches the filter's
threshold is a detection; detections of all filters are sorted by score and any that overlaps
a better one is dropped. This module runs those steps as dlib does, from the filters shipped
in ``frontal_face_detector.npz`` beside it (dlib's own numbers, Boost Software License, see
its ``notice`` entry; written by ``tools/extract_frontal_face_detector.py``; nothing is
downloaded), so that :meth:`HogFaceDetector.detect` returns ``detector.run(image, upsample)``'s
rectangles, scores and filter indices — without importing dlib.

What dlib does, reproduced here (``scan_fhog_pyramid.h``, ``object_detector.h``, the Python
binding's ``run_detector_with_upscale``):

* **upsampling** (``upsample`` times): ``pyramid_up`` with ``pyramid_down<2>``'s geometry;
  boxes found on the upsampled image are mapped back with ``p/2 - (1.25, 0.75)`` per step;
* **pyramid**: levels while the level's rectangle (``(p - 0.3)·5/6`` per step, rounded) is at
  least 64×64; each level is the previous resized to ``⌊5·size/6⌋`` (:mod:`facenet_tf.faces.fhog`);
* **filters**: each 10×10 plane of a filter is split by its SVD into separable row/column
  filters (singular values above ``max(1e-4, 0.001·largest)``, cast to float), applied in
  float with dlib's SIMD summation order (three accumulators over taps in blocks of 8 columns,
  a running sum elsewhere) and summed plane after plane into the filter's score image;
* **boxes**: a position ``(c, r)`` of the score image is the 10×10-cell window centred there,
  mapped to pixels (``fhog_to_image``: ``(p - 3)·8 + 1 ± 4``) and up the pyramid
  (``p·6/5 + 0.3`` per level), rounded as dlib rounds a ``drectangle`` (halves away from 0);
* **non-max suppression**: detections sorted by score (score = filter response − threshold);
  one is dropped when it overlaps a kept one by ``intersection / bounding-box > 0.33`` or covers
  more than 0.79 of either box (dlib's ``test_box_overlap`` from the file).

The upsampled image's pyramid is what costs time; it is computed once and scanned by the five
filters together.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.fhog import fhog_planes, pyramid_down_planes, pyramid_up_planes, to_planes

F32 = np.float32

#: The detector's weights: dlib's frontal face detector, extracted from dlib-bin.
DETECTOR_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frontal_face_detector.npz")

#: What each of dlib's five filters was trained on (``frontal_face_detector.h``), by filter index.
FILTER_NAMES = ("front", "left", "right", "front rotated left", "front rotated right")

#: The most upsampling :meth:`HogFaceDetector.detect` accepts (each step doubles the image's sides).
MAX_UPSAMPLE = 4

# dlib's frontal face detector scans a pyramid_down<6>: each level 5/6 of the one before.
_PYRAMID = 6

# Floats per tile of filter responses computed at once: the working set (a few arrays of this
# size) stays in the CPU's cache; also bounds memory on large images.
_TILE_ELEMENTS = 1 << 15


class HogDetections(NamedTuple):
    """Faces found by :meth:`HogFaceDetector.detect`, best first (dlib's ``run`` triple).

    Attributes:
        boxes: int64 ``[N, 4]`` ``(left, top, right, bottom)``, dlib's inclusive rectangles
            (they may reach outside the image).
        scores: float64 ``[N]``, the filter's response minus its threshold (>= the
            ``adjust_threshold`` passed).
        filter_index: int64 ``[N]``, which filter found the face (:data:`FILTER_NAMES`).
    """

    boxes: np.ndarray
    scores: np.ndarray
    filter_index: np.ndarray


class _Bank(NamedTuple):
    """One filter's separable parts: plane per part, float32 row and column filters."""

    planes: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


class HogFaceDetector:
    """dlib's HOG frontal face detector; :meth:`detect` equals ``dlib.get_frontal_face_detector().run``.

    Args:
        filters: float64 ``[D, 31, h, w]``, the D linear filters over the 31 fHOG planes.
        thresholds: float64 ``[D]``, the response each filter must reach.
        match_thresh, overlap_thresh: dlib's ``test_box_overlap`` for non-max suppression.
        cell_size: pixels per HOG cell.
        padding: cells of the filter around the detection window.
        min_pyramid_layer: ``(width, height)`` of the smallest pyramid level scanned.
        max_pyramid_levels: the most pyramid levels scanned.

    Use :meth:`load` for dlib's detector.
    """

    def __init__(self, filters: np.ndarray, thresholds: np.ndarray, match_thresh: float, overlap_thresh: float,
                 cell_size: int = 8, padding: int = 0, min_pyramid_layer: Tuple[int, int] = (64, 64),
                 max_pyramid_levels: int = 1000):
        filters = np.asarray(filters, np.float64)
        thresholds = np.asarray(thresholds, np.float64)
        if filters.ndim != 4 or filters.shape[1] != 31 or min(filters.shape) < 1:
            raise FacenetError(f"HOG filters must be [D, 31, rows, cols]; received shape {filters.shape}")
        if thresholds.shape != filters.shape[:1]:
            raise FacenetError(f"need one threshold per HOG filter ({filters.shape[0]}); received {thresholds.shape}")
        if not (np.isfinite(filters).all() and np.isfinite(thresholds).all()):
            raise FacenetError("the HOG filters or thresholds hold infinite or NaN values")
        for name, value in (("match_thresh", match_thresh), ("overlap_thresh", overlap_thresh)):
            if not 0 <= float(value) <= 1:
                raise FacenetError(f"{name} must be in [0, 1]; received {value!r}")
        window_rows, window_cols = filters.shape[2] - 2 * padding, filters.shape[3] - 2 * padding
        if cell_size < 1 or padding < 0 or window_rows < 1 or window_cols < 1 or max_pyramid_levels < 1:
            raise FacenetError(f"bad HOG detector settings: cell_size {cell_size}, padding {padding}, "
                               f"filter {filters.shape[2:]}, max_pyramid_levels {max_pyramid_levels}")
        self.filters, self.thresholds = filters, thresholds
        self.match_thresh, self.overlap_thresh = float(match_thresh), float(overlap_thresh)
        self.cell_size, self.padding = int(cell_size), int(padding)
        self.min_pyramid_layer = (int(min_pyramid_layer[0]), int(min_pyramid_layer[1]))
        self.max_pyramid_levels = int(max_pyramid_levels)
        banks = [_separable(f) for f in filters]
        # All filters' separable parts in one bank, with the filter each part belongs to.
        self._bank = (np.concatenate([b.planes for b in banks]), np.concatenate([b.rows for b in banks]),
                      np.concatenate([b.cols for b in banks]),
                      np.concatenate([np.full(len(b.planes), d, np.int64) for d, b in enumerate(banks)]))

    @classmethod
    def load(cls, path: Optional[str] = None) -> "HogFaceDetector":
        """dlib's frontal face detector from ``frontal_face_detector.npz`` (default: the packaged one).

        Raises:
            FacenetError: the file is missing or is not a detector written by
                ``tools/extract_frontal_face_detector.py``.
        """
        path = DETECTOR_FILE if path is None else path
        keys = ("filters", "thresholds", "match_thresh", "overlap_thresh", "cell_size", "padding",
                "min_pyramid_layer_width", "min_pyramid_layer_height", "max_pyramid_levels")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [key for key in keys if key not in data.files]
                if missing:
                    raise FacenetError(f"{path} is not a HOG face detector file: no {', '.join(missing)}")
                v = {key: data[key] for key in keys}
        except FacenetError:
            raise
        except FileNotFoundError:
            raise FacenetError(f"no HOG face detector file at {path} (nothing is downloaded)") from None
        except (OSError, ValueError) as err:
            raise FacenetError(f"cannot read the HOG face detector file {path}: {err}") from None
        try:
            return cls(v["filters"], v["thresholds"], float(v["match_thresh"]), float(v["overlap_thresh"]),
                       int(v["cell_size"]), int(v["padding"]),
                       (int(v["min_pyramid_layer_width"]), int(v["min_pyramid_layer_height"])),
                       int(v["max_pyramid_levels"]))
        except (TypeError, ValueError) as err:
            raise FacenetError(f"{path} is not a valid HOG face detector file: {err}") from None

    @property
    def num_filters(self) -> int:
        return int(self.filters.shape[0])

    def detect(self, image: np.ndarray, upsample: int = 1, adjust_threshold: float = 0.0) -> HogDetections:
        """Faces in ``image``, as ``dlib.get_frontal_face_detector().run(image, upsample, adjust_threshold)``.

        Args:
            image: uint8 ``[H, W, 3]`` RGB or ``[H, W]`` / ``[H, W, 1]`` grey. dlib reads RGB
                and grey through different code (its resize rounds grey pixels, truncates
                colour ones), so a grey image repeated to RGB may give slightly other boxes;
                both equal dlib's for the same array.
            upsample: how many times the image is doubled before the scan (dlib's
                ``upsample_num_times``; 1, as ``face_recognition`` and dlib-bin's pipeline in
                ``benchmarks/alignment_vs_dlib.py`` call it, finds faces down to about 40 px),
                0 to :data:`MAX_UPSAMPLE`.
            adjust_threshold: added to every filter's threshold; negative finds more (and
                worse) faces.

        Returns:
            :class:`HogDetections`, best score first.

        Raises:
            FacenetError: a malformed image, ``upsample`` or ``adjust_threshold``.
        """
        image = _checked_image(image)
        if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) \
                or not 0 <= upsample <= MAX_UPSAMPLE:
            raise FacenetError(f"upsample must be an integer from 0 to {MAX_UPSAMPLE}; received {upsample!r}")
        try:
            adjust = float(adjust_threshold)
        except (TypeError, ValueError):
            adjust = float("nan")
        if not math.isfinite(adjust):
            raise FacenetError(f"adjust_threshold must be a finite number; received {adjust_threshold!r}")
        planes = to_planes(image)
        for _ in range(int(upsample)):
            planes = pyramid_up_planes(planes)
        scores, filter_index, boxes = self._scan(planes, adjust)
        keep = self._suppress(boxes, scores)
        boxes = boxes[keep].astype(np.float64)
        for _ in range(int(upsample)):  # pyramid_down<2>::rect_down, then one rounding
            boxes = boxes / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
        return HogDetections(_round(boxes).reshape(-1, 4), scores[keep], filter_index[keep])

    # ----------------------------------------------------------------------- scanning

    def _levels(self, planes: np.ndarray) -> list:
        """The pyramid's images (planes, ``fhog.to_planes``): as many as dlib's rectangle arithmetic
        allows (at least one)."""
        count, (left, top, right, bottom) = 0, (0, 0, planes.shape[2] - 1, planes.shape[1] - 1)
        ratio = (_PYRAMID - 1.0) / _PYRAMID
        while True:
            left, top, right, bottom = (int(_round(np.float64((v - 0.3) * ratio))) for v in (left, top, right, bottom))
            count += 1
            if not (right - left + 1 >= self.min_pyramid_layer[0] and bottom - top + 1 >= self.min_pyramid_layer[1]
                    and count < self.max_pyramid_levels):
                break
        levels = [planes]
        for _ in range(count - 1):
            levels.append(pyramid_down_planes(levels[-1], _PYRAMID))
        return levels

    def _scan(self, planes: np.ndarray, adjust: float):
        """All windows reaching their threshold: (scores, filter indices, boxes on the image), best first."""
        rows, cols = self.filters.shape[2:]
        box_rows, box_cols = rows - 2 * self.padding, cols - 2 * self.padding
        levels = self._levels(planes)
        found_scores, found_filters, found_boxes = [], [], []
        for level, level_planes in enumerate(levels):
            feats = fhog_planes(level_planes, self.cell_size, rows, cols)
            for index, response in enumerate(self._responses(feats)):
                if response is None:
                    continue
                threshold = self.thresholds[index]
                r, c = np.nonzero(response.astype(np.float64) >= threshold + adjust)
                if not len(r):
                    continue
                found_scores.append(response[r, c].astype(np.float64) - threshold)
                found_filters.append(np.full(len(r), index, np.int64))
                r, c = r + rows // 2, c + cols // 2  # score image row/column → feature grid
                corners = np.stack([c - box_cols // 2, r - box_rows // 2,
                                    c - box_cols // 2 + box_cols - 1, r - box_rows // 2 + box_rows - 1], axis=1)
                found_boxes.append(self._to_image(corners, level, rows, cols))
        if not found_scores:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
        scores = np.concatenate(found_scores)
        # dlib sorts by score, best first; equal scores (not seen on real images) stay in scan
        # order here, where dlib's std::sort leaves them in no defined order.
        order = np.argsort(-scores, kind="stable")
        return scores[order], np.concatenate(found_filters)[order], np.concatenate(found_boxes)[order]

    def _to_image(self, corners: np.ndarray, level: int, rows: int, cols: int) -> np.ndarray:
        """Feature-grid corners ``[N, 4]`` → image boxes: ``fhog_to_image``, then ``rect_up`` ``level`` times."""
        cell = self.cell_size
        shift = np.array([(cols - 1) // 2, (rows - 1) // 2] * 2)
        p = (corners + 1 - shift) * cell + 1
        p = np.where(p >= 0, p + cell // 2, p - cell // 2).astype(np.float64)
        ratio = _PYRAMID / (_PYRAMID - 1.0)
        for _ in range(level):
            p = p * ratio + 0.3
        return _round(p)

    def _responses(self, feats: np.ndarray) -> list:
        """Each filter's float32 score image over the positions dlib scans, or None where there are none.

        Row ``i``, column ``j`` of filter d's image is the window centred on feature cell
        ``(i + rows // 2, j + cols // 2)``. The separable parts of all filters run together in
        tiles (a few parts × a band of output rows) of about :data:`_TILE_ELEMENTS` floats, small
        enough for the CPU's cache; each part is added to its filter's sum in dlib's order
        (part after part, from zero).
        """
        rows, cols = self.filters.shape[2:]
        height, width = feats.shape[1:]
        first_row, first_col = rows // 2, cols // 2
        last_row, last_col = height - (rows - 1) // 2, width - (cols - 1) // 2
        if last_row <= first_row or last_col <= first_col:
            return [None] * self.num_filters
        out_rows, out_cols = last_row - first_row, last_col - first_col
        # dlib filters columns [first_col, first_col + 8·blocks) in SIMD, the rest one by one.
        split = min(out_cols, 8 * max(0, -(-(last_col - 7 - first_col) // 8)))
        planes, row_taps, col_taps, owner = self._bank
        totals = np.zeros((self.num_filters, out_rows, out_cols), F32)
        # Feature rows outside [inner_lo, inner_hi) are padding: their row-filtered values are zero.
        inner_lo, inner_hi = (rows - 1) // 2, height - rows // 2
        band = max(1, min(out_rows, _TILE_ELEMENTS // out_cols - (rows - 1)))
        chunk = max(1, _TILE_ELEMENTS // ((band + rows - 1) * out_cols))
        for r0 in range(0, out_rows, band):
            r1 = min(out_rows, r0 + band)
            lo, hi = max(r0, inner_lo), min(r1 + rows - 1, inner_hi)
            for start in range(0, len(planes), chunk):
                part = slice(start, start + chunk)
                scratch = np.zeros((len(planes[part]), r1 - r0 + rows - 1, out_cols), F32)
                if hi > lo:
                    _taps(feats[planes[part], lo:hi], row_taps[part], 2, out_cols, split, out=scratch[:, lo - r0:hi - r0])
                filtered = _taps(scratch, col_taps[part], 1, r1 - r0, split)
                for k, index in enumerate(owner[part]):
                    total = totals[index, r0:r1]
                    np.add(total, filtered[k], out=total)
        return list(totals)

    def _suppress(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """dlib's non-max suppression over boxes sorted best first: indices kept."""
        kept = []
        for k, box in enumerate(boxes.tolist()):
            if not any(_overlaps(boxes[j].tolist(), box, self.match_thresh, self.overlap_thresh) for j in kept):
                kept.append(k)
        return np.array(kept, np.int64)


def _separable(filters: np.ndarray) -> _Bank:
    """dlib's ``build_fhog_filterbank``: per plane, the SVD's parts above ``max(1e-4, 0.001·σ_max)``,
    each ``u·√σ`` (column filter) and ``v·√σ`` (row filter), largest σ first, cast to float."""
    planes, rows, cols = [], [], []
    for plane, f in enumerate(filters):
        u, s, vt = np.linalg.svd(f)
        threshold = max(1e-4, float(s.max()) * 0.001)
        for j in np.nonzero(s >= threshold)[0]:
            root = math.sqrt(float(s[j]))
            planes.append(plane)
            cols.append((u[:, j] * root).astype(F32))
            rows.append((vt[j] * root).astype(F32))
    # The SVD's signs are arbitrary; u and v flip together and (−a)(−b) = ab exactly in float.
    return _Bank(np.array(planes, np.int64), np.array(rows, F32).reshape(-1, filters.shape[2]),
                 np.array(cols, F32).reshape(-1, filters.shape[1]))


def _taps(images: np.ndarray, taps: np.ndarray, axis: int, length: int, split: int,
          out: Optional[np.ndarray] = None) -> np.ndarray:
    """One pass of dlib's ``float_spatially_filter_image_separable`` for K images and K filters.

    ``out[k, ..., i] = Σ_n images[k, ..., i + n] · taps[k, n]`` along ``axis`` (1: rows,
    2: columns), ``length`` outputs, summed as dlib sums in float: in output columns
    ``< split`` (dlib's SIMD blocks) three accumulators over taps ``n ≡ 0, 1, 2 (mod 3)``
    (leftover taps into the first), combined ``a + (b + c)``; in the others one running sum.
    Written into ``out`` when given (float32, the result's shape), else into a new array.

    For speed every operation runs over long contiguous runs: the SIMD order is computed for
    all columns at once (along columns, on the flattened rows: outputs that would straddle two
    rows are computed and dropped), then the few columns from ``split`` on, copied out, in the
    running-sum order. Short strided runs (NumPy's inner loop called per row) cost more than
    the arithmetic on images this small.
    """
    images = np.ascontiguousarray(images, F32)
    if out is None:
        shape = list(images.shape)
        shape[axis] = length
        out = np.empty(shape, F32)
    if split:
        out[..., :split] = _pass(images, taps, axis, length, True)[..., :split]
    if split < out.shape[2]:  # dlib's scalar columns, their inputs copied out first
        tail = np.ascontiguousarray(images[..., split:])
        out[..., split:] = _pass(tail, taps, axis, length - split if axis == 2 else length, False)
    return out


def _pass(images: np.ndarray, taps: np.ndarray, axis: int, length: int, simd: bool) -> np.ndarray:
    """:func:`_taps` over all columns of contiguous ``images`` in one summation order (``simd``:
    three accumulators, else one running sum), every operation on ``[K, L]`` runs."""
    k, rows, cols = images.shape
    count = taps.shape[1]
    if axis == 2:  # along the flattened rows: output i of row r sits at r·cols + i
        flat = images.reshape(k, rows * cols)
        span = rows * cols - (count - 1)
        result = np.empty((k, rows * cols), F32)
        _accumulate(lambda n: flat[:, n:n + span], taps, result[:, :span], simd)
        return result.reshape(k, rows, cols)[..., :length]
    result = np.empty((k, length, cols), F32)
    _accumulate(lambda n: images[:, n:n + length].reshape(k, -1), taps, result.reshape(k, -1), simd)
    return result


def _accumulate(window, taps: np.ndarray, acc: np.ndarray, simd: bool) -> None:
    """``acc = Σ_n window(n) · taps[:, n]`` over 2-D ``[K, L]`` runs, in dlib's order: ``simd``:
    ``a + (b + c)``, accumulators over taps ``n ≡ 0, 1, 2 (mod 3)`` (taps past the last full
    triple into ``a``); else one running sum."""
    count = taps.shape[1]
    scratch, accs = np.empty(acc.shape, F32), [acc, None, None]
    started = [False, False, False]
    for n in range(count):
        j = (n % 3 if n < count - count % 3 else 0) if simd else 0
        weight = taps[:, n].reshape(-1, 1)
        if not started[j]:
            if accs[j] is None:
                accs[j] = np.empty(acc.shape, F32)
            np.multiply(window(n), weight, out=accs[j])
            started[j] = True
        else:
            np.multiply(window(n), weight, out=scratch)
            np.add(accs[j], scratch, out=accs[j])
    if started[1]:
        np.add(accs[1], accs[2], out=accs[1])
        np.add(accs[0], accs[1], out=accs[0])


def _round(values: np.ndarray) -> np.ndarray:
    """dlib's ``drectangle`` → ``rectangle``: each side to the nearest integer, halves away from
    zero (``std::round``; -22.5 → -23, measured against dlib-bin)."""
    values = np.asarray(values, np.float64)
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


def _overlaps(a: Sequence[int], b: Sequence[int], match_thresh: float, overlap_thresh: float) -> bool:
    """dlib's ``test_box_overlap``: intersection over the bounding box, or over either box's area."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return False
    inner = float(width * height)
    outer = (max(a[2], b[2]) - min(a[0], b[0]) + 1) * (max(a[3], b[3]) - min(a[1], b[1]) + 1)
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inner / outer > match_thresh or inner / area_a > overlap_thresh or inner / area_b > overlap_thresh


def _checked_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise FacenetError(f"expected a uint8 [H, W, 3] RGB or [H, W] grey image; received {image.dtype} {image.shape}")
    if image.size == 0:
        raise FacenetError(f"the image is empty: {image.shape}")
    return np.ascontiguousarray(image)
