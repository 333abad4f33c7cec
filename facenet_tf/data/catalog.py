"""Identity catalog: one sub-folder per identity, any image format Pillow or TF can read.

This is the layout of LFW, CASIA-WebFace, VGGFace2 and ORL::

    root/
      Alice/  001.jpg 002.png ...
      Bob/    a.pgm b.pgm ...

Identities are ordered by *natural* sort of their folder names (``s2`` before ``s10``) and
images likewise, so the catalog, its labels and every seeded split are the same on every
machine.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".pgm", ".ppm", ".pnm", ".webp", ".tif", ".tiff")


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
    """

    paths: Tuple[str, ...]
    labels: np.ndarray
    names: Tuple[str, ...]
    root: str = ""
    dropped_identities: Tuple[str, ...] = ()

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
        paths: List[str] = []
        labels: List[int] = []
        for new, old in enumerate(identities):
            members = np.flatnonzero(self.labels == old)
            paths.extend(self.paths[i] for i in members)
            labels.extend([new] * len(members))
        return IdentityCatalog(
            paths=tuple(paths),
            labels=np.asarray(labels, np.int32),
            names=tuple(self.names[i] for i in identities),
            root=self.root,
        )

    def split(self, validation_identities: int) -> Tuple["IdentityCatalog", "IdentityCatalog"]:
        """Hold out the *last* ``validation_identities`` identities (in natural name order).

        Returns:
            ``(train, validation)``; ``validation`` is empty when the argument is 0.

        Raises:
            FacenetError: if fewer than 2 identities would remain for training.
        """
        n = self.num_identities
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


def scan_directory(root: str, min_images: int = 2, max_identities: Optional[int] = None) -> IdentityCatalog:
    """Scan ``root`` for one sub-folder per identity.

    Args:
        root: dataset folder.
        min_images: identities with fewer images are dropped (they can never be an
            anchor with a positive); their names are kept in ``dropped_identities``.
            Use 1 to keep every identity (e.g. for a gallery).
        max_identities: keep only the first N identities (natural order), for quick runs.

    Returns:
        An :class:`IdentityCatalog`.

    Raises:
        FacenetError: if ``root`` is not a folder or holds no usable identity.
    """
    if not os.path.isdir(root):
        raise FacenetError(f"data directory {root!r} does not exist or is not a folder")
    entries = sorted((e for e in os.scandir(root) if e.is_dir()), key=lambda e: natural_key(e.name))
    paths: List[str] = []
    labels: List[int] = []
    names: List[str] = []
    dropped: List[str] = []
    for entry in entries:
        files = sorted(
            (f.path for f in os.scandir(entry.path) if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS)),
            key=lambda p: natural_key(os.path.basename(p)),
        )
        if not files:
            continue
        if len(files) < min_images:
            dropped.append(entry.name)
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
