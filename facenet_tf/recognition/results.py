"""What the recognition pipeline answers: faces with boxes, embeddings, names and verdicts."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class DetectedFace:
    """One face of a photo.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels of the ORIGINAL image (``right = left +
            width``); a face found only in the padded image of a tight crop may reach outside it.
        score: the detector's score (MTCNN 0..1; dlib's HOG: its response above its threshold;
            1.0 for the whole image of a model that takes ready chips).
        landmarks: float32 ``[5, 2]`` (x, y) original-image pixels, in the order
            :attr:`landmark_order` names (:data:`facenet_tf.faces.found.LANDMARK_ORDERS`):
            MTCNN's (eye centres, nose tip, mouth corners) for MTCNN faces; dlib's 5-point
            predictor's (eye corners, nose base) for faces of dlib's HOG detector.
        landmark_order: ``"mtcnn"`` or ``"dlib5"``.
    """

    box: Tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    landmark_order: str = "mtcnn"

    def to_json_dict(self) -> dict:
        """``{"box": [l, t, r, b], "score": s, "landmarks": [[x, y] x5]}`` (plain floats)."""
        return {"box": [round(float(v), 2) for v in self.box], "score": float(self.score),
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks]}


@dataclasses.dataclass(frozen=True)
class RecognizedFace:
    """A face and its embedding: float32 ``[D]``, as the model embeds (unit norm where the
    model's contract says so; dlib's ResNet is not normalised)."""

    face: DetectedFace
    embedding: np.ndarray


@dataclasses.dataclass(frozen=True)
class FaceMatch:
    """One face of a photo against a gallery.

    Attributes:
        face: the face.
        name: the enrolled person, or ``None`` (unknown: too far, or an empty gallery).
        distance: to the nearest entry; ``None`` for an empty gallery.
        nearest: the nearest entry's name, even when ``name`` is ``None``.
    """

    face: DetectedFace
    name: Optional[str]
    distance: Optional[float]
    nearest: Optional[str]

    def to_json_dict(self) -> dict:
        """``{"box": [...], "name": NAME or null, "distance": d, "nearest": NAME}``."""
        return {"box": self.face.to_json_dict()["box"], "name": self.name, "distance": self.distance,
                "nearest": self.nearest}


@dataclasses.dataclass(frozen=True)
class PhotoIdentification:
    """Every face of one photo against a gallery.

    Attributes:
        image: the photo's path.
        faces: a :class:`FaceMatch` per face, best detector score first (empty: no face).
        chosen: the index in ``faces`` of the face the ``face`` rule chooses, ``None`` without face.
        candidates: ``(name, distance)`` of the ``top_k`` entries nearest the chosen face
            (empty unless ``top_k`` > 1).
    """

    image: str
    faces: Tuple[FaceMatch, ...]
    chosen: Optional[int]
    candidates: Tuple[Tuple[str, float], ...] = ()

    @property
    def match(self) -> Optional[FaceMatch]:
        """The chosen face's match, or ``None``."""
        return None if self.chosen is None else self.faces[self.chosen]

    @property
    def name(self) -> Optional[str]:
        return self.match.name if self.match else None

    @property
    def distance(self) -> Optional[float]:
        return self.match.distance if self.match else None

    @property
    def nearest(self) -> Optional[str]:
        return self.match.nearest if self.match else None


@dataclasses.dataclass(frozen=True)
class Verification:
    """Whether two photos show one person: ``same = distance <= threshold``, comparing the face
    the ``face`` rule chooses in each; ``faces``: how many faces each photo holds."""

    same: bool
    distance: float
    threshold: float
    faces: Tuple[int, int] = (1, 1)
