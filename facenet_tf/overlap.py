"""Whether a command's output and its inputs overlap, through links as well as by name.

An output written inside an input (or holding one) is read back as input, or lands in the
user's data. Comparing the paths given is not enough: a data folder whose person folders are
links into ``X`` reaches ``X`` although no name says so, and an output folder holding a link
into the data writes through it. So both sides are compared as the places they *reach*:

* an input reaches its real path and, for a folder, the target of every link found while
  listing it as the readers list it (:func:`facenet_tf.data.catalog.scan_directory`: folder
  links followed, each folder once, names starting with ``.`` skipped). Only folders are
  listed and only links are resolved (``os.scandir`` tells a link from its directory entry),
  so the cost is one listing per folder, as the readers' own;
* an output reaches its real path and the target of every link in it that the project did not
  write (the top level and the folders its ownership record lists: where it writes).

Two places overlap when one is the other or lies inside it. Folders are compared by identity
(device and inode), not by name, so a bind mount or a second hard link of a file is caught too.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from facenet_tf.errors import FacenetError

#: A place: ``(real path, the link that leads there or None for the path given itself)``.
Place = Tuple[str, Optional[str]]


def input_places(source: str) -> List[Place]:
    """The places the readers of ``source`` (a file or folder) reach; ``[]`` when it does not exist."""
    real = os.path.realpath(source)
    if not os.path.exists(real):
        return []
    places: List[Place] = [(real, None)]
    if os.path.isdir(real):
        places += _links_below(source, follow=True, skip_hidden=True)
    return places


def output_places(output: str, record: Optional[Dict] = None) -> List[Place]:
    """The places writes into ``output`` may reach: its real path and the targets of the links in it
    that the project did not write, at its top level and inside the folders its ownership record
    ``record`` (:func:`facenet_tf.owner_record.read_record`) lists (links not followed). A foreign
    folder is never written into, so it is not listed: a large folder given with
    ``--allow-existing-files`` costs one listing."""
    places: List[Place] = [(os.path.realpath(output), None)]
    if not (os.path.isdir(output) and not os.path.islink(output)):
        return places
    entries = (record or {}).get("entries") or {}
    files = (record or {}).get("files") or {}
    for entry in _entries(output):
        if entry.is_symlink():
            places.append((os.path.realpath(entry.path), entry.path))
        elif entry.name in entries and entry.is_dir():
            listed = files.get(entry.name)
            if listed is not None:  # None: a record from before file lists, everything in it the project's
                listed = set(listed)
                places += [(real, link) for real, link in _links_below(entry.path, follow=False, skip_hidden=False)
                           if os.path.relpath(link, entry.path) not in listed]
    return places


def check_disjoint(output: str, inputs: Iterable[Optional[str]], flag: str = "--output",
                   record: Optional[Dict] = None) -> None:
    """Raise unless ``output`` and every input (folder or file) are apart: no place one reaches is,
    holds or lies inside a place the other reaches (see the module docstring).

    Args:
        output: the output folder or file (it need not exist yet).
        inputs: the command's inputs; ``None`` and URLs are ignored.
        flag: the output's option, named in the message.
        record: ``output``'s ownership record, if any: the links it lists are the project's own
            (``cluster --link`` writes links to the photos it read) and are not followed.

    Raises:
        FacenetError: one line naming the output, the input and the link that joins them.
    """
    sources = [s for s in inputs if s and "://" not in str(s)]
    if not sources:
        return
    chains = _Chains()
    outs = [(place, chains.of(place[0])) for place in output_places(output, record)]
    out_ids = {chain[0]: place for place, chain in outs if chain[0] is not None}
    for source in sources:
        ins = [(place, chains.of(place[0])) for place in input_places(source)]
        in_ids = {chain[0]: place for place, chain in ins if chain[0] is not None}
        for place, chain in outs:  # an output place equal to, or inside, an input place
            hit = next((in_ids[i] for i in chain if i in in_ids), None)
            if hit is not None:
                raise _overlap(output, flag, source, place, hit, inside=True)
        for place, chain in ins:  # an input place inside an output place
            hit = next((out_ids[i] for i in chain[1:] if i in out_ids), None)
            if hit is not None:
                raise _overlap(output, flag, source, hit, place, inside=False)


def _overlap(output: str, flag: str, source: str, out: Place, src: Place, inside: bool) -> FacenetError:
    """The one-line refusal for the output place ``out`` against the input place ``src``."""
    if out[1] is not None:
        return FacenetError(f"{flag} {output} holds the link {out[1]} to {out[0]}, which reaches the input {source}"
                            f"{_via(src)}: writes there would land in it; move the link away or choose another path")
    if src[1] is not None:
        where = "is inside" if inside else "holds"
        return FacenetError(f"{flag} {output} {where} {src[0]}, which the input {source} reaches through the link "
                            f"{src[1]}: choose a path apart from it")
    if inside and not os.path.isdir(src[0]):
        return FacenetError(f"{flag} {output} is the input file {source}: it would be overwritten; choose another path")
    if inside:
        return FacenetError(f"{flag} {output} is inside the input folder {source}: it would be read back as input; "
                            "choose a path outside it")
    return FacenetError(f"{flag} {output} holds the input {'folder' if os.path.isdir(src[0]) else 'file'} {source}: "
                        "choose a path apart from it")


def _via(place: Place) -> str:
    return f" (through its link {place[1]})" if place[1] is not None else ""


def _links_below(root: str, follow: bool, skip_hidden: bool) -> List[Place]:
    """``(target, link)`` of every link under the folder ``root``; folder links are descended
    into when ``follow`` (each folder once, so a loop ends)."""
    found: List[Place] = []
    seen = set()
    folders: Dict[str, str] = {}
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            stat = os.stat(folder)
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        for entry in _entries(folder):
            if skip_hidden and entry.name.startswith("."):
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=follow)
            except OSError:  # a loop or an unreadable entry: the readers skip it too
                continue
            if is_link:
                found.append((_resolve(folder, entry.path, folders), entry.path))
            if is_dir:
                todo.append(entry.path)
    return found


def _resolve(parent: str, link: str, folders: Dict[str, str]) -> str:
    """``os.path.realpath(link)``, resolving each folder a link names once (``folders`` caches
    them): 10 000 image links into 100 folders cost 10 000 ``readlink`` calls, not a walk of every
    path's components."""
    try:
        target = os.path.join(parent, os.readlink(link))
    except OSError:
        return os.path.realpath(link)
    folder, _, name = target.rpartition(os.sep)
    if name in ("", ".", ".."):
        return os.path.realpath(link)
    if folder not in folders:
        folders[folder] = os.path.realpath(folder)
    real = os.path.join(folders[folder], name)
    return os.path.realpath(real) if os.path.islink(real) else real


def _entries(folder: str) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            yield from list(it)
    except OSError:
        return


class _Chains:
    """Identities (device, inode) of a path and of each existing folder above it, cached per folder."""

    def __init__(self):
        self._cache: Dict[str, List[Tuple[int, int]]] = {}

    @staticmethod
    def identity(path: str) -> Optional[Tuple[int, int]]:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def of(self, real: str) -> List[Optional[Tuple[int, int]]]:
        """``[identity of real, of its folder, ..., of /]`` (``None`` for a part that does not exist)."""
        chain = self._cache.get(real)
        if chain is None:
            parent = real.rpartition(os.sep)[0] or os.sep
            chain = self._cache[real] = [self.identity(real)] + (self.of(parent) if parent != real else [])
        return chain
