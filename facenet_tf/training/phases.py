"""The phases of a run's ``fit``, and the one place that freezes, unfreezes and resumes.

:func:`plan_phases` turns a :class:`~facenet_tf.training.config.TrainConfig` into
:class:`Phase` objects (all epochs; or ``freeze_backbone_epochs`` with the backbone frozen,
then the rest unfrozen at a lower learning rate); :func:`fit_phases` runs them from the
resume epoch, restoring the run's checkpoint in the phase that holds it.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import List, Optional

import keras
import tensorflow as tf

from facenet_tf.errors import FacenetError
from facenet_tf.training.callbacks import RunCallbacks
from facenet_tf.training.config import TrainConfig
from facenet_tf.training.state import RunState
from facenet_tf.training.trainer import TripletTrainer, backbone_layers, build_optimizer

logger = logging.getLogger("facenet_tf")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One ``fit`` of a run: epochs ``first`` (Keras ``initial_epoch``) up to ``last``
    (exclusive; Keras ``epochs``), with a learning-rate schedule spanning the whole phase.

    Attributes:
        first: 0-based epoch the phase starts at.
        last: epoch the phase ends before.
        learning_rate: the schedule's peak learning rate.
        freeze_backbone: ``True`` backbone layers frozen, ``False`` trainable, ``None`` as
            the model has them.
    """

    first: int
    last: int
    learning_rate: float
    freeze_backbone: Optional[bool] = None


def plan_phases(config: TrainConfig) -> List[Phase]:
    """The run's phases: all epochs at ``learning_rate``, or with ``freeze_backbone_epochs``
    first those epochs with the backbone frozen, then the rest with everything trainable at
    ``learning_rate * finetune_learning_rate_factor``."""
    frozen = config.freeze_backbone_epochs
    if not frozen:
        return [Phase(0, config.epochs, config.learning_rate)]
    return [Phase(0, frozen, config.learning_rate, freeze_backbone=True),
            Phase(frozen, config.epochs, config.learning_rate * config.finetune_learning_rate_factor,
                  freeze_backbone=False)]


def fit_phases(trainer: TripletTrainer, dataset: tf.data.Dataset, phases: List[Phase], resume: int,
               callbacks: RunCallbacks, run_state: RunState, config: TrainConfig, strategy, verbose: int,
               freeze_normalization: bool, freeze_top: int = 0) -> None:
    """Train ``phases`` in order from epoch ``resume`` (0: from the start): phases the killed run finished are
    skipped; each other phase sets its trainable layers, compiles its optimizer and fits;
    the phase holding the resume epoch first restores that epoch's checkpoint (weights and
    optimizer state). The P×K stream and its augmentation are seeded per step, so skipping
    the batches already trained on gives the uninterrupted run's next batch.

    Raises:
        FacenetError: the loss or the weights became NaN or infinite.
    """
    if resume:
        logger.info("resuming from epoch %d, step %d (%s)", resume, resume * config.steps_per_epoch,
                    run_state.backup_weights)
    for phase in phases:
        if phase.last <= resume or callbacks.guard.tripped is not None:
            continue
        first = max(phase.first, resume)
        with strategy.scope():
            _set_trainable(trainer.embedder, phase.freeze_backbone, freeze_normalization, freeze_top)
            optimizer = build_optimizer(phase.learning_rate, (phase.last - phase.first) * config.steps_per_epoch,
                                        config.warmup_steps, config.weight_decay)
            trainer.compile(optimizer=optimizer, jit_compile=config.jit_compile)
        if first == resume > 0:
            _restore(trainer, run_state.backup_weights, fresh_optimizer=first == phase.first)
        trainer.fit(dataset.skip(first * config.steps_per_epoch) if first else dataset, epochs=phase.last,
                    initial_epoch=first, steps_per_epoch=config.steps_per_epoch, callbacks=callbacks.all,
                    verbose=verbose, shuffle=False)
    if callbacks.guard.tripped is not None:
        last = callbacks.backup.last_checkpoint or "none written"
        raise FacenetError(f"training diverged: {callbacks.guard.tripped}; nothing was written from those weights "
                           f"(last good checkpoint: {last}); try a lower --learning-rate")


def _restore(trainer: TripletTrainer, checkpoint: str, fresh_optimizer: bool) -> None:
    """Load a resume ``checkpoint`` into the compiled trainer: its weights and, unless
    ``fresh_optimizer`` (the phase starts at the checkpoint, whose optimizer state is the
    previous phase's), its optimizer state; a fresh optimizer stays as built, as in the
    uninterrupted run."""
    trainer.optimizer.build(trainer.trainable_variables)
    built = [variable.numpy() for variable in trainer.optimizer.variables] if fresh_optimizer else []
    with warnings.catch_warnings():
        if fresh_optimizer:  # Keras warns when the saved optimizer has other variables
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        trainer.load_weights(checkpoint)
    for variable, value in zip(trainer.optimizer.variables, built):
        variable.assign(value)


def _set_trainable(embedder: keras.Model, freeze_backbone: Optional[bool], freeze_normalization: bool,
                   freeze_top: int = 0) -> None:
    """Freeze (``True``) or unfreeze (``False``) the backbone layers (``None``: leave them),
    then, with ``freeze_normalization``, make BatchNormalization and dlib ``Affine``
    layers untrainable, then the last ``freeze_top`` layers holding weights.

    Raises:
        FacenetError: ``freeze_top`` would freeze every layer holding weights.
    """
    if freeze_backbone is not None:
        for layer in backbone_layers(embedder):
            layer.trainable = not freeze_backbone
    if freeze_normalization:
        for layer in embedder._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization) or type(layer).__name__ == "Affine":
                layer.trainable = False
    if freeze_top:
        weighted = weighted_layers(embedder)
        if freeze_top >= len(weighted):
            raise FacenetError(f"freeze_top_layers ({freeze_top}) must be below the model's {len(weighted)} layers "
                               "with weights, or nothing trains")
        for layer in weighted[-freeze_top:]:
            layer.trainable = False


def weighted_layers(model: keras.Model) -> list:
    """The layers of ``model`` that hold weights, in the model's (input to output) order; a
    nested model (a keras.applications backbone) contributes its own layers, not itself."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found
