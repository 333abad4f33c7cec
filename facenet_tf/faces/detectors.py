"""Face detectors by name (``--detector``): from images to :class:`~facenet_tf.faces.detection.Face` lists.

* ``mtcnn``: MTCNN (:mod:`facenet_tf.faces.detection`): boxes, scores in 0..1 and five
  landmarks; every alignment method can use it.
* ``dlib_hog``: dlib's own pipeline first: its HOG frontal face detector
  (:mod:`facenet_tf.faces.hog_detector`, boxes equal to dlib-bin's ``detector(image, upsample)``),
  whose rectangle dlib's shape predictor takes as is, so the chip is the one dlib-bin makes;
  where it finds no face, MTCNN's faces (their boxes mapped to dlib-like ones by
  :func:`facenet_tf.faces.boxes.dlib_box_from_mtcnn`). HOG faces carry no MTCNN landmarks, so
  this detector serves ``dlib_landmarks`` only.
* ``dlib_cnn``: dlib's CNN (MMOD) face detector (:mod:`facenet_tf.faces.cnn_detector`), dlib's
  rectangles; ``dlib_landmarks`` only.
* ``dlib_hog_cnn``: every HOG face (dlib's exact boxes, so chips stay dlib-bin's own where HOG
  fires), plus every CNN face that no HOG face covers (dlib's own overlap rule), MTCNN only where
  neither finds a face; ``dlib_landmarks`` only (:class:`HogCnnThenMtcnn`).

Each entry is a :class:`Detector`: a factory ``(settings) -> object`` with
``detect_many(images) -> [[Face, ...], ...]``, the frozen dataclass of its own settings
(fields declared with :func:`~facenet_tf.fields.setting`, so they are typed, ranged and
validated like every config field; users give them as ``--detector-options NAME=VALUE``)
and the alignment methods its faces serve. Adding a detector, with settings of its own, is
one registration here (its class in a module of its own where it is large) plus its tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.faces.detection import Face
from facenet_tf.faces.hog_detector import MAX_UPSAMPLE
from facenet_tf.fields import setting
from facenet_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class Detector:
    """A :data:`DETECTORS` entry.

    Attributes:
        build: ``(settings) -> detector``, the detector having ``detect(image)`` and
            ``detect_many(images)`` (uint8 ``[H, W, 3]`` in, :class:`Face` lists out).
        settings: the frozen dataclass of its settings, every field with a default (its
            ``--detector-options`` names; :func:`facenet_tf.faces.aligner.AlignConfig.detector_settings`).
        serves: the alignment methods its faces serve; ``None``: every one (faces with MTCNN's landmarks).
    """

    build: Callable[[Any], Any]
    settings: type
    serves: Optional[Tuple[str, ...]] = None


#: Face detectors by name; ``--detector`` chooses one.
DETECTORS: "Registry[Detector]" = Registry("face detector", "--detector")

#: What the dlib detectors' rectangles (no five landmarks) serve.
DLIB_LANDMARKS_ONLY = ("dlib_landmarks",)


@dataclasses.dataclass(frozen=True)
class MtcnnSettings:
    """``mtcnn``'s settings."""

    min_confidence: float = setting(0.9, "MTCNN score below which no face is found", low=0, high=1)


@dataclasses.dataclass(frozen=True)
class CnnSettings:
    """``dlib_cnn``'s settings."""

    upsample: int = setting(1, "times the image is doubled before the scan", low=0, high=MAX_UPSAMPLE)


@dataclasses.dataclass(frozen=True)
class HogSettings:
    """``dlib_hog``'s and ``dlib_hog_cnn``'s settings: dlib's scans, then MTCNN where they find nothing."""

    upsample: int = setting(1, "times the image is doubled before each dlib scan", low=0, high=MAX_UPSAMPLE)
    min_confidence: float = setting(0.9, "MTCNN score of the fallback below which no face is found", low=0, high=1)


def _mtcnn(settings: MtcnnSettings) -> Any:
    from facenet_tf.faces.detection import MtcnnDetector

    return MtcnnDetector(settings.min_confidence)


class HogThenMtcnn:
    """dlib's HOG detector (``upsample`` times), MTCNN for the images where it finds nothing.

    Args:
        upsample: how many times the image is doubled before the HOG scan (dlib-bin's
            pipelines use 1: faces down to ~40 px).
        min_confidence: the MTCNN score of the fallback.
        hog: a :class:`~facenet_tf.faces.hog_detector.HogFaceDetector` (default: the packaged one).
    """

    #: Its scan runs in Python and NumPy holding the GIL: a folder is detected in worker
    #: processes to use more than one core (:func:`facenet_tf.faces.aligner.parallel_workers`).
    in_processes = True

    def __init__(self, upsample: int = 1, min_confidence: float = 0.9, hog=None):
        from facenet_tf.faces.hog_detector import HogFaceDetector

        self.upsample = upsample
        self.min_confidence = min_confidence
        self._hog = hog or HogFaceDetector.load()
        self._mtcnn = None

    def mtcnn(self):
        """The fallback MTCNN detector, built on first need (the ``mtcnn`` extra)."""
        if self._mtcnn is None:
            from facenet_tf.faces.detection import MtcnnDetector

            self._mtcnn = MtcnnDetector(self.min_confidence)
        return self._mtcnn

    def hog_faces(self, image: np.ndarray) -> List[Face]:
        """The HOG detections of uint8 ``[H, W, 3]``, best first, as faces whose
        ``predictor_box`` is dlib's rectangle."""
        return _dlib_faces(self._hog.detect(image, self.upsample))

    def dlib_faces(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """The faces dlib's detectors find in each image (here HOG's)."""
        return [self.hog_faces(image) for image in images]

    def detect(self, image: np.ndarray) -> List[Face]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """:meth:`dlib_faces` per image; MTCNN (batched) on the images without one."""
        found = self.dlib_faces(images)
        missing = [i for i, faces in enumerate(found) if not faces]
        if missing:
            for i, faces in zip(missing, self.mtcnn().detect_many([images[i] for i in missing])):
                found[i] = faces
        return found


def _dlib_faces(found) -> List[Face]:
    """Faces from a dlib detector's ``boxes`` (``[N, 4]`` left, top, right, bottom, inclusive)
    and ``scores``: the rectangle is the ``predictor_box`` dlib's shape predictor takes as is."""
    return [Face((float(l), float(t), float(r - l + 1), float(b - t + 1)), float(score), None,
                 predictor_box=(int(l), int(t), int(r), int(b)))
            for (l, t, r, b), score in zip(found.boxes, found.scores)]


DETECTORS.register("mtcnn", Detector(_mtcnn, MtcnnSettings),
                   help="MTCNN: boxes and five landmarks (every alignment method)")
DETECTORS.register("dlib_hog", Detector(lambda s: HogThenMtcnn(s.upsample, s.min_confidence), HogSettings,
                                        DLIB_LANDMARKS_ONLY),
                   help="dlib's HOG detector (its exact boxes, so dlib_landmarks makes dlib-bin's own chips), "
                        "MTCNN where it finds no face; dlib_landmarks only")


def detector_serving(method: str) -> str:
    """The first registered detector whose faces serve alignment ``method`` (``mtcnn`` serves every one)."""
    return next(name for name in DETECTORS.names() if check_method(name, method) is None)


def check_method(detector: str, method: str) -> Optional[str]:
    """``None`` if ``detector``'s faces can serve alignment ``method``, else the one-line reason."""
    allowed = DETECTORS.get(detector).serves
    if allowed is None or method in allowed:
        return None
    return (f"detector {detector!r} gives boxes without MTCNN's landmarks: it serves "
            f"--align-method {', '.join(allowed)}; received {method!r}")


class CnnFaces:
    """dlib's CNN face detector (:mod:`facenet_tf.faces.cnn_detector`, ``upsample`` times): every
    face with dlib's rectangle, which dlib's shape predictor takes as is (dlib-bin's CNN pipeline).

    Args:
        upsample: how many times the image is doubled first (dlib-bin's pipelines use 1).
        cnn: a :class:`~facenet_tf.faces.cnn_detector.CnnFaceDetector` (default: the packaged one).
    """

    def __init__(self, upsample: int = 1, cnn=None):
        from facenet_tf.faces.cnn_detector import CnnFaceDetector

        self.upsample = upsample
        self._cnn = cnn or CnnFaceDetector.load()
        self._any_size = None

    @property
    def nms(self):
        """dlib's ``(iou, percent covered)`` overlap thresholds of this detector's suppression."""
        return self._cnn.nms

    def detect(self, image: np.ndarray) -> List[Face]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """The faces of each image, best first. Images sharing a shape in this call run as one
        TensorFlow batch through a graph traced for that shape; an image whose shape is alone in
        the call runs through the one graph traced for every size
        (:class:`~facenet_tf.faces.cnn_graph.CnnGraphDetector`: the same boxes, scores within
        1e-6), so photos of many sizes do not trace the network once per size."""
        from collections import Counter

        from facenet_tf.faces.cnn_detector import CnnDetections, checked_rgb

        images = [checked_rgb(image) for image in images]
        count = Counter(image.shape for image in images)
        shared = [i for i, image in enumerate(images) if count[image.shape] > 1]
        found = dict(zip(shared, self._cnn.detect_many([images[i] for i in shared], self.upsample)))
        for i, image in enumerate(images):
            if i not in found:
                boxes, scores = self._any_size_graph()(image)
                found[i] = CnnDetections(boxes.numpy().astype(np.int64), scores.numpy().astype(np.float64))
        return [_dlib_faces(found[i]) for i in range(len(images))]

    def _any_size_graph(self):
        """The single-trace graph of this detector, built on first need."""
        if self._any_size is None:
            from facenet_tf.faces.cnn_graph import CnnGraphDetector

            self._any_size = CnnGraphDetector(self._cnn, self.upsample)
        return self._any_size


DETECTORS.register("dlib_cnn", Detector(lambda s: CnnFaces(s.upsample), CnnSettings, DLIB_LANDMARKS_ONLY),
                   help="dlib's CNN (MMOD) face detector in Keras (its exact boxes, the image doubled --hog-upsample "
                        "times, or upsample=N of --detector-options); dlib_landmarks only")


class HogCnnThenMtcnn(HogThenMtcnn):
    """dlib's HOG faces, plus the CNN faces HOG does not cover, MTCNN where neither finds one.

    A CNN face is dropped when it overlaps a HOG face by either detector's own non-maximum
    suppression rule (dlib's ``test_box_overlap`` with HOG's and with the CNN's thresholds):
    on ORL and generated photos the two boxes of one face overlap at IoU 0.54 or more, above
    both rules' ~0.34. Scores stay each detector's own (both are a margin above that
    detector's threshold, 0 at it, but on different scales): HOG faces come first (best
    first), then the added CNN faces (best first); the ``confident`` face rule compares them
    as they are.

    A folder is detected in worker processes as for ``dlib_hog`` (HOG's scan holds the GIL);
    each worker builds its own CNN.

    Args:
        upsample: how many times the image is doubled before each scan (dlib-bin's pipelines use 1).
        min_confidence: the MTCNN score of the fallback.
        hog: a :class:`~facenet_tf.faces.hog_detector.HogFaceDetector` (default: the packaged one).
        cnn: a :class:`~facenet_tf.faces.cnn_detector.CnnFaceDetector` (default: the packaged one).
    """

    def __init__(self, upsample: int = 1, min_confidence: float = 0.9, hog=None, cnn=None):
        super().__init__(upsample, min_confidence, hog)
        self._cnn = CnnFaces(upsample, cnn)

    def _covered(self, box, hog_boxes) -> bool:
        from facenet_tf.faces.hog_detector import _overlaps

        rules = ((self._hog.match_thresh, self._hog.overlap_thresh), self._cnn.nms)
        return any(_overlaps(h, box, *rule) for h in hog_boxes for rule in rules)

    def dlib_faces(self, images: Sequence[np.ndarray]) -> List[List[Face]]:
        """HOG's faces, then the CNN faces (batched by image shape) no HOG face covers, per image."""
        found = super().dlib_faces(images)
        for faces, extra in zip(found, self._cnn.detect_many(images)):
            hog_boxes = [face.predictor_box for face in faces]
            faces.extend(face for face in extra if not self._covered(face.predictor_box, hog_boxes))
        return found


DETECTORS.register("dlib_hog_cnn", Detector(lambda s: HogCnnThenMtcnn(s.upsample, s.min_confidence), HogSettings,
                                            DLIB_LANDMARKS_ONLY),
                   help="dlib's HOG faces (its exact boxes), plus the CNN faces HOG misses (dlib's overlap rule), "
                        "MTCNN where neither finds one; dlib_landmarks only")
