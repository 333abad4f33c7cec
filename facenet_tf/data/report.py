"""Skip and count: what a command left out of a dataset, and why.

Every command that reads a folder of identities (training, ``prepare``, ``align``, ``evaluate``,
``enroll``) keeps one :class:`SkipReport`. A bad file or folder is *skipped* with a reason from
:data:`facenet_tf.data.reader.REASONS`; an identity with too few usable images is *excluded*.
The report gives one log line per reason (stderr, through the ``facenet_tf`` logger) and the
full list as ``skipped.json`` where the command has an output folder.

With ``strict=True`` the first skip raises instead: a one-line :class:`FacenetError` naming the
file, before anything is written. Excluding a small identity is never an error: it is a property
of the data, not a broken file.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Dict, List, Optional

from facenet_tf.data.reader import REASONS, BadImage
from facenet_tf.errors import FacenetError

REPORT_FILE = "skipped.json"


class StrictError(FacenetError):
    """The first bad file or folder under ``strict``: one line naming it."""

#: Files shown per reason in a log line (the JSON report lists them all).
SHOWN = 3


class SkipReport:
    """Files and folders skipped, and identities excluded, by one command.

    Args:
        strict: raise on the first skipped file or folder instead of recording it.
        hint: the strict error adds how ``--strict`` changes this (default); ``False`` for a
            command that has no ``--strict`` (every image it is given must be good).
    """

    def __init__(self, strict: bool = False, hint: bool = True):
        self.strict = strict
        self.hint = hint
        self.skipped: List[Dict[str, str]] = []
        self.excluded: List[Dict[str, Any]] = []

    def skip(self, path: str, reason: str, detail: str = "", kind: str = "file") -> None:
        """Record a skipped file (``kind="file"``) or folder (``"folder"``).

        Raises:
            StrictError: in strict mode, naming ``path`` and the reason.
        """
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {', '.join(REASONS)}; received {reason!r}")
        self.add(BadImage(path, reason, detail), kind)

    def add(self, bad: BadImage, kind: str = "file") -> None:
        """Record a :class:`BadImage` (raised again in strict mode, with a hint)."""
        if self.strict:
            if not self.hint:
                raise StrictError(str(bad))
            raise StrictError(f"{bad} (--strict stops at the first bad {kind}; without it the {kind} is skipped "
                               "and reported)")
        self.skipped.append({"path": bad.path, "reason": bad.reason, "detail": bad.detail, "kind": kind})

    def exclude_identity(self, name: str, images: int, needed: int) -> None:
        """Record an identity left out for having ``images`` usable images, fewer than ``needed``."""
        self.excluded.append({"identity": name, "images": int(images), "needed": int(needed)})

    def extend(self, other: "SkipReport") -> None:
        self.skipped += other.skipped
        self.excluded += other.excluded

    @property
    def files_skipped(self) -> int:
        return sum(1 for s in self.skipped if s["kind"] == "file")

    def counts(self) -> Dict[str, int]:
        """Skipped entries per reason, plus ``too_few_images`` for excluded identities."""
        counts = collections.Counter(s["reason"] for s in self.skipped)
        if self.excluded:
            counts["too_few_images"] = len(self.excluded)
        return dict(sorted(counts.items()))

    def lines(self) -> List[str]:
        """One human-readable line per reason (and one for excluded identities)."""
        out = []
        by_reason: Dict[str, List[Dict[str, str]]] = collections.defaultdict(list)
        for entry in self.skipped:
            by_reason[entry["reason"]].append(entry)
        for reason, entries in sorted(by_reason.items()):
            kind = entries[0]["kind"]
            shown = ", ".join(e["path"] for e in entries[:SHOWN]) + (" ..." if len(entries) > SHOWN else "")
            out.append(f"skipped {len(entries)} {kind}{'s' if len(entries) > 1 else ''} ({reason}: "
                       f"{REASONS[reason]}): {shown}")
        if self.excluded:
            names = ", ".join(f"{e['identity']} ({e['images']})" for e in self.excluded[:SHOWN])
            more = " ..." if len(self.excluded) > SHOWN else ""
            out.append(f"excluded {len(self.excluded)} identit{'ies' if len(self.excluded) > 1 else 'y'} with fewer "
                       f"than {self.excluded[0]['needed']} usable images: {names}{more}")
        return out

    def log(self, logger: Optional[logging.Logger] = None, what: str = "") -> None:
        """Each of :meth:`lines` as a warning of the ``facenet_tf`` logger (stderr on the command line)."""
        logger = logger or logging.getLogger("facenet_tf")
        for line in self.lines():
            logger.warning("%s%s", f"{what}: " if what else "", line)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form written as ``skipped.json``."""
        return {"counts": self.counts(), "skipped": list(self.skipped), "excluded_identities": list(self.excluded)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SkipReport":
        report = cls()
        report.skipped = list(data.get("skipped", []))
        report.excluded = list(data.get("excluded_identities", []))
        return report

    def write(self, path: str) -> None:
        """Write :meth:`to_dict` to ``path`` atomically."""
        from facenet_tf.artifacts import write_json

        write_json(path, self.to_dict())
