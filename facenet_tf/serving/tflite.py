"""TFLite conversion of an exported SavedModel, and running the result with LiteRT.

Four variants, all converted from the SavedModel's ``serving_default`` signature, so the
``.tflite`` file keeps that signature: input ``images`` float32 ``[N, H, W, 3]`` (RGB pixels
0..255; N is dynamic), output ``embeddings`` float32 ``[N, D]``:

* ``float32``: the graph as it is.
* ``float16``: weights stored as float16, dequantised to float32 when loaded (half size,
  same float32 arithmetic on CPU).
* ``dynamic``: dynamic-range quantisation; int8 weights, activations quantised on the fly.
* ``int8``: integer quantisation calibrated on representative images: int8 weights and
  int8 activations for every convolution, pooling and dense layer. Three things stay
  float32: the I/O (so callers use every variant the same way), the model's first layer,
  the per-image standardisation (mean, std, divide: 7 element-wise/reduction ops on the
  input), and its last, the L2 normalisation (5 ops on D values). Per-image statistics
  cannot share one calibrated int8 range: with the standardisation in int8 a trained
  small_cnn fell to a min cosine of 0.41 to the Keras model, against 0.9995 with it in
  float (same calibration images); with the normalisation in int8, an image whose
  pre-normalisation norm fell outside the calibrated range came out with norm 0.84, which
  shifts every distance compared with a threshold. An accelerator that needs integer I/O
  and integer-only kernels (Edge TPU, microcontrollers) is therefore not served by this
  variant.

Running, and finding the standardisation's nodes for ``int8``, need ``ai-edge-litert`` (the
extra ``facenet_tf[tflite]``); the other conversions need only TensorFlow.

:func:`convert_with_tf_ops` and :func:`run_with_litert` try any other signature (export's
``detect_and_embed``) with TensorFlow ops allowed, and say which op stops it.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Dict, Optional

import numpy as np

from facenet_tf.errors import FacenetError, check_choice

VARIANTS = ("float32", "float16", "dynamic", "int8")

#: Default minimum cosine similarity to the Keras model, per variant.
MIN_COSINE: Dict[str, float] = {"float32": 0.99999, "float16": 0.999, "dynamic": 0.99, "int8": 0.99}

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"


def convert(saved_model_dir: str, variant: str, representative: Optional[np.ndarray] = None) -> bytes:
    """Convert the ``serving_default`` signature of a SavedModel to a TFLite flatbuffer.

    Args:
        saved_model_dir: a SavedModel written by :func:`facenet_tf.models.writer.export_saved_model`.
        variant: one of :data:`VARIANTS`.
        representative: float32/uint8 ``[M, H, W, 3]`` pixels 0..255 for the ``int8``
            calibration (ignored by the other variants).

    Returns:
        The ``.tflite`` file's bytes.

    Raises:
        FacenetError: unknown variant, ``int8`` without representative images, or a graph
            the converter cannot express in the variant.
    """
    import tensorflow as tf

    check_choice("tflite variant", variant, VARIANTS)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative is None or not len(representative):
            raise FacenetError("tflite variant 'int8' needs representative images for calibration; received none")
        calibration = np.asarray(representative, np.float32)
        # One image per step: the signature's batch dimension is dynamic, and single images
        # give the calibrator the same per-image statistics a device sees.
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        float_nodes = _float_nodes(saved_model_dir)
        if float_nodes:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            # Selective quantisation: every node quantised except those two layers'.
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=lambda: ([image[None]] for image in calibration[:1]),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes),
            )
            return _convert(variant, debugger.get_nondebug_quantized_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return _convert(variant, converter.convert)


#: The conversion of :func:`convert_with_tf_ops`, run in a fresh interpreter: argv = SavedModel,
#: signature, output file.
_CONVERT_WITH_TF_OPS = """
import sys
import tensorflow as tf
converter = tf.lite.TFLiteConverter.from_saved_model(sys.argv[1], signature_keys=[sys.argv[2]])
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
model = converter.convert()
with open(sys.argv[3], "wb") as f:
    f.write(model)
"""


def convert_with_tf_ops(saved_model_dir: str, signature: str, timeout_s: float = 1800) -> bytes:
    """Convert any signature of a SavedModel to TFLite, TensorFlow ops allowed where TFLite has
    no builtin (``SELECT_TF_OPS``: the Flex delegate must run them).

    The converter runs in a child process: on some graphs (``detect_and_embed`` with TensorFlow
    2.21) it does not raise but crashes the process (a segmentation fault).

    Raises:
        FacenetError: the converter refused (the message names each op it could not place, e.g.
            ``tf.ExtractJpegShape: is neither a custom op nor a flex op``), crashed or ran past ``timeout_s``.
    """
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "model.tflite")
        try:
            proc = subprocess.run([sys.executable, "-c", _CONVERT_WITH_TF_OPS, saved_model_dir, signature, out],
                                  capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        except subprocess.TimeoutExpired:
            raise FacenetError(f"TFLite conversion of {signature} ran past {timeout_s:.0f} s") from None
        if proc.returncode < 0:
            raise FacenetError(f"TFLite conversion of {signature} crashed the converter (signal {-proc.returncode})")
        if proc.returncode != 0 or not os.path.isfile(out):
            raise FacenetError(f"TFLite conversion of {signature} failed: {op_problems(proc.stderr)}")
        with open(out, "rb") as f:
            return f.read()


def op_problems(message: str) -> str:
    """The converter's errors, one short phrase per op (``'tfl.gather': ... got 'tensor<?x4xf64>'``)."""
    found = []
    for op, text in re.findall(r"error: '([\w.]+)' op ([^\n]*)", message):
        text = re.sub(r"must be tensor of .* values, but got", "got", text)
        phrase = f"{op}: {text.strip()[:120]}"
        if phrase not in found:
            found.append(phrase)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(found) if found else (lines[-1][:300] if lines else "unknown error")


def run_with_litert(model: bytes, signature: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run ``signature`` of a ``.tflite`` model with LiteRT once.

    Raises:
        FacenetError: LiteRT cannot prepare or run it (e.g. TensorFlow ops without the Flex
            delegate: the message names the op LiteRT stopped at).
    """
    try:
        interpreter = _interpreter_class()(model_content=model)
        return {k: np.asarray(v) for k, v in interpreter.get_signature_runner(signature)(**inputs).items()}
    except FacenetError:
        raise
    except Exception as err:  # noqa: BLE001 - LiteRT raises RuntimeError/ValueError
        text = " ".join(str(err).split())
        flex = sorted(set(re.findall(r"\((Flex\w+)\)", text)))
        reason = f"TensorFlow ops ({', '.join(flex)}) need the Flex delegate, which LiteRT lacks" if flex else text[:300]
        raise FacenetError(f"LiteRT cannot run {signature}: {reason}") from None


def _float_nodes(saved_model_dir: str):
    """Output tensor names of the ``standardize`` and ``l2_normalize`` layers' ops in the float graph."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE])
    graph = _interpreter_class()(model_content=_convert("float32", converter.convert))
    names = [t["name"] for t in graph.get_tensor_details() if "/standardize" in t["name"] or "/l2_normalize" in t["name"]]
    # The normalisation's last op (the multiply) writes the graph output, named after the call, not the layer.
    return names + [t["name"] for t in graph.get_output_details()] if names else []


def _convert(variant: str, convert_fn) -> bytes:
    try:
        return convert_fn()
    except Exception as err:  # noqa: BLE001 - the converter raises many types; all mean "cannot convert"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FacenetError(f"TFLite conversion to {variant} failed: {first}") from None


def interpreter(model_path: str, num_threads: Optional[int] = None):
    """A LiteRT ``Interpreter`` for ``model_path`` (tensors allocated).

    Raises:
        FacenetError: ``ai-edge-litert`` is not installed (it names the extra).
    """
    model = _interpreter_class()(model_path=model_path, num_threads=num_threads)
    model.allocate_tensors()
    return model


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise FacenetError(
            "running TFLite models needs ai-edge-litert: pip install 'facenet_tf[tflite]' (or pip install ai-edge-litert)"
        ) from None
    return Interpreter


def embedder(model_path: str, num_threads: Optional[int] = None) -> Callable[[np.ndarray], np.ndarray]:
    """Load a ``.tflite`` embedding model; returns ``fn(pixels [N,H,W,3] 0..255) -> float32 [N, D]``.

    Raises:
        FacenetError: ``ai-edge-litert`` missing, or the file lacks the expected signature.
    """
    model = interpreter(model_path, num_threads)
    signatures = model.get_signature_list()
    if SIGNATURE not in signatures:
        raise FacenetError(f"{model_path}: no {SIGNATURE!r} signature (has {sorted(signatures)})")
    runner = model.get_signature_runner(SIGNATURE)

    def embed(pixels: np.ndarray) -> np.ndarray:
        out = runner(**{INPUT_NAME: np.asarray(pixels, np.float32)})
        return np.asarray(out[OUTPUT_NAME], np.float32)

    embed.interpreter = model  # keep the interpreter alive as long as the function
    return embed
