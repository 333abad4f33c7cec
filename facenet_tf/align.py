"""Face detection and alignment with MTCNN (optional extra: ``pip install 'facenet_tf[align]'``).

FaceNet-style models are trained and used on *aligned* crops: a face detector finds five
landmarks (eye centres, nose tip, mouth corners) and a similarity transform (rotation,
uniform scale, shift) maps them onto a fixed template, so the eyes land on the same pixels
in every image. The template is the widely used 112×112 ArcFace/InsightFace one.

MTCNN's weights ship inside the ``mtcnn`` package; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.data.images import read_rgb, resize
from facenet_tf.data.reader import BadImage
from facenet_tf.data.report import REPORT_FILE, SkipReport
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.serving.inference import Embedder, require_files

#: Landmarks (x, y) in pixels of a 112×112 aligned face, in MTCNN's order: left eye,
#: right eye, nose, left mouth corner, right mouth corner (InsightFace ``arcface_dst``).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)
_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
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
    def from_contract(cls, contract) -> Optional["AlignConfig"]:
        """The alignment a model's :class:`~facenet_tf.models.contract.ModelContract` records, or ``None``."""
        recorded = contract.alignment if contract is not None else None
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


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``source`` points onto ``target``.

    Umeyama (1991): rotation, uniform scale and translation, no reflection or shear.

    Args:
        source: float ``[N, 2]`` points (x, y), N >= 2.
        target: float ``[N, 2]`` corresponding points.

    Returns:
        float64 ``[2, 3]`` matrix ``M`` with ``target ≈ source @ M[:, :2].T + M[:, 2]``.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ d @ vt
    scale = float((sigma * np.diag(d)).sum() / max((s**2).sum(axis=1).mean(), 1e-12))
    return np.hstack([scale * rotation, (mu_t - scale * rotation @ mu_s)[:, None]])


def warp_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Crop of ``image`` with ``landmarks`` moved onto the template scaled to ``size``.

    Args:
        image: uint8 ``[H, W, 3]``.
        landmarks: ``[5, 2]`` (x, y) in MTCNN's order (see :data:`TEMPLATE_112`).
        size: output side in pixels.

    Returns:
        uint8 ``[size, size, 3]``; pixels from outside ``image`` are black.
    """
    from PIL import Image

    matrix = similarity_transform(landmarks, TEMPLATE_112 * (size / 112.0))
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]  # Pillow maps output → input
    warped = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, tuple(inverse.ravel()),
                                              resample=Image.Resampling.BILINEAR)
    return np.asarray(warped)


class FaceAligner:
    """MTCNN detection + template alignment of the most confident face in an image.

    Args:
        config: :class:`AlignConfig`.

    Raises:
        FacenetError: the ``mtcnn`` package is not installed.
    """

    def __init__(self, config: AlignConfig = AlignConfig()):
        config.validate()
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise FacenetError(
                "face alignment needs the optional 'mtcnn' package: pip install 'facenet_tf[align]'"
            ) from None
        self.config = config
        self._detector = MTCNN()

    def landmarks(self, image: np.ndarray) -> Optional[np.ndarray]:
        """``[5, 2]`` landmarks of the most confident face in uint8 ``[H, W, 3]``, or ``None``."""
        faces = [f for f in self._detector.detect_faces(image) if f["confidence"] >= self.config.min_confidence]
        if not faces:
            return None
        keypoints = max(faces, key=lambda f: f["confidence"])["keypoints"]
        return np.array([keypoints[k] for k in _KEYPOINTS], np.float64)

    def align(self, image: np.ndarray) -> Optional[np.ndarray]:
        """Aligned uint8 ``[size, size, 3]`` crop, or ``None`` when no face is found
        (with ``on_failure="resize"``: the whole image resized instead)."""
        return self.align_with(image, self.landmarks(image))

    def align_with(self, image: np.ndarray, points: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """:meth:`align` with landmarks already found (``None``: no face)."""
        from facenet_tf.pretrained.dlib_chip import mtcnn_face_chip, whole_image_chip

        if points is not None:
            if self.config.method == "dlib_chip":
                return mtcnn_face_chip(image, points, self.config.size, self.config.padding)
            return warp_face(image, points, self.config.size)
        if self.config.on_failure == "resize":
            return whole_image_chip(image, self.config.size)
        return None


class AlignedEmbedder(Embedder):
    """``embedder`` with every image file aligned first, for models trained on aligned faces.

    ``embed_files`` detects and aligns each file (as :func:`align_directory` does), resizes
    the crop to the model's input size (as training does) and embeds it. With
    ``on_failure="resize"`` an image without a detected face is used whole, resized, and
    counted in :attr:`whole_image`; with ``"skip"`` it is an error. The fingerprint gets an
    ``+aligned<size>`` suffix unless the alignment is the model's own (recorded in its
    metadata), so a gallery enrolled with alignment is only ever queried with it.
    ``embed_pixels`` is unchanged (pixels are taken as given).

    Raises:
        FacenetError: mtcnn missing; from ``embed_files``: a file without a face (``"skip"``).
    """

    def __init__(self, embedder: Embedder, config: AlignConfig = AlignConfig(), own: bool = False):
        fingerprint = embedder.fingerprint if own else f"{embedder.fingerprint}+aligned{config.size}"
        super().__init__(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.contract,
                         fingerprint, embedder.path)
        self.aligner = FaceAligner(config)
        self.aligned = 0
        self.whole_image = 0

    def embed_files(self, paths: Sequence[str], batch_size: int = 128) -> np.ndarray:
        require_files(paths)
        faces, fallbacks = align_files(self.aligner, paths, self.image_size)
        self.aligned += len(paths) - fallbacks
        self.whole_image += fallbacks
        return self.embed_pixels(faces, batch_size)


def with_recorded_alignment(embedder: Embedder) -> Embedder:
    """``embedder`` aligning image files the way its model's metadata records (an imported
    dlib model: MTCNN onto dlib's chip, the whole image where no face is found), or
    ``embedder`` itself when the model records no alignment."""
    own = AlignConfig.from_contract(embedder.contract)
    return embedder if own is None else AlignedEmbedder(embedder, own, own=True)


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


@dataclasses.dataclass
class AlignReport:
    """What :func:`align_directory` did: images written, the ones without a face, and the bad
    files and folders skipped (also in ``output_dir/skipped.json`` when there are any)."""

    written: int
    no_face: List[str]
    identities: int
    skipped: Optional[SkipReport] = None


def align_directory(data_dir: str, output_dir: str, config: AlignConfig = AlignConfig(),
                    progress: Optional[Callable[[int], None]] = None, strict: bool = False) -> AlignReport:
    """Write an aligned copy of an identity folder: ``output_dir/<identity>/<image>.png``.

    The copy is built in a temporary sibling folder and renamed into place only when
    complete, so ``output_dir`` is never half-written (an existing one is replaced). Bad
    image files and unreadable folders are skipped, logged per reason and, when there are
    any, listed in ``output_dir/skipped.json``.

    Args:
        data_dir: folder with one sub-folder of images per identity.
        output_dir: where the aligned copy goes.
        config: :class:`AlignConfig`.
        progress: optional callable receiving 1 after each image.
        strict: stop at the first bad file or folder (one-line error naming it; nothing written).

    Raises:
        FacenetError: unreadable input folder, mtcnn missing, no face in any image, or
            (strict) a bad file.
    """
    import logging

    from PIL import Image

    from facenet_tf.artifacts import atomic_path
    from facenet_tf.data.catalog import scan_directory

    config.validate()
    report = SkipReport(strict)
    catalog = scan_directory(data_dir, min_images=1, report=report)
    aligner = FaceAligner(config)
    no_face: List[str] = []
    written = 0
    with atomic_path(output_dir, is_dir=True) as tmp:
        for path, label in zip(catalog.paths, catalog.labels):
            if progress is not None:
                progress(1)
            try:
                image = read_rgb(path)
            except BadImage as bad:
                report.add(bad)
                continue
            face = aligner.align(image)
            if face is None:
                no_face.append(path)
                continue
            folder = os.path.join(tmp, catalog.names[label])
            os.makedirs(folder, exist_ok=True)
            stem = os.path.splitext(os.path.basename(path))[0]
            target = os.path.join(folder, stem + ".png")
            if os.path.exists(target):  # a.jpg and a.png in one folder
                target = os.path.join(folder, os.path.basename(path) + ".png")
            Image.fromarray(face).save(target)
            written += 1
        if not written:
            raise FacenetError(f"no face found in any of the {catalog.num_images} images of {data_dir}")
        if report.skipped:  # an aligned folder is training data: no report file unless there is news
            report.write(os.path.join(tmp, REPORT_FILE))
    report.log(logging.getLogger("facenet_tf"), "align")
    return AlignReport(written, no_face, catalog.num_identities, report)
