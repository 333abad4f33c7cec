"""What a model's contract records about how it is fed: :class:`RecordedAlignment` and :class:`RecordedTTA`.

The configs that apply them (:class:`facenet_tf.faces.aligner.AlignConfig`,
:class:`facenet_tf.serving.tta.TTAConfig`) sit above :mod:`facenet_tf.models`, so the contract
keeps its own typed copy of their fields, and they build themselves from it
(``from_contract``). A record holds what the writer gave: a field left ``None`` was not
recorded and takes the config's default, so :meth:`to_json` writes back exactly the keys it
read (``metadata.json`` keeps its shape, and with it every fingerprint made from it). Keys a
record does not know (written by a newer facenet_tf) are kept in ``extra``, written back as
they were, and ignored by the configs. A ``null`` value reads as not recorded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from facenet_tf.errors import FacenetError


class _Recorded:
    """Reading and writing of a record's JSON object (the mixin of the records below)."""

    extra: Tuple[Tuple[str, Any], ...]

    @classmethod
    def from_json(cls, values: Any, name: str):
        """The record of the JSON object ``values``, the contract's field ``name``.

        Raises:
            FacenetError: ``values`` is not an object.
        """
        known = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        if not isinstance(values, dict):
            raise FacenetError(f"{name} must be an object of {', '.join(known)}; received {values!r}")
        extra = tuple(sorted((k, v) for k, v in values.items() if k not in known))
        return cls(**{k: v for k, v in values.items() if k in known}, extra=extra)

    def given(self) -> Dict[str, Any]:
        """The recorded fields, ``{name: value}``, without ``extra`` and those not recorded."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "extra" and getattr(self, f.name) is not None}

    def to_json(self) -> Dict[str, Any]:
        """The JSON object :meth:`from_json` read: the recorded fields and ``extra``."""
        return {**self.given(), **dict(self.extra)}


@dataclasses.dataclass(frozen=True)
class RecordedAlignment(_Recorded):
    """How faces must be aligned for a model: the fields of
    :class:`facenet_tf.faces.aligner.AlignConfig` (meanings there), each ``None`` where not
    recorded; ``extra``: ``(key, value)`` pairs this version does not know, sorted."""

    size: Optional[int] = None
    min_confidence: Optional[float] = None
    on_failure: Optional[str] = None
    method: Optional[str] = None
    padding: Optional[float] = None
    face: Optional[str] = None
    detector: Optional[str] = None
    hog_upsample: Optional[int] = None
    detector_options: Optional[Tuple[str, ...]] = None
    extra: Tuple[Tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class RecordedTTA(_Recorded):
    """The test-time augmentation a model is used with: the fields of
    :class:`facenet_tf.serving.tta.TTAConfig` (meanings there), each ``None`` where not
    recorded; ``extra`` as in :class:`RecordedAlignment`."""

    mode: Optional[str] = None
    jitters: Optional[int] = None
    seed: Optional[int] = None
    extra: Tuple[Tuple[str, Any], ...] = ()
