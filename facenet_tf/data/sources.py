"""One function from a :class:`DataConfig` to what training consumes.

:func:`training_source` turns the data configuration into the endless P×K training
stream, the held-out validation set and the counts, whatever the data is: an identity
folder (every image checked once by the one reader; decoded into memory when it fits
``cache_mb``, else streamed from files), a folder written by ``facenet-tf prepare``
(``manifest.json``: records sampled by index from TFRecord shards), or the built-in synthetic
identities. With ``data_service`` the stream's sampling, reading and decoding run on tf.data
service workers. A new kind of source plugs in here and nowhere else.

Bad files and folders are skipped, counted and logged per reason (``DataConfig.strict``: the
first one is a one-line error); identities with fewer than K usable images are left out and
logged. :attr:`TrainingSource.skipped` holds the report.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.data import tfrecord
from facenet_tf.data.catalog import usable_catalog, scan_directory
from facenet_tf.data.config import DEFAULT_IDENTITIES_PER_BATCH, DEFAULT_IMAGES_PER_IDENTITY, DataConfig
from facenet_tf.data.images import decode_resized
from facenet_tf.data.manifest import ShardIndex, is_prepared, load_manifest
from facenet_tf.data.reader import ImageLimits
from facenet_tf.data.report import SkipReport
from facenet_tf.data.sampler import PKConfig, augmented, in_memory_bytes, pk_dataset
from facenet_tf.data.synthetic import synthetic_identities
from facenet_tf.errors import FacenetError

logger = logging.getLogger("facenet_tf")

#: ``DataConfig.data_service``: the dispatcher's address.
SERVICE_ADDRESS = re.compile(r"^grpc://[^/:\s]+:\d+$")


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
        skipped: files, folders and identities left out, and why (``None`` for synthetic
            data); meant for ``skipped.json`` in the output folder.
        identities_per_batch: the P batches have (chosen when the config leaves it unset).
        images_per_identity: the K batches have.
    """

    dataset: tf.data.Dataset
    num_identities: int
    num_images: int
    description: str
    validation_images: Optional[np.ndarray] = None
    validation_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int32))
    validation_names: Sequence[str] = ()
    skipped: Optional[SkipReport] = None
    identities_per_batch: int = 0
    images_per_identity: int = 0


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
        FacenetError: missing or unusable data, P/K the data cannot meet, a bad
            ``data_service`` address, or (strict) the first bad file or folder.
    """
    if data.data_service is not None and not SERVICE_ADDRESS.match(data.data_service):
        raise FacenetError(f"data_service must be grpc://HOST:PORT (a tf.data service dispatcher); "
                           f"received {data.data_service!r}")
    augment = None if data.data_service else data.augment  # with the service: in the trainer, after it
    if data.data_dir is not None and is_prepared(data.data_dir):
        source = _shards(data, image_size, seed, load, augment)
    elif data.data_dir is None:
        images, catalog = synthetic_identities(data.synthetic_identities, data.synthetic_images_per_identity,
                                               image_size, seed)
        k = data.images_per_identity or min(DEFAULT_IMAGES_PER_IDENTITY, data.synthetic_images_per_identity)
        source = _split(catalog, images, data, image_size, seed, k, f"synthetic ({catalog.summary()}, seed {seed})",
                        augment, None)
    else:
        source = _folder(data, image_size, seed, load, augment)
    if data.data_service:
        source.dataset = distributed(source.dataset, data.data_service, data.augment, seed)
        source.description += f" via tf.data service {data.data_service}"
    return source


def choose_images_per_identity(counts: np.ndarray, identities_wanted: int) -> int:
    """K when the run does not set it: :data:`DEFAULT_IMAGES_PER_IDENTITY`, or the largest
    smaller K (at least 2) for which ``identities_wanted`` identities (or all, when there are
    fewer) have K usable images."""
    counts = np.asarray(counts)
    wanted = min(identities_wanted, int((counts >= 2).sum()))
    for k in range(DEFAULT_IMAGES_PER_IDENTITY, 2, -1):
        if (counts >= k).sum() >= max(wanted, 2):
            return k
    return 2


def choose_identities_per_batch(data: DataConfig, num_identities: int) -> int:
    """P: the configured one, else :data:`DEFAULT_IDENTITIES_PER_BATCH` or every identity when fewer."""
    if data.identities_per_batch is not None:
        return data.identities_per_batch
    p = min(DEFAULT_IDENTITIES_PER_BATCH, num_identities)
    if p < DEFAULT_IDENTITIES_PER_BATCH:
        logger.info("identities_per_batch not given: using %d, all %d training identities (default %d)", p,
                    num_identities, DEFAULT_IDENTITIES_PER_BATCH)
    return p


def _default_k(counts: np.ndarray, data: DataConfig) -> int:
    k = choose_images_per_identity(counts, data.identities_per_batch or DEFAULT_IDENTITIES_PER_BATCH)
    if k < DEFAULT_IMAGES_PER_IDENTITY:
        logger.info("images_per_identity not given: using %d (%d identities have at least %d usable images; "
                    "default %d)", k, int((np.asarray(counts) >= k).sum()), k, DEFAULT_IMAGES_PER_IDENTITY)
    return k


def _shards(data: DataConfig, image_size, seed: int, load, augment) -> TrainingSource:
    if load is not None:
        raise FacenetError("this model aligns its input; TFRecord shards hold unaligned images: train from a folder")
    if data.validation_identities:
        raise FacenetError("validation_identities needs an image folder; TFRecord shards are used for training only")
    report = SkipReport(data.strict)
    manifest = load_manifest(data.data_dir)
    k = data.images_per_identity
    if k is None:
        k = _default_k(ShardIndex.from_manifest(manifest, data.data_dir, 2).counts, data)
    index = ShardIndex.from_manifest(manifest, data.data_dir, k, report)
    report.log(logger, "training data")
    pk = PKConfig(choose_identities_per_batch(data, index.num_identities), k, seed)
    return TrainingSource(
        # tf.data service workers run TensorFlow ops only: no Python reader there.
        dataset=tfrecord.pk_dataset_from_shards(data.data_dir, image_size, pk, augment, index=index,
                                                reader="tf" if data.data_service else "auto"),
        num_identities=index.num_identities,
        num_images=index.num_images,
        description=(f"{data.data_dir} (prepared shards: {index.num_images} images of {index.num_identities} "
                     f"identities, plan {manifest.get('plan')})"),
        skipped=report,
        identities_per_batch=pk.identities_per_batch,
        images_per_identity=pk.images_per_identity,
    )


def _folder(data: DataConfig, image_size, seed: int, load, augment) -> TrainingSource:
    report = SkipReport(data.strict)
    limits = ImageLimits.from_config(data)
    catalog = scan_directory(data.data_dir, min_images=1, report=report)
    logger.info("checking %d images", catalog.num_images)
    k = data.images_per_identity
    # Unset K is chosen from the usable counts, and identities are then left out against it.
    catalog = usable_catalog(catalog, report, min_images=k or 1, limits=limits)
    if k is None:
        counts = catalog.counts()
        k = _default_k(counts, data)
        keep = [label for label, count in enumerate(counts) if count >= k]
        for label in np.flatnonzero(counts < k):
            report.exclude_identity(catalog.names[label], int(counts[label]), k)
        if not keep:
            raise FacenetError(f"{data.data_dir}: no identity has 2 usable images; a batch needs positive pairs")
        if len(keep) < catalog.num_identities:
            catalog = catalog.subset(keep)
    report.log(logger, "training data")
    images = None
    if load is not None:
        logger.info("preparing %d images in memory", catalog.num_images)
        images = load(catalog.paths)
    elif in_memory_bytes(catalog.num_images, image_size) <= data.cache_mb * 2**20:
        logger.info("decoding %d images into memory", catalog.num_images)
        images = decode_resized(catalog.paths, catalog.native, image_size, limits=limits)
    elif data.data_service:
        raise FacenetError(f"{data.data_dir} is larger than cache_mb ({data.cache_mb} MB decoded): tf.data service "
                           "workers stream prepared shards only; run 'facenet-tf prepare' and train on its output")
    return _split(catalog, images, data, image_size, seed, k, f"{data.data_dir} ({catalog.summary()})", augment,
                  report)


def _split(catalog, images, data: DataConfig, image_size, seed: int, k: int, description: str, augment,
           report: Optional[SkipReport]) -> TrainingSource:
    n = data.validation_identities
    if n is None:
        n = default_validation_identities(catalog.num_identities)
    train_cat, val_cat = catalog.split(n)
    if train_cat.num_identities < 2:
        raise FacenetError(f"{catalog.root or 'dataset'}: {train_cat.num_identities} training identity with "
                           f"{k} usable images; a batch needs at least 2 identities")
    pk = PKConfig(choose_identities_per_batch(data, train_cat.num_identities), k, seed)
    limits = ImageLimits.from_config(data)
    if images is None:
        train_images = None
        val_images = (decode_resized(val_cat.paths, val_cat.native, image_size, limits=limits)
                      if val_cat.num_images else None)
    else:
        cut = int(np.searchsorted(catalog.labels, catalog.num_identities - n))
        train_images, val_images = images[:cut], images[cut:]
    return TrainingSource(
        dataset=pk_dataset(train_cat, image_size, pk, augment, images=train_images, limits=limits),
        num_identities=train_cat.num_identities,
        num_images=train_cat.num_images,
        description=description,
        validation_images=val_images if val_cat.num_images else None,
        validation_labels=val_cat.labels,
        validation_names=val_cat.names,
        skipped=report,
        identities_per_batch=pk.identities_per_batch,
        images_per_identity=pk.images_per_identity,
    )


def distributed(dataset: tf.data.Dataset, address: str, augment, seed: int) -> tf.data.Dataset:
    """``dataset`` produced by the tf.data service at ``address``, augmented here.

    Steps are handed out to the workers dynamically (``ShardingPolicy.DYNAMIC``): each P×K
    batch is made once, by one worker, and is the batch of that step number, as without the
    service; with several workers they arrive in the order the workers finish them.
    Augmentation runs in the trainer, after the service: its Keras layers hold random-state
    variables that a worker cannot receive.
    """
    service = tf.data.experimental.service
    dataset = dataset.apply(service.distribute(processing_mode=service.ShardingPolicy.DYNAMIC, service=address))
    return augmented(dataset, augment, seed)
