"""One-shot face recognition against a persistent gallery of enrolled embeddings.

A :class:`Gallery` is one SQLite file holding who was enrolled (name, embedding, source
image, time) and which model produced the embeddings. Embeddings from another model live
in another space, so a gallery refuses to open for a model whose fingerprint or embedding
size differs from the one that built it.

Search is exact k-nearest-neighbour under the gallery's distance
(``"squared_l2"``, ``"l2"`` or ``"cosine"``, as in :mod:`facenet_tf.distances`)::

    d(q, g) = pairwise_distances_numpy(q, g, metric=gallery.distance)

either with NumPy (blocks of the gallery at a time) or, for large galleries, with
faiss-cpu's flat (brute force, hence exact) indexes. Whatever selects the candidates, the
distances returned are recomputed with :func:`facenet_tf.distances.pairwise_distances_numpy`,
so a threshold means the same thing on every backend.

Example::

    with Gallery.open("staff.gallery", fingerprint, 128) as gallery:
        gallery.enroll(["ada", "alan"], embeddings, sources=["ada.jpg", "alan.jpg"])
        matches = gallery.identify(query_embeddings, threshold=1.1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import numbers
import os
import sqlite3
import tempfile
from typing import NamedTuple

import numpy as np

from facenet_tf.errors import FacenetError, check_choice

SCHEMA_VERSION = 1
DISTANCES = ("squared_l2", "l2", "cosine")
INDEXES = ("auto", "numpy", "faiss")
# Below this many entries a NumPy scan is as fast as faiss and needs no extra install.
FAISS_AUTO_MIN_ENTRIES = 50_000

# Bounds the (queries x gallery rows) distance block, and the temporaries
# pairwise_distances_numpy makes from it, to a few tens of MB.
_QUERY_CHUNK = 4096
_MAX_BLOCK_ROWS = 65_536
_BLOCK_ELEMENTS = 2**22

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    -- AUTOINCREMENT: an id handed out by enroll() is never reused after remove().
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    embedding BLOB NOT NULL,  -- embedding_dim little-endian float32
    source TEXT,
    enrolled_at TEXT NOT NULL  -- UTC, ISO 8601
);
CREATE INDEX entries_name ON entries (name);
"""


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


def _import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise FacenetError(
            "index='faiss' needs faiss: install facenet_tf[index] (faiss-cpu)"
        ) from error
    return faiss


def _faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class EmbeddingIndex:
    """Exact k-nearest-neighbour search over an in-memory ``(n, dim)`` float32 matrix.

    The search code path of :class:`Gallery`, usable on its own (the benchmark does).

    Args:
        embeddings: ``(n, dim)`` array; kept without a copy if already C-contiguous
            float32.
        distance: ``"squared_l2"`` (default), ``"l2"`` or ``"cosine"``.
        backend: ``"numpy"`` (default) or ``"faiss"`` (``IndexFlatL2``, or
            ``IndexFlatIP`` on L2-normalised copies for cosine; holds its own copy).

    Raises:
        FacenetError: bad option, not a 2-D array, or faiss asked for but not installed.
    """

    def __init__(self, embeddings, distance="squared_l2", backend="numpy"):
        self.distance = check_choice("distance", distance, DISTANCES)
        self.backend = check_choice("backend", backend, ("numpy", "faiss"))
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise FacenetError(
                f"embeddings must have shape (n, dim); received shape {self.embeddings.shape}"
            )
        self._faiss_index = None
        if backend == "faiss":
            faiss = _import_faiss()
            vectors = self.embeddings
            if distance == "cosine":
                # Inner product of unit vectors is cosine similarity; normalise a copy.
                vectors = vectors.copy()
                faiss.normalize_L2(vectors)
                self._faiss_index = faiss.IndexFlatIP(vectors.shape[1])
            else:
                self._faiss_index = faiss.IndexFlatL2(vectors.shape[1])
            self._faiss_index.add(vectors)

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
        search_chunk = self._faiss_chunk if self._faiss_index is not None else self._numpy_chunk
        parts = [
            search_chunk(queries[start : start + _QUERY_CHUNK], k)
            for start in range(0, len(queries), _QUERY_CHUNK)
        ]
        return np.concatenate([d for d, _ in parts]), np.concatenate([r for _, r in parts])

    def _numpy_chunk(self, queries, k):
        from facenet_tf.distances import pairwise_distances_numpy

        q = len(queries)
        block = max(k, min(_MAX_BLOCK_ROWS, _BLOCK_ELEMENTS // q))
        best_d = np.empty((q, 0))
        best_r = np.empty((q, 0), np.int64)
        for start in range(0, len(self.embeddings), block):
            d = pairwise_distances_numpy(
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

    def _faiss_chunk(self, queries, k):
        from facenet_tf.distances import pairwise_distances_numpy

        faiss_queries = queries
        if self.distance == "cosine":
            faiss_queries = queries.copy()
            _import_faiss().normalize_L2(faiss_queries)
        _, rows = self._faiss_index.search(faiss_queries, k)
        rows = rows.astype(np.int64)
        # faiss only picks the candidates: its L2 (||q||² + ||g||² - 2 q·g in float32) and
        # inner products round differently, so the distances come from the one shared
        # definition, and thresholds tuned on one backend hold on the other.
        d = np.empty(rows.shape)
        step = 64  # (step x step*k) block per call; only its diagonal k-blocks are used
        for start in range(0, len(queries), step):
            qs = queries[start : start + step]
            candidates = self.embeddings[rows[start : start + step].ravel()]
            block = pairwise_distances_numpy(qs, candidates, metric=self.distance)
            block = np.asarray(block, dtype=np.float64).reshape(len(qs), len(qs), k)
            d[start : start + step] = block[np.arange(len(qs)), np.arange(len(qs))]
        return _sorted(d, rows)


def _sorted(distances, rows):
    order = np.lexsort((rows, distances), axis=-1)  # by distance, then row
    return np.take_along_axis(distances, order, 1), np.take_along_axis(rows, order, 1)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Gallery:
    """A persistent, model-bound set of enrolled face embeddings. Use :meth:`open`.

    Each :meth:`enroll` or :meth:`remove` is one SQLite transaction (WAL journal), so a
    process killed midway leaves only whole enrolments. Embeddings are read into memory
    on the first search and reread after this gallery's own writes or another
    connection's commits.
    """

    def __init__(self, path, connection, meta, index):
        self.path = path
        self.model_fingerprint = meta["model_fingerprint"]
        self.embedding_dim = int(meta["embedding_dim"])
        self.distance = meta["distance"]
        self.created = meta["created"]
        self.index = index
        self._connection = connection
        self._cache = None  # (data_version, EmbeddingIndex, ids, names)

    @classmethod
    def open(
        cls, path, model_fingerprint, embedding_dim, distance=None, create=True, index="auto"
    ):
        """Open the gallery at ``path``, creating it if absent and ``create`` is true.

        Args:
            path: gallery file (str or path-like).
            model_fingerprint: non-empty string identifying the embedding model.
            embedding_dim: embedding size of that model, a positive int.
            distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``, fixed when the gallery
                is created. Default ``None``: ``"squared_l2"`` for a new gallery, the
                stored one for an existing gallery.
            create: create a missing gallery (written to a temporary file, then moved
                into place). Default ``True``.
            index: search backend, ``"auto"`` (default: faiss from
                ``FAISS_AUTO_MIN_ENTRIES`` entries when installed, else NumPy),
                ``"numpy"`` or ``"faiss"``.

        Returns:
            An open :class:`Gallery`; also a context manager that closes it.

        Raises:
            FacenetError: bad argument; missing file with ``create=False``; a file that
                is not a facenet_tf gallery; a gallery built by another model (fingerprint
                or dim) or with another ``distance``; ``index="faiss"`` without faiss.
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
        check_choice("index", index, INDEXES)
        if index == "faiss":
            _import_faiss()  # fail now, not at the first search

        if not os.path.exists(path):
            if not create:
                raise FacenetError(f"gallery {path} does not exist (create=False)")
            _create(path, model_fingerprint, int(embedding_dim), distance or "squared_l2")

        connection = None
        try:
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            meta = dict(connection.execute("SELECT key, value FROM meta"))
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise FacenetError(f"{path} is not a facenet_tf gallery ({error})") from error
        try:
            _check_meta(path, meta, model_fingerprint, int(embedding_dim), distance)
        except FacenetError:
            connection.close()
            raise
        return cls(path, connection, meta, index)

    def close(self):
        """Close the database connection; the gallery cannot be used afterwards."""
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._cache = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __len__(self):
        return self._db().execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def __repr__(self):
        return (
            f"Gallery({self.path!r}, model_fingerprint={self.model_fingerprint!r}, "
            f"embedding_dim={self.embedding_dim}, distance={self.distance!r})"
        )

    def enroll(self, names, embeddings, sources=None):
        """Add entries, all or none, in one transaction.

        Args:
            names: sequence of ``n`` non-empty strings; a name may repeat (several
                images of one person) and may already be enrolled.
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
        names = list(names)
        vectors = self._check_embeddings(embeddings, "embeddings")
        if len(names) != len(vectors):
            raise FacenetError(
                f"names and embeddings must have the same length; received {len(names)} "
                f"names and {len(vectors)} embeddings"
            )
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise FacenetError(f"names[{i}] must be a non-empty string; received {name!r}")
        sources = [None] * len(names) if sources is None else list(sources)
        if len(sources) != len(names):
            raise FacenetError(
                f"sources must have one entry per name ({len(names)}); received {len(sources)}"
            )
        sources = [None if s is None else os.fspath(s) for s in sources]
        now = _utc_now()
        rows = [(n, v.tobytes(), s, now) for n, v, s in zip(names, vectors, sources)]
        insert = "INSERT INTO entries (name, embedding, source, enrolled_at) VALUES (?, ?, ?, ?)"
        with self._transaction() as db:
            return [db.execute(insert, row).lastrowid for row in rows]

    def remove(self, name):
        """Remove every entry called ``name``; return how many were removed (maybe 0)."""
        with self._transaction() as db:
            return db.execute("DELETE FROM entries WHERE name = ?", (name,)).rowcount

    def list(self):
        """Return ``[(name, number of entries), ...]`` sorted by name."""
        return self._db().execute(
            "SELECT name, COUNT(*) FROM entries GROUP BY name ORDER BY name"
        ).fetchall()

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
            FacenetError: ``threshold`` not a number (or NaN), or bad queries.
        """
        real = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if not real or math.isnan(threshold):
            raise FacenetError(f"threshold must be a number; received {threshold!r}")
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

    @property
    def search_backend(self):
        """The backend the next search uses: ``"numpy"`` or ``"faiss"``."""
        return self._loaded()[0].backend

    def _db(self):
        if self._connection is None:
            raise FacenetError(f"gallery {self.path} is closed")
        return self._connection

    @contextlib.contextmanager
    def _transaction(self):
        db = self._db()
        # IMMEDIATE takes the write lock now, so concurrent writers queue (up to the
        # connection timeout) instead of failing at commit.
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")
        finally:
            self._cache = None

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
        db = self._db()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._cache is not None and self._cache[0] == version:
            return self._cache[1:]
        ids, names, blobs = [], [], []
        rows = db.execute("SELECT id, name, embedding FROM entries ORDER BY id")
        for entry_id, name, blob in rows:
            ids.append(entry_id)
            names.append(name)
            blobs.append(blob)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), self.embedding_dim)
        backend = self.index
        if backend == "auto":
            large = len(ids) >= FAISS_AUTO_MIN_ENTRIES
            backend = "faiss" if large and _faiss_available() else "numpy"
        index = EmbeddingIndex(vectors, self.distance, backend)
        self._cache = (version, index, np.asarray(ids, dtype=np.int64), names)
        return self._cache[1:]


def _create(path, model_fingerprint, embedding_dim, distance):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        connection = sqlite3.connect(tmp, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            meta = {
                "schema_version": str(SCHEMA_VERSION),
                "model_fingerprint": model_fingerprint,
                "embedding_dim": str(embedding_dim),
                "distance": distance,
                "created": _utc_now(),
            }
            connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        finally:
            connection.close()  # checkpoints the WAL into the file before it is moved
        try:
            # Unlike os.replace, a link never clobbers a gallery another process has just
            # created; if one has, the caller opens (and checks) that one.
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # file system without hard links
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_meta(path, meta, model_fingerprint, embedding_dim, distance):
    if "schema_version" not in meta:
        raise FacenetError(f"{path} is not a facenet_tf gallery (no schema_version in meta)")
    if meta["schema_version"] != str(SCHEMA_VERSION):
        raise FacenetError(
            f"gallery {path} has schema version {meta['schema_version']}; this facenet_tf "
            f"reads version {SCHEMA_VERSION}"
        )
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
