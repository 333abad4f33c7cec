"""Every face of a photo with its landmarks and chip, and the evidence rule for tight crops.

A :class:`~facenet_tf.faces.aligner.FaceAligner` chooses one face per image (``align``,
``evaluate``); :func:`every_face` keeps them all, best score first, each with the five points
that place it and the chip its alignment method cuts.

**No face, no answer.** With ``on_failure="resize"`` (the imported dlib model) an image without
a detected face used to get a chip from the whole image, so a black, white or noise image became a
"face". That path exists for tight crops (ORL's 92×112 faces, where dlib's HOG detector finds
nothing because the face fills the frame), so it is now taken only with *evidence* of a face
(:func:`face_evidence`): the same detector run on the image padded with a border of its median
colour (:data:`EVIDENCE_PADDING` of its size on each side) must find a face whose centre lies in the
original image and whose box spans at least :data:`EVIDENCE_MIN_SIDE` of its shorter side. A tight
crop padded so gains the margin a detector needs; a texture gains nothing. Measured with
``benchmarks/no_face.py`` (figures in ``benchmarks/RESULTS.md``).

**Bounded size.** Files are decoded at most :data:`MAX_DETECT_PIXELS` pixels
(:func:`facenet_tf.data.reader.read_rgb_within`): a photo near the 50 MP limit is detected and
cut at about 4 MP, and its boxes and landmarks are mapped back to the original pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from facenet_tf.data.reader import BadImage, read_rgb_within
from facenet_tf.faces.detection import Face

#: Largest image (width × height) detected and cut: larger files are decoded downscaled to it.
MAX_DETECT_PIXELS = 4_194_304  # 2048 x 2048

#: Border added on each side of an image without a detected face, as a fraction of its side.
EVIDENCE_PADDING = 0.25

#: The padded image's face must span at least this fraction of the image's shorter side.
EVIDENCE_MIN_SIDE = 0.3

#: Landmark orders of :attr:`FoundFace.landmarks`. ``"mtcnn"``: left eye centre, right eye
#: centre, nose tip, left mouth corner, right mouth corner ("left" = the image's left).
#: ``"dlib5"``: dlib's 5-point predictor as it places them (faces of dlib's HOG detector, which
#: has no landmarks of its own): right eye outer corner, right eye inner corner, left eye outer
#: corner, left eye inner corner, bottom of the nose ("right" = the image's right).
LANDMARK_ORDERS = {"mtcnn": ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"),
                   "dlib5": ("right_eye_outer", "right_eye_inner", "left_eye_outer", "left_eye_inner", "nose_base")}


@dataclasses.dataclass(frozen=True)
class FoundFace:
    """One face of an image, ready to embed.

    Attributes:
        box: ``(left, top, right, bottom)`` float pixels of the image it was found in
            (``right = x + width``).
        score: the detector's score (MTCNN 0..1; dlib's HOG: its response above threshold).
        landmarks: float32 ``[5, 2]`` (x, y) pixels, in the order ``order`` names.
        order: a key of :data:`LANDMARK_ORDERS`.
        chip: uint8 ``[size, size, 3]``, the aligned face.
        path: how the chip was made (a key of :data:`facenet_tf.faces.aligner.PATHS`).
    """

    box: Tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    order: str
    chip: np.ndarray
    path: str

    def scaled(self, scale: Tuple[float, float]) -> "FoundFace":
        """The face with box and landmarks multiplied by ``(scale_x, scale_y)``."""
        sx, sy = scale
        box = tuple(float(v) for v in np.asarray(self.box, np.float64) * (sx, sy, sx, sy))
        return dataclasses.replace(self, box=box, landmarks=(self.landmarks * np.float32([sx, sy])).astype(np.float32))


def face_landmarks(aligner: Any, image: np.ndarray, face: Face) -> Tuple[np.ndarray, str]:
    """``(float32 [5, 2], order)``: the detector's landmarks, or, for a face without any (dlib's
    HOG detector), dlib's 5-point predictor in its box (:func:`facenet_tf.faces.methods.dlib_box`)."""
    from facenet_tf.faces.methods import dlib_box

    if face.landmarks is not None:
        return np.asarray(face.landmarks, np.float32), "mtcnn"
    return np.asarray(aligner.predictor().predict(image, dlib_box(face)), np.float32), "dlib5"


def pad_image(image: np.ndarray, fraction: float = EVIDENCE_PADDING) -> Tuple[np.ndarray, Tuple[int, int]]:
    """``image`` inside a border of its median colour, ``fraction`` of its size on each side;
    and ``(dx, dy)``, where the original's top-left corner lands."""
    height, width = image.shape[:2]
    dx, dy = int(round(width * fraction)), int(round(height * fraction))
    colour = np.median(image.reshape(-1, image.shape[-1]), axis=0).astype(np.uint8)
    out = np.empty((height + 2 * dy, width + 2 * dx, image.shape[-1]), np.uint8)
    out[:] = colour
    out[dy:dy + height, dx:dx + width] = image
    return out, (dx, dy)


def face_evidence(aligner: Any, image: np.ndarray) -> Optional[Tuple[Face, np.ndarray, str]]:
    """The face that shows an image without a detected face is a tight crop of one, or ``None``.

    The aligner's detector runs on :func:`pad_image`; a face counts when its box centre lies in
    the original image and its shorter side is at least :data:`EVIDENCE_MIN_SIDE` of the image's
    shorter side (module docstring).

    Returns:
        ``(face, landmarks, order)`` in the original image's pixels (the box may reach outside
        it), the best scoring such face; or ``None``.
    """
    padded, (dx, dy) = pad_image(image)
    height, width = image.shape[:2]
    good = []
    for face in aligner.detect(padded):
        x, y, w, h = face.box
        cx, cy = x + w / 2 - dx, y + h / 2 - dy
        if 0 <= cx < width and 0 <= cy < height and min(w, h) >= EVIDENCE_MIN_SIDE * min(height, width):
            good.append(face)
    if not good:
        return None
    best = max(good, key=lambda f: f.confidence)
    landmarks, order = face_landmarks(aligner, padded, best)
    x, y, w, h = best.box
    return Face((x - dx, y - dy, w, h), best.confidence, None), landmarks - np.float32([dx, dy]), order


def every_face(aligner: Any, image: np.ndarray, faces: Sequence[Face]) -> List[FoundFace]:
    """Every face of uint8 ``[H, W, 3]`` with its chip, best score first.

    ``faces`` are the detector's (:meth:`FaceAligner.detect`). Where there is none, the
    aligner's whole-image path (``on_failure="resize"``) gives one face only with
    :func:`face_evidence`: box, score and landmarks of the face found in the padded image, the
    chip as the whole-image path cuts it (so tight crops keep the chips and figures they had).
    """
    config = aligner.config
    out = []
    for face in sorted(faces, key=lambda f: -f.confidence):
        landmarks, order = face_landmarks(aligner, image, face)
        x, y, w, h = face.box
        chip = aligner.method.face_chip(image, face, config, aligner.method_predictor)
        out.append(FoundFace((x, y, x + w, y + h), float(face.confidence), landmarks, order, chip, "aligned"))
    if faces or config.on_failure != "resize":
        return out
    evidence = face_evidence(aligner, image)
    if evidence is None:
        return []
    face, landmarks, order = evidence
    done = aligner.align_faces(image, [])
    x, y, w, h = face.box
    return [FoundFace((x, y, x + w, y + h), float(face.confidence), landmarks, order, done.chip, done.path)]


def read_bounded(path: str) -> Union[Tuple[np.ndarray, Tuple[float, float]], BadImage]:
    """:func:`~facenet_tf.data.reader.read_rgb_within` at :data:`MAX_DETECT_PIXELS`, or the
    :class:`BadImage` it raised."""
    try:
        return read_rgb_within(path, MAX_DETECT_PIXELS)
    except BadImage as bad:
        return bad


def faces_of_files(aligner: Any, paths: Sequence[str], image_size) -> List[Union[Tuple[List[FoundFace], Tuple[int, int]], BadImage]]:
    """Per file, :func:`every_face` (chips resized to ``image_size``, boxes and landmarks in the
    original file's pixels) and the original ``(height, width)``; or the :class:`BadImage` it
    raised when read. Detection is batched (``detect_many``). A task for
    :func:`facenet_tf.faces.aligner.chunked`."""
    read = [read_bounded(path) for path in paths]
    good = [i for i, r in enumerate(read) if not isinstance(r, BadImage)]
    out: List[Any] = list(read)
    for i, found in zip(good, aligner.detect_many([read[i][0] for i in good])):
        image, scale = read[i]
        out[i] = (faces_for_model(aligner, image, found, scale, image_size), original_shape(image, scale))
    return out


def faces_for_model(aligner: Any, image: np.ndarray, faces: Sequence[Face], scale: Tuple[float, float],
                    image_size) -> List[FoundFace]:
    """:func:`every_face` with boxes and landmarks times ``scale`` (back to the original's pixels,
    :func:`read_bounded`) and chips resized to the model's ``(H, W)`` ``image_size``."""
    return [dataclasses.replace(f.scaled(scale), chip=resized_chip(f.chip, image_size))
            for f in every_face(aligner, image, faces)]


def original_shape(image: np.ndarray, scale: Tuple[float, float]) -> Tuple[int, int]:
    """``(height, width)`` of the original of ``image`` read at ``scale`` (:func:`read_bounded`)."""
    return int(round(image.shape[0] * scale[1])), int(round(image.shape[1] * scale[0]))


def resized_chip(chip: np.ndarray, image_size) -> np.ndarray:
    """``chip`` at ``(H, W)`` ``image_size`` (as training resizes), unchanged when it already is."""
    if tuple(chip.shape[:2]) == tuple(image_size):
        return chip
    from facenet_tf.data.images import resize  # TensorFlow: only where the sizes differ

    return np.round(np.asarray(resize(chip, tuple(image_size)))).astype(np.uint8)
