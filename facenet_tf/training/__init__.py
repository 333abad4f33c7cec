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

from facenet_tf.data.config import DataConfig
from facenet_tf.training.config import STRATEGIES, TrainConfig, config_from_dict, config_to_dict, load_config, save_config
from facenet_tf.training.run import TrainResult, start_model, train
from facenet_tf.training.trainer import TripletTrainer, backbone_layers, build_optimizer

__all__ = ["DataConfig", "STRATEGIES", "TrainConfig", "TrainResult", "TripletTrainer",
           "backbone_layers", "build_optimizer", "config_from_dict", "config_to_dict", "load_config",
           "save_config", "start_model", "train"]
