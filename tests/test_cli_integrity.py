"""Issue 28: what is read back is checked (gallery rows, names, pairs files, shard records) and
every message names the real cause in the user's terms."""

import os
import sqlite3
import unicodedata

import numpy as np
import pytest

from facenet_tf.cli import main
from facenet_tf.errors import FacenetError
from facenet_tf.gallery import Gallery

from conftest import cli_without_dac_override  # tests/ is on sys.path
from test_cli_misuse import _one_line, trained_model  # noqa: F401  (a fixture, shared)


def _first_image(folder, person=0, image=0):
    person = os.path.join(folder, sorted(os.listdir(folder))[person])
    return os.path.join(person, sorted(os.listdir(person))[image])


# --- galleries ---------------------------------------------------------------------------------------

@pytest.fixture
def enrolled(synthetic_dir, tmp_path):
    """A raw-pixels gallery of two people (ada: 2 images, bob: 1)."""
    gallery = str(tmp_path / "g.db")
    assert main(["enroll", "--model", "raw-pixels", "--gallery", gallery, "--name", "ada",
                 _first_image(synthetic_dir, 0, 0), _first_image(synthetic_dir, 0, 1)]) == 0
    assert main(["enroll", "--model", "raw-pixels", "--gallery", gallery, "--name", "bob",
                 _first_image(synthetic_dir, 1, 0)]) == 0
    return gallery


def _damage(gallery, name, blob):
    with sqlite3.connect(gallery) as db:
        db.execute("UPDATE entries SET embedding = ? WHERE id = (SELECT MAX(id) FROM entries WHERE name = ?)",
                   (blob, name))


@pytest.mark.parametrize("problem", ["short", "nan", "inf", "text"])
def test_a_damaged_gallery_row_is_an_integrity_error_naming_its_person(enrolled, synthetic_dir, capsys, problem):
    with Gallery.open(enrolled, "raw-pixels", 56 * 46, create=False) as gallery:
        _, _, vectors = gallery._store.read_all(gallery.embedding_dim)
    row = vectors[-1].copy()
    blob = {"short": row[:-3].tobytes(), "nan": np.where(np.arange(len(row)) == 5, np.nan, row).astype("<f4").tobytes(),
            "inf": np.full_like(row, np.inf).tobytes(), "text": "not bytes"}[problem]
    _damage(enrolled, "bob", blob)
    capsys.readouterr()
    assert main(["identify", "--model", "raw-pixels", "--gallery", enrolled, "--threshold", "1",
                 _first_image(synthetic_dir, 1, 0)]) == 2
    line = _one_line(capsys, "identify", enrolled, "damaged", "'bob'", "gallery remove")
    assert "reshape" not in line
    with Gallery.open(enrolled, "raw-pixels", 56 * 46, create=False) as gallery:
        with pytest.raises(FacenetError, match="'bob'"):
            gallery.search(vectors[:1])
    # the way out the message names works on the damaged gallery
    assert main(["gallery", "remove", "--gallery", enrolled, "--name", "bob"]) == 0
    assert main(["identify", "--model", "raw-pixels", "--gallery", enrolled, "--threshold", "1",
                 _first_image(synthetic_dir, 0, 0)]) == 0


def test_names_are_one_person_after_nfc_and_trimming(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "Zoë"), unicodedata.normalize("NFD", "Zoë")
    assert nfc != nfd
    with Gallery.open(str(tmp_path / "g.db"), "m", 4) as gallery:
        gallery.enroll([nfc, nfd, "alice ", "alice", "\talice\u00a0"], np.eye(5, 4) + 1)
        assert gallery.list() == [("Zoë", 2), ("alice", 3)]
        assert {n.name for n in gallery.search(np.ones((1, 4)), k=5)[0]} == {"Zoë", "alice"}
        assert gallery.remove(nfd + " ") == 2 and gallery.remove(" alice") == 3 and len(gallery) == 0


def test_an_empty_name_is_named_as_the_flag(synthetic_dir, tmp_path, capsys):
    for name in ("", "   "):
        assert main(["enroll", "--model", "raw-pixels", "--gallery", str(tmp_path / "g.db"), "--name", name,
                     _first_image(synthetic_dir)]) == 2
        line = _one_line(capsys, "enroll", "--name is empty")
        assert "names[" not in line
    assert not os.path.exists(tmp_path / "g.db")


def test_threshold_inf_must_be_finite(synthetic_dir, capsys):
    image = _first_image(synthetic_dir)
    for value in ("inf", "nan", "-inf"):
        assert main(["verify", "--model", "raw-pixels", f"--threshold={value}", image, image]) == 2
        _one_line(capsys, "verify", "threshold must be a finite number")


def test_a_read_only_gallery_can_be_listed(enrolled, tmp_path):
    folder = os.path.dirname(enrolled)
    os.chmod(enrolled, 0o444)
    try:
        listed = cli_without_dac_override(["gallery", "list", "--gallery", enrolled])
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert "ada\t2" in listed.stdout and "bob\t1" in listed.stdout
        os.chmod(folder, 0o555)  # nor can a -shm file be made beside it
        listed = cli_without_dac_override(["gallery", "list", "--gallery", enrolled])
        assert listed.returncode == 0 and "bob\t1" in listed.stdout, listed.stderr[-2000:]
        removed = cli_without_dac_override(["gallery", "remove", "--gallery", enrolled, "--name", "bob"])
        assert removed.returncode == 2 and "cannot write gallery" in removed.stderr, removed.stderr[-2000:]
    finally:
        os.chmod(folder, 0o755)
        os.chmod(enrolled, 0o644)


def test_a_full_disk_while_enrolling_into_a_gallery_says_no_space(small_disk, tmp_path):
    import shutil

    gallery = str(small_disk / "g.db")
    with Gallery.open(gallery, "m", 128) as g:
        g.enroll(["ada"], np.ones((1, 128)))
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * shutil.disk_usage(small_disk).free)
    with pytest.raises(FacenetError, match="no space left on the device") as caught:
        with Gallery.open(gallery, "m", 128) as g:
            g.enroll(["bob"] * 50, np.ones((50, 128)))
    assert "I/O" not in str(caught.value)
    os.remove(small_disk / "filler")
    with Gallery.open(gallery, "m", 128) as g:
        assert g.list() == [("ada", 1)]


def test_no_align_on_a_model_that_records_its_alignment_has_its_own_fingerprint(monkeypatch):
    from facenet_tf.cli import build_parser
    from facenet_tf.cli.common import recognizer_from_args
    from facenet_tf.models.contract import ModelContract
    from facenet_tf.models.recorded import RecordedAlignment
    from facenet_tf.recognition import aligned
    from facenet_tf.serving.inference import Embedder

    contract = ModelContract(architecture="dlib_resnet_v1", image_size=(150, 150), embedding_dim=4,
                             fingerprint="f" * 16, alignment=RecordedAlignment(method="dlib_landmarks",
                                                                                detector="dlib_hog", size=150))
    recorded = Embedder(lambda x: x[:, 0, 0, :1], (150, 150), 4, contract, "f" * 16, "m")
    plain = Embedder(lambda x: x[:, 0, 0, :1], (150, 150), 4, None, "p" * 16, "p")
    prints = {}
    for model, embedder in (("recorded", recorded), ("plain", plain)):
        monkeypatch.setattr(aligned, "load_embedder", lambda path, image_size=None, e=embedder: e)
        for flags in ([], ["--no-align"]):
            args = build_parser().parse_args(["identify", "--gallery", "g", *flags, "x.png"])
            prints[model, tuple(flags)] = recognizer_from_args(args).fingerprint
    assert prints["recorded", ()] == "f" * 16  # galleries enrolled the default way stay valid
    assert prints["recorded", ("--no-align",)] == "f" * 16 + "+noalign"
    assert prints["plain", ()] == prints["plain", ("--no-align",)] == "p" * 16


# --- shards ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(tmp_path_factory, synthetic_dir):
    out = tmp_path_factory.mktemp("prepared") / "p"
    assert main(["prepare", "--data-dir", synthetic_dir, "--output", str(out), "--shards", "2", "--workers", "1",
                 "--quiet"]) == 0
    return out


@pytest.mark.parametrize("where", ["payload", "framing"])
def test_damaged_shard_bytes_of_the_right_size_are_one_line_and_the_run_is_not_left_running(
        prepared, tmp_path, capsys, where):
    import json
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(prepared, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    shard = folder / manifest["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    if where == "payload":  # every record's bytes after its framing: names, paths, pixels
        for start in range(0, len(data), 97):
            data[start + 20:start + 40] = b"\xff" * 20
    else:
        data[:] = b"\xfe" * len(data)
    shard.write_bytes(bytes(data))
    run = tmp_path / "run"
    argv = ["train", "--data-dir", str(folder), "--output-dir", str(run), "--identities-per-batch", "4",
            "--images-per-identity", "2", "--image-size", "32", "--epochs", "1", "--steps-per-epoch", "2",
            "--embedding-dim", "8", "--validation-identities", "0", "--verbose", "0"]
    assert main(argv) == 2
    line = _one_line(capsys, "train", str(shard), "record")
    assert "UnicodeDecodeError" not in line and "codec" not in line
    state = json.loads((run / "run_state.json").read_text())
    assert state["status"] == "stopped", state


# --- one extension set for every reader ----------------------------------------------------------------

def test_prepare_reads_the_avif_files_identify_reads_and_reports_heic_it_cannot_decode(synthetic_dir, tmp_path):
    from PIL import Image, features

    from facenet_tf.data.catalog import scan_directory, usable_catalog
    from facenet_tf.data.report import SkipReport

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec (Pillow >= 11.2 wheels have one)")
    root = tmp_path / "people"
    for person in range(2):
        (root / f"p{person}").mkdir(parents=True)
        for image in range(2):
            Image.open(_first_image(synthetic_dir, person, image)).convert("RGB").save(
                root / f"p{person}" / f"{image}.avif")
    (root / "p0" / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    report = SkipReport()
    catalog = usable_catalog(scan_directory(str(root), min_images=1, report=report), report)
    assert sorted(os.path.basename(p) for p in catalog.paths) == ["0.avif", "0.avif", "1.avif", "1.avif"]
    heic = [s for s in report.skipped if s["path"].endswith("phone.heic")]
    heif_plugin = "HEIF" in Image.registered_extensions().get(".heic", "")
    assert heif_plugin or (len(heic) == 1 and heic[0]["reason"] in ("not_an_image", "corrupt")), report.skipped


# --- messages in the user's terms -----------------------------------------------------------------------

def test_one_identity_is_said_in_the_users_terms(synthetic_dir, tmp_path, capsys):
    one = tmp_path / "one" / "ada"
    one.mkdir(parents=True)
    for i in range(3):
        os.link(_first_image(synthetic_dir, 0, i), one / f"{i}.png")
    assert main(["train", "--data-dir", str(tmp_path / "one"), "--output-dir", str(tmp_path / "run"), "--epochs", "1",
                 "--image-size", "32"]) == 2
    line = _one_line(capsys, "train", "holds 1 identity", "training needs at least 2")
    assert "between 0 and -1" not in line


def test_commands_without_strict_do_not_suggest_it(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html>not an image</html>")
    assert main(["verify", "--model", "raw-pixels", "--threshold", "1", str(bad), str(bad)]) == 2
    line = _one_line(capsys, "verify", str(bad), "not an image")
    assert "--strict" not in line
    gallery = tmp_path / "g.db"
    with Gallery.open(str(gallery), "raw-pixels", 56 * 46) as g:
        g.enroll(["ada"], np.ones((1, 56 * 46)))
    assert main(["identify", "--model", "raw-pixels", "--gallery", str(gallery), "--threshold", "1", str(bad)]) == 2
    assert "--strict" not in _one_line(capsys, "identify", str(bad))


def test_a_model_without_metadata_json_says_so(trained_model, synthetic_dir, tmp_path, capsys):
    import shutil

    folder = tmp_path / "bare"
    shutil.copytree(trained_model, folder)
    os.remove(folder / "metadata.json")
    shutil.rmtree(folder / "saved_model")  # it carries a copy in its assets: a folder of model.keras alone
    image = _first_image(synthetic_dir)
    assert main(["verify", "--model", str(folder), image, image]) == 2
    line = _one_line(capsys, "verify", "metadata.json", "--threshold")
    assert "records no calibrated threshold" not in line
    assert main(["verify", "--model", str(trained_model), image, image]) == 2  # trained without validation
    _one_line(capsys, "verify", "records no calibrated threshold")


def test_a_truncated_model_keras_is_not_file_not_found(trained_model, synthetic_dir, tmp_path, capsys):
    with open(os.path.join(trained_model, "model.keras"), "rb") as f:
        data = f.read()
    image = _first_image(synthetic_dir)
    for name, content in (("half.keras", data[:len(data) // 2]), ("empty.keras", b""), ("tail.keras", data[:-40])):
        (tmp_path / name).write_bytes(content)
        assert main(["verify", "--model", str(tmp_path / name), "--threshold", "1", image, image]) == 2
        line = _one_line(capsys, "verify", name)
        assert "not found" not in line.lower(), line
        assert any(word in line for word in ("truncated", "empty", "damaged")), line


def test_align_names_the_users_file_not_the_temporary_folder(synthetic_dir, tmp_path, capsys):
    pytest.importorskip("mtcnn")
    from PIL import Image

    person = tmp_path / "data" / "ada"
    person.mkdir(parents=True)
    face = Image.open(_first_image(synthetic_dir)).convert("RGB")
    long = "x" * 250
    face.save(person / f"{long}.jpg")
    face.save(person / f"{long}.png")  # both become <name>.png: the second one's name grows past the limit
    out = tmp_path / "aligned"
    assert main(["align", "--data-dir", str(tmp_path / "data"), "--output", str(out), "--on-failure", "resize"]) == 2
    line = _one_line(capsys, "align", str(person / long), str(out / "ada"), "name is too long", "rename")
    assert ".tmp" not in line
    assert not os.path.exists(out)


def test_the_tensorboard_hint_quotes_a_path_with_spaces(tmp_path, monkeypatch, capsys):
    import shlex
    from types import SimpleNamespace

    import facenet_tf.training.run

    out = tmp_path / "my runs" / "run 1"
    monkeypatch.setattr(facenet_tf.training.run, "train", lambda config, **kwargs: SimpleNamespace(
        already_finished=False, output_dir=str(out), metrics={}))
    assert main(["train", "--output-dir", str(out)]) == 0
    hint = [line for line in capsys.readouterr().out.splitlines() if line.startswith("TensorBoard:")]
    assert hint == [f"TensorBoard: tensorboard --logdir {shlex.quote(str(out / 'logs'))}"]
    assert shlex.split(hint[0])[-1] == str(out / "logs")


def test_train_flags_are_named_not_only_their_config_paths(tmp_path, capsys):
    for flag, value, words in (("--identities-per-batch", "0", "(--identities-per-batch) must be 2..8192"),
                               ("--augment-zoom", "5", "(--augment-zoom) must be 0..0.9"),
                               ("--dropout", "2", "(--dropout) must be")):
        assert main(["train", flag, value, "--output-dir", str(tmp_path / "run")]) == 2
        _one_line(capsys, "train", words)
    assert not os.path.exists(tmp_path / "run")
