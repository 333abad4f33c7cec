"""An embedder that aligns image files first, for models trained on aligned faces."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner, align_files
from facenet_tf.serving.inference import Embedder, require_files


class AlignedEmbedder(Embedder):
    """``embedder`` with every image file aligned first, for models trained on aligned faces.

    ``embed_files`` detects and aligns each file (as :func:`~facenet_tf.faces.folder.align_directory`
    does), resizes the crop to the model's input size (as training does) and embeds it. With
    ``on_failure="resize"`` an image without a detected face still gets a chip (see
    :class:`AlignConfig`); with ``"skip"`` it is an error. :attr:`counts` says how many images
    took each path. The fingerprint gets a suffix naming the alignment (:func:`alignment_suffix`)
    unless the alignment is the model's own (recorded in its contract), so a gallery enrolled
    with one alignment is only ever queried with it. ``embed_pixels`` is unchanged (pixels are
    taken as given); :attr:`progress`, when set, receives 1 per aligned file.

    Raises:
        FacenetError: mtcnn missing; from ``embed_files``: a file without a face (``"skip"``).
    """

    def __init__(self, embedder: Embedder, config: AlignConfig = AlignConfig(), own: bool = False):
        fingerprint = embedder.fingerprint if own else embedder.fingerprint + alignment_suffix(config)
        super().__init__(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.contract,
                         fingerprint, embedder.path)
        self.aligner = FaceAligner(config)
        self.counts = AlignCounts()

    def embed_files(self, paths: Sequence[str], batch_size: int = 128) -> np.ndarray:
        require_files(paths)
        faces, counts = align_files(self.aligner, paths, self.image_size, self.progress)
        for field in dataclasses.fields(counts):
            setattr(self.counts, field.name, getattr(self.counts, field.name) + getattr(counts, field.name))
        return self.embed_pixels(faces, batch_size)


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
    a ``method`` alone moves a ``dlib_hog`` config to ``mtcnn``; a ``detector="dlib_hog"``
    alone moves the method to ``dlib_landmarks``. Both given and incompatible: the config's
    ``validate`` says so."""
    from facenet_tf.faces.detectors import SERVES, check_method

    chosen = dataclasses.replace(config, method=method or config.method, face=face or config.face,
                                 detector=detector or config.detector)
    if check_method(chosen.detector, chosen.method) is not None:
        if method and not detector:
            chosen = dataclasses.replace(chosen, detector="mtcnn")
        elif detector and not method:
            chosen = dataclasses.replace(chosen, method=SERVES[chosen.detector][0])
    return chosen


def with_recorded_alignment(embedder: Embedder, **overrides) -> Embedder:
    """``embedder`` aligning image files the way its model's contract records (an imported
    dlib model: dlib's detector, landmarks and chip), or ``embedder`` itself when the model
    records no alignment. ``overrides`` (``method``, ``face``, ``detector``; see
    :func:`with_overrides`) replace recorded fields; a gallery's fingerprint then changes
    (:func:`alignment_suffix`)."""
    own = AlignConfig.from_contract(embedder.contract)
    if own is None:
        return embedder
    chosen = with_overrides(own, **overrides)
    return AlignedEmbedder(embedder, chosen, own=chosen == own)
