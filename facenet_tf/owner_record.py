"""The ownership record of an output folder: its format, the kinds of folder, reading and writing it.

See :mod:`facenet_tf.ownership` for what a record means and how commands use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, Optional

from facenet_tf.atomic import io_error

#: The ownership record in an output folder.
OWNER_FILE = ".facenet_tf-owner.json"
FORMAT = "facenet_tf.owner/2"
#: Records of earlier versions, read (and rewritten as :data:`FORMAT` at the next claim).
OLD_FORMATS = ("facenet_tf.owner/1",)
#: Runs kept in a record's history.
MAX_RUNS = 20
#: What each kind of folder holds, by the command (the kind) that writes it. A kind not listed
#: (a new command's) is still a kind of its own, described by :func:`holds`.
KINDS = {"train": "a training run", "import-dlib": "an imported model", "export": "an export",
         "align": "an aligned set", "prepare": "a prepared set", "write_model_directory": "a model directory",
         "cluster": "a cluster collection", "report": "an evaluation report"}


def holds(kind: str) -> str:
    """What a folder of ``kind`` holds, e.g. ``"a training run"``."""
    return KINDS.get(kind, f"the output of `{kind}`")


def read_record(root: str) -> Optional[Dict]:
    """The ownership record of ``root`` (in :data:`FORMAT`: ``kind`` is ``None`` when an old
    record names no single kind, ``files`` maps a folder entry to its listed files or ``None``
    for "everything in it"), or ``None`` when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(root, OWNER_FILE)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(record, dict) or record.get("format") not in (FORMAT,) + OLD_FORMATS
            or not isinstance(record.get("entries"), dict)):
        return None
    runs = [r for r in record.get("runs") or [] if isinstance(r, dict)]
    if record["format"] in OLD_FORMATS:
        commands = set(record["entries"].values()) | {r.get("command") for r in runs}
        kind = commands.pop() if len(commands) == 1 else None
        files = {name: None for name in record["entries"]}
    else:
        kind = record.get("kind")
        files = {name: list(record.get("files", {}).get(name) or []) for name in record["entries"]}
    return {"format": FORMAT, "kind": kind if isinstance(kind, str) and kind else None, "entries": dict(record["entries"]),
            "files": files, "runs": runs, "created_folder": bool(record.get("created_folder")),
            "old_kinds": sorted({str(c) for c in record["entries"].values()})}


def describe(root: str, record: Dict) -> str:
    """``ROOT is a training run written by `train``` (or an earlier record's unknown kind)."""
    if record["kind"] is None:
        by = ", ".join(f"`{c}`" for c in record["old_kinds"]) or "no command"
        return f"{root} was written by an earlier facenet-tf of unknown kind (entries by {by})"
    return f"{root} is {holds(record['kind'])} written by `{record['kind']}`"


def write_record(path: str, record: Dict) -> None:
    """Write ``record`` as ``path`` atomically (a temporary sibling renamed into place).

    Raises:
        FacenetError: the folder cannot be written (its path and the cause).
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{OWNER_FILE}.tmp-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as err:
        raise io_error(os.path.dirname(path), err) from None
