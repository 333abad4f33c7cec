"""``prepare``: manifest-driven shards (a second run replaces the first), resumable after SIGKILL
with the same bytes as an uninterrupted run, and the Beam DirectRunner writing the same records."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from facenet_tf.cli import main
from facenet_tf.data.prepare import PrepareConfig, prepare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _orl_subset(orl_dir, root, people, per_person=10):
    for person in people:
        os.makedirs(os.path.join(root, f"s{person}"))
        for i in range(1, per_person + 1):
            shutil.copy(os.path.join(orl_dir, f"s{person}", f"{i}.pgm"), os.path.join(root, f"s{person}", f"{i}.pgm"))
    return str(root)


def _records(out):
    """Every record the manifest lists, as raw bytes (sorted), and the folder's files."""
    import tensorflow as tf

    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    records = sorted(r.numpy() for s in manifest["shards"] for r in tf.data.TFRecordDataset(os.path.join(out, s["file"])))
    return manifest, records


def test_second_prepare_into_the_same_folder_replaces_the_first(orl_dir, tmp_path):
    from facenet_tf.data import DataConfig, load_images
    from facenet_tf.data.sources import training_source

    a = _orl_subset(orl_dir, tmp_path / "a", range(1, 7), 4)
    b = _orl_subset(orl_dir, tmp_path / "b", range(11, 14), 4)
    out = str(tmp_path / "out")
    first = prepare(a, out, PrepareConfig(num_shards=3, workers=1))
    assert first.manifest["num_identities"] == 6
    second = prepare(b, out, PrepareConfig(num_shards=2, workers=1))
    assert sorted(os.listdir(out)) == sorted([".facenet_tf-owner.json", "manifest.json", "skipped.json",
                                              f"data-{second.manifest['plan']}"])
    manifest = second.manifest
    assert manifest["identities"] == {"names": ["s11", "s12", "s13"], "images": [4, 4, 4]}  # label = position

    source = training_source(DataConfig(data_dir=out, identities_per_batch=3, images_per_identity=2, augment=None),
                             (28, 23), seed=0)
    assert source.num_identities == 3 and source.num_images == 12
    reference = {label: load_images([os.path.join(b, f"s{11 + label}", f"{i}.pgm") for i in range(1, 5)],
                                    (28, 23)).astype(np.float32) for label in range(3)}
    for images, labels in source.dataset.take(3):
        labels = labels.numpy()
        assert sorted(set(labels)) == [0, 1, 2], "only B's labels"
        for image, label in zip(images.numpy(), labels):
            assert np.abs(reference[label] - image).reshape(4, -1).max(axis=1).min() <= 1.0, "B's own images"


def test_prepare_resumes_after_sigkill_with_the_same_bytes(orl_dir, tmp_path):
    raw = _orl_subset(orl_dir, tmp_path / "raw", range(1, 21), 4)
    with open(os.path.join(raw, "s3", "broken.jpg"), "w") as f:
        f.write("not a jpeg")
    settings = ["--shards", "40", "--workers", "1", "--quiet"]
    reference = str(tmp_path / "reference")
    assert main(["prepare", "--data-dir", raw, "--output", reference, *settings]) == 0
    out = str(tmp_path / "out")
    command = [sys.executable, os.path.join(REPO, "pipelines", "prepare.py"), "--data-dir", raw, "--output", out,
               *settings]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    def finished(data):  # shard records renamed into place (not their temporaries)
        folder = os.path.join(out, data, ".parts")
        return [p for p in os.listdir(folder) if not p.startswith(".")] if os.path.isdir(folder) else []

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        data = [d for d in os.listdir(out) if d.startswith("data-")] if os.path.isdir(out) else []
        if data and finished(data[0]):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "killed midway"
    assert not os.path.exists(os.path.join(out, "manifest.json")), "nothing published by the killed run"
    done = len(finished(data[0]))
    assert 1 <= done < 40

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{40 - done} written, {done} kept from an interrupted run" in rerun.stdout
    assert "prepare: skipped 1 file (not_an_image: not an image file): " in rerun.stderr  # the per-reason line
    expected_manifest, expected_records = _records(reference)
    manifest, records = _records(out)
    assert manifest == expected_manifest and records == expected_records
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))
    data_dir = f"data-{manifest['plan']}"
    assert sorted(os.listdir(os.path.join(out, data_dir))) == sorted(os.listdir(os.path.join(reference, data_dir)))
    for name in os.listdir(os.path.join(out, data_dir)):
        with open(os.path.join(out, data_dir, name), "rb") as f, open(os.path.join(reference, data_dir, name), "rb") as g:
            assert f.read() == g.read(), name
    with open(os.path.join(out, "skipped.json")) as f, open(os.path.join(reference, "skipped.json")) as g:
        assert json.load(f) == json.load(g)

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "is up to date" in again.stdout


def test_beam_direct_runner_writes_the_same_records(orl_dir, tmp_path):
    pytest.importorskip("apache_beam")
    raw = _orl_subset(orl_dir, tmp_path / "raw", range(1, 5), 3)
    with open(os.path.join(raw, "s2", "page.jpg"), "w") as f:
        f.write("<html>")
    os.makedirs(os.path.join(raw, "s9"))
    shutil.copy(os.path.join(orl_dir, "s9", "1.pgm"), os.path.join(raw, "s9", "1.pgm"))  # one image: left out
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    assert main(["prepare", "--data-dir", raw, "--output", local, "--shards", "3", "--quiet"]) == 0
    assert main(["prepare", "--data-dir", raw, "--output", beam, "--shards", "3", "--runner", "DirectRunner"]) == 0
    local_manifest, local_records = _records(local)
    beam_manifest, beam_records = _records(beam)
    assert beam_records == local_records and len(local_records) == 12 + 1  # s9's record is written, not indexed
    assert beam_manifest["runner"] == "DirectRunner" and local_manifest["runner"] == "local"
    for key in ("identities", "num_images", "num_identities", "skipped", "transform", "source"):
        assert beam_manifest[key] == local_manifest[key], key
    with open(os.path.join(local, "skipped.json")) as f, open(os.path.join(beam, "skipped.json")) as g:
        assert json.load(f) == json.load(g)
    from facenet_tf.data.manifest import decode_index

    assert sum(decode_index(s["index"])[2].size for s in beam_manifest["shards"]) == 12

    from facenet_tf.data import DataConfig
    from facenet_tf.data.sources import training_source

    source = training_source(DataConfig(data_dir=beam, identities_per_batch=4, images_per_identity=3, augment=None),
                             (32, 32), seed=0)
    images, labels = next(iter(source.dataset))
    assert images.shape == (12, 32, 32, 3) and sorted(set(labels.numpy())) == [0, 1, 2, 3]


def test_prepare_refuses_a_folder_of_other_files_and_bad_settings(synthetic_dir, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    for argv, message in (
        (["--output", str(busy)], "holds files facenet-tf prepare did not write (thesis.tex)"),
        (["--output", str(tmp_path / "x"), "--shards", "0"], "num_shards (--shards) must be 1..1000000; received 0"),
        (["--output", str(tmp_path / "x"), "--runner", "NoSuchRunner"], "the Beam pipeline failed on NoSuchRunner"),
    ):
        assert main(["prepare", "--data-dir", synthetic_dir, *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and "Traceback" not in "\n".join(err), err
    assert os.listdir(busy) == ["thesis.tex"] and not os.path.exists(tmp_path / "x" / "manifest.json")
