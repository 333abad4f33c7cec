"""Load a trained model (any artefact train.py or export.py writes) and embed images."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import numpy as np

from facenet_tf.data.reader import parse_image_size
from facenet_tf.errors import FacenetError, file_problem


class Embedder:
    """A loaded embedding model.

    Attributes:
        image_size: ``(H, W)`` the model takes.
        embedding_dim: D.
        contract: the model's :class:`~facenet_tf.models.contract.ModelContract` (a
            minimal one when it has no ``metadata.json``).
        fingerprint: identifies the weights; galleries and thresholds are tied to it.
        path: the artefact loaded.
        progress: optional callable receiving the number of files just embedded by
            :meth:`embed_files` (a progress bar's ``update``), or ``None``.
    """

    def __init__(self, fn, image_size: Tuple[int, int], embedding_dim: int, contract, fingerprint: str, path: str):
        self._fn = fn
        self.image_size = image_size
        self.embedding_dim = embedding_dim
        self.contract = contract
        self.fingerprint = fingerprint
        self.path = path
        self.progress = None

    @classmethod
    def load(cls, path: str) -> "Embedder":
        """Load any model form :func:`facenet_tf.models.loader.locate` accepts.

        Raises:
            FacenetError: nothing loadable at ``path``, or a corrupt file.
        """
        from facenet_tf.models.loader import load_serving

        m = load_serving(path)
        return cls(m.fn, m.image_size, m.embedding_dim, m.contract, m.fingerprint, m.path)

    def embed_pixels(self, pixels: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """float/uint8 ``[N,H,W,3]`` RGB 0..255 at :attr:`image_size` → float32 ``[N, D]``."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (*self.image_size, 3):
            raise FacenetError(f"expected images of shape [N, {self.image_size[0]}, {self.image_size[1]}, 3]; received {pixels.shape}")
        out = np.empty((len(pixels), self.embedding_dim), np.float32)
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start:start + batch_size].astype(np.float32)
            out[start:start + len(batch)] = np.asarray(self._fn(batch))
        return out

    def embed_files(self, paths: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Decode, resize and embed image files → float32 ``[N, D]``.

        Raises:
            FacenetError: naming the first file that cannot be read.
        """
        from facenet_tf.data.images import load_images  # TensorFlow: only when files are embedded

        require_files(paths)
        out = np.empty((len(paths), self.embedding_dim), np.float32)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            out[start:start + len(chunk)] = self.embed_pixels(load_images(chunk, self.image_size), batch_size)
            if self.progress is not None:
                self.progress(len(chunk))
        return out

    def threshold(self, which: str = "far") -> Optional[float]:
        """Calibrated distance threshold from the contract: ``"far"`` (at the target FAR) or ``"accuracy"``."""
        return self.contract.threshold(which) if self.contract is not None else None

    @property
    def distance(self) -> str:
        return self.contract.distance if self.contract is not None else "squared_l2"


def require_files(paths: Sequence[str]) -> None:
    """Raise :class:`FacenetError` naming the first missing file (and how many more), before any decoding."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problem = file_problem(missing[0])
        if problem == "not found":
            raise FacenetError(f"image file not found: {missing[0]}{more}")
        raise FacenetError(f"image file {missing[0]} {problem}{more}")


#: Input size of the raw-pixel and eigenface baselines (ORL's 112x92 halved).
RAW_PIXELS_SIZE = (56, 46)


class RawPixelEmbedder(Embedder):
    """Baseline "model": greyscale pixels, per-image standardised, flattened, unit-normalised.

    Gives the number a trained model must beat, through exactly the same evaluation code.
    """

    def __init__(self, image_size: Tuple[int, int] = RAW_PIXELS_SIZE):
        from facenet_tf.models.contract import minimal

        image_size = parse_image_size(image_size)
        dim = image_size[0] * image_size[1]
        super().__init__(self._embed, image_size, dim, minimal("raw_pixels", image_size, dim, "raw-pixels"),
                         "raw-pixels", "raw-pixels")

    @staticmethod
    def _embed(batch: np.ndarray) -> np.ndarray:
        grey = np.asarray(batch, np.float64).mean(axis=-1).reshape(len(batch), -1)
        grey -= grey.mean(axis=1, keepdims=True)
        return (grey / np.maximum(np.linalg.norm(grey, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def load_embedder(path: str, image_size=None) -> Embedder:
    """:meth:`Embedder.load`, or the :class:`RawPixelEmbedder` baseline for ``path == "raw-pixels"``."""
    if path == "raw-pixels":
        return RawPixelEmbedder(image_size or RAW_PIXELS_SIZE)
    return Embedder.load(path)


class EigenfaceEmbedder(RawPixelEmbedder):
    """Baseline: eigenfaces (Turk & Pentland 1991), PCA of greyscale standardised pixels.

    Fit on training images with :meth:`fit`; embeddings are the projections on the first
    ``components`` principal axes (not normalised), compared with squared L2 distance.
    """

    def __init__(self, image_size: Tuple[int, int] = RAW_PIXELS_SIZE, components: int = 50):
        super().__init__(image_size)
        self.components = components
        self._mean = None
        self._axes = None
        self._fn = self._project
        self.fingerprint = self.path = f"eigenfaces-{components}"

    def fit(self, paths: Sequence[str]) -> "EigenfaceEmbedder":
        """Fit the principal axes on the images at ``paths``."""
        from facenet_tf.data.images import load_images

        x = RawPixelEmbedder._embed(load_images(paths, self.image_size).astype(np.float32)).astype(np.float64)
        self._mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - self._mean, full_matrices=False)
        self._axes = vt[: self.components]
        self.embedding_dim = len(self._axes)
        return self

    def _project(self, batch: np.ndarray) -> np.ndarray:
        if self._axes is None:
            raise FacenetError("EigenfaceEmbedder.fit must be called before embedding")
        return ((RawPixelEmbedder._embed(batch) - self._mean) @ self._axes.T).astype(np.float32)
