"""Issue 20: a command deletes or replaces only what it can prove it wrote (facenet_tf.ownership).

A folder of the user's files given as the output of each writing command keeps every file byte for
byte: the command refuses with exit 2 and one line, or (with --allow-existing-files) writes only its
own files beside them.
"""

import hashlib
import json
import os

import numpy as np
import pytest

from facenet_tf import ownership
from facenet_tf.cli import main
from facenet_tf.errors import FacenetError
from facenet_tf.publication import publish

TRAIN = ["train", "--identities-per-batch", "4", "--images-per-identity", "2", "--image-size", "32",
         "--embedding-dim", "8", "--validation-identities", "0", "--steps-per-epoch", "2", "--epochs", "1",
         "--verbose", "0"]


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder`` (hidden ones too)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def user_folder(path, *names):
    """A folder of the user's files: ``notes.txt`` plus each of ``names`` (``x/`` = a folder with a file)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "notes.txt"), "w") as f:
        f.write("the user's own notes\n")
    for name in names:
        if name.endswith("/"):
            os.makedirs(os.path.join(path, name), exist_ok=True)
            with open(os.path.join(path, name, "keep.bin"), "wb") as f:
                f.write(os.urandom(64))
        else:
            with open(os.path.join(path, name), "wb") as f:
                f.write(b"user bytes of " + name.encode())
    return snapshot(path)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("facenet-tf")]
    return code, err


def assert_refused(code, err, *words):
    assert code == 2 and len(err) == 1, (code, err)
    for word in words:
        assert word in err[0], err


def assert_kept(path, before):
    after = snapshot(path)
    assert {k: after.get(k) for k in before} == before, "a user's file changed or disappeared"


# --- the mechanism --------------------------------------------------------------------------------

def test_claim_refuses_foreign_folders_and_entries_and_records_what_it_writes(tmp_path):
    fresh = tmp_path / "fresh"
    own = ownership.claim(str(fresh), "align", ("a.json",))
    record = json.loads((fresh / ownership.OWNER_FILE).read_text())
    assert record["entries"] == {"a.json": "align"} and record["created_folder"] is True
    assert own.owns("a.json") and not own.owns("notes.txt")

    before = user_folder(tmp_path / "user", "a.json")
    with pytest.raises(FacenetError, match="did not write .*--allow-existing-files"):
        ownership.claim(str(tmp_path / "user"), "align", ("a.json",))
    with pytest.raises(FacenetError, match="a.json exists and was not written by facenet-tf align"):
        ownership.claim(str(tmp_path / "user"), "align", ("a.json",), allow_existing=True)
    beside = ownership.claim(str(tmp_path / "user"), "align", ("b.json",), allow_existing=True)
    (tmp_path / "user" / "b.json").write_text("{}")
    beside.remove("a.json")  # not the project's: left alone
    beside.remove("b.json")
    assert not (tmp_path / "user" / "b.json").exists()
    assert_kept(tmp_path / "user", before)


def test_claim_refuses_an_output_equal_to_inside_or_holding_an_input(tmp_path):
    data = tmp_path / "data"
    (data / "ada").mkdir(parents=True)
    for output, words in ((data, "inside the input folder"), (data / "out", "inside the input folder"),
                          (tmp_path, "holds the input folder")):
        with pytest.raises(FacenetError, match=words):
            ownership.claim(str(output), "align", inputs=[str(data)])
    os.symlink(data, tmp_path / "link")
    with pytest.raises(FacenetError, match="inside the input folder"):
        ownership.claim(str(tmp_path / "link" / "out"), "align", inputs=[str(data)])
    assert not (data / "out").exists()


def test_publish_replaces_only_the_previous_entries_of_the_command(tmp_path):
    root = tmp_path / "out"
    before = user_folder(root)
    own = ownership.claim(str(root), "align", allow_existing=True)
    for version, names in ((1, ("a", "b")), (2, ("a",))):
        stage = tmp_path / f"stage{version}"
        for name in names:
            (stage / name).mkdir(parents=True)
            (stage / name / "x").write_text(str(version))
        publish(own, str(stage))
    assert (root / "a" / "x").read_text() == "2" and not (root / "b").exists()
    assert_kept(root, before)


# --- every writing command, given a folder of the user's files -------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("trained") / "model"
    assert main([*TRAIN, "--data-dir", synthetic_dir, "--output-dir", str(out)]) == 0
    return str(out)


@pytest.mark.parametrize("restart", [False, True], ids=["resume", "restart"])
def test_train_keeps_a_folder_of_user_files(tmp_path, synthetic_dir, capsys, restart):
    out = tmp_path / "u"
    before = user_folder(out, "logs/", "checkpoints/", "server.log")
    extra = ["--restart"] if restart else []
    assert_refused(*run([*TRAIN, *extra, "--data-dir", synthetic_dir, "--output-dir", out], capsys),
                   str(out), "--allow-existing-files")
    # Even allowed, logs/ and checkpoints/ are the user's: never replaced, never cleared.
    assert_refused(*run([*TRAIN, *extra, "--allow-existing-files", "--data-dir", synthetic_dir, "--output-dir", out],
                        capsys), "checkpoints", "not written by facenet-tf train")
    assert_kept(out, before)
    assert sorted(os.listdir(out)) == ["checkpoints", "logs", "notes.txt", "server.log"]


def test_train_beside_user_files_writes_only_its_own_and_restart_clears_only_those(tmp_path, synthetic_dir, capsys):
    out = tmp_path / "beside"
    before = user_folder(out, "server.log")
    argv = [*TRAIN, "--allow-existing-files", "--data-dir", synthetic_dir, "--output-dir", out]
    assert run(argv, capsys)[0] == 0
    assert run([*argv, "--restart"], capsys)[0] == 0
    assert_kept(out, before)
    record = ownership.read_record(str(out))
    assert set(os.listdir(out)) - set(record["entries"]) == {"notes.txt", "server.log", ownership.OWNER_FILE}
    # The user drops a file into the run's folder later: it is the user's (not in the record) ...
    (out / "notes2.txt").write_text("mine")
    assert run([*TRAIN, "--epochs", "2", "--restart", "--data-dir", synthetic_dir, "--output-dir", out], capsys)[0] == 0
    assert (out / "notes2.txt").read_text() == "mine"


def test_train_refuses_its_data_folder_as_output(tmp_path, synthetic_dir, capsys):
    before = snapshot(synthetic_dir)
    for out in (synthetic_dir, os.path.join(synthetic_dir, "run")):
        for extra in ([], ["--restart", "--allow-existing-files"]):
            assert_refused(*run([*TRAIN, *extra, "--data-dir", synthetic_dir, "--output-dir", out], capsys),
                           "input folder")
    assert snapshot(synthetic_dir) == before and not os.path.exists(os.path.join(synthetic_dir, "run"))


def test_prepare_keeps_user_files_even_with_its_own_names(tmp_path, synthetic_dir, capsys):
    out = tmp_path / "p"
    before = user_folder(out, "shard-00000-of-00001.tfrecord", "shards.json", "data-0123456789ab/")
    argv = ["prepare", "--data-dir", synthetic_dir, "--output", out, "--shards", "2", "--workers", "1", "--quiet"]
    assert_refused(*run(argv, capsys), str(out), "--allow-existing-files")
    assert_kept(out, before)
    assert run([*argv, "--allow-existing-files"], capsys)[0] == 0
    assert run([*argv, "--allow-existing-files", "--seed", "1"], capsys)[0] == 0  # a new plan replaces the old
    assert_kept(out, before)
    data = sorted(n for n in os.listdir(out) if n.startswith("data-") and n != "data-0123456789ab")
    assert len(data) == 1, data  # the first run's own data folder went, the user's stayed
    for out2 in (synthetic_dir, os.path.join(synthetic_dir, "prepared")):
        assert_refused(*run(["prepare", "--data-dir", synthetic_dir, "--output", out2], capsys), "input folder")


def test_align_keeps_user_files_and_its_data(tmp_path, synthetic_dir, capsys):
    out = tmp_path / "a"
    before = user_folder(out, "s1/")
    data_before = snapshot(synthetic_dir)
    argv = ["align", "--data-dir", synthetic_dir, "--output", out, "--size", "32", "--on-failure", "resize"]
    assert_refused(*run(argv, capsys), str(out), "--allow-existing-files")
    for out2 in (synthetic_dir, os.path.join(synthetic_dir, "aligned")):
        assert_refused(*run(["align", "--data-dir", synthetic_dir, "--output", out2], capsys), "input folder")
    assert snapshot(synthetic_dir) == data_before
    assert_kept(out, before)


def test_align_beside_user_files_writes_only_its_own(tmp_path, synthetic_dir, capsys):
    pytest.importorskip("mtcnn", reason="align needs the [align] extra (mtcnn)")
    src = tmp_path / "src"
    for name in sorted(os.listdir(synthetic_dir))[:2]:
        (src / name).mkdir(parents=True)
        for image in sorted(os.listdir(os.path.join(synthetic_dir, name)))[:2]:
            os.link(os.path.join(synthetic_dir, name, image), src / name / image)
    out = tmp_path / "a"
    before = user_folder(out, "holiday/")
    argv = ["align", "--data-dir", src, "--output", out, "--size", "32", "--on-failure", "resize",
            "--allow-existing-files"]
    assert run(argv, capsys)[0] == 0
    assert run(argv, capsys)[0] == 0
    assert_kept(out, before)
    assert sorted(os.listdir(out)) == sorted([ownership.OWNER_FILE, "holiday", "notes.txt", *os.listdir(src)])


def test_export_keeps_user_files(tmp_path, trained, capsys):
    out = tmp_path / "ex"
    before = user_folder(out, "saved_model.pb", "variables/")
    argv = ["export", "--model", trained, "--output", out]
    assert_refused(*run(argv, capsys), str(out), "--allow-existing-files")
    assert_refused(*run([*argv, "--allow-existing-files"], capsys), "not written by facenet-tf export")
    assert_kept(out, before)
    beside = tmp_path / "ex2"
    before = user_folder(beside, "README")
    assert run(["export", "--model", trained, "--output", beside, "--allow-existing-files"], capsys)[0] == 0
    assert run(["export", "--model", trained, "--output", beside], capsys)[0] == 0  # its own now: replaced
    assert_kept(beside, before)
    assert os.path.isfile(beside / "saved_model.pb")


def test_enroll_never_touches_a_file_that_is_not_a_gallery(tmp_path, trained, synthetic_dir, capsys):
    image = os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    folder = tmp_path / "g"
    user_folder(folder, "empty.db")
    (folder / "empty.db").write_bytes(b"")
    import sqlite3

    with sqlite3.connect(folder / "mine.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
    before = snapshot(folder)
    for name in ("notes.txt", "empty.db", "mine.sqlite"):
        assert_refused(*run(["enroll", "--model", trained, "--gallery", folder / name, "--name", "ada", image],
                            capsys), "not a facenet_tf gallery")
    assert snapshot(folder) == before and sorted(os.listdir(folder)) == ["empty.db", "mine.sqlite", "notes.txt"]


def test_import_dlib_keeps_user_files(tmp_path, capsys):
    out = tmp_path / "d"
    before = user_folder(out, "model.keras")
    assert_refused(*run(["import-dlib", "--output-dir", out, "--dat", tmp_path / "none.dat"], capsys), str(out))
    assert_refused(*run(["import-dlib", "--output-dir", out, "--allow-existing-files"], capsys),
                   "model.keras exists and was not written")
    assert_kept(out, before)


def test_write_model_directory_refuses_a_folder_of_user_files(tmp_path, trained):
    from facenet_tf.models.loader import load_keras
    from facenet_tf.models.writer import write_model_directory

    model, artifact = load_keras(trained)
    out = tmp_path / "m"
    before = user_folder(out, "metadata.json")
    with pytest.raises(FacenetError, match="did not write"):
        write_model_directory(model, str(out), artifact.contract)
    assert_kept(out, before)


def test_loader_leaves_a_staging_folder_it_cannot_prove_alone(tmp_path, trained):
    """recover_model_directory finishes or drops only a staging folder the record lists."""
    import shutil

    from facenet_tf.models.loader import locate

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    os.remove(copy / ownership.OWNER_FILE)
    (copy / ".model-staging").mkdir()
    (copy / ".model-staging" / "mine.txt").write_text("user")
    locate(str(copy))
    assert (copy / ".model-staging" / "mine.txt").read_text() == "user"
    np.testing.assert_equal(sorted(os.listdir(copy / ".model-staging")), ["mine.txt"])
