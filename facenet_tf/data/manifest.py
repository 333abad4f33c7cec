"""``manifest.json``: what a prepared folder holds, and the index the P×K sampler reads it by.

``facenet-tf prepare`` (local or Apache Beam) writes TFRecord shards and, last, this manifest::

    {"format": "facenet_tf.manifest/1", "plan": "3f2a…", "runner": "local", "source": "/data/raw",
     "transform": {...how each image was checked and stored...},
     "num_images": 1234, "num_identities": 56,
     "identities": {"names": ["alice", "bob", ...], "images": [20, 17, ...]},   # label = position
     "skipped": {"truncated": 2, "too_few_images": 1},
     "shards": [{"file": "data-3f2a…/shard-00000-of-00016.tfrecord", "records": 80, "bytes": 1234567,
                 "index": {"labels": "<base64 int32>", "counts": "<base64 int32>",
                           "offsets": "<base64 int64>", "lengths": "<base64 int32>"}}, ...]}

Labels number the identities in natural name order, as a folder's would: identity
``identities["names"][label]`` has ``identities["images"][label]`` usable images. Each shard's ``index``
lists, per identity, the byte offset and length of every record of it (``counts[g]`` records of
identity ``labels[g]``, then the next group's; little-endian arrays in base64, which a million
records turn into 16 MB of text and no Python objects), so :class:`ShardIndex` finds any record
without reading the others, and training reads exactly the shards and records listed here: files
of an earlier run, of an unfinished one, or of identities left out are never read. The manifest
is written after every shard it lists, by an atomic rename: a reader sees the previous complete
manifest or the new one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import posixpath
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.data.report import SkipReport
from facenet_tf.errors import FacenetError

MANIFEST_FILE = "manifest.json"
FORMAT = "facenet_tf.manifest/1"
#: The index file of shards written before manifests existed.
LEGACY_INDEX = "shards.json"


def join(root: str, name: str) -> str:
    """``root/name`` for local folders and ``gs://``-style URLs alike."""
    return posixpath.join(root, name) if "://" in root else os.path.join(root, name)


def shard_path(root: str, file: Any) -> str:
    """The path of a manifest's shard ``file`` under ``root``, refused when it leads outside it.

    Raises:
        FacenetError: an absolute path, a ``..`` step, or (locally) a link out of ``root``.
    """
    manifest = join(root, MANIFEST_FILE)
    if not isinstance(file, str) or not file:
        raise FacenetError(f"{manifest} is malformed: shard file {file!r} is not a relative path")
    parts = file.replace("\\", "/").split("/")
    if file.startswith("/") or "://" in file or ".." in parts or (len(file) > 1 and file[1] == ":"):
        raise FacenetError(f"{manifest} lists shard {file!r}, which leads outside {root}: refusing to read it "
                           "(re-run 'facenet-tf prepare')")
    path = join(root, file)
    if "://" not in root:
        real_root = os.path.realpath(root)
        if not os.path.realpath(path).startswith(real_root.rstrip(os.sep) + os.sep):
            raise FacenetError(f"{manifest} lists shard {file!r}, which links outside {root}: refusing to read it "
                               "(re-run 'facenet-tf prepare')")
    return path


def verified_shard_paths(manifest: Dict[str, Any], root: str) -> Tuple[str, ...]:
    """The shard paths of ``manifest``, each inside ``root`` and of the size the manifest records.

    Checked before training reads a record, so a truncated, grown or missing shard is one line.

    Raises:
        FacenetError: ``shard X is N bytes, manifest says M: re-run prepare``, a missing shard,
            or a path leading outside ``root``.
    """
    gfile = _gfile() if "://" in root else None
    paths = []
    for shard in manifest.get("shards") or []:
        if not isinstance(shard, dict):
            raise FacenetError(f"{join(root, MANIFEST_FILE)} is malformed: a shard entry is {shard!r}")
        path = shard_path(root, shard.get("file"))
        try:
            size = gfile.stat(path).length if gfile else os.path.getsize(path)
        except Exception:  # noqa: BLE001 - FileNotFoundError, or gfile's NotFoundError
            raise FacenetError(f"shard {path} is missing (listed in {join(root, MANIFEST_FILE)}): "
                               "re-run 'facenet-tf prepare'") from None
        expected = shard.get("bytes")
        if isinstance(expected, int) and size != expected:
            raise FacenetError(f"shard {path} is {size} bytes, manifest says {expected}: re-run 'facenet-tf prepare'")
        paths.append(path)
    return tuple(paths)


def encode_index(labels, counts, offsets, lengths) -> Dict[str, str]:
    """A shard's ``index`` entry: ``counts[g]`` records of identity ``labels[g]`` at ``offsets``/``lengths``."""
    def pack(values, dtype):
        return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")

    return {"labels": pack(labels, "<i4"), "counts": pack(counts, "<i4"), "offsets": pack(offsets, "<i8"),
            "lengths": pack(lengths, "<i4")}


def decode_index(entry: Dict[str, str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, counts, offsets, lengths)`` arrays of a shard's ``index`` entry."""
    def unpack(name, dtype):
        return np.frombuffer(base64.b64decode(entry[name]), dtype=dtype)

    labels, counts = unpack("labels", "<i4"), unpack("counts", "<i4")
    offsets, lengths = unpack("offsets", "<i8"), unpack("lengths", "<i4")
    if labels.size != counts.size or int(counts.sum()) != offsets.size or offsets.size != lengths.size:
        raise ValueError(f"index arrays disagree: {labels.size} labels, {counts.size} counts summing to "
                         f"{int(counts.sum())}, {offsets.size} offsets, {lengths.size} lengths")
    return labels, counts, offsets, lengths


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def is_prepared(path: str) -> bool:
    """True if ``path`` holds a ``manifest.json`` or the ``shards.json`` of an older prepare."""
    gfile = _gfile()
    return gfile.exists(join(path, MANIFEST_FILE)) or gfile.exists(join(path, LEGACY_INDEX))


def load_manifest(path: str) -> Dict[str, Any]:
    """The manifest of a prepared folder (local or any file system TensorFlow reads).

    Raises:
        FacenetError: no manifest, an older prepare's ``shards.json`` only, unreadable JSON or
            another format.
    """
    gfile = _gfile()
    file = join(path, MANIFEST_FILE)
    if not gfile.exists(file):
        if gfile.exists(join(path, LEGACY_INDEX)):
            raise FacenetError(f"{path} was written by an older 'facenet-tf prepare' (shards.json, no manifest.json): "
                               "run 'facenet-tf prepare' again to write shards with a manifest")
        raise FacenetError(f"{path} holds no {MANIFEST_FILE}: write it with 'facenet-tf prepare'")
    try:
        with gfile.GFile(file, "r") as f:
            manifest = json.loads(f.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FacenetError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FacenetError(f"{file}: format must be {FORMAT!r}; received {manifest.get('format') if isinstance(manifest, dict) else manifest!r}")
    return manifest


def build_manifest(*, plan: str, runner: str, source: str, transform: Dict[str, Any], names: Sequence[str],
                   shards: Sequence[Tuple[str, int, int, Sequence[Tuple[str, int, int]]]], min_images: int,
                   report: SkipReport) -> Dict[str, Any]:
    """The manifest of written shards.

    Args:
        plan: the plan id (the data folder is ``data-<plan>``).
        runner: ``"local"`` or the Beam runner's name.
        source: the folder that was prepared.
        transform: how images were checked and stored.
        names: every identity that had files, in natural order.
        shards: per shard ``(file relative to the output folder, records in the file, bytes,
            [(identity name, offset, length), ...] of its usable records)``.
        min_images: identities with fewer usable records are left out (and reported).
        report: the run's skip report; receives the identities left out.

    Returns:
        The manifest dict.
    """
    counts = dict.fromkeys(names, 0)
    for _, _, _, records in shards:
        for name, _, _ in records:
            counts[name] += 1
    kept = []
    for name in names:
        if counts[name] >= min_images:
            kept.append(name)
        else:
            report.exclude_identity(name, counts[name], min_images)
    label = {name: i for i, name in enumerate(kept)}
    listed = []
    for file, num_records, size, records in shards:
        ordered = sorted((r for r in records if r[0] in label), key=lambda r: (label[r[0]], r[1]))
        groups: List[List[int]] = []
        for name, _, _ in ordered:
            if groups and groups[-1][0] == label[name]:
                groups[-1][1] += 1
            else:
                groups.append([label[name], 1])
        listed.append({"file": file, "records": int(num_records), "bytes": int(size),
                       "index": encode_index([g[0] for g in groups], [g[1] for g in groups],
                                             [r[1] for r in ordered], [r[2] for r in ordered])})
    return {
        "format": FORMAT,
        "plan": plan,
        "runner": runner,
        "source": source,
        "transform": transform,
        "num_images": int(sum(counts[n] for n in kept)),
        "num_identities": len(kept),
        "identities": {"names": list(kept), "images": [counts[n] for n in kept]},
        "skipped": report.counts(),
        "shards": listed,
    }


@dataclasses.dataclass(frozen=True)
class ShardIndex:
    """Where every usable record is, grouped by identity: what the P×K sampler holds.

    16 bytes per image (shard number int32, byte offset int64, length int32) and 12 per identity
    (its manifest label and record count); the manifest text itself is not kept.

    Attributes:
        files: shard paths, ``files[shard[i]]`` holds record ``i``.
        shard: int32 [N].
        offset: int64 [N], byte offset of the record (its 12-byte header) in the shard.
        length: int32 [N], bytes of the record's data.
        counts: int64 [M] records of each identity; records are grouped in this order.
        labels: int32 [M] manifest label of each identity.
        names: identity names, ``names[j]`` has label ``labels[j]``.
    """

    files: Tuple[str, ...]
    shard: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    names: Tuple[str, ...]

    @property
    def num_images(self) -> int:
        return int(self.shard.size)

    @property
    def num_identities(self) -> int:
        return int(self.counts.size)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held per image and per identity."""
        return int(sum(a.nbytes for a in (self.shard, self.offset, self.length, self.counts, self.labels)))

    @classmethod
    def from_manifest(cls, manifest: Dict[str, Any], root: str, min_images: int = 1,
                      report: Optional[SkipReport] = None, check_files: bool = True) -> "ShardIndex":
        """Index the records a manifest lists.

        Records are placed straight into their identity's slot (a counting sort over the shards'
        groups), so building never holds more than the final arrays and one shard's.

        Args:
            manifest: from :func:`load_manifest`.
            root: the prepared folder (shard files are relative to it).
            min_images: identities with fewer records are left out (K for training) and
                recorded in ``report``.
            report: receives the identities left out.
            check_files: check each shard's size against the manifest (:func:`verified_shard_paths`);
                ``False`` only checks that the paths stay inside ``root``.

        Raises:
            FacenetError: no identity has ``min_images`` records, a malformed manifest, a shard
                path leading outside ``root``, or a shard missing or of another size than
                recorded (:func:`verified_shard_paths`).
        """
        try:
            names = manifest["identities"]["names"]
            num_labels = len(names)
            shards = manifest["shards"]
            files = (verified_shard_paths(manifest, root) if check_files else
                     tuple(shard_path(root, shard.get("file")) for shard in shards))
            totals = np.zeros(num_labels, np.int64)
            for shard in shards:
                labels, counts, _, _ = decode_index(shard["index"])
                np.add.at(totals, labels, counts)
            keep = totals >= min_images
            kept_labels = np.flatnonzero(keep)
            if report is not None:
                for label in np.flatnonzero(~keep):
                    report.exclude_identity(str(names[label]), int(totals[label]), min_images)
            if kept_labels.size == 0:
                raise FacenetError(f"{root}: no identity has {min_images} images (images_per_identity); "
                                   f"the manifest lists {num_labels} identities")
            starts = np.zeros(num_labels, np.int64)
            starts[kept_labels] = np.concatenate([[0], np.cumsum(totals[kept_labels])[:-1]])
            size = int(totals[kept_labels].sum())
            shard_of = np.empty(size, np.int32)
            offset = np.empty(size, np.int64)
            length = np.empty(size, np.int32)
            for number, shard in enumerate(shards):
                labels, counts, offsets, lengths = decode_index(shard["index"])
                if np.unique(labels).size != labels.size:
                    raise ValueError(f"shard {shard['file']} lists an identity in two groups")
                mine = keep[labels]
                if not mine.all():
                    take = np.repeat(mine, counts)
                    labels, counts, offsets, lengths = labels[mine], counts[mine], offsets[take], lengths[take]
                counts = counts.astype(np.int64)
                within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
                slots = np.repeat(starts[labels], counts) + within
                starts[labels] += counts  # the next shard's records of these identities go after
                shard_of[slots] = number
                offset[slots] = offsets
                length[slots] = lengths
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise FacenetError(f"{join(root, MANIFEST_FILE)} is malformed: {err}") from None
        return cls(
            files=files,
            shard=shard_of,
            offset=offset,
            length=length,
            counts=totals[kept_labels],
            labels=kept_labels.astype(np.int32),
            names=tuple(str(names[label]) for label in kept_labels),
        )


def current_manifest(output_dir: str) -> Optional[Dict[str, Any]]:
    """The manifest in ``output_dir`` if there is a valid one, else ``None``."""
    try:
        return load_manifest(output_dir)
    except FacenetError:
        return None
