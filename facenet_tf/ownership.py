"""Ownership of the folders a command writes: it replaces only a folder its own kind wrote, and
there only the files it wrote.

Every writing command (``train``, ``prepare``, ``align``, ``export``, ``import-dlib``) first
*claims* its output folder (:func:`claim`), before any other work:

* an output equal to, inside, or holding one of its inputs (data, model, ``--init-from``) is refused,
  also where only a link joins them (:func:`facenet_tf.overlap.check_disjoint`);
* a new or empty folder is taken; a folder whose record (:data:`OWNER_FILE`) names this command's
  kind is taken; one another kind wrote is refused with one line naming what it holds ("RUN is a
  training run written by `train`; choose another --output-dir"); any other non-empty folder is
  refused unless ``allow_existing`` (:data:`ALLOW_FLAG`): the command then writes beside its files;
* a top-level name the command needs that exists and is not in the record is refused;
* a link inside one of the command's folder entries that it did not write, or a folder entry
  that became a link, is refused: the command writes there, and never through a link;
* the record is written (atomically) before the entries, which also proves the folder writable.

The record lists the top-level entries the command wrote and, inside each folder entry, the files
it wrote there; the command deletes or replaces only those (:meth:`Ownership.remove`,
:func:`facenet_tf.publication.publish`). A file the user put inside any sub-folder survives every re-run
(``train --restart`` and ``--allow-existing-files`` included): a folder swapped for its new
version takes the user's files along. Temporary siblings (``.NAME.tmp-*``) carry a marker naming
the command and its process; the next run of that command removes those a killed run left
(:mod:`facenet_tf.owned_tree`).

Records from before kinds (``facenet_tf.owner/1``) named each entry's command: one command is the
kind; several make a folder "written by an earlier facenet-tf of unknown kind", refused. Inside
their folder entries everything counted as the project's, and still does.

Limits: a record is believed, not verified: a file it lists that someone later replaced by a link
to a file is written through by the libraries that write in place (TensorBoard's logs). A file that appears inside a folder entry while the
command runs counts as the project's (TensorBoard's logs are listed after each epoch); one a run
killed with SIGKILL wrote after its last listing counts as the user's and stays. With
``create=False`` the record is written at :meth:`Ownership.commit`, just before the first file.
Remote outputs (``gs://…``) are not claimed: they are written by TensorFlow's ``gfile``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import uuid
from typing import Dict, Iterable, List, Optional, Sequence

from facenet_tf import owned_tree
from facenet_tf.atomic import environment_error, io_error  # noqa: F401 - re-exported for callers
from facenet_tf.errors import FacenetError
from facenet_tf.overlap import check_disjoint
from facenet_tf.owner_record import (FORMAT, KINDS, MAX_RUNS, OLD_FORMATS, OWNER_FILE,  # noqa: F401 - re-exported
                                     describe, read_record, write_record)

#: The flag, the same on every writing command, that lets a command write beside foreign files.
ALLOW_FLAG = "--allow-existing-files"


def add_allow_argument(parser) -> None:
    """Add :data:`ALLOW_FLAG` to a command's argument parser (``args.allow_existing_files``)."""
    parser.add_argument(ALLOW_FLAG, action="store_true",
                        help="write into an output folder that holds files facenet-tf did not write, beside them "
                             "(none of them is touched; a name the command needs that is taken is refused)")


@dataclasses.dataclass
class Ownership:
    """A claimed output folder.

    Attributes:
        root: the folder (absolute path).
        command: the command that claimed it, e.g. ``"train"``: the folder's kind.
        run_id: this run's id (random), recorded in the history.
        entries: top-level names the record lists as written by facenet_tf: name → command.
        files: for each entry, the files (paths relative to it) the project wrote inside it.
        created_folder: whether facenet_tf created ``root`` itself.
        runs: the record's history of claims.
    """

    root: str
    command: str
    run_id: str
    entries: Dict[str, str]
    files: Dict[str, List[str]]
    created_folder: bool
    runs: list
    pending: tuple = ()
    committed: bool = False
    created_now: bool = False
    users: Dict[str, set] = dataclasses.field(default_factory=dict)

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
                raise taken(self.path(name), self.command)
        if new:
            self.entries.update({n: self.command for n in new})
            self.files.update({n: [] for n in new})
            self._write()

    def add_files(self, name: str, relpaths: Iterable[str]) -> None:
        """Record files inside the folder entry ``name`` (claimed with :meth:`add`) as this
        command's, before creating them.

        Raises:
            FacenetError: one of them exists and is not the project's (never replaced).
        """
        listed = set(self.files.setdefault(name, []))
        new = [rel for rel in relpaths if rel not in listed]
        for rel in new:
            if os.path.lexists(os.path.join(self.path(name), rel)):
                raise taken(os.path.join(self.path(name), rel), self.command)
        if new:
            self.files[name] = sorted(listed | set(new))
            self._write()

    def list_new_files(self, name: str) -> None:
        """Record as this command's the files that appeared inside the folder entry ``name``
        since the claim (written by a library on the command's behalf, e.g. TensorBoard's logs)."""
        folder = self.path(name)
        if name not in self.entries or not os.path.isdir(folder):
            return
        known = set(self.files.get(name) or []) | self.users.get(name, set())
        new = [rel for rel in owned_tree.tree_files(folder) if rel not in known
               and not any(rel.startswith(u + os.sep) for u in self.users.get(name, ()))]
        if new:
            self.files[name] = sorted(set(self.files.get(name) or []) | set(new))
            self._write()

    def leftover(self, name: str, rel: str) -> bool:
        """Whether ``rel`` inside the folder entry ``name`` is the temporary of a file the record
        lists there (written aside, then renamed: a killed run leaves it), and so the project's."""
        target = owned_tree.temporary_of(os.path.basename(rel))
        return target is not None and os.path.join(os.path.dirname(rel), target) in (self.files.get(name) or ())

    def remove(self, name: str, release: bool = False) -> None:
        """Delete the entry ``name`` if the record lists it: a file, or inside a folder the
        files the record lists (a folder left holding the user's files stays). A name the record
        does not list is left alone. The name stays claimed (the command writes it again),
        unless ``release`` and nothing of the user's is left there."""
        if name not in self.entries:
            return
        path = self.path(name)
        kept = False
        if os.path.isdir(path) and not os.path.islink(path):
            kept = owned_tree.delete_listed(path, self.files.get(name) or [])
        elif os.path.lexists(path):
            os.unlink(path)
        self.files[name] = []
        if release and not kept:
            del self.entries[name]
            del self.files[name]
        self._write()

    def remove_files(self, name: str, relpaths: Iterable[str]) -> None:
        """Delete those of the files ``relpaths`` inside the folder entry ``name`` that the record
        lists (and the folders they leave empty, never the entry itself); others stay."""
        listed = set(self.files.get(name) or [])
        gone = [rel for rel in relpaths if rel in listed]
        if gone and name in self.entries:
            owned_tree.delete_listed(self.path(name), gone, keep_root=True)
            self.files[name] = sorted(listed - set(gone))
            self._write()

    def foreign(self) -> list:
        """Top-level names in the folder the record does not list (the user's)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(n for n in names if n != OWNER_FILE and n not in self.entries)

    def save(self, path: Optional[str] = None, entries: Optional[Dict[str, str]] = None,
             files: Optional[Dict[str, List[str]]] = None) -> None:
        """Write the record as it stands (after changing :attr:`files` directly), or, given
        ``path``, a record of ``entries`` and ``files`` as ``path`` (for a folder about to
        replace ``root``: :func:`facenet_tf.publication.publish`)."""
        self._write(path, entries, files)

    def _write(self, path: Optional[str] = None, entries: Optional[Dict[str, str]] = None,
               files: Optional[Dict[str, List[str]]] = None) -> None:
        entries = self.entries if entries is None else entries
        files = self.files if files is None else files
        record = {"format": FORMAT, "kind": self.command, "created_folder": self.created_folder,
                  "entries": dict(sorted(entries.items())),
                  "files": {n: sorted(files.get(n) or []) for n in sorted(entries) if files.get(n)},
                  "runs": self.runs[-MAX_RUNS:]}
        write_record(path or self.path(OWNER_FILE), record)


def claim(root: str, command: str, entries: Sequence[str] = (), *, allow_existing: bool = False,
          inputs: Iterable[Optional[str]] = (), flag: str = "--output", create: bool = True) -> Ownership:
    """Claim the output folder ``root`` for ``command`` (see the module docstring).

    Args:
        root: the output folder.
        command: the command's name, e.g. ``"prepare"``: the kind of folder it writes
            (described by :data:`KINDS`).
        entries: top-level names the command will create there.
        allow_existing: write beside the files of a folder facenet_tf did not create.
        inputs: the command's inputs (folders or files); ``root`` must be apart from each.
        flag: the option named in messages.
        create: create the folder and write the record now; ``False`` only checks, and
            :meth:`Ownership.commit` writes them later (so a run refused for another reason
            leaves nothing behind).

    Returns:
        :class:`Ownership`.

    Raises:
        FacenetError: an overlap with an input, ``root`` is a file, a folder another kind of
            command wrote, a foreign non-empty folder without ``allow_existing``, a foreign
            entry in the way, or the folder cannot be created or written (the path and the
            cause in one line).
    """
    if not command or not isinstance(command, str):
        raise ValueError(f"command must name the claiming command (a kind, e.g. one of {sorted(KINDS)}); "
                         f"received {command!r}")
    record = read_record(root) if os.path.isdir(root) else None
    check_disjoint(root, inputs, flag, record)
    root = os.path.abspath(root)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise FacenetError(f"{flag} {root} is a file; expected a folder")
    if record is not None and record["kind"] != command:
        raise FacenetError(f"{describe(root, record)}; choose another {flag}")
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
    own = Ownership(root, command, uuid.uuid4().hex[:12], {}, {}, not os.path.isdir(root), [])
    if record is not None:
        own.entries, own.created_folder, own.runs = record["entries"], record["created_folder"], record["runs"]
        _list_files(own, record)
        _refuse_links(own)
    own.runs.append({"command": command, "run_id": own.run_id,
                     "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    own.pending = tuple(entries)
    for name in entries:
        if name not in own.entries and os.path.lexists(own.path(name)):
            raise taken(own.path(name), command)
    if create:
        own.commit()
    return own


def reopen(root: str) -> Optional[Ownership]:
    """The claim an earlier run left on ``root``, as its kind's :class:`Ownership` (to finish
    what that run started, e.g. a model publication a kill interrupted); ``None`` when ``root``
    has no record of a known kind. Adds nothing to the record's history."""
    record = read_record(root)
    if record is None or record["kind"] is None:
        return None
    own = Ownership(os.path.abspath(root), record["kind"], uuid.uuid4().hex[:12], record["entries"], {},
                    record["created_folder"], record["runs"], committed=True)
    _list_files(own, record)
    return own


def owned(root: str, name: str, command: Optional[str] = None) -> bool:
    """True if ``root``'s ownership record lists the top-level entry ``name`` (and, when
    ``command`` is given, the folder is of that kind)."""
    record = read_record(root)
    return record is not None and name in record["entries"] and command in (None, record["kind"])


def _list_files(own: Ownership, record: Dict) -> None:
    """Fill ``own.files`` from ``record`` (an earlier record's folder entries: everything in
    them) and ``own.users``, the user's items found in the folder entries now."""
    for name in own.entries:
        listed = record["files"].get(name)
        folder = own.path(name)
        if listed is None:
            listed = owned_tree.tree_files(folder) if os.path.isdir(folder) else []
        own.files[name] = listed
        if os.path.isdir(folder) and not os.path.islink(folder):
            own.users[name] = set(owned_tree.unlisted(folder, listed))


def _refuse_links(own: Ownership) -> None:
    """Refuse a folder entry of ``own`` that is now a link, and a link inside one that the record
    does not list: the command writes into its folders in place (checkpoints, logs), and a write
    through a link would land in whatever it leads to."""
    for name in own.entries:
        path = own.path(name)
        if os.path.islink(path) and os.path.isdir(path):
            raise FacenetError(f"{path} is a link to {os.path.realpath(path)}, not the folder facenet-tf "
                               f"{own.command} wrote: it never writes through a link; move the link away")
        link = next((found for item in sorted(own.users.get(name, ())) for found in owned_tree.links_in(path, item)),
                    None)
        if link is not None:
            raise FacenetError(f"{os.path.join(path, link)} is a link facenet-tf {own.command} did not write inside its "
                               f"folder {path}: it writes there, and never through a link; move the link away")


def taken(path: str, command: str) -> FacenetError:
    """The refusal of ``path``, in the way of ``command`` and not the project's: never replaced."""
    return FacenetError(f"{path} exists and was not written by facenet-tf {command}: it is never replaced; "
                        "move it away or choose another output folder")


def _check_creatable(root: str, flag: str) -> None:
    ancestor = root
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise FacenetError(f"{flag} {root} cannot be created: {ancestor} is a file")


def _check_name(name: str) -> None:
    if not name or os.sep in name or name in (".", "..", OWNER_FILE):
        raise ValueError(f"an ownership entry is a top-level name; received {name!r}")
