"""dlib's HOG frontal face detector in NumPy (facenet_tf.faces.hog_detector) against dlib-bin.

The reference is ``dlib.get_frontal_face_detector().run(image, upsample, adjust_threshold)``:
the same rectangles and filter indices, and scores within :data:`SCORE_TOLERANCE`, on all 400
ORL faces (as dlib-bin's pipeline reads them, grey repeated to RGB), on grey, coloured,
rescaled, rotated and tiny variants, and on noise scanned with a lowered threshold (many
overlapping windows: the sort and the non-max suppression). The pyramid and fHOG features are
dlib's to the last bit (resize compared directly; every fHOG feature of whole pyramids through
a detector of 31 single-cell filters, whose scores are the features themselves); the filter
responses are the same sums as dlib's taken in another order (a float32 matrix product), so
scores are not bit-identical: the largest difference on these images is 2.9e-6 (2026-12-03).
"""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces import fhog
from facenet_tf.faces import hog_detector
from facenet_tf.faces.hog_detector import FILTER_NAMES, HogFaceDetector

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Largest |ours - dlib-bin's| score accepted: float32 sums of ~3100 products in another order.
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def detector():
    return HogFaceDetector.load()


@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")


@pytest.fixture(scope="module")
def reference(dlib):
    return dlib.get_frontal_face_detector()


def _dlib_run(reference, image, upsample, adjust=0.0):
    rects, scores, index = reference.run(image, upsample, adjust)
    boxes = np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], np.int64).reshape(-1, 4)
    return boxes, list(scores), [int(i) for i in index]


def _assert_same(detector, reference, image, upsample=1, adjust=0.0, name=""):
    ours = detector.detect(image, upsample, adjust)
    boxes, scores, index = _dlib_run(reference, image, upsample, adjust)
    assert ours.boxes.tolist() == boxes.tolist(), f"{name}: ours {ours.boxes.tolist()} dlib {boxes.tolist()}"
    np.testing.assert_allclose(ours.scores, np.array(scores, np.float64).reshape(-1), rtol=0, atol=SCORE_TOLERANCE,
                               err_msg=name)
    assert ours.filter_index.tolist() == index, name
    return len(boxes)


def _orl_paths(orl_dir):
    return sorted(glob.glob(os.path.join(orl_dir, "s*", "*.pgm")))


# --------------------------------------------------------------------------- the data file

def test_packaged_detector(detector):
    assert detector.num_filters == len(FILTER_NAMES) == 5
    assert detector.filters.shape == (5, 31, 10, 10) and detector.filters.dtype == np.float64
    assert detector.cell_size == 8 and detector.padding == 0 and detector.min_pyramid_layer == (64, 64)
    assert np.all(detector.thresholds > 0) and 0 < detector.match_thresh < detector.overlap_thresh < 1
    with np.load(os.path.join(REPO, "facenet_tf", "faces", "frontal_face_detector.npz")) as data:
        notice = str(data["notice"])
    assert "Boost Software License" in notice and "Davis E. King" in notice


def test_extracted_file_equals_dlib_bin(dlib, tmp_path):
    """tools/extract_frontal_face_detector.py run again gives the shipped numbers."""
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        import extract_frontal_face_detector as extract
    finally:
        sys.path.pop(0)
    path = str(tmp_path / "d.svm")
    dlib.get_frontal_face_detector().save(path)
    with open(path, "rb") as handle:
        found = extract.parse(handle.read())
    shipped = HogFaceDetector.load()
    np.testing.assert_array_equal(found["weights"].reshape(shipped.filters.shape), shipped.filters)
    np.testing.assert_array_equal(found["thresholds"], shipped.thresholds)
    assert (found["match_thresh"], found["overlap_thresh"]) == (shipped.match_thresh, shipped.overlap_thresh)


# --------------------------------------------------------------------------- the pieces, by definition

def _responses_by_definition(filters, feats):
    """``score[d, i, j] = Σ_{p, dy, dx} filters[d, p, dy, dx] · feats[p, i + dy, j + dx]``, in
    float64, one window at a time."""
    num, _, rows, cols = filters.shape
    out = np.zeros((num, feats.shape[1] - rows + 1, feats.shape[2] - cols + 1))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            window = feats[:, i:i + rows, j:j + cols].astype(np.float64)
            out[:, i, j] = np.einsum("dpyx,pyx->d", filters, window)
    return out


def test_responses_equal_the_definition(detector):
    """Every filter over random features, against a loop over windows in float64; too small → None."""
    rng = np.random.default_rng(0)
    dense = hog_detector._effective_filters(detector.filters)
    for shape in ((31, 10, 10), (31, 23, 37), (31, 41, 12)):
        feats = rng.uniform(0, 0.4, shape).astype(np.float32)  # fHOG's range: clipped at 0.2, sums of 4
        got = detector._responses(feats)
        assert all(g.dtype == np.float32 and g.shape == (shape[1] - 9, shape[2] - 9) for g in got)
        np.testing.assert_allclose(np.stack(got), _responses_by_definition(dense, feats), rtol=0, atol=1e-5,
                                   err_msg=str(shape))
    assert detector._responses(np.zeros((31, 9, 30), np.float32)) == [None] * 5


def test_effective_filters_drop_only_dlibs_small_singular_values(detector):
    """dlib's separable parts summed give the filters back, up to the singular values dlib drops."""
    dense = hog_detector._effective_filters(detector.filters)
    gap = np.abs(dense - detector.filters).max(axis=(2, 3))
    largest = np.linalg.svd(detector.filters, compute_uv=False)[..., 0]
    assert np.all(gap <= np.maximum(1e-4, 1e-3 * largest))
    assert gap.max() > 0  # some parts are dropped: the reconstruction is not the raw filter


def test_bands_do_not_change_responses(detector, monkeypatch):
    """The score images are the same whatever the band of rows (one row, a few, whole images)."""
    rng = np.random.default_rng(6)
    feats = fhog.extract_fhog_features(rng.integers(0, 256, (180, 150, 3), dtype=np.uint8), 8, 10, 10)
    monkeypatch.setattr(hog_detector, "_BAND_CELLS", 1 << 30)
    whole = np.stack(detector._responses(feats))  # one band
    assert whole.shape[1] > 3 and np.abs(whole).sum() > 0
    monkeypatch.setattr(hog_detector, "_BAND_CELLS", 1)
    for rows in (1, 3):
        monkeypatch.setattr(hog_detector, "_MIN_BAND_ROWS", rows)
        np.testing.assert_allclose(np.stack(detector._responses(feats)), whole, rtol=0, atol=1e-6)


def test_resize_equals_dlib(dlib):
    rng = np.random.default_rng(1)
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(2, 90, 2))
        rows, cols = (int(v) for v in rng.integers(1, 200, 2))
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        np.testing.assert_array_equal(fhog.resize_bilinear(grey, rows, cols), dlib.resize_image(grey, rows, cols))
        np.testing.assert_array_equal(fhog.resize_bilinear(rgb, rows, cols), dlib.resize_image(rgb, rows, cols))


def _serialised(value: int) -> bytes:
    """dlib's serialised integer (``serialize.h``): control byte (0x80 negative | byte count), magnitude."""
    magnitude = abs(int(value))
    digits = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(digits) | (0x80 if value < 0 else 0)]) + digits


def _serialised_double(value: float) -> bytes:
    """A double as dlib reads it: integers mantissa and exponent, value = mantissa · 2**exponent."""
    mantissa, exponent = np.frexp(np.float64(value))
    return _serialised(int(np.ldexp(mantissa, 53))) + _serialised(int(exponent) - 53)


def _detector_file(path, dlib, filters, thresholds, match_thresh, overlap_thresh) -> str:
    """A dlib ``fhog_object_detector`` file with the frontal face detector's settings and these
    filters (the layout ``tools/extract_frontal_face_detector.py`` reads)."""
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        import extract_frontal_face_detector as extract
    finally:
        sys.path.pop(0)
    dlib.get_frontal_face_detector().save(str(path))
    with open(path, "rb") as handle:
        settings = extract.parse(handle.read())
    out = b"".join(_serialised(v) for v in (2, 1, 0, 0))
    for key in ("cell_size", "padding", "window_width", "window_height", "max_pyramid_levels",
                "min_pyramid_layer_width", "min_pyramid_layer_height"):
        out += _serialised(settings[key])
    out += _serialised_double(0.0) + _serialised(filters[0].size)
    out += _serialised_double(match_thresh) + _serialised_double(overlap_thresh) + _serialised(len(filters))
    for weights, threshold in zip(filters, thresholds):
        out += _serialised(-(weights.size + 1)) + _serialised(-1)
        out += b"".join(_serialised_double(v) for v in weights.reshape(-1)) + _serialised_double(threshold)
    with open(path, "wb") as handle:
        handle.write(out)
    return str(path)


def test_fhog_pyramid_equals_dlibs_bit_for_bit(dlib, tmp_path, orl_dir):
    """Every fHOG feature of every pyramid level against dlib-bin's, to the last bit: 31 filters
    each reading one plane at one cell (weight 1: dlib's and our filter sums are then exact),
    threshold 0, no non-max suppression (overlap thresholds 1), so every window's score is a
    feature value. Scores of real filters are compared to 1e-5 only, this keeps fHOG exact."""
    from PIL import Image

    filters = np.zeros((31, 31, 10, 10))
    for plane in range(31):
        filters[plane, plane, 4, 4] = 1.0  # cell (4, 4): with padding 4, every cell of the image
    reference = dlib.fhog_object_detector(_detector_file(tmp_path / "probe.svm", dlib, filters, np.zeros(31), 1, 1))
    ours = HogFaceDetector(filters, np.zeros(31), 1.0, 1.0)
    face = np.asarray(Image.open(os.path.join(orl_dir, "s7", "3.pgm")).convert("L"))
    rng = np.random.default_rng(7)
    for name, image, upsample in (("grey", face, 0), ("colour", np.stack([face, face[::-1], face[:, ::-1]], 2), 0),
                                  ("noise", rng.integers(0, 256, (50, 60, 3), dtype=np.uint8), 1)):
        rects, scores, index = reference.run(image, upsample, -1.0)
        planes = fhog.to_planes(image)
        for _ in range(upsample):
            planes = fhog.pyramid_up_planes(planes)
        found, planes_of, boxes = ours._scan(planes, -1.0)  # every window: no suppression to run
        boxes = boxes.astype(np.float64)
        for _ in range(upsample):
            boxes = boxes / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
        want = sorted(zip([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], scores, index))
        got = sorted(zip(map(tuple, hog_detector._round(boxes).tolist()), found.tolist(), planes_of.tolist()))
        assert len(want) > 1000 and sum(score > 0 for _, score, _ in want) > 1000, name
        assert got == want, name


def test_fhog_shapes():
    image = np.zeros((64, 48), np.uint8)
    image[20:40, 10:30] = 200
    feats = fhog.extract_fhog_features(image, 8, 10, 10)
    assert feats.shape == (31, 6 + 9, 4 + 9) and feats.dtype == np.float32  # 8×6 cells, border cells dropped
    assert not feats[:, :4].any() and not feats[:, -5:].any() and not feats[:, :, :4].any() and feats.any()
    assert fhog.extract_fhog_features(np.zeros((16, 40), np.uint8)).shape == (31, 0, 0)  # under 3 cells a side
    assert fhog.extract_fhog_features(np.zeros((20, 20), np.uint8)).shape == (31, 1, 1)  # 3 cells: one inside


# --------------------------------------------------------------------------- against dlib-bin

def test_all_orl_faces_equal_dlib(detector, reference, orl_dir):
    """All 400 ORL images as dlib-bin's pipeline reads them (grey repeated to RGB), upsampled once."""
    from PIL import Image

    paths = _orl_paths(orl_dir)
    assert len(paths) == 400
    found = 0
    for path in paths:
        grey = np.asarray(Image.open(path).convert("L"))
        found += _assert_same(detector, reference, np.repeat(grey[:, :, None], 3, axis=2), name=path) > 0
    assert found >= 380  # dlib finds a face in 388 of them: the boxes compared are real faces


def test_orl_variants_equal_dlib(detector, reference, orl_dir):
    """Grey (dlib's other code path), coloured, rescaled, rotated; a lowered threshold for more boxes."""
    from PIL import Image

    rng = np.random.default_rng(2)
    compared = 0
    for k, path in enumerate(_orl_paths(orl_dir)[::20]):
        grey_image = Image.open(path).convert("L")
        grey = np.asarray(grey_image)
        g = grey.astype(np.int32)
        variants = {
            "grey": grey,
            "colour": np.stack([g, g * 3 // 4, np.minimum(255, g * 5 // 4 + 7)], axis=2).astype(np.uint8),
            "noisy colour": np.clip(np.stack([g + rng.integers(-30, 30, g.shape), g,
                                              g + rng.integers(-30, 30, g.shape)], axis=2), 0, 255).astype(np.uint8),
            ["x1.7", "x0.6", "rot15"][k % 3]: np.asarray(
                [grey_image.resize((156, 190), Image.Resampling.BILINEAR),
                 grey_image.resize((55, 67), Image.Resampling.BILINEAR),
                 grey_image.rotate(15, resample=Image.Resampling.BILINEAR)][k % 3]),
        }
        for name, image in variants.items():
            compared += _assert_same(detector, reference, image, 1, -0.4 if k % 2 else 0.0, f"{path} {name}")
    assert compared >= 60


def test_upsample_and_sizes_equal_dlib(detector, reference, orl_dir):
    from PIL import Image

    grey = Image.open(os.path.join(orl_dir, "s7", "3.pgm")).convert("L")
    face = np.asarray(grey)
    _assert_same(detector, reference, face, upsample=0, name="upsample 0")
    _assert_same(detector, reference, np.asarray(grey.resize((46, 56))), upsample=2, name="upsample 2")
    _assert_same(detector, reference, np.asarray(grey.resize((300, 260))), upsample=0, adjust=-0.5, name="big")
    for shape in ((1, 1), (9, 13), (30, 17), (33, 200)):  # tiny and thin: no features, or a few cells
        _assert_same(detector, reference, np.full(shape, 128, np.uint8), upsample=1, name=str(shape))
    odd = np.zeros((97, 131, 3), np.uint8)
    odd[:, :, 1] = face[:97, :92].mean(axis=1, keepdims=True).astype(np.uint8)
    _assert_same(detector, reference, odd, upsample=1, adjust=-1.0, name="odd")


def test_several_faces_on_a_landscape_canvas_equal_dlib(detector, reference, orl_dir):
    """Six tinted ORL faces pasted on a 300×420 canvas: every face, in dlib's order."""
    from PIL import Image

    rng = np.random.default_rng(5)
    canvas = np.full((300, 420, 3), 90, np.uint8)
    for k, path in enumerate(_orl_paths(orl_dir)[5::67][:6]):
        face = np.asarray(Image.open(path).convert("L"))[:, :, None] * np.array([1.0, 0.9, 0.8])
        row, col = divmod(k, 3)
        y, x = 20 + 140 * row + int(rng.integers(0, 15)), 15 + 135 * col + int(rng.integers(0, 25))
        canvas[y:y + 112, x:x + 92] = face.astype(np.uint8)
    assert _assert_same(detector, reference, canvas, upsample=1, name="canvas") >= 5


def test_noise_with_a_low_threshold_equals_dlib(detector, reference):
    """Hundreds of overlapping windows from all five filters: the sort and non-max suppression."""
    rng = np.random.default_rng(3)
    total = 0
    for shape in ((70, 90), (64, 64, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        total += _assert_same(detector, reference, image, upsample=1, adjust=-2.5, name=f"noise {shape}")
    assert total >= 10


# --------------------------------------------------------------------------- errors and independence

def test_bad_input_is_one_line_error(detector, tmp_path):
    for bad in (np.zeros((20, 20), np.float32), np.zeros((20, 20, 4), np.uint8), np.zeros((0, 5), np.uint8), "x"):
        with pytest.raises(FacenetError, match="image") as info:
            detector.detect(bad)
        assert "\n" not in str(info.value)
    image = np.zeros((20, 20), np.uint8)
    for bad in (-1, 5, 1.5, True, "1"):
        with pytest.raises(FacenetError, match="upsample"):
            detector.detect(image, upsample=bad)
    for bad in (float("nan"), float("inf"), "low", None):
        with pytest.raises(FacenetError, match="adjust_threshold"):
            detector.detect(image, adjust_threshold=bad)
    assert detector.detect(image[:, :, None]).boxes.shape == (0, 4)  # [H, W, 1] is grey
    with pytest.raises(FacenetError, match="nothing is downloaded"):
        HogFaceDetector.load(str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FacenetError, match="cannot read"):
        HogFaceDetector.load(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "partial.npz", filters=np.zeros((5, 31, 10, 10)))
    with pytest.raises(FacenetError, match="no thresholds"):
        HogFaceDetector.load(str(tmp_path / "partial.npz"))
    with np.load(os.path.join(REPO, "facenet_tf", "faces", "frontal_face_detector.npz")) as data:
        fields = {key: data[key] for key in data.files}
    fields["filters"] = fields["filters"][:, :30]
    np.savez(tmp_path / "planes.npz", **fields)
    with pytest.raises(FacenetError, match=r"\[D, 31, rows, cols\]"):
        HogFaceDetector.load(str(tmp_path / "planes.npz"))


def test_detect_never_imports_dlib():
    code = ("import sys, numpy as np; from facenet_tf.faces.hog_detector import HogFaceDetector; "
            "HogFaceDetector.load().detect(np.zeros((40, 40, 3), np.uint8)); "
            "assert 'dlib' not in sys.modules, 'dlib imported'")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)
