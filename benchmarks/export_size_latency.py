"""Benchmark: size on disk and CPU latency of every export format, Keras as the reference.

For each backbone a model with random weights (nothing is downloaded, so no trained
MobileNetV2 either: sizes and speeds do not depend on the weights, accuracy figures would),
BatchNorm statistics set from one batch of synthetic faces, is saved as a training run leaves it, then exported by :func:`facenet_tf.serving.export.export_model`
with all four TFLite variants. The export verifies every artefact against the Keras model;
here the 8-bit tolerance is switched off so that the table reports the measured cosine
whatever it is. Then each artefact is loaded as a user would and timed on the CPU:

* Keras: ``keras.saving.load_model`` + eager ``model(x, training=False)`` (what
  :class:`facenet_tf.serving.inference.Embedder` does with a ``.keras`` file);
* SavedModel: ``tf.saved_model.load`` + the ``serving_default`` signature;
* TFLite: ``ai_edge_litert`` Interpreter, signature runner.

Latency is the median over repeats after warm-up, for one image and per image in a batch
of 32. Run from the repository root (needs ai-edge-litert, the extra ``facenet_tf[tflite]``)::

    PYTHONPATH=. python benchmarks/export_size_latency.py --threads 1
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facenet_tf.serving import tflite as tflite_lib  # noqa: E402
from facenet_tf.artifacts import METADATA_FILE, fingerprint_weights, write_json  # noqa: E402
from facenet_tf.models.contract import ModelContract, Provenance  # noqa: E402
from facenet_tf.serving.export import ExportConfig, export_model  # noqa: E402
from facenet_tf.models import ModelConfig, build_embedding_model  # noqa: E402

BACKBONES = {"small_cnn": (64, 64), "mobilenet_v2": (112, 112)}


def median_ms(fn, x, repeats):
    for _ in range(3):  # warm-up: tracing, allocation, XNNPACK packing
        fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def set_batchnorm_statistics(model, size):
    """Set every BatchNorm's moving mean/variance from one batch of synthetic faces.

    With freshly initialised statistics (mean 0, variance 1) a random MobileNetV2's
    activations grow layer after layer until the embedding overflows (NaN from TFLite int8,
    zero vectors from float16); one forward pass in training mode with momentum 0 gives
    every layer the statistics of its real input, as training would.
    """
    from facenet_tf.data import synthetic_identities

    images, _ = synthetic_identities(16, 4, size, seed=1)
    def walk(layer):
        for child in getattr(layer, "layers", []):
            yield child
            yield from walk(child)

    layers = [layer for layer in walk(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images.astype(np.float32), training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def measure(backbone, size, dim, repeats, threads, workdir):
    keras.utils.set_random_seed(0)
    model = build_embedding_model(ModelConfig(backbone=backbone, image_size=size, embedding_dim=dim))
    set_batchnorm_statistics(model, size)
    run_dir = os.path.join(workdir, backbone)
    os.makedirs(run_dir)
    model.save(os.path.join(run_dir, "model.keras"))
    write_json(os.path.join(run_dir, METADATA_FILE), ModelContract(
        architecture=backbone, image_size=size, embedding_dim=dim, fingerprint=fingerprint_weights(model.get_weights()),
        provenance=Provenance(training_data="none (random weights)")).to_json())
    out = os.path.join(workdir, f"{backbone}_export")
    start = time.perf_counter()
    report = export_model(run_dir, out, ExportConfig(tflite=("all",), int8_min_cosine=1e-6))
    export_s = time.perf_counter() - start
    checks = {c.name: c for c in report.checks}

    rng = np.random.default_rng(0)
    one = rng.uniform(0, 255, (1, *size, 3)).astype(np.float32)
    batch = rng.uniform(0, 255, (32, *size, 3)).astype(np.float32)
    loaded_keras = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    saved = tf.saved_model.load(out).signatures["serving_default"]
    runners = {
        "Keras (.keras, eager)": (lambda x: loaded_keras(x, training=False).numpy(),
                                  os.path.getsize(os.path.join(run_dir, "model.keras")) / 1e6, None),
        "SavedModel": (lambda x: saved(images=tf.constant(x))["embeddings"].numpy(),
                       checks["saved_model:serving_default"].size_mb, checks["saved_model:serving_default"]),
    }
    for variant in tflite_lib.VARIANTS:
        path = os.path.join(out, "tflite", f"{variant}.tflite")
        runners[f"TFLite {variant}"] = (tflite_lib.embedder(path, num_threads=threads),
                                        os.path.getsize(path) / 1e6, checks[f"tflite:{variant}"])
    rows = []
    for name, (fn, size_mb, check) in runners.items():
        rows.append((name, size_mb, median_ms(fn, one, repeats), median_ms(fn, batch, max(repeats // 5, 3)) / 32, check))
    return rows, export_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls of one image (batches: a fifth)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TF intra-op and LiteRT threads")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    print(f"{datetime.date.today()}, {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}, TF {tf.__version__}, "
          f"Keras {keras.__version__}, ai-edge-litert {importlib.metadata.version('ai-edge-litert')}, "
          f"numpy {np.__version__}; {args.threads} thread(s)")
    figures = {}
    with tempfile.TemporaryDirectory() as workdir:
        for backbone in args.backbones:
            size = BACKBONES[backbone]
            rows, export_s = measure(backbone, size, args.embedding_dim, args.repeats, args.threads, workdir)
            figures[backbone] = {"export_seconds": round(export_s, 1), **{
                name: {"mb": round(size_mb, 3), "ms_one_image": round(ms_one, 3), "ms_per_image_batch32": round(ms_batch, 3),
                       "min_cosine": None if check is None else round(float(check.min_cosine), 6)}
                for name, size_mb, ms_one, ms_batch, check in rows}}
            print(f"\n{backbone} {size[0]}x{size[1]}, {args.embedding_dim}-d, random weights; "
                  f"export with all checks {export_s:.0f} s\n")
            print("| format | MB | 1 image ms | batch of 32, ms/image | x Keras (1 image) | min cosine vs Keras | max abs diff |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            reference = rows[0][2]
            for name, size_mb, ms_one, ms_batch, check in rows:
                cos = "reference" if check is None else f"{check.min_cosine:.6f}"
                diff = "" if check is None else f"{check.max_abs_diff:.2g}"
                print(f"| {name} | {size_mb:.2f} | {ms_one:.2f} | {ms_batch:.2f} | {reference / ms_one:.1f} | {cos} | {diff} |")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
