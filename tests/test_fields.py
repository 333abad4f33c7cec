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
    ("margin", float("nan"), "margin must be a finite number"),
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
    ({"data": {"identities_per_batch": 10_000_000, "images_per_identity": 100}}, "data.identities_per_batch (--identities-per-batch) must be"),
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


# --- The other commands' configs (issue 19 item 3, issue 20 item 2) ------------------------------

def _command_configs():
    from facenet_tf.data.prepare_config import PrepareConfig
    from facenet_tf.evaluation.config import EvaluateConfig
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.gallery.config import MatchConfig
    from facenet_tf.serving.export_config import ExportConfig
    from facenet_tf.serving.tta import TTAConfig

    return (ExportConfig, PrepareConfig, AlignConfig, TTAConfig, MatchConfig, EvaluateConfig)


@pytest.mark.parametrize("cls", _command_configs(), ids=lambda c: c.__name__)
def test_every_command_config_field_has_a_rule_and_a_finite_range(cls):
    for path, hint, field in fields.leaves(cls):
        rule = fields.rule(field)
        assert rule is not None and rule.help, path
        inner, _ = fields._optional(hint)
        if inner in (int, float) or path == "image_size":
            assert rule.low is not None and rule.high is not None and rule.high <= 2**31, path
    fields.validate(cls())  # the defaults pass their own rules


@pytest.mark.parametrize("make, words", [
    (lambda m: m["ExportConfig"](num_representative=10**6), "num_representative must be 1..4096; received 1000000"),
    (lambda m: m["ExportConfig"](tflite=["int8"]), "tflite must be a list of text; received ['int8'] (list)"),
    (lambda m: m["ExportConfig"](int8_min_cosine=0.0), "int8_min_cosine must be > 0, <= 1; received 0.0"),
    (lambda m: m["PrepareConfig"](num_shards="4"), "num_shards (--shards) must be an integer; received '4' (str)"),
    (lambda m: m["PrepareConfig"](workers=-1), "workers must be 0..1024; received -1"),
    (lambda m: m["PrepareConfig"](strict=1), "strict must be true or false; received 1 (int)"),
    (lambda m: m["AlignConfig"](size=112.0), "size must be an integer; received 112.0 (float)"),
    (lambda m: m["AlignConfig"](min_confidence=1.5), "min_confidence must be 0..1; received 1.5"),
    (lambda m: m["AlignConfig"](method="eyes"), "method (--align-method) must be one of arcface, dlib_chip"),
    (lambda m: m["TTAConfig"](jitters=True), "jitters (--tta-jitters) must be an integer; received True (bool)"),
    (lambda m: m["TTAConfig"](mode="rotate"), "mode (--tta) must be one of none, flip, jitter; received 'rotate'"),
    (lambda m: m["MatchConfig"](threshold=float("inf")), "threshold must be a finite number; received inf"),
    (lambda m: m["MatchConfig"](threshold=2e6), "threshold must be 0..1000000; received 2000000.0"),
    (lambda m: m["MatchConfig"](top_k=0), "top_k must be 1..1000; received 0"),
    (lambda m: m["MatchConfig"](index="annoy"), "index must be one of auto, numpy"),
])
def test_command_configs_name_the_field_its_flag_and_the_value(make, words):
    config = make({cls.__name__: cls for cls in _command_configs()})
    with pytest.raises(FacenetError) as error:
        config.validate()
    assert words in str(error.value) and "\n" not in str(error.value)


def test_library_calls_check_the_same_rules_before_any_file(synthetic_dir, tmp_path):
    """export, prepare, align, identify and verify as library calls: a bad option is refused
    before a model is loaded, an image read or an output created."""
    from facenet_tf.data.prepare_config import PrepareConfig
    from facenet_tf.data.prepare import prepare
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.folder import align_directory
    from facenet_tf.gallery.service import identify, verify
    from facenet_tf.serving.export import ExportConfig, export_model

    missing = str(tmp_path / "no_model")
    calls = [
        (lambda: export_model(missing, str(tmp_path / "e"), ExportConfig(seed=-1)), "seed must be 0..", "e"),
        (lambda: prepare(synthetic_dir, str(tmp_path / "p"), PrepareConfig(min_images=0)), "min_images must be", "p"),
        (lambda: align_directory(synthetic_dir, str(tmp_path / "a"), AlignConfig(padding=-0.5)), "padding must be", "a"),
        (lambda: identify(None, str(tmp_path / "g"), ["x.png"], 0.5, top_k=10**6), "top_k must be 1..1000", "g"),
        (lambda: identify(None, str(tmp_path / "g"), ["x.png"], "0.5"), "threshold must be a number", "g"),
        (lambda: verify(None, "x.png", "y.png", threshold=-0.1), "threshold must be 0..1000000", None),
    ]
    for call, words, output in calls:
        with pytest.raises(FacenetError, match=words.replace("(", r"\(")):
            call()
        if output is not None:
            assert not os.path.exists(tmp_path / output), output


def test_a_wrongly_typed_flag_is_one_line_not_argparse_usage(tmp_path, capsys):
    """Flags are converted by config_flags, so ``--epochs six`` reads like ``--epochs 0``."""
    for argv, words in ((["train", "--epochs", "six"], "epochs must be an integer; received 'six'"),
                        (["train", "--learning-rate", "fast"], "learning_rate must be a number; received 'fast'"),
                        (["prepare", "--data-dir", str(tmp_path), "--output", str(tmp_path / "o"), "--shards", "4.5"],
                         "num_shards (--shards) must be an integer; received '4.5'")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "usage" not in err[0], err
    assert not os.path.exists(tmp_path / "o")
