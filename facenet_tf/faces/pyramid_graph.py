"""dlib's image geometry for the CNN detector in TensorFlow ops: ``pyramid_up`` and the tiled pyramid.

The graph twins of :func:`facenet_tf.faces.fhog.pyramid_up_planes` (RGB) and of the canvas that
:class:`facenet_tf.faces.cnn_detector.CnnFaceDetector` builds (:func:`~facenet_tf.faces.cnn_detector.tiled_pyramid_rects`,
its level resize), for images whose size is known only when the graph runs. The same float
operations in the same order, so the pixels are bit-identical to the NumPy versions on CPU:
sample positions are sequential sums (``tf.cumsum`` pinned to the CPU, whose scan is
sequential as ``np.add.accumulate``), float32 where dlib's SIMD code is float32, float64 where it is double.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from facenet_tf.faces.cnn_detector import resize_level

_F64 = tf.float64


def _positions(step: tf.Tensor, count: tf.Tensor, start=None) -> tf.Tensor:
    """``count`` sample positions ``start + step, start + 2·step, …`` summed one by one (default
    ``start = -step``: ``0, step, …``), as dlib's ``x += x_scale`` loops."""
    first = -step if start is None else start
    values = tf.concat([[first], tf.fill([count], step)], 0)
    return _sequential_cumsum(values)[1:]


def _sequential_cumsum(values: tf.Tensor, axis: int = 0) -> tf.Tensor:
    """``tf.cumsum`` on the CPU, whose scan adds one element after another as dlib's loops do
    (a GPU's parallel scan adds in another order: positions off by an ulp move pixels)."""
    with tf.device("/CPU:0"):
        return tf.cumsum(values, axis=axis)


def resize_rgb(image: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """dlib's ``resize_image`` (bilinear) of a uint8 ``[H, W, 3]`` RGB image to ``[rows, cols, 3]``.

    :func:`facenet_tf.faces.fhog.resize_planes` for three planes: dlib's SIMD path (float32
    lanes, four columns a block, truncated) for the columns it covers, its double path for the rest.
    """
    in_nr, in_nc = tf.shape(image)[0], tf.shape(image)[1]
    x_scale = tf.cast(in_nc - 1, _F64) / tf.cast(tf.maximum(cols - 1, 1), _F64)
    y_scale = tf.cast(in_nr - 1, _F64) / tf.cast(tf.maximum(rows - 1, 1), _F64)
    y = _positions(y_scale, rows)
    top = tf.cast(tf.floor(y), tf.int32)
    bottom = tf.minimum(top + 1, in_nr - 1)
    tb = y - tf.cast(top, _F64)
    upper, lower = tf.gather(image, top, axis=0), tf.gather(image, bottom, axis=0)

    # SIMD blocks: lane j starts at float(-4·x_scale + j·x_scale), each block adds float(4·x_scale);
    # they stop at the first block whose last lane's right neighbour is outside.
    x = -4.0 * x_scale
    lanes = tf.cast(tf.stack([x, x + x_scale, x + 2.0 * x_scale, x + 3.0 * x_scale]), tf.float32)
    most = cols // 4 + 2
    steps = tf.concat([lanes[None], tf.fill([most, 4], tf.cast(4.0 * x_scale, tf.float32))], 0)
    xs = _sequential_cumsum(steps)[1:]
    left = tf.cast(xs, tf.int32)  # truncation, as _mm_cvttps_epi32
    beyond = left[:, 3] + 1 >= in_nc
    blocks = _first(beyond)
    simd = 4 * blocks
    xs, left = tf.reshape(xs[:blocks], [-1]), tf.reshape(left[:blocks], [-1])
    lr = xs - tf.cast(left, tf.float32)
    inv_lr = 1.0 - lr
    tb32, inv_tb32 = tf.cast(tb, tf.float32)[:, None], tf.cast(1.0 - tb, tf.float32)[:, None]
    acc = None
    for weight, rows_of, columns in ((inv_tb32 * inv_lr, upper, left), (inv_tb32 * lr, upper, left + 1),
                                     (tb32 * inv_lr, lower, left), (tb32 * lr, lower, left + 1)):
        term = weight[:, :, None] * tf.cast(tf.gather(rows_of, columns, axis=1), tf.float32)
        acc = term if acc is None else acc + term  # ((tl·w + tr·w) + bl·w) + br·w
    head = tf.cast(tf.cast(acc, tf.int32), tf.uint8)  # the float sum truncated

    # The remaining columns: all double, (1-tb)·((1-lr)·tl + lr·tr) + tb·((1-lr)·bl + lr·br), truncated.
    tail_x = _positions(x_scale, cols - simd, start=-x_scale + tf.cast(simd, _F64) * x_scale)
    tail_left = tf.cast(tf.floor(tail_x), tf.int32)
    tail_right = tf.minimum(tail_left + 1, in_nc - 1)
    tail_lr = (tail_x - tf.cast(tail_left, _F64))[None, :, None]
    tbd = tb[:, None, None]
    tl, tr, bl, br = (tf.cast(tf.gather(rows_of, columns, axis=1), _F64)
                      for rows_of in (upper, lower) for columns in (tail_left, tail_right))
    value = (1.0 - tbd) * ((1.0 - tail_lr) * tl + tail_lr * tr) + tbd * ((1.0 - tail_lr) * bl + tail_lr * br)
    tail = tf.cast(tf.cast(tf.clip_by_value(value, 0.0, 255.0), tf.int32), tf.uint8)
    return tf.concat([head, tail], axis=1)


def pyramid_up(image: tf.Tensor) -> tf.Tensor:
    """dlib's ``pyramid_up(img, out, pyramid_down<2>())`` of uint8 ``[H, W, 3]``: ``[2H + 1, 2W + 2, 3]``
    (each corner ``(p + (1.25, 0.75))·2`` rounded), bit-identical to
    :func:`facenet_tf.faces.fhog.pyramid_up_planes` on CPU."""
    rows, cols = tf.shape(image)[0], tf.shape(image)[1]
    return resize_rgb(image, 2 * rows + 1, 2 * cols + 2)


def level_sizes(rows: tf.Tensor, cols: tf.Tensor, pyramid: int) -> tf.Tensor:
    """int32 ``[L, 2]`` ``(rows, cols)`` of ``pyramid_down<pyramid>``'s levels, the image first:
    ``⌊(p-1)/p·n⌋`` each, while at least 5 rows and not empty."""
    ratio = tf.constant((pyramid - 1.0) / pyramid, _F64)

    def smaller(size):
        return tf.cast(tf.floor(ratio * tf.cast(size, _F64)), tf.int32)

    def more(size, found):
        nr, nc = smaller(size[0]), smaller(size[1])
        return (nr > 0) & (nc > 0) & (nr >= 5)

    def add(size, found):
        size = tf.stack([smaller(size[0]), smaller(size[1])])
        return size, found.write(found.size(), size)

    first = tf.stack([rows, cols])
    found = tf.TensorArray(tf.int32, size=1, dynamic_size=True, element_shape=[2]).write(0, first)
    _, found = tf.while_loop(more, add, (first, found))
    return found.stack()


def _first(condition: tf.Tensor) -> tf.Tensor:
    """Index of the first true of a 1-D bool tensor, its length when none."""
    return tf.argmax(tf.cast(tf.concat([condition, [True]], 0), tf.int32), output_type=tf.int32)


def tiled_rects(rows: tf.Tensor, cols: tf.Tensor, padding: int, outer_padding: int,
                pyramid: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """In-graph :func:`facenet_tf.faces.cnn_detector.tiled_pyramid_rects`: int32 ``[L, 4]``
    ``(left, top, right, bottom)`` of the levels on dlib's canvas and its size ``[2]`` (rows, cols).

    dlib's loops as prefix sums: the levels go down a first column while the rest would not fit
    beside it, then come back up on the right until one would overlap the image.
    """
    sizes = level_sizes(rows, cols, pyramid)
    heights, widths = sizes[:, 0], sizes[:, 1]
    height0, width0 = heights[0], widths[0]
    total_height = tf.reduce_sum(heights + padding) - 2 * padding
    above = tf.cumsum(heights + padding, exclusive=True)  # the column's height before each level
    prev_width = tf.concat([[0], widths[:-1]], 0)
    stop = (widths <= width0 - prev_width - padding) & ((above - height0) * 2 >= total_height - height0)
    first_stop = _first(stop)
    column_end = tf.concat([above, [tf.reduce_sum(heights + padding)]], 0)  # after 0, 1, …, L levels
    column_height = column_end[first_stop] - padding
    tops = outer_padding + above
    in_column = tf.reduce_sum(tf.cast(tops < column_height + outer_padding, tf.int32))
    left_rects = tf.stack([tf.fill([in_column], outer_padding), tops[:in_column],
                           outer_padding + widths[:in_column] - 1, tops[:in_column] + heights[:in_column] - 1], 1)
    # The right column, bottom up from where the first one ended.
    rest_h, rest_w = heights[in_column:], widths[in_column:]
    bottoms = outer_padding + column_end[in_column] - padding - 1 - tf.cumsum(rest_h + padding, exclusive=True)
    right = outer_padding + width0 - 1
    rights = tf.stack([right - (rest_w - 1), bottoms - (rest_h - 1), tf.fill(tf.shape(rest_w), right), bottoms], 1)
    image = left_rects[0]
    overlaps = ((rights[:, 0] <= image[2]) & (image[0] <= rights[:, 2]) & (rights[:, 1] <= image[3])
                & (image[1] <= rights[:, 3]))
    rights = rights[:_first(overlaps)]
    canvas = tf.stack([column_height + 2 * outer_padding, width0 + 2 * outer_padding])
    return tf.concat([left_rects, rights], 0), canvas


def tiled_canvas(first: tf.Tensor, rects: tf.Tensor, canvas: tf.Tensor, padding: int) -> tf.Tensor:
    """dlib's tiled pyramid of float32 ``first`` ``[1, H, W, 3]`` (the normalised image): each level
    a corner-aligned bilinear resize of the one before (as ``CnnFaceDetector``'s graph), placed at
    its rectangle of :func:`tiled_rects` (``padding`` rows apart) on a zero float32 canvas
    ``[1, rows, cols, 3]``.

    Each column of levels is stacked once (a level with the gap below it) and padded once to the
    canvas (a scatter of every pixel costs about three times as much).
    """
    count = tf.shape(rects)[0]
    in_left = tf.reduce_sum(tf.cast(tf.equal(rects[:, 0], rects[0, 0]), tf.int32))
    left_width = rects[0, 2] - rects[0, 0] + 1
    right_width = tf.reduce_max(tf.concat([rects[in_left:, 2] - rects[in_left:, 0] + 1, [0]], 0))

    def piece(level, width, right_aligned):  # [h + padding, width, 3]: the level, right or left aligned
        room = width - tf.shape(level)[1]
        before = room if right_aligned else 0
        return tf.pad(level, [[0, padding], [before, room - before], [0, 0]])

    def body(i, level, left, right):
        rect, before = rects[i], rects[i - 1]
        plan = [_plan(before[3] - before[1] + 1, rect[3] - rect[1] + 1),
                _plan(before[2] - before[0] + 1, rect[2] - rect[0] + 1)]
        level = resize_level(level, plan)
        on_left = i < in_left
        left = left.write(i, tf.cond(on_left, lambda: piece(level[0], left_width, False),
                                     lambda: tf.zeros([0, left_width, 3])))
        right = right.write(count - 1 - i, tf.cond(on_left, lambda: tf.zeros([0, right_width, 3]),
                                                   lambda: piece(level[0], right_width, True)))
        return i + 1, level, left, right

    def column():
        return tf.TensorArray(tf.float32, size=count, infer_shape=False, element_shape=[None, None, 3])

    left = column().write(0, piece(first[0], left_width, False))
    right = column().write(count - 1, tf.zeros([0, right_width, 3]))
    _, _, left, right = tf.while_loop(
        lambda i, *_: i < count, body, (1, first, left, right),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([1, None, None, 3]), None, None))

    def placed(stack, top, left_edge):
        return tf.pad(stack, [[top, canvas[0] - top - tf.shape(stack)[0]],
                              [left_edge, canvas[1] - left_edge - tf.shape(stack)[1]], [0, 0]])

    tiled = placed(left.concat(), rects[0, 1], rects[0, 0])
    tiled = tf.cond(in_left < count,
                    lambda: tiled + placed(right.concat(), rects[count - 1, 1], rects[0, 2] + 1 - right_width),
                    lambda: tiled)
    return tiled[None]


def _plan(n_in: tf.Tensor, n_out: tf.Tensor):
    """In-graph :func:`facenet_tf.faces.cnn_detector._resize_plan` of one axis."""
    step = tf.cast(n_in - 1, _F64) / tf.cast(tf.maximum(n_out - 1, 1), _F64)
    pos = _positions(step, n_out)
    low = tf.cast(tf.floor(pos), tf.int32)
    return low, tf.minimum(low + 1, n_in - 1), tf.cast(pos - tf.cast(low, _F64), tf.float32)
