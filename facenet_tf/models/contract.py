"""The model contract: what a saved model promises its users, written and read only here.

Every model directory, ``.keras`` file with a ``metadata.json`` beside it, and SavedModel
(``assets/metadata.json``) carries one :class:`ModelContract`: the input it takes, how
faces must be aligned for it, what its output means (dimension, normalisation, distance,
thresholds), which weights it describes (``fingerprint``) and where it came from. Its JSON
form is versioned (``"format": "facenet_tf/1"``); :meth:`ModelContract.from_json` checks
every field's type and refuses other formats, so no command trusts a metadata file blindly.
Every command takes the contract object, never the dict.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from facenet_tf import fields
from facenet_tf.errors import FacenetError
from facenet_tf.models.recorded import RecordedAlignment, RecordedTTA

#: The JSON form written today; :meth:`ModelContract.from_json` reads it.
FORMAT = "facenet_tf/1"
#: How a model built by :func:`facenet_tf.models.embedding.build_embedding_model` takes pixels.
PREPROCESSING = "float32 RGB pixels 0..255, resized bilinear (antialiased); per-image standardisation inside the model"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Same-person distance thresholds (in the contract's distance).

    Attributes:
        best_accuracy: the threshold of best balanced accuracy on the validation pairs.
        at_far: the threshold giving false accept rate ``far`` on them.
        far: that rate, or ``None`` when the threshold comes from elsewhere.
        source: where an imported threshold comes from, or ``None``.
    """

    best_accuracy: Optional[float] = None
    at_far: Optional[float] = None
    far: Optional[float] = None
    source: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ImportedFile:
    """The file an imported model was converted from.

    Attributes:
        file: its name (no folder).
        sha256: the SHA-256 of its bytes, hex.
        license: the licence of its weights.
    """

    file: str
    sha256: str
    license: str


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a model came from.

    Attributes:
        training_data: description of the data it was trained on, or ``None``.
        validation_identities: identities held out during training.
        pretrained_from: the :class:`ImportedFile` a model was converted from (a model
            fine-tuned from it keeps it), or ``None``.
        config: the :class:`~facenet_tf.training.TrainConfig` as JSON (its schema is the
            training package's, above this one), or ``None``.
    """

    training_data: Optional[str] = None
    validation_identities: Tuple[str, ...] = ()
    pretrained_from: Optional[ImportedFile] = None
    config: Optional[Dict[str, Any]] = None


@dataclasses.dataclass(frozen=True)
class ModelContract:
    """What a saved model promises.

    Attributes:
        architecture: the network: a backbone of
            :data:`facenet_tf.models.backbones.BACKBONES` (built by
            :func:`~facenet_tf.models.embedding.build_embedding_model`) or an imported one
            (``"dlib_resnet_v1"``, provided by an importer in
            :data:`facenet_tf.models.importers.IMPORTERS`).
        image_size: ``(H, W)`` pixels the model takes.
        embedding_dim: size of its output.
        normalized: whether outputs have unit L2 norm.
        distance: the distance its thresholds are in (:data:`facenet_tf.distances.DISTANCES`).
        fingerprint: :func:`facenet_tf.artifacts.fingerprint_weights` of the weights this
            contract describes.
        preprocessing: how pixels are fed (text for people; the model does the rest).
        alignment: how faces must be aligned for it
            (:class:`~facenet_tf.models.recorded.RecordedAlignment`), or ``None``: images are
            used as given.
        tta: the test-time augmentation the embedding commands apply unless ``--tta`` is given
            (:class:`~facenet_tf.models.recorded.RecordedTTA`), or ``None``: none.
        input_contract: an imported model's own input description, or ``None``.
        thresholds: :class:`Thresholds`, or ``None`` when none were measured.
        margin: the triplet margin it was trained with, or ``None``.
        loss: the loss it was trained with, or ``None``.
        provenance: :class:`Provenance`.
    """

    architecture: str
    image_size: Tuple[int, int]
    embedding_dim: int
    fingerprint: str
    normalized: bool = True
    distance: str = "squared_l2"
    preprocessing: str = PREPROCESSING
    alignment: Optional[RecordedAlignment] = None
    tta: Optional[RecordedTTA] = None
    input_contract: Optional[Dict[str, Any]] = None
    thresholds: Optional[Thresholds] = None
    margin: Optional[float] = None
    loss: Optional[str] = None
    provenance: Provenance = Provenance()

    def to_json(self) -> Dict[str, Any]:
        """The versioned JSON form (``metadata.json``)."""
        return {"format": FORMAT, **{f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    @classmethod
    def from_json(cls, values: Any, where: str = "metadata.json") -> "ModelContract":
        """Read the JSON form, checking the format and every field's type.

        Also reads the form written before the contract existed (same ``format``, with
        ``backbone``, flat ``training_data``/``config``/``pretrained_from`` keys), and files
        without ``alignment`` or ``tta`` (none recorded). ``alignment`` and ``tta`` are read by
        their records (:mod:`facenet_tf.models.recorded`: keys left out take the configs'
        defaults, unknown keys are kept and written back), so :meth:`to_json` gives back the
        object read.

        Raises:
            FacenetError: not an object, another format, or a field of the wrong type.
        """
        if not isinstance(values, dict):
            raise FacenetError(f"{where}: expected a JSON object; received {type(values).__name__}")
        if values.get("format") != FORMAT:
            raise FacenetError(f"{where}: format {values.get('format')!r} is not {FORMAT!r} "
                               "(written by another program or a newer facenet_tf)")
        values = _upgrade({k: v for k, v in values.items() if k != "format"})
        try:
            records = {name: None if values.get(name) is None else record.from_json(values[name], name)
                       for name, record in _RECORDS.items()}
            rest = {k: v for k, v in values.items() if k not in _RECORDS}
            contract = dataclasses.replace(fields.from_dict(cls, rest, where), **records)
            fields.validate(contract)
        except FacenetError as err:
            raise FacenetError(f"{where}: {err}") from None
        except TypeError as err:  # a required field missing
            raise FacenetError(f"{where}: {err}") from None
        return contract

    def inherit(self, **changes) -> "ModelContract":
        """This contract with ``changes`` (a fine-tuned model keeps how it is fed)."""
        return dataclasses.replace(self, **changes)

    def threshold(self, which: str = "far") -> Optional[float]:
        """The ``"far"`` (at the recorded FAR) or ``"accuracy"`` threshold, or ``None``."""
        if self.thresholds is None:
            return None
        return self.thresholds.at_far if which == "far" else self.thresholds.best_accuracy


# Fields whose JSON objects their record reads and writes (it keeps their shape; see recorded.py).
_RECORDS = {"alignment": RecordedAlignment, "tta": RecordedTTA}


def _json(value: Any) -> Any:
    return value.to_json() if isinstance(value, tuple(_RECORDS.values())) else fields.to_dict(value)


# Keys of the pre-contract form that now live elsewhere.
_PROVENANCE_KEYS = ("training_data", "validation_identities", "pretrained_from", "config")


def _upgrade(values: Dict[str, Any]) -> Dict[str, Any]:
    """The pre-contract ``facenet_tf/1`` dict in the contract's shape."""
    values = dict(values)
    backbone = values.pop("backbone", None)
    values.setdefault("architecture", backbone)
    provenance = dict(values.pop("provenance", None) or {})
    for key in _PROVENANCE_KEYS:
        if key in values:
            provenance[key] = values.pop(key)
    values["provenance"] = provenance
    if "normalized" not in values and isinstance(values.get("input_contract"), dict):
        values["normalized"] = bool(values["input_contract"].get("normalized", True))
    return values


def minimal(architecture: str, image_size: Tuple[int, int], embedding_dim: int, fingerprint: str,
            normalized: bool = True) -> ModelContract:
    """The contract of a model found without a ``metadata.json`` (no thresholds, no history)."""
    return ModelContract(architecture=architecture, image_size=tuple(image_size), embedding_dim=int(embedding_dim),
                         fingerprint=fingerprint, normalized=normalized)
