"""Decoding and resizing, shared by training, evaluation and export so all see the same pixels.

Files are read by the one reader, :mod:`facenet_tf.data.reader` (``read_rgb`` is re-exported
here): it decides which files are usable and, for the plain JPEG/PNG/BMP that TensorFlow decodes
itself, lets the graph decode them, so folders, shards and the served ``embed_encoded`` signature
decode the same bytes the same way. Every image leaves here as float32 ``[H, W, 3]`` with values
in 0..255: greyscale becomes three equal channels, alpha is dropped, and the resize is bilinear
with antialiasing. Standardisation is *not* done here: it is the first layer of the embedding
model, so a served model takes the same raw pixels as training did.
"""

from __future__ import annotations

import functools
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.data.reader import DEFAULT_LIMITS, BadImage, ImageLimits, inspect_images, parse_image_size, read_rgb
from facenet_tf.data.report import SkipReport
from facenet_tf.errors import FacenetError

__all__ = ["decode_image", "decode_resized", "load_checked_images", "load_image", "load_images", "parse_image_size",
           "read_image", "read_rgb", "resize"]


def _pillow_decode(path: bytes, limits: ImageLimits) -> np.ndarray:
    return read_rgb(path.decode(), limits)


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes (scalar tf.string) → uint8 ``[h, w, 3]`` (first GIF frame)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def read_image(path: tf.Tensor, native=False, limits: ImageLimits = DEFAULT_LIMITS) -> tf.Tensor:
    """Read one image file (scalar tf.string path) → uint8 ``[h, w, 3]``.

    Args:
        path: the file.
        native: bool (tensor), True where TensorFlow decodes the file's bytes itself (plain
            JPEG/PNG/BMP, as :func:`facenet_tf.data.reader.inspect_images` says); otherwise the
            reader decodes it through Pillow (EXIF rotation, CMYK, 16-bit, PGM, TIFF, …).
        limits: what the reader refuses (:class:`facenet_tf.data.reader.ImageLimits`).
    """

    def with_tf():
        return decode_image(tf.io.read_file(path))

    def with_pillow():
        image = tf.numpy_function(functools.partial(_pillow_decode, limits=limits), [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        return image

    if isinstance(native, bool):
        return with_tf() if native else with_pillow()
    return tf.cond(native, with_tf, with_pillow)


def resize(images: tf.Tensor, image_size: Tuple[int, int]) -> tf.Tensor:
    """uint8/float ``[..., h, w, 3]`` → float32 ``[..., H, W, 3]`` in 0..255 (bilinear, antialiased)."""
    resized = tf.image.resize(tf.cast(images, tf.float32), image_size, method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def load_image(path: tf.Tensor, image_size: Tuple[int, int], native=False,
               limits: ImageLimits = DEFAULT_LIMITS) -> tf.Tensor:
    """Read, decode and resize one file → float32 ``[H, W, 3]`` in 0..255 (see :func:`read_image`)."""
    return resize(read_image(path, native, limits), image_size)


def load_images(paths: Sequence[str], image_size: Tuple[int, int], batch_size: int = 128,
                limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode and resize many files in parallel → uint8 ``[N, H, W, 3]`` (rounded from 0..255).

    Raises:
        FacenetError: naming the first file (in order) the reader refuses, and why.
    """
    pixels, _ = load_checked_images(paths, image_size, SkipReport(strict=True, hint=False), batch_size, limits)
    return pixels


def load_checked_images(paths: Sequence[str], image_size: Tuple[int, int], report: SkipReport,
                        batch_size: int = 128, limits: ImageLimits = DEFAULT_LIMITS) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`load_images` that skips the files the reader refuses, recording them in ``report``.

    Returns:
        ``(pixels uint8 [M, H, W, 3], kept int64 [M])``: the images of the usable files and
        their positions in ``paths``.

    Raises:
        FacenetError: a strict ``report`` and a bad file.
    """
    image_size = parse_image_size(image_size)
    results = inspect_images(list(paths), limits)
    kept = []
    for i, result in enumerate(results):
        if isinstance(result, BadImage):
            report.add(result)
        else:
            kept.append(i)
    good = [paths[i] for i in kept]
    native = [bool(results[i]) for i in kept]
    return decode_resized(good, native, image_size, batch_size, limits), np.asarray(kept, np.int64)


def decode_resized(paths: Sequence[str], native: Sequence[bool], image_size: Tuple[int, int],
                   batch_size: int = 128, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode and resize files already checked by the reader → uint8 ``[N, H, W, 3]``.

    Raises:
        FacenetError: a file changed or vanished since it was checked.
    """
    out = np.empty((len(paths), *image_size, 3), np.uint8)
    if not len(paths):
        return out
    ds = (
        tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(native, bool)))
        .map(lambda p, n: load_image(p, image_size, n, limits), num_parallel_calls=tf.data.AUTOTUNE,
             deterministic=True)
        .batch(batch_size)
    )
    start = 0
    iterator = iter(ds)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.NotFoundError) as err:
            raise FacenetError(f"an image changed while it was read, among {paths[start]} and the next "
                               f"{batch_size - 1}: {str(err).splitlines()[0][:200]}") from None
        out[start:start + len(batch)] = np.round(batch.numpy()).astype(np.uint8)
        start += len(batch)
    return out
