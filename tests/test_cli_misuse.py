"""Issue 16: every misuse of every command is one line on stderr, exit 2, no traceback,
and creates no output."""

import os

import numpy as np
import pytest

from facenet_tf.cli import main


@pytest.fixture(scope="module")
def places(tmp_path_factory, synthetic_dir):
    root = tmp_path_factory.mktemp("misuse")
    (root / "empty").mkdir()
    (root / "a_file").write_text("not a folder")
    one = root / "one_person" / "ada"
    one.mkdir(parents=True)
    for i in range(3):
        os.link(os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0],
                             sorted(os.listdir(os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0])))[i]),
                one / f"{i}.png")
    (root / "no_model").mkdir()
    (root / "corrupt.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "corrupt_sm").mkdir()
    (root / "corrupt_sm" / "saved_model.pb").write_bytes(b"\x00\x01garbage")
    (root / "text.jpg").write_text("<html>not an image</html>")
    (root / "busy").mkdir()
    (root / "busy" / "notes.txt").write_text("the user's")
    (root / "not_a_gallery.db").write_bytes(b"")
    return {"root": str(root), "synthetic": synthetic_dir}


def cases():
    T = ["train", "--epochs", "1", "--steps-per-epoch", "1", "--image-size", "32"]
    return [
        # (argv with {placeholders}, words the one line must contain, output path that must not appear)
        (T + ["--data-dir", "{root}/missing", "--output-dir", "{root}/o1"], "does not exist", "{root}/o1"),
        (T + ["--data-dir", "{root}/empty", "--output-dir", "{root}/o2"], "empty", "{root}/o2"),
        (T + ["--data-dir", "{root}/one_person", "--output-dir", "{root}/o3"], "identit", "{root}/o3"),
        (T + ["--data-dir", "{synthetic}", "--identities-per-batch", "50", "--output-dir", "{root}/o4"],
         "identities_per_batch", "{root}/o4"),
        (T + ["--images-per-identity", "1", "--output-dir", "{root}/o5"], "images_per_identity", "{root}/o5"),
        (["train", "--backbone", "mobilenet_v2", "--image-size", "16", "--output-dir", "{root}/o6"], "at least",
         "{root}/o6"),
        (T + ["--backbone", "vgg", "--output-dir", "{root}/o7"], "(--backbone) must be one of", "{root}/o7"),
        (T + ["--loss", "arcface", "--output-dir", "{root}/o8"], "loss must be one of", "{root}/o8"),
        (T + ["--distance", "manhattan", "--output-dir", "{root}/o9"], "distance must be one of", "{root}/o9"),
        (T + ["--strategy", "tpu", "--output-dir", "{root}/o10"], "strategy must be one of", "{root}/o10"),
        (T + ["--output-dir", "{root}/a_file"], "is a file", None),
        (T + ["--output-dir", "{root}/a_file/sub"], "{root}/a_file", "{root}/a_file/sub"),
        (["train", "--epochs", "0", "--output-dir", "{root}/o11"], "epochs must be 1..", "{root}/o11"),
        (["train", "--steps-per-epoch", "-3", "--output-dir", "{root}/o12"], "steps_per_epoch must be 1..",
         "{root}/o12"),
        (["train", "--epochs", "2", "--freeze-backbone-epochs", "2", "--output-dir", "{root}/o13"],
         "freeze_backbone_epochs", "{root}/o13"),
        (["evaluate", "--model", "{root}/no_model", "--data-dir", "{synthetic}"], "no model at", None),
        (["evaluate", "--model", "{root}/corrupt.keras", "--data-dir", "{synthetic}"], "corrupt.keras", None),
        (["evaluate", "--model", "{root}/corrupt_sm", "--data-dir", "{synthetic}"], "corrupt_sm", None),
        (["evaluate", "--model", "raw-pixels", "--data-dir", "{root}/missing"], "missing", None),
        (["evaluate", "--model", "raw-pixels", "--data-dir", "{synthetic}", "--align", "--no-align"],
         "exclude each other", None),
        (["export", "--model", "{root}/corrupt.keras", "--output", "{root}/e1"], "corrupt.keras", "{root}/e1"),
        (["export", "--model", "{root}/no_model", "--output", "{root}/e2"], "no model at", "{root}/e2"),
        (["export", "--model", "{root}/corrupt.keras", "--output", "{root}/a_file"], "is a file", None),
        (["enroll", "--model", "{root}/no_model", "--gallery", "{root}/g1", "--name", "x", "{root}/text.jpg"],
         "no model at", "{root}/g1"),
        (["enroll", "--model", "raw-pixels", "--gallery", "{root}/g2", "--name", "x", "--from-dir", "{synthetic}"],
         "either", "{root}/g2"),
        (["verify", "--model", "{root}/corrupt.keras", "{root}/text.jpg", "{root}/text.jpg"], "corrupt.keras", None),
        (["identify", "--model", "{root}/no_model", "--gallery", "{root}/g3", "{root}/text.jpg"], "no model at",
         "{root}/g3"),
        (["gallery", "list", "--gallery", "{root}/g4"], "does not exist", "{root}/g4"),
        (["gallery", "list", "--gallery", "{root}/a_file"], "not a facenet_tf gallery", None),
        (["import-dlib", "--dat", "{root}/missing.dat", "--output-dir", "{root}/d1"], "missing.dat", "{root}/d1"),
        (["import-dlib", "--output-dir", "{root}/a_file"], "a_file", None),
        (["prepare", "--data-dir", "{root}/missing", "--output", "{root}/p1"], "does not exist", "{root}/p1"),
        (["prepare", "--data-dir", "{synthetic}", "--output", "{root}/a_file"], "a_file", None),
        (["align", "--data-dir", "{root}/missing", "--output", "{root}/a1"], "does not exist", "{root}/a1"),
        # Issue 20: an output overlapping the data, a folder of the user's files, names that are not text.
        (T + ["--data-dir", "{synthetic}", "--output-dir", "{synthetic}"], "inside the input folder", None),
        (T + ["--data-dir", "{synthetic}", "--output-dir", "{synthetic}/o14"], "inside the input folder",
         "{synthetic}/o14"),
        (T + ["--data-dir", "{root}", "--output-dir", "{root}/o15"], "inside the input folder", "{root}/o15"),
        (T + ["--data-dir", "{synthetic}", "--output-dir", "{root}/busy"], "--allow-existing-files",
         "{root}/busy/run_state.json"),
        (["prepare", "--data-dir", "{synthetic}", "--output", "{synthetic}/p2"], "inside the input folder",
         "{synthetic}/p2"),
        (["prepare", "--data-dir", "{synthetic}", "--output", "{root}/busy"], "--allow-existing-files",
         "{root}/busy/manifest.json"),
        (["align", "--data-dir", "{synthetic}", "--output", "{synthetic}"], "inside the input folder", None),
        (["align", "--data-dir", "{synthetic}", "--output", "{root}/busy"], "--allow-existing-files",
         "{root}/busy/skipped.json"),
        (["export", "--model", "{root}/corrupt.keras", "--output", "{root}/busy"], "--allow-existing-files",
         "{root}/busy/saved_model.pb"),
        (["import-dlib", "--output-dir", "{root}/busy"], "--allow-existing-files", "{root}/busy/model.keras"),
        (["enroll", "--model", "raw-pixels", "--gallery", "{root}/g5", "--name", "ada\nlovelace",
          "{root}/one_person/ada/0.png"], "printable", "{root}/g5"),
        (["enroll", "--model", "raw-pixels", "--gallery", "{root}/not_a_gallery.db", "--name", "ada",
          "{root}/one_person/ada/0.png"], "not a facenet_tf gallery", "{root}/not_a_gallery.db-wal"),
        (["enroll", "--model", "raw-pixels", "--gallery", "{root}/missing/g.db", "--name", "ada",
          "{root}/one_person/ada/0.png"], "does not exist", "{root}/missing"),
    ] + config_flag_cases()


def config_flag_cases():
    """Issues 19/20: the flags generated from ExportConfig, PrepareConfig, AlignConfig, TTAConfig
    and MatchConfig refuse an out-of-range value and a wrongly typed one, in one line, before any
    model is loaded or any file is created (the models and folders given are otherwise good or
    would fail later with another message)."""
    X = ["export", "--model", "{root}/corrupt.keras", "--output", "{root}/e3"]
    P = ["prepare", "--data-dir", "{synthetic}", "--output", "{root}/p3"]
    A = ["align", "--data-dir", "{synthetic}", "--output", "{root}/a3"]
    E = ["enroll", "--model", "{root}/no_model", "--gallery", "{root}/g6", "--name", "ada", "{root}/one_person/ada/0.png"]
    I = ["identify", "--model", "{root}/no_model", "--gallery", "{root}/g7", "{root}/one_person/ada/0.png"]  # noqa: E741
    V = ["verify", "--model", "{root}/no_model", "{root}/one_person/ada/0.png", "{root}/one_person/ada/1.png"]
    Q = ["evaluate", "--model", "{root}/no_model", "--data-dir", "{synthetic}"]
    return [
        (X + ["--num-check", "0"], "num_check must be 1..1024; received 0", "{root}/e3"),
        (X + ["--int8-min-cosine", "high"], "int8_min_cosine must be a number; received 'high'", "{root}/e3"),
        (X + ["--tflite", "float16", "int4"], "tflite must be one of float32, float16, dynamic, int8, all", "{root}/e3"),
        (P + ["--shards", "2000000"], "num_shards (--shards) must be 1..1000000; received 2000000", "{root}/p3"),
        (P + ["--workers", "two"], "workers must be an integer; received 'two'", "{root}/p3"),
        (P + ["--max-pixels", "1e12"], "max_pixels must be an integer; received '1e12'", "{root}/p3"),
        (P + ["--beam-args=--project='unclosed"], "No closing quotation", "{root}/p3"),
        (A + ["--size", "100000"], "size must be 16..2048; received 100000", "{root}/a3"),
        (A + ["--padding", "wide"], "padding must be a number; received 'wide'", "{root}/a3"),
        (A + ["--on-failure", "crash"], "on_failure must be one of skip, resize; received 'crash'", "{root}/a3"),
        (A + ["--align-method", "eyes"], "method (--align-method) must be one of arcface", "{root}/a3"),
        (E + ["--tta", "jitter", "--tta-jitters", "5000"], "jitters (--tta-jitters) must be 1..1000", "{root}/g6"),
        (E + ["--tta-seed", "0.5"], "seed (--tta-seed) must be an integer; received '0.5'", "{root}/g6"),
        (E + ["--face", "middle"], "face must be one of central, largest, confident", "{root}/g6"),
        (I + ["--threshold", "1e7"], "threshold must be 0..1000000; received 10000000.0", "{root}/g7"),
        (I + ["--top-k", "many"], "top_k must be an integer; received 'many'", "{root}/g7"),
        (I + ["--top-k", "0"], "top_k must be 1..1000; received 0", "{root}/g7"),
        (I + ["--index", "annoy"], "index must be one of auto, numpy", "{root}/g7"),
        (V + ["--threshold", "-1"], "threshold must be 0..1000000; received -1.0", None),
        (V + ["--threshold", "near"], "threshold must be a number; received 'near'", None),
        (Q + ["--tta", "rotate"], "mode (--tta) must be one of none, flip, jitter; received 'rotate'", None),
        (Q + ["--align-method", "eyes"], "method (--align-method) must be one of", None),
    ]


@pytest.mark.parametrize("argv,words,output", cases(), ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_misuse_is_one_line_exit_2_and_writes_nothing(places, argv, words, output, capsys):
    fill = lambda text: text.format(**places)  # noqa: E731
    code = main([fill(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(f"facenet-tf {argv[0]}: error:"), err
    assert fill(words) in err[0], err
    if output is not None:
        assert not os.path.exists(fill(output)), fill(output)


def _command_help(name):
    from facenet_tf.cli import build_parser

    command = build_parser()._subparsers._group_actions[0].choices[name]
    return {option: action.help for action in command._actions for option in action.option_strings}


def test_generated_help_shows_each_registry_choice_range_and_default(monkeypatch):
    from facenet_tf.faces.choice import FACE_CHOICES
    from facenet_tf.faces.methods import ALIGN_METHODS
    from facenet_tf.gallery.index import SEARCH_BACKENDS
    from facenet_tf.registry import Entry
    from facenet_tf.serving.tflite import VARIANTS
    from facenet_tf.serving.tta import TTA_MODES

    monkeypatch.setitem(SEARCH_BACKENDS._entries, "annoy", Entry("annoy", object, "approximate, for the test"))
    wanted = {
        "export": {"--tflite": [*VARIANTS, "all", "default: none"], "--num-check": ["1..1024", "default: 16"]},
        "prepare": {"--shards": ["1..1000000", "default: 16"], "--workers": ["0..1024"]},
        "align": {"--align-method": [f"{n}:" for n in ALIGN_METHODS.names()], "--face": list(FACE_CHOICES.names()),
                  "--on-failure": ["one of skip, resize", "default: skip"], "--size": ["16..2048", "default: 112"]},
        "identify": {"--index": ["auto:", "numpy:", "faiss:", "annoy: approximate, for the test"],
                     "--threshold": ["0..1000000"], "--top-k": ["1..1000", "default: 1"],
                     "--tta": [f"{n}:" for n in TTA_MODES.names()], "--tta-jitters": ["1..1000", "default: 10"]},
        "verify": {"--threshold": ["0..1000000"], "--face": ["the model's recorded rule, else central"]},
        "enroll": {"--align-method": ["the model's recorded method, else arcface"]},
    }
    for command, flags in wanted.items():
        helps = _command_help(command)
        for flag, words in flags.items():
            for word in words:
                assert word in helps[flag], (command, flag, word, helps[flag])
    assert "--top-k" not in _command_help("verify") and "--padding" not in _command_help("identify")


def test_verbose_adds_the_traceback(places, capsys):
    assert main(["evaluate", "--model", places["root"] + "/no_model", "--data-dir", places["synthetic"],
                 "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("facenet-tf evaluate: error: no model at")
    assert main(["train", "--epochs", "0", "--verbose", "--output-dir", places["root"] + "/v"]) == 2
    assert "Traceback" in capsys.readouterr().err


# --- Issue 20: what the project reads back is checked, what it writes is its own --------------------

@pytest.fixture(scope="module")
def prepared(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("prepared") / "p"
    assert main(["prepare", "--data-dir", synthetic_dir, "--output", str(out), "--shards", "3", "--workers", "1",
                 "--quiet"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("trained") / "m"
    assert main(["train", "--data-dir", synthetic_dir, "--output-dir", str(out), "--identities-per-batch", "4",
                 "--images-per-identity", "2", "--image-size", "32", "--embedding-dim", "8", "--epochs", "1",
                 "--steps-per-epoch", "1", "--validation-identities", "0", "--verbose", "0"]) == 0
    return str(out)


def _copy(folder, tmp_path, name):
    import shutil

    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def _shards(folder):
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest, [folder / s["file"] for s in manifest["shards"]]


def _train_on(folder, tmp_path):
    return ["train", "--data-dir", str(folder), "--output-dir", str(tmp_path / "run"), "--identities-per-batch", "4",
            "--images-per-identity", "2", "--image-size", "32", "--epochs", "1", "--steps-per-epoch", "1",
            "--verbose", "0"]


def _one_line(capsys, command, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"facenet-tf {command}: error:"), err
    for word in words:
        assert word in err[0], err
    return err[0]


def test_truncated_or_missing_shard_is_one_line_naming_it(prepared, tmp_path, capsys):
    folder = _copy(prepared, tmp_path, "t")
    manifest, shards = _shards(folder)
    size = manifest["shards"][1]["bytes"]
    with open(shards[1], "r+b") as f:
        f.truncate(size - 100)
    assert main(_train_on(folder, tmp_path)) == 2
    _one_line(capsys, "train", f"{shards[1]} is {size - 100} bytes, manifest says {size}", "re-run")
    os.remove(shards[1])
    assert main(_train_on(folder, tmp_path)) == 2
    _one_line(capsys, "train", f"{shards[1]} is missing")
    assert not os.path.exists(tmp_path / "run")


def test_manifest_paths_must_stay_inside_the_prepared_folder(prepared, tmp_path, capsys):
    import json
    import shutil

    folder = _copy(prepared, tmp_path, "escape")
    manifest, shards = _shards(folder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(shards[0], outside / "shard.tfrecord")
    for bad in ("../elsewhere/shard.tfrecord", str(outside / "shard.tfrecord")):
        manifest["shards"][0]["file"] = bad
        (folder / "manifest.json").write_text(json.dumps(manifest))
        assert main(_train_on(folder, tmp_path)) == 2
        _one_line(capsys, "train", "outside")
    manifest["shards"][0]["file"] = "link.tfrecord"
    os.symlink(outside / "shard.tfrecord", folder / "link.tfrecord")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(_train_on(folder, tmp_path)) == 2
    _one_line(capsys, "train", "outside")


def test_prepare_writes_at_most_one_shard_per_image(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "many"
    assert main(["prepare", "--data-dir", synthetic_dir, "--output", str(out), "--shards", "100000", "--workers", "1",
                 "--quiet"]) == 0
    files = [f for _, _, names in os.walk(out) for f in names if f.endswith(".tfrecord")]
    assert 0 < len(files) <= 48, len(files)


def test_a_linked_identity_folder_is_one_identity(synthetic_dir, tmp_path, caplog):
    from facenet_tf.data.catalog import scan_directory

    data = tmp_path / "data"
    data.mkdir()
    names = sorted(os.listdir(synthetic_dir))[:3]
    for name in names:
        os.symlink(os.path.join(synthetic_dir, name), data / name)
    os.symlink(data / names[0], data / "zz_alias")
    with caplog.at_level("WARNING", logger="facenet_tf"):
        catalog = scan_directory(str(data), min_images=1)
    assert catalog.names == tuple(names) and catalog.num_images == 12
    assert "same folder" in caplog.text and "zz_alias" in caplog.text


def test_gallery_names_must_be_printable(synthetic_dir, tmp_path, capsys):
    image = os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    for name in ("ada\nlovelace", "bob\tsmith", "eve\x1b[31m"):
        assert main(["enroll", "--model", "raw-pixels", "--gallery", str(tmp_path / "g.db"), "--name", name,
                     image]) == 2
        _one_line(capsys, "enroll", "printable")
    assert main(["enroll", "--model", "raw-pixels", "--gallery", str(tmp_path / "g.db"), "--name", "Zoë O'Brien",
                 image]) == 0


def test_gallery_model_check_uses_the_weights_loaded_not_metadata(trained_model, synthetic_dir, tmp_path, capsys):
    import json

    folder = _copy(trained_model, tmp_path, "stale")
    meta = json.loads((folder / "metadata.json").read_text())
    meta["fingerprint"] = "0123456789abcdef"
    (folder / "metadata.json").write_text(json.dumps(meta))
    image = os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    assert main(["enroll", "--model", str(folder), "--gallery", str(tmp_path / "g.db"), "--name", "ada", image]) == 2
    _one_line(capsys, "enroll", "0123456789abcdef", "weights loaded")
    assert not os.path.exists(tmp_path / "g.db")


def test_a_model_with_non_finite_weights_is_refused_by_every_command(trained_model, synthetic_dir, tmp_path, capsys):
    from facenet_tf.models.loader import read_keras_file

    model = read_keras_file(os.path.join(trained_model, "model.keras"))
    weights = model.get_weights()
    weights[-2] = weights[-2] * np.float32("nan")
    model.set_weights(weights)
    bad = str(tmp_path / "nan.keras")
    model.save(bad)
    image = os.path.join(synthetic_dir, sorted(os.listdir(synthetic_dir))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    for argv in (["verify", "--model", bad, "--threshold", "1.0", image, image],
                 ["enroll", "--model", bad, "--gallery", str(tmp_path / "g.db"), "--name", "ada", image],
                 ["evaluate", "--model", bad, "--data-dir", synthetic_dir],
                 ["export", "--model", bad, "--output", str(tmp_path / "ex")],
                 ["train", "--init-from", bad, "--data-dir", synthetic_dir, "--output-dir", str(tmp_path / "ft"),
                  "--epochs", "1", "--steps-per-epoch", "1", "--identities-per-batch", "4",
                  "--images-per-identity", "2", "--validation-identities", "0", "--verbose", "0"]):
        assert main(argv) == 2, argv
        _one_line(capsys, argv[0], "NaN or inf")
    for path in ("g.db", "ex", "ft"):
        assert not os.path.exists(tmp_path / path), path


def test_import_refuses_a_dlib_file_whose_numbers_are_not_finite(tmp_path, monkeypatch, capsys):
    """A corrupted .dat that still parses: its model gives NaN, so import refuses it (exit 2, nothing written)."""
    import keras

    import facenet_tf.pretrained.dlib_import as dlib_import

    def corrupted(path, steps=None):
        inputs = keras.Input((150, 150, 3))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        model = keras.Model(inputs, keras.layers.Dense(128)(x))
        model.set_weights([np.full(w.shape, np.float32(3e38)) for w in model.get_weights()])  # finite, overflows
        return model

    monkeypatch.setattr(dlib_import, "load_dlib_model", corrupted)
    monkeypatch.setattr(dlib_import, "sha256_files", lambda paths: "0" * 64)
    dat = tmp_path / "corrupt.dat"
    dat.write_bytes(b"x")
    assert main(["import-dlib", "--dat", str(dat), "--output-dir", str(tmp_path / "d")]) == 2
    _one_line(capsys, "import-dlib", "NaN or inf")
    assert not os.path.exists(tmp_path / "d")
