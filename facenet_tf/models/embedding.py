"""Embedding models: image pixels (0..255) in, L2-normalised embeddings out.

Every model built here is ``Input[H,W,3] → Standardize → backbone → global average pool →
Dense(embedding_dim) → UnitNormalization``. Standardisation lives *inside* the model so
that a served SavedModel or TFLite file takes the same raw pixels as training did.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import keras
from keras import layers, ops

from facenet_tf.data.images import parse_image_size
from facenet_tf.errors import FacenetError, check_choice

BACKBONES = ("small_cnn", "mobilenet_v2", "inception_resnet_v2")
#: File names keras.applications gives its ImageNet no-top weights in the Keras cache
#: (``$KERAS_HOME/models``, default ``~/.keras/models``).
IMAGENET_FILES = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "inception_resnet_v2": "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
#: Input size of a new model when :attr:`ModelConfig.image_size` is ``None``.
DEFAULT_IMAGE_SIZE = (64, 64)
#: Upper bound on BatchNormalization momentum of every backbone (see build_embedding_model).
BN_MOMENTUM = 0.99
MIN_SIZE = {"small_cnn": 16, "mobilenet_v2": 32, "inception_resnet_v2": 75}


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


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the embedding model.

    Attributes:
        backbone: one of :data:`BACKBONES`. ``small_cnn`` is fast on CPU; the
            ``keras.applications`` ones start from random weights unless ``weights`` names
            a local file.
        embedding_dim: size of the unit-norm embedding.
        image_size: ``(H, W)`` input size in pixels; ``None`` = :data:`DEFAULT_IMAGE_SIZE`
            for a new model, the start model's own size with ``--init-from``.
        dropout: dropout rate before the embedding layer.
        weights: optional local Keras weights file for the backbone, or ``"imagenet"`` for
            keras.applications' ImageNet file in the local Keras cache (see
            :func:`resolve_backbone_weights`); nothing is ever downloaded.
    """

    backbone: str = "small_cnn"
    embedding_dim: int = 128
    image_size: Optional[Tuple[int, int]] = None
    dropout: float = 0.0
    weights: Optional[str] = None


def _small_cnn(inputs, width: int = 32):
    """A strided 5x5 stem, then four stages of 3x3 conv + BN + ReLU, halving resolution each.

    About 0.4M parameters and ~70M multiply-adds per 64x64 image at width 32: small
    enough to train on two CPU cores in minutes.
    """
    x = layers.Conv2D(width, 5, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, (filters, convs) in enumerate(((width, 2), (width * 2, 2), (width * 4, 2), (width * 8, 1))):
        if stage:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        for block in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{block}")(x)
            x = layers.BatchNormalization(name=f"stage{stage}_bn{block}")(x)
            x = layers.Activation("relu", name=f"stage{stage}_relu{block}")(x)
    return x


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
    check_choice("backbone", config.backbone, BACKBONES)
    size = parse_image_size(config.image_size or DEFAULT_IMAGE_SIZE)
    if min(size) < MIN_SIZE[config.backbone]:
        raise FacenetError(
            f"backbone {config.backbone!r} needs images of at least {MIN_SIZE[config.backbone]} pixels; "
            f"image_size is {size[0]}x{size[1]}"
        )
    if config.embedding_dim < 2:
        raise FacenetError(f"embedding_dim must be >= 2; received {config.embedding_dim}")
    weights = resolve_backbone_weights(config.backbone, config.weights)
    inputs = keras.Input((*size, 3), dtype="float32", name="images")
    x = Standardize(name="standardize")(inputs)
    if config.backbone == "small_cnn":
        features = _small_cnn(x)
    else:
        app = {
            "mobilenet_v2": keras.applications.MobileNetV2,
            "inception_resnet_v2": keras.applications.InceptionResNetV2,
        }[config.backbone]
        backbone = app(include_top=False, weights=None, input_shape=(*size, 3))
        for layer in backbone.layers:
            # MobileNetV2's BatchNormalization averages its statistics over ~1000 steps
            # (momentum 0.999): after a run of a few hundred steps, inference would still use
            # the initial mean 0 / variance 1 and embed every face alike. 0.99 (~100 steps) is
            # Keras' default and what small_cnn uses.
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = min(layer.momentum, BN_MOMENTUM)
        if weights is not None:
            try:
                backbone.load_weights(weights)
            except Exception as err:  # noqa: BLE001 - any mismatch is a wrong user file
                raise FacenetError(f"cannot load backbone weights {weights!r}: {err}") from None
        features = backbone(x)
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
        if backbone not in IMAGENET_FILES:
            raise FacenetError(f"backbone {backbone!r} has no ImageNet weights; use one of {', '.join(IMAGENET_FILES)}")
        cache = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "models")
        path = os.path.join(cache, IMAGENET_FILES[backbone])
        if not os.path.isfile(path):
            raise FacenetError(
                f"ImageNet weights for {backbone} not found at {path}: facenet_tf never downloads; copy "
                f"{IMAGENET_FILES[backbone]} (the file keras.applications downloads) there, or pass its path"
            )
        return path
    if not os.path.isfile(weights):
        raise FacenetError(
            f"weights file {weights!r} not found: facenet_tf never downloads weights; place the file "
            f"there (e.g. a Keras '.weights.h5' for {backbone}) or leave weights unset"
        )
    return weights
