"""An output never lands in an input through a link, and the project never writes or deletes
through a link it did not make (facenet_tf.overlap, facenet_tf.ownership, facenet_tf.owned_tree).

Inputs are compared as the readers reach them (person folders and images that are links), outputs
as writes would reach them (links inside the output folder), folders by identity (a bind mount).
"""

import os
import subprocess

import pytest

from facenet_tf import ownership
from facenet_tf.cli import main
from facenet_tf.errors import FacenetError
from facenet_tf.overlap import check_disjoint
from test_ownership import assert_kept, assert_refused, run, snapshot, user_folder


def linked_dataset(tmp_path, store):
    """``tmp_path/data``: two person folders that are links to folders of ``store`` (the user's photos)."""
    from facenet_tf.data import write_synthetic_dataset

    write_synthetic_dataset(str(store), num_identities=2, images_per_identity=3, image_size=(32, 32), seed=1)
    data = tmp_path / "data"
    data.mkdir()
    for person in sorted(os.listdir(store)):
        os.symlink(store / person, data / person)
    return data


# --- the rule ---------------------------------------------------------------------------------------

def test_an_output_inside_a_folder_the_data_links_to_is_refused(tmp_path):
    data = linked_dataset(tmp_path, tmp_path / "photos")
    person = tmp_path / "photos" / sorted(os.listdir(data))[0]
    for output in (person, person / "out", tmp_path / "photos"):  # the place a link leads to, inside it, above it
        with pytest.raises(FacenetError, match="which the input .*data reaches through the link"):
            check_disjoint(str(output), [str(data)])
    check_disjoint(str(tmp_path / "photos" / "out"), [str(data)])  # beside the places the data reaches: fine
    os.symlink(data, tmp_path / "alias")  # an output path that is itself a link to the data
    with pytest.raises(FacenetError, match="alias is inside the input folder"):
        check_disjoint(str(tmp_path / "alias"), [str(data)])


def test_an_output_holding_what_the_data_links_to_is_refused(tmp_path):
    data = linked_dataset(tmp_path, tmp_path / "out" / "photos")
    with pytest.raises(FacenetError, match="holds .*photos.*reaches through the link"):
        check_disjoint(str(tmp_path / "out"), [str(data)])
    # An image that is a link counts too (the readers follow it).
    data2 = tmp_path / "data2" / "ada"
    data2.mkdir(parents=True)
    person = tmp_path / "out" / "photos" / sorted(os.listdir(data))[0]
    os.symlink(person / sorted(os.listdir(person))[0], data2 / "0.png")
    with pytest.raises(FacenetError, match="reaches through the link .*ada/0.png"):
        check_disjoint(str(tmp_path / "out"), [str(tmp_path / "data2")])


def test_an_output_folder_holding_a_link_into_the_data_is_refused(tmp_path):
    data = tmp_path / "data" / "ada"
    data.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(data, out / "ada")
    with pytest.raises(FacenetError, match="holds the link .*ada.*reaches the input"):
        check_disjoint(str(out), [str(tmp_path / "data")])
    with pytest.raises(FacenetError, match="holds the link"):  # a link to a folder above the data, too
        os.symlink(tmp_path, out / "up")
        check_disjoint(str(out), [str(data)])


def test_links_the_output_record_lists_as_the_projects_are_its_own(tmp_path):
    """``cluster --link`` writes links to the photos it read: its own, not followed on a re-run."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"photo")
    own = ownership.claim(str(tmp_path / "out"), "cluster", ("links",), inputs=[str(photos)])
    os.makedirs(own.path("links") + "/person_1")
    own.add_files("links", ["person_1/a.jpg"])
    os.symlink(photos / "a.jpg", own.path("links") + "/person_1/a.jpg")
    ownership.claim(str(tmp_path / "out"), "cluster", ("links",), inputs=[str(photos)])  # no refusal
    os.symlink(photos, own.path("links") + "/mine")  # one the project did not write
    with pytest.raises(FacenetError, match="mine"):
        ownership.claim(str(tmp_path / "out"), "cluster", ("links",), inputs=[str(photos)])


def test_a_hard_link_of_an_input_file_is_that_file(tmp_path):
    image = tmp_path / "a.pgm"
    image.write_bytes(b"P5 1 1 255 \x00")
    os.link(image, tmp_path / "gallery.db")
    with pytest.raises(FacenetError, match="is the input file"):
        check_disjoint(str(tmp_path / "gallery.db"), [str(image)], "--gallery")


def test_a_bind_mount_of_the_data_is_the_data(tmp_path):
    data = tmp_path / "data"
    (data / "ada").mkdir(parents=True)
    mount = tmp_path / "mount"
    mount.mkdir()
    proc = subprocess.run(["mount", "--bind", str(data), str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder ({proc.stderr.strip() or 'not root'})")
    try:
        with pytest.raises(FacenetError, match="inside the input folder"):
            check_disjoint(str(mount / "ada" / "out"), [str(data)])
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_listing_a_large_dataset_of_links_stays_cheap(tmp_path):
    """10 000 images in 100 person folders, all links: one listing per folder, links resolved."""
    import time

    store = tmp_path / "store"
    data = tmp_path / "data"
    data.mkdir()
    for p in range(100):
        (store / f"p{p}").mkdir(parents=True)
        (data / f"p{p}").mkdir()
        for i in range(100):
            (store / f"p{p}" / f"{i}.png").touch()
            os.symlink(store / f"p{p}" / f"{i}.png", data / f"p{p}" / f"{i}.png")
    started = time.perf_counter()
    check_disjoint(str(tmp_path / "out"), [str(data)])
    assert time.perf_counter() - started < 5.0  # about 0.1 s on a quiet machine
    with pytest.raises(FacenetError, match="p99"):
        check_disjoint(str(store / "p99"), [str(data)])


# --- every writing command refuses before any work ----------------------------------------------------

#: Each writing command with an output inside a folder its data (person folders that are links) reaches.
COMMANDS = {
    "train": ["train", "--data-dir", "{data}", "--output-dir", "{out}", "--image-size", "32"],
    "prepare": ["prepare", "--data-dir", "{data}", "--output", "{out}"],
    "align": ["align", "--data-dir", "{data}", "--output", "{out}"],
    "enroll": ["enroll", "--model", "{model}", "--gallery", "{out}/g.db", "--from-dir", "{data}", "--no-align"],
    "cluster": ["cluster", "--model", "{model}", "--output", "{out}", "{data}"],
    "evaluate": ["evaluate", "--model", "{model}", "--data-dir", "{data}", "--report", "{out}", "--no-align"],
    "gallery": ["gallery", "calibrate", "--model", "{model}", "--gallery", "{out}/g.db", "--data-dir", "{data}"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_writing_command_refuses_an_output_the_data_links_into(tmp_path, small_model_dir, capsys, command):
    data = linked_dataset(tmp_path, tmp_path / "photos")
    out = tmp_path / "photos" / sorted(os.listdir(data))[0] / "out"
    before = snapshot(tmp_path / "photos")
    argv = [a.format(data=data, out=out, model=small_model_dir, tmp=tmp_path) for a in COMMANDS[command]]
    assert_refused(*run(argv, capsys), "reaches through the link")
    assert not out.exists()
    assert_kept(tmp_path / "photos", before)


def test_export_serve_and_identify_refuse_an_output_joined_to_their_model_by_a_link(tmp_path, small_model_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(small_model_dir, out / "model")
    assert_refused(*run(["export", "--model", small_model_dir, "--output", out, "--allow-existing-files"], capsys),
                   "holds the link", "model")
    assert_refused(*run(["identify", "--model", small_model_dir, "--gallery", tmp_path / "g.db", "--video",
                         tmp_path / "v.mp4", "--annotate", out / "model" / "a.mp4"], capsys),
                   "--annotate", "inside the input folder")
    from facenet_tf.cli import build_parser
    from facenet_tf.cli.serve import config_from_args

    args = build_parser().parse_args(["serve", "--model", small_model_dir, "--gallery", f"{small_model_dir}/g.db"])
    with pytest.raises(FacenetError, match="--gallery .* is inside the input folder"):
        config_from_args(args, environ={})
    assert sorted(os.listdir(out)) == ["model"]


def test_import_dlib_refuses_an_output_folder_its_network_file_links_into(tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    (store / "net.dat").write_bytes(b"not really a network")
    os.symlink(store / "net.dat", tmp_path / "net.dat")
    assert_refused(*run(["import-dlib", "--dat", tmp_path / "net.dat", "--output-dir", store], capsys),
                   "holds the input file")
    assert sorted(os.listdir(store)) == ["net.dat"]


# --- nothing written or deleted through a link the project did not make --------------------------------

def test_a_folder_entry_that_became_a_link_is_refused_and_what_it_leads_to_kept(tmp_path):
    own = ownership.claim(str(tmp_path / "run"), "train", ("checkpoints",))
    os.makedirs(own.path("checkpoints"))
    own.add_files("checkpoints", ["a.h5"])
    (tmp_path / "run" / "checkpoints" / "a.h5").write_bytes(b"ours")
    before = user_folder(tmp_path / "mine", "a.h5")
    os.rename(own.path("checkpoints"), tmp_path / "ours")
    os.symlink(tmp_path / "mine", own.path("checkpoints"))
    with pytest.raises(FacenetError, match="checkpoints is a link to .*mine.*never writes through a link"):
        ownership.claim(str(tmp_path / "run"), "train", ("checkpoints",))
    own.remove_files("checkpoints", ["a.h5"])  # the listed file, reached through the link: kept
    own.remove("checkpoints")  # the link goes, never what it leads to
    assert not os.path.lexists(own.path("checkpoints"))
    assert_kept(tmp_path / "mine", before)


def test_a_listed_folder_replaced_by_a_link_deletes_nothing_through_it(tmp_path):
    own = ownership.claim(str(tmp_path / "run"), "train", ("logs",))
    os.makedirs(own.path("logs") + "/train")
    (tmp_path / "run" / "logs" / "train" / "events.1").write_bytes(b"ours")
    own.list_new_files("logs")
    before = user_folder(tmp_path / "mine", "events.1")
    os.rename(own.path("logs") + "/train", tmp_path / "old")
    os.symlink(tmp_path / "mine", own.path("logs") + "/train")
    with pytest.raises(FacenetError, match="train is a link facenet-tf train did not write"):
        ownership.claim(str(tmp_path / "run"), "train", ("logs",))
    own.remove("logs")  # train --restart: the previous run's own files only
    assert_kept(tmp_path / "mine", before)
    assert os.path.islink(own.path("logs") + "/train")


@pytest.mark.parametrize("listed", [True, False], ids=["beside-its-files", "in-a-folder-of-the-user"])
def test_a_link_planted_inside_an_owned_folder_is_refused_before_a_write_goes_through_it(tmp_path, listed):
    """TensorBoard rewrites ``projector_config.pbtxt`` in place: a link there would be written through."""
    own = ownership.claim(str(tmp_path / "run"), "train", ("logs",))
    os.makedirs(own.path("logs") + "/projections")
    if listed:
        (tmp_path / "run" / "logs" / "projections" / "metadata.tsv").write_text("ada\n")
        own.list_new_files("logs")
    before = user_folder(tmp_path / "mine")
    os.symlink(tmp_path / "mine" / "notes.txt", own.path("logs") + "/projections/projector_config.pbtxt")
    with pytest.raises(FacenetError, match="projector_config.pbtxt is a link .* did not write"):
        ownership.claim(str(tmp_path / "run"), "train", ("logs",))
    assert_kept(tmp_path / "mine", before)


def test_rewriting_a_model_directory_never_writes_through_its_links(tmp_path, small_model_dir):
    """``metadata.json`` and the publication lock replaced by links to a user's files: the new model
    replaces the link (never the file it leads to), and the lock is refused, not truncated."""
    import shutil

    from facenet_tf.artifacts import METADATA_FILE, write_json
    from facenet_tf.serving.export import load_keras_model
    from facenet_tf.models.writer import write_model_directory

    model_dir = tmp_path / "model"
    shutil.copytree(small_model_dir, model_dir, symlinks=True)
    before = user_folder(tmp_path / "mine", "meta.json", "lock")
    os.remove(model_dir / METADATA_FILE)
    os.symlink(tmp_path / "mine" / "meta.json", model_dir / METADATA_FILE)
    write_json(str(model_dir / METADATA_FILE), {"rewritten": True})
    assert not os.path.islink(model_dir / METADATA_FILE)
    assert_kept(tmp_path / "mine", before)

    keras_model, contract, _ = load_keras_model(small_model_dir)
    os.symlink(tmp_path / "mine" / "lock", model_dir / ".model-staging.lock")
    with pytest.raises(FacenetError, match="model-staging.lock"):
        write_model_directory(keras_model, str(model_dir), contract, {})
    assert_kept(tmp_path / "mine", before)


# --- never by a file name ------------------------------------------------------------------------------

def test_train_removes_only_the_half_written_checkpoints_of_files_it_listed(tmp_path, synthetic_dir):
    """A killed run leaves ``.epoch_N.weights.h5.tmp-*`` aside; the next run removes those of the
    checkpoints its record lists, never a user's file that merely has such a name."""
    from facenet_tf.training.state import CHECKPOINT_DIR, RunState

    config = {"data": {"data_dir": synthetic_dir}}
    state = RunState.open(str(tmp_path / "run"), config)
    state.start()
    folder = tmp_path / "run" / CHECKPOINT_DIR
    folder.mkdir()
    state.owner.add_files(CHECKPOINT_DIR, ["epoch_001.weights.h5"])
    ours = folder / ".epoch_001.weights.h5.tmp-abcdefgh.weights.h5"
    mine = folder / ".epoch_002.weights.h5.tmp-12345678.weights.h5"
    ours.write_bytes(b"half a checkpoint")
    mine.write_bytes(b"the user's")
    RunState.open(str(tmp_path / "run"), config).start()
    assert not ours.exists() and mine.read_bytes() == b"the user's"
