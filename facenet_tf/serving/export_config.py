"""What ``facenet-tf export`` writes and how strictly it checks it: :class:`ExportConfig`.

``facenet-tf export``'s flags are generated from it (:mod:`facenet_tf.cli.config_flags`), so
each option's help, type, range and default live here only. Kept apart from
:mod:`facenet_tf.serving.export` so that reading the options imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

from facenet_tf import fields
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting
from facenet_tf.serving import tflite as tflite_lib

#: What ``tflite`` accepts: the TFLite variants, and ``"all"`` for every one.
TFLITE_CHOICES = (*tflite_lib.VARIANTS, "all")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What :func:`facenet_tf.serving.export.export_model` writes and how strictly it checks it.

    Each field's help, type and range is its :func:`~facenet_tf.fields.setting`.

    Attributes:
        tflite: TFLite variants to write, from :data:`facenet_tf.serving.tflite.VARIANTS`
            (``"all"`` = every one); empty = SavedModel only.
        representative_data: folder of images (any layout, searched recursively) for int8
            calibration and the check batch; ``None`` = the training data named in the
            model's metadata if that folder exists, else synthetic identities.
        int8_min_cosine: minimum cosine similarity to the Keras model for the 8-bit
            variants (``dynamic`` and ``int8``); float32 needs 0.99999 and float16 0.999.
        num_representative: calibration images (int8).
        num_check: images in the fixed check batch (kept apart from calibration when
            there are enough).
        seed: picks the images.
        max_faces: F, the faces per photo the ``detect_and_embed`` signature returns (padded);
            0 leaves the signature out. Only for models recording dlib's own alignment
            (:mod:`facenet_tf.serving.detect_and_embed`).
    """

    tflite: Tuple[str, ...] = setting((), "TFLite variants to add (needs ai-edge-litert); all = every one",
                                      choices=TFLITE_CHOICES)
    representative_data: Optional[str] = setting(
        None, "folder of images for int8 calibration and the check batch (unset: the training data, else synthetic)")
    int8_min_cosine: float = setting(tflite_lib.MIN_COSINE["int8"],
                                     "minimum cosine to the Keras model for the dynamic and int8 variants",
                                     low=0, high=1, low_open=True)
    num_representative: int = setting(64, "int8 calibration images", low=1, high=4096)
    num_check: int = setting(16, "images in the fixed check batch, kept apart from calibration when there are "
                                 "enough", low=1, high=1024)
    seed: int = setting(0, "picks the calibration and check images", low=0, high=2**31 - 1)
    max_faces: int = setting(8, "faces per photo of the detect_and_embed signature (models recording dlib's "
                                "alignment; 0: leave the signature out)", low=0, high=256)

    def variants(self) -> Tuple[str, ...]:
        """The TFLite variants requested, ``"all"`` expanded, in :data:`VARIANTS` order."""
        wanted = set(tflite_lib.VARIANTS if "all" in self.tflite else self.tflite)
        return tuple(v for v in tflite_lib.VARIANTS if v in wanted)

    def validate(self) -> None:
        """Check every field's type and range, and that ``representative_data`` is a folder.

        Raises:
            FacenetError: one line naming the field.
        """
        fields.validate(self)
        if self.representative_data is not None and not os.path.isdir(self.representative_data):
            raise FacenetError(f"representative_data {self.representative_data!r} is not a folder")

    def min_cosine(self, variant: str) -> float:
        """The smallest cosine to the Keras model ``variant`` must reach."""
        if variant in ("dynamic", "int8"):
            return self.int8_min_cosine
        return tflite_lib.MIN_COSINE[variant]
