"""Test-time augmentation (TTA): embed an image and altered copies of it, take the mean.

* ``none``: the image as given.
* ``flip``: the mean of the embeddings of the image and its mirror (left-right).
* ``jitter``: dlib's ``num_jitters``: the mean over N jittered copies, each as dlib's
  ``jitter_image`` makes it (``dlib/image_transforms/interpolation.h``): a square crop of
  the image shrunk by 3 pixels, shifted by up to 2% of its size, zoomed out by 0–3%, rotated
  by up to ±3°, resampled to the same size (:func:`facenet_tf.faces.chips.extract_image_chip`),
  and mirrored with probability ½. The N transforms are drawn once from ``seed`` and applied to
  every image alike, so an image always gets the same embedding (dlib draws from a fresh
  generator per call, too; its generator differs from NumPy's, so the crops differ).

The mean is re-normalised to unit length when the model's contract says its embeddings are
unit-norm (``contract.normalized``); otherwise (dlib's ResNet) it is left as it is, as dlib
does. :func:`with_tta` gives the embedder a fingerprint naming the augmentation, so a gallery
is never queried with a different embedding than it was enrolled with.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, List

import numpy as np

from facenet_tf import fields
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting
from facenet_tf.registry import Registry
from facenet_tf.serving.inference import Embedder

Views = Callable[[np.ndarray], List[np.ndarray]]


#: ``name -> (config -> views)``: the copies of a batch that get embedded (registered below).
TTA_MODES: "Registry[Callable[[TTAConfig], Views]]" = Registry("test-time augmentation", "--tta")


@dataclasses.dataclass(frozen=True)
class TTAConfig:
    """Test-time augmentation. Each field's help, type and range is its
    :func:`~facenet_tf.fields.setting`; the embedding commands' ``--tta*`` flags are generated from them.

    Attributes:
        mode: a name in :data:`TTA_MODES` (``"none"``, ``"flip"``, ``"jitter"``).
        jitters: N, the jittered copies per image (``mode="jitter"`` only).
        seed: draws the jitter transforms.
    """

    mode: str = setting("none", "test-time augmentation; a gallery remembers it", choices=TTA_MODES, flag="tta")
    jitters: int = setting(10, "N for --tta jitter", low=1, high=1000, flag="tta-jitters")
    seed: int = setting(0, "draws the --tta jitter crops", low=0, high=2**31 - 1, flag="tta-seed")

    def validate(self) -> None:
        """Check every field's type and range (:func:`facenet_tf.fields.validate`).

        Raises:
            FacenetError: one line naming the field and its flag.
        """
        fields.validate(self)

    @classmethod
    def from_contract(cls, contract) -> "TTAConfig":
        """The augmentation a model's :class:`~facenet_tf.models.contract.ModelContract` records
        (``tta``; fields it leaves out take this class's defaults), or none."""
        recorded = getattr(contract, "tta", None)
        return cls(**recorded.given()) if recorded is not None else cls()

    @property
    def suffix(self) -> str:
        """Fingerprint suffix: ``""``, ``"+tta:flip"`` or ``"+tta:jitter<N>s<seed>"``."""
        if self.mode == "none":
            return ""
        return "+tta:flip" if self.mode == "flip" else f"+tta:jitter{self.jitters}s{self.seed}"


TTA_MODES.register("none", lambda config: lambda batch: [batch], help="the image as given")
TTA_MODES.register("flip", lambda config: lambda batch: [batch, batch[:, :, ::-1]],
                   help="mean of the image's and its mirror's embeddings (2x the cost)")
TTA_MODES.register("jitter", lambda config: _jitter_views(config.jitters, config.seed),
                   help="mean over N dlib-style jittered crops (--tta-jitters N; N x the cost)")


def jitter_transforms(count: int, seed: int = 0) -> np.ndarray:
    """float64 ``[count, 5]``: per jitter (shift x, shift y as fractions, object height in
    0.97..0.99999, angle in radians, mirror 0/1), drawn as dlib's ``jitter_image`` draws them."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-0.02, 0.02, count), rng.uniform(-0.02, 0.02, count),
                     rng.uniform(0.97, 0.99999, count), rng.uniform(-3, 3, count) * math.pi / 180,
                     rng.random(count) > 0.5], axis=1)


def jitter_image(image: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """One dlib ``jitter_image`` crop of a square uint8 ``[S, S, 3]`` image (same shape out)."""
    from facenet_tf.faces.chips import ChipDetails, extract_image_chip

    rows, cols = image.shape[:2]
    if rows != cols:
        raise FacenetError(f"jitter needs square images (dlib's rule); received {rows}x{cols}")
    shift_x, shift_y, height, angle, mirror = transform
    inner = rows - 6  # shrink_rect(get_rect(img), 3): width = height = S - 6
    centre_x = (3 + rows - 4) / 2 + shift_x * inner  # dlib's center() of a rectangle, plus the shift
    centre_y = (3 + rows - 4) / 2 + shift_y * inner
    box = int(inner / height)  # dlib: long box_size = rect.height() / scale
    left, top = int(round(centre_x - box / 2)), int(round(centre_y - box / 2))
    details = ChipDetails((left, top, left + box - 1, top + box - 1), float(angle), rows, cols, np.eye(2, 3))
    crop = extract_image_chip(image, details)
    return crop[:, ::-1] if mirror else crop


def _jitter_views(count: int, seed: int) -> Views:
    transforms = jitter_transforms(count, seed)

    def views(batch: np.ndarray) -> List[np.ndarray]:
        pixels = np.clip(np.round(batch), 0, 255).astype(np.uint8)
        return [np.stack([jitter_image(image, t) for image in pixels]).astype(np.float32) for t in transforms]

    return views


def tta_function(fn: Callable[[np.ndarray], np.ndarray], config: TTAConfig, normalized: bool):
    """``fn`` (float32 ``[N, H, W, 3]`` → ``[N, D]``) with test-time augmentation: the mean over
    the views of each image, re-normalised to unit length when ``normalized``."""
    views = TTA_MODES.get(config.mode)(config)

    def augmented(batch):
        batch = np.asarray(batch, np.float32)
        mean = np.mean([np.asarray(fn(view), np.float32) for view in views(batch)], axis=0)
        if normalized:
            mean = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return mean

    return augmented


def with_tta(embedder: Embedder, config: TTAConfig) -> Embedder:
    """``embedder`` with test-time augmentation (itself for ``mode="none"``); its fingerprint
    gets :attr:`TTAConfig.suffix`. Wrap before aligning (``AlignedEmbedder`` keeps the function)."""
    config.validate()
    if config.mode == "none":
        return embedder
    normalized = bool(getattr(embedder.contract, "normalized", True))
    return Embedder(tta_function(embedder._fn, config, normalized), embedder.image_size, embedder.embedding_dim,
                    embedder.contract, embedder.fingerprint + config.suffix, embedder.path)
