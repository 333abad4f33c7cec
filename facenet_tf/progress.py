"""Progress on long work: one tqdm bar with a rate, on stderr, hidden when stderr is not a terminal.

Library functions never draw anything: a long one takes ``progress``, a callable receiving how
much was just done (images, bytes, steps), or ``None``. The command line opens a bar with
:func:`progress_bar` and passes its ``update``; for the commands that embed image files
(``evaluate``, ``enroll``, ``identify``), :func:`embedding_progress` feeds the bar from the
embedder itself (every :class:`~facenet_tf.serving.inference.Embedder` reports each batch it
embeds, an aligning one each batch it detects and aligns), and :func:`alignment_summary` is the
line of alignment counts to print at the end. Multi-step work (``import-dlib``) goes through
:class:`Steps`: one bar per long step, each with its own unit and rate.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional

Progress = Optional[Callable[[int], None]]

#: How multi-step library work announces a step: ``(name, total or None, unit) -> progress
#: callback`` (:meth:`Steps.start`, or :func:`no_steps`).
StepStart = Callable[[str, Optional[int], str], Callable[[int], None]]


def no_steps(desc: str, total: Optional[int] = None, unit: str = "step") -> Callable[[int], None]:
    """A :data:`StepStart` that shows nothing: what library work uses when given no ``steps``."""
    return _ignore


def _ignore(n: int = 1) -> None:
    pass


def _shown(stream, quiet: bool) -> bool:
    """A bar is drawn only on a terminal: piped or redirected stderr (logs, CI) stays clean."""
    isatty = getattr(stream, "isatty", None)
    return not quiet and callable(isatty) and bool(isatty())


def progress_bar(total: Optional[int] = None, desc: str = "", unit: str = "img", quiet: bool = False,
                 unit_scale: bool = False, stream=None):
    """A tqdm bar on ``stream`` (default ``sys.stderr``) showing the count and the rate (``unit``/s,
    and the time left when ``total`` is known); disabled, drawing nothing, when ``quiet`` or when
    the stream is not a terminal. Use as a context manager and pass ``bar.update`` as a progress
    callback.

    Args:
        total: the amount expected, or ``None`` (unknown: count and rate only).
        desc: the label in front of the bar.
        unit: what is counted (``"img"``, ``"B"``, ``"layer"``).
        quiet: never draw.
        unit_scale: show k/M prefixes (for bytes).
        stream: where to draw (default ``sys.stderr``, read at call time).
    """
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=stream, dynamic_ncols=True,
                disable=not _shown(stream, quiet))


@contextlib.contextmanager
def embedding_progress(embedder, total: Optional[int] = None, desc: str = "embedding", quiet: bool = False,
                       stream=None) -> Iterator:
    """A :func:`progress_bar` moved by ``embedder`` for the duration of the block.

    The embedder's ``progress`` attribute (receiving the number of files just embedded, or just
    detected and aligned) is pointed at the bar's ``update`` and restored on exit, so a library
    call that embeds files needs no progress argument of its own.

    Yields:
        The bar.
    """
    with progress_bar(total, desc, quiet=quiet, stream=stream) as bar:
        before = embedder.progress
        embedder.progress = bar.update
        try:
            yield bar
        finally:
            embedder.progress = before


def alignment_summary(embedder) -> Optional[str]:
    """The one line of alignment counts of an embedder that aligns image files
    (:class:`~facenet_tf.faces.aligner.AlignCounts`), or ``None`` for one that does not."""
    counts = getattr(embedder, "counts", None)
    return counts.summary() if counts is not None else None


class Steps:
    """Progress of work in named steps, one :func:`progress_bar` per long step.

    ``steps.start(name, total, unit)`` closes the previous step's bar and returns the new
    one's ``update`` (a progress callback); :meth:`close` ends the last. Quiet or not on a
    terminal, nothing is drawn and the callbacks do nothing.

    Example::

        with Steps(quiet=False) as steps:
            read(path, progress=steps.start("reading", os.path.getsize(path), "B"))
            convert(layers, progress=steps.start("converting", len(layers), "layer"))
    """

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream
        self._bar = None

    def start(self, desc: str, total: Optional[int] = None, unit: str = "step") -> Callable[[int], None]:
        self.close()
        self._bar = progress_bar(total, desc, unit, quiet=self.quiet, unit_scale=unit == "B", stream=self.stream)
        return self._bar.update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Steps":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
