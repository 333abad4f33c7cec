"""Plug-in tables (issue 19): adding a backbone, loss or strategy is one registration; the
config validation, the builders and the CLI's choices and help all follow."""

import dataclasses

import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.registry import Registry


def test_registry_checks_names_and_refuses_a_name_taken_twice():
    table = Registry("thing", "--thing")
    table.register("a", 1, help="first")

    @table.register("b", help="second")
    def b():
        return 2

    assert table.names() == ("a", "b") and "a" in table and table.get("b") is b and table.build("b") == 2
    assert table.help() == "a: first; b: second"
    with pytest.raises(FacenetError, match="--thing must be one of a, b; received 'c'"):
        table.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        table.register("a", 3, help="again")


@pytest.fixture
def tiny_backbone():
    """A backbone registered the way a new module would, removed afterwards."""
    from keras import layers

    from facenet_tf.models.backbones import BACKBONES, Backbone

    def build(inputs, image_size):
        return layers.Conv2D(4, 3, strides=2, name="tiny_conv")(inputs)

    BACKBONES.register("tiny_test", Backbone(build, 24), help="a test backbone")
    yield "tiny_test"
    del BACKBONES._entries["tiny_test"]


def test_a_registered_backbone_is_validated_built_and_offered_by_the_cli(tiny_backbone):
    from facenet_tf.cli import build_parser
    from facenet_tf.models import ModelConfig, build_embedding_model
    from facenet_tf.training import TrainConfig

    config = TrainConfig(model=ModelConfig(backbone=tiny_backbone, image_size=(24, 24), embedding_dim=8))
    config.validate()
    model = build_embedding_model(config.model)
    assert model.output_shape == (None, 8) and model.get_layer("tiny_conv")
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert "tiny_test: a test backbone" in {a.dest: a.help for a in train._actions}["model.backbone"]
    with pytest.raises(FacenetError, match="at least 24 pixels"):
        build_embedding_model(dataclasses.replace(config.model, image_size=(16, 16)))


def test_a_registered_loss_and_strategy_are_valid_config_choices():
    import tensorflow as tf

    from facenet_tf import losses
    from facenet_tf.training import TrainConfig
    from facenet_tf.training.config import STRATEGIES
    from facenet_tf.training.distribute import make_strategy

    losses.LOSSES.register("semihard_wide", lambda margin, distance: losses.TripletSemiHardLoss(
        margin=2 * margin, distance=distance), help="semi-hard with twice the margin")
    STRATEGIES.register("one_more", tf.distribute.get_strategy, help="a test strategy")
    try:
        TrainConfig(loss="semihard_wide", strategy="one_more").validate()
        assert losses.get("semihard_wide", margin=0.2).margin == pytest.approx(0.4)
        assert make_strategy("one_more") is tf.distribute.get_strategy()
    finally:
        del losses.LOSSES._entries["semihard_wide"], STRATEGIES._entries["one_more"]
