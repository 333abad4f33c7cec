"""The record format of prepared shards: one ``tf.train.Example`` per image.

Each record holds ``image`` (bytes TensorFlow decodes: the file's own JPEG/PNG/BMP bytes, or a
PNG of the reader's corrected pixels), ``identity`` (the folder name) and ``path`` (the file,
relative to the prepared folder). Both prepare runners write records with
:func:`make_example`; :mod:`facenet_tf.data.tfrecord` reads them by byte offset.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

import tensorflow as tf

from facenet_tf.errors import FacenetError

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "identity": tf.io.FixedLenFeature([], tf.string),
    "path": tf.io.FixedLenFeature([], tf.string),
}
#: Bytes a record takes around its data: 8 (length) + 4 (its CRC) before, 4 (data CRC) after.
FRAMING = 16

def make_example(image: bytes, identity: str, path: str) -> bytes:
    """One serialized record (deterministic bytes, so both prepare runners write equal records)."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "identity": tf.train.Feature(bytes_list=tf.train.BytesList(value=[identity.encode()])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def scan_shard(path: str) -> Tuple[List[Tuple[str, int, int]], int]:
    """Every record of a shard written by someone else (Beam's sink): ``([(identity, byte
    offset, data length)], shard bytes)``, in file order."""
    records = []
    offset = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                break
            if len(header) < 12:
                raise FacenetError(f"{path}: truncated record header at byte {offset}")
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            if len(data) != length or len(f.read(4)) != 4:
                raise FacenetError(f"{path}: truncated record at byte {offset}")
            example = tf.train.Example.FromString(data)
            identity = example.features.feature["identity"].bytes_list.value[0].decode()
            records.append((identity, offset, length))
            offset += FRAMING + length
    return records, offset
