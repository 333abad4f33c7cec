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


def test_a_registered_loss_with_its_own_hyperparameter_is_built_from_the_config():
    from facenet_tf import losses
    from facenet_tf.training import TrainConfig

    def scaled(scale=1.0, distance="squared_l2"):  # no margin: its own hyperparameter instead
        return losses.TripletSemiHardLoss(margin=0.1 * scale, distance=distance)

    losses.LOSSES.register("semihard_scaled", scaled, help="semi-hard with a margin of scale/10")
    try:
        config = TrainConfig(loss="semihard_scaled", loss_options=("scale=3",))
        config.validate()
        assert losses.hyperparameters("semihard_scaled") == ("scale", "distance")
        built = losses.get(config.loss, margin=config.margin, distance="cosine", **config.loss_hyperparameters())
        assert built.margin == pytest.approx(0.3) and built.distance == "cosine"
        with pytest.raises(FacenetError, match="loss semihard takes no scale; its hyperparameters: margin, distance"):
            TrainConfig(loss_options=("scale=3",)).validate()
        with pytest.raises(FacenetError, match="NAME=NUMBER"):
            TrainConfig(loss="semihard_scaled", loss_options=("scale=big",)).validate()
    finally:
        del losses.LOSSES._entries["semihard_scaled"]


def _mine_farthest_negative(candidates, margin, reduce):
    """A test miner: per positive pair, the anchor's farthest negative (the easiest one)."""
    from keras import ops

    from facenet_tf.losses._mining import positive_mask
    from facenet_tf.losses.margin import Mined

    dist, same = candidates.dist, candidates.same
    positive = positive_mask(same, candidates.self_col) & ops.any(~same, axis=1)[:, None]
    farthest = ops.max(ops.where(same, 0.0, dist), axis=1, keepdims=True)
    return reduce(Mined(dist, ops.broadcast_to(farthest, ops.shape(dist)), positive))


def test_a_registered_miner_is_offered_validated_and_used_through_the_config():
    import numpy as np

    from facenet_tf import losses
    from facenet_tf.cli import build_parser
    from facenet_tf.losses.margin import Miner
    from facenet_tf.training import TrainConfig

    losses.MINERS.register("easiest_test", Miner(_mine_farthest_negative), help="a test miner")
    try:
        config = TrainConfig(loss="hard", miner="easiest_test")
        config.validate()
        loss = losses.get(config.loss, margin=config.margin, distance="squared_l2", miner=config.miner)
        labels = np.array([0, 0, 1, 1, 2])
        emb = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
        d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
        pairs = [(a, p) for a in range(5) for p in range(5) if a != p and labels[a] == labels[p]]
        want = np.mean([max(d[a, p] - d[a][labels != labels[a]].max() + config.margin, 0) for a, p in pairs])
        assert loss.miner == "easiest_test" and float(loss(labels, emb)) == pytest.approx(want, rel=1e-5)
        assert type(loss).from_config(loss.get_config()).miner == "easiest_test"
        train = build_parser()._subparsers._group_actions[0].choices["train"]
        assert "easiest_test: a test miner" in {a.dest: a.help for a in train._actions}["miner"]
        with pytest.raises(FacenetError, match="miner must be one of semihard, hardest, all, easiest_test; "
                                               "received 'nearest'"):
            TrainConfig(miner="nearest").validate()
        with pytest.raises(FacenetError, match="soft=True needs a miner of one negative per triplet"):
            losses.get("soft_hard", miner="all")
    finally:
        del losses.MINERS._entries["easiest_test"]


class _PlainScan:
    """A test backend: a plain scan, which ``auto`` prefers from 2 entries."""

    auto_from = 2

    def __init__(self, embeddings, distance):
        from facenet_tf.gallery.index import NumpySearch

        self._scan = NumpySearch(embeddings, distance)

    @staticmethod
    def require():
        pass

    def search(self, queries, k):
        return self._scan.search(queries, k)


def test_a_registered_search_backend_is_chosen_by_name_and_by_auto(tmp_path):
    import numpy as np

    from facenet_tf.cli import build_parser
    from facenet_tf.gallery import Gallery
    from facenet_tf.gallery.index import SEARCH_BACKENDS

    SEARCH_BACKENDS.register("scan_test", _PlainScan, help="a test backend")
    try:
        with Gallery.open(str(tmp_path / "g.db"), "m", 4, index="scan_test") as gallery:
            gallery.enroll(["a", "b"], np.eye(4)[:2])
            assert gallery.search_backend == "scan_test" and gallery.search(np.eye(4)[1:2])[0][0].name == "b"
        with Gallery.open(str(tmp_path / "g.db"), "m", 4) as gallery:
            assert gallery.search_backend == "scan_test"  # auto: 2 entries reach its auto_from
        identify = build_parser()._subparsers._group_actions[0].choices["identify"]
        assert "scan_test: a test backend" in {a.dest: a.help for a in identify._actions}["index"]
    finally:
        del SEARCH_BACKENDS._entries["scan_test"]


def test_a_registered_importer_is_reachable_through_facenet_tf_import(tmp_path, capsys):
    from facenet_tf.cli import main
    from facenet_tf.models.contract import minimal
    from facenet_tf.models.importers import IMPORTERS, Importer

    written = []

    def run(output_dir, source, *, allow_existing_files=False, steps=None):
        written.append((output_dir, source))
        return minimal("fake_net", (32, 32), 8, "fake")

    IMPORTERS.register("fake", Importer("fake_net", run, "fake.bin"), help="a test importer")
    try:
        out = str(tmp_path / "model")
        assert main(["import", "fake", "--from", "net.bin", "--output-dir", out, "--json"]) == 0
        assert written == [(out, "net.bin")]
        assert '"importer": "fake"' in capsys.readouterr().out.splitlines()[-1]
        assert main(["import", "nothing", "--output-dir", out]) == 2
        assert "NAME must be one of" in capsys.readouterr().err
    finally:
        del IMPORTERS._entries["fake"]


class _SquareFaces:
    """A test detector: one square face of ``side`` pixels at the top left of every image,
    with five landmarks inside it."""

    def __init__(self, side):
        self.side = side

    def detect(self, image):
        return self.detect_many([image])[0]

    def detect_many(self, images):
        import numpy as np

        from facenet_tf.faces.detection import Face

        points = np.float64([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * self.side
        return [[Face((0.0, 0.0, float(self.side), float(self.side)), 1.0, points)] for _ in images]


def test_a_registered_detector_with_its_own_setting_is_validated_built_and_offered_by_the_cli(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from facenet_tf.cli import build_parser, main
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner
    from facenet_tf.faces.detectors import DETECTORS, Detector
    from facenet_tf.faces.overrides import with_overrides
    from facenet_tf.fields import setting

    @dataclasses.dataclass(frozen=True)
    class SquareSettings:
        side: int = setting(20, "side of the face in pixels", low=2, high=4096)

    DETECTORS.register("square_test", Detector(lambda s: _SquareFaces(s.side), SquareSettings, ("arcface",)),
                       help="a test detector")
    try:
        config = AlignConfig(size=32, detector="square_test", detector_options=("side=30",))
        config.validate()
        aligner = FaceAligner(config)
        image = np.full((60, 60, 3), 128, np.uint8)
        assert aligner.detect(image)[0].box == (0.0, 0.0, 30.0, 30.0) and aligner.align(image).shape == (32, 32, 3)
        assert FaceAligner(AlignConfig(detector="square_test")).detect(image)[0].box[2] == 20.0  # its default
        with pytest.raises(FacenetError, match="^detector_options: side must be 2..4096; received 1$"):
            AlignConfig(detector="square_test", detector_options=("side=1",)).validate()
        with pytest.raises(FacenetError, match="^detector_options: detector square_test takes no upsample; its "
                                               "settings: side$"):
            AlignConfig(detector="square_test", detector_options=("upsample=2",)).validate()
        with pytest.raises(FacenetError, match="serves --align-method arcface; received 'dlib_chip'"):
            AlignConfig(detector="square_test", method="dlib_chip").validate()
        assert with_overrides(AlignConfig(method="dlib_chip"), detector="square_test").method == "arcface"

        commands = build_parser()._subparsers._group_actions[0].choices
        for command, root in (("align", ""), ("identify", "align.")):
            flags = {a.dest: a.help for a in commands[command]._actions}
            assert "square_test: a test detector" in flags[root + "detector"] and root + "detector_options" in flags
        Image.fromarray(image).save(tmp_path / "a.png")
        assert main(["detect", str(tmp_path / "a.png"), "--detector", "square_test", "--json",
                     "--detector-options", "side=24"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["faces"][0]["box"] == [0, 0, 24, 24]
        assert main(["detect", str(tmp_path / "a.png"), "--detector", "square_test",
                     "--detector-options", "side=big"]) == 2
        assert "detector_options: side must be an integer; received 'big'" in capsys.readouterr().err
    finally:
        del DETECTORS._entries["square_test"]
