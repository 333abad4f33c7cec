"""Reader of dlib's DNN files (what ``dlib::serialize(net)`` writes), with numpy alone.

A dlib network is a nest of templates, ``loss<layer<layer<...<input>>>>``, and its file is
that nest written outside-in (``dlib/dnn/core.h``)::

    int 1, loss details                         add_loss_layer
    int v, int v, ..., int v                    one version per layer, output side first:
                                                2 = add_layer, 1 = tag or skip layer
    input layer details                         the bottom add_layer (version 2 or 3) holds it
    for each add_layer, input side first:
        layer details, bool x3, tensor x3       (tag and skip layers write nothing here)
        [bottom layer: + int sample_expansion_factor when version 3]

Primitives (``dlib/serialize.h``, ``dlib/dnn/tensor.h``):

* int: one control byte (``0x80`` set = negative, low nibble = byte count) then the
  magnitude's bytes, little-endian;
* float/double: int mantissa, int exponent; value = mantissa · 2^exponent;
* bool: the character ``'0'`` or ``'1'``; string: int length, then the bytes;
* tensor: int version 2, ints N, K, R, C, then N·K·R·C little-endian IEEE float32 (NCHW);
* alias_tensor (a shape into a parameter tensor): int version 1, ints N, K, R, C.

The file does not say *which* tag a tag layer is or where a skip layer jumps to (both are
template arguments), so the returned layer list has one ``"tag_or_skip"`` entry for each;
the topology comes from the network's C++ type (see :mod:`facenet_tf.pretrained.dlib_resnet`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.faces.dlib_files import DlibFormatError, DlibReader, read_dlib_bytes

#: Layer kinds :func:`read_dlib_network` returns.
LAYER_KINDS = ("con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc", "tag_or_skip")



@dataclasses.dataclass(frozen=True)
class DlibLayer:
    """One layer of a dlib network.

    Attributes:
        kind: one of :data:`LAYER_KINDS`.
        config: hyper-parameters. ``con``: ``filters``, ``kernel`` (rows, cols),
            ``strides`` (y, x), ``padding`` (y, x). ``max_pool``/``avg_pool``: ``window``
            (rows, cols; ``(0, 0)`` = the whole input), ``strides``, ``padding``.
            ``affine``: ``mode`` (``"conv"``: one gamma/beta per channel, ``"fc"``: per
            element). ``fc``: ``inputs``, ``outputs``, ``bias`` (bool). Others: empty.
        arrays: float32 parameters. ``con``: ``kernel`` ``[out, in, rows, cols]`` (dlib's
            OIHW, applied as cross-correlation), ``bias`` ``[out]``. ``affine``: ``gamma``,
            ``beta`` (``[K]`` in conv mode). ``fc``: ``kernel`` ``[inputs, outputs]``
            (``y = x @ kernel``), ``bias`` ``[outputs]`` when present. Others: empty.
    """

    kind: str
    config: Dict[str, Any] = dataclasses.field(default_factory=dict)
    arrays: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_params(self) -> int:
        """Number of stored parameters (an affine layer's gamma and beta included)."""
        return int(sum(a.size for a in self.arrays.values()))


@dataclasses.dataclass(frozen=True)
class DlibNetwork:
    """A dlib network file's content.

    Attributes:
        loss: the loss layer's serialisation name, e.g. ``"loss_metric_2"``.
        loss_config: its settings (``loss_metric``: ``margin``, ``distance_threshold``).
        input_kind: the input layer's name, e.g. ``"input_rgb_image_sized"``.
        input_size: ``(rows, cols)`` the input layer is locked to.
        input_mean: ``(red, green, blue)`` float32 means the input layer subtracts before
            dividing by 256.
        layers: the layers, input side first (the input layer itself excluded).
    """

    loss: str
    loss_config: Dict[str, float]
    input_kind: str
    input_size: Tuple[int, int]
    input_mean: Tuple[float, float, float]
    layers: Tuple[DlibLayer, ...]

    @property
    def num_params(self) -> int:
        """Total number of parameters of all layers."""
        return sum(layer.num_params for layer in self.layers)

    def count(self, kind: str) -> int:
        """Number of layers of ``kind``."""
        return sum(layer.kind == kind for layer in self.layers)


def _read_loss(r: DlibReader) -> Tuple[str, Dict[str, float]]:
    name = r.string(limit=64)
    if name == "loss_metric_2":
        return name, {"margin": r.float(), "distance_threshold": r.float()}
    raise FacenetError(f"loss layer {name!r} is not supported (supported: loss_metric_2)")


def _read_input(r: DlibReader) -> Tuple[str, Tuple[int, int], Tuple[float, float, float]]:
    name = r.string(limit=64)
    if name != "input_rgb_image_sized":
        raise FacenetError(f"input layer {name!r} is not supported (supported: input_rgb_image_sized)")
    mean = tuple(float(np.float32(r.float())) for _ in range(3))  # dlib stores them as float
    rows, cols = r.int(), r.int()
    return name, (rows, cols), mean


def _pool(r: DlibReader, kind: str) -> DlibLayer:
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    return DlibLayer(kind, {"window": (nr, nc), "strides": (sy, sx), "padding": (py, px)})


def _read_layer(r: DlibReader) -> DlibLayer:
    name = r.string(limit=64)
    if name == "con_4":
        params = r.tensor().ravel()
        filters, rows, cols, sy, sx, py, px = (r.int() for _ in range(7))
        shape, bias_shape = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        size = int(np.prod(shape))
        if shape[0] != filters or shape[2:] != (rows, cols) or params.size != size + filters:
            raise DlibFormatError(f"con_ layer with {params.size} parameters does not match its shape {shape}")
        return DlibLayer("con", {"filters": filters, "kernel": (rows, cols), "strides": (sy, sx), "padding": (py, px)},
                         {"kernel": params[:size].reshape(shape), "bias": params[size:]})
    if name == "affine_":
        params = r.tensor().ravel()
        gamma_shape, beta_shape = r.alias(), r.alias()
        mode = {0: "conv", 1: "fc"}.get(r.int())
        size = int(np.prod(gamma_shape))
        if mode is None or gamma_shape != beta_shape or params.size != 2 * size:
            raise DlibFormatError(f"affine_ layer with {params.size} parameters does not match its shape {gamma_shape}")
        shape = (gamma_shape[1],) if mode == "conv" else gamma_shape[1:]
        return DlibLayer("affine", {"mode": mode},
                         {"gamma": params[:size].reshape(shape), "beta": params[size:].reshape(shape)})
    if name == "relu_":
        return DlibLayer("relu")
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name == "max_pool_2":
        return _pool(r, "max_pool")
    if name == "avg_pool_2":
        return _pool(r, "avg_pool")
    if name == "fc_2":
        outputs, inputs = r.int(), r.int()
        params = r.tensor().ravel()
        weight_shape, bias_shape = r.alias(), r.alias()
        r.int()  # bias mode; the bias alias's size says the same
        for _ in range(4):
            r.float()
        size, bias_size = int(np.prod(weight_shape)), int(np.prod(bias_shape))
        if weight_shape[:2] != (inputs, outputs) or params.size != size + bias_size:
            raise DlibFormatError(f"fc_ layer with {params.size} parameters does not match {inputs}x{outputs}")
        arrays = {"kernel": params[:size].reshape(inputs, outputs)}
        if bias_size:
            arrays["bias"] = params[size:]
        return DlibLayer("fc", {"inputs": inputs, "outputs": outputs, "bias": bool(bias_size)}, arrays)
    raise FacenetError(f"dlib layer {name!r} is not supported (supported: con_4, affine_, relu_, add_prev_, "
                       "max_pool_2, avg_pool_2, fc_2, tag and skip layers)")


def _skip_layer_state(r: DlibReader) -> None:
    """add_layer's bookkeeping after the details: three flags and three cached tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


def _parse(r: DlibReader, progress: Optional[Callable[[int], None]] = None) -> DlibNetwork:
    if r.int() != 1:
        raise DlibFormatError("no add_loss_layer header")
    loss, loss_config = _read_loss(r)
    versions: List[int] = []
    # Versions are 1..3; the first int >= 4 is the length of the input layer's name.
    while r.peek_int() < 4:
        versions.append(r.int())
        if len(versions) > 100000:
            raise DlibFormatError("no input layer found")
    if not versions or versions[-1] not in (2, 3) or any(v not in (1, 2) for v in versions[:-1]):
        raise DlibFormatError(f"unexpected layer versions {sorted(set(versions))}")
    input_kind, input_size, input_mean = _read_input(r)
    layers: List[DlibLayer] = []
    reported = 0
    for i, version in enumerate(reversed(versions)):
        if version == 1:
            layers.append(DlibLayer("tag_or_skip"))
            continue
        layers.append(_read_layer(r))
        _skip_layer_state(r)
        if i == 0 and version == 3:
            r.int()  # sample_expansion_factor
        if progress is not None:
            progress(r.pos - reported)
            reported = r.pos
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} unread bytes after the network")
    return DlibNetwork(loss, loss_config, input_kind, input_size, input_mean, tuple(layers))


def read_dlib_network(path: str, progress: Optional[Callable[[int], None]] = None) -> DlibNetwork:
    """Read a dlib DNN file (e.g. ``dlib_face_recognition_resnet_model_v1.dat``).

    Args:
        path: the ``.dat`` file, uncompressed (dlib.net serves them as ``.bz2``).
        progress: optional callable receiving the number of bytes just parsed, after each
            layer (together, the size of the file).

    Returns:
        :class:`DlibNetwork`; its layers are listed input side first.

    Raises:
        FacenetError: the file is missing or unreadable, is not a dlib network, or holds a
            layer type this reader does not know.
    """
    data = read_dlib_bytes(path, f"dlib network file not found: {path}", f"cannot read dlib network file {path}")
    try:
        return _parse(DlibReader(data), progress)
    except DlibFormatError as e:
        raise FacenetError(f"{path} is not a dlib DNN file: {e}") from None
    except FacenetError as e:
        raise FacenetError(f"{path}: {e}") from None
