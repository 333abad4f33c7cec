"""Training callbacks, one concern each: validation on held-out identities, collapse warning,
keep-best, the non-finite guard, epoch checkpoints, and TensorBoard logs that continue across
phases and resumes."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from typing import Dict, List, Optional

import keras
import numpy as np

logger = logging.getLogger("facenet_tf")


class HeldOutVerification(keras.callbacks.Callback):
    """Each epoch, embed held-out identities and add verification metrics to the logs.

    Keeps the last ``result``, ``embeddings``, ``pairs`` and ``pair_distances`` for other
    callbacks (:class:`facenet_tf.training.tensorboard_views.ValidationViews`). Adds ``val_accuracy``, ``val_accuracy_std``, ``val_auc``, ``val_eer``,
    ``val_tar_at_far_1e-3`` and ``val_tar_at_far_1e-2`` (and the thresholds) to the epoch
    logs, so the TensorBoard callback placed *after* this one writes them to the
    validation run and the progress bar shows them. Same code as ``evaluate.py``.

    Args:
        images: uint8 ``[N,H,W,3]`` held-out images.
        labels: int ``[N]`` their identities (people not seen in training).
        embedder: the embedding model being trained.
        distance: distance name used for pair distances.
        seed: seed for pair sampling and folds.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, embedder: keras.Model,
                 distance: str = "squared_l2", seed: int = 0):
        super().__init__()
        self.images = images
        self.labels = labels
        self.embedder = embedder
        self.distance = distance
        self.seed = seed
        self.result = None
        self.embeddings: Optional[np.ndarray] = None
        self.pairs = None
        self.pair_distances: Optional[np.ndarray] = None

    def evaluate(self) -> Dict[str, float]:
        from facenet_tf.evaluation.labelled import verify_labelled

        self.embeddings = self.embedder.predict(self.images.astype(np.float32), batch_size=256, verbose=0)
        self.result, self.pairs, self.pair_distances = verify_labelled(
            self.embeddings, self.labels, self.distance, seed=self.seed)
        metrics = self.result.to_json_dict()
        return {
            "val_accuracy": metrics["accuracy"],
            "val_accuracy_std": metrics["accuracy_std"],
            "val_auc": metrics["auc"],
            "val_eer": metrics["eer"],
            "val_tar_at_far_1e-3": metrics["val_at_far_1e-3"],
            "val_tar_at_far_1e-2": metrics["val_at_far_1e-2"],
            "val_threshold": metrics["threshold"],
            "val_threshold_at_far_1e-3": metrics["threshold_at_far_1e-3"],
        }

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and not getattr(self.model, "stop_training", False):
            logs.update(self.evaluate())


class CollapseWarning(keras.callbacks.Callback):
    """Say once when training has collapsed, and once when it has nothing left to learn.

    * Collapse: every embedding maps to (nearly) the same point, so the loss sits at the
      margin and both mean distances are ~0.
    * Too easy: no triplet violates the margin (``active_fraction`` 0): the loss is 0 and
      no gradient flows.

    Either condition for ``patience`` consecutive steps gives one warning on the
    ``facenet_tf`` logger with likely causes, and, with ``log_dir``, a TensorBoard text
    entry (``diagnostics`` run). The trainer logs running means over the epoch; this
    callback recovers each step's value from them (``(b+1)·m_b − b·m_(b−1)``).

    Args:
        margin: the loss margin.
        patience: consecutive steps before warning.
        tolerance: distances below ``tolerance`` and ``|loss - margin| < tolerance * margin``
            count as collapsed.
        log_dir: TensorBoard folder for the text entries, or ``None``.
    """

    def __init__(self, margin: float, patience: int = 50, tolerance: float = 0.05, log_dir: Optional[str] = None):
        super().__init__()
        self.margin = margin
        self.patience = patience
        self.tolerance = tolerance
        self.log_dir = log_dir
        self.streaks = {"collapsed": 0, "too_easy": 0}
        self.warned = set()
        self._previous: Dict[str, float] = {}
        self._step = 0

    def _step_value(self, batch: int, logs, name: str, default: float) -> float:
        if name not in logs:
            return default
        mean = float(logs[name])
        previous = self._previous.get(name, 0.0) if batch else 0.0
        self._previous[name] = mean
        return (batch + 1) * mean - batch * previous

    def on_epoch_begin(self, epoch, logs=None):
        steps = (self.params or {}).get("steps")
        if steps:  # the run's global step, also after a resume or a second fit
            self._step = epoch * steps

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if not logs or "step_loss" not in logs:
            return
        loss = float(logs["step_loss"])
        pos = self._step_value(batch, logs, "mean_positive_distance", 1.0)
        neg = self._step_value(batch, logs, "mean_negative_distance", 1.0)
        active = self._step_value(batch, logs, "active_fraction", 1.0)
        collapsed = abs(loss - self.margin) < self.tolerance * max(self.margin, 1e-6) and max(pos, neg) < self.tolerance
        conditions = {"collapsed": collapsed, "too_easy": active <= 0.0 and loss == 0.0}
        for name, holds in conditions.items():
            self.streaks[name] = self.streaks[name] + 1 if holds else 0
            if self.streaks[name] >= self.patience and name not in self.warned:
                self.warned.add(name)
                self._say(name, pos, neg)

    def _say(self, name: str, pos: float, neg: float) -> None:
        if name == "collapsed":
            message = (f"training looks collapsed: for {self.streaks[name]} steps the loss stayed at the margin "
                       f"({self.margin:.3f}) with mean positive/negative distances {pos:.4f}/{neg:.4f}; try a lower "
                       "learning rate, a larger batch (more identities per batch) or --loss hard")
        else:
            message = (f"training is too easy: for {self.streaks[name]} steps no triplet violated the margin "
                       f"({self.margin:.3f}), so the loss is 0 and nothing is learned; likely causes: batches too "
                       "easy to tell apart (raise --identities-per-batch, try --loss hard), a margin too small for "
                       "the distance, or training has converged")
        logger.warning("%s", message)
        if self.log_dir is not None:
            import tensorflow as tf

            writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "diagnostics"))
            with writer.as_default():
                tf.summary.text(name, message, step=self._step)
            writer.flush()


class KeepBest(keras.callbacks.Callback):
    """Fine-tuning never ends below its start: keep the best of the start model and every epoch.

    Before training, :class:`HeldOutVerification` ``validation`` evaluates the start
    model; after each epoch its balanced accuracy (``val_accuracy``, ties: ``val_auc``,
    then ``val_tar_at_far_1e-3``) is compared with the best so far, and the epoch is kept
    when it is at least as good: ties go to the trained weights (on ORL the validation
    split of 3 people is perfect from the start, yet the trained epochs are better on the
    unseen people; benchmarks/RESULTS.md). At the end the best weights
    are restored and evaluated again, so the run's metrics and thresholds are theirs.
    Place it after ``validation`` in the callback list.

    Attributes:
        start: the start model's validation figures (``to_json_dict``).
        best_epoch: 0 for the start model, else the 1-based epoch kept.
    """

    def __init__(self, validation: HeldOutVerification):
        super().__init__()
        self.validation = validation
        self.start: Optional[Dict[str, float]] = None
        self.best_epoch = 0
        self._best = None
        self._weights = None

    def on_train_begin(self, logs=None):
        if self.start is not None:  # a second fit() of the same run (unfrozen phase)
            return
        scores = self.validation.evaluate()
        self.start = self.validation.result.to_json_dict()
        self._best = (scores["val_accuracy"], scores["val_auc"], scores["val_tar_at_far_1e-3"])
        self._weights = self.validation.embedder.get_weights()
        logger.info("start model: validation accuracy %.4f, AUC %.4f, TAR@FAR=1e-3 %.4f", *self._best)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        score = (logs.get("val_accuracy"), logs.get("val_auc"), logs.get("val_tar_at_far_1e-3"))
        if score[0] is not None and score >= self._best:
            self._best, self.best_epoch = score, epoch + 1
            self._weights = self.validation.embedder.get_weights()

    def on_train_end(self, logs=None):
        self.validation.embedder.set_weights(self._weights)
        self.validation.evaluate()
        logger.info("kept %s (validation accuracy %.4f)",
                    "the start model" if self.best_epoch == 0 else f"epoch {self.best_epoch}", self._best[0])


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite loss or weight, and remember where.

    Checks ``step_loss`` after every step and the embedder's weights after every epoch;
    on a NaN or inf it sets ``stop_training``. Callbacks that write weights
    (:class:`EpochBackup`) and the run itself consult :attr:`tripped` and write nothing.
    Place it first in the callback list.

    Args:
        embedder: the model whose weights are checked.
    """

    def __init__(self, embedder: keras.Model):
        super().__init__()
        self.embedder = embedder
        self.tripped: Optional[str] = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("step_loss")
        if self.tripped is None and loss is not None and not np.isfinite(float(loss)):
            self.tripped = f"the loss became {float(loss)} at epoch {self._epoch + 1}, step {batch + 1}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.tripped is None and not all(np.all(np.isfinite(w)) for w in self.embedder.get_weights()):
            self.tripped = f"weights became NaN or inf during epoch {epoch + 1}"
            self.model.stop_training = True


class EpochBackup(keras.callbacks.Callback):
    """After each good epoch, ``checkpoints/epoch_NNN.weights.h5`` (trainer weights and
    optimizer state, written aside and renamed), recorded as the run's resume point
    together with the epoch's logs (the run's history survives a kill). Place it last.

    Nothing is written after :class:`NonFiniteGuard` tripped, so the last good checkpoint
    stays the last one.

    Args:
        run_state: :class:`facenet_tf.training.state.RunState` of the run.
        guard: the run's :class:`NonFiniteGuard`.
    """

    def __init__(self, run_state, guard: NonFiniteGuard):
        super().__init__()
        self.run_state = run_state
        self.guard = guard
        self.last_checkpoint: Optional[str] = None

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.tripped is None:
            row = {name: _scalar(value) for name, value in (logs or {}).items()}
            self.last_checkpoint = self.run_state.save_epoch(
                self.model, epoch + 1, {name: value for name, value in row.items() if value is not None})


def _scalar(value) -> Optional[float]:
    """A logged value as a float (``None`` when it is not one number)."""
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(array[0]) if array.size == 1 else None


class ContinuousTensorBoard(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` with one step axis for the whole run, flushed every epoch.

    Epoch scalars (``epoch_loss``, ...) are at step ``epoch`` (0-based, as Keras writes
    them with ``initial_epoch``); batch scalars (``batch_loss``, ...) of batch ``b`` of
    epoch ``e`` at step ``e * steps_per_epoch + b + 1``, where Keras' own callback would
    restart at 1 in every ``fit`` (the unfrozen phase, a resumed run). The writers are
    flushed at each epoch's end, before :class:`EpochBackup` commits the checkpoint, so a
    killed run's logs hold every committed epoch; :func:`drop_events_after` removes the rest.
    """

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        steps = (self.params or {}).get("steps")
        if steps:
            self._global_train_batch = epoch * steps  # Keras' batch-step counter, +1 at each batch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        for writer in self._writers.values():
            writer.flush()


def drop_events_after(log_dir: str, wall_time: float) -> int:
    """Remove from every TensorBoard event file under ``log_dir`` the events logged after
    ``wall_time`` (seconds since the epoch): what a killed run wrote after its last
    committed checkpoint, which its resumed run logs again. A file's version header stays;
    a file torn by the kill keeps its whole records. Each changed file is rewritten aside
    and renamed. Returns the number of events removed.
    """
    import tensorflow as tf
    from tensorflow.core.util.event_pb2 import Event

    removed = 0
    for folder, _, files in os.walk(log_dir):
        for name in sorted(f for f in files if ".tfevents." in f and not f.startswith(".")):
            path = os.path.join(folder, name)
            records, torn = [], False
            try:
                for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                    records.append(record)
            except tf.errors.DataLossError:
                torn = True
            kept = [r for r in records if _kept(Event.FromString(r), wall_time)]
            if not torn and len(kept) == len(records):
                continue
            removed += len(records) - len(kept)
            fd, tmp = tempfile.mkstemp(prefix=".resume-", dir=folder)
            os.close(fd)
            with tf.io.TFRecordWriter(tmp) as writer:
                for record in kept:
                    writer.write(record)
            os.replace(tmp, path)
    if removed:
        logger.info("resume: dropped %d TensorBoard events logged after the last checkpoint", removed)
    return removed


def _kept(event, wall_time: float) -> bool:
    return event.wall_time <= wall_time or event.HasField("file_version")


@dataclasses.dataclass
class RunCallbacks:
    """The callbacks of a run (``all``, in order) and those the later steps read."""

    all: List[keras.callbacks.Callback]
    guard: NonFiniteGuard
    backup: EpochBackup
    validation: Optional[HeldOutVerification] = None
    keep: Optional[KeepBest] = None
