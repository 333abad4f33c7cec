"""The backbone table: feature extractors an embedding model can be built on.

A backbone is a function ``(standardised float32 [N,H,W,3] tensor, image_size) →
[N, h, w, C] feature maps`` with its smallest input side and, for ``keras.applications``
ones, the file name of their ImageNet no-top weights in the Keras cache. Each registers
itself in :data:`BACKBONES`; ``--backbone``'s choices and help, :class:`ModelConfig`'s
validation and :func:`facenet_tf.models.embedding.build_embedding_model` read the table.
Adding a backbone is one ``BACKBONES.register(...)`` here (or in a module of its own
imported below) plus its tests. Keras is imported inside the builders, so loading the table
(``--backbone``'s choices in ``facenet-tf train --help``) costs no TensorFlow import.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

from facenet_tf.models.config import BACKBONES

#: Upper bound on BatchNormalization momentum of every backbone (see :func:`_applications`).
BN_MOMENTUM = 0.99


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One backbone.

    Attributes:
        build: ``(inputs, image_size) -> features``: Keras functional layers on the
            standardised input.
        min_size: smallest image side (pixels) it accepts.
        imagenet_file: file name of keras.applications' ImageNet no-top weights in the
            Keras cache (``$KERAS_HOME/models``), or ``None`` when it has none.
        load_weights: ``(built backbone, path)`` loading a local weights file, or ``None``
            when it takes none.
    """

    build: Callable
    min_size: int
    imagenet_file: Optional[str] = None




def _small_cnn(inputs, image_size: Tuple[int, int], width: int = 32):
    """A strided 5x5 stem, then four stages of 3x3 conv + BN + ReLU, halving resolution each.

    About 0.4M parameters and ~70M multiply-adds per 64x64 image at width 32: small
    enough to train on two CPU cores in minutes.
    """
    from keras import layers

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


def _applications(app: str) -> Callable:
    """The ``keras.applications`` model named ``app``, without its top, from random weights, as a backbone."""

    def build(inputs, image_size: Tuple[int, int]):
        import keras
        from keras import layers

        backbone = getattr(keras.applications, app)(include_top=False, weights=None, input_shape=(*image_size, 3))
        for layer in backbone.layers:
            # MobileNetV2's BatchNormalization averages its statistics over ~1000 steps
            # (momentum 0.999): after a run of a few hundred steps, inference would still use
            # the initial mean 0 / variance 1 and embed every face alike. 0.99 (~100 steps) is
            # Keras' default and what small_cnn uses.
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = min(layer.momentum, BN_MOMENTUM)
        return backbone

    return build


BACKBONES.register("small_cnn", Backbone(_small_cnn, 16), help="0.4M-parameter CNN, fast on CPU")
BACKBONES.register("mobilenet_v2", Backbone(
    _applications("MobileNetV2"), 32,
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"), help="keras.applications MobileNetV2")
BACKBONES.register("inception_resnet_v2", Backbone(
    _applications("InceptionResNetV2"), 75,
    "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    help="keras.applications InceptionResNetV2 (FaceNet's own)")
