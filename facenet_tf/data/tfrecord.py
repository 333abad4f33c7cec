"""TFRecord shards: the record format, reading any record by its byte offset, and the P×K stream.

Each record is a ``tf.train.Example`` with ``image`` (bytes TensorFlow decodes: the file's own
JPEG/PNG/BMP bytes, or a PNG of the reader's corrected pixels), ``identity`` (the folder name)
and ``path`` (the file, relative to the prepared folder). Labels are not stored in records: the
manifest numbers the identities (:mod:`facenet_tf.data.manifest`).

:func:`pk_dataset_from_shards` samples by index, never by reading shards in order: each step
draws P distinct identities and K of their records from the :class:`ShardIndex` (the same
stateless sampler as folders), then reads just those records at their byte offsets, several
batches in parallel: with ``os.pread`` for local files (~20 µs of CPU per record), or with one
``TFRecordDatasetV2`` per record starting at its offset, interleaved (~120–170 µs per record, but
TensorFlow ops only: ``gs://`` shards, and tf.data service workers, which cannot run Python).
"""

from __future__ import annotations

import os
import struct
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.data import images as image_ops
from facenet_tf.data.config import AugmentConfig
from facenet_tf.data.manifest import ShardIndex, is_prepared, load_manifest, verified_shard_paths
from facenet_tf.data.records import FEATURES, FRAMING
from facenet_tf.data.report import SkipReport
from facenet_tf.data.sampler import PKConfig, augmented, pk_sample
from facenet_tf.errors import FacenetError, check_choice

is_shard_dir = is_prepared


#: How records are read: ``"posix"`` (one ``os.pread`` per record, in a NumPy function per batch:
#: local or mounted files, the fastest), ``"tf"`` (one ``TFRecordDatasetV2`` per record, interleaved:
#: TensorFlow ops only, for ``gs://`` shards and tf.data service workers, which cannot run Python),
#: ``"auto"`` (``"tf"`` for URLs, else ``"posix"``).
READERS = ("auto", "posix", "tf")


def _posix_reader(files: Sequence[str]):
    """``(shard int32 [B], offset int64 [B], length int32 [B]) → object [B]`` record bytes, by ``os.pread``."""

    def read(shards, offsets, lengths):
        out = np.empty(len(shards), dtype=object)
        for shard in np.unique(shards):
            fd = os.open(files[shard], os.O_RDONLY)
            try:
                for j in np.flatnonzero(shards == shard):
                    offset, length = int(offsets[j]), int(lengths[j])
                    data = os.pread(fd, 12 + length, offset)  # 8-byte length, 4-byte CRC, data
                    if len(data) != 12 + length or struct.unpack("<Q", data[:8])[0] != length:
                        raise OSError(f"{files[shard]} holds no {length}-byte record at byte {offset}: "
                                      "the shard does not match manifest.json")
                    out[j] = data[12:]
            finally:
                os.close(fd)
        return out

    return read


def _tf_reader():
    if not hasattr(tf.raw_ops, "TFRecordDatasetV2"):
        raise FacenetError(f"reading shards by index needs TensorFlow's TFRecordDatasetV2 op (TensorFlow >= 2.13); "
                           f"this is {tf.__version__}")
    spec = tf.TensorSpec([], tf.string)

    def read(file, offset, length):
        # One record: start at its byte offset, buffer exactly its bytes (one read), take 1.
        variant = tf.raw_ops.TFRecordDatasetV2(
            filenames=tf.reshape(file, [1]), compression_type="",
            buffer_size=tf.cast(length, tf.int64) + FRAMING, byte_offsets=tf.reshape(offset, [1]))
        return tf.data.experimental.from_variant(variant, spec).take(1)

    return read


def records_dataset(index: ShardIndex, steps: tf.data.Dataset, reader: str = "auto") -> tf.data.Dataset:
    """Batches of record indices (int ``[B]``, into ``index``) → their serialized records, one by one, in order.

    Args:
        index: the :class:`ShardIndex`.
        steps: dataset of int ``[B]`` record indices.
        reader: one of :data:`READERS`.
    """
    check_choice("reader", reader, READERS)
    if reader == "auto":
        reader = "tf" if any("://" in f for f in index.files) else "posix"
    shard, offset, length = tf.constant(index.shard), tf.constant(index.offset), tf.constant(index.length)
    if reader == "posix":
        read = _posix_reader(index.files)

        def batch(i):
            records = tf.numpy_function(read, [tf.gather(shard, i), tf.gather(offset, i), tf.gather(length, i)],
                                        tf.string, stateful=False)
            return tf.reshape(records, [-1])

        # Batches are read in parallel; within one, each shard file is opened once.
        return steps.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    files = tf.constant(list(index.files))
    where = steps.map(lambda i: (tf.gather(files, tf.gather(shard, i)), tf.gather(offset, i), tf.gather(length, i)))
    return where.unbatch().interleave(_tf_reader(), cycle_length=16, block_length=1,
                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def decode_record(record: tf.Tensor, image_size: Tuple[int, int]) -> tf.Tensor:
    """Serialized record → float32 ``[H, W, 3]`` pixels in 0..255."""
    image = tf.io.parse_single_example(record, {"image": FEATURES["image"]})["image"]
    return image_ops.resize(image_ops.decode_image(image), image_size)


def damaged_record(shard_dir: str) -> Optional[str]:
    """The first damaged record of a prepared folder, as one line naming its shard and number, or
    ``None`` when every record is whole.

    Training reads records by byte offset without their checksums (the fast path), so bytes
    damaged after ``prepare`` (same size: the manifest's size check passes) only show as a
    decoding error deep in TensorFlow; this scan, run after such an error, names the cause:
    each record's CRC (TensorFlow's TFRecord reader checks it), then its ``tf.train.Example``
    and text fields.
    """
    from google.protobuf.message import DecodeError

    for path in verified_shard_paths(load_manifest(shard_dir), shard_dir):
        records = iter(tf.data.TFRecordDataset(path).as_numpy_iterator())
        number = 0
        while True:
            number += 1
            try:
                data = next(records, None)
                if data is None:
                    break
                features = tf.train.Example.FromString(data).features.feature
                for name in ("identity", "path"):
                    features[name].bytes_list.value[0].decode("utf-8")
            except (tf.errors.OpError, DecodeError, UnicodeDecodeError, IndexError):
                return (f"shard {path} is damaged at record {number} (its bytes do not match their checksum or "
                        "record format): re-run 'facenet-tf prepare'")
    return None


def pk_dataset_from_shards(shard_dir: str, image_size, config: PKConfig = PKConfig(),
                           augment: Optional[AugmentConfig] = AugmentConfig(),
                           index: Optional[ShardIndex] = None,
                           report: Optional[SkipReport] = None, reader: str = "auto") -> tf.data.Dataset:
    """Endless P×K batches ``(float32 [P*K,H,W,3] in 0..255, int32 [P*K] labels)`` from shards.

    Every batch holds P distinct identities × K records (identities with fewer than K records
    are left out and recorded in ``report``); labels are the manifest's.

    Args:
        shard_dir: folder written by ``facenet-tf prepare``.
        image_size: ``(H, W)``.
        config: P, K, seed (batch ``s`` depends only on ``(seed, s)``; augmentation is seeded too).
        augment: per-batch augmentation; ``None`` for none.
        index: the folder's :class:`ShardIndex` if already built (with ``min_images=K``).
        report: receives the identities left out.
        reader: how records are read, one of :data:`READERS`.

    Raises:
        FacenetError: no manifest, P above the identities with K records.
    """
    image_size = image_ops.parse_image_size(image_size)
    if index is None:
        index = ShardIndex.from_manifest(load_manifest(shard_dir), shard_dir, config.images_per_identity, report)
    labels = tf.constant(index.labels)
    steps = pk_sample(index.counts, config)  # raises when P exceeds the identities
    records = records_dataset(index, steps.map(lambda i, _: i), reader)
    ds = (
        tf.data.Dataset.zip(records, steps.map(lambda _, ids: tf.gather(labels, ids)).unbatch())
        .map(lambda record, label: (decode_record(record, image_size), label),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(config.batch_size, drop_remainder=True)
    )
    return augmented(ds, augment, config.seed)
