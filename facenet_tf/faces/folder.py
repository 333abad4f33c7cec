"""The ``align`` use case: an aligned copy of an identity folder, built atomically."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional

from facenet_tf.data.images import read_rgb
from facenet_tf.data.reader import BadImage
from facenet_tf.data.report import REPORT_FILE, SkipReport
from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig, AlignCounts, FaceAligner


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
                    progress: Optional[Callable[[int], None]] = None, strict: bool = False) -> AlignReport:
    """Write an aligned copy of an identity folder: ``output_dir/<identity>/<image>.png``.

    The copy is built in a temporary sibling folder and renamed into place only when
    complete, so ``output_dir`` is never half-written (an existing one is replaced). Bad
    image files and unreadable folders are skipped, logged per reason and, when there are
    any, listed in ``output_dir/skipped.json``.

    Args:
        data_dir: folder with one sub-folder of images per identity.
        output_dir: where the aligned copy goes.
        config: :class:`AlignConfig`.
        progress: optional callable receiving 1 after each image.
        strict: stop at the first bad file or folder (one-line error naming it; nothing written).

    Raises:
        FacenetError: unreadable input folder, mtcnn missing, no face in any image, or
            (strict) a bad file.
    """
    import logging

    from PIL import Image

    from facenet_tf.artifacts import atomic_path
    from facenet_tf.data.catalog import scan_directory

    config.validate()
    report = SkipReport(strict)
    catalog = scan_directory(data_dir, min_images=1, report=report)
    aligner = FaceAligner(config)
    no_face: List[str] = []
    written = 0
    counts = AlignCounts()
    with atomic_path(output_dir, is_dir=True) as tmp:
        for path, label in zip(catalog.paths, catalog.labels):
            if progress is not None:
                progress(1)
            try:
                image = read_rgb(path)
            except BadImage as bad:
                report.add(bad)
                continue
            done = aligner.align_faces(image, aligner.detect(image))
            counts.add(done.path, done.faces)
            face = done.chip
            if face is None:
                no_face.append(path)
                continue
            folder = os.path.join(tmp, catalog.names[label])
            os.makedirs(folder, exist_ok=True)
            stem = os.path.splitext(os.path.basename(path))[0]
            target = os.path.join(folder, stem + ".png")
            if os.path.exists(target):  # a.jpg and a.png in one folder
                target = os.path.join(folder, os.path.basename(path) + ".png")
            Image.fromarray(face).save(target)
            written += 1
        if not written:
            raise FacenetError(f"no face found in any of the {catalog.num_images} images of {data_dir}")
        if report.skipped:  # an aligned folder is training data: no report file unless there is news
            report.write(os.path.join(tmp, REPORT_FILE))
    report.log(logging.getLogger("facenet_tf"), "align")
    return AlignReport(written, no_face, catalog.num_identities, report, counts)
