"""Models: the embedding architectures, the model contract, and the one loader every command uses.

* :mod:`~facenet_tf.models.backbones`: the :data:`BACKBONES` table (add a backbone here).
* :mod:`~facenet_tf.models.embedding`: :class:`ModelConfig` and :func:`build_embedding_model`.
* :mod:`~facenet_tf.models.contract`: :class:`ModelContract`, what a saved model promises
  (input, alignment, distance, thresholds, fingerprint, provenance); the only module that
  reads or writes ``metadata.json``'s keys.
* :mod:`~facenet_tf.models.loader`: every accepted model form (model directory,
  ``.keras``, SavedModel, ``.weights.h5``) → a Keras model or a serving callable.
* :mod:`~facenet_tf.models.writer`: writing a model directory and its SavedModel.
* :mod:`~facenet_tf.models.importers`: the :data:`IMPORTERS` table; importers of foreign
  weights live in :mod:`facenet_tf.pretrained` and register there (add an importer there).
"""

from facenet_tf.models.backbones import BACKBONES, BN_MOMENTUM, Backbone
from facenet_tf.models.contract import ModelContract, Provenance, Thresholds
from facenet_tf.models.embedding import ModelConfig, Standardize, build_embedding_model, resolve_backbone_weights
from facenet_tf.models.loader import ModelArtifact, load_keras, load_serving, locate, model_image_size

__all__ = ["BACKBONES", "BN_MOMENTUM", "Backbone", "ModelArtifact", "ModelConfig", "ModelContract", "Provenance",
           "Standardize", "Thresholds", "build_embedding_model", "load_keras", "load_serving", "locate",
           "model_image_size", "resolve_backbone_weights"]
