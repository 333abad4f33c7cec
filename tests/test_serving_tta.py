"""Test-time augmentation (serving/tta.py): the mean of the views against a hand-written
reference, normalisation as the contract says, dlib-style jitter crops, the fingerprint."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.serving.inference import Embedder
from facenet_tf.serving.tta import TTAConfig, jitter_image, jitter_transforms, with_tta


def _column_embedder(normalized, size=8):
    """Embeds an image as its mean pixel per column (mirroring reverses the vector)."""
    def fn(x):
        return np.asarray(x, np.float32).mean(axis=(1, 3))
    return Embedder(fn, (size, size), size, SimpleNamespace(normalized=normalized), "cols", "cols")


def test_flip_is_the_mean_of_image_and_mirror_renormalised_when_the_contract_says_so():
    x = np.random.default_rng(0).uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    columns = x.mean(axis=(1, 3))
    want = (columns + columns[:, ::-1]) / 2
    raw = with_tta(_column_embedder(False), TTAConfig("flip"))
    np.testing.assert_allclose(raw.embed_pixels(x), want, rtol=1e-5)
    unit = with_tta(_column_embedder(True), TTAConfig("flip"))
    np.testing.assert_allclose(unit.embed_pixels(x), want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5)


def test_fingerprint_names_the_augmentation():
    base = _column_embedder(True)
    assert with_tta(base, TTAConfig("none")) is base
    prints = {with_tta(base, c).fingerprint for c in (TTAConfig("flip"), TTAConfig("jitter", 5),
                                                      TTAConfig("jitter", 6), TTAConfig("jitter", 5, seed=1))}
    assert len(prints) == 4 and all(p.startswith("cols+tta:") for p in prints)
    with pytest.raises(FacenetError, match=r"mode \(--tta\) must be one of"):
        with_tta(base, TTAConfig("rotate"))
    with pytest.raises(FacenetError, match=r"jitters \(--tta-jitters\) must be 1..1000"):
        with_tta(base, TTAConfig("jitter", 0))


def test_jitter_crop_follows_dlib_jitter_image():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:14, 6:10] = 255  # a bright square left of centre
    still = jitter_image(image, np.array([0.0, 0.0, 0.99999, 0.0, 0.0]))
    assert still.shape == image.shape and still.dtype == np.uint8
    ys, xs = np.nonzero(still[..., 0] > 128)
    assert abs(xs.mean() - 7.5) < 1.5 and abs(ys.mean() - 11.5) < 1.5  # a 3-pixel-inset crop, almost the identity
    mirrored = jitter_image(image, np.array([0.0, 0.0, 0.99999, 0.0, 1.0]))
    np.testing.assert_array_equal(mirrored, still[:, ::-1])
    rotated = jitter_image(image, np.array([0.0, 0.0, 0.99999, 3 * math.pi / 180, 0.0]))
    assert not np.array_equal(rotated, still)
    transforms = jitter_transforms(200, seed=3)
    assert np.abs(transforms[:, :2]).max() <= 0.02 and transforms[:, 2].min() >= 0.97
    assert np.abs(transforms[:, 3]).max() <= 3 * math.pi / 180 and 0.3 < transforms[:, 4].mean() < 0.7
    np.testing.assert_array_equal(transforms, jitter_transforms(200, seed=3))
    with pytest.raises(FacenetError, match="square"):
        jitter_image(np.zeros((40, 30, 3), np.uint8), transforms[0])


def test_jitter_gives_every_image_the_same_crops_whatever_the_batch():
    x = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    tta = with_tta(_column_embedder(False), TTAConfig("jitter", 4))
    together = tta.embed_pixels(x)
    alone = np.concatenate([tta.embed_pixels(x[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-6)
    assert not np.allclose(together, _column_embedder(False).embed_pixels(x))


def test_recorded_augmentation_is_the_default_and_round_trips_in_the_contract():
    from facenet_tf.models.contract import ModelContract
    from facenet_tf.models.recorded import RecordedTTA

    contract = ModelContract(architecture="dlib_resnet_v1", image_size=(150, 150), embedding_dim=128,
                             fingerprint="f" * 16, tta=RecordedTTA(mode="flip"))
    again = ModelContract.from_json(contract.to_json())
    assert again.to_json()["tta"] == {"mode": "flip"} and TTAConfig.from_contract(again) == TTAConfig(mode="flip")
    assert TTAConfig.from_contract(ModelContract(architecture="x", image_size=(8, 8), embedding_dim=4,
                                                 fingerprint="0")) == TTAConfig()
    legacy = contract.to_json()
    del legacy["tta"]  # written before the field existed
    assert TTAConfig.from_contract(ModelContract.from_json(legacy)) == TTAConfig()
    with pytest.raises(FacenetError, match="tta must be an object"):
        TTAConfig.from_contract(ModelContract.from_json({**contract.to_json(), "tta": "flip"}))
