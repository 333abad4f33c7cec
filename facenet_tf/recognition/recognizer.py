""":class:`FaceRecognizer`: a model plus the policy that turns photos into faces and embeddings.

Example::

    recognizer = FaceRecognizer.load("saved_models/dlib_resnet")
    image = read_rgb("group.jpg")
    for face in recognizer.faces(image):          # every face: box, score, landmarks, embedding
        print(face.face.box, face.embedding.shape)
    matches = recognizer.identify(image, "staff.gallery")   # every face against a gallery
    same = recognizer.verify("a.jpg", "b.jpg").same
"""

from __future__ import annotations

import contextlib
import os
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.detection import Face
from facenet_tf.faces.found import (MAX_DETECT_PIXELS, FoundFace, faces_for_model, original_shape, read_bounded,
                                    resized_chip)
from facenet_tf.recognition.aligned import ALIGN_CHUNK, policy_embedder
from facenet_tf.recognition.results import (DetectedFace, FaceMatch, PhotoIdentification, RecognizedFace,
                                            Verification)
from facenet_tf.serving.inference import Embedder, require_files
from facenet_tf.serving.tta import TTAConfig

Image = Union[str, os.PathLike, np.ndarray]


class FaceRecognizer:
    """A model and how it embeds photos: its recorded alignment (or ``--align`` / ``--no-align``),
    the overrides, test-time augmentation; every face of a photo, or the one the ``face`` rule
    chooses.

    No face, no answer: a photo without a detected face gives ``[]`` / ``None`` / an error
    naming it, never a whole-image embedding, except where a tight crop shows evidence of a
    face (:func:`facenet_tf.faces.found.face_evidence`). A model that records no alignment
    (and ``align`` not ``True``) takes its inputs as ready chips: each photo is one face, the
    whole image. Files are decoded at a bounded size for detection
    (:data:`~facenet_tf.faces.found.MAX_DETECT_PIXELS`); boxes and landmarks are in the
    original file's pixels.

    Attributes:
        embedder: the :class:`~facenet_tf.serving.inference.Embedder` (an aligning one where
            the policy aligns); its ``embed_files`` is what ``evaluate`` measures (one face per
            image by the rule, the whole-image path without evidence, as dlib's pipeline).
        face_given: the ``face`` rule was chosen explicitly (``enroll`` then accepts photos
            with several faces).
    """

    def __init__(self, embedder: Embedder, face_given: bool = False):
        self.embedder = embedder
        self.face_given = face_given

    @classmethod
    def load(cls, model: str, *, align: Optional[bool] = None, method: Optional[str] = None,
             face: Optional[str] = None, detector: Optional[str] = None,
             detector_options: Optional[Sequence[str]] = None,
             tta: Union[TTAConfig, Mapping, None] = None, image_size=None, workers: int = 0) -> "FaceRecognizer":
        """Load ``model`` with its policy (:func:`~facenet_tf.recognition.aligned.policy_embedder`).

        Args:
            model: a model folder or file, or ``"raw-pixels"``.
            align: ``None`` as the model records; ``False``: inputs are chips (``--no-align``);
                ``True``: align even if the model records none (``--align``).
            method, face, detector, detector_options: override the recorded alignment
                (``--align-method``, ``--face``, ``--detector``, ``--detector-options``).
            tta: a :class:`TTAConfig`, or a mapping of its fields replacing the recorded ones.
            image_size: the raw-pixels baseline's size.
            workers: where files are detected (0: processes where the detector needs them).

        Raises:
            FacenetError: nothing loadable, a bad setting, a missing extra.
        """
        embedder = policy_embedder(model, align=align, tta=tta, image_size=image_size, workers=workers,
                                   method=method, face=face, detector=detector,
                                   detector_options=detector_options)
        return cls(embedder, face_given=face is not None)

    @property
    def aligner(self):
        """The :class:`~facenet_tf.faces.aligner.FaceAligner`, or ``None`` (inputs are chips)."""
        return getattr(self.embedder, "aligner", None)

    @property
    def fingerprint(self) -> str:
        """What a gallery records: the weights, the alignment (unless the model's own) and TTA."""
        return self.embedder.fingerprint

    @property
    def distance(self) -> str:
        return self.embedder.distance

    @property
    def embedding_dim(self) -> int:
        return self.embedder.embedding_dim

    @property
    def counts(self):
        """:class:`~facenet_tf.faces.aligner.AlignCounts` of the photos seen, or ``None``."""
        return getattr(self.embedder, "counts", None)

    def threshold(self, gallery=None, threshold: Optional[float] = None) -> float:
        """``threshold`` if given; else the gallery's calibrated threshold if it stores one
        (a ``threshold`` attribute or method giving a number); else the model's (at its target FAR).

        Raises:
            FacenetError: none of them.
        """
        from facenet_tf.gallery.service import resolve_threshold

        if threshold is None and gallery is not None and not isinstance(gallery, (str, os.PathLike)):
            stored = getattr(gallery, "threshold", None)
            stored = stored() if callable(stored) else stored
            if stored is not None:
                return float(stored)
        return resolve_threshold(self.embedder, threshold)

    def detect(self, image: Image) -> List[DetectedFace]:
        """Every face of a photo (uint8 ``[H, W, 3]`` RGB, or a file), best score first."""
        return [detected(found) for found in self._found(image)[0]]

    def faces(self, image: Image) -> List[RecognizedFace]:
        """Every face of a photo with its embedding (one batch), best score first."""
        found = self._found(image)[0]
        embeddings = self._embed([f.chip for f in found])
        return [RecognizedFace(detected(f), e) for f, e in zip(found, embeddings)]

    def embed_face(self, image: Image) -> Optional[np.ndarray]:
        """float32 ``[D]`` of the face the ``face`` rule chooses, or ``None`` without a face."""
        found, shape = self._found(image)
        if not found:
            return None
        return self._embed([found[self._choose(shape, found)].chip])[0]

    def embed_files(self, paths: Sequence[str], progress=None, *, one_face: Optional[bool] = None) -> np.ndarray:
        """float32 ``[N, D]``: one face per file by the rule (``enroll``).

        Args:
            paths: image files.
            progress: receives the number of files just embedded.
            one_face: a file with several faces is an error (default: unless the ``face`` rule
                was given to :meth:`load`).

        Raises:
            FacenetError: naming a file that is missing, unreadable, without a face or (with
                ``one_face``) with several.
        """
        paths = [os.fspath(p) for p in paths]
        one_face = not self.face_given if one_face is None else one_face
        with _progress(self.embedder, progress):
            if self.aligner is not None:
                return self.embedder.embed_files(paths, evidence=True, one_face=one_face)
            require_files(paths)
            out = np.empty((len(paths), self.embedding_dim), np.float32)
            for start in range(0, len(paths), ALIGN_CHUNK):  # the chips identify_files embeds
                chunk = paths[start:start + ALIGN_CHUNK]
                out[start:start + len(chunk)] = self._embed([self._given_file(p)[0][0].chip for p in chunk])
                if self.embedder.progress is not None:
                    self.embedder.progress(len(chunk))
            return out

    def identify(self, image: Image, gallery, threshold: Optional[float] = None) -> List[FaceMatch]:
        """Every face of a photo against ``gallery`` (a path or an open
        :class:`~facenet_tf.gallery.gallery.Gallery`), best score first; ``[]`` without a face."""
        return self.identify_many([image], gallery, threshold)[0]

    def identify_many(self, images: Sequence[Image], gallery, threshold: Optional[float] = None
                      ) -> List[List[FaceMatch]]:
        """:meth:`identify` of several photos, the faces of all of them embedded in one model call
        (what a server does with requests that arrive together): one list per photo, in order."""
        found = [self._found(image)[0] for image in images]
        with self._gallery(gallery) as opened:
            matches = self._matches([f for faces in found for f in faces], opened, self.threshold(opened, threshold))
        ends = np.cumsum([len(faces) for faces in found])
        return [matches[end - len(faces):end] for faces, end in zip(found, ends)]

    def identify_files(self, paths: Sequence[str], gallery: str, threshold: Optional[float] = None, *,
                       top_k: int = 1, index: str = "auto", progress=None) -> List[PhotoIdentification]:
        """Every face of each file against the gallery at ``gallery``, files batched
        (:data:`~facenet_tf.recognition.aligned.ALIGN_CHUNK` at a time, detected ahead in workers
        where the detector needs them). ``threshold``, ``top_k`` and ``index`` follow
        :class:`~facenet_tf.gallery.config.MatchConfig`; ``progress`` receives files done.

        Raises:
            FacenetError: a bad option, no threshold, a missing or foreign gallery, a bad file.
        """
        from facenet_tf.gallery.config import MatchConfig

        MatchConfig(threshold, top_k, index).validate()
        paths = [os.fspath(p) for p in paths]
        require_files(paths)
        out: List[PhotoIdentification] = []
        with self._gallery(gallery, index) as opened:
            limit = self.threshold(opened, threshold)
            chunks = self._found_files(paths)
            with contextlib.closing(chunks):
                for chunk_paths, chunk in chunks:
                    out.extend(self._identify_chunk(chunk_paths, chunk, opened, limit, top_k))
                    if progress is not None:
                        progress(len(chunk_paths))
        return out

    def verify(self, image_a: Image, image_b: Image, threshold: Optional[float] = None) -> Verification:
        """Whether two photos show one person, comparing the face the rule chooses in each.

        Raises:
            FacenetError: a bad threshold or none recorded; a photo without a face (named).
        """
        from facenet_tf.distances import paired_distances_numpy
        from facenet_tf.gallery.config import MatchConfig

        MatchConfig(threshold=threshold).validate()
        limit = self.threshold(None, threshold)
        chosen, counts = [], []
        for which, image in (("first", image_a), ("second", image_b)):
            found, shape = self._found(image)
            if not found:
                name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"the {which} image"
                raise FacenetError(f"no face found in {name}")
            chosen.append(found[self._choose(shape, found)].chip)
            counts.append(len(found))
        a, b = self._embed(chosen)
        distance = float(paired_distances_numpy(a[None], b[None], self.distance)[0])
        return Verification(distance <= limit, distance, limit, (counts[0], counts[1]))

    # -- steps ---------------------------------------------------------------------------------

    def _found(self, image: Image) -> Tuple[List[FoundFace], Tuple[int, int]]:
        """Every face of a photo in original pixels, chips at the model's size; and the
        original ``(height, width)``."""
        if isinstance(image, (str, os.PathLike)):
            require_files([os.fspath(image)])
            read = read_bounded(os.fspath(image))
            if isinstance(read, Exception):
                raise read
            pixels, scale = read
        else:
            pixels, scale = _bounded_array(_checked(image))
        return self._faces_of(pixels, scale), original_shape(pixels, scale)

    def _faces_of(self, pixels: np.ndarray, scale: Tuple[float, float]) -> List[FoundFace]:
        if self.aligner is None:
            return [whole_image_face(pixels, self.embedder.image_size).scaled(scale)]
        return faces_for_model(self.aligner, pixels, self.aligner.detect(pixels), scale, self.embedder.image_size)

    def _found_files(self, paths: Sequence[str]):
        """Yields ``(paths, [([FoundFace, ...], original (H, W)) per file])`` chunk by chunk."""
        from facenet_tf.faces.aligner import chunked, parallel_workers
        from facenet_tf.faces.found import faces_of_files

        size = tuple(self.embedder.image_size)
        if self.aligner is None:
            for start in range(0, len(paths), ALIGN_CHUNK):
                chunk = paths[start:start + ALIGN_CHUNK]
                yield chunk, [self._given_file(p) for p in chunk]
            return
        workers = parallel_workers(self.aligner, getattr(self.embedder, "workers", 1))
        results = chunked(faces_of_files, self.aligner, paths, ALIGN_CHUNK, workers, size)
        done = 0
        with contextlib.closing(results):
            for chunk in results:
                for found in chunk:
                    if isinstance(found, Exception):
                        raise found
                yield paths[done:done + len(chunk)], chunk
                done += len(chunk)

    def _given_file(self, path: str) -> Tuple[List[FoundFace], Tuple[int, int]]:
        read = read_bounded(path)
        if isinstance(read, Exception):
            raise read
        pixels, scale = read
        return [whole_image_face(pixels, self.embedder.image_size).scaled(scale)], original_shape(pixels, scale)

    def _identify_chunk(self, paths, chunk, gallery, limit: float, top_k: int) -> List[PhotoIdentification]:
        embeddings = self._embed([f.chip for found, _ in chunk for f in found])
        matches = _gallery_matches(gallery, embeddings, limit)
        out, at = [], 0
        for path, (found, shape) in zip(paths, chunk):
            faces = tuple(FaceMatch(detected(f), *m) for f, m in zip(found, matches[at:at + len(found)]))
            chosen = self._choose(shape, found) if found else None
            candidates = ()
            if chosen is not None and top_k > 1:
                near = gallery.search(embeddings[at + chosen][None], k=top_k)[0]
                candidates = tuple((n.name, n.distance) for n in near)
            if self.counts is not None:
                self.counts.add(found[chosen].path if found else "no_face", len(found))
            out.append(PhotoIdentification(path, faces, chosen, candidates))
            at += len(found)
        return out

    def _matches(self, found: Sequence[FoundFace], gallery, limit: float) -> List[FaceMatch]:
        matches = _gallery_matches(gallery, self._embed([f.chip for f in found]), limit)
        return [FaceMatch(detected(f), *m) for f, m in zip(found, matches)]

    def _choose(self, shape: Tuple[int, int], found: Sequence[FoundFace]) -> int:
        """Index of the face the ``face`` rule chooses in an image of ``(H, W)`` ``shape``."""
        if self.aligner is None or len(found) == 1:
            return 0
        faces = [Face((f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]), f.score, None) for f in found]
        chosen = self.aligner.choose(shape, faces)
        return next(i for i, face in enumerate(faces) if face is chosen)

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.embedder.embedding_dim), np.float32)
        return self.embedder.embed_pixels(np.stack(chips))

    @contextlib.contextmanager
    def _gallery(self, gallery, index: str = "auto"):
        from facenet_tf.gallery.service import open_gallery

        if not isinstance(gallery, (str, os.PathLike)):
            yield gallery
            return
        with open_gallery(os.fspath(gallery), self.embedder, index=index) as opened:
            yield opened


def detected(found: FoundFace) -> DetectedFace:
    """The public face of a :class:`~facenet_tf.faces.found.FoundFace`."""
    return DetectedFace(tuple(found.box), float(found.score), found.landmarks, found.order)


def whole_image_face(pixels: np.ndarray, image_size) -> FoundFace:
    """The whole image as the one face of a model that takes ready chips: box the image, score
    1.0, landmarks where the ArcFace template puts them on the image."""
    from facenet_tf.faces.templates import TEMPLATE_112

    height, width = pixels.shape[:2]
    landmarks = (TEMPLATE_112 * (width / 112.0, height / 112.0)).astype(np.float32)
    return FoundFace((0.0, 0.0, float(width), float(height)), 1.0, landmarks, "mtcnn",
                     resized_chip(pixels, image_size), "given")


def _gallery_matches(gallery, embeddings: np.ndarray, limit: float):
    """``(name, distance, nearest)`` per embedding (distance ``None`` for an empty gallery)."""
    if not len(embeddings):
        return []
    return [(m.name, None if m.entry_id is None else m.distance, m.nearest_name)
            for m in gallery.identify(embeddings, limit)]


def _checked(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise FacenetError(f"expected a uint8 [H, W, 3] RGB image; received {image.dtype} {image.shape}")
    return image


def _bounded_array(image: np.ndarray) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``image`` downscaled to at most :data:`MAX_DETECT_PIXELS` pixels, and the scale back."""
    height, width = image.shape[:2]
    if height * width <= MAX_DETECT_PIXELS:
        return image, (1.0, 1.0)
    from PIL import Image as PILImage

    factor = (height * width / MAX_DETECT_PIXELS) ** 0.5
    size = (max(1, int(width / factor)), max(1, int(height / factor)))
    small = np.asarray(PILImage.fromarray(image).resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0))
    return small, (width / size[0], height / size[1])


@contextlib.contextmanager
def _progress(embedder: Embedder, progress):
    if progress is None:
        yield
        return
    saved, embedder.progress = embedder.progress, progress
    try:
        yield
    finally:
        embedder.progress = saved
