"""TensorBoard views of validation, read back with TensorBoard's own readers."""

import io
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facenet_tf.training.tensorboard_views import roc_image, sprite_image

EPOCHS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch, 2-step training run on 24 synthetic people (the last 2 held out)."""
    from facenet_tf.models import ModelConfig
    from facenet_tf.training import DataConfig, TrainConfig, train

    out = str(tmp_path_factory.mktemp("run"))
    result = train(TrainConfig(
        data=DataConfig(synthetic_identities=24, synthetic_images_per_identity=4, identities_per_batch=4,
                        images_per_identity=2),
        model=ModelConfig(image_size=(32, 32), embedding_dim=16),
        epochs=EPOCHS, steps_per_epoch=2, output_dir=out,
    ), verbose=0)
    return os.path.join(out, "logs", "validation"), result


@pytest.fixture(scope="module")
def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # size_guidance 0: keep every event, not a sample.
    return EventAccumulator(run[0], size_guidance={"tensors": 0}).Reload()


def plugin(events, tag):
    return events.SummaryMetadata(tag).plugin_data.plugin_name


@pytest.mark.slow
def test_validation_scalars_are_logged_each_epoch(run, events):
    final = run[1].metrics["validation"]
    for tag, key in (("epoch_accuracy", "accuracy"), ("epoch_auc", "auc"), ("epoch_tar_at_far_1e-3", "val_at_far_1e-3")):
        assert plugin(events, tag) == "scalars"
        values = events.Tensors(tag)
        assert [e.step for e in values] == list(range(EPOCHS))
        assert float(tf.make_ndarray(values[-1].tensor_proto)) == pytest.approx(final[key], abs=1e-6)


@pytest.mark.slow
def test_roc_image_and_distance_histograms_each_epoch(events):
    assert plugin(events, "roc_curve") == "images"
    images = events.Tensors("roc_curve")
    assert [e.step for e in images] == list(range(EPOCHS))
    width, height, png = tf.make_ndarray(images[-1].tensor_proto)
    picture = Image.open(io.BytesIO(png))
    assert picture.size == (int(width), int(height)) == (320, 320)
    for tag in ("distance_same", "distance_different"):
        assert plugin(events, tag) == "histograms"
        histograms = events.Tensors(tag)
        assert [e.step for e in histograms] == list(range(EPOCHS))
        buckets = tf.make_ndarray(histograms[-1].tensor_proto)  # [k, 3]: left, right, count
        assert buckets.ndim == 2 and buckets.shape[1] == 3 and buckets[:, 2].sum() > 0
    # 2 held-out people x 4 images: 2 * C(4, 2) = 12 same-person pairs.
    assert tf.make_ndarray(events.Tensors("distance_same")[-1].tensor_proto)[:, 2].sum() == 12


@pytest.mark.slow
def test_projector_config_is_loadable(run):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig

    run_dir, result = run
    with open(os.path.join(run_dir, "projector_config.pbtxt")) as f:
        config = text_format.Parse(f.read(), ProjectorConfig())
    (view,) = config.embeddings
    reader = tf.train.load_checkpoint(run_dir)
    assert reader.has_tensor(view.tensor_name)
    embeddings = reader.get_tensor(view.tensor_name)
    assert embeddings.shape == (8, 16)
    with open(os.path.join(run_dir, view.metadata_path)) as f:
        rows = f.read().splitlines()
    assert len(rows) == len(embeddings)
    assert rows == [name for name in list(result.contract.provenance.validation_identities) for _ in range(4)]
    sprite = Image.open(os.path.join(run_dir, view.sprite.image_path))
    w, h = view.sprite.single_image_dim
    side = math.ceil(math.sqrt(len(embeddings)))
    assert (w, h) == (32, 32)
    assert sprite.size == (side * w, math.ceil(len(embeddings) / side) * h)


def test_sprite_tiles_row_major_and_keeps_aspect():
    images = np.stack([np.full((20, 10, 3), 10 * i, np.uint8) for i in range(5)])
    sprite = sprite_image(images, thumbnail_size=8)  # 3 x 2 grid of 8x4 thumbnails
    assert sprite.shape == (2 * 8, 3 * 4, 3)
    assert sprite[0, 4, 0] == 10 and sprite[8, 0, 0] == 30 and sprite[8, 4, 0] == 40
    assert (sprite[8:, 8:] == 0).all()  # the unused cell stays black


def test_roc_image_shape():
    far = np.array([0.0, 0.5, 1.0])
    image = roc_image(far, np.array([0.0, 1.0, 1.0]), auc=0.75, size=200)
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    assert (image != 255).any()


def test_projector_samples_at_most_max_points(tmp_path):
    from types import SimpleNamespace

    from facenet_tf.training.tensorboard_views import ValidationViews

    labels = np.repeat(np.arange(4), 3)
    validation = SimpleNamespace(result=None, embeddings=np.arange(24, dtype=np.float32).reshape(12, 2),
                                 labels=labels, images=np.zeros((12, 16, 16, 3), np.uint8), seed=0)
    ValidationViews(validation, str(tmp_path), names=list("abcd"), max_points=5).on_train_end()
    run_dir = str(tmp_path / "validation")
    embeddings = tf.train.load_checkpoint(run_dir).get_tensor("validation_embeddings/.ATTRIBUTES/VARIABLE_VALUE")
    with open(os.path.join(run_dir, "metadata.tsv")) as f:
        names = f.read().splitlines()
    rows = (embeddings[:, 0] // 2).astype(int)  # which of the 12 embeddings were kept
    assert len(rows) == 5 and list(rows) == sorted(rows)
    assert names == ["abcd"[labels[r]] for r in rows]
