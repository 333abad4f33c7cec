"""Run one training job end to end, as named steps.

``train(config)`` is what ``python pipelines/train.py`` and ``facenet-tf train`` run. The
steps, in order (:func:`_run` lists them on one screen):

1. :func:`start_model`: a new embedding model, or ``init_from`` through
   :mod:`facenet_tf.models.loader`; :func:`settle_config` then decides the config's unset
   defaults (distance, learning rate) and its image size from the start model.
2. :func:`training_data`: the P×K stream (:func:`facenet_tf.data.sources.training_source`).
3. :func:`make_trainer`: the :class:`TripletTrainer` in the run's ``tf.distribute`` strategy.
4. :func:`make_callbacks`: guard, checkpoints, validation, keep-best, TensorBoard.
5. :func:`~facenet_tf.training.phases.fit_phases`: one ``fit`` per
   :class:`~facenet_tf.training.phases.Phase` of
   :func:`~facenet_tf.training.phases.plan_phases` (frozen backbone, then unfrozen),
   starting at the resume epoch: the one place that handles freezing, unfreezing and resuming;
   then :func:`mix_with_start` (``start_weight_share``: the final weights mixed with the start model's).
6. :func:`final_metrics` and :func:`describe_model`: ``metrics.json`` and the model's
   :class:`~facenet_tf.models.contract.ModelContract` (``metadata.json``).
7. :func:`publish`: ``model.keras``, ``saved_model/``, ``metadata.json``, ``metrics.json``
   written together, and the run marked finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from facenet_tf import losses as losses_lib
from facenet_tf.faces.aligner import AlignConfig
from facenet_tf.artifacts import METADATA_FILE, METRICS_FILE, fingerprint_weights, read_json
from facenet_tf.data.reader import parse_image_size
from facenet_tf.data.sources import TrainingSource, training_source
from facenet_tf.errors import FacenetError
from facenet_tf.models import contract as contracts
from facenet_tf.models.contract import ModelContract, Provenance, Thresholds
from facenet_tf.models.embedding import DEFAULT_IMAGE_SIZE, build_embedding_model
from facenet_tf.models.loader import load_keras, model_image_size, read_contract
from facenet_tf.models.writer import write_model_directory
from facenet_tf.training.callbacks import (CollapseWarning, ContinuousTensorBoard, EpochBackup, HeldOutVerification,
                                           KeepBest, NonFiniteGuard, RunCallbacks, drop_events_after)
from facenet_tf.training.config import TrainConfig, config_to_dict
from facenet_tf.training.distribute import is_chief, make_strategy
from facenet_tf.training.phases import fit_phases, plan_phases
from facenet_tf.training.state import LOG_DIR, RunState
from facenet_tf.training.trainer import TripletTrainer

logger = logging.getLogger("facenet_tf")

#: The training data's skip report in the output directory (bad files, identities left out).
SKIPPED_FILE = "skipped.json"


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced: the model, paths written and the final metrics.

    ``history`` maps each logged name (``loss``, ``val_auc``, ...) to one value per epoch
    of the whole run, the epochs before a resume included.
    """

    model: keras.Model
    output_dir: str
    metrics: Dict[str, Any]
    contract: Optional[ModelContract]
    history: Dict[str, list]
    already_finished: bool = False


def train(config: TrainConfig, verbose: int = 1, restart: bool = False,
          allow_existing_files: bool = False) -> TrainResult:
    """Run one training job end to end, resuming it when a killed run left a checkpoint.

    The output directory keeps the run's state (:mod:`facenet_tf.training.state`): the same
    config run again after a kill continues after the last completed epoch (logged as
    ``resuming from epoch E, step S``), with the killed run's per-epoch history and
    TensorBoard logs continued, not restarted; a finished run is not trained again (the
    result says :attr:`TrainResult.already_finished`); another config, or ``restart``,
    starts over. A NaN or infinite loss or weight stops the run with a
    :class:`FacenetError`; nothing is written from such weights, and the last good
    checkpoint stays.

    Args:
        config: the run's :class:`TrainConfig`.
        verbose: Keras ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        restart: start over even if the output directory holds this run.
        allow_existing_files: write beside the files of an output directory facenet_tf did
            not create (never touching them; :mod:`facenet_tf.ownership`).

    Returns:
        :class:`TrainResult`.

    Raises:
        FacenetError: bad configuration or data, or training diverged.
    """
    config.validate()
    strategy = make_strategy(config.strategy, config.cpu_devices)
    chief = is_chief(strategy)
    # Every worker runs the same steps; only the chief writes to the output directory.
    output_dir = config.output_dir if chief else tempfile.mkdtemp(prefix="facenet_tf_worker_")
    run_state = RunState.open(output_dir, config_to_dict(config), restart, allow_existing_files)
    if run_state.status == "finished":
        return _finished_result(output_dir)
    replicas = strategy.num_replicas_in_sync
    logger.info("strategy %s: %d replica(s)%s", type(strategy).__name__, replicas,
                "" if replicas == 1 else (", mining per replica" if config.local_mining else ", mining over the global batch"))
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    try:
        with _precision(config.mixed_precision):
            return _run(config, strategy, run_state, verbose, chief)
    except FacenetError:
        run_state.stop()
        raise
    finally:  # also when stopped (an error, Ctrl-C, SIGTERM): its logs are train's to remove later
        run_state.list_logs()


def _run(config: TrainConfig, strategy, run_state: RunState, verbose: int, chief: bool) -> TrainResult:
    """The run's steps, in order, after :func:`train` has set seeds, strategy and state."""
    started = time.time()
    with strategy.scope():
        embedder, start = start_model(config)
    config = settle_config(config, embedder, start)
    source = training_data(config, start, strategy.num_replicas_in_sync)
    fine_tuning, resume = start is not None, run_state.epoch if run_state.status == "resume" else 0
    trainer = make_trainer(config, embedder, strategy)
    run_state.start()
    callbacks = make_callbacks(config, source, embedder, run_state, fine_tuning)
    try:
        fit_phases(trainer, source.dataset, plan_phases(config), resume, callbacks, run_state, config, strategy,
                   verbose, freeze_normalization=fine_tuning and config.freeze_normalization,
                   freeze_top=config.freeze_top_layers if fine_tuning else 0)
    except tf.errors.OpError as err:
        damaged = _damaged_shards(config)
        if damaged is None:
            raise
        raise FacenetError(damaged) from err
    trained_validation = mix_with_start(config, embedder, callbacks.validation)
    history = history_columns(run_state.history)
    metrics = final_metrics(history, resume, source, callbacks, time.time() - started)
    if trained_validation is not None:
        metrics["validation_trained"] = trained_validation
    contract = describe_model(embedder, config, start, source, _thresholds(callbacks.validation))
    publish(embedder, run_state, contract, metrics, source, chief)
    return TrainResult(embedder, config.output_dir, metrics, contract, history)


def _damaged_shards(config: TrainConfig) -> Optional[str]:
    """After TensorFlow failed reading the data: the damaged record of prepared shards, if that is the cause."""
    from facenet_tf.data.manifest import is_prepared
    from facenet_tf.data.tfrecord import damaged_record

    data_dir = config.data.data_dir
    return damaged_record(data_dir) if data_dir is not None and is_prepared(data_dir) else None


def start_model(config: TrainConfig) -> Tuple[keras.Model, Optional[ModelContract]]:
    """The model a run starts from, and the start model's contract (``None`` when new; a
    minimal one for a start model without ``metadata.json``).

    ``init_from`` takes every form of :func:`facenet_tf.models.loader.load_keras`: a model
    directory (also one written by ``import-dlib``), ``.keras`` file, SavedModel directory,
    or a ``.weights.h5`` file of a model built with ``config.model`` (or a training
    checkpoint). Nothing is downloaded.

    Raises:
        FacenetError: ``init_from`` missing or unusable, or of another input size than an
            explicitly given ``image_size``.
    """
    if config.init_from is None:
        return build_embedding_model(config.model), None
    size = parse_image_size(config.model.image_size) if config.model.image_size else None
    model_config = dataclasses.replace(config.model, image_size=size or DEFAULT_IMAGE_SIZE)

    def checkpoint(model):
        trainer = TripletTrainer(model, None)
        trainer(np.zeros((1, *model_image_size(model), 3), np.float32))
        return trainer

    model, artifact = load_keras(config.init_from, model_config, checkpoint, what="--init-from")
    if size is not None and model_image_size(model) != size:
        raise FacenetError(
            f"--init-from model takes {model.input_shape[1]}x{model.input_shape[2]} images; "
            f"image_size is {size[0]}x{size[1]} (leave image_size unset to use the model's)"
        )
    return model, artifact.contract or contracts.minimal(
        model.name, model_image_size(model), int(model.output_shape[-1]), fingerprint_weights(model.get_weights()))


def settle_config(config: TrainConfig, embedder: keras.Model, start: Optional[ModelContract]) -> TrainConfig:
    """``config`` with every ``None`` default decided (:meth:`TrainConfig.resolved`: the
    start model's distance, the fine-tuning or scratch learning rate) and the model's input
    size as ``model.image_size``."""
    config = config.resolved(start)
    model = dataclasses.replace(config.model, image_size=model_image_size(embedder))
    return dataclasses.replace(config, model=model)


def training_data(config: TrainConfig, start: Optional[ModelContract], replicas: int) -> TrainingSource:
    """The run's P×K training stream and held-out split, aligned like the start model's
    inputs when its contract names an alignment.

    Raises:
        FacenetError: bad data, or P not a multiple of the strategy's ``replicas``.
    """
    image_size = tuple(config.model.image_size)
    alignment = AlignConfig.from_contract(start)
    load = None
    if alignment is not None:
        from facenet_tf.faces.aligner import FaceAligner, align_files

        aligner = FaceAligner(alignment)
        load = lambda paths: align_files(aligner, paths, image_size)[0]  # noqa: E731
    source = training_source(config.data, image_size, config.seed, load=load)
    if replicas > 1 and source.identities_per_batch % replicas:
        raise FacenetError(f"identities_per_batch ({source.identities_per_batch}) must be a multiple of the "
                           f"{replicas} replicas, so that every replica holds whole identities")
    return source


def make_trainer(config: TrainConfig, embedder: keras.Model, strategy) -> TripletTrainer:
    """The :class:`TripletTrainer` of ``config``'s loss around ``embedder``, built in the
    strategy's scope (so checkpoints can be written and restored); compiled per phase."""
    with strategy.scope():
        triplet_loss = losses_lib.get(config.loss, margin=config.margin, distance=config.distance,
                                      miner=config.miner, **config.loss_hyperparameters())
        trainer = TripletTrainer(embedder, triplet_loss, local_mining=config.local_mining, name="triplet_trainer")
        trainer(np.zeros((1, *config.model.image_size, 3), np.float32))
    return trainer


def make_callbacks(config: TrainConfig, source: TrainingSource, embedder: keras.Model, run_state: RunState,
                   fine_tuning: bool) -> RunCallbacks:
    """The run's callbacks, in the order they must run at each epoch's end: the
    non-finite guard first, validation (and keep-best when fine-tuning, and its
    TensorBoard views) before the TensorBoard callback that writes its figures, the
    epoch checkpoint last. A resumed run first drops the events its killed predecessor
    logged after its last checkpoint, so the logs continue as one run."""
    log_dir = os.path.join(run_state.output_dir, LOG_DIR)
    if run_state.status == "resume" and run_state.saved_at is not None:
        drop_events_after(log_dir, run_state.saved_at)
    guard = NonFiniteGuard(embedder)
    run = RunCallbacks([guard, CollapseWarning(config.margin, log_dir=log_dir)], guard, EpochBackup(run_state, guard))
    if source.validation_images is not None:
        run.validation = HeldOutVerification(source.validation_images, source.validation_labels, embedder,
                                             config.distance, config.seed)
        run.all.append(run.validation)
        if fine_tuning and config.keep_best:
            run.keep = KeepBest(run.validation)
            run.all.append(run.keep)
        from facenet_tf.training.tensorboard_views import ValidationViews  # ROC image, histograms, projector

        run.all.append(ValidationViews(run.validation, log_dir, source.validation_names, source.validation_images))
    run.all += [ContinuousTensorBoard(log_dir, update_freq=1), run.backup]
    return run


def mix_with_start(config: TrainConfig, embedder: keras.Model,
                   validation: Optional[HeldOutVerification]) -> Optional[Dict[str, float]]:
    """With ``start_weight_share`` s: every weight of ``embedder`` becomes
    ``(1 - s) · trained + s · start``, the start model loaded again from ``init_from`` (so a
    resumed run mixes with the true start, not its checkpoint), and ``validation`` is
    evaluated again so the run's metrics and thresholds are the mixed model's.

    Returns:
        The trained (unmixed) weights' validation figures, or ``None`` when nothing was mixed
        or there is no validation split.
    """
    share = config.start_weight_share
    if not share or config.init_from is None:
        return None
    trained = validation.result.to_json_dict() if validation is not None and validation.result is not None else None
    start, _ = start_model(config)
    embedder.set_weights([(1.0 - share) * w + share * w0 if np.issubdtype(w.dtype, np.floating) else w
                          for w, w0 in zip(embedder.get_weights(), start.get_weights())])
    logger.info("final weights: %.2f x trained + %.2f x start model", 1.0 - share, share)
    if validation is not None:
        validation.evaluate()
    return trained


def history_columns(rows: List[Dict[str, float]]) -> Dict[str, list]:
    """Per-epoch log rows (:attr:`RunState.history`) → ``{name: [value per epoch]}``, for
    the names the last epoch logged."""
    names = list(rows[-1]) if rows else []
    return {name: [row[name] for row in rows if name in row] for name in names}


def _epoch_validation(history: Dict[str, list]) -> List[Dict[str, float]]:
    """Each epoch's held-out figures: the ``val_*`` columns of ``history``, without the prefix."""
    columns = {name[len("val_"):]: values for name, values in history.items() if name.startswith("val_")}
    epochs = len(history.get("loss", []))
    return [{name: values[i] for name, values in columns.items() if len(values) == epochs} for i in range(epochs)]


def final_metrics(history: Dict[str, list], resume: int, source: TrainingSource, callbacks: RunCallbacks,
                  train_seconds: float) -> Dict[str, Any]:
    """``metrics.json``: the loss of every epoch of the run (those before a resume
    included), the data's figures, and with a held-out split its final verification
    figures plus each epoch's (``epoch_validation``: ``val_*`` logs without the prefix)."""
    metrics: Dict[str, Any] = {
        "train_seconds": round(train_seconds, 1),
        "final_loss": float(history["loss"][-1]) if history.get("loss") else None,
        "epoch_losses": [float(v) for v in history.get("loss", [])],
        "resumed_from_epoch": resume,
        "num_train_identities": source.num_identities,
        "num_train_images": source.num_images,
        "identities_per_batch": source.identities_per_batch,
        "images_per_identity": source.images_per_identity,
    }
    if callbacks.validation is not None:
        metrics["validation"] = {
            **callbacks.validation.result.to_json_dict(),
            "num_images": int(len(source.validation_labels)),
            "num_identities": int(len(source.validation_names)),
        }
        metrics["epoch_validation"] = _epoch_validation(history)
    if callbacks.keep is not None:
        metrics["validation_start_model"] = callbacks.keep.start
        metrics["kept_epoch"] = callbacks.keep.best_epoch
    if source.skipped is not None:
        metrics["skipped"] = source.skipped.counts()
    return metrics


def _thresholds(validation: Optional[HeldOutVerification]) -> Optional[Thresholds]:
    """The model's decision thresholds from the run's final held-out verification, if any."""
    if validation is None:
        return None
    result = validation.result
    return Thresholds(best_accuracy=result.threshold, at_far=result.threshold_at_far[1e-3], far=1e-3)


def describe_model(embedder: keras.Model, config: TrainConfig, start: Optional[ModelContract],
                   source: TrainingSource, thresholds: Optional[Thresholds]) -> ModelContract:
    """The trained model's contract: a fine-tuned model keeps how its start model is fed
    (architecture, alignment, test-time augmentation, input contract, preprocessing, provenance
    of its weights)."""
    new = ModelContract(
        architecture=config.model.backbone,
        image_size=model_image_size(embedder),
        embedding_dim=int(embedder.output_shape[-1]),
        fingerprint=fingerprint_weights(embedder.get_weights()),
        normalized=True,
    )
    base = start or new
    return base.inherit(
        fingerprint=new.fingerprint, distance=config.distance, margin=config.margin, loss=config.loss,
        thresholds=thresholds,
        provenance=Provenance(training_data=source.description,
                              validation_identities=tuple(source.validation_names),
                              pretrained_from=base.provenance.pretrained_from if start else None,
                              config=config_to_dict(config)),
    )


def publish(embedder: keras.Model, run_state: RunState, contract: ModelContract, metrics: Dict[str, Any],
            source: TrainingSource, chief: bool) -> None:
    """On the chief: write the model directory (``model.keras``, ``saved_model/``,
    ``metadata.json``, ``metrics.json``, published together) and the skip report, then
    mark the run finished. Another worker removes its scratch output directory."""
    if not chief:
        shutil.rmtree(run_state.output_dir, ignore_errors=True)
        return
    write_model_directory(embedder, run_state.output_dir, contract, metrics, owner=run_state.owner)
    if source.skipped is not None:
        source.skipped.write(os.path.join(run_state.output_dir, SKIPPED_FILE))
    run_state.finish()


@contextlib.contextmanager
def _precision(mixed: Optional[str]):
    """Keras' global dtype policy ``mixed_<mixed>`` for the run, restored afterwards."""
    if mixed is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(f"mixed_{mixed}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _finished_result(output_dir: str) -> TrainResult:
    """The result of a run that had already finished in ``output_dir``: its metrics and
    contract as written, no model loaded, no history."""
    logger.info("the run in %s already finished: nothing to do (restart to train again)", output_dir)
    return TrainResult(None, output_dir, read_json(os.path.join(output_dir, METRICS_FILE)),
                       read_contract(os.path.join(output_dir, METADATA_FILE)), {}, already_finished=True)
