"""A gallery's own threshold, calibrated on the user's labelled people: :class:`Calibration`.

``facenet-tf gallery calibrate`` (:func:`facenet_tf.recognition.calibration.calibrate_gallery`)
embeds a folder of labelled people the way ``enroll`` does, measures every same-person (genuine)
and different-person (impostor) pair, and chooses the largest threshold whose false-accept rate
stays within the target (:func:`facenet_tf.evaluation.labelled.threshold_at_far`). The choice and
the rates it gives are stored in the gallery's ``meta`` table under :data:`CALIBRATION_KEY` (one JSON text), so
``identify`` and ``verify`` use it unless ``--threshold`` is given (:func:`threshold_choice`).

Resolution: with ``N`` impostor pairs the smallest FAR that can be told from zero is ``1/N``;
a target below it gives the threshold that accepted no impostor of these pairs
(:attr:`Calibration.far_resolution` says so).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import NamedTuple, Optional

from facenet_tf.errors import FacenetError

#: The gallery ``meta`` key holding the calibration's JSON.
CALIBRATION_KEY = "calibration"
#: Where a threshold came from: ``--threshold``, the gallery's calibration, the model's metadata.
SOURCES = ("flag", "gallery calibration", "model")


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A threshold chosen on labelled people, with the rates it gives on them.

    Attributes:
        threshold: largest accepted distance (the model's distance).
        far_target: the false-accept rate asked for.
        far: the false-accept rate measured at ``threshold`` (<= ``far_target``).
        tar: the true-accept rate measured at ``threshold``.
        num_genuine: same-person pairs measured.
        num_impostor: different-person pairs measured.
        num_people: people in the labelled folder.
        num_images: images embedded.
        data_dir: the labelled folder.
        distance: the distance the threshold is in.
    """

    threshold: float
    far_target: float
    far: float
    tar: float
    num_genuine: int
    num_impostor: int
    num_people: int
    num_images: int
    data_dir: str
    distance: str

    @property
    def far_resolution(self) -> float:
        """The smallest non-zero FAR these impostor pairs can measure: ``1 / num_impostor``."""
        return 1.0 / self.num_impostor

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "gallery") -> "Calibration":
        """Parse a stored calibration.

        Raises:
            FacenetError: the text is not a calibration record (names ``where``).
        """
        try:
            record = json.loads(text)
            return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})
        except (ValueError, TypeError, KeyError):
            raise FacenetError(f"{where}: the stored calibration is unreadable; run facenet-tf gallery calibrate "
                               "again") from None

    def describe(self) -> str:
        """One line: threshold, target, measured rates and pair counts."""
        return (f"threshold {self.threshold:.4f} ({self.distance}) at FAR <= {self.far_target:g}: measured FAR "
                f"{self.far:.2e}, TAR {self.tar:.4f} on {self.num_genuine} genuine and {self.num_impostor} impostor "
                f"pairs of {self.num_people} people ({self.num_images} images)")


def stored_calibration(meta: dict, where: str = "gallery") -> Optional[Calibration]:
    """The calibration a gallery's ``meta`` rows hold, or None."""
    text = meta.get(CALIBRATION_KEY)
    return None if text is None else Calibration.from_json(text, where)


class ThresholdChoice(NamedTuple):
    """The threshold used and where it came from (one of :data:`SOURCES`)."""

    value: float
    source: str

    def describe(self) -> str:
        return f"threshold {self.value:.4f} ({self.source})"


def threshold_choice(embedder, threshold: Optional[float] = None, gallery_meta: Optional[dict] = None,
                     where: str = "gallery") -> ThresholdChoice:
    """``threshold`` if given; else the gallery's calibration (``gallery_meta``, when it holds one);
    else the model's calibrated threshold at its target FAR.

    Raises:
        FacenetError: none of the three; an unreadable stored calibration; a calibration in
            another distance than the model's.
    """
    if threshold is not None:
        return ThresholdChoice(float(threshold), SOURCES[0])
    stored = stored_calibration(gallery_meta or {}, where)
    if stored is not None:
        if stored.distance != embedder.distance:
            raise FacenetError(f"{where} is calibrated in {stored.distance} distance, the model measures "
                               f"{embedder.distance}: calibrate again or pass --threshold")
        return ThresholdChoice(float(stored.threshold), SOURCES[1])
    calibrated = embedder.threshold("far")
    if calibrated is None and os.path.exists(embedder.path):
        from facenet_tf.models.loader import metadata_of

        if metadata_of(embedder.path) is None:
            raise FacenetError(f"model {embedder.path} has no metadata.json beside it, where a trained model records "
                               "its calibrated threshold: restore it, or pass --threshold")
    if calibrated is None:
        raise FacenetError(
            f"model {embedder.path} records no calibrated threshold (trained without validation identities?): "
            "pass --threshold, or calibrate a gallery (facenet-tf gallery calibrate)"
        )
    return ThresholdChoice(float(calibrated), SOURCES[2])
