"""Training: configuration, the triplet trainer, distribution, and the end-to-end run.

* :mod:`~facenet_tf.training.config`: :class:`TrainConfig` (nesting
  :class:`~facenet_tf.data.DataConfig` and :class:`~facenet_tf.models.ModelConfig`) and
  its JSON file form.
* :mod:`~facenet_tf.training.trainer`: :class:`TripletTrainer` and the optimizer.
* :mod:`~facenet_tf.training.distribute`: the ``tf.distribute`` strategy of a run.
* :mod:`~facenet_tf.training.run`: :func:`train`, the run as named steps: start model →
  trainer → callbacks → fit phases (freeze, unfreeze, resume) → metrics → publish.
* :mod:`~facenet_tf.training.phases`: the run's ``fit`` phases; freezing, unfreezing and
  resuming in one loop.
* :mod:`~facenet_tf.training.state`: the run's state in its output directory (resume point,
  per-epoch history).
* :mod:`~facenet_tf.training.callbacks`, :mod:`~facenet_tf.training.tensorboard_views`: what
  runs at each step and epoch (validation, guards, checkpoints, TensorBoard).
"""

from facenet_tf.lazy import exports

#: public name → module that defines it, imported on first use (PEP 562): a
#: :class:`TrainConfig` (``facenet-tf train --help``) costs no TensorFlow import.
_EXPORTS = {
    "DataConfig": "facenet_tf.data.config",
    **{name: "facenet_tf.training.config" for name in (
        "STRATEGIES", "TrainConfig", "config_from_dict", "config_to_dict", "load_config", "save_config")},
    **{name: "facenet_tf.training.run" for name in ("TrainResult", "start_model", "train")},
    **{name: "facenet_tf.training.trainer" for name in ("TripletTrainer", "backbone_layers", "build_optimizer")},
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)
