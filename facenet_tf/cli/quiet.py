"""TensorFlow's start-up lines kept off the command line unless ``--verbose``.

``TF_CPP_MIN_LOG_LEVEL=3`` silences TensorFlow's C++ logging once it is set up, but the
lines logged while its libraries load (oneDNN, cudart, "All log messages before
absl::InitializeLog() is called …") are written to the process's stderr before any
setting applies, so they are caught at the file-descriptor level: the first
``import tensorflow`` (a command's own, or Keras') runs with descriptor 2 in a temporary
file, and every line of it that is not such a start-up line is written out again after.
Nothing changes the numerics: ``TF_ENABLE_ONEDNN_OPTS`` stays as the user set it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from typing import List

#: C++ log lines (``I0000 00:00:17… 8396 port.cc:153] …``, warnings alike), absl's notice
#: before its set-up, and the CPU-instructions notice. Errors (``E…``) are kept.
START_UP_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                           r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]"
                           r"|To enable the following instructions:|This TensorFlow binary is optimized)")


def wants_verbose(argv: List[str]) -> bool:
    """Whether the arguments ask for ``--verbose`` (``train``'s ``--verbose 0``/``1`` do not)."""
    for i, arg in enumerate(argv):
        if arg == "--verbose":
            level = argv[i + 1] if i + 1 < len(argv) else ""
            return not (level.isdigit() and int(level) < 2)
        if arg.startswith("--verbose="):
            value = arg.split("=", 1)[1]
            return not (value.isdigit() and int(value) < 2)
    return False


def hide_tensorflow_start_up() -> None:
    """Set TensorFlow's log level (unless the user has) and catch its start-up lines on its
    first import; also keeps absl's Python warnings (Keras' save notices) to errors and
    TensorFlow's Python logger to warnings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # "Assets written to …" on every SavedModel
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def filtered(text: str) -> str:
    """``text`` without TensorFlow's start-up lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not START_UP_LINE.match(line))


@contextlib.contextmanager
def _stderr_caught():
    """Descriptor 2 into a temporary file; its lines other than start-up ones are written back after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            rest = filtered(caught.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and loads it with stderr caught."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self._loader
        with _stderr_caught():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)
