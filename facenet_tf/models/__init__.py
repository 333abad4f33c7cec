"""Models: the embedding architectures, the model contract, and the one loader every command uses.

* :mod:`~facenet_tf.models.backbones`: the :data:`BACKBONES` table (add a backbone here).
* :mod:`~facenet_tf.models.config`: :class:`ModelConfig` and the :data:`BACKBONES` table (no Keras).
* :mod:`~facenet_tf.models.embedding`: :func:`build_embedding_model`.
* :mod:`~facenet_tf.models.contract`: :class:`ModelContract`, what a saved model promises
  (input, alignment, distance, thresholds, fingerprint, provenance); the only module that
  reads or writes ``metadata.json``'s keys.
* :mod:`~facenet_tf.models.loader`: every accepted model form (model directory,
  ``.keras``, SavedModel, ``.weights.h5``) → a Keras model or a serving callable.
* :mod:`~facenet_tf.models.writer`: writing a model directory and its SavedModel.
* :mod:`~facenet_tf.models.importers`: the :data:`IMPORTERS` table; importers of foreign
  weights live in :mod:`facenet_tf.pretrained` and register there (add an importer there).
"""

from facenet_tf.lazy import exports

#: public name → module under facenet_tf.models that defines it. Names are imported on first
#: use (PEP 562), so a config or a contract costs no Keras import.
_EXPORTS = {
    "BACKBONES": "config", "ModelConfig": "config", "BN_MOMENTUM": "backbones", "Backbone": "backbones",
    "ImportedFile": "contract", "ModelContract": "contract", "Provenance": "contract", "Thresholds": "contract",
    "RecordedAlignment": "recorded", "RecordedTTA": "recorded",
    "Standardize": "embedding", "build_embedding_model": "embedding", "resolve_backbone_weights": "embedding",
    "ModelArtifact": "loader", "load_keras": "loader", "load_serving": "loader", "locate": "loader",
    "model_image_size": "loader",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)
