"""The export's check of the ``detect_and_embed`` signature against the Python pipeline.

On sample photos (:func:`sample_photos`: composites of the export's check faces, 2 to 4 per
photo, and a faceless image, all PNG-encoded so both sides see the same pixels) the reloaded
signature must find the faces the Python pipeline finds with dlib's CNN detector (what
:class:`facenet_tf.recognition.FaceRecognizer` does with ``detector="dlib_cnn"``: the recorded
alignment with that override, :func:`facenet_tf.faces.found.faces_for_model`, the face rule,
the recorded TTA): the same number in every photo (up to ``max_faces``), in the same rows, boxes
within :data:`MAX_BOX_DIFF` pixels, and every face's embedding at cosine >= :data:`MIN_COSINE`
to the pipeline's (an :class:`~facenet_tf.serving.export.ArtefactCheck`, so a drift fails the
export as every other artefact's does).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError

#: Smallest cosine between a face's graph embedding and the Python pipeline's.
MIN_COSINE = 0.999
#: Largest |graph - pipeline| of a box side, original-photo pixels (dlib's boxes are whole pixels).
MAX_BOX_DIFF = 0.5
#: Faces per composite photo, in turn.
GROUP_SIZES = (2, 3, 4)
#: Border around and between the faces of a composite, in pixels.
GAP = 40


@dataclasses.dataclass(frozen=True)
class PipelineFaces:
    """One photo's faces in row order (the rule's face first, then best score first)."""

    boxes: np.ndarray        # float32 [K, 4] (left, top, right, bottom), right = left + width
    scores: np.ndarray       # float32 [K]
    landmarks: np.ndarray    # float32 [K, 5, 2]
    embeddings: np.ndarray   # float32 [K, D]


def sample_photos(faces: np.ndarray, max_photos: int = 3) -> List[np.ndarray]:
    """Group photos of ``faces`` (uint8 ``[n, H, W, 3]``) side by side on grey, 2, 3, 4 per photo
    in turn (fewer where ``faces`` run out; at most ``max_photos``), then one faceless photo (a
    smooth colour gradient)."""
    photos, start = [], 0
    for size in GROUP_SIZES * max_photos:
        group = faces[start:start + size]
        if len(photos) == max_photos or not len(group):
            break
        height, width = group.shape[1:3]
        canvas = np.full((height + 2 * GAP, GAP + len(group) * (width + GAP), 3), 128, np.uint8)
        for k, face in enumerate(group):
            canvas[GAP:GAP + height, GAP + k * (width + GAP):(k + 1) * (width + GAP)] = face
        photos.append(canvas)
        start += size
    rows, cols = np.mgrid[0:180, 0:240]
    photos.append(np.stack([rows * 255 // 179, cols * 255 // 239, (rows + cols) * 255 // 418], -1).astype(np.uint8))
    return photos


def pipeline_faces(keras_model, contract, photos: Sequence[np.ndarray]) -> List[PipelineFaces]:
    """The Python pipeline's faces of each photo (module docstring), rows as the graph orders them."""
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner
    from facenet_tf.faces.detection import Face
    from facenet_tf.faces.found import faces_for_model
    from facenet_tf.faces.overrides import with_overrides
    from facenet_tf.models.loader import model_image_size
    from facenet_tf.serving import detect_and_embed as graph_lib
    from facenet_tf.serving.tta import TTAConfig, tta_function

    recorded = AlignConfig.from_contract(contract)
    # The graph's detector doubles photos as the recorded one does (options included), which
    # changing the detector here would otherwise drop.
    aligner = FaceAligner(dataclasses.replace(with_overrides(recorded, detector="dlib_cnn"),
                                              hog_upsample=graph_lib.recorded_upsample(recorded)))
    embed = tta_function(lambda x: keras_model(x, training=False).numpy(), TTAConfig.from_contract(contract),
                         contract.normalized)
    out = []
    for photo in photos:
        found = faces_for_model(aligner, photo, aligner.detect(photo), (1.0, 1.0), model_image_size(keras_model))
        order = list(range(len(found)))
        if len(found) > 1:  # as FaceRecognizer._choose: the rule's face first
            faces = [Face((f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]), f.score, None) for f in found]
            chosen = faces.index(aligner.choose(photo.shape[:2], faces))
            order = [chosen] + [i for i in order if i != chosen]
        found = [found[i] for i in order]
        dim = int(keras_model.output_shape[-1])
        out.append(PipelineFaces(
            np.asarray([f.box for f in found], np.float32).reshape(-1, 4),
            np.asarray([f.score for f in found], np.float32),
            np.asarray([f.landmarks for f in found], np.float32).reshape(-1, 5, 2),
            embed(np.stack([f.chip for f in found]).astype(np.float32)) if found else np.zeros((0, dim), np.float32)))
    return out


def encode_png(photos: Sequence[np.ndarray]) -> List[bytes]:
    """Each photo as PNG bytes (lossless: the graph decodes the very pixels the pipeline saw)."""
    import tensorflow as tf

    return [tf.io.encode_png(photo).numpy() for photo in photos]


def compare(graph: Dict[str, np.ndarray], want: Sequence[PipelineFaces], max_faces: int
            ) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Match the signature's outputs with the pipeline's faces, row by row.

    Returns:
        ``(graph embeddings [M, D], pipeline embeddings [M, D], figures)`` of the M faces both
        have (for the cosine check), and the figures for the export report.

    Raises:
        FacenetError: one line: a photo whose faces differ (count, or a box beyond
            :data:`MAX_BOX_DIFF`), or padding rows that are not zero.
    """
    got, expected, box_diff, landmark_diff, score_diff = [], [], 0.0, 0.0, 0.0
    for i, faces in enumerate(want):
        count, wanted = int(graph["num_faces"][i]), min(len(faces.boxes), max_faces)
        if count != wanted:
            raise FacenetError(f"detect_and_embed finds {count} faces in sample photo {i}, the Python pipeline "
                               f"(--detector dlib_cnn) {len(faces.boxes)} (max faces {max_faces})")
        boxes = graph["boxes"][i, :count]
        diff = float(np.max(np.abs(boxes - faces.boxes[:count]), initial=0.0))
        if diff > MAX_BOX_DIFF:
            raise FacenetError(f"detect_and_embed's boxes in sample photo {i} differ from the Python pipeline's by "
                               f"{diff:.3g} px (allowed {MAX_BOX_DIFF})")
        if any(np.any(graph[name][i, count:]) for name in ("boxes", "scores", "landmarks", "embeddings")):
            raise FacenetError(f"detect_and_embed's rows past num_faces in sample photo {i} are not zero")
        box_diff = max(box_diff, diff)
        landmark_diff = max(landmark_diff, float(np.max(np.abs(graph["landmarks"][i, :count] - faces.landmarks[:count]),
                                                        initial=0.0)))
        score_diff = max(score_diff, float(np.max(np.abs(graph["scores"][i, :count] - faces.scores[:count]), initial=0.0)))
        got.append(graph["embeddings"][i, :count])
        expected.append(faces.embeddings[:count])
    figures = {"photos": len(want), "faces": int(sum(len(g) for g in got)),
               "faces_per_photo": [int(c) for c in graph["num_faces"]], "max_box_diff_px": box_diff,
               "max_landmark_diff_px": landmark_diff, "max_score_diff": score_diff}
    return np.concatenate(got), np.concatenate(expected), figures
