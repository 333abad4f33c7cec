"""One function from a :class:`DataConfig` to what training consumes.

:func:`training_source` turns the data configuration into the endless P×K training
stream, the held-out validation set and the counts, whatever the data is: an identity
folder (decoded into memory when it fits ``cache_mb``, else streamed from files), TFRecord
shards from ``facenet-tf prepare``, or the built-in synthetic identities. A new kind of
source (a Beam-prepared manifest, a tf.data service) plugs in here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.data import tfrecord
from facenet_tf.data.catalog import IdentityCatalog, scan_directory
from facenet_tf.data.config import DataConfig
from facenet_tf.data.images import load_images
from facenet_tf.data.sampler import PKConfig, in_memory_bytes, pk_dataset
from facenet_tf.data.synthetic import synthetic_identities
from facenet_tf.errors import FacenetError

logger = logging.getLogger("facenet_tf")


@dataclasses.dataclass
class TrainingSource:
    """What training reads.

    Attributes:
        dataset: endless ``tf.data.Dataset`` of ``(float32 [P*K,H,W,3] pixels 0..255,
            int32 [P*K] labels)``.
        num_identities: training identities.
        num_images: training images.
        description: one line naming the data, for metadata and logs.
        validation_images: uint8 ``[N,H,W,3]`` held-out images, or ``None``.
        validation_labels: int ``[N]`` labels of those images.
        validation_names: identity name of each validation label.
    """

    dataset: tf.data.Dataset
    num_identities: int
    num_images: int
    description: str
    validation_images: Optional[np.ndarray] = None
    validation_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))
    validation_names: Sequence[str] = ()


def default_validation_identities(num_identities: int) -> int:
    """10% of identities (at least 2) when there are 20 or more, else none."""
    return max(2, num_identities // 10) if num_identities >= 20 else 0


def training_source(data: DataConfig, image_size: Tuple[int, int], seed: int,
                    load: Optional[Callable[[Sequence[str]], np.ndarray]] = None) -> TrainingSource:
    """The training stream and validation set of ``data``.

    Args:
        data: :class:`DataConfig`.
        image_size: ``(H, W)`` the model takes.
        seed: seeds synthetic data, batches and augmentation.
        load: ``paths -> uint8 [N,H,W,3]`` replacing plain decode + resize of folder
            images (e.g. face alignment the model needs); the images are then held in
            memory, whatever ``cache_mb`` says.

    Raises:
        FacenetError: missing or unusable data, or P/K the data cannot meet.
    """
    pk = PKConfig(data.identities_per_batch, data.images_per_identity, seed)
    if data.data_dir is not None and tfrecord.is_shard_dir(data.data_dir):
        if load is not None:
            raise FacenetError("this model aligns its input; TFRecord shards hold unaligned images: train from a folder")
        if data.validation_identities:
            raise FacenetError("validation_identities needs an image folder; TFRecord shards are used for training only")
        index = tfrecord.read_index(data.data_dir)
        return TrainingSource(
            dataset=tfrecord.pk_dataset_from_shards(data.data_dir, image_size, pk, data.augment),
            num_identities=len(index["names"]),
            num_images=index["num_images"],
            description=f"{data.data_dir} (TFRecord shards: {index['num_images']} images of {len(index['names'])} identities)",
        )
    if data.data_dir is None:
        images, catalog = synthetic_identities(data.synthetic_identities, data.synthetic_images_per_identity,
                                               image_size, seed)
        description = f"synthetic ({catalog.summary()}, seed {seed})"
    else:
        catalog = scan_directory(data.data_dir)
        images = None
        if load is not None:
            logger.info("preparing %d images in memory", catalog.num_images)
            images = load(catalog.paths)
        elif in_memory_bytes(catalog.num_images, image_size) <= data.cache_mb * 2**20:
            logger.info("decoding %d images into memory", catalog.num_images)
            images = load_images(catalog.paths, image_size)
        description = f"{data.data_dir} ({catalog.summary()})"
    n = data.validation_identities
    if n is None:
        n = default_validation_identities(catalog.num_identities)
    train_cat, val_cat = catalog.split(n)
    if images is None:
        train_images = None
        val_images = load_images(val_cat.paths, image_size) if val_cat.num_images else None
    else:
        cut = int(np.searchsorted(catalog.labels, catalog.num_identities - n))
        train_images, val_images = images[:cut], images[cut:]
    return TrainingSource(
        dataset=pk_dataset(train_cat, image_size, pk, data.augment, images=train_images),
        num_identities=train_cat.num_identities,
        num_images=train_cat.num_images,
        description=description,
        validation_images=val_images if val_cat.num_images else None,
        validation_labels=val_cat.labels,
        validation_names=val_cat.names,
    )
