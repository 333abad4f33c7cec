"""Calibrate a gallery's threshold on the user's labelled people (``facenet-tf gallery calibrate``).

The use case joins three layers: the gallery's embedding path and storage
(:mod:`facenet_tf.gallery.service`, :mod:`facenet_tf.gallery.calibration`) and the verification
measurements (:func:`facenet_tf.evaluation.labelled.threshold_at_far`), so it sits above both.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from facenet_tf.evaluation.labelled import threshold_at_far
from facenet_tf.evaluation.report_html import PairDistances
from facenet_tf.gallery.calibration import CALIBRATION_KEY, Calibration
from facenet_tf.gallery.service import Progress, embed_files, enrolment_from_dir, open_gallery


def calibrate_gallery(embedder, gallery_path: str, data_dir: str, far_target: float = 1e-3, report=None,
                      progress: Progress = None, pairs_out: Optional[list] = None) -> Calibration:
    """Calibrate the gallery's threshold on labelled people and store it in the gallery.

    The images of ``data_dir`` (one sub-folder per person) are embedded as
    :func:`~facenet_tf.gallery.service.enroll` embeds them; the threshold is chosen at
    ``far_target`` on all their pairs (:func:`~facenet_tf.evaluation.labelled.threshold_at_far`)
    and written to the gallery's ``meta`` (key :data:`~facenet_tf.gallery.calibration.CALIBRATION_KEY`),
    replacing an earlier calibration. Nothing is written when anything fails.

    Args:
        embedder: what ``enroll`` embeds with (a :class:`~facenet_tf.recognition.FaceRecognizer`, or an
            :class:`~facenet_tf.serving.inference.Embedder`).
        gallery_path: an existing gallery built with this model.
        data_dir: the labelled people.
        far_target: the largest admissible false-accept rate, in (0, 1].
        report: :class:`facenet_tf.data.report.SkipReport` for bad files
            (see :func:`~facenet_tf.gallery.service.enrolment_from_dir`).
        progress: see :func:`~facenet_tf.gallery.service.embed_files`.
        pairs_out: when a list, the measured pairs are appended to it
            (:class:`~facenet_tf.evaluation.report_html.PairDistances`, what a report draws).

    Returns:
        The stored :class:`~facenet_tf.gallery.calibration.Calibration`.

    Raises:
        FacenetError: missing gallery or another model's; a bad folder; too few pairs; bad target.
    """
    with open_gallery(gallery_path, embedder):  # fail fast, before embedding
        pass
    names, paths = enrolment_from_dir(data_dir, report)
    embeddings = embed_files(embedder, paths, progress)
    threshold, far, tar, result, pairs, d = threshold_at_far(embeddings, np.asarray(names), embedder.distance,
                                                             far_target)
    calibration = Calibration(threshold, float(far_target), far, tar, int(pairs.issame.sum()),
                              int((~pairs.issame).sum()), len(set(names)), len(paths), os.path.abspath(data_dir),
                              embedder.distance)
    with open_gallery(gallery_path, embedder) as gallery:
        gallery.set_meta(CALIBRATION_KEY, calibration.to_json())
    if pairs_out is not None:
        p = np.asarray(paths, dtype=object)
        pairs_out.append(PairDistances(tuple(p[pairs.idx_a]), tuple(p[pairs.idx_b]), d, pairs.issame, result,
                                       embedder.distance))
    return calibration
