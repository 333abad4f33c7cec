"""``facenet-tf enroll / identify / verify / gallery`` end to end on a tiny trained model."""

import json
import os
import shutil

import pytest

from facenet_tf.cli import main

pytestmark = pytest.mark.slow  # the module trains a (tiny) model once


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model trained for two steps: meaningless embeddings, real artefacts and thresholds."""
    from facenet_tf.models import ModelConfig
    from facenet_tf.training import DataConfig, TrainConfig, train

    out = str(tmp_path_factory.mktemp("model"))
    train(TrainConfig(
        data=DataConfig(synthetic_identities=24, synthetic_images_per_identity=4, identities_per_batch=4,
                        images_per_identity=2),
        model=ModelConfig(image_size=(32, 32), embedding_dim=16),
        epochs=1, steps_per_epoch=2, output_dir=out,
    ), verbose=0)
    return out


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """5 enrolled people × 3 images, and a stranger's folder."""
    from facenet_tf.data import write_synthetic_dataset

    root = str(tmp_path_factory.mktemp("people"))
    write_synthetic_dataset(root, num_identities=6, images_per_identity=3, image_size=(32, 32), seed=5)
    stranger = str(tmp_path_factory.mktemp("stranger"))
    shutil.move(os.path.join(root, "id0005"), stranger)
    return root, os.path.join(stranger, "id0005")


def image(root, person, i):
    return os.path.join(root, f"id{person:04d}", f"{i}.png")


def cli(capsys, *argv):
    """Run the CLI in-process → ``(exit status, stdout, stderr)``."""
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def listing(capsys, gallery):
    status, out, _ = cli(capsys, "gallery", "list", "--gallery", gallery)
    assert status == 0
    return out


def copy_model(model_dir, tmp_path, **metadata_changes):
    """The same weights under a changed metadata.json (e.g. another fingerprint)."""
    path = str(tmp_path / "model_copy")
    shutil.copytree(model_dir, path)
    with open(os.path.join(path, "metadata.json")) as f:
        metadata = json.load(f)
    metadata.update(metadata_changes)
    with open(os.path.join(path, "metadata.json"), "w") as f:
        json.dump(metadata, f)
    return path


@pytest.fixture
def gallery(model_dir, people, tmp_path, capsys):
    """A gallery holding all images of people id0000..id0004."""
    path = str(tmp_path / "people.gallery")
    status, out, err = cli(capsys, "enroll", "--model", model_dir, "--gallery", path, "--from-dir", people[0], "--quiet")
    assert status == 0, err
    assert "enrolled 15 images of 5 people" in out
    return path


def test_enroll_from_dir_then_list_and_identify(model_dir, people, gallery, capsys):
    out = listing(capsys, gallery)
    assert "15 entries of 5 people" in out
    assert [line.split("\t") for line in out.splitlines()[1:]] == [[f"id{p:04d}", "3"] for p in range(5)]

    # An enrolled image is at distance ~0 from itself; the stranger is beyond threshold 0.
    known, stranger = image(people[0], 2, 1), os.path.join(people[1], "0.png")
    status, out, _ = cli(capsys, "identify", "--model", model_dir, "--gallery", gallery, "--threshold", "1e-6",
                         known, stranger)
    assert status == 0
    first, second = out.splitlines()
    assert first.split("\t")[:2] == [known, "id0002"]
    assert second.split("\t")[:2] == [stranger, "unknown"] and "nearest: id000" in second


def test_identify_top_k_lists_the_nearest_entries_in_order(model_dir, people, gallery, capsys):
    """``--top-k K`` (MatchConfig) adds the K nearest entries, nearest first, the first being the answer's."""
    known = image(people[0], 2, 1)
    status, out, _ = cli(capsys, "identify", "--model", model_dir, "--gallery", gallery, "--threshold", "1e-6",
                         "--top-k", "4", "--index", "numpy", "--json", known)
    assert status == 0
    result = json.loads(out)["results"][0]
    distances = [c["distance"] for c in result["candidates"]]
    assert len(distances) == 4 and distances == sorted(distances)
    assert result["candidates"][0] == {"name": "id0002", "distance": result["distance"]}
    status, out, _ = cli(capsys, "identify", "--model", model_dir, "--gallery", gallery, "--threshold", "1e-6",
                         "--top-k", "100", known)
    assert status == 0 and "(top 15: id0002 " in out  # no more than the gallery holds


def test_identify_json_uses_the_calibrated_threshold(model_dir, people, gallery, capsys):
    with open(os.path.join(model_dir, "metadata.json")) as f:
        calibrated = json.load(f)["thresholds"]["at_far"]
    queries = [image(people[0], 0, 0), os.path.join(people[1], "1.png")]
    status, out, _ = cli(capsys, "identify", "--model", model_dir, "--gallery", gallery, "--json", *queries)
    assert status == 0
    answer = json.loads(out)
    assert answer["threshold"] == pytest.approx(calibrated)
    assert answer["distance"] == "squared_l2"
    assert [r["image"] for r in answer["results"]] == queries
    for r in answer["results"]:
        assert set(r) == {"image", "name", "distance", "nearest", "faces"}
        assert r["name"] == (r["nearest"] if r["distance"] <= calibrated else None)
    assert answer["results"][0]["nearest"] == "id0000"


def test_enroll_by_name_adds_to_existing_gallery(model_dir, people, gallery, capsys):
    new = [os.path.join(people[1], f"{i}.png") for i in range(2)]
    status, out, _ = cli(capsys, "enroll", "--model", model_dir, "--gallery", gallery, "--name", "Zoe Stranger", *new)
    assert status == 0 and "enrolled 2 images of 1 people" in out
    assert "Zoe Stranger\t2" in listing(capsys, gallery)


@pytest.mark.parametrize("bad", ["missing.png", "corrupt.png"])
def test_bad_image_exits_2_naming_it_and_leaves_gallery_unchanged(model_dir, people, gallery, tmp_path, capsys, bad):
    bad_path = str(tmp_path / bad)
    if bad == "corrupt.png":
        with open(bad_path, "w") as f:
            f.write("not an image")
    before = listing(capsys, gallery)
    good = image(people[0], 0, 0)
    status, out, err = cli(capsys, "enroll", "--model", model_dir, "--gallery", gallery, "--name", "x", good, bad_path)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and bad_path in err
    assert listing(capsys, gallery) == before
    # Nor is a gallery created by a failed first enrolment.
    fresh = str(tmp_path / "fresh.gallery")
    assert cli(capsys, "enroll", "--model", model_dir, "--gallery", fresh, "--name", "x", bad_path)[0] == 2
    assert not os.path.exists(fresh)


def test_other_model_is_refused(model_dir, people, gallery, tmp_path, capsys):
    other = copy_model(model_dir, tmp_path, fingerprint="0123456789abcdef")
    before = listing(capsys, gallery)
    for argv in (["enroll", "--name", "x", image(people[0], 0, 0)], ["identify", "--threshold", "1", image(people[0], 0, 0)]):
        status, _, err = cli(capsys, argv[0], "--model", other, "--gallery", gallery, *argv[1:])
        assert status == 2
        # The fingerprint is that of the weights loaded (issue 20): metadata naming other weights
        # is refused as stale before the gallery is opened (Gallery.open's own check: test_gallery).
        assert "0123456789abcdef" in err and "belong to other weights" in err
    assert listing(capsys, gallery) == before


def test_identify_without_any_threshold_is_an_error(model_dir, people, gallery, tmp_path, capsys):
    uncalibrated = copy_model(model_dir, tmp_path, thresholds=None)
    status, _, err = cli(capsys, "identify", "--model", uncalibrated, "--gallery", gallery, image(people[0], 0, 0))
    assert status == 2 and "--threshold" in err


def test_identify_missing_gallery_is_an_error_and_creates_nothing(model_dir, people, tmp_path, capsys):
    path = str(tmp_path / "none.gallery")
    status, _, err = cli(capsys, "identify", "--model", model_dir, "--gallery", path, "--threshold", "1",
                         image(people[0], 0, 0))
    assert status == 2 and "does not exist" in err
    assert not os.path.exists(path)


def test_verify(model_dir, people, capsys):
    a, b = image(people[0], 1, 0), image(people[0], 3, 0)
    status, out, _ = cli(capsys, "verify", "--model", model_dir, "--threshold", "1e-6", a, a)
    assert status == 0 and out.startswith("same person: squared_l2 distance")
    status, out, _ = cli(capsys, "verify", "--model", model_dir, "--threshold", "0", a, b, "--json")
    answer = json.loads(out)
    assert status == 0 and answer["same"] is False and answer["threshold"] == 0 and answer["distance"] > 0


def test_gallery_remove(gallery, capsys):
    status, out, _ = cli(capsys, "gallery", "remove", "--gallery", gallery, "--name", "id0001")
    assert status == 0 and "removed 3 entries" in out
    assert "12 entries of 4 people" in listing(capsys, gallery)
    status, _, err = cli(capsys, "gallery", "remove", "--gallery", gallery, "--name", "id0001")
    assert status == 2 and "no entries named 'id0001'" in err
    assert cli(capsys, "gallery", "remove", "--gallery", gallery)[0] == 2  # --name is required


def test_enroll_argument_errors(model_dir, people, tmp_path, capsys):
    path = str(tmp_path / "g.gallery")
    base = ["enroll", "--model", model_dir, "--gallery", path]
    assert cli(capsys, *base)[0] == 2
    assert cli(capsys, *base, "--name", "x")[0] == 2
    assert cli(capsys, *base, "--name", "x", "--from-dir", people[0])[0] == 2
    assert cli(capsys, *base, "--from-dir", people[0], image(people[0], 0, 0))[0] == 2
    assert not os.path.exists(path)
