"""Augmentation in the tf.data graph, built from Keras preprocessing layers.

Face embeddings must not change with a small shift, tilt, mirror image or lighting change,
and small datasets (ORL: 10 images per person) overfit without them. Values stay in 0..255.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from facenet_tf.fields import setting


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 disables a transform.

    Each field's help and range is its :func:`~facenet_tf.fields.setting`.
    """

    flip: bool = setting(True, "random horizontal mirror (faces are near-symmetric)")
    shift: float = setting(0.06, "max translation, fraction of height/width", low=0.0, high=0.5)
    rotation_degrees: float = setting(8.0, "max rotation either way, degrees", low=0.0, high=180.0)
    zoom: float = setting(0.08, "max zoom in/out, fraction", low=0.0, high=0.9)
    brightness: float = setting(0.15, "max brightness change, fraction of the 0..255 range", low=0.0, high=1.0)
    contrast: float = setting(0.3, "max contrast factor change", low=0.0, high=1.0)
    gamma: float = setting(0.0, "max |log gamma| of a random gamma curve 255*(x/255)^gamma (0: off)",
                           low=0.0, high=3.0)
    erasing: float = setting(0.0, "probability scale of random erasing (a random patch replaced by noise; 0: off)",
                             low=0.0, high=1.0)


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
