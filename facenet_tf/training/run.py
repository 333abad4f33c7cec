"""Run one training job end to end: data source → model → fit → artefacts.

``train(config)`` is what ``python pipelines/train.py`` and ``facenet-tf train`` run:
:func:`facenet_tf.data.sources.training_source` → embedding model (new, or
``init_from`` through :mod:`facenet_tf.models.loader`) → :class:`TripletTrainer`
(``model.fit`` in the run's ``tf.distribute`` strategy) → ``model.keras``,
``saved_model/``, ``metadata.json`` and ``metrics.json`` in the output directory, plus
TensorBoard logs and per-epoch checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from facenet_tf import losses as losses_lib
from facenet_tf.artifacts import METADATA_FILE, METRICS_FILE, fingerprint_weights
from facenet_tf.models.writer import write_model_directory
from facenet_tf.faces.aligner import AlignConfig
from facenet_tf.training.callbacks import CollapseWarning, EpochBackup, HeldOutVerification, KeepBest, NonFiniteGuard
from facenet_tf.data.images import parse_image_size
from facenet_tf.data.sources import training_source
from facenet_tf.errors import FacenetError
from facenet_tf.models.embedding import DEFAULT_IMAGE_SIZE, build_embedding_model
from facenet_tf.models import contract as contracts
from facenet_tf.models.contract import ModelContract, Provenance, Thresholds
from facenet_tf.models.loader import load_keras, model_image_size, read_contract
from facenet_tf.training.config import TrainConfig, config_to_dict
from facenet_tf.training.distribute import is_chief, make_strategy
from facenet_tf.training.state import LOG_DIR, RunState

#: The training data's skip report in the output directory (bad files, identities left out).
SKIPPED_FILE = "skipped.json"
from facenet_tf.training.trainer import TripletTrainer, backbone_layers, build_optimizer

logger = logging.getLogger("facenet_tf")



@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced: the model, paths written and the final metrics."""

    model: keras.Model
    output_dir: str
    metrics: Dict[str, Any]
    contract: Optional[ModelContract]
    history: Dict[str, list]
    already_finished: bool = False


def build_model(config: TrainConfig) -> keras.Model:
    """The embedding model of ``config``, or the ``init_from`` model when given (see :func:`start_model`)."""
    return start_model(config)[0]


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


def _freeze_normalization(model: keras.Model) -> int:
    """Make BatchNormalization and dlib ``Affine`` layers untrainable; return how many."""
    frozen = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization) or type(layer).__name__ == "Affine":
            layer.trainable = False
            frozen += 1
    return frozen


def train(config: TrainConfig, verbose: int = 1, restart: bool = False,
          allow_existing_files: bool = False) -> TrainResult:
    """Run one training job end to end, resuming it when a killed run left a backup.

    The output directory keeps the run's state (:mod:`facenet_tf.training.state`): the same
    config run again after a kill continues after the last completed epoch (logged as
    ``resuming from epoch E, step S``); a finished run is not trained again (the result
    says :attr:`TrainResult.already_finished`); another config, or ``restart``, starts over.
    A NaN or infinite loss or weight stops the run with a :class:`FacenetError`; nothing is
    written from such weights, and the last good checkpoint stays.

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
    with _precision(config.mixed_precision):
        return _train(config, strategy, output_dir, run_state, verbose, chief)


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


def _train(config: TrainConfig, strategy, output_dir: str, run_state: RunState, verbose: int,
           chief: bool) -> TrainResult:
    started = time.time()
    with strategy.scope():
        embedder, start_meta = start_model(config)
    config = config.resolved(start_meta)
    image_size = model_image_size(embedder)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, image_size=image_size))
    alignment = AlignConfig.from_contract(start_meta)
    load = None
    if alignment is not None:
        from facenet_tf.faces.aligner import FaceAligner, align_files

        aligner = FaceAligner(alignment)
        load = lambda paths: align_files(aligner, paths, image_size)[0]  # noqa: E731
    source = training_source(config.data, image_size, config.seed, load=load)
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and source.identities_per_batch % replicas:
        raise FacenetError(f"identities_per_batch ({source.identities_per_batch}) must be a multiple of the "
                           f"{replicas} replicas, so that every replica holds whole identities")

    with strategy.scope():
        triplet_loss = losses_lib.get(config.loss, margin=config.margin, distance=config.distance)
        trainer = TripletTrainer(embedder, triplet_loss, local_mining=config.local_mining, name="triplet_trainer")
        if start_meta is not None and config.freeze_normalization:
            _freeze_normalization(embedder)
        frozen = config.freeze_backbone_epochs
        if frozen:
            for layer in backbone_layers(embedder):
                layer.trainable = False
        trainer.compile(optimizer=_optimizer(config, frozen or config.epochs, config.learning_rate),
                        jit_compile=config.jit_compile)
        trainer(np.zeros((1, *image_size, 3), np.float32))  # build, so checkpoints can be written

    run_state.start()
    guard = NonFiniteGuard(embedder)
    backup = EpochBackup(run_state, guard)
    callbacks = [guard, CollapseWarning(config.margin, log_dir=os.path.join(output_dir, LOG_DIR))]
    validation = keep = None
    if source.validation_images is not None:
        validation = HeldOutVerification(source.validation_images, source.validation_labels, embedder,
                                         config.distance, config.seed)
        callbacks.append(validation)
        if start_meta is not None and config.keep_best:
            keep = KeepBest(validation)
            callbacks.append(keep)
        from facenet_tf.training.tensorboard_views import ValidationViews  # ROC image, histograms, projector

        callbacks.append(ValidationViews(validation, os.path.join(output_dir, LOG_DIR), source.validation_names,
                                         source.validation_images))
    callbacks += [keras.callbacks.TensorBoard(os.path.join(output_dir, LOG_DIR), update_freq=1), backup]
    fit = dict(steps_per_epoch=config.steps_per_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
    resume = run_state.epoch if run_state.status == "resume" else 0
    dataset = source.dataset
    if resume:
        # The P×K stream and its augmentation are seeded per step: skipping the batches
        # already trained on gives the uninterrupted run's next batch.
        dataset = dataset.skip(resume * config.steps_per_epoch)
        logger.info("resuming from epoch %d, step %d (%s)", resume, resume * config.steps_per_epoch,
                    run_state.backup_weights)
    first = {}
    if frozen and resume < frozen:
        if resume:
            _restore(trainer, run_state)
        first = trainer.fit(dataset, epochs=frozen, initial_epoch=resume, **fit).history
        dataset = source.dataset.skip(frozen * config.steps_per_epoch)
    if frozen and guard.tripped is None:
        with strategy.scope():
            for layer in backbone_layers(embedder):
                layer.trainable = True
            if start_meta is not None and config.freeze_normalization:
                _freeze_normalization(embedder)
            trainer.compile(optimizer=_optimizer(config, config.epochs - frozen,
                                                 config.learning_rate * config.finetune_learning_rate_factor),
                            jit_compile=config.jit_compile)
    if guard.tripped is None:
        if resume and resume >= frozen:
            _restore(trainer, run_state)
        history = trainer.fit(dataset, epochs=config.epochs, initial_epoch=max(resume, frozen), **fit).history
        history = {k: first.get(k, []) + v for k, v in history.items()}
    else:
        history = first
    if guard.tripped is not None:
        last = backup.last_checkpoint or "none written"
        raise FacenetError(f"training diverged: {guard.tripped}; nothing was written from those weights "
                           f"(last good checkpoint: {last}); try a lower --learning-rate")
    train_seconds = time.time() - started

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
    thresholds = None
    if validation is not None:
        result = validation.result
        metrics["validation"] = {
            **result.to_json_dict(),
            "num_images": int(len(source.validation_labels)),
            "num_identities": int(len(source.validation_names)),
        }
        if keep is not None:
            metrics["validation_start_model"] = keep.start
            metrics["kept_epoch"] = keep.best_epoch
        thresholds = Thresholds(best_accuracy=result.threshold, at_far=result.threshold_at_far[1e-3], far=1e-3)
    contract = describe_model(embedder, config, start_meta, source, thresholds)
    if source.skipped is not None:
        metrics["skipped"] = source.skipped.counts()
    if chief:
        write_model_directory(embedder, output_dir, contract, metrics)
        if source.skipped is not None:
            source.skipped.write(os.path.join(output_dir, SKIPPED_FILE))
        run_state.finish()
    else:
        shutil.rmtree(output_dir, ignore_errors=True)
    return TrainResult(embedder, config.output_dir, metrics, contract, history)


def describe_model(embedder: keras.Model, config: TrainConfig, start: Optional[ModelContract], source,
                   thresholds: Optional[Thresholds]) -> ModelContract:
    """The trained model's contract: a fine-tuned model keeps how its start model is fed
    (architecture, alignment, input contract, preprocessing, provenance of its weights)."""
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


def _restore(trainer: TripletTrainer, run_state: RunState) -> None:
    """Load the resume checkpoint (weights and optimizer state) into the compiled trainer."""
    trainer.optimizer.build(trainer.trainable_variables)
    trainer.load_weights(run_state.backup_weights)


def _finished_result(output_dir: str) -> TrainResult:
    from facenet_tf.artifacts import read_json

    logger.info("the run in %s already finished: nothing to do (restart to train again)", output_dir)
    return TrainResult(None, output_dir, read_json(os.path.join(output_dir, METRICS_FILE)),
                       read_contract(os.path.join(output_dir, METADATA_FILE)), {}, already_finished=True)


def _optimizer(config: TrainConfig, epochs: int, learning_rate: float) -> keras.optimizers.Optimizer:
    return build_optimizer(learning_rate, epochs * config.steps_per_epoch, config.warmup_steps, config.weight_decay)
