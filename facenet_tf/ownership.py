"""Ownership of the folders a command writes: it deletes or replaces only what it wrote.

Contract (every writing command: ``train``, ``prepare``, ``align``, ``export``, ``import-dlib``):

* Before any other file, the command *claims* its output folder with :func:`claim`:

  - an output folder equal to, inside, or holding one of the command's input folders (its
    data) is refused;
  - a folder that does not exist is created; an empty one is taken as it is;
  - a folder holding an ownership record (:data:`OWNER_FILE`, written by an earlier claim)
    is taken; any other non-empty folder is refused with one line naming it, unless
    ``allow_existing`` (the flag :data:`ALLOW_FLAG`, the same on every command): the command
    then writes beside the folder's files, never over them;
  - each top-level name the command will create (``entries``) that already exists and is not
    listed in the record is refused with one line, also with ``allow_existing``;
  - the record, listing the entries, is written (atomically) before the entries themselves.
    Writing it also proves the folder writable: a read-only folder or a full disk is one
    :class:`FacenetError` naming the path and the cause, and nothing else was written.

* Afterwards the command deletes or replaces only entries listed in the record
  (:meth:`Ownership.remove`, :meth:`Ownership.publish`, :meth:`Ownership.owns`), never by a
  name pattern. An entry is a top-level name of the folder; a folder entry is the command's
  own with everything in it. Temporary siblings (``.NAME.tmp-*``) are created with unique
  names by :func:`tempfile.mkdtemp`/``mkstemp`` and so can never be a user's file.

Limits, stated plainly: a name the record lists is the project's from then on — a file the user
later puts under that very name, or inside a folder entry (``logs/``, ``checkpoints/``), is treated
as the project's. A record names what was claimed; it is not a signature, and a hand-edited record
is believed. A command that checks with ``create=False`` writes the record at
:meth:`Ownership.commit`, just before its first file, so a run refused for another reason first
leaves nothing behind.

Remote outputs (``gs://…``) are not claimed: they are written by TensorFlow's ``gfile``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import shutil
import tempfile
import uuid
from typing import Dict, Iterable, Iterator, Optional, Sequence

from facenet_tf.errors import FacenetError

#: The ownership record in an output folder.
OWNER_FILE = ".facenet_tf-owner.json"
#: The flag, the same on every writing command, that lets a command write beside foreign files.
ALLOW_FLAG = "--allow-existing-files"
FORMAT = "facenet_tf.owner/1"
#: Runs kept in a record's history.
MAX_RUNS = 20


def add_allow_argument(parser) -> None:
    """Add :data:`ALLOW_FLAG` to a command's argument parser (``args.allow_existing_files``)."""
    parser.add_argument(ALLOW_FLAG, action="store_true",
                        help="write into an output folder that holds files facenet-tf did not write, beside them "
                             "(none of them is touched; a name the command needs that is taken is refused)")


def io_error(path: str, err: OSError, doing: str = "write") -> FacenetError:
    """A one-line :class:`FacenetError` for an environment fault: ``cannot write PATH: CAUSE``."""
    cause = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        cause = "no space left on the device"
    elif err.errno in (errno.EACCES, errno.EPERM):
        cause = "permission denied"
    elif err.errno == errno.EROFS:
        cause = "read-only file system"
    return FacenetError(f"cannot {doing} {path}: {cause}")


#: Causes, as the OS and TensorFlow's file system word them, of an environment fault.
_CAUSES = (("No space left on device", "no space left on the device"), ("Permission denied", "permission denied"),
           ("Read-only file system", "read-only file system"), ("Disk quota exceeded", "disk quota exceeded"))


def environment_error(err: BaseException, path: str) -> Optional[FacenetError]:
    """The one-line :class:`FacenetError` for an environment fault raised while writing ``path``
    (an :class:`OSError`, or a library error such as TensorFlow's whose message names the OS
    cause); ``None`` when ``err`` is something else."""
    if isinstance(err, OSError):
        return io_error(getattr(err, "filename", None) or path, err)
    text = str(getattr(err, "message", None) or err)
    for needle, cause in _CAUSES:
        if needle in text:
            return FacenetError(f"cannot write {path}: {cause}")
    return None


def check_disjoint(output: str, inputs: Iterable[Optional[str]], flag: str = "--output") -> None:
    """Raise unless ``output`` and every input folder are apart (neither equal nor nested).

    Compared by real path, so a link does not hide an overlap. ``None`` and URLs are ignored.
    """
    out = os.path.realpath(output)
    for source in inputs:
        if not source or "://" in str(source):
            continue
        src = os.path.realpath(source)
        if out == src or out.startswith(src.rstrip(os.sep) + os.sep):
            raise FacenetError(f"{flag} {output} is inside the input folder {source}: it would be read back as "
                               "input; choose a folder outside it")
        if src.startswith(out.rstrip(os.sep) + os.sep):
            raise FacenetError(f"{flag} {output} holds the input folder {source}: choose a folder apart from it")


def read_record(root: str) -> Optional[Dict]:
    """The ownership record of ``root``, or ``None`` when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(root, OWNER_FILE)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("entries"), dict):
        return None
    return record


@dataclasses.dataclass
class Ownership:
    """A claimed output folder.

    Attributes:
        root: the folder (absolute path).
        command: the command that claimed it, e.g. ``"train"``.
        run_id: this run's id (random), recorded in the history.
        entries: top-level names the record lists as written by facenet_tf: name → command.
        created_folder: whether facenet_tf created ``root`` itself.
        runs: the record's history of claims.
    """

    root: str
    command: str
    run_id: str
    entries: Dict[str, str]
    created_folder: bool
    runs: list
    pending: tuple = ()
    committed: bool = False
    created_now: bool = False

    def commit(self) -> None:
        """Create the folder if needed and write the record with the claimed entries (once).

        Raises:
            FacenetError: the folder cannot be created or written (path and cause), or an
                entry appeared meanwhile that is not the project's.
        """
        if self.committed:
            return
        if not os.path.isdir(self.root):
            try:
                os.makedirs(self.root)
            except OSError as err:
                raise io_error(self.root, err, "create") from None
            self.created_now = True
        try:
            self.add(*self.pending)
            self._write()
        except FacenetError:
            self.discard()
            raise
        self.committed = True

    def discard(self) -> None:
        """Remove the folder again if this run created it and it holds only the project's
        entries (a run that failed before writing anything useful)."""
        if self.created_now and not self.foreign():
            shutil.rmtree(self.root, ignore_errors=True)
            self.committed = False

    def owns(self, name: str) -> bool:
        """True if ``name`` (a top-level name) is listed in the record."""
        return name in self.entries

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def add(self, *names: str) -> None:
        """Record ``names`` as this command's, before creating them.

        Raises:
            FacenetError: one of them exists and is not the project's (never replaced).
        """
        new = [n for n in names if n not in self.entries]
        for name in new:
            _check_name(name)
            if os.path.lexists(self.path(name)):
                raise FacenetError(f"{self.path(name)} exists and was not written by facenet-tf {self.command}: "
                                   "it is never replaced; move it away or choose another output folder")
        if new:
            self.entries.update({n: self.command for n in new})
            self._write()

    def remove(self, name: str, release: bool = False) -> None:
        """Delete the entry ``name`` if the record lists it; a name the record does not list is
        left alone. The name stays claimed (the command writes it again), unless ``release``."""
        if name not in self.entries:
            return
        _delete(self.path(name))
        if release:
            del self.entries[name]
            self._write()

    def foreign(self) -> list:
        """Top-level names in the folder the record does not list (the user's)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(n for n in names if n != OWNER_FILE and n not in self.entries)

    @contextlib.contextmanager
    def staged(self) -> Iterator[str]:
        """Yield a new temporary sibling of ``root`` to fill; when the block succeeds, commit the
        claim and :meth:`publish` the sibling into ``root``; when it fails, remove the sibling
        (``root`` is unchanged). Environment faults become one line (:func:`io_error`)."""
        parent = os.path.dirname(self.root)
        try:
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.root)}.tmp-", dir=parent)
        except OSError as err:
            raise io_error(parent, err) from None
        try:
            yield tmp
            self.commit()
            self.publish(tmp)
        except Exception as err:  # noqa: BLE001 - environment faults become one line, the rest passes
            fault = environment_error(err, self.root)
            if fault is None:
                raise
            raise fault from None
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, staged: str) -> None:
        """Move every top-level entry of the folder ``staged`` (a temporary sibling) into
        ``root``, replacing this command's previous entries, and delete the previous entries
        of this command that ``staged`` does not hold. ``staged`` is removed.

        When ``root`` holds nothing but the project's entries, the whole folder is swapped in
        one step (a reader sees the old version or the new one); otherwise entry by entry,
        each atomically, leaving every foreign file where it is.

        Raises:
            FacenetError: ``staged`` holds a name that exists in ``root`` and is not the
                project's (checked before anything moves).
        """
        from facenet_tf.artifacts import exchange_dirs

        names = sorted(n for n in os.listdir(staged) if n != OWNER_FILE)
        stale = [n for n in self.entries if self.entries[n] == self.command and n not in names]
        self.add(*names)
        if not self.foreign():
            self._write(os.path.join(staged, OWNER_FILE), {n: c for n, c in self.entries.items() if n not in stale})
            os.chmod(staged, os.stat(self.root).st_mode & 0o7777)  # the folder keeps its permissions
            if exchange_dirs(staged, self.root):
                _delete(staged)  # the previous version: nothing but the project's entries
                self.entries = {n: c for n, c in self.entries.items() if n not in stale}
                return
            os.remove(os.path.join(staged, OWNER_FILE))
        for name in names:
            source, target = os.path.join(staged, name), self.path(name)
            target_is_dir = os.path.isdir(target) and not os.path.islink(target)
            if os.path.isdir(source) and target_is_dir and exchange_dirs(source, target):
                continue  # ``source`` now holds the previous version, deleted with ``staged``
            if os.path.lexists(target) and (target_is_dir or os.path.isdir(source)):
                _delete(target)
            os.replace(source, target)
        for name in stale:
            self.remove(name, release=True)
        _delete(staged)

    def _write(self, path: Optional[str] = None, entries: Optional[Dict[str, str]] = None) -> None:
        record = {"format": FORMAT, "created_folder": self.created_folder,
                  "entries": dict(sorted((self.entries if entries is None else entries).items())),
                  "runs": self.runs[-MAX_RUNS:]}
        target = path or self.path(OWNER_FILE)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{OWNER_FILE}.tmp-", dir=os.path.dirname(target))
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(record, f, indent=1)
                    f.write("\n")
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as err:
            raise io_error(os.path.dirname(target), err) from None


def claim(root: str, command: str, entries: Sequence[str] = (), *, allow_existing: bool = False,
          inputs: Iterable[Optional[str]] = (), flag: str = "--output", create: bool = True) -> Ownership:
    """Claim the output folder ``root`` for ``command`` (see the module docstring).

    Args:
        root: the output folder.
        command: the command's name, e.g. ``"prepare"``.
        entries: top-level names the command will create there.
        allow_existing: write beside the files of a folder facenet_tf did not create.
        inputs: the command's input folders; ``root`` must be apart from each.
        flag: the option named in messages.
        create: create the folder and write the record now; ``False`` only checks, and
            :meth:`Ownership.commit` writes them later (so a run refused for another reason
            leaves nothing behind).

    Returns:
        :class:`Ownership`.

    Raises:
        FacenetError: an overlap with an input, ``root`` is a file, a foreign non-empty folder
            without ``allow_existing``, a foreign entry in the way, or the folder cannot be
            created or written (the path and the cause in one line).
    """
    check_disjoint(root, inputs, flag)
    root = os.path.abspath(root)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise FacenetError(f"{flag} {root} is a file; expected a folder")
    record = read_record(root) if os.path.isdir(root) else None
    if not os.path.isdir(root):
        _check_creatable(root, flag)
    elif record is None:
        try:
            existing = sorted(os.listdir(root))
        except OSError as err:
            raise io_error(root, err, "list") from None
        if existing and not allow_existing:
            shown = ", ".join(existing[:3]) + (" ..." if len(existing) > 3 else "")
            raise FacenetError(f"{flag} {root} holds files facenet-tf {command} did not write ({shown}): give a new "
                               f"or empty folder, or {ALLOW_FLAG} to write beside them (they are never touched)")
    if record is not None:
        own = Ownership(root, command, uuid.uuid4().hex[:12], dict(record["entries"]),
                        bool(record.get("created_folder")), list(record.get("runs") or []))
    else:
        own = Ownership(root, command, uuid.uuid4().hex[:12], {}, not os.path.isdir(root), [])
    own.runs.append({"command": command, "run_id": own.run_id,
                     "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    own.pending = tuple(entries)
    for name in entries:
        if name not in own.entries and os.path.lexists(own.path(name)):
            raise FacenetError(f"{own.path(name)} exists and was not written by facenet-tf {command}: it is never "
                               "replaced; move it away or choose another output folder")
    if create:
        own.commit()
    return own


def owned(root: str, name: str) -> bool:
    """True if ``root``'s ownership record lists the top-level entry ``name``."""
    record = read_record(root)
    return record is not None and name in record["entries"]


def _check_creatable(root: str, flag: str) -> None:
    ancestor = root
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise FacenetError(f"{flag} {root} cannot be created: {ancestor} is a file")


def _check_name(name: str) -> None:
    if not name or os.sep in name or name in (".", "..", OWNER_FILE):
        raise ValueError(f"an ownership entry is a top-level name; received {name!r}")


def _delete(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
