"""Speed and peak memory of the triplet losses against an O(B³) reference, same run.

For every batch size B in ``--sizes``: forward + backward time (median of ``--repeats``
calls after two warm-up calls, inside ``tf.function``) and peak resident memory of

* ours: ``triplet_semihard_loss`` and ``triplet_hard_loss`` (both also under XLA,
  ``jit_compile=True``, as ``model.fit`` compiles them on GPUs), ``triplet_batch_all_loss``;
* naive: semi-hard mining written the tensorflow-addons way, tiling B×B×B (skipped
  where its estimated footprint exceeds ``--cap-gb``);
* tfa: ``tensorflow_addons.losses.triplet_semihard_loss``, when ``--tfa-python`` names a
  Python with tensorflow-addons (same cap).

Embeddings: 128-d unit vectors, labels = B/4 identities × 4 images, seed 0, identical
for every implementation, so the semi-hard losses must agree (column ``max |Δ|``).
Each (implementation, B) runs in a fresh subprocess of this file (``--worker``) that
reports its own ``ru_maxrss``, so sizes and implementations don't pollute each other.

Then, for every B in ``--ratio-sizes`` and every Keras backend in ``--backends``,
semi-hard against batch-hard fwd+bwd, compiled and not: one subprocess per (backend, B,
mode) that alternates the two losses call by call, so a busy machine slows both alike,
and reports both medians and their ratio. Modes: TensorFlow ``tf.function`` without /
with ``jit_compile`` (XLA); JAX eager / ``jax.jit``; PyTorch eager (its "jit" column is
not measured: ``torch.compile`` breaks the graph at the data-dependent mining loop).
``--baseline DIR`` adds a column for the TensorFlow losses of another checkout (e.g. a
``git worktree`` of the previous commit), timed by the same workers in the same run.
The last line printed is one JSON object with every figure.

    python benchmarks/loss_speed.py --tfa-python /tmp/tfa-venv/bin/python
    python benchmarks/loss_speed.py --sizes "" --ratio-sizes 512,1024   # ratios only
    git worktree add /tmp/before HEAD~1
    python benchmarks/loss_speed.py --sizes "" --baseline /tmp/before --repeats 3
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

OURS = ("semihard", "semihard_xla", "hard", "hard_xla", "batch_all")
# Peak bytes per B³ element of the O(B³) runs: measured 14 for tfa, 9 for naive at B=512.
BYTES_PER_CUBE_ELEMENT = 16


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,256,512,1024,2048,4096",
                        help="batch sizes of the main table; empty to skip it")
    parser.add_argument("--ratio-sizes", default="512,1024,2048,4096",
                        help="batch sizes of the semi-hard / batch-hard table; empty to skip")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--impls", default=",".join(OURS + ("naive", "tfa")),
                        help="implementations of the main table, comma-separated (default: %(default)s)")
    parser.add_argument("--backends", default="tensorflow,jax,torch",
                        help="Keras backends of the semi-hard / batch-hard table")
    parser.add_argument("--baseline", help="checkout whose TF losses to time side by side")
    parser.add_argument("--tfa-python", help="python with tensorflow-addons installed")
    parser.add_argument("--cap-gb", type=float, default=6.0,
                        help="skip O(B³) runs whose estimated footprint exceeds this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = run_pair if args.worker.startswith("pair") else run_worker
        print(json.dumps(run(args.worker, args.size, args.repeats)))
        return

    figures = {"cpus": os.cpu_count(), "repeats": args.repeats, "versions": {},
               "table": [], "ratios": []}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        print(header(), flush=True)
    for size in sizes:
        row = {"B": size, **{impl: "not run (--impls)" for impl in OURS + ("naive", "tfa")}}
        for impl in [i for i in args.impls.split(",") if i]:
            if impl not in OURS + ("naive", "tfa"):
                parser.error(f"--impls: {impl!r} is not one of {', '.join(OURS + ('naive', 'tfa'))}")
            if impl == "tfa" and not args.tfa_python:
                row[impl] = "not run (no --tfa-python)"
                continue
            if impl == "tfa" and not os.path.exists(args.tfa_python):
                row[impl] = f"not run ({args.tfa_python} not found)"
                continue
            if impl in ("naive", "tfa") and BYTES_PER_CUBE_ELEMENT * size**3 > args.cap_gb * 2**30:
                row[impl] = f"skipped (>{args.cap_gb:g} GB)"
                continue
            python = args.tfa_python if impl == "tfa" else sys.executable
            row[impl] = spawn(python, impl, size, args.repeats)
        print(format_row(row), flush=True)
        figures["table"].append(row)
        figures["versions"].update({impl: f"TF {r['tf']}, Keras {r['keras']}"
                                    for impl, r in row.items()
                                    if isinstance(r, dict) and impl in ("semihard", "tfa")})

    ratio_sizes = [int(s) for s in args.ratio_sizes.split(",") if s]
    columns = [b for b in args.backends.split(",") if b]
    if args.baseline:
        columns.insert(0, "tensorflow@baseline")
    if ratio_sizes:
        print("\n" + ratio_header(), flush=True)
    for size in ratio_sizes:
        for column in columns:
            backend, _, baseline = column.partition("@")
            row = {"B": size, "backend": column}
            for mode, worker in (("plain", "pair"), ("xla", "pair_xla")):
                if backend == "torch" and mode == "xla":
                    row[mode] = "not measured"
                    continue
                row[mode] = spawn(sys.executable, worker, size, args.repeats, backend,
                                  args.baseline if baseline else None)
            print(format_ratio_row(row), flush=True)
            figures["ratios"].append(row)
            for r in (row["plain"], row["xla"]):
                if isinstance(r, dict):
                    figures["versions"][column] = r["versions"]

    print(f"\n{os.cpu_count()} CPUs; " + "; ".join(
        f"{impl}: {version}" for impl, version in figures["versions"].items()))
    print(json.dumps(figures))


def spawn(python, impl, size, repeats, backend="tensorflow", root=None):
    """Run one worker in a fresh process on ``backend`` with ``root`` (default: this
    checkout) first on the path; its last stdout line is its JSON result."""
    command = [python, os.path.abspath(__file__), "--worker", impl, "--size", str(size),
               "--repeats", str(repeats)]
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend,
           "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.path.abspath(root)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def header():
    return ("| B | semihard ms | semihard XLA ms | hard ms | hard XLA ms | batch_all ms | "
            "naive ms | tfa ms | naive/ours | tfa/ours | semihard RSS MB | XLA RSS MB | "
            "naive RSS MB | tfa RSS MB | max abs diff |\n|" + "---:|" * 15)


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
    cells = [str(row["B"]), ms("semihard"), ms("semihard_xla"), ms("hard"), ms("hard_xla"),
             ms("batch_all"), ms("naive"), ms("tfa"), ratio("naive"), ratio("tfa"),
             rss("semihard"), rss("semihard_xla"), rss("naive"), rss("tfa"), diff]
    return "| " + " | ".join(cells) + " |"


def ratio_header():
    return ("| B | backend | semihard ms | hard ms | semihard/hard | semihard jit ms | "
            "hard jit ms | semihard/hard jit |\n|---:|---|" + "---:|" * 6)


def format_ratio_row(row):
    cells = [str(row["B"]), row["backend"]]
    for mode in ("plain", "xla"):
        r = row[mode]
        if isinstance(r, dict):
            cells += [f"{r['semihard_ms']:.2f}", f"{r['hard_ms']:.2f}", f"{r['ratio']:.2f}×"]
        else:
            cells += [r, "-", "-"]
    return "| " + " | ".join(cells) + " |"


def make_inputs(size, as_numpy=False):
    """B × 128-d unit vectors, B/4 identities × 4 images, seed 0, as TF tensors (or
    NumPy arrays)."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(size // 4), 4).astype("int32")
    emb = rng.normal(size=(size, 128)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    if as_numpy:
        return labels, emb
    import tensorflow as tf

    return tf.constant(labels), tf.constant(emb)


def make_step(loss_fn, xla):
    """``tf.function`` computing the loss and its gradient w.r.t. the embeddings."""
    import tensorflow as tf

    @tf.function(jit_compile=xla)
    def step(lab, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = loss_fn(lab, x)
        return total, tape.gradient(total, x)

    return step


def time_call(step, lab, x):
    start = time.perf_counter()
    total, grad = step(lab, x)
    total.numpy(), grad.numpy()
    return time.perf_counter() - start, float(total)


def versions():
    import keras

    if keras.backend.backend() != "tensorflow":
        return {"keras": keras.__version__}
    import tensorflow as tf

    return {"tf": tf.__version__, "keras": getattr(keras, "__version__", "-")}


def run_worker(impl, size, repeats):
    """Time forward + backward of one implementation at one size (in this process)."""
    lab, x = make_inputs(size)
    step = make_step(pick_loss(impl), impl.endswith("_xla"))
    for _ in range(2):
        time_call(step, lab, x)
    times, loss = zip(*(time_call(step, lab, x) for _ in range(repeats)))
    return {"median_ms": 1e3 * statistics.median(times), "loss": loss[-1],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **versions()}


def run_pair(mode, size, repeats):
    """Semi-hard and batch-hard at one size on the ``KERAS_BACKEND`` backend, alternating
    call by call (``mode`` "pair" or "pair_xla": compiled); medians of ``repeats`` calls
    of each after two warm-up calls."""
    import keras

    from facenet_tf import losses

    backend = keras.backend.backend()
    compiled = mode.endswith("_xla")
    if backend == "tensorflow":
        lab, x = make_inputs(size)
        steps = {"semihard": make_step(losses.triplet_semihard_loss, compiled),
                 "hard": make_step(losses.triplet_hard_loss, compiled)}
        timer = time_call
    else:
        lab, x = make_inputs(size, as_numpy=True)
        make = make_step_jax if backend == "jax" else make_step_torch
        steps = {"semihard": make(losses.triplet_semihard_loss, compiled),
                 "hard": make(losses.triplet_hard_loss, compiled)}
        timer = time_plain_call
    times = {name: [] for name in steps}
    for repeat in range(repeats + 2):
        for name, step in steps.items():
            seconds, _ = timer(step, lab, x)
            if repeat >= 2:
                times[name].append(seconds)
    medians = {f"{name}_ms": 1e3 * statistics.median(t) for name, t in times.items()}
    return {**medians, "ratio": medians["semihard_ms"] / medians["hard_ms"],
            **versions(), "versions": backend_versions(backend)}


def make_step_jax(loss_fn, compiled):
    """``(labels, x) -> (loss, d loss / dx)`` as NumPy, jitted or eager."""
    import jax

    step = jax.value_and_grad(lambda x, lab: loss_fn(lab, x))
    step = jax.jit(step) if compiled else step

    def run(lab, x):
        total, grad = jax.block_until_ready(step(x, lab))
        return float(total), grad
    return run


def make_step_torch(loss_fn, compiled):
    """``(labels, x) -> (loss, d loss / dx)``, eager (``compiled`` is not offered)."""
    import torch

    assert not compiled, "torch: only eager is measured"

    def run(lab, x):
        x = torch.tensor(x, requires_grad=True)
        total = loss_fn(torch.as_tensor(lab), x)
        total.backward()
        return float(total), x.grad
    return run


def time_plain_call(step, lab, x):
    start = time.perf_counter()
    total, _ = step(lab, x)
    return time.perf_counter() - start, total


def backend_versions(backend):
    import keras

    module = __import__(backend)
    return f"{backend} {module.__version__}, Keras {keras.__version__}"


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
            "semihard_xla": losses.triplet_semihard_loss,
            "hard_xla": losses.triplet_hard_loss}[impl]


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
