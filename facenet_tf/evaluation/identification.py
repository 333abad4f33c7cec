"""One-shot identification: enrol K images per identity, identify every other image.

Closed set: each probe is ranked against the identities of the gallery, an identity's
distance being that of its nearest enrolled embedding. Open set: a held-out set of
unknown identities fixes the acceptance threshold at a chosen false-accept rate, and the
detection-and-identification rate (DIR) counts known probes both identified and accepted.
"""

from __future__ import annotations

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.metrics import far_key

# Probes per distance block: bounds memory at _CHUNK x gallery size distances.
_CHUNK = 1024


def split_enrolment(labels, images_per_identity=1, seed=0):
    """Choose ``images_per_identity`` enrolment images per identity; the rest are probes.

    Identities with ``images_per_identity`` images or fewer are enrolled whole and give
    no probes; they stay in the gallery as distractors.

    Args:
        labels: 1-D array of identity labels (ints or strings).
        images_per_identity: K, an int >= 1; default 1 (one-shot).
        seed: int seed of the choice; same seed, same split.

    Returns:
        ``(enrol_idx, probe_idx)``: sorted int64 index arrays into ``labels``, disjoint,
        together covering every index.

    Raises:
        FacenetError: if ``labels`` is not 1-D or ``images_per_identity`` is not an int >= 1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise FacenetError(f"labels must be 1-D; received shape {labels.shape}")
    if (
        isinstance(images_per_identity, bool)
        or not isinstance(images_per_identity, (int, np.integer))
        or images_per_identity < 1
    ):
        raise FacenetError(f"images_per_identity must be an int >= 1; received {images_per_identity!r}")
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(labels.size)
    # Stable sort by identity keeps the shuffled order inside each identity.
    order = shuffled[np.argsort(codes[shuffled], kind="stable")]
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, sorted_codes, side="left")
    enrol = np.arange(labels.size) - starts < images_per_identity
    return np.sort(order[enrol]).astype(np.int64), np.sort(order[~enrol]).astype(np.int64)


def identification_metrics(
    gallery_emb,
    gallery_labels,
    probe_emb,
    probe_labels,
    metric="squared_l2",
    ks=(1, 5),
    unknown_emb=None,
    far=1e-2,
):
    """Closed-set top-k accuracy and open-set DIR at a FAR.

    Closed set: a probe's distance to an identity is its distance to the nearest gallery
    embedding of that identity; the probe is correct at rank k if fewer than k other
    identities are at least as close as the true one (ties count against the probe, so
    collapsed embeddings score 1 / identities, not 1).

    Open set: ``u`` = each unknown embedding's distance to its nearest gallery embedding.
    With ``n = floor(far * len(u))``, the threshold is the (n + 1)-th smallest ``u``; a
    probe is accepted iff its nearest distance is ``< threshold``, so at most a fraction
    ``far`` of unknowns is accepted. DIR = fraction of known probes whose top-1 identity
    is correct and accepted.

    Args:
        gallery_emb: float array (G, D), enrolled embeddings.
        gallery_labels: 1-D array (G,) of identity labels.
        probe_emb: float array (P, D), embeddings of known identities to identify.
        probe_labels: 1-D array (P,); every label must appear in ``gallery_labels``.
        metric: distance name of :mod:`facenet_tf.distances`; default "squared_l2".
        ks: ranks reported as ``one_shot_top{k}``; default (1, 5).
        unknown_emb: optional float array (U, D) of identities absent from the gallery.
        far: open-set false-accept rate in (0, 1); default 1e-2.

    Returns:
        dict: ``one_shot_top{k}`` for each k (float), ``open_set_dir_at_far_{far}`` and
        ``open_set_threshold`` (floats, None without ``unknown_emb``), ``num_gallery``,
        ``num_probes``, ``num_unknown``, ``num_identities`` (ints).

    Raises:
        FacenetError: on empty or mismatched inputs, a probe identity missing from the
            gallery, bad ``ks`` or ``far``, or an unknown ``metric``.
    """
    gallery_emb = _check_embeddings(gallery_emb, "gallery_emb")
    probe_emb = _check_embeddings(probe_emb, "probe_emb", gallery_emb.shape[1])
    gallery_labels = _check_labels(gallery_labels, "gallery_labels", gallery_emb.shape[0])
    probe_labels = _check_labels(probe_labels, "probe_labels", probe_emb.shape[0])
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise FacenetError(f"ks must be positive ints; received {ks!r}")
    far = float(far)
    if not 0.0 < far < 1.0:
        raise FacenetError(f"far must be in (0, 1); received {far!r}")

    identities = np.unique(gallery_labels)
    ranks, true_distance = _closed_set_ranks(gallery_emb, gallery_labels, probe_emb, probe_labels, metric)
    result = {f"one_shot_top{int(k)}": float(np.mean(ranks < k)) for k in ks}
    dir_key = f"open_set_dir_at_far_{far_key(far)}"
    result[dir_key] = None
    result["open_set_threshold"] = None
    num_unknown = 0
    if unknown_emb is not None:
        unknown_emb = _check_embeddings(unknown_emb, "unknown_emb", gallery_emb.shape[1])
        num_unknown = unknown_emb.shape[0]
        threshold = _open_set_threshold(gallery_emb, unknown_emb, metric, far)
        result[dir_key] = float(np.mean((ranks == 0) & (true_distance < threshold)))
        result["open_set_threshold"] = threshold
    result.update(
        num_gallery=int(gallery_emb.shape[0]),
        num_probes=int(probe_emb.shape[0]),
        num_unknown=int(num_unknown),
        num_identities=int(identities.size),
    )
    return result


def _closed_set_ranks(gallery_emb, gallery_labels, probe_emb, probe_labels, metric):
    """Each probe's rank (other identities at least as close as its own; ties count against)
    and its distance to the nearest gallery embedding of its own identity: int64 and float64
    ``(P,)``.

    Raises:
        FacenetError: a probe identity missing from the gallery.
    """
    from facenet_tf.distances import pairwise_distances_numpy

    identities, gallery_codes = np.unique(gallery_labels, return_inverse=True)
    gallery_codes = gallery_codes.reshape(-1)
    known = np.isin(probe_labels, identities)
    if not known.all():
        absent = np.unique(probe_labels[~known])
        raise FacenetError(
            f"probe_labels must all be enrolled in gallery_labels; {absent.size} are not, "
            f"e.g. {', '.join(map(str, absent[:5]))} (pass unknown identities as unknown_emb)"
        )
    probe_codes = np.searchsorted(identities, probe_labels)
    order = np.argsort(gallery_codes, kind="stable")
    starts = np.searchsorted(gallery_codes[order], np.arange(identities.size))
    sorted_gallery = gallery_emb[order]

    ranks = np.empty(probe_emb.shape[0], dtype=np.int64)
    true_distance = np.empty(probe_emb.shape[0], dtype=np.float64)
    for lo in range(0, probe_emb.shape[0], _CHUNK):  # blocks of probes bound memory
        block = slice(lo, lo + _CHUNK)
        d = np.asarray(pairwise_distances_numpy(probe_emb[block], sorted_gallery, metric=metric))
        per_identity = np.minimum.reduceat(d, starts, axis=1)  # (block, identities)
        true_d = per_identity[np.arange(per_identity.shape[0]), probe_codes[block]]
        # Other identities at least as close as the true one; ties count against.
        ranks[block] = (per_identity <= true_d[:, None]).sum(axis=1) - 1
        true_distance[block] = true_d
    return ranks, true_distance


def _open_set_threshold(gallery_emb, unknown_emb, metric, far) -> float:
    """The (n + 1)-th smallest distance of an unknown embedding to its nearest gallery
    embedding, ``n = floor(far · U)``: accepting below it accepts at most ``far`` of them."""
    from facenet_tf.distances import pairwise_distances_numpy

    nearest = np.concatenate([
        np.asarray(pairwise_distances_numpy(unknown_emb[lo:lo + _CHUNK], gallery_emb, metric=metric)).min(axis=1)
        for lo in range(0, unknown_emb.shape[0], _CHUNK)
    ])
    # The slack keeps far * U = 2.9999999999999996 from flooring to 2.
    accepted = int(np.floor(far * unknown_emb.shape[0] + 1e-9))
    return float(np.sort(nearest)[accepted])


def _check_embeddings(emb, name, dim=None):
    emb = np.asarray(emb)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise FacenetError(f"{name} must be a non-empty 2-D array (N, D); received shape {emb.shape}")
    if dim is not None and emb.shape[1] != dim:
        raise FacenetError(f"{name} must have {dim} columns like gallery_emb; received {emb.shape[1]}")
    return emb


def _check_labels(labels, name, count):
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise FacenetError(f"{name} must be 1-D with {count} labels; received shape {labels.shape}")
    return labels
