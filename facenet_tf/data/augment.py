"""Augmentation in the tf.data graph, built from Keras preprocessing layers.

Face embeddings must not change with a small shift, tilt, mirror image or lighting change,
and small datasets (ORL: 10 images per person) overfit without them. Values stay in 0..255.
"""

from __future__ import annotations

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 disables a transform.

    Attributes:
        flip: random horizontal mirror (faces are near-symmetric).
        shift: max translation, fraction of height/width.
        rotation_degrees: max rotation either way.
        zoom: max zoom in/out, fraction.
        brightness: max brightness change, fraction of the 0..255 range.
        contrast: max contrast factor change.
    """

    flip: bool = True
    shift: float = 0.06
    rotation_degrees: float = 8.0
    zoom: float = 0.08
    brightness: float = 0.15
    contrast: float = 0.3


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
    return keras.Sequential(layers, name="augment")
