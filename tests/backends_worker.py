"""The loss suite on one Keras backend, run in its own process by tests/test_backends.py.

    KERAS_BACKEND=jax python tests/backends_worker.py OUT.npz

Checks, on the backend that ``KERAS_BACKEND`` names, every loss and distance against a
float64 NumPy reference written from the definitions (values, gradients, statistics,
random and degenerate batches, a reference set / memory bank), the ``jax.jit`` form against
the eager one (TensorFlow's ``jit_compile`` form: tests/test_losses.py), ``model.fit`` of a small embedding
model on synthetic identities, and the ``get_config`` / ``.keras`` round trip. Writes every
value and gradient to ``OUT.npz`` (so the parent test compares the backends) and prints
one JSON line: ``{"backend", "checks", "failures", "versions", "tensorflow_imported"}``
(whether ``import keras, facenet_tf.losses, facenet_tf.distances`` imported TensorFlow).
"""

import itertools
import json
import os
import sys
import tempfile

import numpy as np

KINDS = ("semihard", "hard", "soft_hard", "batch_all")
METRICS = ("squared_l2", "l2", "cosine")
MARGIN = 0.2
STATS = ("active_fraction", "semihard_fraction", "mean_positive_distance",
         "mean_negative_distance", "embedding_norm")


# ---- reference from the definitions, float64 NumPy ---------------------------------------

def ref_distance(x, y, metric):
    if metric == "cosine":
        return min(max(1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)), 0.0), 2.0)
    squared = np.sum((x - y) ** 2)
    return np.sqrt(squared) if metric == "l2" else squared


def ref_distance_grad(x, y, metric):
    """(d dist / dx, d dist / dy) for non-identical, non-zero x and y."""
    if metric == "squared_l2":
        return 2 * (x - y), -2 * (x - y)
    if metric == "l2":
        unit = (x - y) / np.linalg.norm(x - y)
        return unit, -unit
    nx, ny, dot = np.linalg.norm(x), np.linalg.norm(y), x @ y
    return (-(y / (nx * ny) - dot * x / (nx ** 3 * ny)),
            -(x / (nx * ny) - dot * y / (ny ** 3 * nx)))


def ref_triplets(kind, labels, emb, metric, ref=None, offset=0):
    """Distances, the triplets (a, p, n) the loss sums over, its denominator and the
    positive pairs; p and n index the reference (default the batch, whose row
    offset + a is anchor a; offset None: no row is)."""
    ref_labels, ref_emb = (labels, emb) if ref is None else ref
    d = np.array([[ref_distance(x, y, metric) for y in ref_emb] for x in emb])
    d = d.reshape(len(emb), len(ref_emb))
    triplets, denominator, pairs = [], 0, []
    for a in range(len(labels)):
        itself = None if offset is None else offset + a
        pos = [p for p in range(len(ref_labels)) if p != itself and ref_labels[p] == labels[a]]
        pairs += [(a, p) for p in pos]
        neg = [n for n in range(len(ref_labels)) if ref_labels[n] != labels[a]]
        if not neg:
            continue
        if kind in ("hard", "soft_hard") and pos:
            triplets.append((a, max(pos, key=lambda j: d[a, j]), min(neg, key=lambda j: d[a, j])))
            denominator += 1
        for p in pos if kind == "semihard" else []:
            beyond = [n for n in neg if d[a, n] > d[a, p]]
            n = min(beyond, key=lambda j: d[a, j]) if beyond else max(neg, key=lambda j: d[a, j])
            triplets.append((a, p, n))
            denominator += 1
        for p, n in itertools.product(pos, neg) if kind == "batch_all" else []:
            triplets.append((a, p, n))
            denominator += d[a, p] - d[a, n] + MARGIN > 0
    return d, triplets, max(denominator, 1), pairs


def reference(kind, labels, emb, metric, ref=None, offset=0):
    """Loss, gradient w.r.t. the anchors (and the reference rows if ``ref``), statistics."""
    emb = emb.astype(np.float64)
    ref64 = None if ref is None else (ref[0], ref[1].astype(np.float64))
    d, triplets, denominator, pairs = ref_triplets(kind, labels, emb, metric, ref64, offset)
    ref_emb = emb if ref is None else ref64[1]
    grad_x, grad_y = np.zeros_like(emb), np.zeros_like(ref_emb)
    total = 0.0
    for a, p, n in triplets:
        gap = d[a, p] - d[a, n]
        if kind == "soft_hard":
            total += np.log1p(np.exp(gap))
            slope = 1.0 / (1.0 + np.exp(-gap))
        else:
            total += max(gap + MARGIN, 0.0)
            slope = float(gap + MARGIN > 0)
        for other, sign in ((p, 1.0), (n, -1.0)):
            gx, gy = ref_distance_grad(emb[a], ref_emb[other], metric)
            grad_x[a] += sign * slope * gx / denominator
            grad_y[other] += sign * slope * gy / denominator
    if ref is None:
        grad_x, grad_y = grad_x + grad_y, None
    return total / denominator, grad_x, grad_y, ref_stats(kind, d, triplets, emb, pairs)


def ref_stats(kind, d, triplets, emb, positive_pairs):
    stats = dict.fromkeys(STATS[:4], 0.0)
    stats["embedding_norm"] = np.linalg.norm(emb, axis=1).mean() if len(emb) else 0.0
    if kind == "batch_all" and positive_pairs:
        # batch-all: over every positive pair, whether or not its anchor has a negative
        stats["mean_positive_distance"] = np.mean([d[a, p] for a, p in positive_pairs])
    if not triplets:
        return stats
    dp = np.array([d[a, p] for a, p, _ in triplets])
    dn = np.array([d[a, n] for a, _, n in triplets])
    gap = dp - dn
    active = gap > 0 if kind == "soft_hard" else gap + MARGIN > 0
    stats.update(active_fraction=active.mean(), semihard_fraction=(
        (gap < 0) & (gap + MARGIN > 0)).mean(), mean_negative_distance=dn.mean())
    if kind != "batch_all":
        stats["mean_positive_distance"] = dp.mean()
    if kind == "batch_all":
        stats["mean_negative_distance"] = dn[active].mean() if active.any() else 0.0
    return stats


# ---- batches ------------------------------------------------------------------------------

def random_batch(seed, size, identities, dim=8, unit=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, identities, size)
    emb = rng.normal(size=(size, dim)).astype("float32")
    if unit:
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return labels, emb


def batches():
    """name -> (labels, embeddings, compare with the reference)."""
    # Few distinct shapes: eager JAX compiles every op once per shape.
    # Every batch is 24 x 8 or 40 x 8 (the empty one 0 x 8): each new shape costs JAX
    # about 10 s of compiling on 2 CPU cores, the batches' contents cost next to nothing.
    out = {f"random{i}": (*random_batch(i, size, ids, unit=unit), True)
           for i, (size, ids, unit) in enumerate(
               [(24, 2, False), (24, 6, True), (24, 12, False), (40, 10, True)])}
    # A label on 34 rows: past COMPACT_GROUP, so semi-hard takes its sort-based path.
    out["big_group"] = (np.r_[np.zeros(34, int), np.arange(1, 7)],
                        random_batch(60, 40, 1, unit=True)[1], True)
    rng = np.random.default_rng(1)
    normal = rng.normal(size=(24, 8)).astype(np.float32)
    pk = np.repeat(np.arange(12), 2)
    out.update({
        # Exact ties (small integer coordinates): the lowest row wins on every backend.
        "ties": (np.repeat(np.arange(8), 3), rng.integers(0, 3, (24, 8)).astype("float32"), True),
        "one_identity": (np.zeros(24, int), normal, True),
        "no_positive": (np.arange(24), normal, True),
        "identical": (pk, np.tile(normal[:1], (24, 1)), False),
        "zeros": (pk, np.zeros((24, 8), np.float32), False),
        "tiny_norms": (pk, normal * 1e-20, False),
        "empty": (np.zeros(0, int), np.zeros((0, 8), np.float32), True),
    })
    return out


# ---- the backend under test -----------------------------------------------------------------

class Backend:
    """Value, statistics and gradients of ``fn(labels, *xs) -> (scalar, stats)`` w.r.t.
    the float32 arrays ``xs``, on this backend, as NumPy."""

    def __init__(self):
        import keras

        self.name = keras.backend.backend()

    def compile(self, fn, num_arrays):
        """The XLA-compiled form (jax.jit / TF jit_compile) of :meth:`value_and_grad`'s
        step, compiled once per shape whatever the labels."""
        if self.name == "jax":
            import jax

            return jax.jit(jax.value_and_grad(fn, argnums=tuple(range(1, num_arrays + 1)),
                                              has_aux=True))
        import tensorflow as tf

        return tf.function(self._tf_step(fn), jit_compile=True, autograph=False)

    @staticmethod
    def _tf_step(fn):
        import tensorflow as tf

        def step(labels, *xs):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                value, stats = fn(labels, *xs)
            grads = tape.gradient(value, xs)
            return (value, stats), [tf.zeros_like(x) if g is None else tf.convert_to_tensor(g)
                                    for x, g in zip(xs, grads)]
        return step

    def value_and_grad(self, fn, labels, *arrays, step=None):
        if step is not None:
            (value, stats), grads = step(labels, *arrays)
        elif self.name == "jax":
            import jax

            (value, stats), grads = jax.value_and_grad(
                fn, argnums=tuple(range(1, len(arrays) + 1)), has_aux=True)(labels, *arrays)
        elif self.name == "torch":
            import torch

            tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
            value, stats = fn(torch.as_tensor(labels), *tensors)
            if value.requires_grad:  # not when no input reaches the loss (an empty batch)
                value.backward()
            grads = [np.zeros(tuple(t.shape)) if t.grad is None else t.grad for t in tensors]
            value = value.detach()
        else:
            import tensorflow as tf

            (value, stats), grads = self._tf_step(fn)(tf.constant(labels),
                                                      *(tf.constant(a) for a in arrays))
        as_np = lambda t: np.asarray(t.detach() if hasattr(t, "detach") else t, np.float64)  # noqa: E731
        return (as_np(value), {k: as_np(v) for k, v in stats.items()},
                [as_np(g) for g in grads])


class Suite:
    def __init__(self):
        self.failures, self.checks, self.results = [], 0, {}
        self.backend = Backend()

    def check(self, ok, what):
        self.checks += 1
        if not ok:
            self.failures.append(what)

    def close(self, got, want, tol, what):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        err = float(np.max(np.abs(got - want), initial=0.0)) if got.shape == want.shape else np.inf
        self.check(err <= tol * scale, f"{what}: max |diff| {err:.3g} > {tol:g}")

    def record(self, key, value, stats, grads):
        self.results[f"{key}|value"] = value
        for i, grad in enumerate(grads):
            self.results[f"{key}|grad{i}"] = grad
        for name, stat in stats.items():
            self.results[f"{key}|{name}"] = stat


def loss_call(kind, metric, **ref):
    """``(labels, x[, reference rows]) -> (loss, stats)`` of one loss and distance."""
    from facenet_tf import losses

    loss = losses.get(kind, margin=MARGIN, distance=metric)
    return lambda labels, x, *y: loss.compute(
        labels, x, return_stats=True, **({**ref, "ref_embeddings": y[0]} if y else ref))


def check_values(suite):
    """Every loss, distance and batch: value, statistics and gradient vs the reference."""
    for (name, (labels, emb, exact)), kind, metric in itertools.product(
            batches().items(), KINDS, METRICS):
        key = f"{kind}|{metric}|{name}"
        value, stats, grads = suite.backend.value_and_grad(loss_call(kind, metric), labels, emb)
        suite.record(key, value, stats, grads)
        finite = np.isfinite(value) and np.all(np.isfinite(grads[0])) and all(
            np.isfinite(v) for v in stats.values())
        suite.check(finite, f"{key}: not finite")
        suite.check(value.shape == () and set(stats) == set(STATS), f"{key}: shape or stats keys")
        # Ties: l2 and cosine meet zero distances / zero rows (no plain gradient), and
        # batch-hard's max/min split the gradient among tied extremes (as reduce_max).
        if not exact or (name == "ties" and (metric != "squared_l2" or "hard" in kind)):
            continue
        want, want_grad, _, want_stats = reference(kind, labels, emb, metric)
        suite.close(value, want, 1e-5, f"{key} value")
        suite.close(grads[0], want_grad, 1e-4, f"{key} gradient")
        for stat in STATS:
            suite.close(stats[stat], want_stats[stat], 1e-5, f"{key} {stat}")


def check_reference_set(suite):
    """A memory bank (anchor_offset None) and the batch's second half as anchors against
    the whole batch (anchor_offset 20), gradients w.r.t. anchors and reference rows."""
    # Both cases are 20 anchors against 40 reference rows: one shape for JAX to compile.
    labels, emb = random_batch(21, 20, 4, unit=True)
    rng = np.random.default_rng(22)
    bank_labels = np.r_[rng.integers(0, 6, 39), labels[0]]
    bank = np.concatenate([rng.normal(size=(39, 8)), emb[:1] + 1e-3]).astype("float32")
    glabels, gemb = random_batch(23, 40, 10, unit=True)
    cases = {"bank": (labels, emb, bank_labels, bank, None),
             "offset": (glabels[20:], gemb[20:], glabels, gemb, 20)}
    for (name, (lab, x, rlab, y, offset)), kind, metric in itertools.product(
            cases.items(), KINDS, ("squared_l2", "cosine")):
        key = f"{kind}|{metric}|ref_{name}"
        fn = loss_call(kind, metric, ref_labels=rlab, anchor_offset=offset)
        value, stats, grads = suite.backend.value_and_grad(fn, lab, x, y)
        suite.record(key, value, stats, grads)
        want, want_x, want_y, want_stats = reference(kind, lab, x, metric, (rlab, y), offset)
        suite.close(value, want, 1e-5, f"{key} value")
        suite.close(grads[0], want_x, 1e-4, f"{key} anchor gradient")
        suite.close(grads[1], want_y, 1e-4, f"{key} reference gradient")
        for stat in STATS:
            suite.close(stats[stat], want_stats[stat], 1e-5, f"{key} {stat}")


def check_compiled(suite):
    """Compiled by XLA (jax.jit) = eager. Not on torch (no such mode here), nor on TensorFlow:
    its jit_compile form of every loss on these batches is tests/test_losses.py's
    test_xla_gives_same_values, run in the main test process."""
    if suite.backend.name != "jax":
        return
    for kind in KINDS:
        fn = loss_call(kind, "l2")
        step = suite.backend.compile(fn, 1)
        # Same shapes, so one compile; a P×K-like batch and one past COMPACT_GROUP run
        # semi-hard's two mining paths.
        for name in ("random3", "big_group"):
            labels, emb, _ = batches()[name]
            eager = suite.backend.value_and_grad(fn, labels, emb)
            jitted = suite.backend.value_and_grad(fn, labels.astype("int32"), emb, step=step)
            suite.close(jitted[0], eager[0], 1e-5, f"{kind} {name} compiled value")
            suite.close(jitted[2][0], eager[2][0], 1e-5, f"{kind} {name} compiled gradient")
            for stat in STATS:
                suite.close(jitted[1][stat], eager[1][stat], 1e-5,
                            f"{kind} {name} compiled {stat}")


def check_fit_and_save(suite):
    """model.fit on synthetic identities lowers the loss (semi-hard and batch-hard: the two
    mining families; each compiles a train step); the loss survives a .keras file."""
    import keras

    from facenet_tf import losses

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(8, 6))
    labels = np.repeat(np.arange(8), 8)
    images = (centres[labels] + 0.7 * rng.normal(size=(64, 6))).astype("float32")
    for kind in ("semihard", "hard"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(4)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=losses.get(kind))
        history = model.fit(images, labels, batch_size=32, epochs=8, verbose=0,
                            shuffle=False).history["loss"]
        suite.check(np.all(np.isfinite(history)) and history[-1] < history[0],
                    f"{kind} fit: loss {history[0]:.4f} -> {history[-1]:.4f} did not fall")
    loss = losses.TripletHardLoss(margin=0.3, soft=True, distance="cosine", name="mine")
    again = type(loss).from_config(loss.get_config())
    suite.check(again.get_config() == loss.get_config(), "get_config round trip")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    model.compile(optimizer="sgd", loss=losses.TripletSemiHardLoss(margin=0.5, distance="l2"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    suite.check(type(loaded.loss) is losses.TripletSemiHardLoss
                and loaded.loss.get_config() == model.loss.get_config(), ".keras load: loss config")
    # 40 x 8 embeddings: a shape check_values has run, so eager JAX compiles nothing again.
    want = model.loss(labels[:40], model(images[:40]))
    got = loaded.loss(labels[:40], loaded(images[:40]))
    suite.close(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), 1e-6,
                ".keras load: loss value")


def main(out):
    import keras

    import facenet_tf.distances  # noqa: F401
    import facenet_tf.losses  # noqa: F401

    tensorflow_imported = "tensorflow" in sys.modules
    suite = Suite()
    if suite.backend.name != "tensorflow":
        suite.check(not tensorflow_imported, "importing facenet_tf.losses imported tensorflow")
    for step in (check_values, check_reference_set, check_compiled, check_fit_and_save):
        try:
            step(suite)
        except Exception as error:  # report, so the parent shows every backend's problems
            suite.failures.append(f"{step.__name__} raised {type(error).__name__}: {error}")
    np.savez(out, **suite.results)
    versions = {"keras": keras.__version__, suite.backend.name: __import__(
        {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[suite.backend.name]).__version__}
    print(json.dumps({"backend": suite.backend.name, "checks": suite.checks,
                      "failures": suite.failures, "versions": versions,
                      "tensorflow_imported": tensorflow_imported}))


if __name__ == "__main__":
    main(sys.argv[1])
