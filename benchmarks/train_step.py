"""Cost of one training step: triplet loss (online semi-hard mining) vs a softmax head.

Same backbone, same batch of P×K images, same optimizer; the triplet step is
:class:`facenet_tf.training.TripletTrainer`'s ``train_step`` (embeddings → mining → loss),
the reference a classifier: the same embedding model + ``Dense(P·n)`` logits + sparse
cross-entropy over the batch's identities. Both run side by side in one process
(``train_on_batch``, alternating step by step so a busy machine slows both alike), without
and with XLA (``jit_compile``). Prints the device, TensorFlow version, a table, and ends
with one JSON line (``batch``, ``triplet_over_softmax`` …). Runs unchanged on a GPU.

    python benchmarks/train_step.py                       # B = 256 (64 identities × 4), 64x64
    python benchmarks/train_step.py --identities 128 --image-size 96 --backbone mobilenet_v2
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facenet_tf import losses  # noqa: E402
from facenet_tf.models import ModelConfig, build_embedding_model  # noqa: E402
from facenet_tf.training import TripletTrainer, build_optimizer  # noqa: E402


def trainers(config: ModelConfig, identities: int, jit: bool):
    keras.utils.set_random_seed(0)
    triplet = TripletTrainer(build_embedding_model(config), losses.get("semihard"))
    triplet.compile(optimizer=build_optimizer(1e-3, 1000, 0, 1e-4), jit_compile=jit)
    embedder = build_embedding_model(config)
    logits = keras.layers.Dense(identities, name="logits")(embedder.output)
    softmax = keras.Model(embedder.input, logits)
    softmax.compile(optimizer=build_optimizer(1e-3, 1000, 0, 1e-4),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    return triplet, softmax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=64, help="P (default: %(default)s)")
    parser.add_argument("--images-per-identity", type=int, default=4, help="K (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model (default: %(default)s)")
    parser.add_argument("--xla", choices=("off", "on", "both"), default="both",
                        help="time without XLA, with it, or both (default: %(default)s)")
    args = parser.parse_args()

    batch = args.identities * args.images_per_identity
    config = ModelConfig(backbone=args.backbone, image_size=(args.image_size, args.image_size))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (batch, args.image_size, args.image_size, 3)).astype(np.float32))
    y = tf.constant(np.repeat(np.arange(args.identities), args.images_per_identity).astype(np.int32))
    device = (tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("CPU"))[0]
    print(f"device {device.name} ({device.device_type}); TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{args.backbone} {args.image_size}x{args.image_size}, batch {batch} = {args.identities} x "
          f"{args.images_per_identity}")
    figures = {"batch": batch, "device": device.device_type, "tensorflow": tf.__version__}
    print(f"{'XLA':<5} {'triplet img/s':>14} {'softmax img/s':>14} {'triplet/softmax time':>21}")
    for jit in {"off": (False,), "on": (True,), "both": (False, True)}[args.xla]:
        triplet, softmax = trainers(config, args.identities, jit)
        for _ in range(3):  # compile and warm up
            triplet.train_on_batch(x, y)
            softmax.train_on_batch(x, y)
        times = {"triplet": [], "softmax": []}
        for _ in range(args.steps):
            for name, model in (("triplet", triplet), ("softmax", softmax)):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                times[name].append(time.perf_counter() - start)
        t, s = statistics.median(times["triplet"]), statistics.median(times["softmax"])
        suffix = "_xla" if jit else ""
        figures.update({f"triplet_images_per_second{suffix}": round(batch / t, 1),
                        f"softmax_images_per_second{suffix}": round(batch / s, 1),
                        f"triplet_over_softmax{suffix}": round(t / s, 3)})
        print(f"{'on' if jit else 'off':<5} {batch / t:>14.1f} {batch / s:>14.1f} {t / s:>20.3f}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
