"""Read frames from a video file or stream, and write an annotated video, with PyAV (extra ``video``).

Anything FFmpeg opens is a source: a file, or a URL (``rtsp://``, ``http://``…). Frames are
sampled at a fixed rate on the stream's own clock (:func:`sample_frames`), so a 30 fps file and
a 25 fps stream give the same times. A file FFmpeg cannot read, or one without a video stream,
is one :class:`FacenetError` line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError


def import_av():
    """The ``av`` module, or a one-line error naming the extra to install."""
    try:
        import av
    except ImportError:
        raise FacenetError("video needs PyAV: install facenet_tf[video] (av)") from None
    return av


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err).split(":")[0] or type(err).__name__


@contextlib.contextmanager
def open_video(source: str):
    """``(container, video stream)`` of ``source``, closed on exit.

    Raises:
        FacenetError: FFmpeg cannot open it, or it has no video stream.
    """
    av = import_av()
    try:
        container = av.open(source, timeout=30.0)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise FacenetError(f"{source}: cannot be read as a video ({_reason(err)})") from None
    try:
        if not container.streams.video:
            raise FacenetError(f"{source}: holds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


def video_duration(source: str) -> Optional[float]:
    """The duration in seconds the container states, or None (a live stream, or not stated)."""
    with open_video(source) as (container, stream):
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return container.duration / 1e6 if container.duration else None


def sample_frames(source: str, fps: float = 2.0) -> Iterator[Tuple[float, np.ndarray]]:
    """The frames of ``source`` at ``fps`` per second: ``(time in seconds, uint8 RGB [H, W, 3])``.

    The frame kept for each slot ``k / fps`` is the first one shown at or after it; a stream
    slower than ``fps`` gives every frame.

    Raises:
        FacenetError: ``fps`` not > 0; the source cannot be opened or decoded (one line).
    """
    if not (np.isfinite(fps) and fps > 0):
        raise FacenetError(f"--fps must be > 0; received {fps!r}")
    av = import_av()
    with open_video(source) as (container, stream):
        rate = float(stream.average_rate) if stream.average_rate else None
        due, index = None, 0
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else (index / rate if rate else None)
                index += 1
                if t is None:
                    raise FacenetError(f"{source}: frames carry no time stamps")
                if due is None:
                    due = t  # the first frame's time: streams need not start at 0
                if t + 1e-6 < due:
                    continue
                while due <= t + 1e-6:
                    due += 1.0 / fps
                yield float(t), frame.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, OSError) as err:
            raise FacenetError(f"{source}: decoding failed ({_reason(err)})") from None


class AnnotatedVideo:
    """An H.264 video of the sampled frames with each face's box and name drawn on it.

    Written to a temporary file beside ``path`` and moved into place on :meth:`close`; an
    existing ``path`` is never overwritten (the caller chooses a new name), and an error
    removes the temporary file.

    Raises:
        FacenetError: ``path`` exists, or its folder does not.
    """

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        if os.path.lexists(path):
            raise FacenetError(f"--annotate {path} exists: it is never overwritten; choose a new file name")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FacenetError(f"--annotate {path}: folder {folder} does not exist")
        self._tmp = None
        self._container = self._stream = None

    def _open(self, shape) -> None:
        av = import_av()
        from fractions import Fraction

        fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.tmp-", suffix=".mp4",
                                         dir=os.path.dirname(os.path.abspath(self.path)))
        os.close(fd)
        self._container = av.open(self._tmp, "w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
        self._stream.height, self._stream.width = shape[0] - shape[0] % 2, shape[1] - shape[1] % 2
        self._stream.pix_fmt = "yuv420p"

    def write(self, frame: np.ndarray, labels: Sequence[Tuple[Tuple[float, float, float, float], str]]) -> None:
        """Add one frame with ``(box, text)`` labels drawn."""
        from PIL import Image, ImageDraw

        av = import_av()
        if self._container is None:
            self._open(frame.shape)
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        for box, text in labels:
            colour = (220, 40, 40) if text.startswith("unknown") else (40, 200, 60)
            draw.rectangle([float(v) for v in box], outline=colour, width=2)
            draw.text((float(box[0]) + 2, max(0.0, float(box[1]) - 12)), text, fill=colour)
        pixels = np.asarray(image)[:self._stream.height, :self._stream.width]
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")):
            self._container.mux(packet)

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it into place (``keep``), or remove it."""
        if self._container is None:
            return
        try:
            if keep:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            if keep:
                if os.path.lexists(self.path):
                    raise FacenetError(f"--annotate {self.path} appeared meanwhile: it is never overwritten")
                os.replace(self._tmp, self.path)
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
            self._container = None
