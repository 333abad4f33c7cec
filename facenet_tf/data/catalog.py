"""Identity catalog: one sub-folder per identity, any image format Pillow or TF can read.

This is the layout of LFW, CASIA-WebFace, VGGFace2 and ORL::

    root/
      Alice/  001.jpg 002.png ...
      Bob/    a.pgm b.pgm ...

Identities are ordered by *natural* sort of their folder names (``s2`` before ``s10``) and
images likewise, so the catalog, its labels and every seeded split are the same on every
machine. Images may sit in sub-folders of an identity folder (``Alice/2019/001.jpg``). The walk
follows symbolic links but survives loops and unreadable folders: they are skipped and recorded
in a :class:`~facenet_tf.data.report.SkipReport`, as are dangling links. :func:`usable_catalog`
then decodes every image once with the one reader (:mod:`facenet_tf.data.reader`) and leaves out
the files it refuses and the identities left with too few images. Identity folders are
de-duplicated by real path: a link to another identity's folder is the same identity, counted once
(under the name met first, in natural order), with a warning.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from facenet_tf.data.reader import DEFAULT_LIMITS, BadImage, ImageLimits, inspect_images
from facenet_tf.data.report import SkipReport
from facenet_tf.errors import FacenetError

logger = logging.getLogger("facenet_tf")

#: The file names every folder reader (prepare, train, evaluate, enroll --from-dir, align, export's
#: calibration set) takes as images. AVIF is decoded by Pillow >= 11.2; HEIC/HEIF only with a
#: Pillow plugin (pillow-heif): without one such a file is listed, refused by the reader and
#: reported as skipped, never silently ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".pgm", ".ppm", ".pnm", ".webp", ".tif", ".tiff",
                    ".avif", ".heic", ".heif")


def natural_key(text: str) -> Tuple:
    """Sort key that orders embedded numbers numerically: ``s2`` < ``s10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


@dataclasses.dataclass(frozen=True)
class IdentityCatalog:
    """Images grouped by identity.

    Attributes:
        paths: image file paths, grouped by identity (all images of identity 0 first).
        labels: int32 [N], identity index of each path, non-decreasing.
        names: identity names (folder names), ``names[label]``.
        root: folder the catalog was scanned from ("" when built in memory).
        dropped_identities: names of identities left out for having too few images.
        native: bool [N] or ``None``: set by :func:`usable_catalog`, True where TensorFlow
            decodes the file's bytes itself (the rest is decoded by the reader through Pillow).
    """

    paths: Tuple[str, ...]
    labels: np.ndarray
    names: Tuple[str, ...]
    root: str = ""
    dropped_identities: Tuple[str, ...] = ()
    native: Optional[np.ndarray] = None

    @property
    def num_images(self) -> int:
        return len(self.paths)

    @property
    def num_identities(self) -> int:
        return len(self.names)

    def counts(self) -> np.ndarray:
        """int64 [num_identities]: images per identity."""
        return np.bincount(self.labels, minlength=self.num_identities)

    def subset(self, identities: Sequence[int]) -> "IdentityCatalog":
        """Catalog of the given identity indices, relabelled 0..len(identities)-1 in that order."""
        rows: List[int] = []
        labels: List[int] = []
        for new, old in enumerate(identities):
            members = np.flatnonzero(self.labels == old)
            rows.extend(members.tolist())
            labels.extend([new] * len(members))
        return IdentityCatalog(
            paths=tuple(self.paths[i] for i in rows),
            labels=np.asarray(labels, np.int32),
            names=tuple(self.names[i] for i in identities),
            root=self.root,
            native=None if self.native is None else self.native[np.asarray(rows, np.int64)],
        )

    def split(self, validation_identities: int) -> Tuple["IdentityCatalog", "IdentityCatalog"]:
        """Hold out the *last* ``validation_identities`` identities (in natural name order).

        Returns:
            ``(train, validation)``; ``validation`` is empty when the argument is 0.

        Raises:
            FacenetError: fewer than 2 identities, or fewer than 2 would remain for training.
        """
        n = self.num_identities
        if n < 2:
            where = self.root if self.root else "the data"
            raise FacenetError(f"{where} holds {n} {'identity' if n == 1 else 'identities'} with usable images: "
                               "training needs at least 2 (one sub-folder of images per person)")
        if validation_identities < 0 or n - validation_identities < 2:
            raise FacenetError(
                f"validation_identities must be between 0 and {n - 2} for a dataset of {n} "
                f"identities; received {validation_identities}"
            )
        cut = n - validation_identities
        return self.subset(range(cut)), self.subset(range(cut, n))

    def summary(self) -> str:
        counts = self.counts()
        text = f"{self.num_images} images of {self.num_identities} identities"
        if self.num_identities:
            text += f" ({counts.min()}-{counts.max()} images each, median {int(np.median(counts))})"
        if self.dropped_identities:
            text += f"; {len(self.dropped_identities)} identities with too few images dropped"
        return text


def _images_under(folder: str, report: SkipReport, ancestors: Set[Tuple[int, int]]) -> List[str]:
    """Image files under ``folder`` (depth first, natural order), following links without looping."""
    try:
        stat = os.stat(folder)
    except OSError as err:
        reason = "symlink_loop" if err.errno == errno.ELOOP else "unreadable_folder"
        report.skip(folder, reason, err.strerror or str(err), kind="folder")
        return []
    key = (stat.st_dev, stat.st_ino)
    if key in ancestors:
        report.skip(folder, "symlink_loop", "leads back to a folder above it", kind="folder")
        return []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: natural_key(e.name))
    except OSError as err:
        report.skip(folder, "unreadable_folder", err.strerror or str(err), kind="folder")
        return []
    found: List[str] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError as err:  # e.g. a link to itself: ELOOP
            kind = "file" if entry.name.lower().endswith(IMAGE_EXTENSIONS) else "folder"
            reason = "symlink_loop" if err.errno == errno.ELOOP else f"unreadable{'' if kind == 'file' else '_folder'}"
            report.skip(entry.path, reason, err.strerror or str(err), kind=kind)
            continue
        if is_dir:
            found += _images_under(entry.path, report, ancestors | {key})
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
            if entry.is_symlink():
                try:
                    os.stat(entry.path)
                except OSError as err:  # a dangling link
                    report.skip(entry.path, "symlink_loop" if err.errno == errno.ELOOP else "missing",
                                err.strerror or str(err))
                    continue
            found.append(entry.path)
    return found


def scan_directory(root: str, min_images: int = 2, max_identities: Optional[int] = None,
                   report: Optional[SkipReport] = None) -> IdentityCatalog:
    """Scan ``root`` for one sub-folder per identity (images anywhere below it).

    Only names are looked at here; :func:`usable_catalog` decodes the images.

    Args:
        root: dataset folder.
        min_images: identities with fewer image files are dropped (they can never be an
            anchor with a positive); their names are kept in ``dropped_identities``.
            Use 1 to keep every identity (e.g. for a gallery).
        max_identities: keep only the first N identities (natural order), for quick runs.
        report: receives unreadable folders, symbolic-link loops, dangling links and
            dropped identities (strict: the first bad folder raises).

    Returns:
        An :class:`IdentityCatalog`.

    Raises:
        FacenetError: if ``root`` is not a folder or holds no usable identity; in strict
            mode, the first unreadable folder or link loop.
    """
    if not os.path.isdir(root):
        raise FacenetError(f"data directory {root!r} does not exist or is not a folder")
    report = report if report is not None else SkipReport()
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: natural_key(e.name))
    except OSError as err:
        raise FacenetError(f"data directory {root!r} cannot be listed: {err.strerror or err}") from None
    top = os.stat(root)
    paths: List[str] = []
    labels: List[int] = []
    names: List[str] = []
    dropped: List[str] = []
    seen: Dict[str, str] = {}  # real path of an identity folder -> the name it was first found under
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_dir():
                continue
        except OSError as err:
            report.skip(entry.path, "symlink_loop" if err.errno == errno.ELOOP else "unreadable_folder",
                        err.strerror or str(err), kind="folder")
            continue
        real = os.path.realpath(entry.path)
        if real in seen:
            logger.warning("identity folder %s is the same folder as %s (a link): counted once, as %r",
                           entry.path, os.path.join(root, seen[real]), seen[real])
            continue
        seen[real] = entry.name
        files = _images_under(entry.path, report, {(top.st_dev, top.st_ino)})
        if not files:
            continue
        if len(files) < min_images:
            dropped.append(entry.name)
            report.exclude_identity(entry.name, len(files), min_images)
            continue
        if max_identities is not None and len(names) >= max_identities:
            break
        labels.extend([len(names)] * len(files))
        names.append(entry.name)
        paths.extend(files)
    if not names:
        raise FacenetError(
            f"data directory {root!r} holds no identity folder with at least {min_images} images "
            f"(expected root/<identity>/<image> with extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    return IdentityCatalog(tuple(paths), np.asarray(labels, np.int32), tuple(names), root, tuple(dropped))


def usable_catalog(catalog: IdentityCatalog, report: SkipReport, min_images: int = 1,
                  limits: ImageLimits = DEFAULT_LIMITS, workers: Optional[int] = None) -> IdentityCatalog:
    """Decode every image of ``catalog`` once; leave out the refused files and the identities
    left with fewer than ``min_images`` usable images.

    Args:
        catalog: from :func:`scan_directory`.
        report: receives each refused file (strict: the first one, in catalog order, raises)
            and each excluded identity.
        min_images: usable images an identity needs (K for training, 1 for a gallery).
        limits: what the reader refuses (pixel limit).
        workers: decoding threads (default: CPU count + 2).

    Returns:
        The catalog of usable images, relabelled 0..M-1 in the same order, with ``native`` set.

    Raises:
        FacenetError: strict mode and a bad file, or no identity left.
    """
    results = inspect_images(catalog.paths, limits, workers)
    keep = np.ones(catalog.num_images, bool)
    for i, result in enumerate(results):
        if isinstance(result, BadImage):
            report.add(result)
            keep[i] = False
    native = np.array([bool(r) if not isinstance(r, BadImage) else False for r in results], bool)
    counts = np.bincount(catalog.labels[keep], minlength=catalog.num_identities)
    kept_ids = []
    dropped = list(catalog.dropped_identities)
    for label, name in enumerate(catalog.names):
        if counts[label] >= min_images:
            kept_ids.append(label)
        else:
            dropped.append(name)
            report.exclude_identity(name, int(counts[label]), min_images)
    if not kept_ids:
        raise FacenetError(f"{catalog.root or 'dataset'}: no identity has {min_images} usable images "
                           f"({sum(1 for r in results if isinstance(r, BadImage))} of {catalog.num_images} files refused)")
    rows = np.flatnonzero(keep & np.isin(catalog.labels, kept_ids))
    remap = np.full(catalog.num_identities, -1, np.int32)
    remap[kept_ids] = np.arange(len(kept_ids), dtype=np.int32)
    return IdentityCatalog(
        paths=tuple(catalog.paths[i] for i in rows),
        labels=remap[catalog.labels[rows]],
        names=tuple(catalog.names[i] for i in kept_ids),
        root=catalog.root,
        dropped_identities=tuple(dropped),
        native=native[rows],
    )
