"""Augmentation in the tf.data graph, built from Keras preprocessing layers.

Face embeddings must not change with a small shift, tilt, mirror image or lighting change,
and small datasets (ORL: 10 images per person) overfit without them. Values stay in 0..255.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from facenet_tf.data.config import AugmentConfig  # noqa: F401  (declared with DataConfig, without Keras)


def build_augmenter(config: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """A ``keras.Sequential`` of random layers applying ``config`` to float images in 0..255."""
    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.shift:
        layers.append(keras.layers.RandomTranslation(config.shift, config.shift, fill_mode="nearest", seed=seed + 1))
    if config.rotation_degrees:
        layers.append(keras.layers.RandomRotation(config.rotation_degrees / 360.0, fill_mode="nearest", seed=seed + 2))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="nearest", seed=seed + 3))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 4))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 5))
    if config.gamma:
        layers.append(RandomGamma(config.gamma, seed=seed + 6))
    if config.erasing:
        layers.append(keras.layers.RandomErasing(config.erasing, scale=(0.02, 0.2), value_range=(0, 255), seed=seed + 7))
    if config.shadow:
        layers.append(RandomShadow(config.shadow, seed=seed + 8))
    if config.equalize:
        layers.append(RandomEqualization(config.equalize, seed=seed + 9))
    return keras.Sequential(layers, name="augment")


@keras.saving.register_keras_serializable(package="facenet_tf")
class RandomGamma(keras.layers.Layer):
    """Random gamma curve on 0..255 images: ``255 · (x/255)^γ``, ``log γ ~ U(-factor, factor)``.

    One γ per image; identity at inference (``training=False``). Keras has no gamma layer.
    """

    def __init__(self, factor: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.convert_to_tensor(images, "float32")
        log_gamma = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), -self.factor, self.factor,
                                         seed=self.seed_generator)
        return 255.0 * ops.power(ops.clip(images / 255.0, 0.0, 1.0), ops.exp(log_gamma))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="facenet_tf")
class RandomShadow(keras.layers.Layer):
    """A random directional shadow on 0..255 images: each image times a soft ramp.

    Per image: a direction ``θ ~ U(0, 2π)``, a depth ``d ~ U(0, factor)``, an edge position
    ``o ~ U(-0.5, 0.5)`` and a sharpness ``s ~ U(2, 10)``; with ``t = u cos θ + v sin θ``
    (``u, v`` the pixel's coordinates scaled to -1..1)::

        shade = 1 - d · sigmoid(s · (t - o)),    output = image · shade

    so one side of the face keeps its light and the other darkens by up to ``d``: a
    gradient when ``s`` is low, a cast-shadow edge when it is high. Identity at inference
    (``training=False``).
    """

    def __init__(self, factor: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.convert_to_tensor(images, "float32")
        shape = ops.shape(images)
        n, height, width = shape[0], shape[1], shape[2]

        def draw(low, high):
            return keras.random.uniform((n, 1, 1, 1), low, high, seed=self.seed_generator)

        angle, depth, offset, sharpness = draw(0.0, 2 * math.pi), draw(0.0, self.factor), draw(-0.5, 0.5), draw(2.0, 10.0)
        v = ops.reshape(ops.linspace(-1.0, 1.0, height), (1, -1, 1, 1))
        u = ops.reshape(ops.linspace(-1.0, 1.0, width), (1, 1, -1, 1))
        t = u * ops.cos(angle) + v * ops.sin(angle)
        return images * (1.0 - depth * ops.sigmoid(sharpness * (t - offset)))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="facenet_tf")
class RandomEqualization(keras.layers.Layer):
    """Histogram equalisation of a random share of 0..255 images.

    Each image is equalised with probability ``rate``: its luminance (the mean of its
    channels, rounded to 0..255) gives a 256-bin histogram and cumulative count ``c``;
    every channel value ``x`` becomes ``255 · (c(x) - c_min) / (N - c_min)`` (``N``
    pixels, ``c_min`` the count of the darkest level present), so grey images are
    equalised exactly and colours keep their order. An image of one level is left as
    it is. Identity at inference (``training=False``).
    """

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.convert_to_tensor(images, "float32")
        n = ops.shape(images)[0]
        levels = ops.cast(ops.clip(ops.round(images), 0, 255), "int32")
        luminance = ops.cast(ops.clip(ops.round(ops.mean(images, axis=-1)), 0, 255), "int32")
        counts = ops.bincount(ops.reshape(luminance, (n, -1)), minlength=256)
        cumulative = ops.cast(ops.cumsum(counts, axis=-1), "float32")                       # [N, 256]
        lowest = ops.min(ops.where(counts > 0, cumulative, ops.max(cumulative)), axis=-1, keepdims=True)
        span = ops.max(cumulative, axis=-1, keepdims=True) - lowest
        curve = 255.0 * ops.maximum(cumulative - lowest, 0.0) / ops.maximum(span, 1.0)
        equalised = ops.reshape(ops.take_along_axis(curve, ops.reshape(levels, (n, -1)), axis=1), ops.shape(images))
        chosen = keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator) < self.rate
        return ops.where(chosen & (ops.reshape(span, (n, 1, 1, 1)) > 0), equalised, images)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
