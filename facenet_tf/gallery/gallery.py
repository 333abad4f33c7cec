"""The gallery of one-shot recognition: enrol people, search and identify them.

A :class:`Gallery` is one SQLite file (:mod:`facenet_tf.gallery.store`) holding who was
enrolled (name, embedding, source image, time) and which model produced the embeddings.
Embeddings from another model live in another space, so a gallery refuses to open for a
model whose fingerprint or embedding size differs from the one that built it. Search is
exact k-nearest-neighbour under the gallery's distance (:mod:`facenet_tf.gallery.index`);
the identify rule is ``known ⇔ distance(query, nearest entry) <= threshold``.

Example::

    with Gallery.open("staff.gallery", fingerprint, 128) as gallery:
        gallery.enroll(["ada", "alan"], embeddings, sources=["ada.jpg", "alan.jpg"])
        matches = gallery.identify(query_embeddings, threshold=1.1)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import unicodedata
from typing import NamedTuple

import numpy as np

from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.gallery.index import EmbeddingIndex, choose_backend, require_backend
from facenet_tf.gallery.store import GalleryStore



class Neighbor(NamedTuple):
    """One gallery entry near a query, as returned by :meth:`Gallery.search`."""

    name: str
    distance: float
    entry_id: int


@dataclasses.dataclass(frozen=True)
class Match:
    """The answer of :meth:`Gallery.identify` for one query.

    Attributes:
        name: the nearest entry's name, or ``None`` ("unknown") when its distance is
            above the threshold or the gallery is empty.
        distance: distance to the nearest entry; ``inf`` for an empty gallery.
        entry_id: id of the nearest entry, even when ``name`` is ``None``; ``None`` for
            an empty gallery.
        nearest_name: the nearest entry's name, even when ``name`` is ``None``.
    """

    name: str | None
    distance: float
    entry_id: int | None
    nearest_name: str | None


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Gallery:
    """A persistent, model-bound set of enrolled face embeddings. Use :meth:`open`.

    Each :meth:`enroll` or :meth:`remove` is one SQLite transaction (WAL journal), so a
    process killed midway leaves only whole enrolments. Embeddings are read into memory
    on the first search and reread after this gallery's own writes or another
    connection's commits.
    """

    def __init__(self, store: GalleryStore, index: str):
        meta = store.meta
        self.path = store.path
        self.model_fingerprint = meta["model_fingerprint"]
        self.embedding_dim = int(meta["embedding_dim"])
        self.distance = meta["distance"]
        self.created = meta["created"]
        self.index = index
        self._store = store
        self._cache = None  # (data_version, EmbeddingIndex, ids, names)

    @classmethod
    def open(
        cls, path, model_fingerprint, embedding_dim, distance=None, create=True, index="auto", read_only=False
    ):
        """Open the gallery at ``path``, creating it if absent and ``create`` is true.

        Args:
            path: gallery file (str or path-like).
            model_fingerprint: non-empty string identifying the embedding model.
            embedding_dim: embedding size of that model, a positive int.
            distance: one of :data:`facenet_tf.distances.DISTANCES`, fixed when the
                gallery is created. Default ``None``: ``"squared_l2"`` for a new gallery,
                the stored one for an existing gallery.
            create: create a missing gallery (written to a temporary file, then moved
                into place). Default ``True``.
            index: a name in :data:`~facenet_tf.gallery.index.SEARCH_BACKENDS`, or ``"auto"``
                (default: by the gallery's size, :func:`~facenet_tf.gallery.index.choose_backend`).
            read_only: open an existing gallery for reading only (search, identify, list), so a
                gallery this process may not write can still be read. Default ``False``.

        Returns:
            An open :class:`Gallery`; also a context manager that closes it.

        Raises:
            FacenetError: bad argument; missing file with ``create=False``; a file that
                is not a facenet_tf gallery; a gallery built by another model (fingerprint
                or dim) or with another ``distance``; a backend whose package is missing.
        """
        path = os.fspath(path)
        if not isinstance(model_fingerprint, str) or not model_fingerprint:
            raise FacenetError(
                f"model_fingerprint must be a non-empty string; received {model_fingerprint!r}"
            )
        if not _is_int(embedding_dim) or embedding_dim < 1:
            raise FacenetError(
                f"embedding_dim must be a positive integer; received {embedding_dim!r}"
            )
        if distance is not None:
            check_choice("distance", distance, DISTANCES)
        require_backend(index)  # fail now, not at the first search
        create_meta = None
        if create and not read_only:
            create_meta = {"model_fingerprint": model_fingerprint, "embedding_dim": str(int(embedding_dim)),
                           "distance": distance or "squared_l2"}
        store = GalleryStore.open(path, create_meta, read_only=read_only)
        try:
            _check_model(path, store.meta, model_fingerprint, int(embedding_dim), distance)
        except FacenetError:
            store.close()
            raise
        return cls(store, index)

    def close(self):
        """Close the database connection; the gallery cannot be used afterwards."""
        self._store.close()
        self._cache = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __len__(self):
        return self._store.count()

    def __repr__(self):
        return (
            f"Gallery({self.path!r}, model_fingerprint={self.model_fingerprint!r}, "
            f"embedding_dim={self.embedding_dim}, distance={self.distance!r})"
        )

    def enroll(self, names, embeddings, sources=None):
        """Add entries, all or none, in one transaction.

        Args:
            names: sequence of ``n`` non-empty printable strings (no newline or other control
                character: a name is printed one per line), stored as :func:`normalize_name`
                makes them; a name may repeat (several images of one person) and may already
                be enrolled.
            embeddings: ``(n, embedding_dim)`` finite numbers, stored as float32;
                non-zero rows for a cosine gallery.
            sources: optional sequence of ``n`` source paths (str, path-like or None).

        Returns:
            The new entries' ids (list of ``n`` ints), in input order.

        Raises:
            FacenetError: any invalid name, source or embedding; nothing is written.
        """
        if isinstance(names, str):
            raise FacenetError(
                f"names must be a sequence of strings; received the string {names!r}"
            )
        names = normalize_names(names)
        vectors = self._check_embeddings(embeddings, "embeddings")
        if len(names) != len(vectors):
            raise FacenetError(
                f"names and embeddings must have the same length; received {len(names)} "
                f"names and {len(vectors)} embeddings"
            )
        sources = [None] * len(names) if sources is None else list(sources)
        if len(sources) != len(names):
            raise FacenetError(
                f"sources must have one entry per name ({len(names)}); received {len(sources)}"
            )
        sources = [None if s is None else os.fspath(s) for s in sources]
        try:
            return self._store.insert(list(zip(names, vectors, sources)))
        finally:
            self._cache = None

    @property
    def meta(self):
        """The gallery's ``meta`` rows (key → text), as read when opened and written since."""
        return dict(self._store.meta)

    @property
    def threshold(self):
        """The threshold stored by ``facenet-tf gallery calibrate`` (float), or None when the gallery
        is not calibrated (:mod:`facenet_tf.gallery.calibration`)."""
        from facenet_tf.gallery.calibration import stored_calibration

        stored = stored_calibration(self._store.meta, self.path)
        return None if stored is None else float(stored.threshold)

    def set_meta(self, key, value):
        """Store one ``meta`` row beside the schema's (e.g. the threshold calibration,
        :mod:`facenet_tf.gallery.calibration`); the schema's own rows are never replaced."""
        if key in ("schema_version", "model_fingerprint", "embedding_dim", "distance", "created"):
            raise FacenetError(f"meta key {key!r} belongs to the gallery's schema and is never replaced")
        self._store.set_meta(key, value)

    def remove(self, name):
        """Remove every entry called ``name`` (compared as :func:`normalize_name` stores it);
        return how many were removed (maybe 0)."""
        try:
            return self._store.delete(normalize_name(name))
        finally:
            self._cache = None

    def list(self):
        """Return ``[(name, number of entries), ...]`` sorted by name."""
        return self._store.names()

    def search(self, query_embeddings, k=1):
        """Return the ``k`` nearest entries of each query.

        Args:
            query_embeddings: ``(q, embedding_dim)`` finite numbers.
            k: neighbours per query, a positive int (default 1); fewer are returned
                when the gallery holds fewer entries.

        Returns:
            ``q`` lists of :class:`Neighbor` ``(name, distance, entry_id)``, nearest
            first; distances as ``pairwise_distances_numpy`` with the gallery's metric.

        Raises:
            FacenetError: bad ``k`` or query shape, non-finite queries.
        """
        if not _is_int(k) or k < 1:
            raise FacenetError(f"k must be a positive integer; received {k!r}")
        queries = self._check_embeddings(query_embeddings, "query_embeddings")
        index, ids, names = self._loaded()
        distances, rows = index.search(queries, int(k))
        return [
            [Neighbor(names[r], float(d), int(ids[r])) for d, r in zip(d_row, r_row)]
            for d_row, r_row in zip(distances, rows)
        ]

    def identify(self, query_embeddings, threshold):
        """Name each query after its nearest entry, or ``None`` if none is close enough.

        A query is known when ``distance(query, nearest entry) <= threshold``.

        Args:
            query_embeddings: ``(q, embedding_dim)`` finite numbers.
            threshold: largest distance still accepted as the same person, in the
                gallery's distance (e.g. squared L2 for ``"squared_l2"``).

        Returns:
            ``q`` :class:`Match` objects.

        Raises:
            FacenetError: ``threshold`` not a finite number, or bad queries.
        """
        real = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if not real or not math.isfinite(threshold):
            raise FacenetError(f"threshold must be a finite number; received {threshold!r}")
        matches = []
        for neighbors in self.search(query_embeddings, k=1):
            if not neighbors:
                matches.append(Match(None, math.inf, None, None))
                continue
            nearest = neighbors[0]
            known = nearest.distance <= threshold
            name = nearest.name if known else None
            matches.append(Match(name, nearest.distance, nearest.entry_id, nearest.name))
        return matches

    def check(self) -> None:
        """Read every entry now, as the first search does, so a damaged entry (wrong length, NaN
        or inf) is one line naming its person before any query is embedded.

        Raises:
            FacenetError: a damaged entry.
        """
        self._loaded()

    @property
    def search_backend(self):
        """The name of the backend the next search uses."""
        return self._loaded()[0].backend

    def _check_embeddings(self, embeddings, what):
        try:
            array = np.asarray(embeddings, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise FacenetError(f"{what} must be an array of numbers ({error})") from error
        if array.ndim != 2 or array.shape[1] != self.embedding_dim:
            raise FacenetError(
                f"{what} must have shape (n, {self.embedding_dim}) for gallery {self.path}; "
                f"received shape {array.shape}"
            )
        with np.errstate(over="ignore"):  # overflow is reported below, as inf
            vectors = array.astype("<f4")
        bad = ~np.isfinite(vectors).all(axis=1)  # after the cast: 1e39 is inf in float32
        if bad.any():
            raise FacenetError(
                f"{what} must be finite; row {int(np.argmax(bad))} has NaN or inf "
                "(in float32)"
            )
        if self.distance == "cosine":
            zero = ~(vectors != 0).any(axis=1)
            if zero.any():
                raise FacenetError(
                    f"{what} row {int(np.argmax(zero))} is all zeros: it has no cosine "
                    "distance"
                )
        return vectors

    def _loaded(self):
        version = self._store.data_version()
        if self._cache is not None and self._cache[0] == version:
            return self._cache[1:]
        ids, names, vectors = self._store.read_all(self.embedding_dim)
        backend = choose_backend(self.index, len(ids))
        self._cache = (version, EmbeddingIndex(vectors, self.distance, backend), ids, names)
        return self._cache[1:]


def normalize_name(name: str) -> str:
    """A person's name as stored and compared: Unicode NFC, surrounding white space removed, so
    ``"Zoë"`` typed as one code point or as ``e`` + diaeresis, and ``"alice "``, are one person."""
    return unicodedata.normalize("NFC", name).strip() if isinstance(name, str) else name


def normalize_names(names, what: str = "names[{i}]") -> list:
    """``names`` as :func:`normalize_name` stores them, each checked: a non-empty, printable
    string (no newline, tab or other control character: names are printed one per line).

    Args:
        names: sequence of names.
        what: how a message calls the ``i``-th name (``"names[{i}]"``; the command line: ``"--name"``).

    Raises:
        FacenetError: naming the first bad name.
    """
    normalized = []
    for i, name in enumerate(names):
        label = what.format(i=i)
        if not isinstance(name, str):
            raise FacenetError(f"{label} must be a string; received {name!r}")
        name = normalize_name(name)
        if not name:
            raise FacenetError(f"{label} is empty")
        if not name.isprintable():
            raise FacenetError(f"{label} must be printable text (no newline, tab or control character); "
                               f"received {name!r}")
        normalized.append(name)
    return normalized


def _check_model(path, meta, model_fingerprint, embedding_dim, distance):
    stored_dim = int(meta["embedding_dim"])
    if meta["model_fingerprint"] != model_fingerprint or stored_dim != embedding_dim:
        raise FacenetError(
            f"gallery {path} was built with model {meta['model_fingerprint']} (dim "
            f"{stored_dim}); this model is {model_fingerprint} (dim {embedding_dim}): "
            "re-enrol or use the matching model"
        )
    if distance is not None and distance != meta["distance"]:
        raise FacenetError(
            f"gallery {path} uses distance {meta['distance']!r}; received distance="
            f"{distance!r} (thresholds do not carry across distances)"
        )
