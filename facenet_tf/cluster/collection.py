"""Cluster the faces of a photo collection: what ``facenet-tf cluster`` does, as library calls.

Every face of every photo (files, or folders searched recursively) is found and embedded by a
:class:`~facenet_tf.recognition.FaceRecognizer`, grouped by person
(:func:`~facenet_tf.cluster.core.cluster_embeddings`) at the model's threshold, and written to
an output folder the command owns (:func:`facenet_tf.ownership.claim`, kind ``"cluster"``):

* ``clusters.json``: ``{"clusters": [{"id", "faces": [{"image", "box"}]}], "unclustered": [...],
  "threshold": t}``, boxes ``[left, top, right, bottom]`` in the photo's pixels;
* ``sheets/cluster_NNNN.png``: a contact sheet of each cluster's faces;
* with ``link``, ``links/cluster_NNNN/``: a symbolic link to each photo of the cluster.

The photos are only read: never moved, changed or deleted. The output is written to a
temporary sibling and moved into place, so a failed run leaves the previous one as it was.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.cluster.core import cluster_embeddings
from facenet_tf.errors import FacenetError
from facenet_tf.progress import StepStart, no_steps
from facenet_tf.publication import staged

#: The ownership kind and the top-level names of a cluster output folder.
CLUSTER_KIND = "cluster"
CLUSTER_ENTRIES = ("clusters.json", "sheets", "links")

Box = Tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class FoundFaces:
    """The faces of a collection: ``images[i]`` and ``boxes[i]`` locate the face whose embedding
    is ``embeddings[i]`` (float32 ``[F, D]``); ``photos`` is how many photos were read."""

    images: Tuple[str, ...]
    boxes: Tuple[Box, ...]
    embeddings: np.ndarray = dataclasses.field(repr=False, compare=False)
    photos: int = 0


def find_photos(paths: Iterable[str], report=None) -> List[str]:
    """The image files among ``paths`` and, recursively, in the folders among them, sorted and
    without repeats (by real path). Unreadable folders are skipped into ``report``.

    Raises:
        FacenetError: a path that does not exist, or no image file at all.
    """
    from facenet_tf.data.catalog import IMAGE_EXTENSIONS

    found, seen = [], set()

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)

    for path in paths:
        if os.path.isfile(path):
            add(path)
        elif os.path.isdir(path):
            def skip(err: OSError) -> None:
                if report is not None:
                    report.skip(err.filename or path, "unreadable folder", err.strerror or "", kind="folder")
            for folder, dirs, files in os.walk(path, onerror=skip):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                        add(os.path.join(folder, name))
        else:
            raise FacenetError(f"{path}: no such photo or folder")
    if not found:
        raise FacenetError(f"no image files in {', '.join(map(str, paths))}")
    return found


def collect_faces(recognizer, photos: Sequence[str], report=None, progress: Optional[Callable[[int], None]] = None,
                  limits=None) -> FoundFaces:
    """Every face of every photo, embedded (``recognizer.faces``). A file the reader refuses is
    skipped into ``report`` (strict: raises); a photo without a face adds nothing."""
    from facenet_tf.data.reader import DEFAULT_LIMITS, BadImage, read_rgb

    images, boxes, vectors = [], [], []
    for path in photos:
        try:
            image = read_rgb(path, limits or DEFAULT_LIMITS)
        except BadImage as bad:
            if report is None:
                raise
            report.add(bad)
        else:
            for found in recognizer.faces(image):
                images.append(path)
                boxes.append(tuple(int(round(v)) for v in found.face.box))
                vectors.append(np.asarray(found.embedding, np.float32))
        if progress is not None:
            progress(1)
    dim = vectors[0].shape[0] if vectors else 0
    embeddings = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
    return FoundFaces(tuple(images), tuple(boxes), embeddings, len(photos))


def cluster_document(faces: FoundFaces, labels: np.ndarray, threshold: float) -> dict:
    """The ``clusters.json`` object of ``faces`` grouped by ``labels`` (-1: unclustered)."""
    def face(i: int) -> dict:
        return {"image": os.path.abspath(faces.images[i]), "box": list(faces.boxes[i])}

    count = int(labels.max()) + 1 if labels.size else 0
    return {
        "clusters": [{"id": k, "faces": [face(i) for i in np.flatnonzero(labels == k)]} for k in range(count)],
        "unclustered": [face(i) for i in np.flatnonzero(labels < 0)],
        "threshold": float(threshold),
    }


def write_collection(owner, document: dict, link: bool = False, step: StepStart = no_steps) -> str:
    """Write ``clusters.json``, the contact sheets and (``link``) the link folders into the
    claimed folder ``owner``; returns the path of ``clusters.json``."""
    from PIL import Image

    from facenet_tf.cluster.sheets import contact_sheet, face_thumbnail, sheet_faces
    from facenet_tf.data.reader import read_rgb

    with staged(owner) as tmp:
        with open(os.path.join(tmp, "clusters.json"), "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1)
            f.write("\n")
        os.makedirs(os.path.join(tmp, "sheets"))
        progress = step("contact sheets", len(document["clusters"]), "cluster")
        for cluster in document["clusters"]:
            name = f"cluster_{cluster['id']:04d}"
            shown = [cluster["faces"][i] for i in sheet_faces(len(cluster["faces"]))]
            thumbs = [face_thumbnail(read_rgb(f["image"]), f["box"]) for f in shown]
            Image.fromarray(contact_sheet(thumbs)).save(os.path.join(tmp, "sheets", name + ".png"))
            if link:
                _link_photos(os.path.join(tmp, "links", name), [f["image"] for f in cluster["faces"]])
            progress(1)
    return owner.path("clusters.json")


def _link_photos(folder: str, photos: Sequence[str]) -> None:
    """A symbolic link per photo (once, however many of its faces the cluster holds), named
    ``NNNNN_<file name>`` so two photos of one name in different folders both appear."""
    os.makedirs(folder)
    for k, photo in enumerate(dict.fromkeys(photos)):
        os.symlink(os.path.abspath(photo), os.path.join(folder, f"{k:05d}_{os.path.basename(photo)}"))


def input_folders(paths: Sequence[str]) -> List[str]:
    """The folders ``cluster`` reads: each folder given, and the folder of each photo given
    (its output must be apart from all of them)."""
    return [p for p in paths if os.path.isdir(p)] + [os.path.dirname(os.path.abspath(p)) for p in paths
                                                     if os.path.isfile(p)]


def cluster_collection(recognizer, paths: Sequence[str], output_dir: str, threshold: Optional[float] = None,
                       method: str = "average", link: bool = False, allow_existing: bool = False, report=None,
                       step: StepStart = no_steps) -> dict:
    """Find, embed and cluster every face under ``paths``; write the output folder.

    Args:
        recognizer: :class:`~facenet_tf.recognition.FaceRecognizer`.
        paths: photos and folders (searched recursively).
        output_dir: the output folder (claimed; must be apart from the photo folders).
        threshold: the same-person distance; default the model's (``recognizer.threshold()``).
        method: a name of :data:`facenet_tf.cluster.core.METHODS`.
        link: also write ``links/`` (see the module docstring).
        allow_existing: write beside foreign files of an existing output folder.
        report: :class:`~facenet_tf.data.report.SkipReport` for unreadable photos and folders.
        step: progress per step (:class:`facenet_tf.progress.Steps`' ``start``).

    Returns:
        The ``clusters.json`` document, with ``"photos"`` and ``"path"`` added (not written).

    Raises:
        FacenetError: a bad path, method or threshold; the output folder refused; no face found.
    """
    from facenet_tf.cluster.core import METHODS
    from facenet_tf.errors import check_choice
    from facenet_tf.ownership import claim

    check_choice("method", method, METHODS)
    inputs = input_folders(paths) + [getattr(recognizer.embedder, "path", None)]
    owner = claim(output_dir, CLUSTER_KIND, CLUSTER_ENTRIES, allow_existing=allow_existing, inputs=inputs,
                  create=False)
    threshold = float(recognizer.threshold()) if threshold is None else float(threshold)
    photos = find_photos(paths, report)
    faces = collect_faces(recognizer, photos, report, step("finding faces", len(photos), "photo"))
    if not faces.images:
        raise FacenetError(f"no face found in {len(photos)} photos: nothing to cluster")
    labels = cluster_embeddings(faces.embeddings, threshold, method, recognizer.distance,
                                progress=step("clustering", len(faces.images), "face"))
    document = cluster_document(faces, labels, threshold)
    path = write_collection(owner, document, link, step)
    return {**document, "photos": len(photos), "path": path}
