"""Where training images come from and how batches are formed: :class:`DataConfig`."""

from __future__ import annotations

import dataclasses
from typing import Optional

from facenet_tf import fields
from facenet_tf.data.reader import MAX_PIXELS
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting


#: P and K when a run does not set them and the data allows them.
DEFAULT_IDENTITIES_PER_BATCH = 16
DEFAULT_IMAGES_PER_IDENTITY = 4
#: Largest batch (P x K): mining holds a few float32 B x B matrices (4096: 64 MB each).
MAX_BATCH = 16384
#: Largest synthetic dataset: it is generated in memory (64x64 RGB: 12 KB an image).
MAX_SYNTHETIC_IMAGES = 500_000


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 disables a transform.

    Each field's help and range is its :func:`~facenet_tf.fields.setting`.
    """

    flip: bool = setting(True, "random horizontal mirror (faces are near-symmetric)")
    shift: float = setting(0.06, "max translation, fraction of height/width", low=0.0, high=0.5)
    rotation_degrees: float = setting(8.0, "max rotation either way, degrees", low=0.0, high=180.0)
    zoom: float = setting(0.08, "max zoom in/out, fraction", low=0.0, high=0.9)
    brightness: float = setting(0.15, "max brightness change, fraction of the 0..255 range", low=0.0, high=1.0)
    contrast: float = setting(0.3, "max contrast factor change", low=0.0, high=1.0)
    gamma: float = setting(0.0, "max |log gamma| of a random gamma curve 255*(x/255)^gamma (0: off)",
                           low=0.0, high=3.0)
    erasing: float = setting(0.0, "probability scale of random erasing (a random patch replaced by noise; 0: off)",
                             low=0.0, high=1.0)
    shadow: float = setting(0.0, "max depth of a random directional shadow: the image times a ramp from 1 down to "
                                 "1 - depth across a random direction (0: off)", low=0.0, high=1.0)
    equalize: float = setting(0.0, "probability that an image's histogram is equalised (by its luminance, the same "
                                   "curve on every channel; 0: off)", low=0.0, high=1.0)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how batches are formed.

    Each field's help, type and range is its :func:`~facenet_tf.fields.setting`.
    ``identities_per_batch`` (P) unset = :data:`DEFAULT_IDENTITIES_PER_BATCH`, or every
    training identity when there are fewer (said in one log line); an explicit P the data
    cannot meet is an error. ``images_per_identity`` (K) unset =
    :data:`DEFAULT_IMAGES_PER_IDENTITY`, lowered (to 2 at least) when fewer than P
    identities have that many usable images (said in one log line). Identities with fewer
    than K usable images are left out and reported.
    """

    data_dir: Optional[str] = setting(
        None, "folder with one sub-folder of images per identity, or a 'facenet-tf prepare' output "
              "(unset: built-in synthetic identities)")
    validation_identities: Optional[int] = setting(
        None, "hold out the last N identities, evaluated each epoch (unset: 10% of identities, at least 2 when "
              "there are 20 or more)", low=0, high=1_000_000)
    identities_per_batch: Optional[int] = setting(None, "P, identities in a batch (unset: 16 or all)",
                                                  low=2, high=MAX_BATCH // 2)
    images_per_identity: Optional[int] = setting(None, "K, images of each identity in a batch (unset: 4, or fewer)",
                                                 low=2, high=1024)
    augment: Optional[AugmentConfig] = AugmentConfig()
    synthetic_identities: int = setting(120, "synthetic people (synthetic data only)", low=2, high=100_000)
    synthetic_images_per_identity: int = setting(10, "images per synthetic person", low=2, high=10_000)
    cache_mb: int = setting(1024, "decode datasets that fit in this many MB once and batch them from memory",
                            low=0, high=1_048_576)
    strict: bool = setting(False, "stop at the first bad image file or unreadable folder (one line naming it, exit 2) "
                                  "instead of skipping and counting it")
    max_image_pixels: int = setting(MAX_PIXELS, "refuse images above this many pixels, read from their header",
                                    low=1, high=1_000_000_000)
    data_service: Optional[str] = setting(
        None, "grpc://HOST:PORT of a tf.data service dispatcher (prepared shards the workers can read)")

    def validate(self) -> None:
        """Types and ranges of every field, and the rules across fields that no data could meet.

        Raises:
            FacenetError: naming the field(s).
        """
        fields.validate(self, "data.")
        p, k = self.identities_per_batch, self.images_per_identity
        if p is not None and k is not None and p * k > MAX_BATCH:
            raise FacenetError(f"identities_per_batch x images_per_identity = {p * k} images per batch; at most "
                               f"{MAX_BATCH} fit the B x B distance matrices of mining")
        if self.data_dir is None:
            if p is not None and p > self.synthetic_identities:
                raise FacenetError(f"identities_per_batch ({p}) is more than the {self.synthetic_identities} "
                                   "synthetic identities")
            if k is not None and k > self.synthetic_images_per_identity:
                raise FacenetError(f"images_per_identity ({k}) is more than the {self.synthetic_images_per_identity} "
                                   "images of each synthetic identity")
            images = self.synthetic_identities * self.synthetic_images_per_identity
            if images > MAX_SYNTHETIC_IMAGES:
                raise FacenetError(f"synthetic_identities x synthetic_images_per_identity = {images} images; at most "
                                   f"{MAX_SYNTHETIC_IMAGES} are generated in memory")
