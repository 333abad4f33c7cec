"""Issue 16: every misuse of every command is one line on stderr, exit 2, no traceback,
and creates no output."""

import os

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
        (T + ["--backbone", "vgg", "--output-dir", "{root}/o7"], "backbone must be one of", "{root}/o7"),
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


def test_verbose_adds_the_traceback(places, capsys):
    assert main(["evaluate", "--model", places["root"] + "/no_model", "--data-dir", places["synthetic"],
                 "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("facenet-tf evaluate: error: no model at")
    assert main(["train", "--epochs", "0", "--verbose", "--output-dir", places["root"] + "/v"]) == 2
    assert "Traceback" in capsys.readouterr().err
