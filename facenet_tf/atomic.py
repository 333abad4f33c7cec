"""Writing files safely: atomic replacement, directory exchange, and one-line environment faults.

The lowest layer under :mod:`facenet_tf.artifacts` (model directories) and
:mod:`facenet_tf.ownership` (who wrote an output folder): both replace files through these
primitives, so neither needs the other to write a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from typing import Iterator, Optional

from facenet_tf.errors import FacenetError


@contextlib.contextmanager
def atomic_path(target: str, is_dir: bool = False) -> Iterator[str]:
    """Yield a temporary sibling path; on success rename it to ``target``.

    For a directory the previous ``target`` is moved aside first and deleted only after the
    new one is in place. On an exception (or a kill) the temporary path is left or removed
    and ``target`` keeps its previous content.
    """
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(target)
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    else:
        # Keep every extension (".weights.h5", not ".h5"): Keras checks the whole suffix.
        suffix = base[base.find(".", 1):] if "." in base[1:] else ""
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", dir=parent, suffix=suffix)
        os.close(fd)
        os.unlink(tmp)
    try:
        yield tmp
        if is_dir:
            if os.path.exists(target):
                if not exchange_dirs(tmp, target):
                    old = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
                    os.rmdir(old)
                    os.rename(target, old)
                    os.rename(tmp, target)
                    tmp = old
                shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous version
            else:
                os.rename(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise


def exchange_dirs(a: str, b: str) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call is unavailable; the caller then falls back to two renames,
    between which ``b`` is briefly absent (its previous version sits in ``.NAME.old-*``).
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def io_error(path: str, err: OSError, doing: str = "write") -> FacenetError:
    """A one-line :class:`FacenetError` for an environment fault: ``cannot write PATH: CAUSE``."""
    cause = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        cause = "no space left on the device"
    elif err.errno in (errno.EACCES, errno.EPERM):
        cause = "permission denied"
    elif err.errno == errno.EROFS:
        cause = "read-only file system"
    return FacenetError(f"cannot {doing} {path}: {cause}")


#: Causes, as the OS and TensorFlow's file system word them, of an environment fault.
_CAUSES = (("No space left on device", "no space left on the device"), ("Permission denied", "permission denied"),
           ("Read-only file system", "read-only file system"), ("Disk quota exceeded", "disk quota exceeded"))


def environment_error(err: BaseException, path: str) -> Optional[FacenetError]:
    """The one-line :class:`FacenetError` for an environment fault raised while writing ``path``
    (an :class:`OSError`, or a library error such as TensorFlow's whose message names the OS
    cause); ``None`` when ``err`` is something else."""
    if isinstance(err, OSError):
        return io_error(getattr(err, "filename", None) or path, err)
    text = str(getattr(err, "message", None) or err)
    for needle, cause in _CAUSES:
        if needle in text:
            return FacenetError(f"cannot write {path}: {cause}")
    return None
