"""tf.data service: a dispatcher and a worker started in this process (on 127.0.0.1) serve the P×K
stream of prepared shards; the batches are the ones made without the service, and train() runs
two steps through it."""

import dataclasses
import os

import numpy as np
import pytest

from facenet_tf.data import DataConfig
from facenet_tf.data.prepare import PrepareConfig, prepare
from facenet_tf.data.sources import training_source
from facenet_tf.errors import FacenetError


@pytest.fixture(scope="module")
def service():
    import tensorflow as tf

    dispatcher = tf.data.experimental.service.DispatchServer(tf.data.experimental.service.DispatcherConfig(port=0))
    port = dispatcher.target.rsplit(":", 1)[1]
    worker = tf.data.experimental.service.WorkerServer(tf.data.experimental.service.WorkerConfig(
        dispatcher_address=f"127.0.0.1:{port}", worker_address="127.0.0.1:%port%", port=0))
    yield f"grpc://127.0.0.1:{port}"
    worker.stop()
    dispatcher.stop()


@pytest.fixture(scope="module")
def shards(synthetic_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("service") / "prepared")
    prepare(synthetic_dir, out, PrepareConfig(num_shards=2, workers=1))
    return out


def test_two_pk_batches_through_the_service_equal_the_local_ones(service, shards):
    data = DataConfig(data_dir=shards, identities_per_batch=3, images_per_identity=2, augment=None)
    local = [(x.numpy(), y.numpy()) for x, y in training_source(data, (24, 24), seed=1).dataset.take(2)]
    remote = training_source(dataclasses.replace(data, data_service=service), (24, 24), seed=1)
    assert "via tf.data service" in remote.description
    served = [(x.numpy(), y.numpy()) for x, y in remote.dataset.take(2)]
    for (x, y), (a, b) in zip(served, local):
        assert x.shape == (6, 24, 24, 3) and len(set(y[0::2])) == 3 and (y[0::2] == y[1::2]).all()
        np.testing.assert_array_equal(y, b)  # one worker: step 0, then step 1
        np.testing.assert_allclose(x, a, atol=1e-4)


def test_train_two_steps_through_the_service(service, shards, tmp_path):
    from facenet_tf.models import ModelConfig
    from facenet_tf.training import TrainConfig, train

    config = TrainConfig(data=DataConfig(data_dir=shards, identities_per_batch=4, images_per_identity=2,
                                         data_service=service),
                         model=ModelConfig(image_size=(32, 32), embedding_dim=8), output_dir=str(tmp_path / "out"),
                         epochs=1, steps_per_epoch=2, warmup_steps=1)
    result = train(config, verbose=0)
    assert np.isfinite(result.metrics["final_loss"]) and result.metrics["num_train_images"] == 48
    assert "via tf.data service grpc://127.0.0.1:" in result.contract.provenance.training_data
    assert os.path.isfile(tmp_path / "out" / "model.keras")


def test_bad_service_address_is_one_line(shards):
    with pytest.raises(FacenetError, match=r"data_service must be grpc://HOST:PORT .*received 'localhost:5050'"):
        training_source(DataConfig(data_dir=shards, data_service="localhost:5050"), (24, 24), seed=0)
