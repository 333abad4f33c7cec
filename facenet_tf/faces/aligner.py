"""How faces are cropped: :class:`AlignConfig` and the :class:`FaceAligner` that applies it.

FaceNet-style models are trained and used on *aligned* crops: a face detector finds five
landmarks (eye centres, nose tip, mouth corners) and a similarity transform (rotation,
uniform scale, shift) maps them onto a fixed template, so the eyes land on the same pixels
in every image: the 112×112 ArcFace/InsightFace template (``"arcface"``) or dlib's face chip
(``"dlib_chip"``, what dlib's ResNet expects). Templates: :mod:`facenet_tf.faces.templates`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from facenet_tf.data.images import read_rgb, resize
from facenet_tf.errors import FacenetError, check_choice

ON_FAILURE = ("skip", "resize")
#: ``"arcface"``: the 112×112 ArcFace template; ``"dlib_chip"``: dlib's face chip
#: (``get_face_chip_details``, padding around the 5 points), what dlib's ResNet expects.
METHODS = ("arcface", "dlib_chip")


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """How faces are cropped.

    Attributes:
        size: side of the square output in pixels; the template scales with it.
        min_confidence: detections below this MTCNN score count as "no face".
        on_failure: ``"skip"`` leaves an image without a face out (and reports it);
            ``"resize"`` keeps the whole image, resized to ``size``.
        method: one of :data:`METHODS`.
        padding: dlib chip padding (``method="dlib_chip"`` only), fraction of the face.
    """

    size: int = 112
    min_confidence: float = 0.9
    on_failure: str = "skip"
    method: str = "arcface"
    padding: float = 0.25

    @classmethod
    def from_metadata(cls, metadata) -> Optional["AlignConfig"]:
        """The alignment a model's ``metadata.json`` records (``"alignment"``), or ``None``."""
        recorded = (metadata or {}).get("alignment")
        if not recorded:
            return None
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in recorded.items() if k in fields})

    def validate(self) -> None:
        """Raise :class:`FacenetError` for values no run could use."""
        if self.size < 16:
            raise FacenetError(f"align size must be >= 16 pixels; received {self.size}")
        check_choice("on_failure", self.on_failure, ON_FAILURE)
        check_choice("align method", self.method, METHODS)


class FaceAligner:
    """MTCNN detection + template alignment of the most confident face in an image.

    Args:
        config: :class:`AlignConfig`.

    Raises:
        FacenetError: the ``mtcnn`` package is not installed.
    """

    def __init__(self, config: AlignConfig = AlignConfig()):
        from facenet_tf.faces.detection import MtcnnDetector

        config.validate()
        self.config = config
        self._detector = MtcnnDetector(config.min_confidence)

    def landmarks(self, image: np.ndarray) -> Optional[np.ndarray]:
        """``[5, 2]`` landmarks of the most confident face in uint8 ``[H, W, 3]``, or ``None``."""
        faces = self._detector.detect(image)
        if not faces:
            return None
        return max(faces, key=lambda f: f.confidence).landmarks

    def align(self, image: np.ndarray) -> Optional[np.ndarray]:
        """Aligned uint8 ``[size, size, 3]`` crop, or ``None`` when no face is found
        (with ``on_failure="resize"``: the whole image resized instead)."""
        return self.align_with(image, self.landmarks(image))

    def align_with(self, image: np.ndarray, points: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """:meth:`align` with landmarks already found (``None``: no face)."""
        from facenet_tf.faces.chips import mtcnn_face_chip, whole_image_chip
        from facenet_tf.faces.transform import warp_face

        if points is not None:
            if self.config.method == "dlib_chip":
                return mtcnn_face_chip(image, points, self.config.size, self.config.padding)
            return warp_face(image, points, self.config.size)
        if self.config.on_failure == "resize":
            return whole_image_chip(image, self.config.size)
        return None


def align_files(aligner: FaceAligner, paths: Sequence[str], image_size) -> Tuple[np.ndarray, int]:
    """Aligned uint8 ``[N, H, W, 3]`` faces of image files at ``image_size``, and how many
    fell back to the whole image (``on_failure="resize"``).

    Raises:
        FacenetError: an image without a face under ``on_failure="skip"``.
    """
    faces = np.empty((len(paths), *image_size, 3), np.uint8)
    fallbacks = 0
    for i, path in enumerate(paths):
        image = read_rgb(path)
        points = aligner.landmarks(image)
        if points is None:
            if aligner.config.on_failure != "resize":
                raise FacenetError(f"no face found in {path}: crop it by hand and leave out --align")
            fallbacks += 1
        face = aligner.align_with(image, points)
        if tuple(face.shape[:2]) != tuple(image_size):
            face = np.round(np.asarray(resize(face, image_size))).astype(np.uint8)
        faces[i] = face
    return faces, fallbacks
