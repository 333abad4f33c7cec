"""SQLite storage of a gallery: schema, creation, metadata checks and transactions.

The only module of facenet_tf that talks to SQLite. A gallery file holds two tables::

    meta(key, value)                       schema_version, model_fingerprint,
                                           embedding_dim, distance, created
    entries(id, name, embedding, source, enrolled_at)

``embedding`` is ``embedding_dim`` little-endian float32. Each write is one transaction
(WAL journal), so a process killed midway leaves only whole enrolments.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shlex
import sqlite3
import tempfile
import urllib.parse
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError

SCHEMA_VERSION = 1
#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"

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


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class GalleryStore:
    """An open gallery file. Use :meth:`open`; also a context manager that closes it."""

    def __init__(self, path: str, connection: sqlite3.Connection, meta: Dict[str, str], read_only: bool = False):
        self.path = path
        self.meta = meta
        self._connection = connection
        self._read_only = read_only

    @classmethod
    def open(cls, path: str, create_meta: Optional[Dict[str, str]] = None,
             read_only: bool = False) -> "GalleryStore":
        """Open the gallery file at ``path``.

        Args:
            path: gallery file.
            create_meta: when the file is absent, create it with these ``meta`` rows
                (``schema_version`` and ``created`` are added). ``None``: it must exist.
            read_only: open for reading only (listing, identifying), so a gallery the user
                may not write (a read-only file or folder) can still be read; writes then fail.

        A file that is not a facenet_tf gallery is refused before it is opened for writing,
        so it is left byte for byte as it was.

        Raises:
            FacenetError: missing file (and no ``create_meta``), not a facenet_tf gallery, or a
                file or folder that cannot be read or written (the path and the cause).
        """
        if not os.path.exists(path):
            if create_meta is None:
                raise FacenetError(f"gallery {path} does not exist (create=False)")
            _create(path, create_meta)
        else:
            read_meta(path)  # read-only: a foreign file is refused untouched
        connection = None
        try:
            connection = _connect_read_only(path) if read_only else sqlite3.connect(path, timeout=30,
                                                                                     isolation_level=None)
            if not read_only:
                connection.execute("PRAGMA journal_mode=WAL")
            meta = dict(connection.execute("SELECT key, value FROM meta"))
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise _sqlite_error(path, error) from None
        try:
            _check_schema(path, meta)
        except FacenetError:
            connection.close()
            raise
        return cls(path, connection, meta, read_only)

    def close(self) -> None:
        """Close the gallery; SQLite's ``-wal`` and ``-shm`` files go with the last connection
        (a read-only one leaves them: :func:`settle` removes them)."""
        if self._connection is not None:
            self._connection.close()
            if self._read_only:
                settle(self.path)
        self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise FacenetError(f"gallery {self.path} is closed")
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
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

    def insert(self, rows: Sequence[Tuple[str, np.ndarray, Optional[str]]]) -> List[int]:
        """Insert ``(name, float32 vector, source)`` rows in one transaction; return their ids."""
        now = utc_now()
        insert = "INSERT INTO entries (name, embedding, source, enrolled_at) VALUES (?, ?, ?, ?)"
        try:
            with self.transaction() as db:
                return [db.execute(insert, (n, np.asarray(v, "<f4").tobytes(), s, now)).lastrowid for n, v, s in rows]
        except sqlite3.Error as error:
            raise _sqlite_error(self.path, error, writing=True) from None

    def delete(self, name: str) -> int:
        """Delete every entry called ``name``; return how many."""
        try:
            with self.transaction() as db:
                return db.execute("DELETE FROM entries WHERE name = ?", (name,)).rowcount
        except sqlite3.Error as error:
            raise _sqlite_error(self.path, error, writing=True) from None

    def set_meta(self, key: str, value: str) -> None:
        """Write one ``meta`` row (e.g. ``calibration``) in its own transaction."""
        try:
            with self.transaction() as db:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        except sqlite3.Error as error:
            raise _sqlite_error(self.path, error, writing=True) from None
        self.meta[key] = value

    def count(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def names(self) -> List[Tuple[str, int]]:
        """``[(name, number of entries), ...]`` sorted by name."""
        return self._db().execute("SELECT name, COUNT(*) FROM entries GROUP BY name ORDER BY name").fetchall()

    def data_version(self) -> int:
        """Changes whenever this or another connection commits."""
        return self._db().execute("PRAGMA data_version").fetchone()[0]

    def read_all(self, embedding_dim: int) -> Tuple[np.ndarray, List[str], np.ndarray]:
        """Every entry: ``(int64 ids [n], names, float32 embeddings [n, dim])`` in id order.

        Raises:
            FacenetError: an entry whose embedding is not ``embedding_dim`` finite float32 (a
                damaged file), naming the entry's person: never skipped, never reshaped.
        """
        ids, names, blobs = [], [], []
        size = 4 * embedding_dim
        for entry_id, name, blob in self._db().execute("SELECT id, name, embedding FROM entries ORDER BY id"):
            if not isinstance(blob, bytes) or len(blob) != size:
                found = f"{len(blob)} bytes" if isinstance(blob, bytes) else f"a {type(blob).__name__}"
                raise self._damaged(entry_id, name, f"holds {found}, not {size} ({embedding_dim} float32)")
            ids.append(entry_id)
            names.append(name)
            blobs.append(blob)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), embedding_dim)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            raise self._damaged(ids[row], names[row], "holds NaN or inf")
        return np.asarray(ids, dtype=np.int64), names, vectors

    def _damaged(self, entry_id: int, name: str, problem: str) -> FacenetError:
        return FacenetError(
            f"gallery {self.path} is damaged: the embedding of entry {entry_id} ({name!r}) {problem}; remove that "
            f"person (facenet-tf gallery remove --gallery {shlex.quote(self.path)} --name {shlex.quote(str(name))}) "
            "and enrol them again")


def read_meta(path: str) -> Dict[str, str]:
    """The ``meta`` table of an existing gallery, read-only (no model needed).

    Raises:
        FacenetError: missing file or not a facenet_tf gallery.
    """
    if not os.path.exists(path):
        raise FacenetError(f"gallery {path} does not exist")
    if not os.path.isfile(path):
        raise FacenetError(f"{path} is not a facenet_tf gallery (a folder, not a file)")
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as err:
        raise FacenetError(f"cannot read gallery {path}: {err.strerror or err}") from None
    if header != SQLITE_HEADER:
        raise FacenetError(f"{path} is not a facenet_tf gallery (not an SQLite file); it was left untouched")
    try:
        connection = _connect_read_only(path)
        try:
            meta = dict(connection.execute("SELECT key, value FROM meta"))
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise _sqlite_error(path, error) from None
    _check_schema(path, meta)
    settle(path)
    return meta


def settle(path: str) -> None:
    """Fold the write-ahead log beside the gallery ``path`` into it and remove SQLite's ``-wal``
    and ``-shm`` files, through SQLite: a read-write connection that is the last to close does
    both (a read-only one leaves them, and so does a process killed while writing). While
    another process has the gallery open they are its, and nothing happens; a gallery this
    process may not write is left as it is. Call only on a file known to be a gallery."""
    folder = os.path.dirname(os.path.abspath(path))
    if not any(os.path.exists(path + end) for end in ("-wal", "-shm")):
        return
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)):
        return
    try:
        connection = sqlite3.connect(path, timeout=1, isolation_level=None)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        pass  # busy or locked: its owner's last close removes them


def _connect_read_only(path: str) -> sqlite3.Connection:
    """A read-only connection. A WAL gallery in a folder this process cannot write (no ``-shm``
    file can be made) is read as immutable: nobody can be writing it there either."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path))
    connection = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
        if os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)


def _disk_full(path: str) -> bool:
    """Whether the file system holding ``path`` has (almost) no space left: SQLite reports a
    failed write into its WAL or shared-memory file as a bare "disk I/O error"."""
    try:
        stat = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < (1 << 20)


def _sqlite_error(path: str, error: sqlite3.Error, writing: bool = False) -> FacenetError:
    """One line naming the real cause: a full disk or a read-only file is not "not a gallery"."""
    text = str(error)
    lowered = text.lower()
    if "disk is full" in lowered or "disk i/o" in lowered:
        full = "full" in lowered or _disk_full(path)
        cause = "no space left on the device" if full else text
        return FacenetError(f"cannot write gallery {path}: {cause}; nothing was changed")
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or "permission" in lowered:
        return FacenetError(f"cannot write gallery {path}: {text} (check the permissions of the file and its folder)")
    if "locked" in lowered or "busy" in lowered:
        return FacenetError(f"gallery {path} is locked by another process: {text}")
    if writing:
        return FacenetError(f"cannot write gallery {path}: {text}; nothing was changed")
    return FacenetError(f"{path} is not a facenet_tf gallery ({text})")


def _create(path: str, meta: Dict[str, str]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FacenetError(f"cannot create gallery {path}: folder {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as err:
        raise FacenetError(f"cannot create gallery {path}: {err.strerror or err} in {directory}") from None
    os.close(fd)
    try:
        _fill(tmp, path, meta)
    except sqlite3.Error as error:
        raise _sqlite_error(path, error) from None
    except OSError as err:
        raise FacenetError(f"cannot create gallery {path}: {err.strerror or err}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fill(tmp: str, path: str, meta: Dict[str, str]) -> None:
    """Write a new gallery into ``tmp`` and link it to ``path`` (never over an existing file)."""
    connection = sqlite3.connect(tmp, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        rows = {"schema_version": str(SCHEMA_VERSION), **meta, "created": utc_now()}
        connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
    finally:
        connection.close()  # checkpoints the WAL into the file before it is moved
    try:
        # Unlike os.replace, a link never clobbers a gallery another process has just
        # created; if one has, the caller opens (and checks) that one.
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # file system without hard links: still never over an existing file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.close(fd)
        os.replace(tmp, path)


def _check_schema(path: str, meta: Dict[str, str]) -> None:
    if "schema_version" not in meta:
        raise FacenetError(f"{path} is not a facenet_tf gallery (no schema_version in meta)")
    if meta["schema_version"] != str(SCHEMA_VERSION):
        raise FacenetError(
            f"gallery {path} has schema version {meta['schema_version']}; this facenet_tf "
            f"reads version {SCHEMA_VERSION}"
        )
    missing = {"model_fingerprint", "embedding_dim", "distance"} - set(meta)
    if missing:
        raise FacenetError(f"{path} is not a facenet_tf gallery (meta lacks {', '.join(sorted(missing))})")
