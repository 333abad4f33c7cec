"""The whole face pipeline as one TensorFlow graph: photo bytes in, every face's box and embedding out.

:class:`DetectAndEmbed` composes the TensorFlow versions of the Python pipeline's steps that
``facenet-tf export`` saves as the SavedModel signature ``detect_and_embed``, for a model whose
contract records dlib's own alignment (``dlib_landmarks``, the imported dlib model):

1. decode each photo as the reader does, at most :data:`~facenet_tf.faces.found.MAX_DETECT_PIXELS`
   pixels (:func:`facenet_tf.faces.decode_graph.decode_rgb`; a larger photo is decoded smaller and
   its boxes and landmarks scaled back to the original's pixels);
2. dlib's CNN (MMOD) face detector and its non-maximum suppression
   (:class:`facenet_tf.faces.cnn_graph.CnnGraphDetector`, ``upsample`` = the recorded ``hog_upsample``);
3. face order: row 0 is the face the recorded face rule (``--face``, :mod:`facenet_tf.faces.choice`)
   chooses, the others follow best score first; at most ``max_faces`` rows;
4. dlib's 5-point predictor in each box (:class:`facenet_tf.faces.shape_predictor_graph.ShapePredictorGraph`)
   and dlib's chip (:func:`facenet_tf.faces.chips_graph.face_chips`), truncated to uint8 values as
   dlib's ``assign_pixel`` does and resized to the model's input where the sizes differ;
5. the model on the chips of every photo at once, with the recorded test-time augmentation
   (``none`` or ``flip``: the mean of the chip's and its mirror's embeddings, re-normalised when the
   contract says the model's embeddings are unit-norm).

The Python pipeline it equals is :class:`facenet_tf.recognition.FaceRecognizer` with
``detector="dlib_cnn"``: same faces, embeddings within the export's tolerance
(:mod:`facenet_tf.serving.graph_check`). What the graph does not do: the whole-image path of a
tight crop where no face is detected (``on_failure="resize"`` with evidence): a photo without a
detected face gives ``num_faces`` 0; and the recorded ``dlib_hog_cnn`` detector's HOG half.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import tensorflow as tf

from facenet_tf.errors import FacenetError
from facenet_tf.faces.found import MAX_DETECT_PIXELS

SIGNATURE = "detect_and_embed"
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "landmarks", "embeddings", "num_faces")
#: Alignment methods the graph reproduces (its predictor and chips are dlib's).
GRAPH_METHODS = ("dlib_landmarks",)


def _central(shape: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    """Squared distance of each box centre from the image centre (smaller is chosen)."""
    centre = tf.stack([shape[1], shape[0]]) / 2.0
    middle = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    return tf.reduce_sum(tf.square(middle - centre), axis=1)


def _largest(shape: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    return -(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _confident(shape: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    return -scores


#: The face rules of :data:`facenet_tf.faces.choice.FACE_CHOICES` in TensorFlow: ``(image
#: (H, W) float64, boxes float64 [K, 4] (left, top, right, bottom; right = left + width),
#: scores float64 [K]) -> float64 [K]``, the face with the smallest value is chosen (the first
#: of equals, as Python's ``min``/``max`` take it).
FACE_RULES: Dict[str, Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "central": _central, "largest": _largest, "confident": _confident}

#: The test-time augmentations the graph reproduces: the views of a chip batch.
TTA_VIEWS: Dict[str, Callable[[tf.Tensor], List[tf.Tensor]]] = {
    "none": lambda chips: [chips],
    "flip": lambda chips: [chips, tf.reverse(chips, axis=[2])],
}


def face_order(shape: tf.Tensor, boxes: tf.Tensor, scores: tf.Tensor, rule: str) -> tf.Tensor:
    """Row order of a photo's faces: the face ``rule`` chooses first, the others best score first.

    Args:
        shape: the photo's ``(height, width)`` (any number type).
        boxes: ``[K, 4]`` (left, top, right, bottom) in the photo's pixels, ``right = left + width``.
        scores: ``[K]`` detector scores.
        rule: a name in :data:`FACE_RULES`.

    Returns:
        int32 ``[K]`` indices into ``boxes`` (empty for K = 0).
    """
    by_score = tf.argsort(-scores, stable=True)
    if rule not in FACE_RULES:
        raise FacenetError(f"face rule {rule!r} has no graph version; choose one of {', '.join(FACE_RULES)}")
    key = FACE_RULES[rule](tf.cast(shape, tf.float64), tf.cast(tf.gather(boxes, by_score), tf.float64),
                           tf.cast(tf.gather(scores, by_score), tf.float64))
    count = tf.shape(by_score)[0]
    positions = tf.range(count)
    # The first minimum, not argmin's (whose choice among equals TensorFlow leaves open).
    first = tf.reduce_min(tf.where(key <= tf.reduce_min(key), positions, count))
    rest = tf.boolean_mask(positions, tf.not_equal(positions, first))
    return tf.gather(by_score, tf.concat([tf.reshape(first, [-1])[:tf.minimum(count, 1)], rest], axis=0))


class DetectAndEmbed(tf.Module):
    """Encoded photos → every face's box, score, landmarks and embedding (module docstring).

    Args:
        model: the embedding network (Keras), float32 ``[N, H, W, 3]`` RGB 0..255 → ``[N, D]``.
        detector: ``uint8 [H, W, 3] -> (boxes float32 [K, 4] dlib's inclusive rectangles,
            scores [K])``, best first (:class:`~facenet_tf.faces.cnn_graph.CnnGraphDetector`).
        predictor: ``(uint8 [H, W, 3], boxes [F, 4]) -> landmarks float32 [F, 5, 2]``
            (:class:`~facenet_tf.faces.shape_predictor_graph.ShapePredictorGraph`).
        max_faces: F, rows per photo.
        face: the face rule, a name in :data:`FACE_RULES`.
        tta: a name in :data:`TTA_VIEWS`.
        normalized: re-normalise the TTA mean to unit length.
        chip_size, padding: dlib's chip (the recorded alignment's ``size`` and ``padding``).
        max_pixels: photos are decoded at most this many pixels.

    Raises:
        FacenetError: a face rule or TTA the graph does not have, or ``max_faces`` < 1.
    """

    def __init__(self, model, detector, predictor, *, max_faces: int = 8, face: str = "central",
                 tta: str = "none", normalized: bool = True, chip_size: int = 150, padding: float = 0.25,
                 max_pixels: int = MAX_DETECT_PIXELS):
        super().__init__(name="detect_and_embed")
        if face not in FACE_RULES:
            raise FacenetError(f"face rule {face!r} has no graph version; choose one of {', '.join(FACE_RULES)}")
        if tta not in TTA_VIEWS:
            raise FacenetError(f"test-time augmentation {tta!r} has no graph version ({', '.join(TTA_VIEWS)} have)")
        if isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1:
            raise FacenetError(f"max_faces must be an integer >= 1; received {max_faces!r}")
        self.model = model
        self.detector = detector
        self.predictor = predictor
        self.max_faces = max_faces
        self.face = face
        self.tta = tta
        self.normalized = normalized
        self.chip_size = int(chip_size)
        self.padding = float(padding)
        self.max_pixels = int(max_pixels)
        self.image_size = tuple(int(v) for v in model.input_shape[1:3])
        self.embedding_dim = int(model.output_shape[-1])

    def input_signature(self) -> List[tf.TensorSpec]:
        return [tf.TensorSpec([None], tf.string, name=INPUT_NAME)]

    def __call__(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """tf.string ``[N]`` encoded JPEG/PNG photos (any sizes) → ``{"boxes": float32 [N, F, 4]
        (left, top, right, bottom) original-photo pixels with ``right = left + width`` as
        :class:`~facenet_tf.recognition.results.DetectedFace` has them; "scores": [N, F];
        "landmarks": [N, F, 5, 2] (x, y) original pixels in dlib's 5-point order; "embeddings":
        [N, F, D]; "num_faces": int32 [N]}``. Row 0 of a photo with faces is the one the face
        rule chooses, the others follow best score first; rows past ``num_faces`` are zero."""
        size = self.chip_size
        # One photo at a time: a 4 MP photo's upsampled pyramid holds gigabytes of activations.
        found = tf.map_fn(self._photo, images, parallel_iterations=1, fn_output_signature=(
            tf.TensorSpec([self.max_faces, 4], tf.float32), tf.TensorSpec([self.max_faces], tf.float32),
            tf.TensorSpec([self.max_faces, 5, 2], tf.float32), tf.TensorSpec([self.max_faces, size, size, 3], tf.uint8),
            tf.TensorSpec([], tf.int32)))
        boxes, scores, landmarks, chips, counts = found
        rows = tf.sequence_mask(counts, self.max_faces)
        chosen = tf.boolean_mask(chips, rows)
        # No face in the batch: the model is not run (the dlib network fails on an empty batch).
        embedded = tf.cond(tf.shape(chosen)[0] > 0, lambda: self.embed(chosen),
                           lambda: tf.zeros([0, self.embedding_dim], tf.float32))
        shape = tf.stack([tf.shape(images)[0], self.max_faces, self.embedding_dim])
        embeddings = tf.scatter_nd(tf.cast(tf.where(rows), tf.int32), embedded, shape)
        return {"boxes": boxes, "scores": scores, "landmarks": landmarks, "embeddings": embeddings,
                "num_faces": counts}

    def embed(self, chips: tf.Tensor) -> tf.Tensor:
        """uint8 ``[M, S, S, 3]`` dlib chips → float32 ``[M, D]``: resized to the model's input
        where it differs (as training resizes), the model with the test-time augmentation."""
        pixels = tf.cast(chips, tf.float32)
        if (self.chip_size, self.chip_size) != self.image_size:
            from facenet_tf.data.images import resize

            pixels = tf.round(resize(pixels, self.image_size))
        views = [self.model(view, training=False) for view in TTA_VIEWS[self.tta](pixels)]
        mean = tf.add_n(views) / float(len(views)) if len(views) > 1 else views[0]
        if self.normalized and len(views) > 1:
            mean = tf.math.l2_normalize(mean, axis=1)
        return mean

    def _photo(self, data: tf.Tensor) -> Tuple[tf.Tensor, ...]:
        """One photo → its padded rows (boxes, scores, landmarks, uint8 chips) and face count."""
        from facenet_tf.faces.chips_graph import face_chips
        from facenet_tf.faces.decode_graph import decode_rgb

        image, scale = decode_rgb(data, self.max_pixels)
        scale = tf.cast(scale, tf.float32)
        found, scores = self.detector(image)
        # dlib's inclusive rectangle → (left, top, left + width, top + height) in the original's pixels.
        boxes = (tf.cast(found, tf.float32) + [0.0, 0.0, 1.0, 1.0]) * tf.tile(scale, [2])
        original = tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * tf.reverse(scale, [0]))
        order = face_order(original, boxes, scores, self.face)[:self.max_faces]
        kept = tf.gather(found, order)
        landmarks = self.predictor(image, tf.cast(kept, tf.float32))
        chips = face_chips(image, landmarks, self.chip_size, self.padding)
        chips = tf.cast(tf.floor(tf.clip_by_value(chips, 0.0, 255.0)), tf.uint8)  # dlib's assign_pixel truncates
        count = tf.shape(order)[0]
        missing = self.max_faces - count
        return (_pad(tf.gather(boxes, order), missing), _pad(tf.gather(scores, order), missing),
                _pad(landmarks * scale, missing), _pad(chips, missing), count)


def _pad(rows: tf.Tensor, missing: tf.Tensor) -> tf.Tensor:
    """``rows`` with ``missing`` zero rows appended along the first axis."""
    rank = len(rows.shape)
    return tf.pad(rows, tf.concat([[[0, missing]], tf.zeros([rank - 1, 2], tf.int32)], axis=0))


def unsupported(contract) -> str:
    """Why ``detect_and_embed`` cannot reproduce a model's recorded pipeline, or ``""`` when it can:
    the model must record dlib's own alignment (:data:`GRAPH_METHODS`), a face rule of
    :data:`FACE_RULES` and a test-time augmentation of :data:`TTA_VIEWS`."""
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.serving.tta import TTAConfig

    align = AlignConfig.from_contract(contract)
    if align is None or align.method not in GRAPH_METHODS:
        method = "no alignment" if align is None else f"alignment {align.method!r}"
        return f"the model records {method}; the graph reproduces {', '.join(GRAPH_METHODS)} only"
    if align.face not in FACE_RULES:
        return f"the model records face rule {align.face!r}, which has no graph version"
    tta = TTAConfig.from_contract(contract).mode
    if tta not in TTA_VIEWS:
        return f"the model records test-time augmentation {tta!r}; the graph has {', '.join(TTA_VIEWS)}"
    return ""


def from_contract(model, contract, max_faces: int = 8, max_pixels: int = MAX_DETECT_PIXELS) -> DetectAndEmbed:
    """The graph of the pipeline ``contract`` records for ``model``: dlib's packaged CNN detector
    (upsampled ``hog_upsample`` times) and 5-point predictor, the recorded face rule, chip size,
    padding and TTA; photos decoded at most ``max_pixels`` large (the Python pipeline's bound).

    Raises:
        FacenetError: :func:`unsupported` names a reason; dlib's model files are missing (the
            ``[pretrained]`` extra).
    """
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.cnn_graph import CnnGraphDetector
    from facenet_tf.faces.shape_predictor_graph import ShapePredictorGraph
    from facenet_tf.serving.tta import TTAConfig

    reason = unsupported(contract)
    if reason:
        raise FacenetError(f"no {SIGNATURE} signature: {reason}")
    align = AlignConfig.from_contract(contract)
    return DetectAndEmbed(model, CnnGraphDetector.load(upsample=recorded_upsample(align)), ShapePredictorGraph.load(),
                          max_faces=max_faces, face=align.face, tta=TTAConfig.from_contract(contract).mode,
                          normalized=contract.normalized, chip_size=align.size, padding=align.padding,
                          max_pixels=max_pixels)


def recorded_upsample(align) -> int:
    """How many times the recorded detector doubles a photo: its own ``upsample`` setting
    (``detector_options`` over ``hog_upsample``, :meth:`AlignConfig.detector_settings`)."""
    return int(getattr(align.detector_settings(), "upsample", align.hog_upsample))


def for_export(model, contract, max_faces: int) -> Tuple[Optional[DetectAndEmbed], Dict[str, Any]]:
    """What ``facenet-tf export`` adds: ``(graph, report entry)`` when the model records a pipeline
    the graph reproduces and ``max_faces`` > 0; else ``(None, {"added": False, "reason": ...})``
    (also when dlib's model files, the ``[pretrained]`` extra, are missing: logged)."""
    if max_faces == 0:
        return None, {"added": False, "reason": "left out (max_faces 0)"}
    reason = unsupported(contract)
    if reason:
        return None, {"added": False, "reason": reason}
    try:
        graph = from_contract(model, contract, max_faces)
    except FacenetError as err:
        logging.getLogger("facenet_tf").warning("no %s signature: %s", SIGNATURE, err)
        return None, {"added": False, "reason": str(err)}
    rows = f"[N, {max_faces}"
    return graph, {
        "added": True, "max_faces": max_faces, "face_rule": graph.face, "tta": graph.tta,
        "inputs": {INPUT_NAME: "string [N], encoded JPEG/PNG photos, any size"},
        "outputs": {"boxes": f"float32 {rows}, 4] (left, top, right, bottom) original-photo pixels, right = left + width",
                    "scores": f"float32 {rows}], dlib's CNN detector's",
                    "landmarks": f"float32 {rows}, 5, 2] (x, y) original pixels, dlib's 5 points",
                    "embeddings": f"float32 {rows}, {graph.embedding_dim}]",
                    "num_faces": "int32 [N]; rows past it are zero; row 0 is the face the face rule chooses"},
    }
