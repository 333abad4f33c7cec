"""What an embedding model is built from: :class:`ModelConfig` and the :data:`BACKBONES` table.

Declared without Keras, so that a config (and ``facenet-tf train --help``'s flags) costs
no TensorFlow import; the backbones register themselves in :mod:`facenet_tf.models.backbones`,
which the table imports on its first lookup.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from facenet_tf.data.reader import parse_image_size
from facenet_tf.fields import setting
from facenet_tf.registry import Registry

#: ``--backbone`` name -> :class:`facenet_tf.models.backbones.Backbone`.
BACKBONES: "Registry" = Registry("backbone", "--backbone", plugins=("facenet_tf.models.backbones",))

#: Input size of a new model when :attr:`ModelConfig.image_size` is ``None``.
DEFAULT_IMAGE_SIZE = (64, 64)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the embedding model.

    Each field's help, type and range is its :func:`~facenet_tf.fields.setting`. The
    ``keras.applications`` backbones start from random weights unless ``weights`` names a
    local file (see :func:`resolve_backbone_weights`); nothing is ever downloaded.
    ``image_size`` also takes ``"N"`` or ``"HxW"`` text, parsed on construction.
    """

    backbone: str = setting("small_cnn", "feature extractor", choices=BACKBONES)
    embedding_dim: int = setting(128, "size of the unit-norm embedding", low=2, high=4096)
    image_size: Optional[Tuple[int, int]] = setting(
        None, "input size in pixels, N or HxW (unset: 64x64 for a new model, the --init-from model's own size)",
        low=16, high=2048)
    dropout: float = setting(0.0, "dropout rate before the embedding layer", low=0.0, high=0.95)
    weights: Optional[str] = setting(
        None, "local Keras weights file for a keras.applications backbone, or 'imagenet' for the file in "
              "~/.keras/models", flag="backbone-weights")

    def __post_init__(self):
        if isinstance(self.image_size, (str, int)) and not isinstance(self.image_size, bool):
            object.__setattr__(self, "image_size", parse_image_size(self.image_size))
