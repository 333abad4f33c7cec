"""Changes to a recorded alignment: the ``--align-method`` / ``--face`` / ``--detector``
overrides (:func:`with_overrides`) and the fingerprint suffix naming an alignment that is not
the model's own (:func:`alignment_suffix`)."""

from __future__ import annotations

import dataclasses
from typing import Optional

from facenet_tf.faces.aligner import AlignConfig


def alignment_suffix(config: AlignConfig) -> str:
    """Fingerprint suffix of an alignment that is not the model's own: ``+aligned<size>`` for
    the default ArcFace alignment, ``+aligned<size>:<method>:<face>[:<detector>]`` for any other."""
    default = AlignConfig()
    if (config.method, config.face, config.padding, config.detector) == (
            default.method, default.face, default.padding, default.detector):
        return f"+aligned{config.size}"
    detector = "" if config.detector == default.detector else f":{config.detector}"
    return f"+aligned{config.size}:{config.method}:{config.face}{detector}"


def with_overrides(config: AlignConfig, method: Optional[str] = None, face: Optional[str] = None,
                   detector: Optional[str] = None) -> AlignConfig:
    """``config`` with the given fields replaced. A detector whose faces cannot serve the
    method (:func:`~facenet_tf.faces.detectors.check_method`) gives way to the one that can:
    a ``method`` alone moves a ``dlib_hog`` config to the first detector serving it
    (:func:`~facenet_tf.faces.detectors.detector_serving`: ``mtcnn``); a ``detector="dlib_hog"``
    alone moves the method to the first one it serves (``dlib_landmarks``). Both given and
    incompatible: the config's ``validate`` says so."""
    from facenet_tf.faces.detectors import check_method, detector_serving
    from facenet_tf.faces.methods import ALIGN_METHODS, faces_of

    chosen = dataclasses.replace(config, method=method or config.method, face=face or config.face,
                                 detector=detector or config.detector)
    if check_method(chosen.detector, faces_of(chosen.method)) is not None:
        if method and not detector:
            chosen = dataclasses.replace(chosen, detector=detector_serving(chosen.method))
        elif detector and not method:
            served = next(m for m in ALIGN_METHODS.names() if check_method(chosen.detector, faces_of(m)) is None)
            chosen = dataclasses.replace(chosen, method=served)
    return chosen
