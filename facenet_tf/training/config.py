"""The configuration of one training run, and its JSON file form.

:class:`TrainConfig` nests :class:`facenet_tf.data.DataConfig` (with its
:class:`facenet_tf.data.AugmentConfig`) and :class:`facenet_tf.models.ModelConfig`;
every default lives in those dataclasses. :func:`config_to_dict` / :func:`config_from_dict`
turn any of them into plain JSON values and back (``train --config FILE.json``), with
unknown keys rejected by name.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

from facenet_tf import fields
from facenet_tf import losses as losses_lib
from facenet_tf.data.config import DataConfig
from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError, file_problem
from facenet_tf.fields import setting
from facenet_tf.models.contract import ModelContract
from facenet_tf.models.config import ModelConfig
from facenet_tf.registry import Registry

#: Default peak learning rate of a model trained from scratch, and of a fine-tuned start
#: model (``init_from``); measured on ORL (benchmarks/RESULTS.md).
SCRATCH_LEARNING_RATE = 2e-3
FINETUNE_LEARNING_RATE = 1e-5
#: Low-precision compute types of ``mixed_precision``.
MIXED_PRECISION = ("float16", "bfloat16")
#: ``tf.distribute`` strategies a run can use; :mod:`facenet_tf.training.distribute` registers them.
STRATEGIES = Registry("strategy", "--strategy", plugins=("facenet_tf.training.distribute",))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; defaults are the small-data recipe.

    Nests :class:`DataConfig` (``data``) and :class:`facenet_tf.models.ModelConfig`
    (``model``). Each field's help, type and range is its
    :func:`~facenet_tf.fields.setting`; :meth:`validate` checks them and the rules across
    fields before any work. Notes the one-line helps leave out:

    * ``learning_rate``: peak of AdamW, reached after ``warmup_steps`` and cosine-decayed to
      1% by the end; unset = :data:`SCRATCH_LEARNING_RATE`, or
      :data:`FINETUNE_LEARNING_RATE` with ``init_from``.
    * ``mixed_precision``: the backbone computes in that type; embedding normalisation,
      distances and the loss stay float32, and float16 uses loss scaling.
    * ``keep_best``: with ``init_from`` and validation identities, the start model is
      evaluated first and the run ends with the best of it and every epoch (validation
      balanced accuracy), so fine-tuning never ends below its start.
    * ``deterministic``: two runs give bit-identical weights on CPU (GPU kernels without a
      deterministic version fail).
    * ``freeze_top_layers``: fine-tunes the early layers only. A new camera (lighting,
      sensor) changes low-level statistics; on the domain-shift benchmark the deepest layers
      carried none of the gain and most of the loss on the old camera's images
      (benchmarks/RESULTS.md).
    * ``start_weight_share``: after training (and ``keep_best``'s choice), every weight
      becomes ``(1 - s) · trained + s · start``, the start weights read again from
      ``init_from`` (WiSE-FT, Wortsman et al. 2022): on a new camera it keeps most of the
      gain while the old cameras lose less (benchmarks/domain_shift.py). The validation
      figures and thresholds are those of the mixed weights.
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    output_dir: str = setting(os.path.join("saved_models", "facenet_tf"),
                              "where model.keras, saved_model/, logs/ and metrics go")
    epochs: int = setting(6, "passes of steps_per_epoch batches", low=1, high=100_000)
    steps_per_epoch: int = setting(60, "batches per epoch", low=1, high=10_000_000)
    loss: str = setting("semihard", "triplet loss", choices=losses_lib.LOSSES)
    margin: float = setting(0.2, "triplet margin alpha, in units of the distance", low=0.0, high=4.0)
    loss_options: Tuple[str, ...] = setting((), "the loss's own hyperparameters, NAME=VALUE each (numbers)")
    miner: Optional[str] = setting(None, "how the loss chooses its triplets (unset: the loss's own: semihard for "
                                         "semihard, hardest for hard and soft_hard, all for batch_all)",
                                   choices=losses_lib.MINERS)
    distance: Optional[str] = setting(
        None, "embedding distance (unset: squared_l2, or the --init-from model's own)", choices=DISTANCES)
    learning_rate: Optional[float] = setting(
        None, "peak learning rate (unset: 2e-3 from scratch, 1e-5 with --init-from)", low=0.0, low_open=True,
        high=10.0)
    warmup_steps: int = setting(50, "linear learning-rate warm-up steps", low=0, high=10_000_000)
    weight_decay: float = setting(1e-4, "decoupled weight decay of AdamW", low=0.0, high=1.0)
    seed: int = setting(0, "seeds weights, batches and augmentation: same seed, same run", low=0, high=2**31 - 1)
    init_from: Optional[str] = setting(
        None, "start from a local model: model directory, .keras file, SavedModel dir or .weights.h5")
    freeze_backbone_epochs: int = setting(
        0, "train only the embedding head for N epochs, then unfreeze at learning_rate x "
           "finetune_learning_rate_factor", low=0, high=100_000)
    finetune_learning_rate_factor: float = setting(0.1, "learning-rate factor after unfreezing", low=0.0,
                                                   low_open=True, high=100.0)
    strategy: str = setting("default", "tf.distribute strategy", choices=STRATEGIES)
    jit_compile: bool = setting(False, "compile the training step with XLA")
    local_mining: bool = setting(False, "with several replicas, mine inside each replica's slice of the batch "
                                        "instead of over the global batch")
    cpu_devices: int = setting(0, "split the host CPU into N logical devices (0: leave it)", low=0, high=256)
    mixed_precision: Optional[str] = setting(None, "low-precision compute type of the backbone",
                                             choices=MIXED_PRECISION)
    keep_best: bool = setting(True, "with --init-from: evaluate the start model first and keep the best of it "
                                    "and every epoch")
    deterministic: bool = setting(False, "TensorFlow op determinism: two runs give bit-identical weights on CPU")
    freeze_normalization: bool = setting(True, "with --init-from: keep BatchNormalization / affine statistics "
                                               "fixed")
    freeze_top_layers: int = setting(
        0, "with --init-from: keep the last N layers that hold weights (counted back from the output, normalisation "
           "layers included) frozen; 17 = the dlib ResNet's last stage and fc", low=0, high=100_000)
    start_weight_share: float = setting(
        0.0, "with --init-from: the start model's share s of the final weights, (1 - s) x trained + s x start "
             "(weight-space ensembling; 0: off)", low=0.0, high=1.0)

    def resolved(self, start: Optional[ModelContract] = None) -> "TrainConfig":
        """This config with every ``None`` default decided.

        Args:
            start: the ``init_from`` model's contract; ``None`` when training from scratch.
        """
        return dataclasses.replace(
            self,
            distance=self.distance or (start.distance if start is not None else "squared_l2"),
            learning_rate=self.learning_rate or (FINETUNE_LEARNING_RATE if start is not None else SCRATCH_LEARNING_RATE),
        )

    def loss_hyperparameters(self) -> Dict[str, float]:
        """:attr:`loss_options` as ``{name: number}``.

        Raises:
            FacenetError: an option that is not ``NAME=NUMBER``.
        """
        options = {}
        for option in self.loss_options:
            key, sep, value = option.partition("=")
            try:
                options[key.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not key.strip():
                raise FacenetError(f"loss_options must be NAME=NUMBER each; received {option!r}")
        return options

    def validate(self) -> None:
        """Check every field's type and range, and the rules across fields, before any work.

        Raises:
            FacenetError: one line naming the field(s) and the value received.
        """
        fields.validate(self)
        self.data.validate()
        options = self.loss_hyperparameters()
        accepted = losses_lib.hyperparameters(self.loss) if options else ()  # reads the loss's module
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise FacenetError(f"loss_options: loss {self.loss} takes no {', '.join(unknown)}; its hyperparameters: "
                               f"{', '.join(accepted)}")
        if self.miner is not None:
            losses_lib.check_miner(self.loss, self.miner)  # reads the loss's module
        if self.start_weight_share and self.init_from is None:
            raise FacenetError(f"start_weight_share ({self.start_weight_share}) needs init_from: the weights to mix "
                               "with are the start model's")
        if self.freeze_top_layers and (self.init_from is None or self.freeze_backbone_epochs):
            raise FacenetError(f"freeze_top_layers ({self.freeze_top_layers}) needs init_from and excludes "
                               f"freeze_backbone_epochs ({self.freeze_backbone_epochs}): it fine-tunes the early "
                               "layers of a start model")
        if self.freeze_backbone_epochs >= self.epochs:
            raise FacenetError(
                f"freeze_backbone_epochs must be between 0 and epochs - 1 ({self.epochs - 1}); "
                f"received {self.freeze_backbone_epochs}"
            )


def config_to_dict(config) -> Dict[str, Any]:
    """A config dataclass (nested ones too) as JSON values; tuples become lists."""
    return fields.to_dict(config)


def config_from_dict(cls, values: Dict[str, Any], where: str = "config"):
    """Build dataclass ``cls`` from JSON ``values`` (see :func:`facenet_tf.fields.from_dict`)."""
    return fields.from_dict(cls, values, where)


def load_config(path: str) -> TrainConfig:
    """Read a :class:`TrainConfig` from a JSON file (as :func:`save_config` writes).

    Raises:
        FacenetError: missing or unreadable file, bad JSON, unknown keys.
    """
    from facenet_tf.artifacts import read_json

    problem = file_problem(path)
    if problem:
        raise FacenetError(f"--config {path}: {'no such file' if problem == 'not found' else problem}")
    return config_from_dict(TrainConfig, read_json(path), where=f"--config {path}")


def save_config(config: TrainConfig, path: str) -> None:
    """Write ``config`` as JSON, atomically."""
    from facenet_tf.artifacts import write_json

    write_json(path, config_to_dict(config))
