"""P×K over prepared shards by index: distinct identities, K records each from the manifest, small
identities left out and reported, P above the identities refused in one line, ≤64 bytes per image."""

import json
import os
import time

import numpy as np
import pytest

from facenet_tf.cli import main
from facenet_tf.data import PKConfig, SkipReport, load_images, scan_directory
from facenet_tf.data.manifest import ShardIndex, encode_index
from facenet_tf.data.prepare import PrepareConfig, prepare
from facenet_tf.data.tfrecord import pk_dataset_from_shards
from facenet_tf.errors import FacenetError


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """12 synthetic people with 1…12 images each, prepared into 4 shards."""
    from PIL import Image

    from facenet_tf.data import synthetic_identities

    images, catalog = synthetic_identities(12, 12, (24, 24), seed=5)
    raw = tmp_path_factory.mktemp("uneven")
    for label, name in enumerate(catalog.names):
        members = np.flatnonzero(catalog.labels == label)[: label + 1]
        os.makedirs(raw / "raw" / name)
        for i in members:
            Image.fromarray(images[i]).save(raw / "raw" / name / f"{i}.png")
    out = str(raw / "prepared")
    prepare(str(raw / "raw"), out, PrepareConfig(num_shards=4, workers=1, min_images=1))
    return str(raw / "raw"), out


def test_every_batch_holds_p_distinct_identities_times_k_of_their_own_records(uneven):
    raw, out = uneven
    report = SkipReport()
    p, k = 5, 4
    ds = pk_dataset_from_shards(out, (24, 24), PKConfig(p, k, seed=3), augment=None, report=report)
    assert [e["images"] for e in report.excluded] == [1, 2, 3], "identities with fewer than K records left out"
    catalog = scan_directory(raw, min_images=1)
    reference = {label: load_images([q for q, l in zip(catalog.paths, catalog.labels) if l == label], (24, 24))
                 for label in range(12)}
    seen = set()
    batches = [(x.numpy(), y.numpy()) for x, y in ds.take(12)]
    for images, labels in batches:
        blocks = labels.reshape(p, k)
        assert (blocks == blocks[:, :1]).all() and len(set(blocks[:, 0])) == p, blocks
        for image_block, label in zip(images.reshape(p, k, 24, 24, 3), blocks[:, 0]):
            assert label >= 3
            own = reference[label].astype(np.float32)
            matches = [int(np.argmin(np.abs(own - image).reshape(len(own), -1).max(axis=1))) for image in image_block]
            assert all(np.abs(own[m] - image).max() <= 1.0 for m, image in zip(matches, image_block))
            assert len(set(matches)) == k, "K different records of the identity"
        seen.update(blocks[:, 0].tolist())
    assert seen == set(range(3, 12))
    again = [(x.numpy(), y.numpy()) for x, y in pk_dataset_from_shards(out, (24, 24), PKConfig(p, k, seed=3),
                                                                       augment=None).take(12)]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(batches, again)), "seeded"


def test_p_above_the_identities_fails_early_in_one_line(uneven, tmp_path, capsys):
    _, out = uneven
    with pytest.raises(FacenetError, match=r"identities_per_batch \(10\) exceeds the number of training identities \(9\)"):
        pk_dataset_from_shards(out, (24, 24), PKConfig(10, 4), augment=None)
    code = main(["train", "--data-dir", out, "--output-dir", str(tmp_path / "m"), "--identities-per-batch", "20",
                 "--images-per-identity", "4", "--image-size", "24", "--verbose", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "exceeds the number of training identities (9)" in err[0], err
    assert not os.path.exists(tmp_path / "m")


def test_index_holds_about_16_bytes_per_image(tmp_path):
    rng = np.random.default_rng(0)
    num_ids, shards = 20_000, 8
    counts = rng.integers(2, 19, num_ids)
    labels = np.repeat(np.arange(num_ids), counts)
    shard_of = rng.integers(0, shards, labels.size)
    manifest = {"identities": {"names": [f"id{i}" for i in range(num_ids)], "images": counts.tolist()},
                "shards": []}
    first = int(np.flatnonzero(counts >= 4)[0])
    expected = []
    for s in range(shards):
        mine = labels[shard_of == s]
        ids, n = np.unique(mine, return_counts=True)
        lengths = rng.integers(5_000, 30_000, mine.size)
        offsets = np.concatenate([[0], np.cumsum(lengths + 16)[:-1]])
        expected += [(s, int(o), int(n_)) for o, n_ in zip(offsets[mine == first], lengths[mine == first])]
        manifest["shards"].append({"file": f"shard-{s}", "index": encode_index(ids, n, offsets, lengths)})
    text = json.dumps(manifest)
    start = time.perf_counter()
    index = ShardIndex.from_manifest(json.loads(text), str(tmp_path), min_images=4, check_files=False)
    seconds = time.perf_counter() - start
    kept = counts >= 4
    assert index.num_images == counts[kept].sum() and index.num_identities == kept.sum()
    assert index.nbytes / index.num_images <= 20 < 64
    assert seconds < 10
    assert np.all(index.counts == counts[kept]) and index.labels[0] == first
    got = [(int(s), int(o), int(n)) for s, o, n in zip(index.shard, index.offset, index.length)][: counts[first]]
    assert got == expected, "the first identity's records: its shards, byte offsets and lengths"


def test_an_older_shard_folder_asks_for_a_new_prepare(tmp_path):
    from facenet_tf.data.manifest import load_manifest

    (tmp_path / "shards.json").write_text('{"names": ["a"], "num_images": 2, "shards": []}')
    (tmp_path / "shard-00000-of-00001.tfrecord").write_bytes(b"")
    with pytest.raises(FacenetError, match="older 'facenet-tf prepare'.*run 'facenet-tf prepare' again"):
        load_manifest(str(tmp_path))
