"""Issue 16: resume after a kill, no non-finite weights written, bit-identical runs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = [sys.executable, os.path.join(REPO, "pipelines", "train.py"), "--synthetic-identities", "16",
         "--synthetic-images-per-identity", "4", "--identities-per-batch", "4", "--images-per-identity", "2",
         "--image-size", "32", "--embedding-dim", "8", "--validation-identities", "0", "--steps-per-epoch", "4",
         "--epochs", "4", "--verbose", "0", "--deterministic", "--json"]


def _weights(output_dir):
    from facenet_tf.models.loader import read_keras_file

    return read_keras_file(os.path.join(output_dir, "model.keras")).get_weights()


def test_killed_run_resumes_where_it_stopped_and_matches_an_uninterrupted_one(tmp_path):
    killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
    child = subprocess.Popen([*TRAIN, "--output-dir", killed], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = os.path.join(killed, "run_state.json")
    deadline = time.time() + 300
    try:
        while time.time() < deadline and child.poll() is None:
            if os.path.isfile(state) and json.load(open(state)).get("epoch", 0) >= 1:
                break
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    epoch = json.load(open(state))["epoch"]
    assert child.returncode == -signal.SIGKILL and 1 <= epoch < 4, (child.returncode, epoch)
    assert not os.path.exists(os.path.join(killed, "model.keras"))

    again = subprocess.run([*TRAIN, "--output-dir", killed], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from epoch {epoch}, step {epoch * 4}" in again.stderr
    metrics = json.loads(again.stdout.strip().splitlines()[-1])
    assert metrics["resumed_from_epoch"] == epoch
    assert sorted(os.listdir(os.path.join(killed, "checkpoints"))) == [f"epoch_00{i}.weights.h5" for i in range(1, 5)]
    finished = subprocess.run([*TRAIN, "--output-dir", killed], capture_output=True, text=True)
    assert finished.returncode == 0 and "already finished" in finished.stdout

    subprocess.run([*TRAIN, "--output-dir", straight], capture_output=True, text=True, check=True)
    for a, b in zip(_weights(killed), _weights(straight)):
        np.testing.assert_array_equal(a, b)  # documented: bit-identical with --deterministic on CPU

    # the whole run's history survives the kill: metrics.json lists every epoch ...
    resumed, whole = (json.load(open(os.path.join(d, "metrics.json"))) for d in (killed, straight))
    assert len(resumed["epoch_losses"]) == len(whole["epoch_losses"]) == 4
    np.testing.assert_allclose(resumed["epoch_losses"], whole["epoch_losses"], rtol=0, atol=1e-6)
    assert resumed["final_loss"] == resumed["epoch_losses"][-1]
    # ... and TensorBoard holds one run: each epoch and batch step once, on one step axis
    events, straight_events = (_scalar_events(os.path.join(d, "logs")) for d in (killed, straight))
    assert sorted(step for (run, tag, step) in events if tag == "epoch_loss") == [0, 1, 2, 3]
    assert sorted(step for (run, tag, step) in events if tag == "batch_loss") == list(range(1, 17))
    assert sorted(events) == sorted(straight_events)
    for key, value in events.items():
        assert value == pytest.approx(straight_events[key], abs=1e-6), key


def _scalar_events(log_dir):
    """``{(run folder, tag, step): value}`` of every scalar in the event files under ``log_dir``;
    a (folder, tag, step) logged twice fails."""
    import tensorflow as tf

    found = {}
    for folder, _, files in os.walk(log_dir):
        for name in (f for f in files if ".tfevents." in f):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
                for value in event.summary.value:
                    key = (os.path.relpath(folder, log_dir), value.tag, event.step)
                    assert key not in found, f"{key} logged twice"
                    found[key] = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
    return found


def test_two_deterministic_runs_are_bit_identical(tmp_path):
    for name in ("a", "b"):
        subprocess.run([*TRAIN, "--epochs", "2", "--output-dir", str(tmp_path / name)], capture_output=True,
                       text=True, check=True)
    for a, b in zip(_weights(str(tmp_path / "a")), _weights(str(tmp_path / "b"))):
        np.testing.assert_array_equal(a, b)


def test_huge_learning_rate_is_one_line_and_writes_nothing(tmp_path):
    out = str(tmp_path / "nan")
    proc = subprocess.run([*TRAIN, "--learning-rate", "1e30", "--output-dir", out], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = [line for line in proc.stderr.strip().splitlines() if line.startswith("facenet-tf")]
    # A learning rate no run can use is refused before any file is created (issue 20); a run that
    # diverges at a usable rate is test_injected_nan_keeps_the_last_good_checkpoint.
    assert len(err) == 1 and "learning_rate" in err[0] and "Traceback" not in proc.stderr, err
    assert not os.path.exists(out)


def _assert_checkpoints_finite(out):
    import h5py

    folder = os.path.join(out, "checkpoints")
    arrays = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        with h5py.File(os.path.join(folder, name)) as f:
            f.visititems(lambda _, node: arrays.append(node[()]) if isinstance(node, h5py.Dataset) else None)
    assert all(np.isfinite(a).all() for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating))


def test_injected_nan_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import dataclasses

    import tensorflow as tf

    from facenet_tf.data import DataConfig
    from facenet_tf.errors import FacenetError
    from facenet_tf.models import ModelConfig
    from facenet_tf.training import TrainConfig, TripletTrainer, train

    original = TripletTrainer.train_step

    def poisoned(self, data):
        logs = original(self, data)
        bad = self.optimizer.iterations > 3  # the first step of epoch 2
        weight = self.embedder.trainable_variables[0]
        weight.assign(tf.where(bad, tf.fill(tf.shape(weight), float("nan")), weight))
        logs["step_loss"] = tf.where(bad, float("nan"), logs["step_loss"])
        return logs

    monkeypatch.setattr(TripletTrainer, "train_step", poisoned)
    out = str(tmp_path / "run")
    config = TrainConfig(data=DataConfig(synthetic_identities=12, synthetic_images_per_identity=4, identities_per_batch=4,
                                         images_per_identity=2, validation_identities=0, augment=None),
                         model=ModelConfig(image_size=(32, 32), embedding_dim=8), epochs=3, steps_per_epoch=3,
                         output_dir=out)
    with pytest.raises(FacenetError, match=r"diverged: the loss became nan at epoch 2, step 1.*epoch_001"):
        train(config, verbose=0)
    assert os.listdir(os.path.join(out, "checkpoints")) == ["epoch_001.weights.h5"]
    _assert_checkpoints_finite(out)
    assert not os.path.exists(os.path.join(out, "model.keras"))
    # the backup is the last good epoch: the same command resumes from it
    assert json.load(open(os.path.join(out, "run_state.json")))["epoch"] == 1
    assert dataclasses.replace(config) == config


KILL_DURING_PUBLISH = """
import os, sys, numpy as np
sys.path.insert(0, sys.argv[3])
import keras
from facenet_tf.models.writer import write_model_directory
model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
model.set_weights([np.full(w.shape, float(sys.argv[2]), np.float32) for w in model.get_weights()])
kill_after = int(sys.argv[4])
if kill_after >= 0:
    real = os.replace
    calls = []
    def replace(a, b):
        real(a, b)
        if "model-staging" in a:  # the publication's own moves (not the ownership record's)
            calls.append(b)
            if len(calls) > kill_after:
                os.kill(os.getpid(), 9)
    os.replace = replace
from facenet_tf.models.contract import minimal
write_model_directory(model, sys.argv[1], minimal("t", (4, 4), 3, "v" + sys.argv[2]), {"m": 1})
"""


@pytest.mark.parametrize("kill_after", [0, 1])
def test_kill_during_final_write_leaves_the_old_or_the_new_model(tmp_path, kill_after):
    from facenet_tf.models.loader import load_keras

    out = str(tmp_path / "model")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", KILL_DURING_PUBLISH, out, "1", REPO, "-1"], check=True, env=env)
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_PUBLISH, out, "2", REPO, str(kill_after)], env=env)
    assert proc.returncode == -signal.SIGKILL
    model, artifact = load_keras(out)  # a reader finishes the interrupted publication first
    version = float(artifact.contract.fingerprint[1:])
    assert version in (1.0, 2.0)
    assert all(np.all(w == version) for w in model.get_weights()), "model.keras and metadata.json from one write"
    assert not [f for f in os.listdir(out) if f.startswith(".") and f != ".facenet_tf-owner.json"]


# --- Issue 20: environment faults are one line naming the path and the cause ----------------------

from conftest import CLI, cli_without_dac_override  # noqa: E402  (tests/ is on sys.path)
SMALL_TRAIN = ["train", "--identities-per-batch", "4", "--images-per-identity", "2", "--image-size", "32",
               "--embedding-dim", "8", "--validation-identities", "0", "--steps-per-epoch", "2", "--epochs", "1",
               "--verbose", "0"]


def _one_line(proc, *words):
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("facenet-tf")]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_read_only_folder_is_one_line_for_prepare_enroll_and_train(read_only, synthetic_dir, tmp_path):
    proc = cli_without_dac_override(["prepare", "--data-dir", synthetic_dir, "--output", str(read_only / "p"), "--quiet"])
    _one_line(proc, str(read_only))
    proc = cli_without_dac_override(["enroll", "--model", "raw-pixels", "--gallery", str(read_only / "g.db"),
                                  "--name", "ada", _first_image(synthetic_dir)])
    _one_line(proc, "g.db", "ermission denied")
    proc = cli_without_dac_override([*SMALL_TRAIN, "--data-dir", synthetic_dir, "--output-dir", str(read_only / "t")])
    _one_line(proc, str(read_only))
    assert os.listdir(read_only) == []


def _first_image(folder):
    person = os.path.join(folder, sorted(os.listdir(folder))[0])
    return os.path.join(person, sorted(os.listdir(person))[0])


def _fill(folder, leave):
    """Fill ``folder``'s file system up to ``leave`` bytes free."""
    import shutil as sh

    free = sh.disk_usage(folder).free
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def test_full_disk_while_writing_a_checkpoint_is_one_line_not_a_crash(small_disk, synthetic_dir):
    proc = subprocess.run([*CLI, *SMALL_TRAIN, "--data-dir", synthetic_dir, "--output-dir", str(small_disk / "run")],
                          capture_output=True, text=True)
    line = _one_line(proc, "no space left")
    assert "checkpoint" in line or "run" in line, line
    assert not os.path.exists(small_disk / "run" / "model.keras")


def test_full_disk_while_writing_shards_or_a_gallery_is_one_line(small_disk, synthetic_dir):
    big = small_disk / "big"
    big.mkdir()
    _fill(str(big), 64 << 10)
    proc = subprocess.run([*CLI, "prepare", "--data-dir", synthetic_dir, "--output", str(small_disk / "p"), "--quiet",
                           "--workers", "1"], capture_output=True, text=True)
    _one_line(proc, "cannot write", str(small_disk / "p"))
    assert not os.path.exists(small_disk / "p" / "manifest.json")
    os.remove(big / "filler")
    _fill(str(big), 0)
    proc = subprocess.run([*CLI, "enroll", "--model", "raw-pixels", "--gallery", str(small_disk / "g.db"), "--name",
                           "ada", _first_image(synthetic_dir)], capture_output=True, text=True)
    line = _one_line(proc, "g.db")
    assert "not a facenet_tf gallery" not in line and ("space" in line or "full" in line), line
