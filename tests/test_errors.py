"""A path that exists is never reported as "not found": the message names the real cause (issue 20)."""

import os

import pytest

from facenet_tf.cli import main
from facenet_tf.errors import file_problem


def test_file_problem_names_the_cause(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    assert file_problem(str(tmp_path / "f")) == ""
    assert file_problem(str(tmp_path / "d")) == "is a folder, not a file"
    assert file_problem(str(tmp_path / "dangling")) == "is a dangling link"
    assert file_problem(str(tmp_path / "none")) == "not found"


@pytest.mark.parametrize("argv, words", [
    (["train", "--config", "{d}"], "is a folder, not a file"),
    (["import-dlib", "--output-dir", "{out}", "--dat", "{d}"], "is a folder, not a file"),
    (["verify", "--model", "raw-pixels", "--threshold", "1", "{d}", "{d}"], "is a folder, not a file"),
])
def test_a_folder_given_as_a_file_is_named_as_such(tmp_path, capsys, argv, words):
    (tmp_path / "d").mkdir()
    argv = [a.format(d=tmp_path / "d", out=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "not found" not in err, err
    assert not os.path.exists(tmp_path / "out")
