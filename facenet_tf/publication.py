"""Publishing a new version of a claimed output folder: filled aside, then swapped in, the user's
files carried over.

A command that writes its whole output at once (``align``, ``export``, ``cluster``, a report)
fills a temporary sibling of the output folder (:func:`staged`) and, when it succeeds, moves
it into place (:func:`publish`): a reader sees the previous version or the new one, and a
failure or a kill leaves the previous version as it was. It replaces only what the folder's
ownership record (:class:`facenet_tf.ownership.Ownership`) lists as this command's; a user's
file inside one of its folders is carried into the new version (:mod:`facenet_tf.owned_tree`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator, List

from facenet_tf import owned_tree
from facenet_tf.atomic import environment_error, exchange_dirs, io_error
from facenet_tf.owner_record import OWNER_FILE
from facenet_tf.ownership import Ownership, taken


@contextlib.contextmanager
def staged(owner: Ownership) -> Iterator[str]:
    """Yield a new temporary sibling of ``owner.root`` to fill; when the block succeeds, commit the
    claim and :func:`publish` the sibling into the root; when it fails, remove the sibling (the
    root is unchanged). Temporary siblings a killed run of this command left are removed first
    (:func:`facenet_tf.owned_tree.remove_stale_staging`). Environment faults become one line
    (:func:`facenet_tf.atomic.io_error`)."""
    parent = os.path.dirname(owner.root)
    try:
        os.makedirs(parent, exist_ok=True)
        owned_tree.remove_stale_staging(owner.root, owner.command)
        tmp = owned_tree.make_staging(owner.root, owner.command)
    except OSError as err:
        raise io_error(parent, err) from None
    try:
        yield tmp
        os.remove(os.path.join(tmp, owned_tree.STAGING_MARKER))
        owner.commit()
        publish(owner, tmp)
    except Exception as err:  # noqa: BLE001 - environment faults become one line, the rest passes
        fault = environment_error(err, owner.root)
        if fault is None:
            raise
        raise fault from None
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def publish(owner: Ownership, staged_dir: str) -> None:
    """Move every top-level entry of the folder ``staged_dir`` (a temporary sibling) into
    ``owner.root``, replacing this command's previous entries, and delete the previous entries
    of this command that ``staged_dir`` does not hold. Inside a replaced folder entry, the
    user's files are carried over into the new version. ``staged_dir`` is removed.

    When the root holds nothing but the project's entries, the whole folder is swapped in one
    step (a reader sees the old version or the new one); otherwise entry by entry, each
    atomically, leaving every foreign file where it is.

    Raises:
        FacenetError: ``staged_dir`` holds a name that exists in the root and is not the
            project's (checked before anything moves).
    """
    names = sorted(n for n in os.listdir(staged_dir) if n not in (OWNER_FILE, owned_tree.STAGING_MARKER))
    written = {n: owned_tree.tree_files(os.path.join(staged_dir, n)) for n in names}
    stale = [n for n in owner.entries if owner.entries[n] == owner.command and n not in names]
    owner.add(*names)
    carried = [(n, _users_to_carry(owner, n, os.path.join(staged_dir, n))) for n in names + stale]  # all checked first
    for name, users in carried:
        owned_tree.carry(owner.path(name), os.path.join(staged_dir, name), users)
    if not owner.foreign() and _swap_whole(owner, staged_dir, stale, written):
        return
    for name in names + [n for n in stale if os.path.lexists(os.path.join(staged_dir, n))]:
        source, target = os.path.join(staged_dir, name), owner.path(name)
        target_is_dir = os.path.isdir(target) and not os.path.islink(target)
        if not (os.path.isdir(source) and target_is_dir and exchange_dirs(source, target)):
            if os.path.lexists(target) and (target_is_dir or os.path.isdir(source)):
                delete(target)  # its user files were carried into ``source``
            os.replace(source, target)
        owner.files[name] = written.get(name, [])
        owner.save()
    for name in [n for n in stale if n in owner.entries and not os.path.lexists(os.path.join(staged_dir, n))]:
        owner.remove(name, release=True)
    delete(staged_dir)


def _swap_whole(owner: Ownership, staged_dir: str, stale: List[str], written: dict) -> bool:
    """Swap ``staged_dir`` (with its record) for the whole root in one step; False where the
    system cannot (the caller then publishes entry by entry)."""
    kept = {n: c for n, c in owner.entries.items() if n not in stale or os.path.lexists(os.path.join(staged_dir, n))}
    files = {n: written.get(n, []) for n in kept}
    owner.save(os.path.join(staged_dir, OWNER_FILE), kept, files)
    os.chmod(staged_dir, os.stat(owner.root).st_mode & 0o7777)  # the folder keeps its permissions
    if exchange_dirs(staged_dir, owner.root):
        owned_tree.mark_staging(staged_dir, owner.root, owner.command)  # the previous version, ours alone
        delete(staged_dir)
        owner.entries, owner.files = kept, files
        return True
    os.remove(os.path.join(staged_dir, OWNER_FILE))
    return False


def carry_users_into(owner: Ownership, name: str, new_folder: str) -> None:
    """Link the user's files inside the folder entry ``name`` into ``new_folder``, its new
    version, so they survive when it replaces the entry.

    Raises:
        FacenetError: a user's file has a name the new version needs (nothing linked).
    """
    users = _users_to_carry(owner, name, new_folder)
    if users:
        owned_tree.carry(owner.path(name), new_folder, users)


def _users_to_carry(owner: Ownership, name: str, new_folder: str) -> List[str]:
    target = owner.path(name)
    if not (os.path.isdir(target) and not os.path.islink(target)):
        return []
    users = owned_tree.unlisted(target, owner.files.get(name))
    if users and os.path.lexists(new_folder) and not os.path.isdir(new_folder):
        raise taken(os.path.join(target, users[0]), owner.command)
    for rel in users:
        if os.path.lexists(os.path.join(new_folder, rel)):
            raise taken(os.path.join(target, rel), owner.command)
    return users


def delete(path: str) -> None:
    """Remove ``path``: a folder with all it holds, or a file or link (never what a link leads to)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
