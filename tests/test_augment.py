"""Photometric augmentation for new cameras: the random shadow and histogram equalisation layers."""

import numpy as np
import pytest

from facenet_tf.data import AugmentConfig, DataConfig
from facenet_tf.data.augment import RandomEqualization, RandomShadow, build_augmenter
from facenet_tf.errors import FacenetError


def _faces(n=16, size=24, seed=0):
    """``n`` random grey images (three equal channels) with a random brightness each, 0..255."""
    rng = np.random.default_rng(seed)
    grey = rng.uniform(0, 1, (n, size, size, 1)) * rng.uniform(60, 255, (n, 1, 1, 1))
    return np.repeat(np.round(grey), 3, axis=-1).astype(np.float32)


def _equalised_reference(image):
    """Histogram equalisation of one grey ``[H, W, C]`` image from the definition, a loop over levels."""
    levels = np.round(image[..., 0]).astype(int)
    cumulative = np.cumsum([np.sum(levels == level) for level in range(256)])
    lowest = cumulative[levels.min()]
    curve = 255.0 * (cumulative - lowest) / (levels.size - lowest)
    return np.repeat(curve[levels][..., None], image.shape[-1], axis=-1)


def test_random_shadow_darkens_by_at_most_its_depth_same_seed_same_output():
    x = _faces()
    y = np.asarray(RandomShadow(0.6, seed=3)(x, training=True))
    ratio = y[x > 0] / x[x > 0]
    assert ratio.max() <= 1 + 1e-5 and ratio.min() >= 0.4 - 1e-5
    assert ratio.min() < 0.7, "some image is shadowed deeply"
    per_image = (y / np.maximum(x, 1)).reshape(len(x), -1)
    assert np.ptp(per_image.min(axis=1)) > 0.1, "each image draws its own shadow"
    np.testing.assert_array_equal(np.asarray(RandomShadow(0.6, seed=3)(x, training=True)), y)
    assert not np.array_equal(np.asarray(RandomShadow(0.6, seed=4)(x, training=True)), y)
    np.testing.assert_array_equal(np.asarray(RandomShadow(0.6, seed=3)(x, training=False)), x)
    assert RandomShadow.from_config(RandomShadow(0.6, seed=3).get_config()).factor == 0.6


def test_random_shadow_is_a_directional_ramp():
    x = np.full((8, 32, 32, 3), 200.0, np.float32)
    shade = np.asarray(RandomShadow(0.9, seed=0)(x, training=True))[..., 0] / 200.0
    for image in shade:
        dy, dx = np.gradient(image)
        direction = np.array([dy.mean(), dx.mean()])
        # one light direction per image: every local gradient points the same way (or is flat)
        assert np.all(dy * direction[0] + dx * direction[1] >= -1e-6)
        assert image.max() - image.min() > 0.02


def test_random_equalization_matches_the_definition_and_keeps_flat_images():
    x = _faces(n=6)
    x[5] = 90.0  # one level: nothing to equalise
    y = np.asarray(RandomEqualization(1.0, seed=0)(x, training=True))
    for image, out in zip(x[:5], y[:5]):
        np.testing.assert_allclose(out, _equalised_reference(image), atol=1e-3)
        assert out.min() == 0 and out.max() == pytest.approx(255.0)
    np.testing.assert_array_equal(y[5], x[5])
    np.testing.assert_array_equal(np.asarray(RandomEqualization(1.0, seed=0)(x, training=False)), x)


def test_random_equalization_rate_is_the_share_of_images_and_seeded():
    x = _faces(n=400, size=8, seed=1)
    layer = RandomEqualization(0.3, seed=5)
    y = np.asarray(layer(x, training=True))
    changed = np.any(np.abs(y - x) > 1e-3, axis=(1, 2, 3))
    assert 0.2 < changed.mean() < 0.4, changed.mean()
    np.testing.assert_array_equal(np.asarray(RandomEqualization(0.3, seed=5)(x, training=True)), y)
    assert np.all(y >= 0) and np.all(y <= 255.0001)


def test_shadow_and_equalize_are_off_by_default_and_range_checked():
    assert AugmentConfig().shadow == 0 and AugmentConfig().equalize == 0
    names = [type(layer).__name__ for layer in build_augmenter(AugmentConfig()).layers]
    assert "RandomShadow" not in names and "RandomEqualization" not in names
    names = [type(layer).__name__ for layer in build_augmenter(AugmentConfig(shadow=0.5, equalize=0.2)).layers]
    assert names[-2:] == ["RandomShadow", "RandomEqualization"]
    DataConfig(data_dir="x", augment=AugmentConfig(shadow=1.0, equalize=1.0)).validate()
    for bad in ({"shadow": 1.5}, {"shadow": -0.1}, {"equalize": 2.0}, {"equalize": -1.0}):
        name = next(iter(bad))
        with pytest.raises(FacenetError, match=f"data.augment.{name}"):
            DataConfig(data_dir="x", augment=AugmentConfig(**bad)).validate()


def test_photometric_augmenter_in_tf_data_is_seeded():
    import tensorflow as tf

    x = _faces(n=8)
    config = AugmentConfig(gamma=0.5, shadow=0.7, equalize=0.5, contrast=0.5)

    def batches(seed):
        augmenter = build_augmenter(config, seed=seed)
        ds = tf.data.Dataset.from_tensors(x).repeat(2).map(lambda images: augmenter(images, training=True))
        return [batch.numpy() for batch in ds]

    first = batches(0)
    assert all(0 <= b.min() and b.max() <= 255.0001 for b in first)
    np.testing.assert_array_equal(np.stack(first), np.stack(batches(0)))
    assert not np.array_equal(first[0], first[1]), "each batch draws new parameters"
