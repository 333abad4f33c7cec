"""An embedder that aligns image files first, for models trained on aligned faces."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from facenet_tf.faces.aligner import AlignConfig, FaceAligner, align_files
from facenet_tf.serving.inference import Embedder, require_files


class AlignedEmbedder(Embedder):
    """``embedder`` with every image file aligned first, for models trained on aligned faces.

    ``embed_files`` detects and aligns each file (as :func:`~facenet_tf.faces.folder.align_directory`
    does), resizes the crop to the model's input size (as training does) and embeds it. With
    ``on_failure="resize"`` an image without a detected face is used whole, resized, and
    counted in :attr:`whole_image`; with ``"skip"`` it is an error. The fingerprint gets an
    ``+aligned<size>`` suffix unless the alignment is the model's own (recorded in its
    metadata), so a gallery enrolled with alignment is only ever queried with it.
    ``embed_pixels`` is unchanged (pixels are taken as given).

    Raises:
        FacenetError: mtcnn missing; from ``embed_files``: a file without a face (``"skip"``).
    """

    def __init__(self, embedder: Embedder, config: AlignConfig = AlignConfig(), own: bool = False):
        fingerprint = embedder.fingerprint if own else f"{embedder.fingerprint}+aligned{config.size}"
        super().__init__(embedder._fn, embedder.image_size, embedder.embedding_dim, embedder.metadata,
                         fingerprint, embedder.path)
        self.aligner = FaceAligner(config)
        self.aligned = 0
        self.whole_image = 0

    def embed_files(self, paths: Sequence[str], batch_size: int = 128) -> np.ndarray:
        require_files(paths)
        faces, fallbacks = align_files(self.aligner, paths, self.image_size)
        self.aligned += len(paths) - fallbacks
        self.whole_image += fallbacks
        return self.embed_pixels(faces, batch_size)


def with_recorded_alignment(embedder: Embedder) -> Embedder:
    """``embedder`` aligning image files the way its model's metadata records (an imported
    dlib model: MTCNN onto dlib's chip, the whole image where no face is found), or
    ``embedder`` itself when the model records no alignment."""
    own = AlignConfig.from_metadata(embedder.metadata)
    return embedder if own is None else AlignedEmbedder(embedder, own, own=True)
