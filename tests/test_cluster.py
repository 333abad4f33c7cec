"""Grouping faces by person: :func:`facenet_tf.cluster.cluster_embeddings` on generated embeddings."""

import numpy as np
import pytest

from facenet_tf.cluster import METHODS, cluster_embeddings
from facenet_tf.errors import FacenetError

pytest.importorskip("sklearn", reason="clustering needs the [cluster] extra (scikit-learn)")


def people(sizes, dim=16, spread=0.05, seed=0):
    """Unit embeddings of people with ``sizes`` faces each, shuffled → ``(x, truth)``."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[truth] + spread * rng.normal(size=(truth.size, dim))
    order = rng.permutation(truth.size)
    return x[order].astype(np.float32), truth[order]


def same_partition(a, b):
    """The two labelings group the faces alike (ids may differ)."""
    pairs_a = a[:, None] == a[None, :]
    pairs_b = b[:, None] == b[None, :]
    return np.array_equal(pairs_a, pairs_b)


@pytest.fixture(scope="module")
def crowd():
    return people([9, 7, 7, 5, 3, 2, 1, 1])


@pytest.mark.parametrize("method", ["average", "complete"])
def test_separate_people_become_one_cluster_each(crowd, method):
    x, truth = crowd
    labels = cluster_embeddings(x, 0.6, method, "l2")
    grouped = labels >= 0
    assert same_partition(labels[grouped], truth[grouped])
    assert (~grouped).sum() == 2  # the two people with one face: left alone
    sizes = np.bincount(labels[grouped])
    assert list(sizes) == [9, 7, 7, 5, 3, 2]  # numbered by decreasing size
    first = [np.flatnonzero(labels == k)[0] for k in (1, 2)]
    assert first[0] < first[1]  # equal sizes: the earlier face first


def test_min_size_and_empty_input(crowd):
    x, truth = crowd
    assert (cluster_embeddings(x, 0.6, min_size=4) >= 0).sum() == 9 + 7 + 7 + 5
    assert (cluster_embeddings(x, 0.6, min_size=1) >= 0).all()
    assert cluster_embeddings(np.zeros((0, 16)), 0.6).shape == (0,)


def test_k_nearest_graph_path_matches_the_full_matrix(crowd):
    x, _ = crowd
    for method in METHODS:
        dense = cluster_embeddings(x, 0.6, method, "l2")
        sparse = cluster_embeddings(x, 0.6, method, "l2", dense_limit=8, neighbours=12)
        assert same_partition(dense, sparse), method


def test_average_linkage_does_not_chain_two_people_through_a_bridge():
    """A face halfway between two people links them in the threshold graph (one component);
    average linkage still keeps the two people apart, as single linkage (DBSCAN) does not."""
    a = np.zeros((6, 2))
    a[:, 1] = np.linspace(-0.05, 0.05, 6)
    b = a + [1.0, 0]
    bridge = np.array([[0.5, 0.0]])
    x = np.concatenate([a, b, bridge]).astype(np.float32)
    labels = cluster_embeddings(x, 0.55, "average", "l2")
    assert labels[0] != labels[6] and len(set(labels[:6])) == 1 and len(set(labels[6:12])) == 1
    assert len(set(cluster_embeddings(x, 0.55, "dbscan", "l2"))) == 1


def test_distances_and_duplicates():
    x, truth = people([4, 4, 4], spread=0.02, seed=2)
    x = np.concatenate([x, x[:1]])  # an exact duplicate: distance 0 is still "within"
    truth = np.append(truth, truth[0])
    for distance, threshold in (("cosine", 0.2), ("squared_l2", 0.3), ("l2", 0.5)):
        assert same_partition(cluster_embeddings(x, threshold, distance=distance), truth), distance


def test_bad_arguments_are_one_line_errors(crowd):
    x, _ = crowd
    for kwargs in ({"method": "kmeans"}, {"threshold": 0}, {"threshold": float("nan")}, {"distance": "manhattan"}):
        args = {"threshold": 0.6, **kwargs}
        with pytest.raises(FacenetError):
            cluster_embeddings(x, **args)
    with pytest.raises(FacenetError, match="shape"):
        cluster_embeddings(x[0], 0.6)
