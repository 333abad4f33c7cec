"""Embedding models: image pixels (0..255) in, L2-normalised embeddings out.

Every model built here is ``Input[H,W,3] → Standardize → backbone → global average pool →
Dense(embedding_dim) → UnitNormalization``. Standardisation lives *inside* the model so
that a served SavedModel or TFLite file takes the same raw pixels as training did.
"""

from __future__ import annotations

import os
from typing import Optional

import keras
from keras import layers, ops

from facenet_tf import fields
from facenet_tf.errors import FacenetError, file_problem
from facenet_tf.models.backbones import BACKBONES
from facenet_tf.models.config import DEFAULT_IMAGE_SIZE, ModelConfig  # noqa: F401  (declared without Keras)


@keras.saving.register_keras_serializable(package="facenet_tf")
class Standardize(layers.Layer):
    """Per-image standardisation: ``(x - mean(x)) / max(std(x), 1/sqrt(H*W*C))``.

    Removes global brightness and contrast, as TF's ``per_image_standardization`` and
    davidsandberg/facenet's ``prewhiten`` do. Input float ``[N,H,W,C]`` in any range;
    output float32 of the same shape, zero mean and unit variance per image.
    """

    def call(self, x):
        x = ops.cast(x, "float32")
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.std(x, axis=(1, 2, 3), keepdims=True)
        size = ops.cast(ops.prod(ops.shape(x)[1:]), "float32")
        return (x - mean) / ops.maximum(std, ops.rsqrt(size))


def build_embedding_model(config: ModelConfig = ModelConfig()) -> keras.Model:
    """Build the embedding model.

    Args:
        config: backbone, embedding size, input size, optional local backbone weights.

    Returns:
        A functional ``keras.Model`` mapping float32 ``[N,H,W,3]`` pixels in 0..255 to
        float32 ``[N, embedding_dim]`` with unit L2 norm.

    Raises:
        FacenetError: unknown backbone, too small an image for it, bad embedding size, or
            a ``weights`` file that does not exist.
    """
    fields.validate(config)
    backbone = BACKBONES.get(config.backbone)
    size = config.image_size or DEFAULT_IMAGE_SIZE
    if min(size) < backbone.min_size:
        raise FacenetError(
            f"backbone {config.backbone!r} needs images of at least {backbone.min_size} pixels; "
            f"image_size is {size[0]}x{size[1]}"
        )
    weights = resolve_backbone_weights(config.backbone, config.weights)
    inputs = keras.Input((*size, 3), dtype="float32", name="images")
    x = Standardize(name="standardize")(inputs)
    features = backbone.build(x, size)
    if isinstance(features, keras.Model):
        if weights is not None:
            try:
                features.load_weights(weights)
            except Exception as err:  # noqa: BLE001 - any mismatch is a wrong user file
                raise FacenetError(f"cannot load backbone weights {weights!r}: {err}") from None
        features = features(x)
    elif weights is not None:
        raise FacenetError(f"backbone {config.backbone!r} takes no weights file; leave weights unset")
    x = layers.GlobalAveragePooling2D(name="pool")(features)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(config.embedding_dim, name="embedding")(x)
    outputs = layers.UnitNormalization(axis=-1, name="l2_normalize", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"facenet_{config.backbone}")


def resolve_backbone_weights(backbone: str, weights: Optional[str]) -> Optional[str]:
    """Path of the backbone weights file to load, or ``None``.

    ``"imagenet"`` means keras.applications' own file in the Keras cache
    (``$KERAS_HOME/models/<file>``, default ``~/.keras/models``): the file
    ``keras.applications.MobileNetV2(weights="imagenet", include_top=False)`` would download
    on a connected machine. Copy it there; facenet_tf never downloads.

    Raises:
        FacenetError: the file is missing (saying where to put it) or the backbone has none.
    """
    if weights is None:
        return None
    if weights == "imagenet":
        file = BACKBONES.get(backbone).imagenet_file
        if file is None:
            with_files = [e.name for e in BACKBONES.entries() if e.value.imagenet_file]
            raise FacenetError(f"backbone {backbone!r} has no ImageNet weights; use one of {', '.join(with_files)}")
        cache = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "models")
        path = os.path.join(cache, file)
        if not os.path.isfile(path):
            raise FacenetError(
                f"ImageNet weights for {backbone} not found at {path}: facenet_tf never downloads; copy "
                f"{file} (the file keras.applications downloads) there, or pass its path"
            )
        return path
    if file_problem(weights) not in ("", "not found"):
        raise FacenetError(f"weights file {weights!r} {file_problem(weights)}")
    if not os.path.isfile(weights):
        raise FacenetError(
            f"weights file {weights!r} not found: facenet_tf never downloads weights; place the file "
            f"there (e.g. a Keras '.weights.h5' for {backbone}) or leave weights unset"
        )
    return weights
