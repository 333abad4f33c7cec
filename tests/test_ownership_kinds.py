"""Issue 28: a command replaces only a folder its own kind wrote, and there only the files it wrote.

Each kind of folder (training run, imported model, export, aligned set, prepared set) is made once
for the module, at a tiny size, and copied per case. A folder of one kind given as the output of a
command of another kind survives byte for byte, and the command exits 2 with one line naming what
the folder holds. A user's file inside any sub-folder of a command's own output survives re-runs of
that command (``train --restart``, an ``align`` re-run, ``prepare --allow-existing-files``). The
gallery, one SQLite file, and the folder kinds are never taken for one another.
"""

import json
import os
import shutil

import pytest
from test_ownership import run, snapshot  # the same byte-for-byte snapshot and one-line check

from facenet_tf.cli import main

OWNER_FILE = ".facenet_tf-owner.json"
SIZE = "32"
TRAIN = ["train", "--identities-per-batch", "4", "--images-per-identity", "2", "--image-size", SIZE,
         "--embedding-dim", "8", "--validation-identities", "0", "--steps-per-epoch", "1", "--epochs", "1",
         "--verbose", "0"]
#: What each kind's folder is called in the refusal: "RUN is a training run written by `train`".
HOLDS = {"train": "a training run", "import-dlib": "an imported model", "export": "an export",
         "align": "an aligned set", "prepare": "a prepared set"}


def small_source(synthetic_dir, target, identities=2, images=2):
    """Hard links to a few images of a few identities of the synthetic set."""
    for name in sorted(os.listdir(synthetic_dir))[:identities]:
        os.makedirs(os.path.join(target, name))
        for image in sorted(os.listdir(os.path.join(synthetic_dir, name)))[:images]:
            os.link(os.path.join(synthetic_dir, name, image), os.path.join(target, name, image))
    return str(target)


def command(kind, output, inputs):
    """The argv of a command of ``kind`` writing ``output`` (everything else valid)."""
    return {
        "train": [*TRAIN, "--data-dir", inputs["data"], "--output-dir", output],
        "prepare": ["prepare", "--data-dir", inputs["data"], "--output", output, "--shards", "1", "--workers", "1",
                    "--quiet"],
        "align": ["align", "--data-dir", inputs["small"], "--output", output, "--size", SIZE, "--on-failure",
                  "resize"],
        "export": ["export", "--model", inputs["train"], "--output", output],
        "import-dlib": ["import-dlib", "--output-dir", output],
    }[kind]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory, synthetic_dir):
    """One folder of each kind, written by its command: ``{kind: path}``, plus the inputs."""
    pytest.importorskip("mtcnn", reason="align needs the [align] extra (mtcnn)")
    pytest.importorskip("face_recognition_models", reason="import-dlib needs the [pretrained] extra")
    root = tmp_path_factory.mktemp("kinds")
    inputs = {"data": synthetic_dir, "small": small_source(synthetic_dir, root / "small")}
    made = {}
    for kind in ("train", "prepare", "align", "export", "import-dlib"):
        made[kind] = str(root / kind.replace("-", "_"))
        inputs[kind] = made[kind]
        assert main(command(kind, made[kind], inputs)) == 0, kind
    return made, inputs


def copy_of(folder, target):
    shutil.copytree(folder, target, symlinks=True)
    return str(target)


@pytest.mark.parametrize("allow", [False, True], ids=["plain", "allow-existing-files"])
@pytest.mark.parametrize("owner_kind,writer_kind",
                         [(a, b) for a in HOLDS for b in HOLDS if a != b])
def test_a_folder_of_one_kind_is_refused_by_every_other_kind(kinds, tmp_path, capsys, owner_kind, writer_kind,
                                                            allow):
    made, inputs = kinds
    folder = copy_of(made[owner_kind], tmp_path / "out")
    before = snapshot(folder)
    argv = command(writer_kind, folder, inputs) + (["--allow-existing-files"] if allow else [])
    code, err = run(argv, capsys)
    assert code == 2 and len(err) == 1, (code, err)
    assert f"is {HOLDS[owner_kind]} written by `{owner_kind}`" in err[0] and "choose another" in err[0], err
    assert snapshot(folder) == before, "the folder changed"
    assert sorted(os.listdir(tmp_path)) == ["out"], "something was left beside the folder"


@pytest.fixture(scope="module")
def gallery(kinds, tmp_path_factory):
    """A gallery (one SQLite file, no owned folder) enrolled with the training run's model."""
    made, inputs = kinds
    person = os.path.join(inputs["small"], sorted(os.listdir(inputs["small"]))[0])
    path = str(tmp_path_factory.mktemp("gallery") / "g.db")
    image = os.path.join(person, sorted(os.listdir(person))[0])
    assert main(["enroll", "--model", made["train"], "--gallery", path, "--name", "ada", "--no-align", image]) == 0
    return path


@pytest.mark.parametrize("kind", sorted(HOLDS))
def test_a_gallery_and_the_folder_kinds_are_never_taken_for_one_another(kinds, gallery, tmp_path, capsys, kind):
    """The gallery is a file: given as any command's output folder it is refused untouched, and no
    folder of any kind is taken for a gallery."""
    made, inputs = kinds
    target = str(tmp_path / "g.db")
    shutil.copy2(gallery, target)
    before = snapshot(tmp_path)
    code, err = run(command(kind, target, inputs), capsys)
    assert code == 2 and len(err) == 1 and "is a file" in err[0], (code, err)
    assert snapshot(tmp_path) == before
    folder = copy_of(made[kind], tmp_path / "folder")
    image = os.path.join(inputs["small"], sorted(os.listdir(inputs["small"]))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    before = snapshot(tmp_path)
    code, err = run(["enroll", "--model", made["train"], "--gallery", folder, "--name", "bo", "--no-align", image],
                    capsys)
    assert code == 2 and len(err) == 1 and "not a facenet_tf gallery" in err[0], (code, err)
    assert snapshot(tmp_path) == before


def test_an_output_that_is_the_commands_own_input_is_refused(kinds, tmp_path, capsys):
    made, inputs = kinds
    run_dir = copy_of(made["train"], tmp_path / "run")
    before = snapshot(run_dir)
    for init_from in (run_dir, os.path.join(run_dir, "model.keras")):
        code, err = run([*TRAIN, "--data-dir", inputs["data"], "--init-from", init_from, "--output-dir", run_dir,
                         "--restart"], capsys)
        assert code == 2 and len(err) == 1 and "input" in err[0], (code, err)
    for argv in (["export", "--model", run_dir, "--output", run_dir],
                 ["export", "--model", run_dir, "--output", os.path.join(run_dir, "export")]):
        code, err = run(argv, capsys)
        assert code == 2 and len(err) == 1, (code, err)
    assert snapshot(run_dir) == before


def _user_files(folder, *subfolders):
    """A file of the user's in each of ``subfolders`` of ``folder`` (and in a folder of its own
    inside each); returns their snapshot."""
    for sub in subfolders:
        os.makedirs(os.path.join(folder, sub, "mine"), exist_ok=True)
        with open(os.path.join(folder, sub, "notes.txt"), "w") as f:
            f.write(f"the user's notes in {sub}\n")
        with open(os.path.join(folder, sub, "mine", "keep.bin"), "wb") as f:
            f.write(os.urandom(32))
    return {k: v for k, v in snapshot(folder).items() if "notes.txt" in k or "keep.bin" in k}


def _kept(folder, before):
    after = snapshot(folder)
    assert {k: after.get(k) for k in before} == before, "a user's file changed or disappeared"


def test_train_restart_keeps_user_files_in_its_sub_folders(kinds, tmp_path, capsys):
    made, inputs = kinds
    run_dir = copy_of(made["train"], tmp_path / "run")
    mine = _user_files(run_dir, "checkpoints", "logs", "saved_model", "saved_model/variables")
    old_checkpoints = sorted(n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if n.endswith(".h5"))
    # What a run killed while saving a checkpoint its record lists leaves (test_links: a file of that
    # shape whose checkpoint the record does not list is the user's, and stays).
    killed = os.path.join(run_dir, "checkpoints", f".{old_checkpoints[-1]}.tmp-k1ll3d_x.weights.h5")
    with open(killed, "wb") as f:
        f.write(os.urandom(64))
    code, err = run([*TRAIN, "--restart", "--data-dir", inputs["data"], "--output-dir", run_dir], capsys)
    assert code == 0, err
    _kept(run_dir, mine)
    assert not os.path.exists(killed)
    assert old_checkpoints and all(os.path.isfile(os.path.join(run_dir, "checkpoints", n)) for n in old_checkpoints)
    from facenet_tf.models.loader import load_keras

    load_keras(run_dir)  # the new model is whole


def test_an_align_rerun_keeps_user_files_in_identity_folders(kinds, tmp_path, capsys):
    made, inputs = kinds
    aligned = copy_of(made["align"], tmp_path / "aligned")
    identity = sorted(n for n in os.listdir(aligned) if not n.startswith(".") and os.path.isdir(os.path.join(aligned, n)))[0]
    mine = _user_files(aligned, identity)
    assert run(command("align", aligned, inputs), capsys)[0] == 0
    _kept(aligned, mine)


def test_a_prepare_rerun_keeps_user_files_in_its_data_folder(kinds, tmp_path, capsys):
    made, inputs = kinds
    prepared = copy_of(made["prepare"], tmp_path / "prepared")
    data = [n for n in os.listdir(prepared) if n.startswith("data-")]
    mine = _user_files(prepared, *data)
    argv = command("prepare", prepared, inputs) + ["--allow-existing-files"]
    assert run([*argv, "--seed", "7"], capsys)[0] == 0  # a new plan: the old data folder goes
    assert run([*argv, "--seed", "7", "--shards", "2"], capsys)[0] == 0
    _kept(prepared, mine)
    for name in data:  # only the user's files are left of the old plan's folder
        assert sorted(os.listdir(os.path.join(prepared, name))) == ["mine", "notes.txt"]


def test_an_export_rerun_keeps_user_files_in_its_sub_folders(kinds, tmp_path, capsys):
    made, inputs = kinds
    exported = copy_of(made["export"], tmp_path / "export")
    mine = _user_files(exported, "variables")
    assert run(command("export", exported, inputs), capsys)[0] == 0
    _kept(exported, mine)


def test_a_record_without_a_kind_is_read_by_what_it_lists(kinds, tmp_path, capsys):
    """Records of the previous version listed each entry's command: one command is the kind; a
    folder two commands wrote into is refused as of unknown kind."""
    made, inputs = kinds
    run_dir = copy_of(made["train"], tmp_path / "run")
    path = os.path.join(run_dir, OWNER_FILE)
    with open(path) as f:
        record = json.load(f)
    old = {"format": "facenet_tf.owner/1", "created_folder": True, "runs": [{"command": "train"}],
           "entries": {name: "train" for name in record["entries"]}}
    with open(path, "w") as f:
        json.dump(old, f)
    before = snapshot(run_dir)
    code, err = run(command("align", run_dir, inputs), capsys)
    assert code == 2 and "is a training run written by `train`" in err[0], err
    assert snapshot(run_dir) == before
    assert run([*TRAIN, "--data-dir", inputs["data"], "--output-dir", run_dir], capsys)[0] == 0  # finished: kept
    old["entries"]["skipped.json"] = "align"
    with open(path, "w") as f:
        json.dump(old, f)
    before = snapshot(run_dir)
    code, err = run([*TRAIN, "--restart", "--data-dir", inputs["data"], "--output-dir", run_dir], capsys)
    assert code == 2 and len(err) == 1 and "earlier facenet-tf of unknown kind" in err[0], err
    assert snapshot(run_dir) == before
