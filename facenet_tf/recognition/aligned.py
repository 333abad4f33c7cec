"""An embedder that aligns image files first, and the policy that gives a model its alignment.

:func:`policy_embedder` is the one place that decides how a model's photos become embeddings:
the alignment its contract records (an imported dlib model: dlib's detector, landmarks and
chip), ``--align`` / ``--no-align``, the ``--align-method`` / ``--face`` / ``--detector``
overrides, then test-time augmentation (recorded, or overridden).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner, aligned_chunks, parallel_workers
from facenet_tf.faces.overrides import alignment_suffix, with_overrides
from facenet_tf.serving.inference import Embedder, load_embedder, require_files
from facenet_tf.serving.tta import TTAConfig, with_tta

#: Images detected and aligned per step of :meth:`AlignedEmbedder.embed_files` (the unit the
#: next step is prepared ahead in, and the progress moves by).
ALIGN_CHUNK = 32


class AlignedEmbedder(Embedder):
    """``embedder`` with every image file aligned first, for models trained on aligned faces.

    ``embed_files`` detects and aligns each file (as :func:`~facenet_tf.faces.folder.align_directory`
    does), resizes the crop to the model's input size (as training does) and embeds it. With
    ``on_failure="resize"`` an image without a detected face still gets a chip (see
    :class:`AlignConfig`; with ``evidence=True`` only where a face is evident); with ``"skip"``
    it is an error. :attr:`counts` says how many images took each path. The fingerprint gets a
    suffix naming the alignment (:func:`~facenet_tf.faces.overrides.alignment_suffix`) unless
    the alignment is the model's own (recorded in its contract), so a gallery enrolled with one
    alignment is only ever queried with it. ``embed_pixels`` is unchanged (pixels are taken as
    given); :attr:`progress`, when set, receives the number of files just embedded.
    :attr:`workers` says where files are detected and aligned: 1 (default) in this process,
    the next chunk in a thread; N > 1 in N spawned processes; 0 chooses
    (:func:`~facenet_tf.faces.aligner.parallel_workers`: one per core for dlib's HOG detector,
    which holds the GIL). A script using processes must guard its entry point
    (``if __name__ == "__main__":``), as for any spawning code; the command line does.

    Raises:
        FacenetError: mtcnn missing; from ``embed_files``: a file without a face.
    """

    def __init__(self, embedder: Embedder, config: AlignConfig = AlignConfig(), own: bool = False, workers: int = 1):
        fingerprint = embedder.fingerprint if own else embedder.fingerprint + alignment_suffix(config)
        super().__init__(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.contract,
                         fingerprint, embedder.path)
        self.aligner = FaceAligner(config)
        self.counts = AlignCounts()
        self.workers = workers

    def embed_files(self, paths: Sequence[str], batch_size: int = 128, *, evidence: bool = False,
                    one_face: bool = False) -> np.ndarray:
        """Detect, align and embed image files → float32 ``[N, D]``, in chunks of
        :data:`ALIGN_CHUNK`: the next chunks are detected and aligned (in :attr:`workers`
        processes, see :func:`~facenet_tf.faces.aligner.parallel_workers`; else in a thread)
        while this one is embedded (:func:`~facenet_tf.faces.aligner.aligned_chunks`).
        ``evidence`` and ``one_face``: see :func:`~facenet_tf.faces.aligner.align_files`."""
        require_files(paths)
        out = np.empty((len(paths), self.embedding_dim), np.float32)
        done = 0
        chunks = aligned_chunks(self.aligner, paths, self.image_size, ALIGN_CHUNK,
                                parallel_workers(self.aligner, self.workers), evidence, one_face)
        with contextlib.closing(chunks):  # an error here stops the workers at once
            for faces, counts in chunks:
                out[done:done + len(faces)] = self.embed_pixels(faces, batch_size)
                done += len(faces)
                for field in dataclasses.fields(counts):
                    setattr(self.counts, field.name, getattr(self.counts, field.name) + getattr(counts, field.name))
                if self.progress is not None:
                    self.progress(len(faces))
        return out


def with_recorded_alignment(embedder: Embedder, workers: int = 1, **overrides) -> Embedder:
    """``embedder`` aligning image files the way its model's contract records (an imported
    dlib model: dlib's detector, landmarks and chip), or ``embedder`` itself when the model
    records no alignment. ``overrides`` (``method``, ``face``, ``detector``, ``detector_options``; see
    :func:`~facenet_tf.faces.overrides.with_overrides`) replace recorded fields; a gallery's
    fingerprint then changes (:func:`~facenet_tf.faces.overrides.alignment_suffix`).
    ``workers``: :attr:`AlignedEmbedder.workers`."""
    own = AlignConfig.from_contract(embedder.contract)
    if own is None:
        return embedder
    chosen = with_overrides(own, **overrides)
    return AlignedEmbedder(embedder, chosen, own=chosen == own, workers=workers)


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


def tta_config(contract, tta: Union[TTAConfig, Mapping, None] = None) -> TTAConfig:
    """The test-time augmentation to use: ``tta`` itself, or the one the contract records with
    the fields of a mapping ``tta`` replaced (``{"mode": "flip"}``), or the recorded one (``None``)."""
    if isinstance(tta, TTAConfig):
        return tta
    return dataclasses.replace(TTAConfig.from_contract(contract), **dict(tta or {}))


def policy_embedder(model: str, *, align: Optional[bool] = None, tta: Union[TTAConfig, Mapping, None] = None,
                    image_size=None, workers: int = 0, **overrides) -> Embedder:
    """The embedder of ``model`` (a path, or ``"raw-pixels"``) with its alignment and TTA policy.

    Args:
        align: ``None``: as the model records (no alignment if it records none; any override
            given then implies alignment, as ``--align`` does); ``False``: the inputs are
            chips (``--no-align``; overrides are ignored; a model recording an alignment gets
            the fingerprint suffix :data:`NO_ALIGNMENT_SUFFIX`); ``True``: align even when the
            model records none (the default :class:`AlignConfig` with the overrides).
        tta: see :func:`tta_config`.
        image_size: the raw-pixels baseline's size.
        workers: :attr:`AlignedEmbedder.workers` (0: processes where the detector needs them).
        overrides: ``method``, ``face``, ``detector``, ``detector_options`` (``None`` values are
            ignored).

    Raises:
        FacenetError: nothing loadable, a bad TTA or alignment setting.
    """
    overrides = {name: value for name, value in overrides.items() if value is not None}
    embedder = load_embedder(model, image_size)
    embedder = with_tta(embedder, tta_config(embedder.contract, tta))
    if align is False:
        return without_alignment(embedder)
    aligned = with_recorded_alignment(embedder, workers=workers, **overrides)
    if aligned is embedder and (align or overrides):
        return AlignedEmbedder(embedder, with_overrides(AlignConfig(), **overrides), workers=workers)
    return aligned
