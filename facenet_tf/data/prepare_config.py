"""How ``facenet-tf prepare`` packs a folder: :class:`PrepareConfig`.

``facenet-tf prepare``'s flags are generated from it (:mod:`facenet_tf.cli.config_flags`),
so each option's help, type, range and default live here only; :func:`facenet_tf.data.prepare.prepare`
checks it before any file is created.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Tuple

from facenet_tf import fields
from facenet_tf.data.reader import MAX_PIXELS, ImageLimits
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting

#: Runners of :func:`~facenet_tf.data.prepare.prepare`: ``"local"`` (this machine, ``workers``
#: processes) or any Apache Beam runner name (``DirectRunner`` here; ``DataflowRunner``,
#: ``FlinkRunner``, ``SparkRunner``…).
LOCAL = "local"


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """How a folder is prepared. Each field's help, type and range is its :func:`~facenet_tf.fields.setting`.

    Attributes:
        num_shards: TFRecord files to write (capped at one per image).
        workers: processes reading and encoding images (local runner); 0 = one per CPU core.
        seed: seeds the assignment of images to shards.
        min_images: identities with fewer usable images are left out of the manifest (and
            reported); training leaves out those with fewer than K anyway.
        max_pixels: images above this many pixels are refused (from the header).
        strict: stop at the first bad file or folder with a one-line error naming it;
            nothing is written.
        runner: :data:`LOCAL` or an Apache Beam runner name.
        beam_args: extra Beam pipeline options (``--project=…``, ``--region=…``, …).
    """

    num_shards: int = setting(16, "number of shard files (at most one per image)", low=1, high=1_000_000,
                              flag="shards")
    workers: int = setting(0, "processes reading and encoding images, local runner; 0 = one per CPU core",
                           low=0, high=1024)
    seed: int = setting(0, "seed of the assignment of images to shards", low=0, high=2**31 - 1)
    min_images: int = setting(2, "leave out identities with fewer usable images", low=1, high=1_000_000)
    max_pixels: int = setting(MAX_PIXELS, "refuse images above this many pixels, from their header",
                              low=1, high=1_000_000_000)
    strict: bool = setting(False, "stop at the first bad image file or unreadable folder, writing nothing; "
                                  "without it each is skipped and listed in skipped.json")
    runner: str = setting(LOCAL, f"'{LOCAL}' (this machine, resumable) or an Apache Beam runner: DirectRunner, "
                                 "DataflowRunner, FlinkRunner, SparkRunner… (needs the [beam] extra)")
    beam_args: Tuple[str, ...] = setting((), "Beam pipeline options for the runner (--project=P, --region=R, ...)")

    def validate(self) -> None:
        """Check every field's type and range before any file is created.

        Raises:
            FacenetError: one line naming the field (and its flag where the two differ).
        """
        fields.validate(self)
        if not self.runner.strip():
            raise FacenetError(f"runner must be '{LOCAL}' or an Apache Beam runner name; received {self.runner!r}")

    @property
    def limits(self) -> ImageLimits:
        """What the reader refuses (from ``max_pixels``)."""
        return ImageLimits(self.max_pixels)

    @property
    def processes(self) -> int:
        return self.workers or os.cpu_count() or 1
