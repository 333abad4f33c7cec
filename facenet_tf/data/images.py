"""Decoding and resizing, shared by training, evaluation and export so all see the same pixels.

Every image leaves here as float32 ``[H, W, 3]`` with values in 0..255: greyscale becomes
three equal channels, alpha is dropped, and the resize is bilinear with antialiasing.
Standardisation is *not* done here: it is the first layer of the embedding model, so a
served model takes the same raw pixels as training did.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.errors import FacenetError

#: Formats ``tf.io.decode_image`` reads inside the graph; others go through Pillow.
TF_DECODABLE = r".*\.(jpe?g|png|gif|bmp)$"


def parse_image_size(value) -> Tuple[int, int]:
    """``64`` / ``"64"`` / ``"112x92"`` / ``(112, 92)`` → ``(height, width)``.

    Raises:
        FacenetError: for anything else or sizes below 16 pixels.
    """
    try:
        if isinstance(value, str):
            parts = [int(p) for p in value.lower().split("x")]
        elif isinstance(value, (int, np.integer)):
            parts = [int(value)]
        else:
            parts = [int(p) for p in value]
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise ValueError
    except (TypeError, ValueError):
        raise FacenetError(f"image_size must be N or HxW (e.g. 64 or 112x92); received {value!r}") from None
    if min(parts) < 16:
        raise FacenetError(f"image_size must be at least 16x16 pixels; received {value!r}")
    return parts[0], parts[1]


def read_rgb(path: str) -> np.ndarray:
    """Read one image file with Pillow (any format it reads) → uint8 ``[h, w, 3]``.

    Raises:
        FacenetError: the file cannot be read or decoded.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise FacenetError(f"cannot read image {path}: {err}") from None


def _pillow_decode(path: bytes) -> np.ndarray:
    return read_rgb(path.decode())


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes (scalar tf.string) → uint8 ``[h, w, 3]`` (first GIF frame)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def read_image(path: tf.Tensor) -> tf.Tensor:
    """Read one image file (scalar tf.string path) → uint8 ``[h, w, 3]``.

    JPEG/PNG/GIF/BMP are decoded by TF in the graph; PGM/PPM/TIFF/WebP by Pillow.
    """

    def with_tf():
        return decode_image(tf.io.read_file(path))

    def with_pillow():
        image = tf.numpy_function(_pillow_decode, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        return image

    return tf.cond(tf.strings.regex_full_match(tf.strings.lower(path), TF_DECODABLE), with_tf, with_pillow)


def resize(images: tf.Tensor, image_size: Tuple[int, int]) -> tf.Tensor:
    """uint8/float ``[..., h, w, 3]`` → float32 ``[..., H, W, 3]`` in 0..255 (bilinear, antialiased)."""
    resized = tf.image.resize(tf.cast(images, tf.float32), image_size, method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def load_image(path: tf.Tensor, image_size: Tuple[int, int]) -> tf.Tensor:
    """Read, decode and resize one file → float32 ``[H, W, 3]`` in 0..255."""
    return resize(read_image(path), image_size)


def load_images(paths: Sequence[str], image_size: Tuple[int, int], batch_size: int = 128) -> np.ndarray:
    """Decode and resize many files in parallel → uint8 ``[N, H, W, 3]`` (rounded from 0..255).

    Raises:
        FacenetError: naming the first file that cannot be read or decoded.
    """
    image_size = parse_image_size(image_size)
    out = np.empty((len(paths), *image_size, 3), np.uint8)
    if not len(paths):
        return out
    ds = (
        tf.data.Dataset.from_tensor_slices(list(paths))
        .map(lambda p: load_image(p, image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
    )
    start = 0
    iterator = iter(ds)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.NotFoundError):
            _raise_first_bad(paths[start:start + batch_size])
        out[start:start + len(batch)] = np.round(batch.numpy()).astype(np.uint8)
        start += len(batch)
    return out


def _raise_first_bad(paths: Sequence[str]) -> None:
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as img:
                img.load()
        except Exception as err:  # noqa: BLE001 - any decoder failure is the user's bad file
            raise FacenetError(f"cannot read image {path}: {err}") from None
        try:
            read_image(tf.constant(path))
        except Exception as err:  # noqa: BLE001
            raise FacenetError(f"cannot decode image {path}: {str(err).splitlines()[0]}") from None
    raise FacenetError(f"cannot decode one of {len(paths)} images starting at {paths[0]}")
