"""Triplet losses against a slow float64 reference written from the definitions."""

import functools
import itertools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from facenet_tf import losses
from facenet_tf.losses import semihard as semihard_module
from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError

KINDS = ("semihard", "hard", "soft_hard", "batch_all")
MARGIN = 0.2


def loss_fn(kind):
    if kind == "semihard":
        return losses.triplet_semihard_loss
    if kind == "batch_all":
        return losses.triplet_batch_all_loss
    return lambda *args, **kw: losses.triplet_hard_loss(*args, soft=kind == "soft_hard", **kw)


# ---- reference: loops over pairs / triplets, float64 -------------------------------------

def ref_distance(x, y, metric):
    if metric == "cosine":
        return min(max(1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)), 0.0), 2.0)
    squared = np.sum((x - y) ** 2)
    return np.sqrt(squared) if metric == "l2" else squared


def ref_triplets(kind, labels, emb, metric, margin=MARGIN, ref=None, offset=0):
    """(a, p, n) triplets the loss sums over and the denominator of the mean; ``p`` and
    ``n`` index the reference ``ref = (ref_labels, ref_emb)`` (default: the batch), whose
    row ``offset + a`` is anchor ``a`` itself (``offset=None``: no row is). An anchor
    without negative (a single-identity batch) forms no triplet."""
    ref_labels, ref_emb = (labels, emb) if ref is None else ref
    d = np.array([[ref_distance(x, y, metric) for y in ref_emb] for x in emb])
    d = d.reshape(len(emb), len(ref_emb))
    triplets, denominator = [], 0
    for a in range(len(labels)):
        itself = None if offset is None else offset + a
        pos = [p for p in range(len(ref_labels)) if p != itself and ref_labels[p] == labels[a]]
        neg = [n for n in range(len(ref_labels)) if ref_labels[n] != labels[a]]
        if not neg:
            continue
        if kind in ("hard", "soft_hard") and pos:
            p = max(pos, key=lambda j: d[a, j])
            triplets.append((a, p, min(neg, key=lambda j: d[a, j])))
            denominator += 1
        for p in pos if kind == "semihard" else []:
            beyond = [n for n in neg if d[a, n] > d[a, p]]
            if beyond:
                n = min(beyond, key=lambda j: d[a, j])
            else:
                n = max(neg, key=lambda j: d[a, j])
            triplets.append((a, p, n))
            denominator += 1
        for p, n in itertools.product(pos, neg) if kind == "batch_all" else []:
            triplets.append((a, p, n))
            denominator += d[a, p] - d[a, n] + margin > 0
    return d, triplets, denominator


def ref_loss(kind, labels, emb, metric, margin=MARGIN, ref=None, offset=0):
    d, triplets, denominator = ref_triplets(kind, labels, emb, metric, margin, ref, offset)
    total = 0.0
    for a, p, n in triplets:
        gap = d[a, p] - d[a, n]
        total += np.log1p(np.exp(gap)) if kind == "soft_hard" else max(gap + margin, 0.0)
    return total / max(denominator, 1)


def ref_gradient(kind, labels, emb, metric, margin=MARGIN, ref=None, offset=0):
    """Gradient of the reference loss: the chosen triplets are fixed (mining is not
    differentiated), the distances of those triplets recomputed in float64 TF ops. With a
    separate ``ref``, the gradients w.r.t. the anchors and the reference embeddings."""
    _, triplets, denominator = ref_triplets(kind, labels, emb, metric, margin, ref, offset)
    x = tf.Variable(np.asarray(emb, np.float64))
    y = x if ref is None else tf.Variable(np.asarray(ref[1], np.float64))
    if not triplets:
        return np.zeros(x.shape) if ref is None else (np.zeros(x.shape), np.zeros(y.shape))
    a, p, n = (np.array(t) for t in zip(*triplets))

    def dist(i, j):
        u, v = tf.gather(x, i), tf.gather(y, j)
        if metric == "cosine":
            return 1.0 - tf.reduce_sum(tf.math.l2_normalize(u, 1) * tf.math.l2_normalize(v, 1), 1)
        squared = tf.reduce_sum(tf.square(u - v), 1)
        return tf.sqrt(squared) if metric == "l2" else squared

    with tf.GradientTape() as tape:
        gap = dist(a, p) - dist(a, n)
        per = tf.nn.softplus(gap) if kind == "soft_hard" else tf.nn.relu(gap + margin)
        total = tf.reduce_sum(per) / max(denominator, 1)
    if ref is None:
        return tf.convert_to_tensor(tape.gradient(total, x)).numpy()
    return tuple(tf.convert_to_tensor(g).numpy() for g in tape.gradient(total, [x, y]))


def ref_stats(kind, labels, emb, metric, margin=MARGIN, ref=None, offset=0):
    d, triplets, _ = ref_triplets(kind, labels, emb, metric, margin, ref, offset)
    if not triplets:
        return dict.fromkeys(("active_fraction", "semihard_fraction",
                              "mean_positive_distance", "mean_negative_distance"), 0.0)
    dp = np.array([d[a, p] for a, p, _ in triplets])
    dn = np.array([d[a, n] for a, _, n in triplets])
    gap = dp - dn
    active = gap > 0 if kind == "soft_hard" else gap + margin > 0
    if kind == "semihard":
        # the chosen negative is semi-hard: beyond the positive, within the margin
        semihard = np.array([d[a, p] < d[a, n] < d[a, p] + margin for a, p, n in triplets])
    else:
        semihard = (gap < 0) & (gap + margin > 0)
    stats = {"active_fraction": active.mean(), "semihard_fraction": semihard.mean(),
             "mean_positive_distance": dp.mean(), "mean_negative_distance": dn.mean()}
    if kind == "batch_all":
        positive_pairs = sorted({(a, p) for a, p, _ in triplets})
        stats["mean_positive_distance"] = np.mean([d[a, p] for a, p in positive_pairs])
        stats["mean_negative_distance"] = dn[active].mean() if active.any() else 0.0
    return stats


# ---- batches ----------------------------------------------------------------------------

def make_batch(seed, size, identities, dim=8, unit=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, identities, size)
    emb = rng.normal(size=(size, dim)).astype("float32")
    if unit:
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return labels, emb


# (size, identities, unit norm): 1 image per identity up to one identity for all.
CASES = [(2, 1, False), (2, 2, True), (3, 2, False), (5, 2, True), (8, 3, False),
         (12, 12, True), (17, 4, True), (32, 8, False), (64, 16, True), (64, 3, False)]


def assert_close(actual, expected, tol):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    assert np.max(np.abs(actual - expected), initial=0.0) <= tol * scale, (actual, expected)


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_value_matches_reference(kind, metric):
    for seed, (size, identities, unit) in enumerate(CASES):
        labels, emb = make_batch(seed, size, identities, unit=unit)
        got = loss_fn(kind)(labels, emb, margin=MARGIN, distance=metric)
        assert got.dtype == tf.float32 and got.shape == ()
        assert_close(got, ref_loss(kind, labels, emb.astype(np.float64), metric), 1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_large_batch_matches_reference(kind):
    size = 300 if kind != "batch_all" else 120
    labels, emb = make_batch(100, size, size // 4, dim=16, unit=True)
    got = loss_fn(kind)(labels, emb, distance="squared_l2")
    assert_close(got, ref_loss(kind, labels, emb.astype(np.float64), "squared_l2"), 1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_float16_inputs_computed_in_float32(kind):
    labels, emb = make_batch(3, 24, 6, unit=True)
    half = emb.astype("float16")
    got = loss_fn(kind)(labels, half, distance="l2")
    assert got.dtype == tf.float32
    assert_close(got, ref_loss(kind, labels, half.astype(np.float64), "l2"), 1e-5)


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradient_matches_reference(kind, metric):
    for seed, (size, identities, unit) in enumerate([(9, 3, True), (20, 5, False)]):
        labels, emb = make_batch(50 + seed, size, identities, unit=unit)
        x = tf.Variable(emb)
        with tf.GradientTape() as tape:
            total = loss_fn(kind)(labels, x, distance=metric)
        assert_close(tf.convert_to_tensor(tape.gradient(total, x)), ref_gradient(kind, labels, emb, metric), 1e-4)


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_stats_match_reference(kind, metric):
    labels, emb = make_batch(11, 30, 6, unit=False)
    _, stats = loss_fn(kind)(labels, emb, distance=metric, return_stats=True)
    expected = ref_stats(kind, labels, emb.astype(np.float64), metric)
    expected["embedding_norm"] = np.linalg.norm(emb.astype(np.float64), axis=1).mean()
    assert set(stats) == set(expected)
    for key, value in stats.items():
        assert value.dtype == tf.float32 and value.shape == ()
        assert_close(value, expected[key], 1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4], [7], []], ids=["distinct", "one", "empty"])
def test_no_positive_pair_gives_zero_and_zero_gradient(kind, labels):
    x = tf.Variable(np.random.default_rng(0).normal(size=(len(labels), 4)).astype("float32"))
    with tf.GradientTape() as tape:
        total, stats = loss_fn(kind)(np.array(labels, int), x, return_stats=True)
    grad = tape.gradient(total, x)
    assert float(total) == 0.0
    assert grad is None or (np.all(np.isfinite(grad)) and not np.any(grad))
    assert all(np.isfinite(v) for v in stats.values())


@pytest.mark.parametrize("kind", KINDS)
def test_single_identity_batch(kind):
    """One identity: positives but no negative, so no triplet: 0.0 and zero gradients
    (tfa's semi-hard would give mean D[a, p] + margin)."""
    labels, emb = make_batch(5, 6, 1)
    x = tf.Variable(emb)
    with tf.GradientTape() as tape:
        total = loss_fn(kind)(labels, x, distance="l2")
    assert float(total) == 0.0 == ref_loss(kind, labels, emb.astype(np.float64), "l2")
    grad = tape.gradient(total, x)
    assert grad is None or (np.all(np.isfinite(grad)) and not np.any(grad))


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_identical_embeddings_are_finite(kind, metric):
    x = tf.Variable(tf.ones([8, 4]))
    with tf.GradientTape() as tape:
        total, stats = loss_fn(kind)([0, 0, 1, 1, 2, 2, 3, 3], x, distance=metric,
                                     return_stats=True)
    assert np.isfinite(float(total))
    assert np.all(np.isfinite(tape.gradient(total, x)))
    assert all(np.isfinite(v) for v in stats.values())


def assert_xla_matches_eager(step, batches):
    """``step`` jit-compiled gives the eager values (of every output) on every batch.
    autograph=False: as when Keras calls the loss, and it halves the tracing time."""
    jitted = tf.function(step, jit_compile=True, autograph=False)
    for args in batches:
        for want, got in zip(tf.nest.flatten(step(*args)), tf.nest.flatten(jitted(*args))):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def xla_batches(kind):
    """A P×K-like batch of 40; for semi-hard also one whose largest identity is past
    the fast path's limit, so both mining paths run compiled (same shapes, one compile)."""
    batches = [make_batch(9, 40, 10, unit=True)]
    if kind == "semihard":
        big = semihard_module.COMPACT_GROUP + 2
        batches.append((np.r_[np.zeros(big, int), np.arange(1, 41 - big)],
                        make_batch(10, 40, 1, unit=True)[1]))
    return [(tf.constant(labels), tf.constant(emb)) for labels, emb in batches]


@pytest.mark.parametrize("kind", KINDS)
def test_xla_gives_same_values(kind):
    """jit_compile=True gives the eager loss, statistics and gradients."""

    def step(lab, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total, stats = loss_fn(kind)(lab, x, distance="l2", return_stats=True)
        return total, stats, tape.gradient(total, x)

    assert_xla_matches_eager(step, xla_batches(kind))


@pytest.mark.parametrize("kind", ("semihard", "batch_all"))  # hard: masks only
def test_xla_with_reference_gives_same_values(kind):
    """Half the batch against the whole as reference, anchor_offset a tensor (as a
    replica id gives it), compiled and eager."""

    def step(lab, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total, stats = loss_fn(kind)(lab[20:], x[20:], distance="cosine",
                                         return_stats=True, ref_labels=lab,
                                         ref_embeddings=x, anchor_offset=tf.constant(20))
        return total, stats, tape.gradient(total, x)

    assert_xla_matches_eager(step, xla_batches(kind))


def _loss_gradient(kind):
    """``(labels, embeddings) -> d loss / d embeddings`` of one loss, for graph inspection."""
    def step(lab, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = loss_fn(kind)(lab, x)
        return tape.gradient(total, x)
    return step


@pytest.mark.parametrize("kind", ("semihard", "hard", "batch_all"))
def test_no_cubic_intermediate(kind):
    """Forward and backward graphs hold no tensor with B³ elements (B = 64)."""
    size = 64
    step = tf.function(_loss_gradient(kind))
    graph = step.get_concrete_function(tf.TensorSpec([size], tf.int32),
                                       tf.TensorSpec([size, 128], tf.float32)).graph
    largest = max(out.shape.num_elements() or 0 for op in graph.get_operations()
                  for out in op.outputs)
    assert largest < size ** 3 // 8


@pytest.mark.parametrize("kind", ("semihard", "batch_all"))
def test_no_cubic_intermediate_under_xla(kind):
    """TF lowers tf.searchsorted to a B×B×B compare under XLA; the loss must avoid it."""
    size = 64
    step = tf.function(_loss_gradient(kind), jit_compile=True)
    hlo = step.experimental_get_compiler_ir(tf.zeros([size], tf.int32),
                                            tf.zeros([size, 128]))(stage="hlo")
    shapes = re.findall(r"[a-z]\d*\[([\d,]+)\]", hlo)
    largest = max(int(np.prod([int(d) for d in shape.split(",")])) for shape in shapes)
    assert largest < size ** 3 // 8


def test_float64_embeddings_stay_float64():
    labels, emb = make_batch(4, 16, 4)
    got = losses.triplet_semihard_loss(labels, emb.astype(np.float64), distance="cosine")
    assert got.dtype == tf.float64
    assert_close(got, ref_loss("semihard", labels, emb.astype(np.float64), "cosine"), 1e-10)


# ---- reference set: ref_labels / ref_embeddings / anchor_offset -------------------------

def value_and_gradient(fn, x):
    """``(fn(x), d fn(x)[0] / dx)`` for a loss returning ``(loss, stats)``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
    return out, tape.gradient(out[0], x)


def assert_stats_close(actual, expected, tol):
    assert set(actual) == set(expected)
    for key in expected:
        assert_close(actual[key], expected[key], tol)


@pytest.fixture
def sorted_semihard(monkeypatch):
    """Force semi-hard's sort-based path for every group of more than one row."""
    monkeypatch.setattr(semihard_module, "COMPACT_GROUP", 1)


@pytest.mark.parametrize("path", ["compact", "sorted"])
@pytest.mark.parametrize("metric", DISTANCES)
def test_semihard_paths_match_reference(path, metric, request):
    """The default tests mostly take the fast path (groups <= _COMPACT_GROUP); the
    sort-based one must give the same values, statistics and gradients."""
    if path == "sorted":
        request.getfixturevalue("sorted_semihard")
    for seed, (size, identities, unit) in enumerate(CASES + [(20, 5, False)]):
        labels, emb = make_batch(seed, size, identities, unit=unit)
        (got, stats), grad = value_and_gradient(
            lambda x: losses.triplet_semihard_loss(labels, x, distance=metric,
                                                   return_stats=True), tf.constant(emb))
        wide = emb.astype(np.float64)
        assert_close(got, ref_loss("semihard", labels, wide, metric), 1e-5)
        expected = ref_stats("semihard", labels, wide, metric)
        expected["embedding_norm"] = np.linalg.norm(wide, axis=1).mean() if size else 0.0
        assert_stats_close(stats, expected, 1e-5)
        assert_close(grad, ref_gradient("semihard", labels, emb, metric), 1e-4)


@pytest.mark.parametrize("path", ["compact", "sorted"])
def test_semihard_ties_pick_the_lowest_reference_row(path, request):
    """Small integer coordinates give exactly tied distances; among tied negatives the
    gradient goes to the lowest row, as with the reference's min/max, on both paths."""
    if path == "sorted":
        request.getfixturevalue("sorted_semihard")
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(5), 3)
    emb = rng.integers(0, 3, size=(15, 2)).astype("float32")
    (got, _), grad = value_and_gradient(
        lambda x: losses.triplet_semihard_loss(labels, x, return_stats=True),
        tf.constant(emb))
    assert_close(got, ref_loss("semihard", labels, emb.astype(np.float64), "squared_l2"), 1e-6)
    assert_close(grad, ref_gradient("semihard", labels, emb, "squared_l2"), 1e-5)


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_batch_as_its_own_reference_equals_plain(kind, metric):
    """Reference = the batch, anchor_offset = 0: the plain loss, statistics, gradients."""
    for seed, (size, identities, unit) in enumerate(CASES):
        labels, emb = make_batch(seed, size, identities, unit=unit)
        (want, want_stats), want_grad = value_and_gradient(
            lambda x: loss_fn(kind)(labels, x, distance=metric, return_stats=True),
            tf.constant(emb))
        (got, got_stats), got_grad = value_and_gradient(
            lambda x: loss_fn(kind)(labels, x, distance=metric, return_stats=True,
                                    ref_labels=labels, ref_embeddings=x, anchor_offset=0),
            tf.constant(emb))
        assert_close(got, want, 1e-6)
        assert_stats_close(got_stats, want_stats, 1e-6)
        assert_close(got_grad, want_grad, 1e-6)


def split_batch(seed):
    """A global batch of two halves of 12 rows, each holding whole identities of the same
    sizes (so as many positive pairs and anchors with a positive), rows shuffled. Every
    identity of the second half sits next to one of the first, so its hardest negatives
    are in the other half: mining each half alone gives another loss."""
    rng = np.random.default_rng(seed)
    sizes = [3, 2, 4, 1, 2]
    centres = rng.normal(size=(len(sizes), 8))
    labels, emb = [], []
    for half in range(2):
        lab = np.concatenate([np.full(k, 10 * half + i) for i, k in enumerate(sizes)])
        shift = 0.2 * rng.normal(size=(len(sizes), 8)) if half else 0.0
        points = (centres + shift)[lab % 10] + 0.4 * rng.normal(size=(len(lab), 8))
        order = rng.permutation(len(lab))
        labels.append(lab[order])
        emb.append(points[order].astype("float32"))
    return np.concatenate(labels), np.concatenate(emb)


def valid_triplets(anchor_labels, ref_labels, offset):
    """sum over anchors of (#positives × #negatives) in the reference."""
    same = anchor_labels[:, None] == ref_labels[None, :]
    positives = same.sum(1) - (offset is not None)
    return float(np.sum(positives * (~same).sum(1)))


@pytest.mark.parametrize("metric", ("squared_l2", "cosine"))
@pytest.mark.parametrize("kind", KINDS)
def test_halves_mined_against_global_batch_give_global_loss(kind, metric):
    """Each half as anchors against the global batch (anchor_offset = 12 h): the mean of
    the halves' losses (batch-all: their mean weighted by active triplets) and its
    gradient w.r.t. the global embeddings equal the global-batch loss and gradient."""
    labels, emb = split_batch(3)
    fn = functools.partial(loss_fn(kind), distance=metric, return_stats=True)

    def halves(x, ref):
        parts = [fn(labels[h * 12:(h + 1) * 12], x[h * 12:(h + 1) * 12],
                    **({"ref_labels": labels, "ref_embeddings": x, "anchor_offset": h * 12}
                       if ref else {}))
                 for h in range(2)]
        if kind != "batch_all":
            return (sum(loss for loss, _ in parts) / 2,
                    {key: sum(stats[key] for _, stats in parts) / 2 for key in parts[0][1]})
        # batch-all divides by its active triplets: weight each half by its count.
        active = [stats["active_fraction"] * valid_triplets(
            labels[h * 12:(h + 1) * 12], labels if ref else labels[h * 12:(h + 1) * 12],
            0) for h, (_, stats) in enumerate(parts)]
        return sum(n * loss for n, (loss, _) in zip(active, parts)) / sum(active), None

    x = tf.constant(emb)
    (want, want_stats), want_grad = value_and_gradient(lambda x: fn(labels, x), x)
    (got, got_stats), got_grad = value_and_gradient(lambda x: halves(x, ref=True), x)
    assert_close(got, want, 1e-6)
    assert_close(got_grad, want_grad, 1e-6)
    if got_stats is not None:
        assert_stats_close(got_stats, want_stats, 1e-6)
    local = np.mean([float(fn(labels[h * 12:(h + 1) * 12], x[h * 12:(h + 1) * 12])[0])
                     for h in range(2)])
    assert abs(local - float(want)) > 1e-3  # the reference matters in this batch


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("kind", KINDS)
def test_memory_bank_matches_reference(kind, metric, request):
    """anchor_offset=None: the anchors are not in the reference, so every reference row
    with the anchor's label is a positive (here one is a near copy of an anchor)."""
    labels, emb = make_batch(21, 10, 4, unit=metric != "l2")
    rng = np.random.default_rng(22)
    bank_labels = np.r_[rng.integers(0, 6, 22), labels[0]]
    bank = np.concatenate([rng.normal(size=(22, 8)), emb[:1] + 1e-3]).astype("float32")
    for path in ("compact", "sorted") if kind == "semihard" else ("compact",):
        if path == "sorted":
            request.getfixturevalue("sorted_semihard")
        x, y = tf.constant(emb), tf.constant(bank)
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            got, stats = loss_fn(kind)(labels, x, distance=metric, return_stats=True,
                                       ref_labels=bank_labels, ref_embeddings=y)
        grads = tape.gradient(got, [x, y])
        ref = (bank_labels, bank.astype(np.float64))
        wide = emb.astype(np.float64)
        assert_close(got, ref_loss(kind, labels, wide, metric, ref=ref, offset=None), 1e-5)
        expected = ref_stats(kind, labels, wide, metric, ref=ref, offset=None)
        expected["embedding_norm"] = np.linalg.norm(wide, axis=1).mean()
        assert_stats_close(stats, expected, 1e-5)
        for got_grad, want_grad in zip(grads, ref_gradient(
                kind, labels, emb, metric, ref=(bank_labels, bank), offset=None)):
            assert_close(tf.convert_to_tensor(got_grad), want_grad, 1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_reference_gives_zero(kind):
    x = tf.constant(make_batch(1, 6, 2)[1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        total, stats = loss_fn(kind)([0, 0, 1, 1, 2, 2], x, return_stats=True,
                                     ref_labels=np.zeros(0, int),
                                     ref_embeddings=np.zeros((0, 8), "float32"))
    grad = tape.gradient(total, x)
    assert float(total) == 0.0 and stats["active_fraction"] == 0.0
    assert grad is None or not np.any(grad)


def test_bad_reference_arguments_raise_facenet_error():
    labels, emb = make_batch(0, 4, 2)
    with pytest.raises(FacenetError, match="ref_labels and ref_embeddings must be given together"):
        losses.triplet_semihard_loss(labels, emb, ref_labels=labels)
    with pytest.raises(FacenetError, match="anchor_offset needs ref_labels"):
        losses.triplet_hard_loss(labels, emb, anchor_offset=0)
    with pytest.raises(FacenetError, match="anchor_offset must be.*received -1"):
        losses.triplet_batch_all_loss(labels, emb, ref_labels=labels, ref_embeddings=emb,
                                      anchor_offset=-1)
    with pytest.raises(FacenetError, match="as many rows; received 3 and 4"):
        losses.triplet_semihard_loss(labels, emb, ref_labels=labels[:3], ref_embeddings=emb)


# ---- Keras objects ----------------------------------------------------------------------

@pytest.mark.parametrize("name", KINDS)
def test_loss_object_equals_function_and_keeps_scalar(name):
    labels, emb = make_batch(2, 16, 4, unit=True)
    loss = losses.get(name, margin=0.3, distance="l2")
    want = loss_fn(name)(labels, emb, margin=0.3, distance="l2")
    assert loss.reduction == "sum_over_batch_size"
    np.testing.assert_allclose(loss(labels[:, None], emb), want, rtol=1e-6)
    np.testing.assert_allclose(loss(labels, emb), want, rtol=1e-6)
    total, stats = loss.compute(labels, emb, return_stats=True)
    np.testing.assert_allclose(total, want, rtol=1e-6)
    assert "active_fraction" in stats
    np.testing.assert_allclose(loss.compute(labels, emb), want, rtol=1e-6)
    assert not hasattr(loss, "call_with_stats")  # the trainer uses compute()
    bank_labels, bank = make_batch(3, 12, 4, unit=True)
    np.testing.assert_allclose(
        loss.compute(labels, emb, ref_labels=bank_labels, ref_embeddings=bank),
        loss_fn(name)(labels, emb, margin=0.3, distance="l2", ref_labels=bank_labels,
                      ref_embeddings=bank), rtol=1e-6)


@pytest.mark.parametrize("cls, options", [
    (losses.TripletSemiHardLoss, {"margin": 0.5, "distance": "cosine"}),
    (losses.TripletHardLoss, {"margin": 0.1, "soft": True, "distance": "l2"}),
    (losses.TripletBatchAllLoss, {"margin": 1.0}),
])
def test_config_round_trip(cls, options):
    loss = cls(name="mine", **options)
    config = loss.get_config()
    assert {k: config[k] for k in options} == options and config["name"] == "mine"
    again = cls.from_config(config)
    assert again.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is cls and restored.get_config() == config


def test_bad_options_raise_facenet_error():
    with pytest.raises(FacenetError, match="distance.*'cosine'.*'angular'"):
        losses.TripletSemiHardLoss(distance="angular")
    with pytest.raises(FacenetError, match="margin must be >= 0; received -0.1"):
        losses.TripletHardLoss(margin=-0.1)
    with pytest.raises(FacenetError, match="--loss must be one of semihard, hard, soft_hard, batch_all; received 'triplet'"):
        losses.get("triplet")
    with pytest.raises(FacenetError, match="distance"):
        losses.triplet_batch_all_loss([0, 0], np.ones((2, 2)), distance="L2")
    with pytest.raises(FacenetError, match="sample_weight"):
        losses.TripletSemiHardLoss()([0, 0], np.ones((2, 2)), sample_weight=[1.0, 1.0])


def test_get_resolves_every_cli_name():
    assert isinstance(losses.get("semihard"), losses.TripletSemiHardLoss)
    assert isinstance(losses.get("batch_all"), losses.TripletBatchAllLoss)
    assert losses.get("hard").soft is False and losses.get("soft_hard").soft is True


@pytest.mark.parametrize("name", KINDS)
def test_compile_and_fit(name):
    labels, images = make_batch(8, 32, 8, dim=6)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=losses.get(name))
    history = model.fit(images, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
