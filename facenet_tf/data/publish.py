"""Publishing a prepare run: its plan, its result, and the commit that makes it current.

Shared by both runners (:mod:`facenet_tf.data.prepare` in local processes,
:mod:`facenet_tf.data.beam_prepare` on Apache Beam): ``skipped.json`` then ``manifest.json`` (the
commit), each written aside and renamed, then what earlier runs of ``prepare`` left is deleted:
in a local folder, only the entries its ownership record lists (:mod:`facenet_tf.ownership`); in a
remote one (``gs://…``), only the data folder the previous manifest listed. Never a file by its
name alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Tuple

import numpy as np

from facenet_tf.data.manifest import MANIFEST_FILE, current_manifest, join
from facenet_tf.data.report import REPORT_FILE, SkipReport

#: Finished shards of an unfinished run wait here (``data-<plan>/.parts``).
PARTS = ".parts"


@dataclasses.dataclass
class PrepareResult:
    """What :func:`prepare` did."""

    output_dir: str
    manifest: Dict[str, Any]
    report: SkipReport
    written: int = 0
    reused: int = 0
    up_to_date: bool = False

    def path(self, name: str) -> str:
        return join(self.output_dir, name)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The files to prepare and where each goes; ``id`` changes with any file, setting or transform."""

    id: str
    source: str
    paths: Tuple[str, ...]
    relpaths: Tuple[str, ...]
    identities: Tuple[str, ...]
    names: Tuple[str, ...]
    shards: Tuple[np.ndarray, ...]
    transform: Dict[str, Any]

    @property
    def data_dir(self) -> str:
        return f"data-{self.id}"

    def shard_file(self, shard: int) -> str:
        return f"{self.data_dir}/shard-{shard:05d}-of-{len(self.shards):05d}.tfrecord"

    @property
    def data_files(self) -> Tuple[str, ...]:
        """What the local runner writes inside :attr:`data_dir`: the shards, each shard's
        temporary name while it is written, and the ``.parts/`` records (relative paths)."""
        shards = [self.shard_file(s).split("/", 1)[1] for s in range(len(self.shards))]
        return tuple(shards + [f".{name}.tmp" for name in shards] + list(self.part_files))

    @property
    def part_files(self) -> Tuple[str, ...]:
        """The ``.parts/`` records of finished shards (relative to :attr:`data_dir`)."""
        return tuple(f"{PARTS}/shard-{s:05d}.json" for s in range(len(self.shards)))

    @property
    def temporaries(self) -> Tuple[str, ...]:
        """The temporary names :func:`publish` writes beside the manifest."""
        return tuple(f".{name}.tmp-{self.id}" for name in (REPORT_FILE, MANIFEST_FILE))


def publish(output_dir: str, manifest: Dict[str, Any], report: SkipReport, plan: Plan, owner=None) -> None:
    """Write ``skipped.json`` then ``manifest.json`` (the commit), each atomically, then delete
    what earlier runs of ``prepare`` left: with ``owner`` (a local folder's
    :class:`facenet_tf.ownership.Ownership`), every entry its record lists for ``prepare`` but
    this run's; without (a remote folder), the data folder the previous manifest listed.

    Works on local folders and on any file system TensorFlow's ``gfile`` knows (``gs://``).
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    previous = _previous_data_dirs(output_dir) if owner is None else ()
    if owner is not None:
        owner.add(*plan.temporaries)
    for name, data in ((REPORT_FILE, report.to_dict()), (MANIFEST_FILE, manifest)):
        target = join(output_dir, name)
        tmp = join(output_dir, f".{name}.tmp-{plan.id}")
        if owner is not None and os.path.islink(tmp):  # its own name (claimed above): never written through
            os.unlink(tmp)
        with gfile.GFile(tmp, "w") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        gfile.rename(tmp, target, overwrite=True)
    if owner is not None:
        keep = {MANIFEST_FILE, REPORT_FILE, plan.data_dir}
        for name in [n for n, command in owner.entries.items() if command == "prepare" and n not in keep]:
            owner.remove(name, release=True)
    for name in previous:
        if name != plan.data_dir and gfile.isdir(join(output_dir, name)):
            gfile.rmtree(join(output_dir, name))
    parts = join(join(output_dir, plan.data_dir), PARTS)
    if owner is not None:
        owner.remove_files(plan.data_dir, plan.part_files)  # only its own: a user's file there stays
    elif gfile.exists(parts):
        gfile.rmtree(parts)


def _previous_data_dirs(output_dir: str) -> Tuple[str, ...]:
    """The ``data-<plan>`` folders the current manifest of ``output_dir`` lists (written by prepare)."""
    manifest = current_manifest(output_dir)
    if manifest is None:
        return ()
    folders = {str(s.get("file", "")).split("/")[0] for s in manifest.get("shards", []) if isinstance(s, dict)}
    return tuple(sorted(f for f in folders if f.startswith("data-") and f == f"data-{manifest.get('plan')}"))
