"""The state of a run in its output directory: new, resumable after a kill, or finished.

``<output_dir>/run_state.json`` records the run's configuration key, its status and the
last completed epoch E, the logs of every epoch up to E (``history``) and when E's checkpoint
was committed (``saved_at``, seconds since the epoch); that epoch's checkpoint ``checkpoints/epoch_EEE.weights.h5`` holds
the trainer's weights and optimizer state (both written aside and renamed, the checkpoint
first). Re-running the same command after a kill resumes from there; a finished run is not
trained again; a run with another configuration (or ``restart``) starts over and first
removes the older run's checkpoints and logs, so files of two runs never mix.

The output directory is claimed first (:mod:`facenet_tf.ownership`): a folder of the user's
files is refused unless ``allow_existing``, none of them is ever touched, and "removes" above
means only the files the ownership record lists as written by ``train`` (a user's file inside
``checkpoints/`` or ``logs/`` stays). Each checkpoint is recorded before it is written,
TensorBoard's log files after each epoch and when the run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from typing import Any, Dict, List, Optional

from facenet_tf import ownership
from facenet_tf.artifacts import MODEL_ENTRIES, atomic_path, check_output_dir, require_space, write_json

logger = logging.getLogger("facenet_tf")

STATE_FILE = "run_state.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
#: A checkpoint written aside (:func:`facenet_tf.atomic.atomic_path`'s name for it): what a run
#: killed while saving leaves in ``checkpoints/``; the next run removes it.
CHECKPOINT_TEMPORARY = re.compile(r"\.epoch_\d{3,}\.weights\.h5\.tmp-[A-Za-z0-9_]{8}\.weights\.h5")
#: Every top-level name ``train`` writes in its output directory.
TRAIN_ENTRIES = (STATE_FILE, CHECKPOINT_DIR, LOG_DIR, "skipped.json") + MODEL_ENTRIES


#: Settings added after runs were recorded: left unset, they are not part of the key, so a run
#: interrupted under an older facenet_tf resumes (rather than starting over) after an upgrade.
KEY_OMITS_UNSET = ("miner",)


def config_key(config_dict: Dict[str, Any]) -> str:
    """Identifies a run's configuration; the output directory itself is not part of it, nor the
    settings of :data:`KEY_OMITS_UNSET` while unset (``None``)."""
    values = {k: v for k, v in config_dict.items()
              if k != "output_dir" and not (k in KEY_OMITS_UNSET and v is None)}
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
    owner: Optional[ownership.Ownership] = None

    @classmethod
    def open(cls, output_dir: str, config_dict: Dict[str, Any], restart: bool = False,
             allow_existing: bool = False) -> "RunState":
        """Claim ``output_dir`` for ``train`` and decide how a run with ``config_dict`` continues there.

        Args:
            allow_existing: write beside the files of a folder facenet_tf did not create
                (they are never touched).

        Raises:
            FacenetError: ``output_dir`` cannot be a writable directory, is or is inside (or
                holds) the data folder, or holds files ``train`` did not write (see
                :func:`facenet_tf.ownership.claim`).
        """
        check_output_dir(output_dir)
        data_dir = (config_dict.get("data") or {}).get("data_dir")
        owner = ownership.claim(output_dir, "train", TRAIN_ENTRIES, allow_existing=allow_existing,
                                inputs=[data_dir, config_dict.get("init_from")], flag="--output-dir", create=False)
        state = cls._decide(output_dir, config_dict, restart)
        state.owner = owner
        return state

    @classmethod
    def _decide(cls, output_dir: str, config_dict: Dict[str, Any], restart: bool) -> "RunState":
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
        """For a new run: remove an older run's checkpoints and logs (only entries the ownership
        record lists as written by ``train``); mark it running."""
        if self.owner is not None:
            self.owner.commit()
        folder = os.path.join(self.output_dir, CHECKPOINT_DIR)
        if self.owner is not None and self.owner.owns(CHECKPOINT_DIR) and os.path.isdir(folder):
            for name in os.listdir(folder):  # a killed run's checkpoint, half-written aside
                if CHECKPOINT_TEMPORARY.fullmatch(name) and self.owner.leftover(CHECKPOINT_DIR, name):
                    os.unlink(os.path.join(folder, name))
        if self.status == "new" and self.owner is not None:
            for name in (CHECKPOINT_DIR, LOG_DIR):
                try:
                    self.owner.remove(name)
                except OSError as err:
                    raise ownership.io_error(os.path.join(self.output_dir, name), err, "remove") from None
        os.makedirs(self.output_dir, exist_ok=True)
        self._write("running", self.epoch)

    def save_epoch(self, trainer, epoch: int, logs: Optional[Dict[str, float]] = None) -> str:
        """Checkpoint ``trainer`` (weights and optimizer state) after ``epoch`` completed
        epochs, then record it, with the epoch's ``logs``, as the point to resume from;
        return the checkpoint's path."""
        path = self.checkpoint(epoch)
        if self.owner is not None:
            self.owner.add_files(CHECKPOINT_DIR, [os.path.basename(path)])
            self.owner.list_new_files(LOG_DIR)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            require_space(os.path.dirname(path), checkpoint_bytes(trainer, self.checkpoint(epoch - 1)), "checkpoint")
            with atomic_path(path) as tmp:
                trainer.save_weights(tmp)
        except OSError as err:
            raise ownership.io_error(path, err) from None
        self.history = self.history[:epoch - 1] + [dict(logs or {})]
        self.epoch, self.saved_at = epoch, time.time()
        self._write("running", epoch)
        return path

    def stop(self) -> None:
        """Mark a started run stopped by an error (it resumes from its last checkpoint, as after a
        kill); nothing is written for a run that never started."""
        if os.path.isfile(os.path.join(self.output_dir, STATE_FILE)):
            self._write("stopped", self.epoch)

    def finish(self) -> None:
        """Mark the run finished (the final model is written)."""
        self.list_logs()
        self._write("finished", self.epoch)

    def list_logs(self) -> None:
        """Record the log files this run wrote so far as ``train``'s (see the module docstring)."""
        if self.owner is not None and self.owner.committed:
            self.owner.list_new_files(LOG_DIR)

    def _write(self, status: str, epoch: int) -> None:
        write_json(os.path.join(self.output_dir, STATE_FILE), {"key": self.key, "status": status, "epoch": epoch,
                                                               "history": self.history, "saved_at": self.saved_at})


def checkpoint_bytes(trainer, previous: Optional[str] = None) -> int:
    """Bytes a checkpoint of ``trainer`` needs: the previous checkpoint's size when there is one,
    else its variables' (weights and optimizer state) plus a quarter for the file's structure."""
    if previous and os.path.isfile(previous):
        return os.path.getsize(previous)
    variables = list(trainer.weights) + list(getattr(getattr(trainer, "optimizer", None), "variables", []) or [])
    total = sum(int(v.numpy().nbytes) if hasattr(v, "numpy") else 0 for v in variables)
    return total + total // 4


def _read(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
