import os

import numpy as np
import pytest
from PIL import Image

from facenet_tf.data import (AugmentConfig, IdentityCatalog, PKConfig, load_images, parse_image_size, pk_dataset,
                             pk_indices, scan_directory, synthetic_identities)
from facenet_tf.data.augment import build_augmenter
from facenet_tf.errors import FacenetError


def _write(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def test_scan_directory_natural_order_formats_and_singletons(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (20, 16), dtype=np.uint8)
    rgb = rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)
    for ext, fmt in [("jpg", "JPEG"), ("png", "PNG"), ("gif", "GIF"), ("bmp", "BMP"), ("pgm", "PPM")]:
        _write(str(tmp_path / "s10" / f"a.{ext}"), grey, fmt)
    _write(str(tmp_path / "s2" / "1.png"), rgb)
    _write(str(tmp_path / "s2" / "10.png"), rgb)
    _write(str(tmp_path / "s2" / "9.png"), rgb)
    _write(str(tmp_path / "s1" / "only.png"), rgb)
    (tmp_path / "s2" / "notes.txt").write_text("not an image")
    cat = scan_directory(str(tmp_path))
    assert cat.names == ("s2", "s10")
    assert [os.path.basename(p) for p in cat.paths[:3]] == ["1.png", "9.png", "10.png"]
    assert cat.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert cat.dropped_identities == ("s1",)
    assert "1 identities with too few images dropped" in cat.summary()
    pixels = load_images(cat.paths, (16, 16))
    assert pixels.shape == (8, 16, 16, 3) and pixels.dtype == np.uint8
    # greyscale becomes three equal channels, whatever the decoder (TF or Pillow)
    assert np.array_equal(pixels[-1, ..., 0], pixels[-1, ..., 2])


def test_scan_directory_errors(tmp_path):
    with pytest.raises(FacenetError, match="does not exist"):
        scan_directory(str(tmp_path / "missing"))
    with pytest.raises(FacenetError, match="no identity folder"):
        scan_directory(str(tmp_path))


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "p" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(FacenetError, match="broken.jpg"):
        load_images([str(bad)], (16, 16))


def test_parse_image_size():
    assert parse_image_size("64") == (64, 64)
    assert parse_image_size("112x92") == (112, 92)
    assert parse_image_size((32, 24)) == (32, 24)
    for bad in ["abc", "8", "1x2x3"]:
        with pytest.raises(FacenetError, match="image_size"):
            parse_image_size(bad)


def _catalog(counts):
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
    return IdentityCatalog(tuple(f"f{i}" for i in range(labels.size)), labels, tuple(f"id{i}" for i in range(len(counts))))


def test_pk_indices_structure_and_determinism():
    counts = [2, 7, 3, 10, 1, 5, 4, 9]
    cat = _catalog(counts)
    config = PKConfig(identities_per_batch=4, images_per_identity=4, seed=7)
    batches = [b.numpy() for b in pk_indices(cat.labels, config).take(50)]
    again = [b.numpy() for b in pk_indices(cat.labels, config).take(50)]
    other = [b.numpy() for b in pk_indices(cat.labels, PKConfig(4, 4, seed=8)).take(50)]
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))
    seen = set()
    for idx in batches:
        labels = cat.labels[idx].reshape(4, 4)
        assert (labels == labels[:, :1]).all(), "each block of K belongs to one identity"
        assert len(set(labels[:, 0])) == 4, "P distinct identities"
        for row, ident in zip(idx.reshape(4, 4), labels[:, 0]):
            if counts[ident] >= 4:
                assert len(set(row)) == 4, "no repeats when the identity has K images"
            seen.add(ident)
    assert seen == set(range(len(counts)))


def test_pk_indices_errors():
    with pytest.raises(FacenetError, match="exceeds"):
        pk_indices(np.array([0, 0, 1, 1]), PKConfig(3, 2))
    with pytest.raises(FacenetError, match="grouped"):
        pk_indices(np.array([0, 1, 0]), PKConfig(2, 2))


@pytest.mark.parametrize("in_memory", [True, False])
def test_pk_dataset_from_files_and_memory(synthetic_dir, in_memory):
    cat = scan_directory(synthetic_dir)
    pixels = load_images(cat.paths, (32, 32)) if in_memory else None
    ds = pk_dataset(cat, (32, 32), PKConfig(3, 2, seed=1), augment=None, images=pixels)
    images, labels = next(iter(ds))
    assert images.shape == (6, 32, 32, 3) and images.dtype.name == "float32"
    assert labels.dtype.name == "int32" and labels.shape == (6,)
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255.0
    first = cat.labels.tolist().index(int(labels[0]))
    expected = load_images([p for p, l in zip(cat.paths, cat.labels) if l == labels[0]], (32, 32)).astype(np.float32)
    assert any(np.allclose(images[0].numpy(), e, atol=0.51) for e in expected), first


def test_pk_dataset_augmentation_is_seeded(synthetic_dir):
    cat = scan_directory(synthetic_dir)
    pixels = load_images(cat.paths, (32, 32))
    take = lambda seed: [x.numpy() for x, _ in pk_dataset(cat, 32, PKConfig(3, 2, seed), AugmentConfig(), pixels).take(3)]  # noqa: E731
    a, b, c = take(5), take(5), take(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    plain = [x.numpy() for x, _ in pk_dataset(cat, 32, PKConfig(3, 2, 5), None, pixels).take(1)][0]
    assert not np.array_equal(plain, a[0]), "augmentation changes pixels"


def test_synthetic_identities_deterministic_and_learnable_not_trivial():
    a, cat = synthetic_identities(8, 5, (32, 32), seed=1)
    b, _ = synthetic_identities(8, 5, (32, 32), seed=1)
    c, _ = synthetic_identities(8, 5, (32, 32), seed=2)
    assert a.shape == (40, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert cat.labels.tolist() == np.repeat(np.arange(8), 5).tolist()
    x = a.reshape(40, -1).astype(np.float64)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    same = cat.labels[:, None] == cat.labels[None]
    off = ~np.eye(40, dtype=bool)
    # images of one person vary (not copies), and are on average closer than other people's
    assert d[same & off].min() > 0
    assert d[same & off].mean() < d[~same].mean()


def test_tfrecord_shards_round_trip_into_pk_batches(synthetic_dir, tmp_path):
    from facenet_tf.data.manifest import load_manifest
    from facenet_tf.data.prepare import prepare_catalog
    from facenet_tf.data.prepare_config import PrepareConfig
    from facenet_tf.data.tfrecord import is_shard_dir, pk_dataset_from_shards

    cat = scan_directory(synthetic_dir)
    result = prepare_catalog(cat, str(tmp_path / "shards"), PrepareConfig(num_shards=3, seed=0, workers=1, min_images=1))
    assert len(result.manifest["shards"]) == 3 and is_shard_dir(str(tmp_path / "shards"))
    manifest = load_manifest(str(tmp_path / "shards"))
    assert manifest["identities"] == {"names": list(cat.names), "images": cat.counts().tolist()}  # label = position
    reference = load_images(cat.paths, (24, 24)).astype(np.float32)
    ds = pk_dataset_from_shards(str(tmp_path / "shards"), (24, 24), PKConfig(3, 2, seed=0), augment=None)
    for images, labels in ds.take(4):
        labels = labels.numpy()
        assert images.shape == (6, 24, 24, 3)
        assert (labels[0::2] == labels[1::2]).all(), "K consecutive images share a label"
        assert len(set(labels[0::2])) == 3, "P distinct identities"
        for image, label in zip(images.numpy(), labels):
            own = reference[cat.labels == label]
            assert np.abs(own - image).reshape(len(own), -1).max(axis=1).min() <= 1.0, "pixels of its own identity"


def test_random_gamma_stays_in_range_per_image_and_off_at_inference():
    from facenet_tf.data.augment import RandomGamma

    layer = RandomGamma(0.4, seed=3)
    x = np.tile(np.linspace(0, 255, 64, dtype=np.float32)[None, None, :, None], (8, 4, 1, 3))
    y = np.asarray(layer(x, training=True))
    assert y.min() >= 0 and y.max() <= 255.0001
    np.testing.assert_allclose(y[:, :, [0, -1]], x[:, :, [0, -1]], atol=1e-3)  # 0 and 255 are fixed points
    assert np.all(np.diff(y[0, 0, :, 0]) >= 0), "a gamma curve is monotone"
    mid = y[:, 0, 32, 0] / 255.0
    gamma = np.log(mid) / np.log(x[0, 0, 32, 0] / 255.0)
    assert np.all(np.abs(np.log(gamma)) <= 0.4 + 1e-4) and np.ptp(gamma) > 0.05, gamma
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert RandomGamma.from_config(layer.get_config()).factor == 0.4


def test_augment_config_adds_gamma_and_erasing_layers():
    names = [type(layer).__name__ for layer in build_augmenter(AugmentConfig(gamma=0.2, erasing=0.5)).layers]
    assert names[-2:] == ["RandomGamma", "RandomErasing"]
    assert "RandomGamma" not in [type(layer).__name__ for layer in build_augmenter(AugmentConfig(gamma=0)).layers]
