"""Face alignment (faces/aligner, embedder, folder): MTCNN end to end on real faces."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

from facenet_tf.faces.aligner import AlignConfig, FaceAligner
from facenet_tf.faces.folder import align_directory
from facenet_tf.faces.templates import TEMPLATE_112
from facenet_tf.cli import main
from facenet_tf.errors import FacenetError


def test_missing_mtcnn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtcnn", None)
    with pytest.raises(FacenetError, match=r"pip install 'facenet_tf\[align\]'"):
        FaceAligner()


@pytest.fixture(scope="module")
def aligner():
    pytest.importorskip("mtcnn", reason="the optional mtcnn package is not installed (pip install 'facenet_tf[align]')")
    return FaceAligner(AlignConfig(size=112))


def _orl(orl_dir, person, index):
    return np.asarray(Image.open(os.path.join(orl_dir, person, f"{index}.pgm")).convert("RGB"))


def test_mtcnn_aligned_faces_have_their_eyes_on_the_template(aligner, orl_dir):
    for person, index in (("s1", 2), ("s31", 1), ("s34", 6)):
        face = aligner.align(_orl(orl_dir, person, index))
        assert face.shape == (112, 112, 3)
        again = aligner.landmarks(face)  # detect on the aligned crop: landmarks now sit on the template
        assert again is not None
        assert np.abs(again[:2] - TEMPLATE_112[:2]).max() < 6, (person, again[:2])


def test_no_face_is_reported_and_resize_keeps_it(aligner):
    blank = np.full((112, 92, 3), 128, np.uint8)
    assert aligner.align(blank) is None
    kept = FaceAligner(AlignConfig(size=64, on_failure="resize")).align(blank)
    assert kept.shape == (64, 64, 3)


def test_align_directory_writes_a_complete_copy(aligner, orl_dir, tmp_path):
    src = tmp_path / "src"
    for person in ("s1", "s2"):
        (src / person).mkdir(parents=True)
        for i in (1, 2):
            Image.open(os.path.join(orl_dir, person, f"{i}.pgm")).save(src / person / f"{i}.pgm")
    Image.fromarray(np.full((112, 92), 90, np.uint8)).save(src / "s2" / "blank.png")
    out = tmp_path / "aligned"
    (src / "s3").mkdir()
    Image.open(os.path.join(orl_dir, "s3", "1.pgm")).save(src / "s3" / "1.pgm")
    align_directory(str(src), str(out), AlignConfig(size=96))  # an earlier run, with one more identity
    import shutil

    shutil.rmtree(src / "s3")
    (out / "notes.txt").write_text("the user's, added later")
    report = align_directory(str(src), str(out), AlignConfig(size=96))
    assert report.written == 4 and report.identities == 2
    assert [os.path.basename(p) for p in report.no_face] == ["blank.png"]
    # the earlier run's own s3/ is gone (nothing stale); the user's file is never touched (issue 20)
    assert sorted(os.listdir(out)) == [".facenet_tf-owner.json", "notes.txt", "s1", "s2"]
    assert sorted(os.listdir(out / "s2")) == ["1.png", "2.png"]
    assert Image.open(out / "s1" / "1.png").size == (96, 96)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".aligned")]


def test_align_cli(aligner, orl_dir, tmp_path, capsys):
    src = tmp_path / "src" / "s5"
    src.mkdir(parents=True)
    Image.open(os.path.join(orl_dir, "s5", "1.pgm")).save(src / "1.pgm")
    assert main(["align", "--data-dir", str(tmp_path / "src"), "--output", str(tmp_path / "out"), "--size", "64"]) == 0
    assert "wrote 1 aligned faces of 1 identities" in capsys.readouterr().out
    assert os.path.isfile(tmp_path / "out" / "s5" / "1.png")


def test_align_cli_user_errors_exit_2(tmp_path, capsys):
    assert main(["align", "--data-dir", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["align", "--data-dir", str(tmp_path), "--output", str(tmp_path / "o"), "--size", "8"]) == 2
    assert "size must be 16..2048; received 8" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def _pixel_embedder(size=32):
    from facenet_tf.serving.inference import Embedder

    def fn(x):
        flat = np.asarray(x, np.float32).reshape(len(x), -1)
        flat = flat - flat.mean(axis=1, keepdims=True)
        return flat / np.linalg.norm(flat, axis=1, keepdims=True)

    return Embedder(fn, (size, size), size * size * 3, {}, "pixels", "pixels")


def test_aligned_embedder_undoes_a_shift_and_zoom(aligner, orl_dir, tmp_path):
    from facenet_tf.recognition.aligned import AlignedEmbedder

    image = _orl(orl_dir, "s12", 1)
    Image.fromarray(image).save(tmp_path / "a.png")
    moved = np.zeros((160, 140, 3), np.uint8)  # the same face, shifted and 20% larger
    moved[18:18 + 134, 20:20 + 110] = np.asarray(Image.fromarray(image).resize((110, 134)))
    Image.fromarray(moved).save(tmp_path / "b.png")
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    plain = _pixel_embedder()
    aligned = AlignedEmbedder(plain)
    assert aligned.fingerprint == "pixels+aligned112" and aligned.image_size == (32, 32)
    a, b = aligned.embed_files(paths)
    from facenet_tf.data.images import load_images

    p, q = plain.embed_pixels(load_images(paths, (32, 32)))
    assert float(a @ b) > 0.95 and float(a @ b) > float(p @ q) + 0.1, (float(a @ b), float(p @ q))
    Image.fromarray(np.full((112, 92, 3), 128, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(FacenetError, match="no face found in .*blank.png"):
        aligned.embed_files([paths[0], str(tmp_path / "blank.png")])


def test_align_flag_on_recognition_commands(aligner, orl_dir, tmp_path, capsys):
    from facenet_tf.models import ModelConfig, build_embedding_model

    model_path = str(tmp_path / "m.keras")
    build_embedding_model(ModelConfig(image_size=(32, 32), embedding_dim=8)).save(model_path)
    faces = [os.path.join(orl_dir, "s3", f"{i}.pgm") for i in (1, 2)]
    gallery = str(tmp_path / "g.sqlite")
    assert main(["verify", "--align", "--model", model_path, "--threshold", "4", *faces]) == 0
    assert "same person" in capsys.readouterr().out
    assert main(["enroll", "--align", "--quiet", "--model", model_path, "--gallery", gallery, "--name", "s3", faces[0]]) == 0
    assert main(["identify", "--align", "--model", model_path, "--gallery", gallery, "--threshold", "4", faces[1]]) == 0
    assert "s3" in capsys.readouterr().out
    assert main(["identify", "--model", model_path, "--gallery", gallery, faces[1]]) == 2  # enrolled aligned
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_batched_detection_finds_what_single_detection_finds(aligner, orl_dir):
    images = [_orl(orl_dir, person, 1) for person in ("s1", "s7", "s19")] + [np.full((112, 92, 3), 128, np.uint8)]
    batched = aligner.detect_many(images)
    for image, faces in zip(images, batched):
        single = aligner.detect(image)
        assert len(faces) == len(single)
        for a, b in zip(faces, single):
            np.testing.assert_allclose(a.box, b.box, atol=1.0)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1.0)
    assert batched[-1] == []


def test_evaluate_reports_alignment_paths_and_takes_face_and_tta_flags(aligner, orl_dir, tmp_path, capsys):
    import json

    src = tmp_path / "src"
    for person in ("s2", "s9", "s14"):
        (src / person).mkdir(parents=True)
        for i in (1, 2, 3, 4):
            Image.open(os.path.join(orl_dir, person, f"{i}.pgm")).save(src / person / f"{i}.png")
    Image.fromarray(np.full((112, 92), 90, np.uint8)).save(src / "s9" / "blank.png")
    argv = ["evaluate", "--model", "raw-pixels", "--data-dir", str(src), "--align", "--quiet", "--face", "largest",
            "--tta", "flip"]
    assert main(argv) == 2  # arcface, on_failure skip: the blank image is an error naming it
    assert "blank.png" in capsys.readouterr().err
    os.remove(src / "s9" / "blank.png")
    assert main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["alignment"] == {"method": "arcface", "face": "largest", "detector": "mtcnn", "aligned": 12, "whole_image_landmarks": 0,
                                   "resized": 0, "no_face": 0, "multiple_faces": 0}
    assert "alignment: 12 faces aligned" in out
