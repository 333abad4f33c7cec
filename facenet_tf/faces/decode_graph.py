"""Photo bytes to RGB pixels in TensorFlow ops, as :func:`facenet_tf.data.reader.read_rgb_within` reads a file.

For a graph that takes encoded photos (a SavedModel signature): JPEG is decoded with libjpeg's
accurate integer DCT (Pillow's default), greyscale repeated to RGB, PNG alpha dropped and palettes
expanded (Pillow's ``convert("RGB")``). A photo over ``max_pixels`` is decoded smaller as the
reader does: JPEG at the DCT scale 1/2, 1/4 or 1/8 that Pillow's ``draft`` picks (chosen in the
graph), then any format resized bilinearly with antialiasing to ``⌊size / factor⌋``.

Pixels: equal to the reader's for PNG; within 1 for JPEG (the same libjpeg); a reduced photo within
a few levels (TensorFlow's antialiased bilinear filter in float against Pillow's in fixed point).
Unlike the reader, EXIF orientation is not applied (the photo is taken as stored) and malformed
bytes fail the graph's run (``tf.errors.InvalidArgumentError``) rather than raising ``BadImage``.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from facenet_tf.faces.found import MAX_DETECT_PIXELS

_F64 = tf.float64
#: libjpeg's DCT scales (Pillow's ``draft``), largest first.
_JPEG_RATIOS = (8, 4, 2, 1)


def decode_rgb(data: tf.Tensor, max_pixels: int = MAX_DETECT_PIXELS) -> Tuple[tf.Tensor, tf.Tensor]:
    """One encoded photo → its RGB pixels at most ``max_pixels`` large.

    Args:
        data: tf.string scalar, a JPEG or PNG (also BMP, GIF's first frame); colour, greyscale,
            with alpha or a palette.
        max_pixels: largest ``width × height`` returned (default: the detector's bound,
            :data:`facenet_tf.faces.found.MAX_DETECT_PIXELS`, 4.19 MP).

    Returns:
        ``(image, scale)``: uint8 ``[H, W, 3]`` and float32 ``[2]`` ``(sx, sy)``, original pixels
        per returned pixel (``(1, 1)`` when not reduced): a point ``(x, y)`` of ``image`` is
        ``(x·sx, y·sy)`` in the photo.
    """
    data = tf.convert_to_tensor(data, tf.string)
    is_jpeg = tf.strings.substr(data, 0, 3) == b"\xff\xd8\xff"
    return tf.cond(is_jpeg, lambda: _jpeg(data, max_pixels), lambda: _other(data, max_pixels))


def _factor(width: tf.Tensor, height: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """The reader's ``sqrt(width·height / max_pixels)`` (float64; above 1: reduce)."""
    return tf.sqrt(tf.cast(width, _F64) * tf.cast(height, _F64) / float(max_pixels))


def _jpeg(data: tf.Tensor, max_pixels: int) -> Tuple[tf.Tensor, tf.Tensor]:
    shape = tf.io.extract_jpeg_shape(data)
    height, width = shape[0], shape[1]
    factor = _factor(width, height, max_pixels)
    # Pillow's draft: the largest of 8, 4, 2, 1 within min(w // ⌈w/f⌉, h // ⌈h/f⌉).
    wanted_w = tf.cast(tf.math.ceil(tf.cast(width, _F64) / factor), tf.int32)
    wanted_h = tf.cast(tf.math.ceil(tf.cast(height, _F64) / factor), tf.int32)
    most = tf.minimum(width // wanted_w, height // wanted_h)
    branch = tf.where(factor > 1.0, _first_true([most >= r for r in _JPEG_RATIOS]), len(_JPEG_RATIOS) - 1)
    branches = [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r, dct_method="INTEGER_ACCURATE")
                for r in _JPEG_RATIOS]
    image = tf.switch_case(branch, branches)
    image.set_shape([None, None, 3])
    return _reduced(image, width, height, factor)


def _other(data: tf.Tensor, max_pixels: int) -> Tuple[tf.Tensor, tf.Tensor]:
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    return _reduced(image, width, height, _factor(width, height, max_pixels))


def _reduced(image: tf.Tensor, width: tf.Tensor, height: tf.Tensor, factor: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """``image`` (decoded, maybe DCT-scaled) resized to the reader's ``⌊size / factor⌋`` when
    ``factor > 1`` and its size differs; with the original pixels per returned pixel."""
    target = tf.stack([tf.maximum(1, tf.cast(tf.cast(height, _F64) / factor, tf.int32)),
                       tf.maximum(1, tf.cast(tf.cast(width, _F64) / factor, tf.int32))])
    resize = (factor > 1.0) & tf.reduce_any(tf.shape(image)[:2] != target)

    def resized():
        values = tf.image.resize(image, target, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(values), 0.0, 255.0), tf.uint8)

    image = tf.cond(resize, resized, lambda: image)
    size = tf.cast(tf.shape(image)[:2], _F64)
    scale = tf.stack([tf.cast(width, _F64) / size[1], tf.cast(height, _F64) / size[0]])
    return image, tf.cast(scale, tf.float32)


def _first_true(conditions) -> tf.Tensor:
    """Index of the first true of a list of bool scalars (the last when none)."""
    flags = tf.stack(list(conditions[:-1]) + [tf.constant(True)])
    return tf.argmax(tf.cast(flags, tf.int32), output_type=tf.int32)
