"""Config field rules (facenet_tf.fields): one place for each field's type and range,
read by the library, ``--config`` files and the command line alike (issues 19, 20)."""

import dataclasses
import json
import os

import pytest

from facenet_tf import fields
from facenet_tf.cli import main
from facenet_tf.errors import FacenetError
from facenet_tf.training import TrainConfig


def test_every_numeric_field_has_a_range_a_machine_can_hold_and_every_field_a_rule():
    for path, hint, field in fields.leaves(TrainConfig):
        rule = fields.rule(field)
        assert rule is not None and rule.help, path
        inner, _ = fields._optional(hint)
        if inner in (int, float) or path == "model.image_size":
            assert rule.low is not None and rule.high is not None, path
            assert rule.high < 2**31, path


@pytest.mark.parametrize("path, value, words", [
    ("epochs", "5", "epochs must be an integer"),
    ("epochs", True, "epochs must be an integer"),
    ("epochs", 10**9, "epochs must be 1..100000"),
    ("margin", float("nan"), "margin must be a number"),
    ("learning_rate", 0.0, "learning_rate must be > 0"),
    ("jit_compile", "yes", "jit_compile must be true or false"),
    ("data.identities_per_batch", 100_000, "identities_per_batch must be 2..8192"),
    ("data.augment.contrast", 5.0, "contrast must be 0..1"),
    ("model.embedding_dim", 1, "embedding_dim must be 2..4096"),
    ("model.image_size", (16, 100_000), "image_size must be 16..2048"),
    ("loss", "arcface", "loss must be one of"),
    ("strategy", "tpu", "strategy must be one of"),
])
def test_validate_names_the_field_and_the_value(path, value, words):
    from facenet_tf.cli.config_flags import with_value

    config = with_value(TrainConfig(), path, value)
    with pytest.raises(FacenetError, match=words.replace("(", r"\(").replace("+", r"\+")):
        config.validate()


def test_rules_across_fields_refuse_settings_that_never_form_triplets():
    with pytest.raises(FacenetError, match="images per batch"):
        TrainConfig(data=dataclasses.replace(TrainConfig().data, identities_per_batch=8192,
                                             images_per_identity=1024)).validate()
    with pytest.raises(FacenetError, match="synthetic identities"):
        TrainConfig(data=dataclasses.replace(TrainConfig().data, identities_per_batch=200)).validate()
    with pytest.raises(FacenetError, match="images of each synthetic identity"):
        TrainConfig(data=dataclasses.replace(TrainConfig().data, images_per_identity=20)).validate()


@pytest.mark.parametrize("values, words", [
    ({"epochs": "5"}, "epochs must be an integer"),
    ({"data": {"identities_per_batch": 10_000_000, "images_per_identity": 100}}, "identities_per_batch must be"),
    ({"data": {"synthetic_identities": 100_000, "synthetic_images_per_identity": 10_000}}, "generated in memory"),
    ({"model": {"image_size": "huge"}}, "image_size must be N or HxW"),
    ({"data": []}, "must be a JSON object"),
])
def test_config_file_mistakes_are_one_line_before_any_file(tmp_path, capsys, values, words):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(values))
    out = tmp_path / "out"
    assert main(["train", "--config", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not os.path.exists(out)


def test_cli_help_comes_from_the_rules():
    from facenet_tf.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {a.dest: a.help for a in train._actions}
    assert "1..100000" in helps["epochs"] and "default: 6" in helps["epochs"]
    assert "semihard" in helps["loss"] and "mirrored" in helps["strategy"]
    assert "small_cnn" in helps["model.backbone"]
