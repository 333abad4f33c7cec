"""Recognise the faces of a video: who appears, from when to when, where (``identify --video``).

Frames are sampled at ``fps`` per second from a file or anything FFmpeg reads (an ``rtsp://``
or ``http://`` stream: :func:`facenet_tf.video.source.sample_frames`); every face of each sampled
frame is identified against the gallery (:meth:`FaceRecognizer.identify`), and the sightings
become a timeline (:func:`facenet_tf.video.timeline.build_timeline`). Optionally the sampled
frames are written, boxes and names drawn, as a new video
(:class:`facenet_tf.video.source.AnnotatedVideo`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, List, Optional, Tuple

from facenet_tf.video.source import AnnotatedVideo, sample_frames
from facenet_tf.video.timeline import Appearance, Sighting, build_timeline

#: An appearance goes on through this many sampling intervals without a sighting (a missed
#: detection or a turned head does not split it).
GAP_INTERVALS = 2.5


@dataclasses.dataclass(frozen=True)
class VideoIdentification:
    """What :func:`identify_video` found: the timeline, every sighting, the frames sampled and
    the wall seconds spent (decoding, detecting, embedding and matching)."""

    appearances: Tuple[Appearance, ...]
    sightings: Tuple[Sighting, ...]
    frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def identify_video(recognizer, gallery, source: str, fps: float = 2.0, threshold: Optional[float] = None,
                   annotate: Optional[str] = None,
                   progress: Optional[Callable[[int], None]] = None) -> VideoIdentification:
    """Identify every face in the frames of ``source`` sampled at ``fps``.

    Args:
        recognizer: :class:`~facenet_tf.recognition.FaceRecognizer`.
        gallery: an open :class:`~facenet_tf.gallery.gallery.Gallery` of this model (or its path).
        source: a video file or a URL FFmpeg reads.
        fps: frames sampled per second of video, > 0.
        threshold: the same-person distance; default as :meth:`FaceRecognizer.threshold` (the
            gallery's calibration, else the model's).
        annotate: also write the sampled frames with boxes and names to this new file (MP4).
        progress: receives 1 per frame done.

    Returns:
        :class:`VideoIdentification`.

    Raises:
        FacenetError: a bad ``fps``; a source FFmpeg cannot read or decode, or without video
            (one line); ``annotate`` exists; no threshold.
    """
    writer = AnnotatedVideo(annotate, fps) if annotate else None
    sightings: List[Sighting] = []
    frames, started = 0, time.perf_counter()
    try:
        for t, frame in sample_frames(source, fps):
            matches = recognizer.identify(frame, gallery, threshold)
            sightings += [Sighting(t, m.name, m.distance, tuple(float(v) for v in m.face.box)) for m in matches]
            if writer is not None:
                writer.write(frame, [(m.face.box, _label(m)) for m in matches])
            frames += 1
            if progress is not None:
                progress(1)
    except BaseException:
        if writer is not None:
            writer.close(keep=False)
        raise
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - started
    return VideoIdentification(tuple(build_timeline(sightings, GAP_INTERVALS / fps)), tuple(sightings), frames,
                               seconds)


def _label(match) -> str:
    if match.name is not None:
        return f"{match.name} {match.distance:.2f}"
    return "unknown" if match.distance is None else f"unknown {match.distance:.2f}"
