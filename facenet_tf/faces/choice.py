"""Which face to take when a photo holds several: a documented rule, chosen by name (``--face``).

Each rule takes the image's ``(height, width)`` and the detected faces (at least one) and
returns the one to align. The default (:data:`DEFAULT_FACE`) was chosen by measurement on ORL
faces pasted beside bystander faces (``benchmarks/face_choice.py``, figures in
``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

from facenet_tf.faces.detection import Face
from facenet_tf.registry import Registry

FaceRule = Callable[[Tuple[int, int], Sequence[Face]], Face]

#: The face rules by name; ``--face`` chooses one.
FACE_CHOICES: "Registry[FaceRule]" = Registry("face choice", "--face")


@FACE_CHOICES.register("central", help="the face whose box centre is nearest the image centre")
def central(shape: Tuple[int, int], faces: Sequence[Face]) -> Face:
    cy, cx = shape[0] / 2.0, shape[1] / 2.0

    def off_centre(face: Face) -> float:
        x, y, w, h = face.box
        return (x + w / 2.0 - cx) ** 2 + (y + h / 2.0 - cy) ** 2

    return min(faces, key=off_centre)


@FACE_CHOICES.register("largest", help="the face with the largest box")
def largest(shape: Tuple[int, int], faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: f.box[2] * f.box[3])


@FACE_CHOICES.register("confident", help="the face the detector scores highest")
def confident(shape: Tuple[int, int], faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: f.confidence)


#: The rule used unless ``--face`` says otherwise (see the module docstring).
DEFAULT_FACE = "central"
