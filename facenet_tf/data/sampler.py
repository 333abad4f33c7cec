"""The P×K input stream: batches of exactly P identities × K images each.

Online triplet mining only works if every batch holds several images of each person, so
batches are drawn by identity, not by image. Sampling happens on *indices* (offsets into
the catalog's identity-grouped file list), so one stateless op per step serves 40 or
400,000 identities alike; no per-identity dataset is ever built. :func:`pk_sample` holds only
the per-identity counts; prepared shards use it too (:mod:`facenet_tf.data.tfrecord`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from facenet_tf.data import images as image_ops
from facenet_tf.data.augment import build_augmenter
from facenet_tf.data.config import AugmentConfig
from facenet_tf.data.catalog import IdentityCatalog
from facenet_tf.data.reader import DEFAULT_LIMITS, ImageLimits
from facenet_tf.errors import FacenetError


@dataclasses.dataclass(frozen=True)
class PKConfig:
    """How batches are formed.

    Attributes:
        identities_per_batch: P, distinct identities in each batch.
        images_per_identity: K, images of each identity; identities with fewer than K images
            are sampled with replacement.
        seed: same seed → same batches (and the same augmentation).
    """

    identities_per_batch: int = 16
    images_per_identity: int = 4
    seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.identities_per_batch * self.images_per_identity


#: The step counter of the stream: a plain range (0, 1, 2, …), so a tf.data service can hand
#: out steps to its workers (``Dataset.counter`` is a scan, which cannot be split).
MAX_STEPS = 2**62


def pk_sample(counts: np.ndarray, config: PKConfig) -> tf.data.Dataset:
    """Endless dataset of ``(indices int32 [P*K], identities int32 [P*K])``: P distinct identities × K.

    ``indices`` point into the identity-grouped order (all images of identity 0, then of 1, …),
    ``identities`` are positions ``0..len(counts)-1``. Only ``counts`` (and its offsets) are held:
    8 bytes per identity, nothing per image.

    Args:
        counts: int [num_identities] images of each identity, all >= 1.
        config: P, K and seed. Batch ``s`` depends only on ``(seed, s)``. Identities with fewer
            than K images are sampled with replacement.

    Raises:
        FacenetError: bad P or K, or fewer than P identities.
    """
    counts = np.asarray(counts, np.int64)
    p, k = config.identities_per_batch, config.images_per_identity
    if p < 2 or k < 1:
        raise FacenetError(f"identities_per_batch must be >= 2 and images_per_identity >= 1; received {p}, {k}")
    if p > counts.size:
        raise FacenetError(
            f"identities_per_batch ({p}) exceeds the number of training identities ({counts.size})"
        )
    if counts.size and counts.min() < 1:
        raise FacenetError("every identity needs at least one image")
    offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int32)
    counts_t = tf.constant(counts, tf.int32)
    width = int(max(counts.max(), k))
    num_ids = counts.size
    seed = int(config.seed)

    def sample(step):
        key = tf.stack([tf.constant(seed, tf.int64), step])
        k1, k2, k3 = tf.unstack(tf.random.experimental.stateless_split(key, 3))
        ids = tf.math.top_k(tf.random.stateless_uniform([num_ids], k1), p).indices
        n = tf.gather(counts_t, ids)
        # Without replacement: the K smallest random keys among each identity's own images.
        keys = tf.random.stateless_uniform([p, width], k2)
        keys = tf.where(tf.range(width)[None, :] < n[:, None], keys, 2.0)
        distinct = tf.math.top_k(-keys, k).indices
        # With replacement, for identities with fewer than K images.
        repeated = tf.cast(tf.random.stateless_uniform([p, k], k3) * tf.cast(n[:, None], tf.float32), tf.int32)
        repeated = tf.minimum(repeated, n[:, None] - 1)
        within = tf.where((n >= k)[:, None], distinct, repeated)
        indices = tf.reshape(tf.gather(offsets, ids)[:, None] + within, [-1])
        return indices, tf.repeat(ids, k)

    return tf.data.Dataset.range(MAX_STEPS).map(sample)


def pk_indices(labels: np.ndarray, config: PKConfig) -> tf.data.Dataset:
    """Endless dataset of int32 ``[P*K]`` indices into ``labels``, P identities × K images.

    Args:
        labels: int [N] identity of each image, grouped (non-decreasing), every identity
            present at least once.
        config: P, K and seed. Batch ``s`` depends only on ``(seed, s)``.

    Raises:
        FacenetError: if labels are not grouped or there are fewer than P identities.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or np.any(np.diff(labels) < 0):
        raise FacenetError("labels must be a non-empty 1-D array grouped by identity")
    counts = np.bincount(labels)
    if np.any(counts == 0):
        raise FacenetError("labels must number identities 0..N-1 without gaps")
    return pk_sample(counts, config).map(lambda indices, _: indices)


def pk_dataset(
    catalog: IdentityCatalog,
    image_size,
    config: PKConfig = PKConfig(),
    augment: Optional[AugmentConfig] = AugmentConfig(),
    images: Optional[np.ndarray] = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> tf.data.Dataset:
    """Endless ``tf.data.Dataset`` of ``(images float32 [P*K,H,W,3] in 0..255, labels int32 [P*K])``.

    Args:
        catalog: identities and files (labels grouped, see :class:`IdentityCatalog`).
        image_size: ``(H, W)`` or anything :func:`parse_image_size` takes.
        config: P, K, seed.
        augment: augmentation applied per batch in the graph; ``None`` for none.
        images: optional uint8 ``[N,H,W,3]`` array of the catalog's images, already decoded
            and resized (small datasets, synthetic data): batches are then gathered from
            memory instead of decoding files every step.
        limits: what the reader refuses when decoding files (pixel limit).

    Returns:
        The dataset, ending in ``prefetch(AUTOTUNE)``.
    """
    image_size = image_ops.parse_image_size(image_size)
    labels = tf.constant(catalog.labels, tf.int32)
    indices = pk_indices(catalog.labels, config)
    if images is not None:
        if images.shape[0] != catalog.num_images or tuple(images.shape[1:3]) != image_size:
            raise FacenetError(f"images array of shape {images.shape} does not match the catalog and image_size")
        pixels = tf.constant(images)
        ds = indices.map(
            lambda idx: (tf.cast(tf.gather(pixels, idx), tf.float32), tf.gather(labels, idx)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        paths = tf.constant(list(catalog.paths))
        native = tf.constant(np.zeros(catalog.num_images, bool) if catalog.native is None else catalog.native)
        ds = (
            indices.unbatch()
            .map(
                lambda i: (image_ops.load_image(tf.gather(paths, i), image_size, tf.gather(native, i), limits),
                           tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .batch(config.batch_size, drop_remainder=True)
        )
    return augmented(ds, augment, config.seed)


def augmented(ds: tf.data.Dataset, augment: Optional[AugmentConfig], seed: int) -> tf.data.Dataset:
    """``ds`` of ``(images, labels)`` batches with ``augment`` applied per batch, then ``prefetch``."""
    if augment is not None:
        augmenter = build_augmenter(augment, seed=seed)
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def in_memory_bytes(num_images: int, image_size: Tuple[int, int]) -> int:
    """Bytes an uint8 ``[N,H,W,3]`` array of the dataset would take."""
    return int(num_images) * image_size[0] * image_size[1] * 3
