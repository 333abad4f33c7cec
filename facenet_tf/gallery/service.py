"""Recognition use cases on top of a model and a gallery: enrol, identify, verify.

What ``facenet-tf enroll / identify / verify / gallery`` do, as library calls: the command
line modules only parse flags and print. Every image is embedded *before* the gallery is
touched, so a bad image fails the whole call with a one-line :class:`FacenetError` naming
the file and leaves the gallery as it was; an enrolment is then one
:meth:`Gallery.enroll` transaction.

A face is "the same person" when ``distance(a, b) <= threshold``, with the model's
distance (:attr:`Embedder.distance`) and, unless given, the threshold calibrated in
training at the target FAR (``metadata.json`` ``"thresholds"``).

Example::

    embedder = Embedder.load("saved_models/facenet_tf")
    names, paths = enrolment_from_dir("staff/")
    enroll(embedder, "staff.gallery", names, paths)
    answers = identify(embedder, "staff.gallery", ["door.jpg"])  # [Identification]
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.gallery.calibration import threshold_choice
from facenet_tf.gallery.config import MatchConfig
from facenet_tf.gallery.gallery import Gallery, normalize_names
from facenet_tf.gallery.store import read_meta
from facenet_tf.serving.inference import require_files

#: Images embedded per call, so a progress callback moves during large enrolments.
CHUNK = 256

Progress = Optional[Callable[[int], None]]


@dataclasses.dataclass(frozen=True)
class Identification:
    """The answer for one query image.

    Attributes:
        image: the query file.
        name: the enrolled person, or ``None`` ("unknown": too far, or empty gallery).
        distance: distance to the nearest entry, ``None`` for an empty gallery.
        nearest: the nearest entry's name even when ``name`` is ``None``.
        candidates: ``(name, distance)`` of the ``top_k`` nearest entries, nearest first
            (empty unless ``top_k`` > 1).
    """

    image: str
    name: Optional[str]
    distance: Optional[float]
    nearest: Optional[str]
    candidates: Tuple[Tuple[str, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class Verification:
    """Whether two images show one person: ``same = distance <= threshold``; ``threshold_source``
    is one of :data:`~facenet_tf.gallery.calibration.SOURCES`."""

    same: bool
    distance: float
    threshold: float
    threshold_source: str = "flag"


def embed_files(embedder, paths: Sequence[str], progress: Progress = None) -> np.ndarray:
    """Embed image files in chunks of :data:`CHUNK`.

    Args:
        embedder: :class:`facenet_tf.serving.inference.Embedder`.
        paths: image files.
        progress: optional callable receiving the number of images just embedded.

    Returns:
        float32 ``[len(paths), D]``.

    Raises:
        FacenetError: naming a file that is missing or cannot be decoded.
    """
    paths = [os.fspath(p) for p in paths]
    require_files(paths)  # all of them, before the first (slow) chunk is decoded
    out = np.empty((len(paths), embedder.embedding_dim), np.float32)
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start:start + CHUNK]
        out[start:start + len(chunk)] = embedder.embed_files(chunk)
        if progress is not None:
            progress(len(chunk))
    return out


def enrolment_from_dir(root: str, report=None) -> Tuple[List[str], List[str]]:
    """Names and image paths of a folder holding one sub-folder of images per person.

    Every image is checked by the one reader first: bad files (unreadable, truncated, not an
    image, too large…) and unreadable folders are skipped, counted in ``report`` and logged per
    reason, so one broken photo does not stop a large enrolment.

    Args:
        root: the folder.
        report: :class:`facenet_tf.data.report.SkipReport` receiving the skips (strict: the
            first one raises); default a new, non-strict one.

    Returns:
        ``(names, paths)``: one entry per usable image, the name being its folder's name.

    Raises:
        FacenetError: ``root`` is not a folder or holds no usable image; strict and a bad file.
    """
    import logging

    from facenet_tf.data.catalog import usable_catalog, scan_directory
    from facenet_tf.data.report import SkipReport

    report = report if report is not None else SkipReport()
    catalog = usable_catalog(scan_directory(root, min_images=1, report=report), report, min_images=1)
    report.log(logging.getLogger("facenet_tf"), "enroll")
    return [catalog.names[label] for label in catalog.labels], list(catalog.paths)


def open_gallery(path: str, embedder, create: bool = False, index: str = "auto", read_only: bool = False) -> Gallery:
    """Open the gallery at ``path`` for ``embedder``'s fingerprint, dimension and distance,
    searching with ``index`` (:class:`facenet_tf.gallery.config.MatchConfig`); ``read_only``:
    see :meth:`Gallery.open`.

    Raises:
        FacenetError: missing gallery (unless ``create``), or one built by another model.
    """
    if not create and not os.path.isfile(path):
        raise FacenetError(f"gallery {path} does not exist: enrol someone first (facenet-tf enroll)")
    return Gallery.open(path, embedder.fingerprint, embedder.embedding_dim, distance=embedder.distance,
                        create=create, index=index, read_only=read_only)


def open_gallery_as_stored(path: str, read_only: bool = False) -> Gallery:
    """Open an existing gallery without a model, for listing (``read_only``) and removing entries.

    :meth:`Gallery.open` wants the model's fingerprint and dimension; here they are read
    from the gallery itself (read-only), so the gallery's own checks still apply.

    Raises:
        FacenetError: missing file or not a facenet_tf gallery.
    """
    meta = read_meta(path)
    return Gallery.open(path, meta["model_fingerprint"], int(meta["embedding_dim"]), create=False,
                        read_only=read_only)


def enroll(embedder, gallery_path: str, names: Sequence[str], paths: Sequence[str],
           progress: Progress = None) -> List[int]:
    """Embed ``paths`` and add them to the gallery (created if absent) in one transaction.

    Args:
        embedder: :class:`facenet_tf.serving.inference.Embedder`.
        gallery_path: gallery file.
        names: person of each image.
        paths: image files, as many as ``names``.
        progress: see :func:`embed_files`.

    Returns:
        The new entries' ids.

    Raises:
        FacenetError: no images, a bad image (nothing is written, no gallery is created),
            or a gallery built by another model.
    """
    if len(names) != len(paths):
        raise FacenetError(f"names and paths must have the same length; received {len(names)} and {len(paths)}")
    check_enrolment(gallery_path, names)  # before minutes of embedding, not after
    embeddings = embed_files(embedder, paths, progress)
    return store_enrolment(embedder, gallery_path, names, embeddings, [os.path.abspath(p) for p in paths])


def check_enrolment(gallery_path: str, names: Sequence[str]) -> None:
    """What :func:`enroll` checks before embedding anything: at least one name, every name
    valid, and a gallery that exists or can be created (read-only checks).

    Raises:
        FacenetError: naming the first problem.
    """
    if not names:
        raise FacenetError("no images to enrol")
    normalize_names(names)  # a name the gallery refuses fails now (the gallery stores them normalised)
    check_gallery_path(gallery_path)


def store_enrolment(embedder, gallery_path: str, names: Sequence[str], embeddings: np.ndarray,
                    sources: Optional[Sequence[Optional[str]]] = None) -> List[int]:
    """Add embedded images to the gallery (created if absent) in one transaction: the step of
    :func:`enroll` after embedding, for callers that embed otherwise (``facenet-tf serve``'s uploads).

    Returns:
        The new entries' ids.

    Raises:
        FacenetError: a gallery built by another model, or a bad name (nothing is written).
    """
    with open_gallery(gallery_path, embedder, create=True) as gallery:
        return gallery.enroll(names, embeddings, sources=sources)


def check_gallery_path(path: str) -> None:
    """Raise one line unless ``path`` is an existing facenet_tf gallery or a new file that its
    folder lets this process create (read-only checks: nothing is written)."""
    if os.path.exists(path):
        read_meta(path)
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FacenetError(f"cannot create gallery {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FacenetError(f"cannot create gallery {path}: permission denied in {folder}")


def resolve_threshold(embedder, threshold: Optional[float] = None, gallery_meta: Optional[dict] = None) -> float:
    """``threshold`` if given, else the gallery's calibrated threshold (``gallery_meta``), else the
    model's calibrated threshold at the target FAR (:func:`~facenet_tf.gallery.calibration.threshold_choice`).

    Raises:
        FacenetError: none of them.
    """
    return threshold_choice(embedder, threshold, gallery_meta).value


def identify(embedder, gallery_path: str, paths: Sequence[str], threshold: Optional[float] = None,
             progress: Progress = None, *, top_k: int = 1, index: str = "auto") -> List[Identification]:
    """Name each image after its nearest gallery entry, or ``None`` beyond the threshold.

    Args:
        embedder: :class:`facenet_tf.serving.inference.Embedder`.
        gallery_path: an existing gallery built with this model.
        paths: query images.
        threshold: largest accepted distance; default :func:`resolve_threshold` (the gallery's
            calibration, else the model's).
        progress: see :func:`embed_files`.
        top_k: also list the ``top_k`` nearest entries of each image (when > 1).
        index: search backend. ``threshold``, ``top_k`` and ``index`` follow
            :class:`~facenet_tf.gallery.config.MatchConfig`'s rules.

    Returns:
        One :class:`Identification` per path, in order.

    Raises:
        FacenetError: a bad match option, no threshold, missing gallery, another model's
            gallery, bad image.
    """
    MatchConfig(threshold, top_k, index).validate()  # before the model's threshold or any image
    with open_gallery(gallery_path, embedder, index=index, read_only=True) as gallery:  # fail fast, before embedding
        gallery.check()
        threshold = resolve_threshold(embedder, threshold, gallery.meta)
        embeddings = embed_files(embedder, paths, progress)
        matches = gallery.identify(embeddings, threshold)
        nearest = gallery.search(embeddings, k=top_k) if top_k > 1 else [()] * len(matches)
    return [
        Identification(os.fspath(p), m.name, None if m.entry_id is None else m.distance, m.nearest_name,
                       tuple((n.name, n.distance) for n in near))
        for p, m, near in zip(paths, matches, nearest)
    ]


def verify(embedder, path_a: str, path_b: str, threshold: Optional[float] = None,
           gallery_path: Optional[str] = None) -> Verification:
    """Whether two images show the same person under the model's distance, at ``threshold``, else
    the calibrated threshold of the gallery at ``gallery_path`` (if given and calibrated), else the
    model's (:func:`~facenet_tf.gallery.calibration.threshold_choice`).

    Raises:
        FacenetError: a threshold outside :class:`~facenet_tf.gallery.config.MatchConfig`'s
            range, no threshold, another model's gallery, or a bad image.
    """
    from facenet_tf.distances import paired_distances_numpy

    MatchConfig(threshold=threshold).validate()
    meta = None
    if gallery_path is not None and threshold is None:
        with open_gallery(gallery_path, embedder) as gallery:
            meta = gallery.meta
    choice = threshold_choice(embedder, threshold, meta, gallery_path or "gallery")
    a, b = embed_files(embedder, [path_a, path_b])
    distance = float(paired_distances_numpy(a[None], b[None], embedder.distance)[0])
    return Verification(distance <= choice.value, distance, choice.value, choice.source)
