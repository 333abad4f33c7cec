"""The one image reader: every path that opens an image file (folders, prepare, align, evaluation,
enrolment) goes through :func:`read_rgb` or :func:`check_files`, so all of them accept and refuse
the same files for the same reasons.

What a file becomes: uint8 ``[h, w, 3]`` RGB, upright (EXIF orientation applied), with

- greyscale, palette, CMYK, YCbCr and bilevel images converted to RGB;
- 16-bit images (PNG, TIFF, PGM of any maxval) scaled to 8 bits by their high byte, as
  TensorFlow's PNG decoder does (``v >> 8``), so mid-grey stays mid-grey instead of white;
- alpha dropped (the pixels under it kept), as ``tf.io.decode_image(channels=3)`` does in the
  served ``embed_encoded`` signature;
- the first frame of an animated GIF/PNG/WebP.

What is refused, each with a reason from :data:`REASONS`: a missing or unreadable file, a 0-byte
file, a file Pillow cannot identify (an HTML page saved as ``.jpg``), image data that ends early
(a truncated download) or cannot be decoded, and an image above the pixel limit of its
:class:`ImageLimits` (checked from the header, before any pixel is decoded, so a 12000×12000 PNG
costs nothing: Pillow's own ``DecompressionBombError`` never escapes).

This module imports no TensorFlow: ``prepare``'s worker processes and Beam workers use it
without paying TensorFlow's start-up time and memory.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import math
import numbers
import os
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from facenet_tf.errors import FacenetError

#: Default pixel limit (width × height): a 45 MP camera frame passes, a 12000×12000 scan does not.
MAX_PIXELS = 50_000_000

#: Why a file or folder was skipped: reason → what it means.
REASONS = {
    "missing": "file not found (or a dangling link)",
    "unreadable": "file cannot be opened or read",
    "empty": "file is empty (0 bytes)",
    "not_an_image": "not an image file",
    "truncated": "image data ends early (truncated file)",
    "corrupt": "image data cannot be decoded",
    "too_large": "image above the pixel limit",
    "unreadable_folder": "folder cannot be listed",
    "symlink_loop": "symbolic link loops back to a folder being walked",
}

#: Formats and modes whose bytes TensorFlow decodes (``tf.io.decode_image``) to exactly the
#: pixels this reader means: those files are decoded in the graph and stored unchanged in shards.
_TF_NATIVE = {"JPEG": ("L", "RGB"), "PNG": ("L", "RGB", "RGBA"), "BMP": ("RGB",)}
_EXIF_ORIENTATION = 0x0112
#: What Pillow's decoders say when the data stops early (JPEG/PNG; raw PGM/PPM/BMP buffers).
_TRUNCATED = ("truncated", "not enough image data", "buffer is not large enough", "premature end")


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """What the reader refuses from an image's header, before decoding any pixel.

    One object travels from a config (``DataConfig.max_image_pixels``, ``PrepareConfig.max_pixels``)
    through every function that reads files, instead of a bare number in each signature.
    Hashable, so a verdict cached by :func:`check` is remembered per limit.

    Attributes:
        max_pixels: largest ``width × height`` accepted; a larger image is refused as
            ``too_large``. Default :data:`MAX_PIXELS`.
    """

    max_pixels: int = MAX_PIXELS

    def __post_init__(self):
        value = self.max_pixels
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise FacenetError(f"max_pixels must be a whole number >= 1; received {value!r}")
        object.__setattr__(self, "max_pixels", int(self.max_pixels))

    @classmethod
    def from_config(cls, config) -> "ImageLimits":
        """The limits a config asks for: its ``max_image_pixels`` field (``DataConfig``)."""
        return cls(config.max_image_pixels)

    def check_size(self, name: str, width: int, height: int) -> None:
        """Raise :class:`BadImage` (``too_large``) when a ``width × height`` image exceeds the limit."""
        if width * height > self.max_pixels:
            raise BadImage(name, "too_large", f"{width}x{height} = {width * height} pixels > limit {self.max_pixels}")


#: The default limits (:data:`MAX_PIXELS`).
DEFAULT_LIMITS = ImageLimits()


class BadImage(FacenetError):
    """A file the reader refuses: ``path``, ``reason`` (a key of :data:`REASONS`) and ``detail``."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path, self.reason = str(path), reason
        self.detail = (str(detail).splitlines() or [""])[0][:200]
        text = f"{REASONS[reason]}: {self.path}"
        super().__init__(text + (f" ({self.detail})" if self.detail else ""))

    def __reduce__(self):  # picklable across processes despite the custom signature
        return BadImage, (self.path, self.reason, self.detail)


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A readable image: its pixels and whether TensorFlow decodes its bytes to the same pixels."""

    pixels: np.ndarray
    native: bool


def _open(source: Union[str, bytes], name: str, limits: ImageLimits):
    """Open ``source`` lazily (header only) with the checks that need no pixel data."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, bytes):
        if not source:
            raise BadImage(name, "empty")
        handle = io.BytesIO(source)
    else:
        try:
            size = os.stat(source).st_size
        except FileNotFoundError:
            raise BadImage(name, "missing") from None
        except OSError as err:
            raise BadImage(name, "unreadable", err.strerror or err) from None
        if size == 0:
            raise BadImage(name, "empty")
        handle = source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(handle)
    except Image.DecompressionBombError as err:
        raise BadImage(name, "too_large", err) from None
    except UnidentifiedImageError:
        raise BadImage(name, "not_an_image", "no image format recognises its first bytes") from None
    except PermissionError as err:
        raise BadImage(name, "unreadable", err.strerror or err) from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on malformed headers
        raise _decoding_failure(name, err) from None
    width, height = img.size
    try:
        limits.check_size(name, width, height)
    except BadImage:
        img.close()
        raise
    if width == 0 or height == 0:
        img.close()
        raise BadImage(name, "corrupt", f"{width}x{height} image")
    return img


def _decoding_failure(name: str, err: Exception) -> BadImage:
    text = f"{type(err).__name__}: {err}"
    truncated = isinstance(err, EOFError) or any(m in text.lower() for m in _TRUNCATED)
    return BadImage(name, "truncated" if truncated else "corrupt", text)


def _orientation(img) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: keep the image as stored
        return 1


def _is_native(img) -> bool:
    return (img.mode in _TF_NATIVE.get(img.format, ()) and not getattr(img, "is_animated", False)
            and _orientation(img) == 1)


def _to_rgb(img) -> np.ndarray:
    from PIL import ImageOps

    if _orientation(img) != 1:
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - malformed EXIF: keep the image as stored
            pass
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (and Pillow's 32-bit "I", which holds 16-bit PGM/PNG): keep the high byte.
        grey = (np.clip(np.asarray(img, np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode == "F":
        values = np.asarray(img, np.float64)
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
        grey = np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # the direct conversion warns about byte transparency
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def decode(source: Union[str, bytes], name: Optional[str] = None, limits: ImageLimits = DEFAULT_LIMITS) -> Decoded:
    """Read and fully decode one image (a path, or its bytes with ``name`` for messages).

    Returns:
        :class:`Decoded`: uint8 ``[h, w, 3]`` pixels and ``native`` (TensorFlow decodes the
        unchanged bytes to these pixels, up to its JPEG decoder's rounding).

    Raises:
        BadImage: with the reason the file is refused.
    """
    name = name or str(source)
    img = _open(source, name, limits)
    try:
        native = _is_native(img)
        try:
            img.seek(0)
            img.load()
            pixels = _to_rgb(img)
        except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many types
            raise _decoding_failure(name, err) from None
    finally:
        img.close()
    return Decoded(pixels, native)


def read_rgb(path: str, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Read one image file → uint8 ``[h, w, 3]`` (see the module docstring for the rules).

    Raises:
        BadImage: (a :class:`FacenetError`) naming the file and the reason.
    """
    return decode(path, limits=limits).pixels


def read_rgb_within(path: str, max_pixels: int, limits: ImageLimits = DEFAULT_LIMITS) -> Tuple[np.ndarray, Tuple[float, float]]:
    """:func:`read_rgb` decoded at a bounded size: at most ``max_pixels`` pixels, aspect kept.

    A larger image is decoded at a reduced scale where the format allows (JPEG's DCT scaling
    through Pillow's ``draft``: a 40 MP photo never exists at full size), then resized down
    (bilinear with Pillow's reducing filter); a smaller one is returned as :func:`read_rgb`
    gives it. The same files are accepted and refused as by :func:`read_rgb`.

    Returns:
        ``(pixels, (scale_x, scale_y))``: uint8 ``[h, w, 3]`` and the original image's pixels
        (upright, after EXIF orientation) per returned pixel, ``(1.0, 1.0)`` when not reduced.
        A point ``(x, y)`` of ``pixels`` is ``(x * scale_x, y * scale_y)`` in the original.

    Raises:
        BadImage: as :func:`read_rgb`.
    """
    from PIL import Image

    img = _open(path, str(path), limits)
    try:
        width, height = img.size
        if _orientation(img) in (5, 6, 7, 8):  # a quarter turn: the upright image is height x width
            width, height = height, width
        factor = math.sqrt(width * height / max_pixels)
        try:
            img.seek(0)
            if factor > 1 and img.format == "JPEG":
                img.draft("RGB", (math.ceil(img.size[0] / factor), math.ceil(img.size[1] / factor)))
            img.load()
            pixels = _to_rgb(img)
        except Exception as err:  # noqa: BLE001 - Pillow's decoders raise many types
            raise _decoding_failure(str(path), err) from None
    finally:
        img.close()
    if factor > 1:
        size = (max(1, int(width / factor)), max(1, int(height / factor)))
        if (pixels.shape[1], pixels.shape[0]) != size:
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return pixels, (width / pixels.shape[1], height / pixels.shape[0])


def encoded(source: Union[str, bytes], name: Optional[str] = None, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes a shard stores for one image: TensorFlow decodes them to :func:`read_rgb`'s pixels.

    The file's own bytes when TensorFlow reads it natively (plain JPEG/PNG/BMP), else a PNG of
    the corrected pixels (EXIF rotation, CMYK, 16-bit, palette, animation, PGM/TIFF/WebP…).

    Raises:
        BadImage: the file is refused (it is fully decoded first).
    """
    name = name or str(source)
    result = decode(source, name, limits)
    if result.native:
        if isinstance(source, bytes):
            return source
        with open(source, "rb") as f:
            return f.read()
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(result.pixels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def encode_files(paths: Sequence[str], limits: ImageLimits = DEFAULT_LIMITS) -> List[Union[bytes, BadImage]]:
    """:func:`encoded` of each file, or the :class:`BadImage` refusing it (returned, not raised).

    What ``prepare``'s worker processes run: it needs neither TensorFlow nor Keras.
    """
    out: List[Union[bytes, BadImage]] = []
    for path in paths:
        try:
            out.append(encoded(path, limits=limits))
        except BadImage as err:
            out.append(err)
    return out


def check(path: str, limits: ImageLimits = DEFAULT_LIMITS) -> Union[bool, BadImage]:
    """Fully decode ``path``: its ``native`` flag, or the :class:`BadImage` that refuses it (returned, not raised).

    The verdict is remembered for the file's size and modification time, so a command that
    checks a folder and then embeds it (``evaluate``, ``enroll --from-dir``) decodes each file
    once to check it, not twice.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return _check(path, -1, -1, limits)  # not cached: the reader names what is wrong
    return _check_cached(path, stat.st_size, stat.st_mtime_ns, limits)


def _check(path: str, size: int, mtime_ns: int, limits: ImageLimits) -> Union[bool, BadImage]:
    try:
        return decode(path, limits=limits).native
    except BadImage as err:
        return err


_check_cached = functools.lru_cache(maxsize=100_000)(_check)


def check_files(paths: Sequence[str], limits: ImageLimits = DEFAULT_LIMITS,
                workers: Optional[int] = None) -> List[Union[bool, BadImage]]:
    """:func:`check` every file, in parallel threads (Pillow decodes without holding the GIL).

    Returns:
        One entry per path, in order: ``True``/``False`` (readable; decoded natively by
        TensorFlow or not) or the :class:`BadImage` refusing it.
    """
    if not paths:
        return []
    workers = workers or min(32, (os.cpu_count() or 1) + 2)
    if workers == 1 or len(paths) < 8:
        return [check(p, limits) for p in paths]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda p: check(p, limits), paths))
