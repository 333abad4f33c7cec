"""The configuration of one training run, and its JSON file form.

:class:`TrainConfig` nests :class:`facenet_tf.data.DataConfig` (with its
:class:`facenet_tf.data.AugmentConfig`) and :class:`facenet_tf.models.ModelConfig`;
every default lives in those dataclasses. :func:`config_to_dict` / :func:`config_from_dict`
turn any of them into plain JSON values and back (``train --config FILE.json``), with
unknown keys rejected by name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from typing import Any, Dict, Optional

from facenet_tf import losses as losses_lib
from facenet_tf.data.config import DataConfig
from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.models.embedding import ModelConfig

#: Default peak learning rate of a model trained from scratch, and of a fine-tuned start
#: model (``init_from``); measured on ORL (benchmarks/RESULTS.md).
SCRATCH_LEARNING_RATE = 2e-3
FINETUNE_LEARNING_RATE = 1e-5
#: Low-precision compute types of ``mixed_precision``.
MIXED_PRECISION = ("float16", "bfloat16")
#: ``tf.distribute`` strategies a run can use (see :mod:`facenet_tf.training.distribute`).
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; defaults are the small-data recipe.

    Attributes:
        data: :class:`DataConfig`.
        model: :class:`facenet_tf.models.ModelConfig`.
        output_dir: where artefacts go.
        epochs: passes of ``steps_per_epoch`` batches.
        steps_per_epoch: batches per epoch.
        loss: one of :data:`facenet_tf.losses.LOSSES`.
        margin: triplet margin α, in units of ``distance``.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; ``None`` = ``"squared_l2"``
            for a new model, the start model's own distance with ``init_from``.
        learning_rate: peak learning rate (AdamW), reached after ``warmup_steps`` and
            cosine-decayed to 1% by the end; ``None`` = :data:`SCRATCH_LEARNING_RATE` for a
            new model, :data:`FINETUNE_LEARNING_RATE` with ``init_from``.
        warmup_steps: linear warm-up steps.
        weight_decay: decoupled weight decay of AdamW.
        seed: seeds weights, batches and augmentation: same seed, same run.
        init_from: optional local model to start from (any form of
            :func:`facenet_tf.models.loader.locate`, or a ``.weights.h5`` file).
        freeze_backbone_epochs: train only the embedding head for this many epochs first,
            then unfreeze everything with ``learning_rate * finetune_learning_rate_factor``.
        finetune_learning_rate_factor: learning-rate factor after unfreezing.
        strategy: one of :data:`STRATEGIES` (``tf.distribute``); ``"default"`` is one device.
        jit_compile: compile the training step with XLA.
        local_mining: under a multi-replica strategy, mine inside each replica's slice of
            the batch instead of over the global batch (see :class:`TripletTrainer`).
        cpu_devices: split the host CPU into this many logical devices (0: leave it), so
            that any strategy runs on a laptop or in tests.
        mixed_precision: ``None``, ``"float16"`` or ``"bfloat16"``: the backbone computes in
            that type; embedding normalisation, distances and the loss stay float32, and
            float16 uses loss scaling.
        keep_best: with ``init_from`` and validation identities, evaluate the start model
            before training and end with the best of it and every epoch (by validation
            balanced accuracy), so fine-tuning never ends below its start.
        deterministic: TensorFlow op determinism on top of the seeds: two runs give
            bit-identical weights on CPU (GPU kernels without a deterministic version fail).
        freeze_normalization: with ``init_from``, keep BatchNormalization statistics and
            dlib's affine (folded batch-norm) layers fixed: a small fine-tuning set would
            otherwise re-estimate them from a few batches.
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    output_dir: str = os.path.join("saved_models", "facenet_tf")
    epochs: int = 6
    steps_per_epoch: int = 60
    loss: str = "semihard"
    margin: float = 0.2
    distance: Optional[str] = None
    learning_rate: Optional[float] = None
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    seed: int = 0
    init_from: Optional[str] = None
    freeze_backbone_epochs: int = 0
    finetune_learning_rate_factor: float = 0.1
    strategy: str = "default"
    jit_compile: bool = False
    local_mining: bool = False
    cpu_devices: int = 0
    mixed_precision: Optional[str] = None
    keep_best: bool = True
    deterministic: bool = False
    freeze_normalization: bool = True

    def resolved(self, start_metadata: Optional[Dict[str, Any]] = None) -> "TrainConfig":
        """This config with every ``None`` default decided.

        Args:
            start_metadata: ``metadata.json`` of the ``init_from`` model (``{}`` if none);
                ``None`` when training from scratch.
        """
        start = start_metadata
        return dataclasses.replace(
            self,
            distance=self.distance or ((start or {}).get("distance") or "squared_l2"),
            learning_rate=self.learning_rate or (FINETUNE_LEARNING_RATE if start is not None else SCRATCH_LEARNING_RATE),
        )

    def validate(self) -> None:
        """Raise :class:`FacenetError` for values no run could use."""
        check_choice("loss", self.loss, losses_lib.LOSSES)
        if self.distance is not None:
            check_choice("distance", self.distance, DISTANCES)
        check_choice("strategy", self.strategy, STRATEGIES)
        if self.mixed_precision is not None:
            check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        if self.data.identities_per_batch is not None and self.data.identities_per_batch < 2:
            raise FacenetError(f"identities_per_batch must be >= 2 (a batch needs negatives); received "
                               f"{self.data.identities_per_batch}")
        if self.cpu_devices < 0:
            raise FacenetError(f"cpu_devices must be >= 0; received {self.cpu_devices}")
        for name in ("epochs", "steps_per_epoch"):
            if getattr(self, name) < 1:
                raise FacenetError(f"{name} must be >= 1; received {getattr(self, name)}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise FacenetError(f"learning_rate must be > 0; received {self.learning_rate}")
        if not 0 <= self.freeze_backbone_epochs < self.epochs:
            raise FacenetError(
                f"freeze_backbone_epochs must be between 0 and epochs - 1 ({self.epochs - 1}); "
                f"received {self.freeze_backbone_epochs}"
            )
        if not self.margin >= 0:
            raise FacenetError(f"margin must be >= 0; received {self.margin}")
        if self.data.images_per_identity is not None and self.data.images_per_identity < 2:
            raise FacenetError(
                f"images_per_identity must be >= 2 (a batch needs positive pairs); received {self.data.images_per_identity}"
            )


def config_to_dict(config) -> Dict[str, Any]:
    """A config dataclass (nested ones too) as JSON values; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls, values: Dict[str, Any], where: str = "config"):
    """Build dataclass ``cls`` from ``values``; missing keys keep their defaults.

    Nested dataclass fields take a dict (or ``null`` where the field is optional, as
    ``data.augment``); lists become tuples where the default is a tuple.

    Raises:
        FacenetError: a key ``cls`` does not have, or a value of the wrong kind.
    """
    if not isinstance(values, dict):
        raise FacenetError(f"{where} must be a JSON object; received {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FacenetError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        nested = nested_dataclass(hints[name])
        if nested is not None and value is not None:
            value = config_from_dict(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def nested_dataclass(hint):
    """The dataclass a field's type hint names (``AugmentConfig`` in ``Optional[AugmentConfig]``), or ``None``."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def load_config(path: str) -> TrainConfig:
    """Read a :class:`TrainConfig` from a JSON file (as :func:`save_config` writes).

    Raises:
        FacenetError: missing or unreadable file, bad JSON, unknown keys.
    """
    from facenet_tf.artifacts import read_json

    if not os.path.isfile(path):
        raise FacenetError(f"--config {path}: no such file")
    return config_from_dict(TrainConfig, read_json(path), where=f"--config {path}")


def save_config(config: TrainConfig, path: str) -> None:
    """Write ``config`` as JSON, atomically."""
    from facenet_tf.artifacts import write_json

    write_json(path, config_to_dict(config))
