"""MTCNN detection (faces/detection.py): the graph-compiled, batched driver finds exactly what the
``mtcnn`` package's own ``detect_faces`` finds, one image at a time."""

import os

import numpy as np
import pytest
from PIL import Image

from facenet_tf.faces.detection import MTCNN_KEYPOINTS, MtcnnDetector

MIN_CONFIDENCE = 0.9


@pytest.fixture(scope="module")
def detectors():
    mtcnn = pytest.importorskip("mtcnn", reason="the optional mtcnn package is not installed")
    return MtcnnDetector(MIN_CONFIDENCE), mtcnn.MTCNN()


def _package_faces(reference, image):
    """``detect_faces`` as the package reports it, filtered as the detector filters."""
    found = [f for f in reference.detect_faces(image) if f["confidence"] >= MIN_CONFIDENCE]
    return [(tuple(f["box"]), f["confidence"], np.array([f["keypoints"][k] for k in MTCNN_KEYPOINTS], float))
            for f in found]


def _orl(orl_dir, person, index):
    return np.asarray(Image.open(os.path.join(orl_dir, person, f"{index}.pgm")).convert("RGB"))


def _two_faces(orl_dir):
    """A 200x300 noisy canvas holding two ORL faces (one enlarged)."""
    rng = np.random.default_rng(0)
    canvas = np.clip(rng.normal(120, 15, (200, 300, 3)), 0, 255).astype(np.uint8)
    canvas[20:132, 10:102] = _orl(orl_dir, "s5", 3)
    canvas[30:170, 150:265] = np.asarray(Image.fromarray(_orl(orl_dir, "s9", 2)).resize((115, 140)))
    return canvas


def _assert_same(ours, package):
    assert len(ours) == len(package)
    for face, (box, confidence, landmarks) in zip(ours, package):
        np.testing.assert_allclose(face.box, box, atol=1.0)
        np.testing.assert_allclose(face.landmarks, landmarks, atol=1.0)
        assert abs(face.confidence - confidence) < 1e-4


def test_single_images_match_the_package(detectors, orl_dir):
    detector, reference = detectors
    images = [_orl(orl_dir, p, i) for p, i in (("s1", 1), ("s12", 4), ("s33", 7), ("s40", 10))]
    images += [_two_faces(orl_dir), np.full((112, 92, 3), 128, np.uint8)]
    exact = 0
    for image in images:
        ours, package = detector.detect(image), _package_faces(reference, image)
        _assert_same(ours, package)
        exact += all(f.box == p[0] and np.array_equal(f.landmarks, p[2]) for f, p in zip(ours, package))
    assert len(detector.detect(images[4])) == 2
    assert detector.detect(images[5]) == []
    assert exact >= len(images) - 1  # whole pixels alike (a float32 rounding may move one by a pixel)


def test_mixed_shapes_are_grouped_and_keep_their_order(detectors, orl_dir):
    detector, reference = detectors
    images = [_orl(orl_dir, "s2", 1), _two_faces(orl_dir), np.full((112, 92, 3), 128, np.uint8),
              _orl(orl_dir, "s20", 5), np.full((60, 80, 3), 90, np.uint8), _orl(orl_dir, "s31", 2)]
    batched = detector.detect_many(images)
    assert [len(f) for f in batched] == [1, 2, 0, 1, 0, 1]
    for image, faces in zip(images, batched):
        _assert_same(faces, _package_faces(reference, image))
    assert detector.detect_many([]) == []


def test_more_images_of_one_shape_than_a_batch(detectors, orl_dir):
    from facenet_tf.faces import detection

    detector, _ = detectors
    images = [_orl(orl_dir, f"s{p}", 1) for p in range(1, detection.MAX_BATCH + 4)]
    batched = detector.detect_many(images)
    assert len(batched) == len(images) and all(len(f) == 1 for f in batched)
    for image, faces in zip(images[-3:], batched[-3:]):
        _assert_same(faces, [(f.box, f.confidence, f.landmarks) for f in detector.detect(image)])


def test_a_grey_or_odd_array_is_one_clear_error(detectors):
    from facenet_tf.errors import FacenetError

    detector, _ = detectors
    with pytest.raises(FacenetError, match=r"RGB images \[H, W, 3\]"):
        detector.detect(np.zeros((50, 40), np.uint8))
