"""dlib's face chips in NumPy: the 150×150 crops dlib's face-recognition network was trained on.

dlib aligns a face by fitting a similarity transform (rotation, uniform scale, shift) from a
landmark template to the face's landmarks and resampling the image through it
(``get_face_chip_details`` + ``extract_image_chip`` of ``dlib/image_transforms/interpolation.h``;
``dlib.get_face_chip`` in Python). This module ports both for dlib's 5-point landmarks, and
builds the same chip from MTCNN's five landmarks (:data:`~facenet_tf.faces.templates.MTCNN_TEMPLATE`)
so that MTCNN can stand in for dlib's 5-point shape predictor. The landmark orders and
templates are in :mod:`facenet_tf.faces.templates`, the transform in :mod:`facenet_tf.faces.transform`.

How dlib resamples, reproduced here (RGB uint8 images):

* the chip's ``rect`` is centred on the transform's image of the chip centre, ``size·scale``
  wide, and chip pixels ``0`` and ``size-1`` land on its first and last column: the per-pixel
  step is ``(size·scale - 1)/(size - 1)``, not exactly ``scale``;
* bilinear interpolation in double precision, truncated to uint8; a pixel whose 2×2
  neighbourhood is not entirely inside the image is black;
* when the face is more than about twice the chip's size, dlib first halves the image
  (5×5 binomial filter, ``pyramid_down<2>``) until it is not, and samples that level.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.templates import DLIB_5POINT_TEMPLATE, MTCNN_TEMPLATE, chip_template
from facenet_tf.faces.transform import similarity_transform


@dataclasses.dataclass(frozen=True)
class ChipDetails:
    """Where a chip comes from (dlib's ``chip_details``).

    Attributes:
        rect: ``(left, top, right, bottom)`` of the unrotated crop box in image pixels.
        angle: rotation of the box in radians (counter-clockwise as dlib measures it).
        rows, cols: chip size.
        transform: float64 ``[2, 3]`` similarity transform fitted from chip to image
            points: ``image ≈ transform[:, :2] @ chip + transform[:, 2]``.
    """

    rect: Tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int
    transform: np.ndarray

    def corners(self, rect=None) -> np.ndarray:
        """Top-left, top-right and bottom-left corners of ``rect`` (default :attr:`rect`) rotated by :attr:`angle`."""
        left, top, right, bottom = self.rect if rect is None else rect
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        rotation = _rotation(self.angle)
        points = np.array([[left, top], [right, top], [left, bottom]])
        return (points - centre) @ rotation.T + centre


def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def chip_details_from_points(chip_points: np.ndarray, image_points: np.ndarray, size: int = 150) -> ChipDetails:
    """dlib's ``chip_details(chip_points, img_points, chip_dims(size, size))``.

    Args:
        chip_points: float ``[N, 2]`` (x, y) where the points should land on the chip, N >= 2.
        image_points: float ``[N, 2]`` the same points in the image.
        size: chip side in pixels.
    """
    transform = similarity_transform(chip_points, image_points)
    p = transform[:, 0]  # the image of the unit vector (1, 0)
    angle, scale = math.atan2(p[1], p[0]), math.hypot(p[0], p[1])
    centre = transform[:, :2] @ np.array([size / 2.0, size / 2.0]) + transform[:, 2]
    half_w = half_h = (size * scale - 1) / 2  # dlib's centered_drect shrinks by one pixel
    rect = (centre[0] - half_w, centre[1] - half_h, centre[0] + half_w, centre[1] + half_h)
    return ChipDetails(rect, angle, size, size, transform)


def get_face_chip_details(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for its 5-point landmarks.

    Args:
        landmarks: float ``[5, 2]`` (x, y) in dlib's 5-point order (module docstring).
        size: chip side (dlib's face recognition: 150).
        padding: margin around the face box as a fraction of it (dlib's recognition: 0.25).
    """
    return chip_details_from_points(chip_template(DLIB_5POINT_TEMPLATE, size, padding), _five(landmarks), size)


def mtcnn_chip_details(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """Chip details putting MTCNN's five landmarks where dlib's chip has them (:data:`MTCNN_TEMPLATE`).

    Args:
        landmarks: float ``[5, 2]`` in MTCNN's order (left eye, right eye, nose, mouth left,
            mouth right), as :meth:`facenet_tf.faces.aligner.FaceAligner.landmarks` returns them.
    """
    return chip_details_from_points(chip_template(MTCNN_TEMPLATE, size, padding), _five(landmarks), size)


def _five(landmarks) -> np.ndarray:
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2):
        raise FacenetError(f"expected 5 landmarks as a [5, 2] array of (x, y); received shape {points.shape}")
    return points


def _to_int_rect(rect) -> Tuple[int, int, int, int]:
    """drectangle → rectangle: dlib rounds each side to the nearest integer."""
    return tuple(int(math.floor(v + 0.5)) for v in rect)


def _rect_down(rect):
    """``pyramid_down<2>::rect_down``: both corners through ``p/2 - (1.25, 0.75)``."""
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _area(rect) -> float:
    """drectangle area; dlib counts ``right - left + 1`` columns."""
    left, top, right, bottom = rect
    width, height = right - left + 1, bottom - top + 1
    return 0.0 if width <= 0 or height <= 0 else width * height


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` for RGB uint8: 5×5 binomial filter, every other pixel, integer maths.

    Returns:
        uint8 ``[(H-3)//2, (W-3)//2, 3]``; empty when H or W <= 8.
    """
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    x = image.astype(np.int64)
    out_cols, out_rows = (cols - 3) // 2, (rows - 3) // 2
    c = 2 * np.arange(out_cols)
    temp = x[:, c] + 4 * x[:, c + 1] + 6 * x[:, c + 2] + 4 * x[:, c + 3] + x[:, c + 4]
    r = 2 + 2 * np.arange(out_rows)
    down = temp[r - 2] + 4 * temp[r - 1] + 6 * temp[r] + 4 * temp[r + 1] + temp[r + 2]
    return (down // 256).astype(np.uint8)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib's ``interpolate_bilinear`` for RGB (double maths, truncated), black outside."""
    rows, cols = image.shape[:2]
    left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < cols) & (top + 1 < rows)
    left, top = np.where(inside, left, 0), np.where(inside, top, 0)
    right, bottom = np.minimum(left + 1, cols - 1), np.minimum(top + 1, rows - 1)
    lr, tb = (x - left)[..., None], (y - top)[..., None]
    img = image.astype(np.float64)
    value = (1 - tb) * ((1 - lr) * img[top, left] + lr * img[top, right]) + \
        tb * ((1 - lr) * img[bottom, left] + lr * img[bottom, right])
    value = np.clip(value, 0, 255).astype(np.uint8)  # assign_pixel saturates, then truncates
    value[~inside] = 0
    return value


def extract_image_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib's ``extract_image_chip`` with bilinear interpolation.

    Args:
        image: uint8 ``[H, W, 3]`` RGB (repeat a greyscale channel three times first).
        details: from :func:`get_face_chip_details`, :func:`mtcnn_chip_details` or
            :func:`chip_details_from_points`.

    Returns:
        uint8 ``[details.rows, details.cols, 3]``; pixels from outside the image are black.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FacenetError(f"expected a uint8 [H, W, 3] RGB image; received {image.dtype} {image.shape}")
    rows, cols = details.rows, details.cols
    size = rows * cols
    height, width = image.shape[:2]
    # dlib crops a box around the rotated rect (2 pixels more per pyramid level, doubled),
    # builds the pyramid on that crop and samples the shallowest level small enough.
    depth, grow, rect = 0, 2.0, _rect_down(details.rect)
    while _area(rect) > size:
        rect, depth, grow = _rect_down(rect), depth + 1, grow * 2 + 2
    corners = np.vstack([details.corners(), details.corners()[1] + details.corners()[2] - details.corners()[0]])
    box = (max(corners[:, 0].min() - grow, 0.0), max(corners[:, 1].min() - grow, 0.0),
           min(corners[:, 0].max() + grow, width - 1.0), min(corners[:, 1].max() + grow, height - 1.0))
    if box[0] > box[2] or box[1] > box[3]:
        return np.zeros((rows, cols, 3), np.uint8)  # the chip lies entirely outside the image
    left, top, right, bottom = _to_int_rect(box)
    level_image = image[top:bottom + 1, left:right + 1]
    rect = (details.rect[0] - left, details.rect[1] - top, details.rect[2] - left, details.rect[3] - top)
    while _area(_rect_down(rect)) > size:
        rect = _rect_down(rect)
        level_image = pyramid_down(level_image)
    tl, tr, bl = details.corners(rect)
    c, r = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    step_x = (tr - tl) / max(cols - 1, 1)
    step_y = (bl - tl) / max(rows - 1, 1)
    x = tl[0] + c * step_x[0] + r * step_y[0]
    y = tl[1] + c * step_x[1] + r * step_y[1]
    if level_image.size == 0:
        return np.zeros((rows, cols, 3), np.uint8)
    return _bilinear(level_image, x, y)


def get_face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """``dlib.get_face_chip`` from dlib 5-point landmarks: uint8 ``[size, size, 3]``."""
    return extract_image_chip(image, get_face_chip_details(landmarks, size, padding))


def mtcnn_face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib-style chip from MTCNN's five landmarks: uint8 ``[size, size, 3]``."""
    return extract_image_chip(image, mtcnn_chip_details(landmarks, size, padding))


def whole_image_chip(image: np.ndarray, size: int = 150) -> np.ndarray:
    """Fallback when no detector finds a face: the whole image resized (bilinear) to ``size``².

    The aspect ratio is not kept, as :class:`facenet_tf.faces.aligner.FaceAligner` does with
    ``on_failure="resize"``. Input uint8 ``[H, W, 3]``; output uint8 ``[size, size, 3]``.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FacenetError(f"expected a uint8 [H, W, 3] RGB image; received {image.dtype} {image.shape}")
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
