"""An embedder that aligns image files first, for models trained on aligned faces."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional, Sequence

import numpy as np

from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner, aligned_chunks, parallel_workers
from facenet_tf.serving.inference import Embedder, require_files

#: Images detected and aligned per step of :meth:`AlignedEmbedder.embed_files` (the unit the
#: next step is prepared ahead in, and the progress moves by).
ALIGN_CHUNK = 32


class AlignedEmbedder(Embedder):
    """``embedder`` with every image file aligned first, for models trained on aligned faces.

    ``embed_files`` detects and aligns each file (as :func:`~facenet_tf.faces.folder.align_directory`
    does), resizes the crop to the model's input size (as training does) and embeds it. With
    ``on_failure="resize"`` an image without a detected face still gets a chip (see
    :class:`AlignConfig`); with ``"skip"`` it is an error. :attr:`counts` says how many images
    took each path. The fingerprint gets a suffix naming the alignment (:func:`alignment_suffix`)
    unless the alignment is the model's own (recorded in its contract), so a gallery enrolled
    with one alignment is only ever queried with it. ``embed_pixels`` is unchanged (pixels are
    taken as given); :attr:`progress`, when set, receives the number of files just embedded.
    :attr:`workers` says where files are detected and aligned: 1 (default) in this process,
    the next chunk in a thread; N > 1 in N spawned processes; 0 chooses
    (:func:`~facenet_tf.faces.aligner.parallel_workers`: one per core for dlib's HOG detector,
    which holds the GIL). A script using processes must guard its entry point
    (``if __name__ == "__main__":``), as for any spawning code; the command line does.

    Raises:
        FacenetError: mtcnn missing; from ``embed_files``: a file without a face (``"skip"``).
    """

    def __init__(self, embedder: Embedder, config: AlignConfig = AlignConfig(), own: bool = False, workers: int = 1):
        fingerprint = embedder.fingerprint if own else embedder.fingerprint + alignment_suffix(config)
        super().__init__(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.contract,
                         fingerprint, embedder.path)
        self.aligner = FaceAligner(config)
        self.counts = AlignCounts()
        self.workers = workers

    def embed_files(self, paths: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Detect, align and embed image files → float32 ``[N, D]``, in chunks of
        :data:`ALIGN_CHUNK`: the next chunks are detected and aligned (in :attr:`workers`
        processes, see :func:`~facenet_tf.faces.aligner.parallel_workers`; else in a thread)
        while this one is embedded (:func:`~facenet_tf.faces.aligner.aligned_chunks`)."""
        require_files(paths)
        out = np.empty((len(paths), self.embedding_dim), np.float32)
        done = 0
        chunks = aligned_chunks(self.aligner, paths, self.image_size, ALIGN_CHUNK,
                                parallel_workers(self.aligner, self.workers))
        with contextlib.closing(chunks):  # an error here stops the workers at once
            for faces, counts in chunks:
                out[done:done + len(faces)] = self.embed_pixels(faces, batch_size)
                done += len(faces)
                for field in dataclasses.fields(counts):
                    setattr(self.counts, field.name, getattr(self.counts, field.name) + getattr(counts, field.name))
                if self.progress is not None:
                    self.progress(len(faces))
        return out


def alignment_suffix(config: AlignConfig) -> str:
    """Fingerprint suffix of an alignment that is not the model's own: ``+aligned<size>`` for
    the default ArcFace alignment, ``+aligned<size>:<method>:<face>[:<detector>]`` for any other."""
    default = AlignConfig()
    if (config.method, config.face, config.padding, config.detector) == (
            default.method, default.face, default.padding, default.detector):
        return f"+aligned{config.size}"
    detector = "" if config.detector == default.detector else f":{config.detector}"
    return f"+aligned{config.size}:{config.method}:{config.face}{detector}"


#: Fingerprint suffix of a model that records an alignment, used on images taken as ready chips
#: (``--no-align``): its embeddings are not those of the model's own aligned faces.
NO_ALIGNMENT_SUFFIX = "+noalign"


def without_alignment(embedder: Embedder) -> Embedder:
    """``embedder`` taking image files as they are (ready chips). When its model records an
    alignment, the fingerprint gets :data:`NO_ALIGNMENT_SUFFIX`, so a gallery enrolled without
    the alignment never mixes with one enrolled with it; otherwise ``embedder`` itself."""
    if AlignConfig.from_contract(embedder.contract) is None:
        return embedder
    return Embedder(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.contract,
                    embedder.fingerprint + NO_ALIGNMENT_SUFFIX, embedder.path)


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


def with_recorded_alignment(embedder: Embedder, workers: int = 1, **overrides) -> Embedder:
    """``embedder`` aligning image files the way its model's contract records (an imported
    dlib model: dlib's detector, landmarks and chip), or ``embedder`` itself when the model
    records no alignment. ``overrides`` (``method``, ``face``, ``detector``; see
    :func:`with_overrides`) replace recorded fields; a gallery's fingerprint then changes
    (:func:`alignment_suffix`). ``workers``: :attr:`AlignedEmbedder.workers`."""
    own = AlignConfig.from_contract(embedder.contract)
    if own is None:
        return embedder
    chosen = with_overrides(own, **overrides)
    return AlignedEmbedder(embedder, chosen, own=chosen == own, workers=workers)
