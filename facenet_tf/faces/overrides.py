"""Changes to a recorded alignment: the ``--align-method`` / ``--face`` / ``--detector`` /
``--detector-options`` overrides (:func:`with_overrides`) and the fingerprint suffix naming an alignment that is not
the model's own (:func:`alignment_suffix`)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from facenet_tf.faces.aligner import AlignConfig


def alignment_suffix(config: AlignConfig) -> str:
    """Fingerprint suffix of an alignment that is not the model's own: ``+aligned<size>`` for
    the default ArcFace alignment, ``+aligned<size>:<method>:<face>[:<detector>][:<options>]``
    for any other (``<options>``: the ``detector_options`` given, joined by commas)."""
    default = AlignConfig()
    if (config.method, config.face, config.padding, config.detector, config.detector_options) == (
            default.method, default.face, default.padding, default.detector, default.detector_options):
        return f"+aligned{config.size}"
    detector = "" if config.detector == default.detector else f":{config.detector}"
    options = f":{','.join(config.detector_options)}" if config.detector_options else ""
    return f"+aligned{config.size}:{config.method}:{config.face}{detector}{options}"


def with_overrides(config: AlignConfig, method: Optional[str] = None, face: Optional[str] = None,
                   detector: Optional[str] = None, detector_options: Optional[Sequence[str]] = None) -> AlignConfig:
    """``config`` with the given fields replaced. A detector whose faces cannot serve the
    method (:func:`~facenet_tf.faces.detectors.check_method`) gives way to the one that can:
    a ``method`` alone moves a ``dlib_hog`` config to the first detector serving it
    (:func:`~facenet_tf.faces.detectors.detector_serving`: ``mtcnn``); a ``detector="dlib_hog"``
    alone moves the method to the first one it serves (``dlib_landmarks``). Both given and
    incompatible: the config's ``validate`` says so. ``detector_options`` given replace the
    config's; else a new detector drops them (they were the settings of the one it replaces)."""
    from facenet_tf.faces.detectors import check_method, detector_serving
    from facenet_tf.faces.methods import ALIGN_METHODS, faces_of

    chosen = dataclasses.replace(config, method=method or config.method, face=face or config.face,
                                 detector=detector or config.detector)
    if detector_options is not None:
        chosen = dataclasses.replace(chosen, detector_options=tuple(detector_options))
    elif chosen.detector != config.detector:  # the options were the other detector's settings
        chosen = dataclasses.replace(chosen, detector_options=())
    if check_method(chosen.detector, faces_of(chosen.method)) is not None:
        if method and not detector:
            chosen = dataclasses.replace(chosen, detector=detector_serving(chosen.method))
        elif detector and not method:
            served = next(m for m in ALIGN_METHODS.names() if check_method(chosen.detector, faces_of(m)) is None)
            chosen = dataclasses.replace(chosen, method=served)
    return chosen
