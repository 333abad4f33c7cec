"""Speed and peak memory of the triplet losses against an O(B³) reference, same run.

For every batch size B: forward + backward time (median of ``--repeats`` calls after two
warm-up calls, inside ``tf.function``) and peak resident memory of

* ours: ``triplet_semihard_loss`` (also under XLA, as ``model.fit`` compiles it on
  GPUs), ``triplet_hard_loss``, ``triplet_batch_all_loss``;
* naive: semi-hard mining written the tensorflow-addons way, tiling B×B×B (skipped
  where its estimated footprint exceeds ``--cap-gb``);
* tfa: ``tensorflow_addons.losses.triplet_semihard_loss``, when ``--tfa-python`` names a
  Python with tensorflow-addons (same cap).

Embeddings: 128-d unit vectors, labels = B/4 identities × 4 images, seed 0, identical
for every implementation, so the semi-hard losses must agree (column ``max |Δ|``).
Each (implementation, B) runs in a fresh subprocess of this file (``--worker``) that
reports its own ``ru_maxrss``, so sizes and implementations don't pollute each other.

    python benchmarks/loss_speed.py --tfa-python /tmp/tfa-venv/bin/python
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

OURS = ("semihard", "semihard_xla", "hard", "batch_all")
# Peak bytes per B³ element of the O(B³) runs: measured 14 for tfa, 9 for naive at B=512.
BYTES_PER_CUBE_ELEMENT = 16


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,256,512,1024,2048,4096")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tfa-python", help="python with tensorflow-addons installed")
    parser.add_argument("--cap-gb", type=float, default=6.0,
                        help="skip O(B³) runs whose estimated footprint exceeds this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.size, args.repeats)))
        return

    print(header(), flush=True)
    versions = set()
    for size in (int(s) for s in args.sizes.split(",")):
        row = {"B": size}
        for impl in OURS + ("naive", "tfa"):
            if impl == "tfa" and not args.tfa_python:
                row[impl] = "not run (no --tfa-python)"
                continue
            if impl in ("naive", "tfa") and BYTES_PER_CUBE_ELEMENT * size**3 > args.cap_gb * 2**30:
                row[impl] = f"skipped (>{args.cap_gb:g} GB)"
                continue
            python = args.tfa_python if impl == "tfa" else sys.executable
            row[impl] = spawn(python, impl, size, args.repeats)
        print(format_row(row), flush=True)
        versions.update(f"{impl}: TF {r['tf']}" for impl, r in row.items()
                        if isinstance(r, dict) and impl in ("semihard", "tfa"))
    print(f"\n{os.cpu_count()} CPUs; " + "; ".join(sorted(versions)))


def spawn(python, impl, size, repeats):
    command = [python, os.path.abspath(__file__), "--worker", impl, "--size", str(size),
               "--repeats", str(repeats)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def header():
    return ("| B | semihard ms | semihard XLA ms | hard ms | batch_all ms | naive ms | tfa ms "
            "| naive/ours | tfa/ours | semihard RSS MB | XLA RSS MB | naive RSS MB | "
            "tfa RSS MB | max abs diff |\n|" + "---:|" * 14)


def format_row(row):
    def ms(impl):
        r = row[impl]
        return f"{r['median_ms']:.2f}" if isinstance(r, dict) else r

    def rss(impl):
        r = row[impl]
        return f"{r['peak_rss_mb']:.0f}" if isinstance(r, dict) else "-"

    def ratio(impl):
        r, ours = row[impl], row["semihard"]
        if not (isinstance(r, dict) and isinstance(ours, dict)):
            return "-"
        return f"{r['median_ms'] / ours['median_ms']:.1f}×"

    refs = [row[i]["loss"] for i in ("semihard_xla", "naive", "tfa")
            if isinstance(row[i], dict)]
    diff = (f"{max(abs(x - row['semihard']['loss']) for x in refs):.1e}"
            if refs and isinstance(row["semihard"], dict) else "-")
    cells = [str(row["B"]), ms("semihard"), ms("semihard_xla"), ms("hard"), ms("batch_all"),
             ms("naive"), ms("tfa"), ratio("naive"), ratio("tfa"), rss("semihard"),
             rss("semihard_xla"), rss("naive"), rss("tfa"), diff]
    return "| " + " | ".join(cells) + " |"


def run_worker(impl, size, repeats):
    """Time forward + backward of one implementation at one size (in this process)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(size // 4), 4).astype("int32")
    emb = rng.normal(size=(size, 128)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    loss_fn = pick_loss(impl)

    @tf.function(jit_compile=impl.endswith("_xla"))
    def step(lab, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = loss_fn(lab, x)
        return total, tape.gradient(total, x)

    lab, x = tf.constant(labels), tf.constant(emb)
    for _ in range(2):
        total, grad = step(lab, x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        total, grad = step(lab, x)
        total.numpy(), grad.numpy()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1e3 * statistics.median(times), "loss": float(total),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "tf": tf.__version__}


def pick_loss(impl):
    if impl == "tfa":
        import tensorflow_addons as tfa

        return lambda lab, x: tfa.losses.triplet_semihard_loss(
            lab, x, margin=0.2, distance_metric="squared-L2")
    if impl == "naive":
        return naive_semihard_loss
    from facenet_tf import losses

    return {"semihard": losses.triplet_semihard_loss, "hard": losses.triplet_hard_loss,
            "batch_all": losses.triplet_batch_all_loss,
            "semihard_xla": losses.triplet_semihard_loss}[impl]


def naive_semihard_loss(labels, embeddings, margin=0.2):
    """Semi-hard triplet loss as tensorflow-addons computes it: for every (a, p) pair,
    compare D[a, p] with every D[a, n] in a B×B×B mask. Squared L2."""
    import tensorflow as tf

    sq = tf.reduce_sum(tf.square(embeddings), 1)
    dist = tf.maximum(sq[:, None] - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True)
                      + sq[None, :], 0.0)
    dist = dist * (1.0 - tf.eye(tf.shape(dist)[0]))
    same = tf.equal(labels[:, None], labels[None, :])
    neg = tf.cast(~same, tf.float32)
    # cube[a, p, n]: n is a negative of a beyond D[a, p].
    cube = tf.cast(~same, tf.float32)[:, None, :] * tf.cast(
        dist[:, None, :] > dist[:, :, None], tf.float32)
    found = tf.reduce_sum(cube, 2) > 0
    row_max = tf.reduce_max(dist, 1, keepdims=True)
    beyond = tf.reduce_min((dist[:, None, :] - row_max[:, None, :]) * cube, 2) + row_max
    row_min = tf.reduce_min(dist, 1, keepdims=True)
    farthest = tf.reduce_max((dist - row_min) * neg, 1, keepdims=True) + row_min
    negative = tf.where(found, beyond, farthest)
    positive = tf.cast(same, tf.float32) - tf.eye(tf.shape(dist)[0])
    return tf.reduce_sum(tf.maximum((dist - negative + margin) * positive, 0.0)) / (
        tf.reduce_sum(positive))


if __name__ == "__main__":
    main()
