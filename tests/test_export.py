"""Export: SavedModel signatures in a fresh process, TFLite through LiteRT, atomicity under SIGKILL.

One small model (small_cnn, 32x32, 16-d) is written as a training run would leave it and
exported once with every TFLite variant (module fixture); the tests read that export.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZE = (32, 32)
DIM = 16

# Run in a fresh interpreter: what a serving client sees, with nothing of facenet_tf imported.
FRESH_CHECK = r"""
import json, sys
import numpy as np, tensorflow as tf
path, photo_file, exact_file = sys.argv[1:4]
loaded = tf.saved_model.load(path)
out = {"signatures": {}}
for key, fn in loaded.signatures.items():
    inputs = fn.structured_input_signature[1]
    out["signatures"][key] = {
        "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
        "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in fn.structured_outputs.items()},
    }
pixels_fn, bytes_fn = loaded.signatures["serving_default"], loaded.signatures["embed_encoded"]
size = pixels_fn.structured_input_signature[1]["images"].shape[1:3]
photo, exact = np.load(photo_file), np.load(exact_file)

def client_pixels(data):  # the documented preprocessing, written with plain TF ops
    image = tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
    return tf.clip_by_value(tf.image.resize(image, size, method="bilinear", antialias=True), 0.0, 255.0)

cases = {
    "png_exact": (tf.io.encode_png(exact), tf.constant(exact, tf.float32)),
    "png": (tf.io.encode_png(photo), None),
    "jpeg": (tf.io.encode_jpeg(photo, quality=90), None),
    "png_grey": (tf.io.encode_png(photo[..., :1]), None),
}
diffs, norms, batch = {}, [], []
for name, (data, pixels) in cases.items():
    pixels = client_pixels(data) if pixels is None else pixels
    want = pixels_fn(images=pixels[None])["embeddings"].numpy()
    got = bytes_fn(image_bytes=tf.reshape(data, [1]))["embeddings"].numpy()
    diffs[name] = float(np.abs(got - want).max())
    norms.append(np.linalg.norm(got, axis=1))
    batch.append(got[0])
mixed = bytes_fn(image_bytes=tf.stack([data for data, _ in cases.values()]))["embeddings"].numpy()
out["diffs"] = diffs
out["batch_vs_single"] = float(np.abs(mixed - np.stack(batch)).max())
out["max_norm_error"] = float(np.abs(np.concatenate(norms) - 1).max())
x = tf.constant(np.stack([exact, exact[:, ::-1]]), tf.float32)  # TTA: mean of image and mirror, unit norm
mean = (pixels_fn(images=x)["embeddings"].numpy() + pixels_fn(images=x[:, :, ::-1])["embeddings"].numpy()) / 2
flip = loaded.signatures["embed_flip"](images=x)["embeddings"].numpy()
out["flip_diff"] = float(np.abs(flip - mean / np.linalg.norm(mean, axis=1, keepdims=True)).max())
out["flip_mirror_diff"] = float(np.abs(flip[0] - flip[1]).max())
print("RESULT " + json.dumps(out))
"""


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(run_dir, export_dir, keras_model)``: a model as training leaves it, exported with all variants."""
    pytest.importorskip("ai_edge_litert", reason="TFLite export is verified with ai-edge-litert (extra [tflite])")
    from facenet_tf.artifacts import fingerprint_weights
    from facenet_tf.cli import main
    from facenet_tf.models import ModelConfig, build_embedding_model
    from facenet_tf.models.contract import ModelContract, Provenance, Thresholds
    from facenet_tf.models.writer import write_model_directory

    model = build_embedding_model(ModelConfig(image_size=SIZE, embedding_dim=DIM))
    root = tmp_path_factory.mktemp("export")
    run_dir = str(root / "run")
    contract = ModelContract(architecture="small_cnn", image_size=SIZE, embedding_dim=DIM,
                             fingerprint=fingerprint_weights(model.get_weights()),
                             thresholds=Thresholds(best_accuracy=0.8, at_far=0.6, far=1e-3),
                             provenance=Provenance(training_data="test"))
    write_model_directory(model, run_dir, contract, {})
    export_dir = str(root / "export")
    assert main(["export", "--model", run_dir, "--output", export_dir, "--tflite", "all"]) == 0
    return run_dir, export_dir, model


def _photo(size, seed):
    from facenet_tf.data import synthetic_identities

    images, _ = synthetic_identities(1, 1, size, seed=seed)
    return images[0]


def test_layout_metadata_and_report(exported):
    run_dir, export_dir, _ = exported
    with open(os.path.join(run_dir, "metadata.json")) as f:
        training_metadata = json.load(f)
    with open(os.path.join(export_dir, "assets", "metadata.json")) as f:
        assert json.load(f) == training_metadata
    with open(os.path.join(export_dir, "export.json")) as f:
        report = json.load(f)
    names = [c["name"] for c in report["checks"]]
    assert names == ["saved_model:serving_default", "saved_model:embed_encoded (PNG)", "saved_model:embed_flip (TTA)",
                     "tflite:float32", "tflite:float16", "tflite:dynamic", "tflite:int8"]
    assert all(c["passed"] for c in report["checks"])
    assert sorted(os.listdir(os.path.join(export_dir, "tflite"))) == [
        "dynamic.tflite", "float16.tflite", "float32.tflite", "int8.tflite"]
    assert not glob.glob(os.path.join(os.path.dirname(export_dir), ".export.tmp-*"))


def test_signatures_and_encoded_bytes_in_fresh_process(exported, tmp_path):
    _, export_dir, _ = exported
    photo, exact = str(tmp_path / "photo.npy"), str(tmp_path / "exact.npy")
    np.save(photo, _photo((80, 60), seed=5))  # another size: embed_encoded must resize it
    np.save(exact, _photo(SIZE, seed=6))
    proc = subprocess.run([sys.executable, "-c", FRESH_CHECK, export_dir, photo, exact], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["signatures"]["serving_default"] == {
        "inputs": {"images": ["float32", [None, *SIZE, 3]]}, "outputs": {"embeddings": ["float32", [None, DIM]]}}
    assert result["signatures"]["embed_encoded"] == {
        "inputs": {"image_bytes": ["string", [None]]}, "outputs": {"embeddings": ["float32", [None, DIM]]}}
    for case, diff in result["diffs"].items():
        assert diff <= 1e-4, (case, diff)
    assert result["batch_vs_single"] <= 1e-4
    assert result["max_norm_error"] <= 1e-4
    assert result["signatures"]["embed_flip"] == result["signatures"]["serving_default"]
    assert result["flip_diff"] <= 1e-5 and result["flip_mirror_diff"] <= 1e-5


def test_saved_model_cli_show_all_parses(exported):
    _, export_dir, _ = exported
    proc = subprocess.run(["saved_model_cli", "show", "--all", "--dir", export_dir], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    pixels = text.split("signature_def['serving_default']:")[1]
    encoded = text.split("signature_def['embed_encoded']:")[1].split("signature_def[")[0]
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 32, 32, 3)" in pixels
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in encoded
    for sig in (pixels, encoded):
        assert f"outputs['embeddings'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, {DIM})" in sig


@pytest.mark.parametrize("variant,min_cosine", [("float32", 0.99999), ("float16", 0.999), ("dynamic", 0.99), ("int8", 0.99)])
def test_tflite_variant_through_litert(exported, variant, min_cosine):
    from ai_edge_litert.interpreter import Interpreter

    from facenet_tf.data import synthetic_identities

    _, export_dir, model = exported

    images, _ = synthetic_identities(3, 2, SIZE, seed=11)  # not the export's check batch
    pixels = images.astype(np.float32)
    interpreter = Interpreter(model_path=os.path.join(export_dir, "tflite", f"{variant}.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()["images"]
    assert details["dtype"] == np.float32 and list(details["shape_signature"]) == [-1, *SIZE, 3]
    got = runner(images=pixels)["embeddings"]
    want = model(pixels, training=False).numpy()
    cosine = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert got.shape == (len(pixels), DIM) and got.dtype == np.float32
    assert cosine.min() >= min_cosine, cosine.min()


def test_sigkill_midway_leaves_previous_export(exported, tmp_path):
    import tensorflow as tf

    _, export_dir, model = exported
    target = str(tmp_path / "served")
    shutil.copytree(export_dir, target)
    with open(os.path.join(target, "export.json")) as f:
        before = f.read()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "pipelines", "export.py"), "--model", exported[0],
                             "--output", target, "--tflite", "float32", "float16"],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        # Kill once the new SavedModel is on disk, i.e. while the TFLite files are being made.
        while not glob.glob(os.path.join(str(tmp_path), ".served.tmp-*", "saved_model.pb")):
            assert proc.poll() is None, "export ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with open(os.path.join(target, "export.json")) as f:
        assert f.read() == before
    loaded = tf.saved_model.load(target)
    pixels = _photo(SIZE, seed=7)[None].astype(np.float32)
    got = loaded.signatures["serving_default"](images=tf.constant(pixels))["embeddings"].numpy()
    np.testing.assert_allclose(got, model(pixels, training=False).numpy(), atol=1e-5)


def test_failed_check_exits_2_and_keeps_previous_export(exported, tmp_path, capsys):
    from facenet_tf.cli import main

    run_dir, export_dir, _ = exported
    target = str(tmp_path / "served")
    shutil.copytree(export_dir, target)
    before = sorted(os.listdir(target))
    # No 8-bit model reproduces float embeddings exactly: a tolerance of 1.0 must fail.
    assert main(["export", "--model", run_dir, "--output", target, "--tflite", "dynamic", "--int8-min-cosine", "1.0"]) == 2
    err = capsys.readouterr().err
    assert "verification failed" in err and "tflite:dynamic" in err
    assert sorted(os.listdir(target)) == before and os.listdir(os.path.join(target, "tflite"))
    assert os.listdir(str(tmp_path)) == ["served"]  # no temporary sibling left behind


def test_missing_litert_names_the_extra(exported, tmp_path, capsys, monkeypatch):
    from facenet_tf.cli import main

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert main(["export", "--model", exported[0], "--output", str(tmp_path / "o"), "--tflite", "float16"]) == 2
    assert "facenet_tf[tflite]" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "o"))


def test_user_errors_are_one_line_exit_2(exported, tmp_path, capsys):
    from facenet_tf.cli import main

    run_dir, export_dir, _ = exported
    cases = [
        (["--model", str(tmp_path / "missing"), "--output", str(tmp_path / "o")], "model.keras"),
        (["--model", run_dir, "--output", run_dir], "would replace the model"),
        (["--model", run_dir, "--output", str(tmp_path / "o"), "--tflite", "int4"], "tflite must be one of"),
        (["--model", run_dir, "--output", str(tmp_path / "o"), "--int8-min-cosine", "1.5"], "int8_min_cosine"),
        (["--model", run_dir, "--output", os.path.dirname(run_dir)], "would replace the model"),
    ]
    for args, message in cases:
        assert main(["export", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    stale = str(tmp_path / "stale")
    shutil.copytree(run_dir, stale)
    with open(os.path.join(stale, "metadata.json")) as f:
        meta = json.load(f)
    with open(os.path.join(stale, "metadata.json"), "w") as f:
        json.dump({**meta, "fingerprint": "0" * 16}, f)
    assert main(["export", "--model", stale, "--output", str(tmp_path / "o")]) == 2
    assert "belong to other weights" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "o"))
