"""TFRecord shards for datasets too large to list and decode from a folder every run.

``write_shards`` packs a catalog's encoded image files (bytes as they are, no re-encoding)
with their labels into ``num_shards`` files, images in a seeded random order so that every
shard mixes identities. ``pk_dataset_from_shards`` streams them back into P×K batches:
interleaved shards → shuffle buffer → ``group_by_window`` on the label (K images of one
identity per window) → P windows per batch. Identities in one batch are distinct with high
probability but not guaranteed (two windows of one person may meet); that only adds
positives to the batch.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from facenet_tf.artifacts import atomic_path
from facenet_tf.data import images as image_ops
from facenet_tf.data.augment import AugmentConfig, build_augmenter
from facenet_tf.data.catalog import IdentityCatalog
from facenet_tf.data.sampler import PKConfig
from facenet_tf.errors import FacenetError

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}
INDEX_FILE = "shards.json"


def write_shards(catalog: IdentityCatalog, output_dir: str, num_shards: int = 16, seed: int = 0,
                 progress: Optional[Callable[[int], None]] = None) -> Sequence[str]:
    """Write ``catalog`` as ``output_dir/shard-XXXXX-of-YYYYY.tfrecord`` plus ``shards.json``.

    JPEG/PNG/GIF/BMP bytes are stored unchanged; other formats (PGM, TIFF…) are re-encoded
    as PNG so the graph can decode them. Each shard is written to a temporary name and
    renamed when complete.

    Args:
        progress: optional callable receiving the number of images just written (once per shard).

    Returns:
        The shard paths.
    """
    if num_shards < 1:
        raise FacenetError(f"num_shards must be >= 1; received {num_shards}")
    os.makedirs(output_dir, exist_ok=True)
    order = np.random.default_rng(seed).permutation(catalog.num_images)
    paths = []
    for shard, members in enumerate(np.array_split(order, num_shards)):
        path = os.path.join(output_dir, f"shard-{shard:05d}-of-{num_shards:05d}.tfrecord")
        with atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
            for i in members:
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_encoded(catalog.paths[i])])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(catalog.labels[i])])),
                }))
                writer.write(example.SerializeToString())
        paths.append(path)
        if progress is not None:
            progress(len(members))
    index = {"names": list(catalog.names), "num_images": catalog.num_images, "shards": [os.path.basename(p) for p in paths]}
    with atomic_path(os.path.join(output_dir, INDEX_FILE)) as tmp, open(tmp, "w") as f:
        json.dump(index, f)
    return paths


def _encoded(path: str) -> bytes:
    if path.lower().endswith((".jpg", ".jpeg", ".png", ".gif", ".bmp")):
        with open(path, "rb") as f:
            return f.read()
    import io

    from PIL import Image

    with Image.open(path) as img:
        buffer = io.BytesIO()
        img.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def is_shard_dir(path: str) -> bool:
    """True if ``path`` holds ``shards.json`` written by :func:`write_shards`."""
    return os.path.isfile(os.path.join(path, INDEX_FILE))


def read_index(path: str) -> dict:
    with open(os.path.join(path, INDEX_FILE)) as f:
        return json.load(f)


def pk_dataset_from_shards(shard_dir: str, image_size, config: PKConfig = PKConfig(),
                           augment: Optional[AugmentConfig] = AugmentConfig(),
                           shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """Endless P×K batches ``(float32 [P*K,H,W,3] in 0..255, int32 [P*K])`` from shards.

    Args:
        shard_dir: folder written by :func:`write_shards`.
        image_size: ``(H, W)``.
        config: P, K, seed (seeds shard order, shuffling and augmentation).
        augment: per-batch augmentation; ``None`` for none.
        shuffle_buffer: records held for shuffling.
    """
    image_size = image_ops.parse_image_size(image_size)
    files = sorted(glob.glob(os.path.join(shard_dir, "*.tfrecord")))
    if not files:
        raise FacenetError(f"no .tfrecord shards in {shard_dir!r}")
    p, k = config.identities_per_batch, config.images_per_identity

    def parse(record):
        example = tf.io.parse_single_example(record, FEATURES)
        return example["image"], tf.cast(example["label"], tf.int32)

    ds = (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files), seed=config.seed, reshuffle_each_iteration=True)
        .repeat()
        .interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(files)), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .shuffle(shuffle_buffer, seed=config.seed)
        .group_by_window(key_func=lambda _, label: tf.cast(label, tf.int64),
                         reduce_func=lambda _, window: window.batch(k, drop_remainder=True), window_size=k)
        .batch(p, drop_remainder=True)
        .map(lambda data, labels: (tf.reshape(data, [-1]), tf.reshape(labels, [-1])))
        .unbatch()
        .map(lambda data, label: (image_ops.resize(image_ops.decode_image(data), image_size), label),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(p * k, drop_remainder=True)
    )
    if augment is not None:
        augmenter = build_augmenter(augment, seed=config.seed)
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)
