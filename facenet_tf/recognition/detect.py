"""Faces of image files by detector name, without a model: what ``facenet-tf detect`` prints."""

from __future__ import annotations

import dataclasses
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from facenet_tf.faces.found import face_landmarks, read_bounded
from facenet_tf.recognition.results import DetectedFace

#: Files read and detected per batch.
DETECT_CHUNK = 16


def face_detector(detector: str = "mtcnn", min_confidence: float = 0.9, detector_options: Sequence[str] = ()):
    """A :class:`~facenet_tf.faces.aligner.FaceAligner` whose detector is ``detector`` (a name in
    :data:`~facenet_tf.faces.detectors.DETECTORS`) with its settings ``detector_options``
    (``NAME=VALUE`` each, :meth:`~facenet_tf.faces.aligner.AlignConfig.detector_settings`), with an
    alignment method it serves.

    Raises:
        FacenetError: an unknown detector, or its extra is missing.
    """
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner
    from facenet_tf.faces.overrides import with_overrides

    config = with_overrides(AlignConfig(min_confidence=min_confidence), detector=detector)
    return FaceAligner(dataclasses.replace(config, detector_options=tuple(detector_options)))


def detect_files(paths: Sequence[str], detector: str = "mtcnn", min_confidence: float = 0.9,
                 detector_options: Sequence[str] = ()) -> Iterator[Tuple[str, List[DetectedFace]]]:
    """``(path, faces)`` per file in order: every face the detector finds, best score first, boxes
    and landmarks in the file's own pixels (files are detected at a bounded size,
    :data:`~facenet_tf.faces.found.MAX_DETECT_PIXELS`). Landmarks: MTCNN's, or for faces of
    dlib's HOG detector dlib's 5-point predictor's (:class:`DetectedFace`). No evidence rule:
    what the detector finds is what is reported.

    Raises:
        FacenetError: a file that is missing or cannot be read (named); a bad detector.
    """
    from facenet_tf.serving.inference import require_files

    paths = list(paths)
    require_files(paths)
    aligner = face_detector(detector, min_confidence, detector_options)
    for start in range(0, len(paths), DETECT_CHUNK):
        chunk = paths[start:start + DETECT_CHUNK]
        read = [read_bounded(path) for path in chunk]
        for bad in read:
            if isinstance(bad, Exception):
                raise bad
        for path, (image, scale), faces in zip(chunk, read, aligner.detect_many([r[0] for r in read])):
            yield path, [_detected(aligner, image, face, scale) for face in sorted(faces, key=lambda f: -f.confidence)]


def _detected(aligner, image, face, scale) -> DetectedFace:
    landmarks, order = face_landmarks(aligner, image, face)
    sx, sy = scale
    x, y, w, h = face.box
    box = (x * sx, y * sy, (x + w) * sx, (y + h) * sy)
    return DetectedFace(tuple(float(v) for v in box), float(face.confidence), (landmarks * np.float32([sx, sy])).astype(np.float32), order)
