"""The state of a run in its output directory: new, resumable after a kill, or finished.

``<output_dir>/run_state.json`` records the run's configuration key, its status and the
last completed epoch E, the logs of every epoch up to E (``history``) and when E's checkpoint
was committed (``saved_at``, seconds since the epoch); that epoch's checkpoint ``checkpoints/epoch_EEE.weights.h5`` holds
the trainer's weights and optimizer state (both written aside and renamed, the checkpoint
first). Re-running the same command after a kill resumes from there; a finished run is not
trained again; a run with another configuration (or ``restart``) starts over and first
removes the older run's checkpoints and logs, so files of two runs never mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from facenet_tf.artifacts import atomic_path, check_output_dir, write_json

logger = logging.getLogger("facenet_tf")

STATE_FILE = "run_state.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


def config_key(config_dict: Dict[str, Any]) -> str:
    """Identifies a run's configuration; the output directory itself is not part of it."""
    values = {k: v for k, v in config_dict.items() if k != "output_dir"}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass
class RunState:
    """What :meth:`open` found in the output directory.

    Attributes:
        output_dir: the run's output directory.
        key: :func:`config_key` of this run's configuration.
        status: ``"new"``, ``"resume"`` or ``"finished"``.
        epoch: completed epochs to resume after (0 for a new run).
        history: the epoch-end logs (``loss``, ``val_auc``, ...) of each completed epoch.
        saved_at: ``time.time()`` when the last checkpoint was committed (``None``: none yet).
    """

    output_dir: str
    key: str
    status: str
    epoch: int = 0
    history: List[Dict[str, float]] = dataclasses.field(default_factory=list)
    saved_at: Optional[float] = None

    @classmethod
    def open(cls, output_dir: str, config_dict: Dict[str, Any], restart: bool = False) -> "RunState":
        """Decide how a run with ``config_dict`` continues in ``output_dir``.

        Raises:
            FacenetError: ``output_dir`` cannot be a writable directory.
        """
        check_output_dir(output_dir)
        key = config_key(config_dict)
        previous = _read(os.path.join(output_dir, STATE_FILE))
        if previous and previous.get("key") == key and not restart:
            epoch = int(previous.get("epoch") or 0)
            history, saved_at = list(previous.get("history") or [])[:epoch], previous.get("saved_at")
            if previous.get("status") == "finished":
                return cls(output_dir, key, "finished", epoch, history, saved_at)
            state = cls(output_dir, key, "resume", epoch, history, saved_at)
            if state.epoch and os.path.isfile(state.backup_weights):
                return state
        if previous and previous.get("key") != key and not restart:
            logger.info("%s held a run with another configuration: starting a new run there", output_dir)
        return cls(output_dir, key, "new")

    def checkpoint(self, epoch: int) -> str:
        """The trainer checkpoint after ``epoch`` completed epochs."""
        return os.path.join(self.output_dir, CHECKPOINT_DIR, f"epoch_{epoch:03d}.weights.h5")

    @property
    def backup_weights(self) -> str:
        """The checkpoint a resumed run starts from."""
        return self.checkpoint(self.epoch)

    def start(self) -> None:
        """For a new run: remove an older run's checkpoints and logs; mark it running."""
        if self.status == "new":
            for name in (CHECKPOINT_DIR, LOG_DIR):
                shutil.rmtree(os.path.join(self.output_dir, name), ignore_errors=True)
        os.makedirs(self.output_dir, exist_ok=True)
        self._write("running", self.epoch)

    def save_epoch(self, trainer, epoch: int, logs: Optional[Dict[str, float]] = None) -> str:
        """Checkpoint ``trainer`` (weights and optimizer state) after ``epoch`` completed
        epochs, then record it, with the epoch's ``logs``, as the point to resume from;
        return the checkpoint's path."""
        path = self.checkpoint(epoch)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            trainer.save_weights(tmp)
        self.history = self.history[:epoch - 1] + [dict(logs or {})]
        self.epoch, self.saved_at = epoch, time.time()
        self._write("running", epoch)
        return path

    def finish(self) -> None:
        """Mark the run finished (the final model is written)."""
        self._write("finished", self.epoch)

    def _write(self, status: str, epoch: int) -> None:
        write_json(os.path.join(self.output_dir, STATE_FILE), {"key": self.key, "status": status, "epoch": epoch,
                                                               "history": self.history, "saved_at": self.saved_at})


def _read(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
