"""Publishing a prepare run: its plan, its result, and the commit that makes it current.

Shared by both runners (:mod:`facenet_tf.data.prepare` in local processes,
:mod:`facenet_tf.data.beam_prepare` on Apache Beam): ``skipped.json`` then ``manifest.json`` (the
commit), each written aside and renamed, then what earlier runs left is deleted.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Tuple

import numpy as np

from facenet_tf.data.manifest import LEGACY_INDEX, MANIFEST_FILE, join
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


def publish(output_dir: str, manifest: Dict[str, Any], report: SkipReport, plan: Plan) -> None:
    """Write ``skipped.json`` then ``manifest.json`` (the commit), each atomically, then delete
    what earlier runs left: other ``data-*`` folders, the run's ``.parts``, the old layout's files.

    Works on local folders and on any file system TensorFlow's ``gfile`` knows (``gs://``).
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    for name, data in ((REPORT_FILE, report.to_dict()), (MANIFEST_FILE, manifest)):
        target = join(output_dir, name)
        tmp = join(output_dir, f".{name}.tmp-{plan.id}")
        with gfile.GFile(tmp, "w") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        gfile.rename(tmp, target, overwrite=True)
    for name in gfile.listdir(output_dir):
        name = name.rstrip("/")
        path = join(output_dir, name)
        if (name.startswith("data-") and name != plan.data_dir) or name == LEGACY_INDEX or (
                name.startswith("shard-") and name.endswith(".tfrecord")):
            if gfile.isdir(path):
                gfile.rmtree(path)
            else:
                gfile.remove(path)
    parts = join(join(output_dir, plan.data_dir), PARTS)
    if gfile.exists(parts):
        gfile.rmtree(parts)
