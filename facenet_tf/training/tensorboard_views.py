"""TensorBoard views of held-out verification: ROC image, distance histograms, projector.

The scalars (``val_accuracy``, ``val_auc``, ``val_tar_at_far_1e-3``, ...) need nothing
here: :class:`facenet_tf.training.callbacks.HeldOutVerification` puts them in the epoch logs and
Keras' ``TensorBoard`` callback writes them to ``<log_dir>/validation`` as
``epoch_accuracy``, ``epoch_auc``, ... This callback adds, in the same run folder, what a
scalar cannot show:

- each epoch, ``validation/roc_curve``: an image of TAR against FAR (drawn with Pillow),
  and histograms ``validation/distance_same`` and ``validation/distance_different`` of
  the pair distances;
- at the end of training, the Embedding Projector for the last validation embeddings
  (TF2 style): a ``tf.train.Checkpoint`` of a variable holding them, ``metadata.tsv``
  with each embedding's identity name, ``sprite.png`` of the images and
  ``projector_config.pbtxt`` tying them together.
"""

from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

PROJECTOR_TENSOR = "validation_embeddings"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
# TensorBoard's projector refuses sprites above 8192 pixels a side.
_MAX_SPRITE_SIDE = 8192


class ValidationViews(keras.callbacks.Callback):
    """Write ROC image, distance histograms and the projector of held-out identities.

    Place it right after the :class:`~facenet_tf.training.callbacks.HeldOutVerification` it reads
    (``result`` and ``embeddings``, set in that callback's ``on_epoch_end``).

    Args:
        validation: the ``HeldOutVerification`` callback.
        log_dir: TensorBoard log folder; writes go to ``<log_dir>/validation``.
        names: identity name of each label (``names[label]``); default ``str(label)``.
        images: uint8 ``[N, H, W, 3]`` validation images for the projector sprite;
            default ``validation.images``.
        max_pairs: pairs sampled for the histograms (all pairs if fewer). Default 100k.
        thumbnail_size: largest side of a sprite thumbnail, pixels. Default 64.
        max_points: at most this many embeddings (a seeded sample, in order) go to the
            projector, which gets slow beyond ~10k points. Default 10000.
        roc_size: side of the ROC image, pixels. Default 320.
    """

    def __init__(self, validation, log_dir: str, names: Optional[Sequence[str]] = None,
                 images: Optional[np.ndarray] = None, max_pairs: int = 100_000, thumbnail_size: int = 64,
                 max_points: int = 10_000, roc_size: int = 320):
        super().__init__()
        self.validation = validation
        self.run_dir = os.path.join(log_dir, "validation")
        self.names = None if names is None else list(names)
        self.images = images
        self.max_pairs = max_pairs
        self.thumbnail_size = thumbnail_size
        self.max_points = max_points
        self.roc_size = roc_size
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        result = self.validation.result
        if result is None:
            return
        # The pairs and distances the metrics were computed from, sampled down for the histograms.
        d, issame = self.validation.pair_distances, self.validation.pairs.issame
        if d.size > self.max_pairs:
            keep = np.random.default_rng(self.validation.seed).choice(d.size, self.max_pairs, replace=False)
            d, issame = d[keep], issame[keep]
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.run_dir)
        with self._writer.as_default(step=epoch):
            tf.summary.image("roc_curve", roc_image(result.far, result.tar, result.auc, self.roc_size)[None],
                             description="TAR against FAR of all validation pairs")
            tf.summary.histogram("distance_same", d[issame], description="same-person pair distances")
            tf.summary.histogram("distance_different", d[~issame],
                                 description="different-person pair distances")
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        embeddings = self.validation.embeddings
        if embeddings is None:
            return
        labels = np.asarray(self.validation.labels)
        images = self.validation.images if self.images is None else self.images
        keep = np.arange(len(embeddings))
        if len(keep) > self.max_points:
            rng = np.random.default_rng(self.validation.seed)
            keep = np.sort(rng.choice(len(keep), self.max_points, replace=False))
        names = [self.names[i] if self.names is not None else str(i) for i in labels[keep]]
        write_projector(self.run_dir, embeddings[keep], names, None if images is None else images[keep],
                        self.thumbnail_size)


def roc_image(far: np.ndarray, tar: np.ndarray, auc: float, size: int = 320) -> np.ndarray:
    """Draw a ROC curve (linear axes, chance diagonal, AUC and TAR at FAR = 1e-3 written) → uint8 ``[size, size, 3]``."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 36, 12, size - 12, size - 30
    width, height = right - left, bottom - top

    def xy(x, y):
        return left + float(x) * width, bottom - float(y) * height

    for tick in (0.25, 0.5, 0.75):
        draw.line([xy(tick, 0), xy(tick, 1)], fill=(230, 230, 230))
        draw.line([xy(0, tick), xy(1, tick)], fill=(230, 230, 230))
    draw.line([xy(0, 0), xy(1, 1)], fill=(180, 180, 180))  # chance
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.line([xy(x, y) for x, y in zip(far, tar)], fill=(31, 119, 180), width=2)
    for tick in (0, 0.5, 1):
        x, y = xy(tick, 0)
        draw.text((x - 6, bottom + 4), f"{tick:g}", fill="black")
        x, y = xy(0, tick)
        draw.text((left - 22, y - 5), f"{tick:g}", fill="black")
    draw.text((left + width // 2 - 10, bottom + 16), "FAR", fill="black")
    draw.text((4, top + height // 4 - 5), "TAR", fill="black")
    # On linear axes FAR = 1e-3 is a hair from the left edge: state it instead.
    tar_low = float(np.max(tar[far <= 1e-3], initial=0.0))
    draw.text((left + width // 2 - 30, bottom - 34), f"AUC {auc:.4f}", fill="black")
    draw.text((left + width // 2 - 30, bottom - 20), f"TAR@FAR=1e-3 {tar_low:.3f}", fill="black")
    return np.asarray(image, np.uint8)


def sprite_image(images: np.ndarray, thumbnail_size: int = 64) -> np.ndarray:
    """Tile images row-major on a square grid, each shrunk to fit ``thumbnail_size``.

    Returns:
        uint8 ``[rows * h, cols * w, 3]`` where ``(h, w)`` is the thumbnail size
        (aspect kept; shrunk further when the grid would exceed 8192 pixels a side).
    """
    from PIL import Image

    images = np.asarray(images)
    n, height, width = images.shape[:3]
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    scale = min(1.0, thumbnail_size / max(height, width), _MAX_SPRITE_SIDE / (cols * max(height, width)))
    h, w = max(1, int(height * scale)), max(1, int(width * scale))
    sprite = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, image in enumerate(images):
        thumb = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB").resize((w, h), Image.BILINEAR)
        r, c = divmod(i, cols)
        sprite[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.asarray(thumb)
    return sprite


def write_projector(run_dir: str, embeddings: np.ndarray, names: Sequence[str],
                    images: Optional[np.ndarray] = None, thumbnail_size: int = 64) -> str:
    """Write an Embedding Projector view of ``embeddings`` into ``run_dir``.

    Args:
        run_dir: TensorBoard run folder (e.g. ``logs/validation``).
        embeddings: float ``[N, D]``.
        names: ``N`` labels for ``metadata.tsv`` (one column, so no header row).
        images: optional uint8 ``[N, H, W, 3]``; written as ``sprite.png``.
        thumbnail_size: see :func:`sprite_image`.

    Returns:
        The checkpoint prefix written.
    """
    from PIL import Image
    from tensorboard.plugins import projector

    from facenet_tf.artifacts import atomic_path

    os.makedirs(run_dir, exist_ok=True)
    with atomic_path(os.path.join(run_dir, METADATA_FILE)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            # Tabs or newlines in a name would shift the rows.
            f.writelines(" ".join(str(name).split()) + "\n" for name in names)
    config = projector.ProjectorConfig()
    view = config.embeddings.add()
    # The projector reads tensors from the run folder's latest checkpoint by their
    # object-graph name: <attribute>/.ATTRIBUTES/VARIABLE_VALUE.
    view.tensor_name = f"{PROJECTOR_TENSOR}/.ATTRIBUTES/VARIABLE_VALUE"
    view.metadata_path = METADATA_FILE
    if images is not None:
        sprite = sprite_image(images, thumbnail_size)
        with atomic_path(os.path.join(run_dir, SPRITE_FILE)) as tmp:
            Image.fromarray(sprite).save(tmp, format="PNG")
        view.sprite.image_path = SPRITE_FILE
        cols = max(1, math.ceil(math.sqrt(len(images))))
        view.sprite.single_image_dim.extend([sprite.shape[1] // cols, sprite.shape[0] // math.ceil(len(images) / cols)])
    variable = tf.Variable(np.asarray(embeddings, np.float32), name=PROJECTOR_TENSOR)
    prefix = tf.train.Checkpoint(**{PROJECTOR_TENSOR: variable}).save(os.path.join(run_dir, "embeddings.ckpt"))
    projector.visualize_embeddings(run_dir, config)
    return prefix
