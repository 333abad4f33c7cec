"""dlib's face chips as TensorFlow ops, for graphs that serve the whole pipeline.

:func:`face_chips` is :func:`facenet_tf.faces.chips.get_face_chip` for every face of one image,
with TensorFlow ops only (no Python callbacks), so that it runs inside a ``tf.function`` traced
with unknown image size and face count and in a SavedModel loaded without facenet_tf. The
steps and their arithmetic are the NumPy version's (:mod:`facenet_tf.faces.chips`):

* the least-squares similarity from dlib's 5-point chip template to the landmarks, here in its
  closed form for 2-D points (``[[a, -b], [b, a]]``, the same fit as the SVD of
  :func:`facenet_tf.faces.transform.similarity_transform`, equal to the last bits of float64),
  giving the chip's rotated ``rect``;
* ``extract_image_chip``: the crop around the rect, dlib's ``pyramid_down<2>`` applied to the
  crop as many times as the NumPy version does (a per-face ``tf.while_loop``), and the
  bilinear warp in float64, truncated as dlib assigns a pixel, black where the 2×2
  neighbourhood leaves the image.

Measured on 2000 ORL faces (every tenth enlarged 4x, so cut from pyramid levels): 6 of
135 million chip values differ, each by 1 grey level (a position differing in float64's last
bit truncated on the other side of a whole value).

Geometry is computed for all faces at once; the crop, its pyramid and the warp run per face
(``tf.map_fn``), because each face's crop and number of levels differ.
"""

from __future__ import annotations

import tensorflow as tf

from facenet_tf.faces.templates import DLIB_5POINT_TEMPLATE, chip_template

_MAX_LEVELS = 64  # pyramid levels: more would shrink any finite photo to nothing


def face_chips(image: tf.Tensor, landmarks: tf.Tensor, size: int = 150, padding: float = 0.25) -> tf.Tensor:
    """dlib's face chips of the faces of one image, as ``get_face_chip`` cuts them one by one.

    Args:
        image: uint8 ``[H, W, 3]`` RGB (H, W may be unknown when traced).
        landmarks: float32 ``[F, 5, 2]`` (x, y) pixels in dlib's 5-point order, e.g. from
            :class:`~facenet_tf.faces.shape_predictor_graph.ShapePredictorGraph`; F may be 0.
        size: chip side in pixels (a Python int; dlib's recognition network: 150).
        padding: margin around the face box as a fraction of it (dlib's: 0.25).

    Returns:
        float32 ``[F, size, size, 3]``, whole values 0..255 (the uint8 pixels of
        ``get_face_chip(image, landmarks[i], size, padding)``); pixels from outside the image
        are 0.
    """
    image = tf.convert_to_tensor(image, tf.uint8)
    points = tf.cast(tf.reshape(landmarks, [-1, 5, 2]), tf.float64)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    crops, levels, grids, valid = _chip_geometry(points, height, width, int(size), float(padding))

    def one_chip(face):
        crop, level_count, grid, ok = face
        return _sample(image, crop, level_count, grid, ok, int(size))

    return tf.map_fn(one_chip, (crops, levels, grids, valid),
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


def _similarity(source, target: tf.Tensor):
    """Least-squares similarity from fixed ``source`` points (NumPy ``[N, 2]``) onto ``target``
    (float64 ``[F, N, 2]``): ``(a, b, shift)`` with ``M = [[a, -b], [b, a]]``, ``shift`` ``[F, 2]``."""
    mean_s = source.mean(axis=0)
    s = tf.constant(source - mean_s, tf.float64)
    mean_t = tf.reduce_mean(target, axis=1)
    t = target - mean_t[:, None]
    norm = tf.reduce_sum(s * s)
    a = tf.reduce_sum(s[None] * t, axis=[1, 2]) / norm
    b = tf.reduce_sum(s[None, :, 0] * t[:, :, 1] - s[None, :, 1] * t[:, :, 0], axis=1) / norm
    shift = tf.stack([mean_t[:, 0] - (a * mean_s[0] - b * mean_s[1]),
                      mean_t[:, 1] - (b * mean_s[0] + a * mean_s[1])], axis=1)
    return a, b, shift


def _rect_down(rect: tf.Tensor) -> tf.Tensor:
    """``pyramid_down<2>::rect_down`` of float64 ``[F, 4]`` rects: ``p/2 - (1.25, 0.75)``."""
    return rect / 2 - tf.constant([1.25, 0.75, 1.25, 0.75], tf.float64)


def _area(rect: tf.Tensor) -> tf.Tensor:
    """drectangle areas; dlib counts ``right - left + 1`` columns."""
    width, height = rect[:, 2] - rect[:, 0] + 1, rect[:, 3] - rect[:, 1] + 1
    return tf.where((width <= 0) | (height <= 0), tf.zeros_like(width), width * height)


def _corners(rect: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor):
    """Top-left, top-right, bottom-left corners (``[F, 2]`` each) of ``rect`` rotated about its centre."""
    cx, cy = (rect[:, 0] + rect[:, 2]) / 2, (rect[:, 1] + rect[:, 3]) / 2

    def turn(x, y):
        dx, dy = x - cx, y - cy
        return tf.stack([dx * cos + dy * -sin + cx, dx * sin + dy * cos + cy], axis=1)

    return turn(rect[:, 0], rect[:, 1]), turn(rect[:, 2], rect[:, 1]), turn(rect[:, 0], rect[:, 3])


def _shrink_while_large(rect: tf.Tensor, limit: float, first_step: bool):
    """Apply ``rect_down`` per face while the (next) rect's area exceeds ``limit``.

    ``first_step`` True: dlib's depth loop (test the current rect, count ``grow = 2·grow + 2``);
    False: the pyramid loop (test the next rect). Returns ``(rect, steps int32 [F], grow [F])``.
    """
    steps = tf.zeros(tf.shape(rect)[:1], tf.int32)
    grow = tf.fill(tf.shape(rect)[:1], tf.constant(2.0, tf.float64))

    def larger(r):
        return _area(r if first_step else _rect_down(r)) > limit

    def step(r, n, g):
        more = larger(r)
        return (tf.where(more[:, None], _rect_down(r), r), n + tf.cast(more, tf.int32),
                tf.where(more, 2 * g + 2, g))

    return tf.while_loop(lambda r, n, g: tf.reduce_any(larger(r)), step, (rect, steps, grow),
                         maximum_iterations=_MAX_LEVELS)


def _chip_geometry(points: tf.Tensor, height: tf.Tensor, width: tf.Tensor, size: int, padding: float):
    """Per face: the crop ``[F, 4]`` int32 (left, top, right, bottom), its pyramid levels int32
    ``[F]``, the sampling grid float64 ``[F, 6]`` (top-left, column step, row step on the last
    level) and whether any of the chip lies in the image (bool ``[F]``)."""
    a, b, shift = _similarity(chip_template(DLIB_5POINT_TEMPLATE, size, padding), points)
    angle, scale = tf.math.atan2(b, a), tf.sqrt(a * a + b * b)
    cos, sin = tf.cos(angle), tf.sin(angle)
    centre_x = a * (size / 2.0) + -b * (size / 2.0) + shift[:, 0]
    centre_y = b * (size / 2.0) + a * (size / 2.0) + shift[:, 1]
    half = (size * scale - 1) / 2  # dlib's centered_drect shrinks by one pixel
    rect = tf.stack([centre_x - half, centre_y - half, centre_x + half, centre_y + half], axis=1)
    # dlib crops a box around the rotated rect, 2 pixels more per pyramid level (doubled).
    _, _, grow = _shrink_while_large(_rect_down(rect), float(size * size), first_step=True)
    top_left, top_right, bottom_left = _corners(rect, cos, sin)
    corners = tf.stack([top_left, top_right, bottom_left, top_right + bottom_left - top_left], axis=1)
    low, high = tf.reduce_min(corners, axis=1), tf.reduce_max(corners, axis=1)  # [F, 2]
    limit = tf.cast(tf.stack([width, height]), tf.float64) - 1.0
    box = tf.concat([tf.maximum(low - grow[:, None], 0.0), tf.minimum(high + grow[:, None], limit)], axis=1)
    valid = (box[:, 0] <= box[:, 2]) & (box[:, 1] <= box[:, 3])
    crop = tf.floor(box + 0.5)
    shifted = rect - tf.tile(crop[:, :2], [1, 2])
    shifted, levels, _ = _shrink_while_large(shifted, float(size * size), first_step=False)
    top_left, top_right, bottom_left = _corners(shifted, cos, sin)
    steps = max(size - 1, 1)
    grid = tf.concat([top_left, (top_right - top_left) / steps, (bottom_left - top_left) / steps], axis=1)
    crop = tf.where(valid[:, None], crop, tf.constant([0.0, 0.0, -1.0, -1.0], tf.float64))
    return tf.cast(crop, tf.int32), levels, grid, valid


def pyramid_down(image: tf.Tensor) -> tf.Tensor:
    """dlib's ``pyramid_down<2>`` of a uint8 ``[H, W, 3]`` image: 5×5 binomial filter, every other
    pixel, integer maths; uint8 ``[(H-3)//2, (W-3)//2, 3]``, empty when H or W <= 8."""
    rows, cols = tf.shape(image)[0], tf.shape(image)[1]

    def down():
        x = tf.cast(image, tf.int32)
        out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2

        def taps(v, n, axis):
            parts = [tf.gather(v, tf.range(k, k + 2 * n, 2), axis=axis) for k in range(5)]
            return parts[0] + 4 * parts[1] + 6 * parts[2] + 4 * parts[3] + parts[4]

        return tf.cast(taps(taps(x, out_cols, 1), out_rows, 0) // 256, tf.uint8)

    return tf.cond((rows <= 8) | (cols <= 8), lambda: tf.zeros([0, 0, 3], tf.uint8), down)


def _bilinear(image: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """dlib's ``interpolate_bilinear`` for RGB at float64 positions ``[h, w]``: float32 ``[h, w, 3]``
    whole values (double maths, saturated and truncated as uint8), 0 where the 2×2
    neighbourhood leaves the image."""
    rows, cols = tf.shape(image, out_type=tf.int64)[0], tf.shape(image, out_type=tf.int64)[1]
    left, top = tf.cast(tf.floor(x), tf.int64), tf.cast(tf.floor(y), tf.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < cols) & (top + 1 < rows)
    left, top = tf.where(inside, left, 0), tf.where(inside, top, 0)
    right, bottom = tf.minimum(left + 1, cols - 1), tf.minimum(top + 1, rows - 1)
    lr = (x - tf.cast(left, tf.float64))[..., None]
    tb = (y - tf.cast(top, tf.float64))[..., None]
    img = tf.cast(image, tf.float64)

    def at(r, c):
        return tf.gather_nd(img, tf.stack([r, c], axis=-1))

    value = (1 - tb) * ((1 - lr) * at(top, left) + lr * at(top, right)) + \
        tb * ((1 - lr) * at(bottom, left) + lr * at(bottom, right))
    value = tf.floor(tf.clip_by_value(value, 0, 255))
    return tf.cast(tf.where(inside[..., None], value, 0.0), tf.float32)


def _sample(image, crop, levels, grid, valid, size: int) -> tf.Tensor:
    """One face's chip: crop, ``levels`` times ``pyramid_down``, bilinear warp on ``grid``."""
    level = image[crop[1]:crop[3] + 1, crop[0]:crop[2] + 1]
    level = tf.while_loop(lambda i, im: i < levels, lambda i, im: (i + 1, pyramid_down(im)), (0, level),
                          shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, 3])))[1]
    index = tf.range(size, dtype=tf.float64)
    col, row = index[None, :], index[:, None]
    x = grid[0] + col * grid[2] + row * grid[4]
    y = grid[1] + col * grid[3] + row * grid[5]
    black = tf.zeros([size, size, 3], tf.float32)
    return tf.cond(valid & (tf.size(level) > 0), lambda: _bilinear(level, x, y), lambda: black)
