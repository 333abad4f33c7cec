"""Who appears in a video, from when to when, where: :func:`build_timeline`.

Pure bookkeeping over the faces identified in sampled frames. A person's sightings form one
:class:`Appearance` while they are seen again within ``gap`` seconds; unknown faces are told
apart by where they are (a sighting continues the unknown appearance whose last box it overlaps
most, intersection over union at least ``min_overlap``).
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

Box = Tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Sighting:
    """One face in one sampled frame: time in seconds, ``name`` (None: unknown), its distance to
    the nearest gallery entry (None: empty gallery) and box (left, top, right, bottom)."""

    time: float
    name: Optional[str]
    distance: Optional[float]
    box: Box


@dataclasses.dataclass(frozen=True)
class Appearance:
    """A person (or one unknown face) on screen from ``start`` to ``end`` seconds (the first and
    last frame sampled with them), in ``frames`` sampled frames; ``first_box``/``last_box`` say
    where; ``best_distance`` is the smallest distance seen."""

    name: Optional[str]
    start: float
    end: float
    frames: int
    first_box: Box
    last_box: Box
    best_distance: Optional[float]

    def to_json_dict(self) -> dict:
        return {"name": self.name, "start": round(self.start, 3), "end": round(self.end, 3), "frames": self.frames,
                "first_box": [round(v, 1) for v in self.first_box], "last_box": [round(v, 1) for v in self.last_box],
                "best_distance": None if self.best_distance is None else round(self.best_distance, 4)}


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(left, top, right, bottom)`` boxes, in [0, 1]."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def build_timeline(sightings: Sequence[Sighting], gap: float, min_overlap: float = 0.3) -> List[Appearance]:
    """Group sightings into appearances (see the module docstring).

    Args:
        sightings: in time order (ties in any order).
        gap: the longest absence, in seconds, that does not end an appearance (e.g. two sampling
            intervals), >= 0.
        min_overlap: the box overlap an unknown face needs to continue an unknown appearance.

    Returns:
        Appearances ordered by start time, then name (unknown last).
    """
    open_: List[dict] = []
    closed: List[dict] = []
    for s in sightings:
        still = []
        for a in open_:
            (still if s.time - a["end"] <= gap else closed).append(a)
        open_ = still
        match = _continued(open_, s, min_overlap)
        if match is None:
            open_.append({"name": s.name, "start": s.time, "end": s.time, "frames": 1, "first_box": s.box,
                          "last_box": s.box, "best": s.distance, "seen_at": s.time})
            continue
        if match["seen_at"] != s.time:  # a second face of the same name in one frame counts once
            match["frames"] += 1
        known = [d for d in (match["best"], s.distance) if d is not None]
        match.update(end=s.time, last_box=s.box, seen_at=s.time, best=min(known) if known else None)
    everything = sorted(closed + open_, key=lambda a: (a["start"], a["name"] is None, a["name"] or ""))
    return [Appearance(a["name"], a["start"], a["end"], a["frames"], a["first_box"], a["last_box"], a["best"])
            for a in everything]


def _continued(open_: List[dict], s: Sighting, min_overlap: float) -> Optional[dict]:
    if s.name is not None:
        return next((a for a in open_ if a["name"] == s.name), None)
    best, best_overlap = None, min_overlap
    for a in open_:
        if a["name"] is None and a["seen_at"] != s.time:
            overlap = iou(a["last_box"], s.box)
            if overlap >= best_overlap:
                best, best_overlap = a, overlap
    return best
