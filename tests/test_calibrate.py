"""``facenet-tf gallery calibrate``: a threshold chosen on the user's labelled people, stored in the
gallery and used by ``identify`` / ``verify`` unless ``--threshold`` is given."""

import json
import os
import shutil

import numpy as np
import pytest

from facenet_tf.cli import main
from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.labelled import threshold_at_far
from facenet_tf.gallery.calibration import Calibration, stored_calibration, threshold_choice


def cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def orl_people(orl_dir, tmp_path_factory):
    """``(labelled, enrolled)``: 8 ORL people × 4 images to calibrate on, 3 others × 2 enrolled."""
    root = tmp_path_factory.mktemp("orl")
    for folder, people, images in (("labelled", range(1, 9), range(1, 5)), ("enrolled", range(20, 23), (1, 2))):
        for k in people:
            os.makedirs(root / folder / f"s{k}")
            for i in images:
                shutil.copy(os.path.join(orl_dir, f"s{k}", f"{i}.pgm"), root / folder / f"s{k}")
    return str(root / "labelled"), str(root / "enrolled")


@pytest.fixture(scope="module")
def calibrated(dlib_dir, orl_people, tmp_path_factory):
    """``(gallery, report folder, stdout)`` after enrolling and calibrating at FAR 1e-2."""
    import io
    from contextlib import redirect_stdout

    labelled, enrolled = orl_people
    root = tmp_path_factory.mktemp("calibrated")
    gallery, report = str(root / "people.gallery"), str(root / "report")
    assert main(["enroll", "--model", dlib_dir, "--gallery", gallery, "--from-dir", enrolled, "--quiet"]) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["gallery", "calibrate", "--model", dlib_dir, "--gallery", gallery, "--data-dir", labelled,
                       "--far", "1e-2", "--report", report, "--quiet"])
    assert status == 0
    return gallery, report, out.getvalue()


def test_calibrate_stores_the_threshold_at_the_far_with_its_rates(calibrated):
    from facenet_tf.gallery.store import read_meta

    gallery, report, out = calibrated
    stored = stored_calibration(read_meta(gallery))
    assert stored.num_people == 8 and stored.num_images == 32
    assert stored.num_genuine == 8 * 6 and stored.num_impostor == 32 * 31 // 2 - 48
    assert stored.far <= 1e-2 and stored.far_target == 1e-2 and stored.distance == "l2"
    assert 0.3 < stored.threshold < 0.8  # dlib's model: about 0.6 on l2
    assert stored.tar > 0.9  # ORL faces are easy for dlib's model
    assert f"threshold {stored.threshold:.4f}" in out
    from facenet_tf.gallery.service import open_gallery_as_stored

    with open_gallery_as_stored(gallery) as opened:
        assert opened.threshold == stored.threshold  # what FaceRecognizer.threshold(gallery) reads
    assert os.path.isfile(os.path.join(report, "index.html"))
    assert len(os.listdir(os.path.join(report, "figures"))) == 4 + 12


def test_identify_and_verify_say_which_threshold_they_used(calibrated, dlib_dir, orl_people, orl_dir, capsys):
    gallery = calibrated[0]
    from facenet_tf.gallery.store import read_meta

    stored = stored_calibration(read_meta(gallery))
    probe = os.path.join(orl_dir, "s20", "5.pgm")
    status, out, _ = cli(capsys, "identify", "--model", dlib_dir, "--gallery", gallery, "--json", probe)
    answer = json.loads(out)
    assert status == 0 and answer["threshold_source"] == "gallery calibration"
    assert answer["threshold"] == pytest.approx(stored.threshold) and answer["results"][0]["name"] == "s20"
    status, out, _ = cli(capsys, "identify", "--model", dlib_dir, "--gallery", gallery, "--json", "--threshold",
                         "0.01", probe)
    answer = json.loads(out)
    assert answer["threshold_source"] == "flag" and answer["results"][0]["name"] is None
    other = os.path.join(orl_dir, "s20", "6.pgm")
    status, out, _ = cli(capsys, "verify", "--model", dlib_dir, "--gallery", gallery, probe, other)
    assert status == 0 and out.startswith("same person") and "(gallery calibration)" in out
    status, out, _ = cli(capsys, "verify", "--model", dlib_dir, probe, other, "--json")
    assert json.loads(out)["threshold_source"] == "model"


def test_calibrate_refuses_before_embedding(calibrated, dlib_dir, orl_people, tmp_path, capsys):
    labelled = orl_people[0]
    status, _, err = cli(capsys, "gallery", "calibrate", "--model", dlib_dir, "--gallery", str(tmp_path / "none"),
                         "--data-dir", labelled)
    assert status == 2 and "does not exist" in err
    status, _, err = cli(capsys, "gallery", "calibrate", "--model", dlib_dir, "--gallery", calibrated[0],
                         "--data-dir", labelled, "--far", "0")
    assert status == 2 and "--far" in err
    status, _, err = cli(capsys, "gallery", "list", "--gallery", calibrated[0], "--data-dir", labelled)
    assert status == 2 and "calibrate only" in err


def test_threshold_at_far_matches_the_definition():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 5)
    centres = rng.normal(size=(12, 8))
    emb = centres[labels] + 0.4 * rng.normal(size=(60, 8))
    threshold, far, tar, result, pairs, d = threshold_at_far(emb, labels, "l2", far_target=0.05)
    same = labels[pairs.idx_a] == labels[pairs.idx_b]
    assert far == pytest.approx(np.mean(d[~same] <= threshold)) and far <= 0.05
    assert tar == pytest.approx(np.mean(d[same] <= threshold))
    # The largest such threshold: the next larger impostor distance would break the FAR.
    assert np.mean(d[~same] <= np.min(d[~same][d[~same] > threshold])) > 0.05
    with pytest.raises(FacenetError, match="at least 2 same-person"):
        threshold_at_far(emb[::5], labels[::5], "l2")


def test_threshold_choice_order_and_record_round_trip():
    class Model:
        distance, path = "l2", "m"

        def threshold(self, which):
            return 0.7

    record = Calibration(0.55, 1e-3, 0.0, 0.9, 10, 1000, 5, 20, "/data", "l2")
    assert Calibration.from_json(record.to_json()) == record
    meta = {"calibration": record.to_json()}
    assert threshold_choice(Model(), 0.3, meta) == (0.3, "flag")
    assert threshold_choice(Model(), None, meta) == (0.55, "gallery calibration")
    assert threshold_choice(Model(), None, {}) == (0.7, "model")
    with pytest.raises(FacenetError, match="unreadable"):
        threshold_choice(Model(), None, {"calibration": "{"})
