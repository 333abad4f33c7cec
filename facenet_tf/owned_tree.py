"""The files inside an owned folder entry: listed, deleted one by one, carried across a swap.

A folder entry of an output folder (``checkpoints/``, ``saved_model/``, an identity folder of an
aligned set, ``data-<plan>/``) may also hold files the user put there. The ownership record
(:mod:`facenet_tf.ownership`) lists the files the project wrote inside each folder entry; these
helpers delete only those, and carry every other item over when a new version of the folder is
swapped in, so a user's file inside any sub-folder survives every re-run.

Also the temporary siblings a command fills before publishing (``.NAME.tmp-*``): each holds a
marker naming the command, the output folder, the host and the process, so a later run of the
same command removes those a killed run left, and never a folder it cannot prove it made.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from typing import Iterable, List, Optional, Set

#: The marker inside a temporary sibling that proves who made it.
STAGING_MARKER = ".facenet_tf-staging.json"


def tree_files(root: str) -> List[str]:
    """Relative paths of every non-folder item under ``root`` (links not followed, ``root``'s own
    included: a link there lists nothing), sorted."""
    if os.path.islink(root):
        return []
    found = []
    for folder, dirs, files in os.walk(root):
        found += [os.path.relpath(os.path.join(folder, n), root) for n in files]
        found += [os.path.relpath(os.path.join(folder, n), root) for n in dirs if os.path.islink(os.path.join(folder, n))]
    return sorted(found)


def delete_listed(root: str, listed: Optional[Iterable[str]], keep_root: bool = False) -> bool:
    """Delete the files ``listed`` (relative to ``root``; ``None``: everything) and then every
    folder they leave empty, ``root`` included unless ``keep_root``; anything else stays.
    Returns whether ``root`` still exists (it holds files the list does not name).

    Nothing is deleted through a link: when ``root`` or a folder on the way to a listed file is
    now a link (put there by someone else), what it leads to is not the project's and stays."""
    if os.path.islink(root):
        return True
    if listed is None:
        shutil.rmtree(root)
        return False
    folders: Set[str] = set()
    for rel in listed:
        path = os.path.join(root, rel)
        if (os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path))
                and not through_link(root, rel)):
            os.unlink(path)
        parent = os.path.dirname(rel)
        while parent:
            folders.add(parent)
            parent = os.path.dirname(parent)
    for rel in sorted(folders, key=lambda f: -f.count(os.sep)) + ([] if keep_root else [""]):
        path = os.path.join(root, rel) if rel else root
        if rel and through_link(root, rel):
            continue
        try:
            os.rmdir(path)  # only when empty: a folder holding a user's file stays
        except OSError:
            pass
    return os.path.lexists(root)


def temporary_of(name: str) -> Optional[str]:
    """The file that :func:`facenet_tf.atomic.atomic_path`'s temporary ``name``
    (``.BASE.tmp-XXXXXXXX[SUFFIX]``) was to become, ``BASE``; ``None`` for any other name."""
    base, tmp, _ = name[1:].rpartition(".tmp-")
    return base if name.startswith(".") and tmp and base else None


def through_link(root: str, rel: str) -> bool:
    """Whether a folder on the way from ``root`` to ``root/rel`` (``rel`` itself excluded) is a link."""
    parent = os.path.dirname(rel)
    while parent:
        if os.path.islink(os.path.join(root, parent)):
            return True
        parent = os.path.dirname(parent)
    return False


def links_in(root: str, rel: str) -> List[str]:
    """``rel`` (relative to ``root``) if it is a link, else the links anywhere inside it (not followed)."""
    path = os.path.join(root, rel)
    if os.path.islink(path) or not os.path.isdir(path):
        return [rel] if os.path.islink(path) else []
    found = []
    for folder, dirs, files in os.walk(path):
        found += [os.path.relpath(os.path.join(folder, n), root) for n in dirs + files
                  if os.path.islink(os.path.join(folder, n))]
    return sorted(found)


def unlisted(root: str, listed: Optional[Iterable[str]]) -> List[str]:
    """The items under ``root`` not written by the project: relative paths of files the list
    does not name, and of whole folders under which it names nothing (``[]`` when ``listed`` is
    ``None``: everything is the project's)."""
    if listed is None or not os.path.isdir(root):
        return []
    listed = set(listed)
    ancestors = {os.path.dirname(rel) for rel in listed}
    for rel in list(ancestors):
        while rel:
            rel = os.path.dirname(rel)
            ancestors.add(rel)
    found = []
    for folder, dirs, files in os.walk(root):
        base = os.path.relpath(folder, root)
        base = "" if base == "." else base
        for name in list(dirs):
            rel = os.path.join(base, name)
            if rel not in ancestors or os.path.islink(os.path.join(folder, name)):
                found.append(rel)  # a folder of the user's, whole
                dirs.remove(name)
        found += [os.path.join(base, n) for n in files if os.path.join(base, n) not in listed]
    return sorted(found)


def carry(old_root: str, new_root: str, items: Iterable[str]) -> None:
    """Link (or copy, where links are impossible) each of ``items`` from ``old_root`` into the
    same place under ``new_root``: the user's files keep their bytes when ``new_root`` replaces
    ``old_root``. The caller has checked that none of them is taken under ``new_root``."""
    for rel in items:
        source, target = os.path.join(old_root, rel), os.path.join(new_root, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(source) and not os.path.islink(source):
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(source, target)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def make_staging(root: str, command: str) -> str:
    """A new temporary sibling ``.NAME.tmp-*`` of ``root``, marked as made by ``command`` in
    this process (:func:`remove_stale_staging` removes it once that process is gone)."""
    parent, base = os.path.dirname(root), os.path.basename(root)
    tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    mark_staging(tmp, root, command)
    return tmp


def mark_staging(tmp: str, root: str, command: str) -> None:
    """Write the marker proving that ``tmp`` is ``command``'s temporary sibling of ``root``."""
    with open(os.path.join(tmp, STAGING_MARKER), "w") as f:
        json.dump({"command": command, "root": root, "host": socket.gethostname(), "pid": os.getpid()}, f)


def remove_stale_staging(root: str, command: str) -> List[str]:
    """Delete the temporary siblings of ``root`` that a killed run of ``command`` left: those
    whose marker names ``root`` and ``command`` and a process of this host that no longer runs.
    Returns their paths; any other folder, and a marker that cannot be read, is left alone."""
    parent, prefix = os.path.dirname(root), f".{os.path.basename(root)}.tmp-"
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(parent, name)
        try:
            with open(os.path.join(path, STAGING_MARKER)) as f:
                mark = json.load(f)
        except (OSError, ValueError):
            continue
        if (isinstance(mark, dict) and mark.get("command") == command and mark.get("root") == root
                and mark.get("host") == socket.gethostname() and not _running(mark.get("pid"))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _running(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # cannot tell: treated as running, so never removed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
