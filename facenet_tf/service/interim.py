"""INTERIM, until branch ``faces`` lands ``facenet_tf.recognition.FaceRecognizer``: the subset of
its interface the service uses, for models that take whole images (no recorded alignment).

Each photo is one face spanning the whole image. Deleted at the merge.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class DetectedFace:
    box: Tuple[float, float, float, float]
    score: float


@dataclasses.dataclass(frozen=True)
class FaceMatch:
    face: DetectedFace
    name: Optional[str]
    distance: Optional[float]
    nearest: Optional[str]


class FaceRecognizer:
    def __init__(self, embedder):
        self.embedder = embedder
        self.fingerprint = embedder.fingerprint
        self.distance = embedder.distance
        self.embedding_dim = embedder.embedding_dim

    @classmethod
    def load(cls, model: str, **_) -> "FaceRecognizer":
        from facenet_tf.serving.inference import load_embedder

        return cls(load_embedder(model))

    def threshold(self, gallery=None) -> float:
        from facenet_tf.gallery.service import resolve_threshold

        return resolve_threshold(self.embedder)

    def detect(self, image: np.ndarray) -> List[DetectedFace]:
        return [DetectedFace((0.0, 0.0, float(image.shape[1]), float(image.shape[0])), 1.0)]

    def embed_face(self, image: np.ndarray) -> Optional[np.ndarray]:
        from facenet_tf.data import images as image_ops

        pixels = image_ops.resize(image[None], self.embedder.image_size).numpy()
        return self.embedder.embed_pixels(pixels)[0]

    def identify(self, image, gallery, threshold=None) -> List[FaceMatch]:
        threshold = self.threshold(gallery) if threshold is None else threshold
        (face,) = self.detect(image)
        (match,) = gallery.identify(self.embed_face(image)[None], threshold)
        distance = None if match.entry_id is None else match.distance
        return [FaceMatch(face, match.name, distance, match.nearest_name)]

    def verify(self, image_a, image_b, threshold=None):
        from facenet_tf.distances import paired_distances_numpy
        from facenet_tf.gallery.service import Verification

        threshold = self.threshold() if threshold is None else threshold
        a, b = self.embed_face(image_a), self.embed_face(image_b)
        distance = float(paired_distances_numpy(a[None], b[None], self.distance)[0])
        return Verification(distance <= threshold, distance, threshold)
