"""Exact k-nearest-neighbour search over enrolled embeddings, with NumPy or faiss.

Whatever selects the candidates, the distances returned are recomputed with
:func:`facenet_tf.distances.pairwise_distances_numpy`, so a threshold means the same thing
on every backend. faiss-cpu (optional extra ``[index]``) uses flat, hence exact, indexes
chosen by the distance's table entry (:class:`facenet_tf.distances.Distance`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from facenet_tf import distances as distances_lib
from facenet_tf.errors import FacenetError
from facenet_tf.registry import Registry

# Bounds the (queries x gallery rows) distance block, and the temporaries
# pairwise_distances_numpy makes from it, to a few tens of MB.
_QUERY_CHUNK = 4096
_MAX_BLOCK_ROWS = 65_536
_BLOCK_ELEMENTS = 2**22


def import_faiss():
    """The faiss module, or a :class:`FacenetError` naming the extra to install."""
    try:
        import faiss
    except ImportError as error:
        raise FacenetError(
            "index='faiss' needs faiss: install facenet_tf[index] (faiss-cpu)"
        ) from error
    return faiss


class NumpySearch:
    """Exact search by blocks of :func:`facenet_tf.distances.pairwise_distances_numpy`."""

    #: ``"auto"`` takes the installed backend with the largest ``auto_from`` the gallery reaches.
    auto_from = 0

    @staticmethod
    def require() -> None:
        """Raise :class:`FacenetError` naming what to install when this backend cannot run (here: never)."""

    def __init__(self, embeddings: np.ndarray, distance: str):
        self.embeddings, self.distance = embeddings, distance

    def search(self, queries: np.ndarray, k: int):
        q = len(queries)
        block = max(k, min(_MAX_BLOCK_ROWS, _BLOCK_ELEMENTS // q))
        best_d = np.empty((q, 0))
        best_r = np.empty((q, 0), np.int64)
        for start in range(0, len(self.embeddings), block):
            d = distances_lib.pairwise_distances_numpy(
                queries, self.embeddings[start : start + block], metric=self.distance
            )
            d = np.asarray(d, dtype=np.float64)
            rows = np.broadcast_to(np.arange(start, start + d.shape[1]), d.shape)
            best_d = np.concatenate([best_d, d], axis=1)
            best_r = np.concatenate([best_r, rows], axis=1)
            if best_d.shape[1] > k:
                keep = np.argpartition(best_d, k - 1, axis=1)[:, :k]
                best_d = np.take_along_axis(best_d, keep, axis=1)
                best_r = np.take_along_axis(best_r, keep, axis=1)
        return _sorted(best_d, best_r)


class FaissSearch:
    """faiss flat (exact) index picks the candidates; distances come from the shared definition."""

    # Below this many entries a NumPy scan is as fast as faiss and needs no extra install.
    auto_from = 50_000

    @staticmethod
    def require() -> None:
        import_faiss()

    def __init__(self, embeddings: np.ndarray, distance: str):
        faiss = import_faiss()
        self.embeddings, self.distance = embeddings, distance
        self._metric = distances_lib.get(distance)
        dim = embeddings.shape[1]
        if self._metric.faiss_unit_inner_product:
            self._index = faiss.IndexFlatIP(dim)
            self._index.add(distances_lib.unit_rows_numpy(embeddings).astype(np.float32))
        else:
            self._index = faiss.IndexFlatL2(dim)
            self._index.add(embeddings)

    def search(self, queries: np.ndarray, k: int):
        faiss_queries = queries
        if self._metric.faiss_unit_inner_product:
            faiss_queries = distances_lib.unit_rows_numpy(queries).astype(np.float32)
        _, rows = self._index.search(faiss_queries, k)
        rows = rows.astype(np.int64)
        # faiss only picks the candidates: its L2 (||q||² + ||g||² - 2 q·g in float32) and
        # inner products round differently, so the distances come from the one shared
        # definition, and thresholds tuned on one backend hold on the other.
        d = np.empty(rows.shape)
        step = 64  # (step x step*k) block per call; only its diagonal k-blocks are used
        for start in range(0, len(queries), step):
            qs = queries[start : start + step]
            candidates = self.embeddings[rows[start : start + step].ravel()]
            block = distances_lib.pairwise_distances_numpy(qs, candidates, metric=self.distance)
            block = np.asarray(block, dtype=np.float64).reshape(len(qs), len(qs), k)
            d[start : start + step] = block[np.arange(len(qs)), np.arange(len(qs))]
        return _sorted(d, rows)


#: Search backends: ``(embeddings [n, dim] float32, distance) -> object with search(queries, k)``,
#: with ``require()`` (the install hint) and ``auto_from`` (entries from which ``"auto"`` picks it;
#: ``None``: never). Adding one (an approximate index, say) is one registration plus its tests;
#: the gallery names none of them.
SEARCH_BACKENDS = Registry("index", "--index")
SEARCH_BACKENDS.register("numpy", NumpySearch, help="exact, NumPy blocks")
SEARCH_BACKENDS.register("faiss", FaissSearch, help="exact, faiss flat index (extra [index])")

#: The index name that picks a backend by the gallery's size.
AUTO = "auto"


def require_backend(name: str) -> str:
    """``name`` when it is :data:`AUTO` or a registered backend that can run here.

    Raises:
        FacenetError: an unknown name (the choices), or a backend whose package is missing (the extra).
    """
    if name != AUTO:
        SEARCH_BACKENDS.get(name, "index").require()
    return name


def choose_backend(name: str, entries: int) -> str:
    """The backend a search over ``entries`` rows uses: ``name``, or for :data:`AUTO` the installed
    backend with the largest ``auto_from`` that ``entries`` reaches."""
    if name != AUTO:
        return name
    usable = [e for e in SEARCH_BACKENDS.entries()
              if _auto_from(e.value) is not None and entries >= _auto_from(e.value) and _installed(e.value)]
    return max(usable, key=lambda e: _auto_from(e.value)).name


def auto_help() -> str:
    """How :data:`AUTO` chooses, for ``--index``'s help."""
    steps = sorted((_auto_from(e.value), e.name) for e in SEARCH_BACKENDS.entries() if _auto_from(e.value) is not None)
    return f"{AUTO}: " + ", ".join(f"{name} from {start} entries" for start, name in steps) + " (when installed)"


def _auto_from(backend) -> Optional[int]:
    """The size from which :data:`AUTO` picks ``backend``; ``None`` (never by itself) for a backend
    that declares none."""
    return getattr(backend, "auto_from", None)


def _installed(backend) -> bool:
    try:
        backend.require()
    except FacenetError:
        return False
    return True


class EmbeddingIndex:
    """Exact k-nearest-neighbour search over an in-memory ``(n, dim)`` float32 matrix.

    The search code path of :class:`facenet_tf.gallery.Gallery`, usable on its own (the
    benchmark does).

    Args:
        embeddings: ``(n, dim)`` array; kept without a copy if already C-contiguous
            float32.
        distance: one of :data:`facenet_tf.distances.DISTANCES`; default ``"squared_l2"``.
        backend: a name in :data:`SEARCH_BACKENDS`: ``"numpy"`` (default) or ``"faiss"``
            (holds its own copy).

    Raises:
        FacenetError: bad option, not a 2-D array, or faiss asked for but not installed.
    """

    def __init__(self, embeddings, distance="squared_l2", backend="numpy"):
        distances_lib.get(distance)
        self.distance = distance
        self.backend = SEARCH_BACKENDS.check(backend, "backend")
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise FacenetError(
                f"embeddings must have shape (n, dim); received shape {self.embeddings.shape}"
            )
        self._searcher = SEARCH_BACKENDS.build(backend, self.embeddings, distance)

    def __len__(self):
        return len(self.embeddings)

    def search(self, queries, k=1):
        """Return the ``min(k, n)`` nearest rows of each query, nearest first.

        Args:
            queries: ``(q, dim)`` float32 array.
            k: neighbours per query, >= 1.

        Returns:
            ``(distances, rows)``: ``(q, min(k, n))`` float64 distances from
            ``pairwise_distances_numpy`` and int64 row numbers; ties go to the lower row.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self.embeddings))
        if k == 0 or len(queries) == 0:
            return np.empty((len(queries), k)), np.empty((len(queries), k), np.int64)
        parts = [
            self._searcher.search(queries[start : start + _QUERY_CHUNK], k)
            for start in range(0, len(queries), _QUERY_CHUNK)
        ]
        return np.concatenate([d for d, _ in parts]), np.concatenate([r for _, r in parts])


def _sorted(distances, rows):
    order = np.lexsort((rows, distances), axis=-1)  # by distance, then row
    return np.take_along_axis(distances, order, 1), np.take_along_axis(rows, order, 1)
