"""Evaluate a model on a folder of identities or on LFW pairs: the numbers evaluate.py prints.

Folder protocol: every image of every identity is embedded; verification uses every
same/different pair (sampled above ``max_pairs``), class-balanced (each class carries half
the weight, accuracy = (TAR + TNR) / 2), thresholds 10-fold cross-validated as in LFW.
One-shot protocol: the last ``unknown_identities`` identities (natural name order) are
strangers; of the others ``enrol_per_identity`` image(s) per person chosen by seed are
enrolled and every other image is identified.

Bad files (unreadable, truncated, not images, too large…) are skipped and counted, as everywhere
(:mod:`facenet_tf.data.report`): the result's ``skipped`` gives the count per reason, and a
strict report makes the first one an error instead.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

import numpy as np

from facenet_tf.data.catalog import IdentityCatalog, usable_catalog, scan_directory
from facenet_tf.data.reader import DEFAULT_LIMITS, BadImage, ImageLimits, inspect_images
from facenet_tf.data.report import SkipReport
from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.identification import identification_metrics, split_enrolment
from facenet_tf.evaluation.labelled import MAX_PAIRS, verify_labelled
from facenet_tf.evaluation.metrics import FOLDS, verification_metrics
from facenet_tf.evaluation.pairs import lfw_pair_paths, read_lfw_pairs
from facenet_tf.evaluation.report_html import PairDistances


logger = logging.getLogger("facenet_tf")


def evaluate_folder(embedder, data_dir: str, distance: Optional[str] = None, max_pairs: int = MAX_PAIRS,
                    one_shot: bool = False, enrol_per_identity: int = 1, unknown_identities: Optional[int] = None,
                    seed: int = 0, report: Optional[SkipReport] = None,
                    limits: ImageLimits = DEFAULT_LIMITS, pairs_out: Optional[list] = None) -> Dict[str, Any]:
    """Verification (and optionally one-shot identification) figures of ``embedder`` on a folder.

    Args:
        embedder: object with ``embed_files(paths) -> [N, D]`` and ``distance``
            (:class:`facenet_tf.serving.inference.Embedder`).
        data_dir: one sub-folder per identity.
        distance: overrides the model's distance.
        max_pairs: pair cap (all same-person pairs kept when they fit in half).
        one_shot: also run the one-shot identification protocol.
        enrol_per_identity: images enrolled per known identity.
        unknown_identities: strangers for the open-set figures; default 20% of identities.
        seed: pair sampling, folds and enrolment choice.
        report: receives the skipped files and folders (strict: the first one raises);
            default a new, non-strict one.
        limits: what the image reader refuses (pixel limit).
        pairs_out: when a list, the measured pairs are appended to it as a
            :class:`~facenet_tf.evaluation.report_html.PairDistances` (what a report draws).

    Returns:
        Flat dict: the keys of :meth:`VerificationResult.to_json_dict` plus ``num_images``,
        ``num_identities``, ``distance``, ``pairs`` (how they were formed), ``skipped``
        (count per reason), and with ``one_shot`` the keys of :func:`identification_metrics`.
    """
    report = report if report is not None else SkipReport()
    catalog = scan_directory(data_dir, min_images=1, report=report)
    catalog = usable_catalog(catalog, report, min_images=1, limits=limits)
    report.log(logger, "evaluate")
    out = evaluate_catalog(embedder, catalog, distance, max_pairs, one_shot, enrol_per_identity,
                           unknown_identities, seed, pairs_out)
    out["skipped"] = report.counts()
    return out


def evaluate_catalog(embedder, catalog: IdentityCatalog, distance: Optional[str] = None, max_pairs: int = MAX_PAIRS,
                     one_shot: bool = False, enrol_per_identity: int = 1, unknown_identities: Optional[int] = None,
                     seed: int = 0, pairs_out: Optional[list] = None) -> Dict[str, Any]:
    """:func:`evaluate_folder` on an already scanned (or split) catalog."""
    distance = distance or embedder.distance
    if not np.any(catalog.counts() >= 2):
        raise FacenetError(f"{catalog.root}: no identity has 2 images, so there is no same-person pair to evaluate")
    num_pairs = min(catalog.num_images * (catalog.num_images - 1) // 2, max_pairs)
    if num_pairs < FOLDS:
        raise FacenetError(f"{catalog.root} gives {num_pairs} pairs of images: the protocol's {FOLDS} folds need at "
                           f"least {FOLDS} (add images{'' if num_pairs < max_pairs else ' or raise --max-pairs'})")
    embeddings = embedder.embed_files(catalog.paths)
    result, pairs, d = verify_labelled(embeddings, catalog.labels, distance, max_pairs, seed)
    if pairs_out is not None:
        paths = np.asarray(catalog.paths, dtype=object)
        pairs_out.append(PairDistances(tuple(paths[pairs.idx_a]), tuple(paths[pairs.idx_b]), d, pairs.issame,
                                       result, distance))
    out: Dict[str, Any] = result.to_json_dict()
    out.update(
        num_images=catalog.num_images,
        num_identities=catalog.num_identities,
        distance=distance,
        pairs=(
            f"all {pairs.total_possible} pairs" if not pairs.sampled
            else f"{pairs.num_pairs} of {pairs.total_possible} pairs (all same-person pairs that fit in half, rest sampled)"
        ) + "; classes weighted equally (accuracy = (TAR + TNR) / 2); 10-fold thresholds",
    )
    if one_shot:
        out.update(one_shot_identification(embeddings, catalog.labels, distance, enrol_per_identity,
                                           unknown_identities, seed))
    return out


def one_shot_identification(embeddings: np.ndarray, labels: np.ndarray, distance: str, enrol_per_identity: int = 1,
                            unknown_identities: Optional[int] = None, seed: int = 0) -> Dict[str, Any]:
    """Enrol ``enrol_per_identity`` images per known identity, identify the rest; strangers = last identities."""
    num_ids = int(labels.max()) + 1
    if unknown_identities is None:
        unknown_identities = max(1, num_ids // 5) if num_ids >= 5 else 0
    if unknown_identities >= num_ids:
        raise FacenetError(f"unknown_identities ({unknown_identities}) must be below the number of identities ({num_ids})")
    known = labels < num_ids - unknown_identities
    enrol, probe = split_enrolment(labels[known], enrol_per_identity, seed)
    known_emb, known_lab = embeddings[known], labels[known]
    unknown_emb = embeddings[~known] if unknown_identities else None
    metrics = identification_metrics(known_emb[enrol], known_lab[enrol], known_emb[probe], known_lab[probe],
                                     metric=distance, unknown_emb=unknown_emb)
    metrics["one_shot_identities"] = metrics.pop("num_identities")
    metrics["enrol_per_identity"] = enrol_per_identity
    return metrics


def evaluate_lfw_pairs(embedder, pairs_file: str, root: str, distance: Optional[str] = None,
                       report: Optional[SkipReport] = None,
                       limits: ImageLimits = DEFAULT_LIMITS, pairs_out: Optional[list] = None) -> Dict[str, Any]:
    """LFW protocol on ``pairs.txt``: the file's folds (View 2) or 10 stratified folds (plain list).

    A pair with a bad image is left out (the image is recorded in ``report``; strict: raises).
    ``pairs_out``: as :func:`evaluate_folder`'s.
    """
    from facenet_tf.distances import paired_distances_numpy

    distance = distance or embedder.distance
    report = report if report is not None else SkipReport()
    pairs = read_lfw_pairs(pairs_file)
    _enough_pairs(pairs, pairs_file, "")
    listed = len(pairs)
    paths = lfw_pair_paths(pairs, root)
    unique = sorted({p for pair in paths for p in pair})
    bad = set()
    for path, result in zip(unique, inspect_images(unique, limits)):
        if isinstance(result, BadImage):
            report.add(result)
            bad.add(path)
    report.log(logger, "evaluate")
    if bad:
        kept = [i for i, (p, q) in enumerate(paths) if p not in bad and q not in bad]
        if not kept:
            raise FacenetError(f"{pairs_file}: every pair has a bad image")
        pairs, paths = [pairs[i] for i in kept], [paths[i] for i in kept]
        _enough_pairs(pairs, pairs_file, " with a good image each")
        unique = sorted({p for pair in paths for p in pair})
    index = {p: i for i, p in enumerate(unique)}
    embeddings = embedder.embed_files(unique)
    a = embeddings[[index[p] for p, _ in paths]]
    b = embeddings[[index[q] for _, q in paths]]
    d = paired_distances_numpy(a, b, distance)
    issame = np.array([p.issame for p in pairs])
    folds = np.array([p.fold for p in pairs]) if pairs[0].fold is not None else None
    result = verification_metrics(d, issame, folds=folds)
    if pairs_out is not None:
        pairs_out.append(PairDistances(tuple(p for p, _ in paths), tuple(q for _, q in paths), d, issame, result,
                                       distance))
    out = result.to_json_dict()
    dropped = f" ({listed - len(pairs)} left out: a bad image)" if bad else ""
    out.update(num_images=len(unique), num_identities=len({os.path.basename(os.path.dirname(p)) for p in unique}),
               distance=distance, pairs=f"{len(pairs)} pairs from {pairs_file}{dropped}", skipped=report.counts())
    return out


def _enough_pairs(pairs, pairs_file: str, which: str) -> None:
    """A plain list of pairs is split into :data:`FOLDS` folds: refuse fewer pairs, in the user's terms."""
    if pairs[0].fold is None and len(pairs) < FOLDS:
        raise FacenetError(f"pairs file {pairs_file} has {len(pairs)} pairs{which}: the LFW protocol's {FOLDS} folds "
                           f"need at least {FOLDS}")
