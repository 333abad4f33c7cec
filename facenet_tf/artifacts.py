"""Writing and reading what training leaves behind, atomically.

An output directory holds ``model.keras`` (the Keras embedding model), ``saved_model/``
(serving signatures), ``metadata.json`` (image size, distance, thresholds, fingerprint)
and ``metrics.json``. Every artefact is written to a temporary sibling and renamed into
place, so a reader (or a server watching the folder) sees the old version or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from typing import Any, Dict, Iterator, Optional

import numpy as np

from facenet_tf import ownership
from facenet_tf.atomic import atomic_path, exchange_dirs  # noqa: F401 - re-exported for callers
from facenet_tf.errors import FacenetError

METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def write_json(path: str, data: Dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
            f.write("\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FacenetError(f"{path} not found") from None
    except json.JSONDecodeError as err:
        raise FacenetError(f"{path} is not valid JSON: {err}") from None
    except (OSError, UnicodeDecodeError) as err:  # a folder, no permission, binary junk: named as such
        raise FacenetError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None


def sha256_files(paths) -> str:
    """Hex sha256 of the files' bytes, in the given order, read in 1 MB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint_weights(weights) -> str:
    """Short sha256 of a model's weight arrays (list of numpy arrays), e.g. ``"a3f9…"`` (16 hex).

    Two models with the same architecture and weights share a fingerprint; galleries and
    thresholds are tied to it.
    """
    digest = hashlib.sha256()
    for w in weights:
        w = np.ascontiguousarray(w)
        digest.update(str((w.dtype.str, w.shape)).encode())
        digest.update(w.tobytes())
    return digest.hexdigest()[:16]


def verified_fingerprint(weights, what: str, probe=None, names=None) -> str:
    """:func:`fingerprint_weights` of weights checked to be finite, and of a model whose output on
    a probe batch is finite; what every command calls on a model it loaded, imported or trained.

    Args:
        weights: the weight arrays actually loaded (list of numpy arrays).
        what: names the model in the message (e.g. ``"--model m/"``).
        probe: optional ``() -> array``, the model's output on a fixed batch.
        names: optional names of the weights, for the message.

    Raises:
        FacenetError: a weight or the probe's output holds NaN or inf (a corrupted file).
    """
    for i, w in enumerate(weights):
        w = np.asarray(w)
        if w.dtype.kind in "fc" and not np.all(np.isfinite(w)):
            label = names[i] if names is not None else f"#{i} {tuple(w.shape)}"
            raise FacenetError(f"{what}: weight {label} holds NaN or inf values (a corrupted model file?): refusing it")
    if probe is not None:
        out = np.asarray(probe())
        if not np.all(np.isfinite(out)):
            raise FacenetError(f"{what}: the model's output on a test batch holds NaN or inf values (corrupted or "
                               "overflowing weights): refusing it")
    return fingerprint_weights(weights)


def check_loaded_model(weights, what: str, probe=None, recorded: Optional[str] = None, path: str = "") -> str:
    """:func:`verified_fingerprint` of a model a command loaded, compared with the fingerprint
    its ``metadata.json`` records (``recorded``): the galleries and thresholds tied to a model
    are checked against the weights actually served, never against what a file says.

    Raises:
        FacenetError: non-finite weights or output, or ``recorded`` belongs to other weights.
    """
    fingerprint = verified_fingerprint(weights, what, probe)
    if recorded not in (None, fingerprint):
        raise FacenetError(f"{what}: metadata.json records fingerprint {recorded} but the weights loaded from "
                           f"{path or what} have {fingerprint}: its thresholds and galleries belong to other weights; "
                           "re-run training or remove the stale metadata.json")
    return fingerprint


def probe_batch(image_size) -> np.ndarray:
    """A fixed float32 ``[2, H, W, 3]`` batch of pixel values 0..255 (a gradient and mid-grey)."""
    height, width = int(image_size[0]), int(image_size[1])
    ramp = np.linspace(0.0, 255.0, height * width * 3, dtype=np.float32).reshape(height, width, 3)
    return np.stack([ramp, np.full((height, width, 3), 128.0, np.float32)])


#: The files of a model directory, in the order they are published.
MODEL_FILES = (KERAS_FILE, SAVED_MODEL_DIR, METRICS_FILE, METADATA_FILE)
_STAGING = ".model-staging"
_COMPLETE = "COMPLETE"
#: Every top-level name a model directory's publication creates (its ownership entries).
MODEL_ENTRIES = MODEL_FILES + (_STAGING, _STAGING + ".lock")


@contextlib.contextmanager
def staged_model_directory(output_dir: str, needed_bytes: int = 0, owner=None) -> Iterator[str]:
    """Write a whole model directory at once: yield a staging folder to fill with
    :data:`MODEL_FILES`, then publish them into ``output_dir``.

    The staging folder is marked complete before anything in ``output_dir`` changes, and
    :func:`recover_model_directory` finishes an interrupted publication, so a reader of
    ``output_dir`` (every loader calls it first) sees the previous model or the new one,
    whole, never a mix — also after a kill during the publication.

    Args:
        output_dir: the model directory.
        needed_bytes: free space the new files need; checked first (see :func:`require_space`).
        owner: the command's claim on ``output_dir`` (:class:`facenet_tf.ownership.Ownership`,
            e.g. ``train``'s); ``None`` claims it as a library-written model directory
            (kind ``write_model_directory``): a folder of foreign files, or one another kind
            of command wrote, is refused; a foreign entry is never replaced.

    Raises:
        FacenetError: a foreign folder or entry, or the folder cannot be written (one line
            naming it and the cause: permission, full disk); the previous model stays.
    """
    if owner is None:
        owner = ownership.claim(output_dir, "write_model_directory", MODEL_ENTRIES, flag="model directory")
    owner.commit()
    owner.add(*MODEL_ENTRIES)
    recover_model_directory(output_dir, owner)
    require_space(output_dir, needed_bytes, "model")
    stage = os.path.join(output_dir, _STAGING)
    shutil.rmtree(stage, ignore_errors=True)  # the project's own (claimed above)
    try:
        os.makedirs(stage)
        try:
            yield stage
            with open(os.path.join(stage, _COMPLETE), "w") as f:
                f.write("complete\n")
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    except Exception as err:  # noqa: BLE001 - environment faults (OS or TensorFlow's) become one line
        fault = ownership.environment_error(err, output_dir)
        if fault is None:
            raise
        raise fault from None
    recover_model_directory(output_dir, owner)


#: Free space kept on top of an estimated write, bytes.
SPACE_MARGIN = 1 << 20


def require_space(folder: str, needed: int, what: str) -> None:
    """Raise one line unless ``folder``'s file system has ``needed`` bytes (+ :data:`SPACE_MARGIN`) free.

    Checked before writing HDF5 files (checkpoints, ``model.keras``), because Keras' HDF5 writer
    crashes the process (SIGSEGV) instead of raising when the disk fills up under it.
    """
    if needed <= 0:
        return
    free = shutil.disk_usage(folder).free
    if free < needed + SPACE_MARGIN:
        raise FacenetError(f"cannot write the {what} in {folder}: no space left on the device "
                           f"({free / 1e6:.1f} MB free, about {(needed + SPACE_MARGIN) / 1e6:.1f} MB needed)")


def recover_model_directory(output_dir: str, owner=None) -> None:
    """Finish publishing a complete staged model in ``output_dir``; drop an incomplete one.

    Idempotent and safe to repeat after a kill at any point: each file is moved (or, for a
    directory, swapped) into place, and the staging folder goes last. Only a staging folder
    that the folder's ownership record lists is touched (:mod:`facenet_tf.ownership`); the
    user's files inside the previous ``saved_model/`` are carried into the new one.

    Args:
        owner: the claim of the command writing ``output_dir``; ``None`` (a reader) reads the
            folder's record.

    Raises:
        FacenetError: a user's file inside ``saved_model/`` has a name the new version needs.
    """
    stage = os.path.join(output_dir, _STAGING)
    if not os.path.isdir(stage) or os.path.islink(stage):
        return  # a link put there leads to someone else's files: never moved from
    owner = owner if owner is not None else ownership.reopen(output_dir)
    if owner is None or not owner.owns(_STAGING):
        return  # a folder the project cannot prove it wrote: left alone
    if not os.path.isfile(os.path.join(stage, _COMPLETE)):
        shutil.rmtree(stage, ignore_errors=True)
        return
    import fcntl

    lock_path = os.path.join(output_dir, _STAGING + ".lock")
    try:  # O_NOFOLLOW, no truncation: a link put in its place is refused, never written through
        lock = os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644), "w")
    except OSError as err:
        raise ownership.io_error(lock_path, err, "lock") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(stage):  # another process finished it meanwhile
            return
        for name in MODEL_FILES:
            source, target = os.path.join(stage, name), os.path.join(output_dir, name)
            if not os.path.exists(source):
                continue  # published before a kill, or not part of this model
            if os.path.isdir(source):
                _publish_folder(owner, name, source, target)
            else:
                os.replace(source, target)
        shutil.rmtree(stage, ignore_errors=True)
        os.unlink(lock_path)  # a process still waiting on it finds the stage gone and returns


def _publish_folder(owner, name: str, source: str, target: str) -> None:
    """Swap the staged folder ``source`` in for ``target``, the user's files in ``target``
    carried over, and record the new version's files in ``owner``."""
    from facenet_tf import owned_tree
    from facenet_tf.publication import carry_users_into

    written = owned_tree.tree_files(source)
    if os.path.isdir(target):
        carry_users_into(owner, name, source)
        if not exchange_dirs(source, target):
            old = source + ".old"
            os.rename(target, old)
            os.rename(source, target)
            source = old
        shutil.rmtree(source)  # now the previous version (the user's files live on in the new one)
    else:
        os.rename(source, target)
    owner.files[name] = written
    owner.save()


def check_output_dir(path: str, flag: str = "--output-dir") -> None:
    """Raise :class:`FacenetError` unless ``path`` is, or can become, a writable directory.

    Checked before any work, so a bad output path never costs a run: an existing file, a
    file where a parent folder should be, or a parent without write permission.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise FacenetError(f"{flag} {path!r} is a file; expected a directory")
    ancestor = os.path.abspath(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise FacenetError(f"{flag} {path!r} cannot be created: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise FacenetError(f"{flag} {path!r} is not writable ({ancestor} does not allow it)")
