"""Where training images come from and how batches are formed: :class:`DataConfig`."""

from __future__ import annotations

import dataclasses
from typing import Optional

from facenet_tf.data.augment import AugmentConfig
from facenet_tf.data.reader import MAX_PIXELS


#: P and K when a run does not set them and the data allows them.
DEFAULT_IDENTITIES_PER_BATCH = 16
DEFAULT_IMAGES_PER_IDENTITY = 4


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how batches are formed.

    Attributes:
        data_dir: folder with one sub-folder per identity, or a folder written by
            ``facenet-tf prepare`` (``manifest.json`` + TFRecord shards); ``None`` = the
            built-in synthetic identities.
        validation_identities: identities held out (the last ones in natural name order)
            and evaluated every epoch; ``None`` = 10% of identities (at least 2 when there
            are 20 or more, else 0).
        identities_per_batch: P; ``None`` = :data:`DEFAULT_IDENTITIES_PER_BATCH`, or every
            training identity when there are fewer (said in one log line). An explicit P the
            data cannot meet is an error.
        images_per_identity: K; ``None`` = :data:`DEFAULT_IMAGES_PER_IDENTITY`, lowered (to
            2 at least) when fewer than P identities have that many usable images (said in
            one log line). Identities with fewer than K usable images are left out and reported.
        augment: augmentation of training batches; ``None`` disables it.
        synthetic_identities: number of synthetic people (synthetic data only).
        synthetic_images_per_identity: images per synthetic person.
        cache_mb: datasets whose decoded images fit in this many MB are decoded once and
            batched from memory; larger ones are decoded from files every step.
        strict: stop at the first bad image file or unreadable folder with a one-line error
            naming it, instead of skipping it (skips are counted and logged per reason).
        max_image_pixels: images above this many pixels (width × height) are refused, from
            their header, before any pixel is decoded.
        data_service: ``"grpc://HOST:PORT"`` of a tf.data service dispatcher: its workers
            sample, read and decode the P×K batches (augmentation stays in the trainer);
            needs prepared shards (or synthetic data) that the workers can read.
    """

    data_dir: Optional[str] = None
    validation_identities: Optional[int] = None
    identities_per_batch: Optional[int] = None
    images_per_identity: Optional[int] = None
    augment: Optional[AugmentConfig] = AugmentConfig()
    synthetic_identities: int = 120
    synthetic_images_per_identity: int = 10
    cache_mb: int = 1024
    strict: bool = False
    max_image_pixels: int = MAX_PIXELS
    data_service: Optional[str] = None
