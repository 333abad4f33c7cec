"""Face boxes for dlib's shape predictor: from MTCNN's box, or the whole image.

dlib's 5-point shape predictor (:mod:`facenet_tf.faces.shape_predictor`) was trained on the
boxes of dlib's HOG face detector, and its points move when the box moves. MTCNN's boxes are
taller and sit higher than dlib's, so they are first mapped to the box dlib's detector would
give for the same face (:func:`dlib_box_from_mtcnn`).

The mapping was fitted on ORL (``benchmarks/alignment_vs_dlib.py --fit``): dlib's detector
(image upsampled once, its most confident face) against MTCNN's most confident face (>= 0.9),
on the 199 faces of people s1–s20 that both find; least squares on the box centre (as a
fraction of MTCNN's width and height) and on the side (a linear function of MTCNN's width and
height). On the unseen s21–s40 (189 faces) the predictor's points from the mapped box are
0.34 px (mean over points) from its points on dlib's own box, against 0.93 px from MTCNN's raw
box (benchmarks/RESULTS.md, 2026-12-02). dlib's detector scans a grid of positions (8 HOG
cells of its pyramid level) and a pyramid of scales about 5/6 apart with five filters of
different shapes, so its boxes are quantised (on ORL a handful of sides and positions); the
mapping gives an unquantised box, and where it misses dlib's box the points can differ by a
pixel.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

from facenet_tf.errors import FacenetError

#: dlib's box from MTCNN's ``[x, y, w, h]``: centre ``x + CX·w``, ``y + CY·h``; side
#: ``SIDE_W·w + SIDE_H·h`` (``right - left``, dlib's inclusive corners). Fitted on ORL s1–s20.
MTCNN_TO_DLIB = {"cx": 0.49652, "cy": 0.56178, "side_w": 0.96812, "side_h": 0.08603}


def dlib_box_from_mtcnn(box: Sequence[float]) -> Tuple[int, int, int, int]:
    """The box dlib's frontal face detector would give for the face MTCNN boxed.

    Args:
        box: MTCNN's ``[x, y, w, h]`` in pixels (``detect_faces(...)[i]["box"]``).

    Returns:
        ``(left, top, right, bottom)`` whole pixels, dlib's ``rectangle`` (inclusive right
        and bottom, square), ready for :meth:`ShapePredictor.predict`. It may reach outside
        the image.

    Raises:
        FacenetError: not 4 finite numbers, or a non-positive width or height.
    """
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise FacenetError(f"an MTCNN box must be [x, y, w, h] numbers; received {box!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise FacenetError(f"an MTCNN box must be finite [x, y, w, h] with w, h > 0; received {box!r}")
    p = MTCNN_TO_DLIB
    cx, cy = x + p["cx"] * w, y + p["cy"] * h
    half = (p["side_w"] * w + p["side_h"] * h) / 2
    return tuple(int(math.floor(v + 0.5)) for v in (cx - half, cy - half, cx + half, cy + half))


def whole_image_box(image_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    """``(0, 0, W - 1, H - 1)``: the whole image as dlib's rectangle (for tightly cropped faces).

    Args:
        image_shape: ``image.shape`` (``[H, W]`` or ``[H, W, C]``).
    """
    if len(image_shape) < 2 or image_shape[0] < 1 or image_shape[1] < 1:
        raise FacenetError(f"expected an image shape [H, W(, C)] with H, W >= 1; received {tuple(image_shape)}")
    return 0, 0, int(image_shape[1]) - 1, int(image_shape[0]) - 1
