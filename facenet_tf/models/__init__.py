"""Models: the embedding architectures and the one loader every command uses.

* :mod:`~facenet_tf.models.embedding`: :class:`ModelConfig`, the backbone table and
  :func:`build_embedding_model`.
* :mod:`~facenet_tf.models.loader`: every accepted model form (model directory,
  ``.keras``, SavedModel, ``.weights.h5``) → a Keras model or a serving callable.
* Importers of foreign weights live in :mod:`facenet_tf.pretrained` and write a model
  directory that the loader reads like any other.
"""

from facenet_tf.models.embedding import (BACKBONES, BN_MOMENTUM, IMAGENET_FILES, MIN_SIZE, ModelConfig, Standardize,
                                         build_embedding_model, resolve_backbone_weights)
from facenet_tf.models.loader import ModelArtifact, load_keras, load_serving, locate, model_image_size

__all__ = ["BACKBONES", "BN_MOMENTUM", "IMAGENET_FILES", "MIN_SIZE", "ModelArtifact", "ModelConfig", "Standardize",
           "build_embedding_model", "load_keras", "load_serving", "locate", "model_image_size",
           "resolve_backbone_weights"]
