"""The ``align`` use case: an aligned copy of an identity folder, built aside and published by
ownership (:mod:`facenet_tf.ownership`)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
from typing import Callable, List, Optional

import numpy as np

from facenet_tf.data.reader import BadImage
from facenet_tf.data.report import REPORT_FILE, SkipReport
from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner, align_images, chunked, parallel_workers
from facenet_tf.publication import staged

#: Images read, detected and aligned per step of :func:`align_directory`.
ALIGN_CHUNK = 32


@dataclasses.dataclass
class AlignReport:
    """What :func:`align_directory` did: images written, the ones without a face, the bad
    files and folders skipped (also in ``output_dir/skipped.json`` when there are any), and
    how many images took each alignment path."""

    written: int
    no_face: List[str]
    identities: int
    skipped: Optional[SkipReport] = None
    counts: AlignCounts = dataclasses.field(default_factory=AlignCounts)


def align_directory(data_dir: str, output_dir: str, config: AlignConfig = AlignConfig(),
                    progress: Optional[Callable[[int], None]] = None, strict: bool = False,
                    allow_existing_files: bool = False, workers: int = 1) -> AlignReport:
    """Write an aligned copy of an identity folder: ``output_dir/<identity>/<image>.png``.

    The copy is built in a temporary sibling folder and moved into place only when complete,
    so ``output_dir`` is never half-written. ``output_dir`` is claimed first
    (:mod:`facenet_tf.ownership`): it must be apart from ``data_dir``; a folder of the user's
    files is refused unless ``allow_existing_files`` (then written beside them); only the
    entries an earlier ``align`` wrote there are replaced or removed. Bad
    image files and unreadable folders are skipped, logged per reason and, when there are
    any, listed in ``output_dir/skipped.json``.

    Args:
        data_dir: folder with one sub-folder of images per identity.
        output_dir: where the aligned copy goes.
        config: :class:`AlignConfig`.
        progress: optional callable receiving 1 after each image.
        strict: stop at the first bad file or folder (one-line error naming it; nothing written).
        allow_existing_files: write into a folder holding files facenet_tf did not write.
        workers: where images are read, detected and aligned, :data:`ALIGN_CHUNK` at a time,
            the next chunks prepared while one is written: 1 this process (a thread), N > 1
            spawned processes, 0 chosen (:func:`~facenet_tf.faces.aligner.parallel_workers`);
            see :func:`~facenet_tf.faces.aligner.chunked` (a script using processes guards its
            entry point).

    Raises:
        FacenetError: unreadable input folder, mtcnn missing, no face in any image, or
            (strict) a bad file.
    """
    import logging

    from facenet_tf.data.catalog import scan_directory
    from facenet_tf.ownership import claim

    config.validate()
    owner = claim(output_dir, "align", (REPORT_FILE,), allow_existing=allow_existing_files, inputs=[data_dir],
                  create=False)
    report = SkipReport(strict)
    catalog = scan_directory(data_dir, min_images=1, report=report)
    aligner = FaceAligner(config)
    no_face: List[str] = []
    written = 0
    counts = AlignCounts()
    paths = list(catalog.paths)
    results = chunked(align_images, aligner, paths, ALIGN_CHUNK, parallel_workers(aligner, workers))
    with staged(owner) as tmp, contextlib.closing(results):
        for path, label, done in zip(paths, catalog.labels, itertools.chain.from_iterable(results)):
            if progress is not None:
                progress(1)
            if isinstance(done, BadImage):
                report.add(done)
                continue
            counts.add(done.path, done.faces)
            face = done.chip
            if face is None:
                no_face.append(path)
                continue
            _write_chip(face, path, tmp, output_dir, catalog.names[label])
            written += 1
        if not written:
            raise FacenetError(f"no face found in any of the {catalog.num_images} images of {data_dir}")
        if report.skipped:  # an aligned folder is training data: no report file unless there is news
            report.write(os.path.join(tmp, REPORT_FILE))
    report.log(logging.getLogger("facenet_tf"), "align")
    return AlignReport(written, no_face, catalog.num_identities, report, counts)


def _write_chip(chip: np.ndarray, path: str, staging: str, output_dir: str, identity: str) -> None:
    """Save the aligned ``chip`` of the user's image ``path`` as ``<identity>/<stem>.png`` in the
    staging folder (``<name>.png`` where another extension took the stem). A failure names the
    user's file and the output's name, never the temporary folder.

    Raises:
        FacenetError: the PNG cannot be written (e.g. a name too long for the file system).
    """
    from PIL import Image

    folder = os.path.join(staging, identity)
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    target = os.path.join(folder, stem + ".png")
    if os.path.exists(target):  # a.jpg and a.png in one folder
        target = os.path.join(folder, os.path.basename(path) + ".png")
    try:
        Image.fromarray(chip).save(target)
    except OSError as err:
        final = os.path.join(output_dir, identity, os.path.basename(target))
        name = len(os.fsencode(os.path.basename(target)))
        cause = (f"its name is too long for the file system ({name} bytes): rename the image"
                 if err.errno == errno.ENAMETOOLONG else err.strerror or str(err))
        raise FacenetError(f"cannot write the aligned copy of {path} as {final}: {cause}") from None
