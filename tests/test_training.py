import json
import os
import subprocess
import sys

import numpy as np
import pytest

from facenet_tf.data import AugmentConfig
from facenet_tf.errors import FacenetError
from facenet_tf.models import ModelConfig
from facenet_tf.training import DataConfig, TrainConfig, train

TINY = TrainConfig(
    data=DataConfig(synthetic_identities=24, synthetic_images_per_identity=5, identities_per_batch=6,
                    images_per_identity=3, validation_identities=4, augment=None),
    model=ModelConfig(image_size=(32, 32), embedding_dim=16),
    epochs=1, steps_per_epoch=3,
)


def test_loss_falls_on_synthetic_identities(tmp_path):
    from facenet_tf import losses
    from facenet_tf.data import PKConfig, pk_dataset, synthetic_identities
    from facenet_tf.models import build_embedding_model
    from facenet_tf.training import TripletTrainer, build_optimizer

    import keras

    keras.utils.set_random_seed(0)
    images, catalog = synthetic_identities(30, 6, (32, 32), seed=0)
    config = TrainConfig(epochs=1, steps_per_epoch=160, learning_rate=3e-3, warmup_steps=5)
    model = build_embedding_model(ModelConfig(image_size=(32, 32), embedding_dim=16))
    trainer = TripletTrainer(model, losses.get("semihard"))
    trainer.compile(optimizer=build_optimizer(config.learning_rate, config.epochs * config.steps_per_epoch,
                                              config.warmup_steps, config.weight_decay))
    ds = pk_dataset(catalog, (32, 32), PKConfig(8, 4, seed=0), augment=None, images=images)
    fixed = [batch for batch in ds.take(4)]

    def held_loss():
        return np.mean([float(losses.triplet_semihard_loss(y, model(x, training=False))) for x, y in fixed])

    before = held_loss()
    trainer.fit(ds, epochs=1, steps_per_epoch=160, verbose=0)
    after = held_loss()
    assert after < 0.6 * before, (before, after)


def test_train_writes_all_artefacts_and_savedmodel_serves_in_new_process(tmp_path):
    out = str(tmp_path / "run")
    result = train(TINY.__class__(**{**TINY.__dict__, "output_dir": out}), verbose=0)
    for name in ("model.keras", "saved_model/saved_model.pb", "metadata.json", "metrics.json"):
        assert os.path.exists(os.path.join(out, name)), name
    assert os.listdir(os.path.join(out, "checkpoints"))
    assert os.listdir(os.path.join(out, "logs", "train"))
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    for key in ("accuracy", "auc", "eer", "val_at_far_1e-3", "threshold"):
        assert key in metrics["validation"]
    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert meta["image_size"] == [32, 32] and meta["embedding_dim"] == 16 and meta["distance"] == "squared_l2"
    assert meta["thresholds"]["at_far"] is not None and len(meta["fingerprint"]) == 16
    assert set(result.history) >= {"loss", "active_fraction", "mean_positive_distance", "learning_rate", "val_auc"}
    from facenet_tf.ownership import OWNER_FILE

    assert not [f for f in os.listdir(out) if f.startswith(".") and f != OWNER_FILE], "no temporary files left behind"
    code = (
        "import numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({os.path.join(out, 'saved_model')!r})\n"
        "x = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype('float32')\n"
        "e = m.signatures['serving_default'](tf.constant(x))['embeddings'].numpy()\n"
        "print(e.shape, float(np.abs(np.linalg.norm(e, axis=1) - 1).max()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shape, err = proc.stdout.strip().rsplit(" ", 1)
    assert shape == "(5, 16)" and float(err) < 1e-5


def test_config_errors(tmp_path):
    bad = [
        dict(loss="contrastive"),
        dict(distance="manhattan"),
        dict(epochs=0),
        dict(learning_rate=0.0),
        dict(data=DataConfig(images_per_identity=1)),
        dict(data=DataConfig(identities_per_batch=500)),
        dict(data=DataConfig(data_dir=str(tmp_path / "nope"))),
        dict(init_from=str(tmp_path / "missing.keras")),
    ]
    for change in bad:
        config = TINY.__class__(**{**TINY.__dict__, "output_dir": str(tmp_path / "x"), **change})
        with pytest.raises(FacenetError):
            train(config, verbose=0)


@pytest.mark.slow
def test_orl_train_30_evaluate_10_held_out(orl_dir, tmp_path):
    """Train on ORL s1–s30, evaluate the unseen s31–s40 with evaluate.py's JSON line."""
    out = str(tmp_path / "orl")
    config = TrainConfig(
        data=DataConfig(data_dir=orl_dir, validation_identities=10, identities_per_batch=10, images_per_identity=4,
                        augment=AugmentConfig()),
        model=ModelConfig(image_size=(56, 46), embedding_dim=64),
        epochs=2, steps_per_epoch=40, output_dir=out,
    )
    result = train(config, verbose=0)
    assert list(result.contract.provenance.validation_identities) == [f"s{i}" for i in range(31, 41)]
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    for i in range(31, 41):
        os.symlink(os.path.join(orl_dir, f"s{i}"), held_out / f"s{i}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(repo, "pipelines", "evaluate.py"), "--model", out,
                           "--data-dir", str(held_out), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "accuracy_std", "auc", "eer", "val_at_far_1e-3", "threshold", "num_images",
                "num_identities", "num_pairs"):
        assert key in report, key
    assert report["num_images"] == 100 and report["num_identities"] == 10 and report["num_pairs"] == 4950
    # the same embeddings and pairs as the training-time validation
    assert report["auc"] == pytest.approx(result.metrics["validation"]["auc"], abs=1e-4)
    assert report["auc"] > 0.8


def test_init_from_every_local_form_and_freeze(tmp_path):
    import dataclasses

    import keras

    first = dataclasses.replace(TINY, output_dir=str(tmp_path / "first"))
    train(first, verbose=0)
    reference = keras.saving.load_model(str(tmp_path / "first" / "model.keras"), compile=False)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    for source in (str(tmp_path / "first"), str(tmp_path / "first" / "model.keras"),
                   str(tmp_path / "first" / "checkpoints" / "epoch_001.weights.h5")):
        from facenet_tf.training import start_model

        model, _ = start_model(dataclasses.replace(first, init_from=source))
        np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5)
    frozen = dataclasses.replace(first, init_from=str(tmp_path / "first"), output_dir=str(tmp_path / "second"),
                                 epochs=2, steps_per_epoch=2, freeze_backbone_epochs=1)
    result = train(frozen, verbose=0)
    assert len(result.history["loss"]) == 2
    after = keras.saving.load_model(str(tmp_path / "second" / "model.keras"), compile=False)
    assert not np.allclose(after.get_layer("stem_conv").get_weights()[0], reference.get_layer("stem_conv").get_weights()[0]), \
        "backbone trains again after the frozen epochs"


def test_init_from_weights_files_bare_and_checkpoint_without_warnings(tmp_path):
    import dataclasses
    import warnings

    from facenet_tf.models import build_embedding_model
    from facenet_tf.training import TripletTrainer, start_model

    x = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    source = build_embedding_model(TINY.model)
    source.save_weights(str(tmp_path / "bare.weights.h5"))
    trainer = TripletTrainer(source, None)
    trainer(x[:1])
    trainer.save_weights(str(tmp_path / "checkpoint.weights.h5"))
    for name in ("bare.weights.h5", "checkpoint.weights.h5"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Keras warns when a probe load skips containers
            model, _ = start_model(dataclasses.replace(TINY, init_from=str(tmp_path / name)))
        np.testing.assert_allclose(model.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6)
    (tmp_path / "junk.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(FacenetError, match="not a Keras weights file"):
        start_model(dataclasses.replace(TINY, init_from=str(tmp_path / "junk.weights.h5")))
    other = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, embedding_dim=8))
    with pytest.raises(FacenetError, match="does not fit a small_cnn model"):
        start_model(dataclasses.replace(other, init_from=str(tmp_path / "bare.weights.h5")))


def test_init_from_and_imagenet_errors_say_where_to_put_the_file(tmp_path, monkeypatch):
    import dataclasses

    from facenet_tf.models import build_embedding_model

    with pytest.raises(FacenetError, match="never downloads"):
        train(dataclasses.replace(TINY, init_from=str(tmp_path / "nope.keras"), output_dir=str(tmp_path / "o")), verbose=0)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(FacenetError, match=r"keras_home/models/mobilenet_v2_weights.*never downloads"):
        build_embedding_model(ModelConfig(backbone="mobilenet_v2", image_size=(32, 32), weights="imagenet"))
    with pytest.raises(FacenetError, match="freeze_backbone_epochs"):
        train(dataclasses.replace(TINY, freeze_backbone_epochs=1, output_dir=str(tmp_path / "o")), verbose=0)


def _as_running_means(steps):
    """Per-step stats → what the trainer logs: step_loss per step, the rest epoch running means."""
    logs, sums = [], {}
    for b, step in enumerate(steps):
        out = {"step_loss": step["step_loss"]}
        for key, value in step.items():
            if key != "step_loss":
                sums[key] = sums.get(key, 0.0) + value
                out[key] = sums[key] / (b + 1)
        logs.append(out)
    return logs


def test_collapse_warning_once_after_patience(caplog):
    from facenet_tf.training.callbacks import CollapseWarning

    callback = CollapseWarning(margin=0.2, patience=5)
    collapsed = {"step_loss": 0.2, "mean_positive_distance": 1e-4, "mean_negative_distance": 2e-4, "active_fraction": 1.0}
    healthy = {"step_loss": 0.05, "mean_positive_distance": 0.3, "mean_negative_distance": 0.9, "active_fraction": 0.5}
    logs = _as_running_means([healthy] * 3 + [collapsed] * 4 + [healthy] + [collapsed] * 4 + [collapsed] * 20)
    with caplog.at_level("WARNING", logger="facenet_tf"):
        for step, entry in enumerate(logs[:12]):
            callback.on_train_batch_end(step, entry)
        assert not caplog.records  # 4 collapsed, a healthy step restarts the streak, 4 collapsed
        for step, entry in enumerate(logs[12:], start=12):
            callback.on_train_batch_end(step, entry)
    assert len(caplog.records) == 1 and "collapsed" in caplog.records[0].getMessage()


def test_too_easy_warning_and_tensorboard_text(caplog, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from facenet_tf.training.callbacks import CollapseWarning

    callback = CollapseWarning(margin=0.2, patience=3, log_dir=str(tmp_path))
    easy = {"step_loss": 0.0, "mean_positive_distance": 0.2, "mean_negative_distance": 1.5, "active_fraction": 0.0}
    learning = dict(easy, step_loss=0.01, active_fraction=0.2)
    with caplog.at_level("WARNING", logger="facenet_tf"):
        for step, entry in enumerate(_as_running_means([learning] * 5 + [easy] * 6)):
            callback.on_train_batch_end(step, entry)
    assert len(caplog.records) == 1 and "too easy" in caplog.records[0].getMessage()
    events = EventAccumulator(str(tmp_path / "diagnostics"), size_guidance={"tensors": 0}).Reload()
    text = events.Tensors("too_easy")[0].tensor_proto.string_val[0].decode()
    assert "no triplet violated the margin" in text


def test_train_from_tfrecord_shards(synthetic_dir, tmp_path):
    import dataclasses

    from facenet_tf.data import scan_directory
    from facenet_tf.data.prepare import prepare_catalog
    from facenet_tf.data.prepare_config import PrepareConfig

    prepare_catalog(scan_directory(synthetic_dir), str(tmp_path / "shards"), PrepareConfig(num_shards=2, workers=1))
    config = dataclasses.replace(TINY, output_dir=str(tmp_path / "out"), model=ModelConfig(image_size=(32, 32), embedding_dim=8),
                                 data=DataConfig(data_dir=str(tmp_path / "shards"), identities_per_batch=4,
                                                 images_per_identity=2, validation_identities=0))
    result = train(config, verbose=0)
    assert result.metrics["num_train_identities"] == 12 and result.metrics["num_train_images"] == 48
    assert "validation" not in result.metrics and os.path.isfile(str(tmp_path / "out" / "model.keras"))


def test_config_file_round_trip_and_flags_override(tmp_path):
    import dataclasses

    from facenet_tf.cli import build_parser
    from facenet_tf import fields
    from facenet_tf.cli.train import config_from_args
    from facenet_tf.training import TrainConfig, config_from_dict, config_to_dict, load_config, save_config

    config = dataclasses.replace(TINY, init_from="somewhere", jit_compile=True,
                                 data=dataclasses.replace(TINY.data, augment=AugmentConfig(gamma=0.2)))
    save_config(config, str(tmp_path / "run.json"))
    assert load_config(str(tmp_path / "run.json")) == config
    assert config_from_dict(TrainConfig, config_to_dict(TrainConfig())) == TrainConfig()
    with pytest.raises(FacenetError, match="unknown key.*data.bogus|data: unknown key"):
        config_from_dict(TrainConfig, {"data": {"bogus": 1}})

    parser = build_parser()
    args = parser.parse_args(["train", "--config", str(tmp_path / "run.json"), "--epochs", "3",
                              "--augment-gamma", "0.5", "--no-jit-compile", "--backbone-weights", "w.h5"])
    got = config_from_args(args)
    assert got == dataclasses.replace(config, epochs=3, jit_compile=False,
                                      model=dataclasses.replace(config.model, weights="w.h5"),
                                      data=dataclasses.replace(config.data, augment=AugmentConfig(gamma=0.5)))
    assert config_from_args(parser.parse_args(["train"])) == TrainConfig()
    assert config_from_args(parser.parse_args(["train", "--no-augment"])).data.augment is None
    # every leaf field of the config has its own flag
    flags = {action.dest for action in parser._subparsers._group_actions[0].choices["train"]._actions}
    for path, _, _ in fields.leaves(TrainConfig):
        assert path in flags, path


def test_keep_best_never_ends_below_the_start_and_ties_go_to_training():
    import keras

    from facenet_tf.training.callbacks import KeepBest

    class Validation:  # the part of HeldOutVerification KeepBest uses
        def __init__(self, model):
            self.embedder, self.scores = model, [(0.9, 0.95, 0.5)]
            self.result = type("R", (), {"to_json_dict": lambda _: {"accuracy": 0.9}})()

        def evaluate(self):
            acc, auc, tar = self.scores.pop(0) if self.scores else (0, 0, 0)
            return {"val_accuracy": acc, "val_auc": auc, "val_tar_at_far_1e-3": tar}

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    start = model.get_weights()
    keep = KeepBest(Validation(model))
    keep.on_train_begin()
    model.set_weights([w + 1 for w in start])
    keep.on_epoch_end(0, {"val_accuracy": 0.8, "val_auc": 0.99, "val_tar_at_far_1e-3": 0.9})  # worse
    model.set_weights([w + 2 for w in start])
    keep.on_epoch_end(1, {"val_accuracy": 0.85, "val_auc": 0.99, "val_tar_at_far_1e-3": 0.9})  # worse
    keep.on_train_end()
    assert keep.best_epoch == 0 and keep.start == {"accuracy": 0.9}
    np.testing.assert_array_equal(model.get_weights()[0], start[0])

    keep = KeepBest(Validation(model))
    keep.on_train_begin()
    model.set_weights([w + 3 for w in start])
    keep.on_epoch_end(0, {"val_accuracy": 0.9, "val_auc": 0.95, "val_tar_at_far_1e-3": 0.5})  # a tie
    model.set_weights([w + 4 for w in start])
    keep.on_train_end()
    assert keep.best_epoch == 1
    np.testing.assert_array_equal(model.get_weights()[0], start[0] + 3)


def test_train_flags_parse_to_the_field_types():
    from facenet_tf.cli import build_parser
    from facenet_tf.cli.train import config_from_args

    config = config_from_args(build_parser().parse_args(
        ["train", "--validation-identities", "3", "--learning-rate", "0.01", "--init-from", "x", "--image-size", "32"]))
    assert config.data.validation_identities == 3 and config.learning_rate == 0.01 and config.init_from == "x"
    assert config.model.image_size == (32, 32)  # parsed by the field rules (facenet_tf.fields) at the CLI


def test_unset_p_and_k_follow_the_data_and_say_so(synthetic_dir, tmp_path, caplog):
    import dataclasses
    import shutil

    base = dataclasses.replace(TINY, data=DataConfig(data_dir=synthetic_dir, validation_identities=0, augment=None),
                               output_dir=str(tmp_path / "a"))
    with caplog.at_level("INFO", logger="facenet_tf"):
        result = train(base, verbose=0)  # 12 people: the default P of 16 would not fit
    assert (result.metrics["identities_per_batch"], result.metrics["images_per_identity"]) == (12, 4)
    assert any("identities_per_batch not given: using 12" in r.getMessage() for r in caplog.records)

    three = tmp_path / "three_each"
    for person in sorted(os.listdir(synthetic_dir)):
        os.makedirs(three / person)
        for name in sorted(os.listdir(os.path.join(synthetic_dir, person)))[:3]:
            shutil.copy(os.path.join(synthetic_dir, person, name), three / person / name)
    caplog.clear()
    with caplog.at_level("INFO", logger="facenet_tf"):
        result = train(dataclasses.replace(base, data=dataclasses.replace(base.data, data_dir=str(three)),
                                           output_dir=str(tmp_path / "b")), verbose=0)
    assert result.metrics["images_per_identity"] == 3
    assert any("images_per_identity not given: using 3" in r.getMessage() for r in caplog.records)
    with pytest.raises(FacenetError, match=r"identities_per_batch \(13\) exceeds"):
        train(dataclasses.replace(base, data=dataclasses.replace(base.data, identities_per_batch=13),
                                  output_dir=str(tmp_path / "c")), verbose=0)


def test_resume_in_either_freeze_phase_matches_the_uninterrupted_run(tmp_path, monkeypatch):
    """Stopped at the phase boundary, then inside the unfrozen phase: the same weights,
    per-epoch history and validation as one uninterrupted fine-tuning run."""
    import dataclasses

    from facenet_tf.training.state import RunState

    start = dataclasses.replace(TINY, output_dir=str(tmp_path / "start"), epochs=1, steps_per_epoch=2)
    train(start, verbose=0)
    tune = dataclasses.replace(start, init_from=start.output_dir, epochs=3, freeze_backbone_epochs=1,
                               keep_best=False, deterministic=True, output_dir=str(tmp_path / "straight"))
    straight = train(tune, verbose=0)

    class Killed(Exception):
        pass

    save_epoch = RunState.save_epoch
    interrupted = dataclasses.replace(tune, output_dir=str(tmp_path / "interrupted"))
    for stop in (1, 2):
        def stop_after(self, trainer, epoch, logs=None):
            path = save_epoch(self, trainer, epoch, logs)
            if epoch == stop:
                raise Killed(epoch)
            return path

        monkeypatch.setattr(RunState, "save_epoch", stop_after)
        with pytest.raises(Killed):
            train(interrupted, verbose=0)
    monkeypatch.setattr(RunState, "save_epoch", save_epoch)
    resumed = train(interrupted, verbose=0)
    assert resumed.metrics["resumed_from_epoch"] == 2
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.history == straight.history and len(straight.history["loss"]) == 3
    for key in ("epoch_losses", "epoch_validation", "validation"):
        assert resumed.metrics[key] == straight.metrics[key], key
    assert [set(e) >= {"accuracy", "auc", "eer"} for e in straight.metrics["epoch_validation"]] == [True] * 3


def test_drop_events_after_keeps_what_was_logged_before_the_checkpoint(tmp_path):
    import time

    import tensorflow as tf

    from facenet_tf.training.callbacks import drop_events_after

    def write(step):
        writer = tf.summary.create_file_writer(str(tmp_path / "train"))
        with writer.as_default():
            tf.summary.scalar("epoch_loss", float(step), step=step)
        writer.close()

    def steps():
        found = []
        for name in os.listdir(tmp_path / "train"):
            for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "train" / name)):
                found += [(event.step, v.tag) for v in event.summary.value]
        return sorted(found)

    write(0)
    write(1)
    time.sleep(0.05)
    committed = time.time()
    time.sleep(0.05)
    write(2)
    files = sorted(os.listdir(tmp_path / "train"))
    with open(tmp_path / "train" / files[0], "ab") as f:
        f.write(b"\x10\x00\x00")  # a record torn by a kill
    assert drop_events_after(str(tmp_path), committed) == 1
    assert steps() == [(0, "epoch_loss"), (1, "epoch_loss")]
    assert sorted(os.listdir(tmp_path / "train")) == files, "files rewritten in place, no temporary left"
    assert drop_events_after(str(tmp_path), committed) == 0


def test_start_weight_share_mixes_the_final_weights_with_the_start_model(tmp_path):
    """``start_weight_share`` s: final weights = (1 - s) x the trained run's + s x the start model's,
    validated again; the unmixed figures stay in ``validation_trained``."""
    import dataclasses

    import keras

    start = dataclasses.replace(TINY, output_dir=str(tmp_path / "start"), epochs=1, steps_per_epoch=2)
    train(start, verbose=0)
    tune = dataclasses.replace(start, init_from=start.output_dir, keep_best=False, deterministic=True,
                               output_dir=str(tmp_path / "trained"))
    trained = train(tune, verbose=0)
    mixed = train(dataclasses.replace(tune, start_weight_share=0.25, output_dir=str(tmp_path / "mixed")), verbose=0)
    origin = keras.saving.load_model(os.path.join(start.output_dir, "model.keras"), compile=False).get_weights()
    moved = 0
    for w, w_trained, w_start in zip(mixed.model.get_weights(), trained.model.get_weights(), origin):
        np.testing.assert_allclose(w, 0.75 * w_trained + 0.25 * w_start, rtol=1e-5, atol=1e-6)
        moved += not np.allclose(w_trained, w_start)
    assert moved, "fine-tuning changed some weights"
    unmixed = mixed.metrics["validation_trained"]
    assert unmixed["auc"] == trained.metrics["validation"]["auc"]
    assert unmixed == {name: trained.metrics["validation"][name] for name in unmixed}
    assert "validation_trained" not in trained.metrics
    with pytest.raises(FacenetError, match="start_weight_share"):
        train(dataclasses.replace(TINY, start_weight_share=0.5, output_dir=str(tmp_path / "x")), verbose=0)


def test_freeze_top_layers_fine_tunes_only_the_early_layers(tmp_path):
    """``freeze_top_layers`` N: the last N layers holding weights keep the start model's
    weights, the layers before them train; asking to freeze every layer is one clear error."""
    import dataclasses

    import keras

    from facenet_tf.training.phases import weighted_layers

    start = dataclasses.replace(TINY, output_dir=str(tmp_path / "start"), epochs=1, steps_per_epoch=2)
    train(start, verbose=0)
    before = keras.saving.load_model(os.path.join(start.output_dir, "model.keras"), compile=False)
    tune = dataclasses.replace(start, init_from=start.output_dir, keep_best=False, freeze_top_layers=3,
                               learning_rate=0.01, output_dir=str(tmp_path / "tuned"))
    after = train(tune, verbose=0).model
    layers = weighted_layers(after)
    assert [layer.name for layer in layers][-1] == "embedding"
    changed = [not all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), before.get_layer(layer.name).get_weights()))
               for layer in layers]
    assert changed[-3:] == [False] * 3, "the top 3 layers are frozen"
    assert changed[0], "the stem trains"
    with pytest.raises(FacenetError, match="freeze_top_layers"):
        train(dataclasses.replace(tune, freeze_top_layers=len(layers), output_dir=str(tmp_path / "all")), verbose=0)
    for bad in (dict(init_from=None), dict(freeze_backbone_epochs=1, epochs=2)):
        with pytest.raises(FacenetError, match="freeze_top_layers"):
            dataclasses.replace(tune, **bad).validate()


def test_an_unset_setting_added_by_an_upgrade_keeps_the_resume_key():
    """A run interrupted under a facenet_tf without ``--miner`` resumes after the upgrade; set, it is a new run."""
    import dataclasses

    from facenet_tf.training import TrainConfig
    from facenet_tf.training.run import config_to_dict
    from facenet_tf.training.state import config_key

    now = config_to_dict(TrainConfig())
    before = {k: v for k, v in now.items() if k != "miner"}
    assert "miner" in now and config_key(now) == config_key(before)
    assert config_key(config_to_dict(dataclasses.replace(TrainConfig(), miner="hardest"))) != config_key(before)
