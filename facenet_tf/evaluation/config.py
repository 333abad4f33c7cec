"""The configuration of one evaluation: :class:`EvaluateConfig`.

``facenet-tf evaluate``'s flags are generated from it (:mod:`facenet_tf.cli.config_flags`),
so each option's help, type, range and default live here only. How images become
embeddings (the model, its alignment, test-time augmentation) is the embedder's business
(:meth:`facenet_tf.recognition.FaceRecognizer.load`); this config says what is measured.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from facenet_tf import fields
from facenet_tf.data.reader import MAX_PIXELS, ImageLimits
from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.labelled import MAX_PAIRS
from facenet_tf.fields import setting
from facenet_tf.serving.inference import RAW_PIXELS_SIZE


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What ``evaluate`` measures, on which images.

    Each field's help, type and range is its :func:`~facenet_tf.fields.setting`.
    ``data_dir`` must be given. With ``pairs`` the LFW protocol runs on that file's pairs
    (images under ``data_dir``); without, pairs are formed from the identity folders.
    """

    data_dir: Optional[str] = setting(
        None, "folder with one sub-folder per identity (or LFW's image root with --pairs); required")
    pairs: Optional[str] = setting(None, "LFW pairs.txt (View 2 or a plain list); unset: all pairs of --data-dir")
    max_pairs: int = setting(MAX_PAIRS, "cap on pairs formed from a folder", low=2, high=100_000_000)
    distance: Optional[str] = setting(None, "override the model's distance", choices=DISTANCES)
    one_shot: bool = setting(False, "also enrol K images per identity and identify the rest")
    enrol_per_identity: int = setting(1, "K for --one-shot", low=1, high=10_000)
    unknown_identities: Optional[int] = setting(
        None, "strangers for open-set figures (unset: 20% of identities)", low=0, high=10_000_000)
    image_size: Tuple[int, int] = setting(RAW_PIXELS_SIZE, "N or HxW; only for --model raw-pixels",
                                          low=16, high=2048)
    seed: int = setting(0, "seeds pair sampling, folds and the enrolment choice", low=0, high=2**31 - 1)
    strict: bool = setting(False, "stop at the first bad image file or unreadable folder (default: skip it, "
                                  "count it per reason)")
    max_image_pixels: int = setting(MAX_PIXELS, "refuse images above this many pixels, read from their header",
                                    low=1, high=1_000_000_000)

    def __post_init__(self):
        if isinstance(self.image_size, (str, int)) and not isinstance(self.image_size, bool):
            from facenet_tf.data.reader import parse_image_size

            object.__setattr__(self, "image_size", parse_image_size(self.image_size))

    def validate(self) -> None:
        """Check every field's type and range before any image is read.

        Raises:
            FacenetError: one line naming the field.
        """
        fields.validate(self)
        if self.data_dir is None:
            raise FacenetError("--data-dir is required: a folder with one sub-folder per identity")


def evaluate(embedder, config: EvaluateConfig, report=None, pairs_out: Optional[list] = None) -> Dict[str, Any]:
    """Run the evaluation ``config`` describes with ``embedder``; ``pairs_out``: when a list, the
    measured pairs are appended to it (:class:`~facenet_tf.evaluation.report_html.PairDistances`).

    Returns:
        The figures of :func:`facenet_tf.evaluation.report.evaluate_lfw_pairs` (with
        ``pairs``) or :func:`~facenet_tf.evaluation.report.evaluate_folder`.

    Raises:
        FacenetError: a bad config, folder or pairs file.
    """
    from facenet_tf.evaluation.report import evaluate_folder, evaluate_lfw_pairs

    config.validate()
    limits = ImageLimits.from_config(config)
    if config.pairs:
        return evaluate_lfw_pairs(embedder, config.pairs, config.data_dir, config.distance, report=report,
                                  limits=limits, pairs_out=pairs_out)
    return evaluate_folder(embedder, config.data_dir, config.distance, config.max_pairs, config.one_shot,
                           config.enrol_per_identity, config.unknown_identities, config.seed, report=report,
                           limits=limits, pairs_out=pairs_out)
