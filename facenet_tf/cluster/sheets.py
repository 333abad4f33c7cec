"""Contact sheets: the faces of one cluster as a grid of thumbnails, one PNG per cluster."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: Thumbnail side in pixels, faces per sheet row, and the most faces shown on one sheet.
THUMB, COLUMNS, MAX_FACES = 96, 10, 100


def face_thumbnail(image: np.ndarray, box: Sequence[float], size: int = THUMB) -> np.ndarray:
    """uint8 ``[size, size, 3]``: the square around ``box`` (left, top, right, bottom; original
    pixels) with a fifth of margin, clipped to the image, resized."""
    from PIL import Image

    left, top, right, bottom = (float(v) for v in box)
    side = max(right - left, bottom - top) * 1.2
    cx, cy = (left + right) / 2, (top + bottom) / 2
    h, w = image.shape[:2]
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR))


def contact_sheet(thumbnails: Sequence[np.ndarray], columns: int = COLUMNS, gap: int = 4) -> np.ndarray:
    """uint8 ``[H, W, 3]``: ``thumbnails`` (equal squares) in rows of ``columns`` on white."""
    size = thumbnails[0].shape[0]
    cols = min(columns, len(thumbnails))
    rows = -(-len(thumbnails) // cols)
    sheet = np.full((rows * (size + gap) + gap, cols * (size + gap) + gap, 3), 255, np.uint8)
    for k, thumb in enumerate(thumbnails):
        r, c = divmod(k, cols)
        y, x = gap + r * (size + gap), gap + c * (size + gap)
        sheet[y:y + size, x:x + size] = thumb
    return sheet


def sheet_faces(count: int, limit: int = MAX_FACES) -> Tuple[int, ...]:
    """Which of a cluster's ``count`` faces a sheet shows: all up to ``limit``, else ``limit``
    spread evenly over the cluster."""
    if count <= limit:
        return tuple(range(count))
    return tuple(int(i) for i in np.linspace(0, count - 1, limit).round())
