"""Photo bytes to RGB pixels in TensorFlow ops, as :func:`facenet_tf.data.reader.read_rgb_within` reads a file.

For a graph that takes encoded photos (a SavedModel signature): JPEG is decoded with libjpeg's
accurate integer DCT (Pillow's default), greyscale repeated to RGB, PNG alpha dropped and palettes
expanded (Pillow's ``convert("RGB")``). A photo over ``max_pixels`` is decoded smaller as the
reader does: JPEG at the DCT scale 1/2, 1/4 or 1/8 that Pillow's ``draft`` picks (chosen in the
graph), then any format resized bilinearly with antialiasing to ``⌊size / factor⌋``.

Pixels: equal to the reader's for PNG; within 1 for JPEG (the same libjpeg); a reduced photo within
a few levels (TensorFlow's antialiased bilinear filter in float against Pillow's in fixed point).
A JPEG's EXIF orientation is applied as the reader does (Pillow's ``exif_transpose``); a PNG's is
not (rare; Pillow reads it from an ``eXIf`` chunk). Malformed bytes fail the graph's run
(``tf.errors.InvalidArgumentError``) rather than raising ``BadImage``.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from facenet_tf.faces.found import MAX_DETECT_PIXELS

_F64 = tf.float64
#: libjpeg's DCT scales (Pillow's ``draft``), largest first.
_JPEG_RATIOS = (8, 4, 2, 1)
#: Bytes of a JPEG searched for its EXIF segment, and IFD0 entries read at most.
_EXIF_WINDOW = 1 << 17
_EXIF_ENTRIES = 256


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
    height, width = shape[0], shape[1]  # as stored; upright after a quarter turn: swapped
    orientation = exif_orientation(data)
    turned = orientation >= 5
    factor = _factor(width, height, max_pixels)
    # Pillow's draft: the largest of 8, 4, 2, 1 within min(w // ⌈w/f⌉, h // ⌈h/f⌉).
    wanted_w = tf.cast(tf.math.ceil(tf.cast(width, _F64) / factor), tf.int32)
    wanted_h = tf.cast(tf.math.ceil(tf.cast(height, _F64) / factor), tf.int32)
    most = tf.minimum(width // wanted_w, height // wanted_h)
    branch = tf.where(factor > 1.0, _first_true([most >= r for r in _JPEG_RATIOS]), len(_JPEG_RATIOS) - 1)
    branches = [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r, dct_method="INTEGER_ACCURATE")
                for r in _JPEG_RATIOS]
    image = _upright(tf.switch_case(branch, branches), orientation)
    image.set_shape([None, None, 3])
    return _reduced(image, tf.where(turned, height, width), tf.where(turned, width, height), factor)


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


def exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """int32 scalar: the EXIF orientation (tag 0x0112 of IFD0 in the first APP1 ``Exif`` segment)
    of JPEG bytes, 1 when absent or not 1 to 8 (Pillow's ``getexif().get(0x0112, 1)``).

    Read from the first :data:`_EXIF_WINDOW` bytes, where the APP1 segment (at most 64 KiB) sits.
    """
    raw = tf.io.decode_raw(tf.strings.substr(data, 0, _EXIF_WINDOW), tf.uint8)
    raw = tf.pad(tf.cast(raw, tf.int32), [[0, _EXIF_WINDOW - tf.shape(raw)[0]]])

    def byte(at):
        return tf.gather(raw, tf.clip_by_value(at, 0, _EXIF_WINDOW - 1))

    # FF E1 <length> "Exif\0\0": cannot occur in entropy-coded data (an FF there is followed by 00).
    marker = (0xFF, 0xE1, None, None) + tuple(b"Exif\0\0")
    starts = tf.range(_EXIF_WINDOW - len(marker))
    found = tf.ones_like(starts, tf.bool)
    for k, value in enumerate(marker):
        if value is not None:
            found &= byte(starts + k) == value
    tiff = _first_true_of(found) + len(marker)
    little = (byte(tiff) == 0x49) & (byte(tiff + 1) == 0x49)  # "II"; else "MM", big-endian

    def number(at, size):
        values = [byte(at + k) for k in range(size)]
        little_endian = sum(v * 256 ** k for k, v in enumerate(values))
        big_endian = sum(v * 256 ** (size - 1 - k) for k, v in enumerate(values))
        return tf.where(little, little_endian, big_endian)

    ifd = tiff + number(tiff + 4, 4)
    entries = ifd + 2 + 12 * tf.range(_EXIF_ENTRIES)
    is_orientation = (number(entries, 2) == 0x0112) & (tf.range(_EXIF_ENTRIES) < number(ifd, 2))
    orientation = number(entries[tf.minimum(_first_true_of(is_orientation), _EXIF_ENTRIES - 1)] + 8, 2)
    valid = tf.reduce_any(found) & tf.reduce_any(is_orientation) & (orientation >= 1) & (orientation <= 8)
    return tf.where(valid, orientation, 1)


def _upright(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """``image`` as stored turned upright for its EXIF ``orientation`` (Pillow's ``exif_transpose``)."""
    def transposed(x):
        return tf.transpose(x, [1, 0, 2])

    turns = [lambda: image, lambda: image, lambda: tf.image.flip_left_right(image),
             lambda: tf.image.rot90(image, 2), lambda: tf.image.flip_up_down(image),
             lambda: transposed(image), lambda: tf.image.rot90(image, 3),
             lambda: tf.image.rot90(transposed(image), 2), lambda: tf.image.rot90(image, 1)]
    return tf.switch_case(orientation, turns)


def _first_true_of(flags: tf.Tensor) -> tf.Tensor:
    """Index of the first true of a 1-D bool tensor (0 when none)."""
    return tf.argmax(tf.cast(flags, tf.int32), output_type=tf.int32)


def _first_true(conditions) -> tf.Tensor:
    """Index of the first true of a list of bool scalars (the last when none)."""
    flags = tf.stack(list(conditions[:-1]) + [tf.constant(True)])
    return tf.argmax(tf.cast(flags, tf.int32), output_type=tf.int32)
