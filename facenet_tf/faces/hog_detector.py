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
rectangles and filter indices, and its scores to a few 1e-6 — without importing dlib.

The contract, tested against dlib-bin (tests/test_hog_detector.py): the pyramid and the fHOG
features are dlib's to the last bit (:mod:`facenet_tf.faces.fhog`); the filter responses are
the same sums taken in another order (one float32 matrix product instead of dlib's separable
passes), so a score differs from dlib's in its last bits (at most 2.9e-6 on the tests'
images), and a window scoring within that of its threshold could in principle be kept by one
and not the other (not seen on any test image).

What dlib does, reproduced here (``scan_fhog_pyramid.h``, ``object_detector.h``, the Python
binding's ``run_detector_with_upscale``):

* **upsampling** (``upsample`` times): ``pyramid_up`` with ``pyramid_down<2>``'s geometry;
  boxes found on the upsampled image are mapped back with ``p/2 - (1.25, 0.75)`` per step;
* **pyramid**: levels while the level's rectangle (``(p - 0.3)·5/6`` per step, rounded) is at
  least 64×64; each level is the previous resized to ``⌊5·size/6⌋`` (:mod:`facenet_tf.faces.fhog`);
* **filters**: each 10×10 plane of a filter is split by its SVD into separable row/column
  filters (singular values above ``max(1e-4, 0.001·largest)``, cast to float); dlib applies
  them in float, plane after plane; here their sum, the filter dlib effectively applies, is
  applied to all planes at once as one float32 matrix product (BLAS);
* **boxes**: a position ``(c, r)`` of the score image is the 10×10-cell window centred there,
  mapped to pixels (``fhog_to_image``: ``(p - 3)·8 + 1 ± 4``) and up the pyramid
  (``p·6/5 + 0.3`` per level), rounded as dlib rounds a ``drectangle`` (halves away from 0);
* **non-max suppression**: detections sorted by score (score = filter response − threshold);
  one is dropped when it overlaps a kept one by ``intersection / bounding-box > 0.33`` or covers
  more than 0.79 of either box (dlib's ``test_box_overlap`` from the file).

The upsampled image's pyramid is what costs time; it is computed once and scanned by the five
filters together. The matrix product runs on NumPy's BLAS threads: where several processes
share the cores (:func:`facenet_tf.faces.aligner.chunked`'s workers) each should use one
(``OPENBLAS_NUM_THREADS=1``; the workers are started so).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.fhog import checked_image, fhog_planes, pyramid_down_planes, pyramid_up_planes, to_planes

F32 = np.float32

#: The detector's weights: dlib's frontal face detector, extracted from dlib-bin.
DETECTOR_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frontal_face_detector.npz")

#: What each of dlib's five filters was trained on (``frontal_face_detector.h``), by filter index.
FILTER_NAMES = ("front", "left", "right", "front rotated left", "front rotated right")

#: The most upsampling :meth:`HogFaceDetector.detect` accepts (each step doubles the image's sides).
MAX_UPSAMPLE = 4

# dlib's frontal face detector scans a pyramid_down<6>: each level 5/6 of the one before.
_PYRAMID = 6

# Feature cells (rows × columns) per band of :meth:`HogFaceDetector._responses`, at least
# _MIN_BAND_ROWS output rows: bounds memory on large images (a band's matrices hold ~360 floats
# per cell: ~12 MB here); on a 1280×960 image as fast as whole pyramid levels (measured).
_BAND_CELLS = 1 << 13
# Each band reads rows - 1 feature rows beyond its own: at least this many output rows keeps
# that overlap small on very wide images.
_MIN_BAND_ROWS = 16


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


class HogFaceDetector:
    """dlib's HOG frontal face detector; :meth:`detect` gives ``dlib.get_frontal_face_detector().run``'s
    boxes and filter indices, and its scores to a few 1e-6.

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
        # [(dy, d), (dx, p)]: row dy of every filter against dx-shifted copies of every plane.
        dense = _effective_filters(filters).astype(F32)
        self._weights = np.ascontiguousarray(dense.transpose(2, 0, 3, 1).reshape(
            filters.shape[2] * filters.shape[0], filters.shape[3] * filters.shape[1]))

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
        image = checked_image(image)
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
        ``(i + rows // 2, j + cols // 2)``, i.e. the window whose top-left cell is ``(i, j)``:

            score[d, i, j] = Σ_{p, dy, dx} F[d, p, dy, dx] · feats[p, i + dy, j + dx]

        with F dlib's effective filters (:func:`_effective_filters`). Computed in bands of output
        rows (:data:`_BAND_CELLS`) by :func:`_band_responses`: one matrix product per band. The
        float32 sums run in BLAS's order, not dlib's, so scores differ from dlib's in the last
        bits (a few 1e-6).
        """
        rows, cols = self.filters.shape[2:]
        height, width = feats.shape[1:]
        out_rows, out_cols = height - rows + 1, width - cols + 1
        if out_rows < 1 or out_cols < 1:
            return [None] * self.num_filters
        totals = np.empty((self.num_filters, out_rows, out_cols), F32)
        band = min(out_rows, max(_MIN_BAND_ROWS, _BAND_CELLS // width - (rows - 1)))
        for r0 in range(0, out_rows, band):
            r1 = min(out_rows, r0 + band)
            _band_responses(feats[:, r0:r1 + rows - 1], self._weights, cols, out=totals[:, r0:r1])
        return list(totals)

    def _suppress(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """dlib's non-max suppression over boxes sorted best first: indices kept."""
        kept = []
        for k, box in enumerate(boxes.tolist()):
            if not any(_overlaps(boxes[j].tolist(), box, self.match_thresh, self.overlap_thresh) for j in kept):
                kept.append(k)
        return np.array(kept, np.int64)


def _effective_filters(filters: np.ndarray) -> np.ndarray:
    """The filters dlib applies, float64 ``[D, 31, rows, cols]``: per plane the sum of its kept
    separable parts (``build_fhog_filterbank``: the SVD's parts above ``max(1e-4, 0.001·σ_max)``,
    column filter ``u·√σ`` and row filter ``v·√σ``, each cast to float), taken in float64."""
    dense = np.zeros(filters.shape, np.float64)
    for d, planes in enumerate(filters):
        for p, f in enumerate(planes):
            u, s, vt = np.linalg.svd(f)
            threshold = max(1e-4, float(s.max()) * 0.001)
            for j in np.nonzero(s >= threshold)[0]:
                root = math.sqrt(float(s[j]))
                column = (u[:, j] * root).astype(F32).astype(np.float64)
                row = (vt[j] * root).astype(F32).astype(np.float64)
                dense[d, p] += np.outer(column, row)
    return dense


def _band_responses(feats: np.ndarray, weights: np.ndarray, cols: int, out: np.ndarray) -> None:
    """Score images of all filters for the windows whose rows lie in ``feats``, into ``out``.

    ``out[d, i, j] = Σ_{dy, dx, p} weights[dy·D + d, dx·P + p] · feats[p, i + dy, j + dx]``
    (``weights`` from :meth:`HogFaceDetector.__init__`, ``out`` float32 ``[D, n - rows + 1,
    m - cols + 1]`` for ``feats`` ``[P, n, m]``) as one matrix product: the ``cols`` column
    shifts of ``feats`` stacked, ``[(dy, d), (dx, p)] @ [(dx, p), cell]``, then the filter rows
    ``dy`` added with their row shift (contiguous runs).
    """
    planes, height, width = feats.shape
    num, out_rows, out_cols = out.shape
    filter_rows = weights.shape[0] // num
    shifted = np.empty((cols, planes, height, out_cols), F32)
    for dx in range(cols):
        shifted[dx] = feats[:, :, dx:dx + out_cols]
    products = np.matmul(weights, shifted.reshape(cols * planes, height * out_cols))
    products = products.reshape(filter_rows, num, height, out_cols)
    np.copyto(out, products[0, :, :out_rows])
    for dy in range(1, filter_rows):
        np.add(out, products[dy, :, dy:dy + out_rows], out=out)


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
