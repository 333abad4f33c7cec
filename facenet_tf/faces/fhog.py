"""dlib's image pyramid and fHOG features in NumPy, bit-identical to dlib's C++ (as dlib-bin builds it).

dlib's HOG face detector (:mod:`facenet_tf.faces.hog_detector`) upsamples the image
(``pyramid_up``), shrinks it level by level (``pyramid_down<6>``, each level 5/6 of the one
before, by ``resize_image``'s bilinear interpolation) and computes Felzenszwalb's 31-plane HOG
features on every level (``extract_fhog_features``). A face box is a position on that grid, so
the detector's boxes equal dlib's only when these steps give dlib's numbers to the last bit.
This module ports them from ``dlib/image_transforms/{interpolation,image_pyramid,fhog}.h``
(dlib 20, the source of dlib-bin 20.0.1) including the parts that decide the last bit:

* **resize** (``resize_image``, bilinear, uint8 grey or RGB): row positions accumulate in
  double (``y += y_scale``); columns run four at a time in float SIMD lanes that advance by
  ``float(4·x_scale)``, the weights are float products, ``((tl + tr) + bl) + br`` in float; a
  grey pixel is that value rounded half up, an RGB channel truncated; the columns after the
  last full SIMD block are interpolated in double (grey: mixed float/double, truncated);
* **fHOG** (``extract_fhog_features``, cell size 8): gradients from the strongest colour
  channel (the SIMD blocks of 8 columns break ties toward green, then blue; the leftover
  columns keep the first channel); the orientation by the largest of 18 float dot products;
  each pixel votes bilinearly into 4 cells, in float, in pixel order (row by row), with
  dlib's per-path weight products; block energies summed bin by bin; the 4 normalisations
  clipped at 0.2 in float SIMD lanes summed ``(a + b) + (c + d)``; planes padded for the
  detector's filter size.

Everything is float32 where dlib uses float and float64 where it uses double; sums are taken
in dlib's order (``np.add.at`` adds in the order of its indices). Equality with dlib-bin is
tested through the detector's scores (tests/test_hog_detector.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from facenet_tf.errors import FacenetError

F32 = np.float32

#: dlib's 9 unit vectors of gradient orientation (``directions`` in fhog.h), as floats.
_DIRECTIONS = np.array([[1.0000, 0.0000], [0.9397, 0.3420], [0.7660, 0.6428], [0.500, 0.8660],
                        [0.1736, 0.9848], [-0.1736, 0.9848], [-0.5000, 0.8660], [-0.7660, 0.6428],
                        [-0.9397, 0.3420]], F32)


# --------------------------------------------------------------------------- resize and pyramid
#
# The detector keeps its images as planes, uint8 ``[C, H, W]`` (C = 1 grey, 3 RGB): a gather
# along a row is then a plain byte gather, and the work runs in bands of rows small enough for
# the CPU's cache (:data:`_BAND_ELEMENTS`). Bands change no value: every output pixel is
# computed from the same inputs by the same float operations.

#: Elements per band of rows processed at once (resize and fHOG): a few such float32 arrays
#: stay in the CPU's cache.
_BAND_ELEMENTS = 1 << 15


def to_planes(image: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W]`` or ``[H, W, 3]`` → contiguous ``[1, H, W]`` or ``[3, H, W]``."""
    if image.ndim == 2:
        return np.ascontiguousarray(image)[None]
    return np.ascontiguousarray(np.moveaxis(image, 2, 0))


def from_planes(planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_planes`."""
    return planes[0] if len(planes) == 1 else np.ascontiguousarray(np.moveaxis(planes, 0, 2))


def resize_bilinear(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``resize_image(in, out)`` (bilinear) for a uint8 ``[H, W]`` or ``[H, W, 3]`` image.

    Equal to ``dlib.resize_image(image, rows, cols)``.

    Returns:
        uint8 ``[rows, cols]`` or ``[rows, cols, 3]``.
    """
    return from_planes(resize_planes(to_planes(image), rows, cols))


def resize_planes(planes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """:func:`resize_bilinear` on planes (:func:`to_planes`): uint8 ``[C, rows, cols]``."""
    channels, in_nr, in_nc = planes.shape
    rgb = channels == 3
    out = np.zeros((channels, rows, cols), np.uint8)
    if rows * cols == 0 or in_nr * in_nc == 0:
        return out
    x_scale = (in_nc - 1) / max(cols - 1, 1)
    y_scale = (in_nr - 1) / max(rows - 1, 1)
    y = np.add.accumulate(np.concatenate([[-y_scale], np.full(rows, y_scale)]))[1:]  # y += y_scale
    top = np.floor(y).astype(np.int64)
    bottom = np.minimum(top + 1, in_nr - 1)
    tb = y - top

    # Four columns per SIMD block; lane j starts at float(-4·x_scale + j·x_scale) and every block
    # adds float(4·x_scale). Blocks stop at the first whose last lane's right neighbour is outside.
    x = -4 * x_scale
    lanes = np.array([x, x + x_scale, x + 2 * x_scale, x + 3 * x_scale]).astype(F32)
    most = cols // 4 + 2
    steps = np.concatenate([lanes[None], np.full((most, 4), F32(4 * x_scale), F32)])
    xs = np.add.accumulate(steps, axis=0, dtype=F32)[1:]
    left = xs.astype(np.int64)  # truncation, as _mm_cvttps_epi32
    beyond = np.nonzero(left[:, 3] + 1 >= in_nc)[0]
    blocks = int(beyond[0]) if len(beyond) else most
    simd = 4 * blocks
    if simd:
        xs, left = xs[:blocks].reshape(-1), left[:blocks].reshape(-1)
        right = left + 1
        lr = xs - left.astype(F32)
        inv_lr = F32(1) - lr
        tb32, inv_tb32 = tb.astype(F32)[:, None], (1 - tb).astype(F32)[:, None]
        band = max(1, _BAND_ELEMENTS // (channels * simd))
        value, scratch = np.empty((channels, band, simd), F32), np.empty((channels, band, simd), F32)
        for r0 in range(0, rows, band):
            r1 = min(rows, r0 + band)
            upper, lower = planes.take(top[r0:r1], axis=1), planes.take(bottom[r0:r1], axis=1)
            acc, tmp = value[:, :r1 - r0], scratch[:, :r1 - r0]
            # ((tl·w_tl + tr·w_tr) + bl·w_bl) + br·w_br, each weight a float product.
            np.multiply(inv_tb32[r0:r1] * inv_lr, upper.take(left, axis=2), out=acc)
            for weight, corner in ((inv_tb32[r0:r1] * lr, upper.take(right, axis=2)),
                                   (tb32[r0:r1] * inv_lr, lower.take(left, axis=2)),
                                   (tb32[r0:r1] * lr, lower.take(right, axis=2))):
                np.multiply(weight, corner, out=tmp)
                np.add(acc, tmp, out=acc)
            if not rgb:  # grey: rounded half up; RGB: truncated (simd4i of the float sum).
                np.add(acc, F32(0.5), out=acc)
                np.floor(acc, out=acc)
            out[:, r0:r1, :simd] = acc  # the uint8 store truncates
    if simd < cols:
        x = np.add.accumulate(np.concatenate([[-x_scale + simd * x_scale], np.full(cols - simd, x_scale)]))[1:]
        left = np.floor(x).astype(np.int64)
        right = np.minimum(left + 1, in_nc - 1)
        # tl, tr, bl, br (the few columns first, then their rows)
        corners = [planes.take(columns, axis=2).take(rows, axis=1).astype(F32)
                   for rows in (top, bottom) for columns in (left, right)]
        if rgb:  # all double: (1-tb)·((1-lr)·tl + lr·tr) + tb·((1-lr)·bl + lr·br), truncated
            lr = (x - left)[None, None, :]
            tbd = tb[None, :, None]
            tl, tr, bl, br = (c.astype(np.float64) for c in corners)  # exact: integers
            value = (1 - tbd) * ((1 - lr) * tl + lr * tr) + tbd * ((1 - lr) * bl + lr * br)
        else:  # float rows mixed into double weights, stored as float, truncated
            lr = (x - left).astype(F32)[None, None, :]
            inv_lr = F32(1) - lr
            tl, tr, bl, br = corners
            upper = (inv_lr * tl + lr * tr).astype(np.float64)
            lower = (inv_lr * bl + lr * br).astype(np.float64)
            tbd = tb[None, :, None]
            value = ((1 - tbd) * upper + tbd * lower).astype(F32)
        out[:, :, simd:] = np.trunc(np.clip(value, 0, 255))
    return out


def pyramid_up_planes(planes: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up(img, out, pyramid_down<2>())`` on planes (:func:`to_planes`): about twice
    the size, bilinear. The size is dlib's ``pyr.rect_up(get_rect(img))``: each corner
    ``(p + (1.25, 0.75))·2`` rounded, so ``2W + 2`` columns and ``2H + 1`` rows."""
    rows, cols = planes.shape[1:]
    if rows * cols == 0:
        return planes[:, :0, :0]
    right = math.floor((cols - 1 + 1.25) * 2 + 0.5)
    bottom = math.floor((rows - 1 + 0.75) * 2 + 0.5)
    return resize_planes(planes, bottom + 1, right + 1)


def pyramid_down_planes(planes: np.ndarray, n: int = 6) -> np.ndarray:
    """dlib's ``pyramid_down<N>`` (N > 3) on planes (:func:`to_planes`): ``⌊(N-1)·H/N⌋ × ⌊(N-1)·W/N⌋``, bilinear."""
    rows, cols = planes.shape[1:]
    return resize_planes(planes, ((n - 1) * rows) // n, ((n - 1) * cols) // n)


# --------------------------------------------------------------------------- fHOG

def extract_fhog_features(image: np.ndarray, cell_size: int = 8, rows_padding: int = 1,
                          cols_padding: int = 1) -> np.ndarray:
    """dlib's ``extract_fhog_features(img, hog, cell_size, filter_rows_padding, filter_cols_padding)``.

    Args:
        image: uint8 ``[H, W]`` grey or ``[H, W, 3]`` RGB.
        cell_size: pixels per HOG cell (dlib's detector: 8).
        rows_padding, cols_padding: the filter's size the planes are padded for (dlib's
            detector passes its 10×10 window): ``rows_padding - 1`` extra rows, the first
            ``(rows_padding - 1) // 2`` of them above, all zero.

    Returns:
        float32 ``[31, R, C]``: 18 contrast-sensitive orientations, 9 insensitive, 4 texture
        (energy) planes, for the cells not on the image border; ``[31, 0, 0]`` when the image
        has fewer than 3 cells a side.
    """
    return fhog_planes(to_planes(image), cell_size, rows_padding, cols_padding)


def fhog_planes(planes: np.ndarray, cell_size: int = 8, rows_padding: int = 1,
                cols_padding: int = 1) -> np.ndarray:
    """:func:`extract_fhog_features` of planes (:func:`to_planes`)."""
    layout = _cells(planes.shape[1:], cell_size)
    if layout is None:
        return np.zeros((31, 0, 0), F32)
    cells_nr, cells_nc, visible_nr, visible_nc = layout
    hist = np.zeros((cells_nr + 2) * (cells_nc + 2) * 18, F32)
    # Bands of pixel rows, top to bottom; within a band, unbuffered adds in index order: each
    # bin sums its votes pixel by pixel, as dlib's loop.
    band = max(1, _BAND_ELEMENTS // max(1, visible_nc - 1))
    for y0 in range(1, visible_nr, band):
        if visible_nc > 1:
            np.add.at(hist, *_votes(planes, y0, min(visible_nr, y0 + band), cell_size, visible_nc, cells_nc + 2))
    hist = hist.reshape(cells_nr + 2, cells_nc + 2, 18)
    return _normalise(hist[1:-1, 1:-1], rows_padding, cols_padding)


def _cells(shape, cell_size: int):
    """(cells_nr, cells_nc, visible_nr, visible_nc), or None when there is no HOG cell to compute."""
    nr, nc = shape[:2]
    cells_nr = int(F32(nr) / F32(cell_size) + F32(0.5))
    cells_nc = int(F32(nc) / F32(cell_size) + F32(0.5))
    if cells_nr < 3 or cells_nc < 3:
        return None
    return cells_nr, cells_nc, min(cells_nr * cell_size, nr) - 1, min(cells_nc * cell_size, nc) - 1


def _gradients(block: np.ndarray, split: int):
    """float32 gx, gy and squared length inside ``block`` (uint8 ``[C, ny + 2, nx + 2]``: the
    pixels and their neighbours), dlib's get_gradient; integers, exact in float. ``split``: the
    first columns, dlib's SIMD ones."""
    img = block.astype(F32)
    gx = np.subtract(img[:, 1:-1, 2:], img[:, 1:-1, :-2])
    gy = np.subtract(img[:, 2:, 1:-1], img[:, :-2, 1:-1])
    length = np.multiply(gx, gx)
    length += gy * gy
    if len(img) == 1:
        return gx[0], gy[0], length[0]
    r, g, b = length
    # SIMD blocks: green unless r > g, then blue unless that one > b (ties go to the later
    # channel); leftover columns: red, green if g > r, blue if b > both (ties keep the earlier).
    longer = np.maximum(r, g)
    use_g, use_b = np.empty(r.shape, bool), np.empty(r.shape, bool)
    for simd, columns in ((True, slice(0, split)), (False, slice(split, None))):
        (np.greater_equal if simd else np.greater)(g[:, columns], r[:, columns], out=use_g[:, columns])
        (np.greater_equal if simd else np.greater)(b[:, columns], longer[:, columns], out=use_b[:, columns])
    # Blue where use_b, else green where use_g, else red: as 0/1 weights, exact on these
    # integers (and several times faster than np.where).
    to_b = use_b.astype(F32)
    to_g = np.logical_and(use_g, ~use_b, out=use_g).astype(F32)
    chosen = []
    for planes in (gx, gy):
        red, green, blue = planes
        np.subtract(green, red, out=green)
        np.subtract(blue, red, out=blue)
        green *= to_g
        blue *= to_b
        red += green
        red += blue
        chosen.append(red)
    gx, gy = chosen
    length = np.multiply(gx, gx)
    length += gy * gy
    return gx, gy, length


def _orientation(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """dlib's orientation bin (uint8, 0..17) of float32 gradients: of the 9 float dot products
    ``d_o = gx·dir_o.x + gy·dir_o.y`` dlib keeps the first of d0, -d0, d1, -d1, … that beats the
    best so far (from 0): the first o with the largest ``|d_o|``, plus 9 where ``d_o < 0``."""
    # The running maximum of |d_0| … |d_o| for each o; best is how many of them stay below the
    # last (the largest): the first o that reaches it.
    running = np.empty((9,) + gx.shape, F32)
    np.abs(gx, out=running[0])  # d0 = gx·1 + gy·0
    dot, other = np.empty_like(gx), np.empty_like(gx)
    for o in range(1, 9):
        np.multiply(gx, _DIRECTIONS[o, 0], out=dot)
        np.multiply(gy, _DIRECTIONS[o, 1], out=other)
        np.add(dot, other, out=dot)
        np.abs(dot, out=dot)
        np.maximum(running[o - 1], dot, out=running[o])
    below, best = np.empty(gx.shape, bool), np.zeros(gx.shape, np.uint8)
    for o in range(8):
        np.less(running[o], running[8], out=below)
        best += below.view(np.uint8)
    # d_best's sign: the same float products again
    np.multiply(gx, _DIRECTIONS[:, 0].take(best), out=dot)
    np.multiply(gy, _DIRECTIONS[:, 1].take(best), out=other)
    np.add(dot, other, out=dot)
    best += 9 * (dot < 0).view(np.uint8)
    return best


@functools.lru_cache(maxsize=1)
def _orientation_table() -> np.ndarray:
    """:func:`_orientation` of every gradient a uint8 image has, ``gx, gy`` integers in
    [-255, 255]: uint8 ``[511 · 511]``, entry ``(gx + 255) · 511 + gy + 255``. Built once per
    process (a constant, ~5 ms); one lookup replaces ~60 array operations per pixel."""
    values = np.arange(-255, 256, dtype=F32)
    gx, gy = np.meshgrid(values, values, indexing="ij")
    return _orientation(gx, gy).reshape(-1)


def _votes(planes: np.ndarray, y0: int, y1: int, cell_size: int, visible_nc: int, hist_nc: int):
    """Histogram indices and float32 votes of pixels y in [y0, y1), x in [1, visible_nc),
    four per pixel, in dlib's order (pixel by pixel, row by row)."""
    ny, nx = y1 - y0, visible_nc - 1
    xs = np.arange(1, visible_nc)
    blocks = max(0, -(-(visible_nc - 8) // 8))  # x = 1 + 8k runs in SIMD while x < visible_nc - 7
    split = min(8 * blocks, nx)  # columns x < 1 + split are dlib's SIMD ones
    gx, gy, length = _gradients(planes[:, y0 - 1:y1 + 1, :nx + 2], split)
    v = np.sqrt(length)
    # The orientation depends only on the integer gradient: looked up (see _orientation_table).
    cell = gx.astype(np.int32)
    cell += 255
    cell *= 511
    cell += gy.astype(np.int32)
    cell += 255
    best = _orientation_table().take(cell).astype(np.int32)
    ys = np.arange(y0, y1)
    yp = ((ys + 0.5) / cell_size - 0.5).astype(F32)
    row = np.floor(yp).astype(np.int64)
    vy0 = (yp - row.astype(F32))[:, None]
    vy1 = F32(1) - vy0
    # SIMD columns: xp = (x + 0.5)/cell + 0.5 truncated (the padded column); weights vy·(vx·v).
    xp = (xs[:split].astype(F32) + F32(0.5)) / F32(cell_size) + F32(0.5)
    col_simd = xp.astype(np.int32)
    vx0 = xp - col_simd.astype(F32)
    votes = np.empty((ny, nx, 4), F32)  # to cells (row+1, col), (row+2, col), (row+1, col+1), (row+2, col+1)
    left_v = (F32(1) - vx0) * v[:, :split]
    np.multiply(vy1, left_v, out=votes[:, :split, 0])
    np.multiply(vy0, left_v, out=votes[:, :split, 1])
    right_v = np.multiply(vx0, v[:, :split], out=left_v)
    np.multiply(vy1, right_v, out=votes[:, :split, 2])
    np.multiply(vy0, right_v, out=votes[:, :split, 3])
    # leftover columns: xp = (x + 0.5)/cell - 0.5, floor, + 1; weights (vy·vx)·v.
    xp = ((xs[split:] + 0.5) / cell_size - 0.5).astype(F32)
    col_scalar = np.floor(xp).astype(np.int32)
    vx0 = xp - col_scalar.astype(F32)
    vx1 = F32(1) - vx0
    rest = v[:, split:]
    for k, (vy, vx) in enumerate(((vy1, vx1), (vy0, vx1), (vy1, vx0), (vy0, vx0))):
        votes[:, split:, k] = (vy * vx) * rest
    col = np.concatenate([col_simd, col_scalar + 1])
    base = ((row.astype(np.int32) + 1) * hist_nc)[:, None] + col[None, :]
    base *= 18
    base += best
    index = np.empty((ny, nx, 4), np.int32)
    for k, offset in enumerate((0, hist_nc, 1, hist_nc + 1)):  # the same cells as the votes
        np.add(base, np.int32(18 * offset), out=index[..., k])
    return index.reshape(-1), votes.reshape(-1)


def _normalise(hist: np.ndarray, rows_padding: int, cols_padding: int) -> np.ndarray:
    """The 31 planes from the cells' 18-bin histograms ``[cells_nr, cells_nc, 18]`` (float32).

    Plane-major (``[bin, lane, row, column]``) so that every operation runs on contiguous
    planes, in bands of rows (:data:`_BAND_ELEMENTS`) that stay in the CPU's cache; each value
    is the same float operations in the same order as dlib's SIMD lanes."""
    cells_nr, cells_nc = hist.shape[:2]
    hog_nr, hog_nc = cells_nr - 2, cells_nc - 2
    bins = np.ascontiguousarray(np.moveaxis(hist, -1, 0))  # [18, cells_nr, cells_nc]
    norm = np.zeros((cells_nr, cells_nc), F32)
    for o in range(9):
        both = bins[o] + bins[o + 9]
        norm = norm + both * both
    out = np.zeros((31, hog_nr + rows_padding - 1, hog_nc + cols_padding - 1), F32)
    r0, c0 = (rows_padding - 1) // 2, (cols_padding - 1) // 2
    band = max(1, _BAND_ELEMENTS // (8 * max(1, hog_nc)))
    for y0 in range(0, hog_nr, band):
        y1 = min(hog_nr, y0 + band)
        _normalise_rows(bins[:, 1 + y0:1 + y1, 1:1 + hog_nc], norm[y0:y1 + 2], out[:, r0 + y0:r0 + y1, c0:c0 + hog_nc])
    return out


def _normalise_rows(centre: np.ndarray, norm: np.ndarray, out: np.ndarray) -> None:
    """:func:`_normalise` of the cells ``centre`` (``[18, rows, cols]``) with their block energies
    ``norm`` (``[rows + 2, cols + 2]``, a cell's neighbours around it), into ``out`` ``[31, rows, cols]``."""
    rows, cols = centre.shape[1:]

    def at(dy, dx):
        return norm[dy:dy + rows, dx:dx + cols]

    # The four 2×2 blocks around each cell, one per SIMD lane.
    z1 = np.stack([at(1, 1), at(0, 1), at(1, 0), at(0, 0)])
    z2 = np.stack([at(1, 2), at(0, 2), at(1, 1), at(0, 1)])
    z3 = np.stack([at(2, 1), at(1, 1), at(2, 0), at(1, 0)])
    z4 = np.stack([at(2, 2), at(1, 2), at(2, 1), at(1, 1)])
    nn = F32(0.2) * np.sqrt((((z1 + z2) + z3) + z4) + F32(0.0001))  # [4 lanes, rows, cols]
    n = F32(0.1) / nn

    def clipped(h):  # [bins, rows, cols] → [bins, 4 lanes, rows, cols]
        clip = np.minimum(h[:, None], nn[None])
        clip *= n[None]
        return clip

    def lanes(h, target):  # dlib's dpps order
        np.add(h[:, 0], h[:, 1], out=target)
        target += h[:, 2] + h[:, 3]

    sensitive = clipped(centre)
    lanes(sensitive, out[:18])
    lanes(clipped(centre[:9] + centre[9:]), out[18:27])
    texture = np.zeros(nn.shape, F32)
    for o in range(0, 18, 3):
        texture = texture + ((sensitive[o] + sensitive[o + 1]) + sensitive[o + 2])
    np.multiply(texture, F32(2 * 0.2357), out=out[27:31])


def checked_image(image) -> np.ndarray:
    """``image`` as a C-contiguous uint8 ``[H, W, 3]`` RGB or ``[H, W]`` grey array (``[H, W, 1]`` becomes grey).

    Raises:
        FacenetError: another dtype or shape, or an empty image.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise FacenetError(f"expected a uint8 [H, W, 3] RGB or [H, W] grey image; received {image.dtype} {image.shape}")
    if image.size == 0:
        raise FacenetError(f"the image is empty: {image.shape}")
    return np.ascontiguousarray(image)
