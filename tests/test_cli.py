import json
import os
import subprocess
import sys

import pytest

from facenet_tf.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("argv,message", [
    (["train", "--data-dir", "/no/such/folder"], "does not exist"),
    (["train", "--backbone", "vgg"], "(--backbone) must be one of"),
    (["train", "--loss", "arcface"], "loss must be one of"),
    (["train", "--image-size", "12x"], "image_size"),
    (["evaluate", "--model", "/no/such/model", "--data-dir", "."], "no model at"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main([*argv, *(["--output-dir", str(tmp_path)] if argv[0] == "train" else [])])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_pipeline_script_exit_code_and_message(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "pipelines", "train.py"), "--data-dir", str(tmp_path / "x"),
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("facenet-tf train: error:")
    assert "Traceback" not in proc.stderr


def test_evaluate_prints_summary_then_json(synthetic_dir, capsys):
    assert main(["evaluate", "--model", "raw-pixels", "--image-size", "24", "--data-dir", synthetic_dir, "--one-shot",
                 "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model raw-pixels")
    report = json.loads(lines[-1])
    for key in ("accuracy", "accuracy_std", "auc", "eer", "val_at_far_1e-3", "threshold", "num_images",
                "num_identities", "num_pairs", "one_shot_top1", "one_shot_top5", "open_set_dir_at_far_1e-2"):
        assert key in report, key
    assert report["num_images"] == 48 and report["num_identities"] == 12 and report["num_pairs"] == 48 * 47 // 2


def test_prepare_writes_shards(synthetic_dir, tmp_path, capsys):
    assert main(["prepare", "--data-dir", synthetic_dir, "--output", str(tmp_path / "s"), "--shards", "2"]) == 0
    from facenet_tf.ownership import OWNER_FILE

    names = sorted(n for n in os.listdir(tmp_path / "s") if n != OWNER_FILE)  # the folder's ownership record aside
    assert names[0].startswith("data-") and names[1:] == ["manifest.json", "skipped.json"]
    assert sorted(os.listdir(tmp_path / "s" / names[0])) == ["shard-00000-of-00002.tfrecord",
                                                             "shard-00001-of-00002.tfrecord"]


def test_every_command_has_its_pipeline_script():
    from facenet_tf.cli import COMMANDS

    for name in COMMANDS:
        with open(os.path.join(REPO, "pipelines", f"{name.replace('-', '_')}.py")) as f:
            assert f'main(["{name}", *sys.argv[1:]])' in f.read(), name
    scripts = {n[:-3] for n in os.listdir(os.path.join(REPO, "pipelines")) if n.endswith(".py")}
    assert scripts == {name.replace("-", "_") for name in COMMANDS}
