"""Group face embeddings by person: :func:`cluster_embeddings`.

Two faces may share a person when their distance is within the verification threshold. The
faces are first cut into the connected components of that "within threshold" graph; complete
(or average) linkage never merges across components (a merge needs a mean, or a largest,
distance within the threshold, so at least one pair within it), so each component is
clustered on its own with scikit-learn's ``AgglomerativeClustering(distance_threshold=...)``
on its exact distance matrix. The graph comes from the full distance matrix up to
``dense_limit`` faces, and above it from each face's ``k`` nearest neighbours
(:class:`facenet_tf.gallery.index.EmbeddingIndex`, faiss when installed): memory grows with
``N * k``, not ``N²``. A component larger than ``dense_limit`` is clustered with that k-NN
graph as the linkage's connectivity. ``"dbscan"`` runs scikit-learn's DBSCAN on the same
graph (``eps`` = threshold).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from facenet_tf.errors import FacenetError, check_choice

#: Clustering rules: complete or average linkage (agglomerative), or DBSCAN.
METHODS = ("complete", "average", "dbscan")
#: The default rule: complete linkage (every pair of a cluster within the threshold) grouped ORL
#: and ORL composites best with the imported dlib model, well ahead of dlib's Chinese whispers
#: (benchmarks/cluster_quality.py, benchmarks/RESULTS.md); average linkage and DBSCAN merge people.
DEFAULT_METHOD = "complete"
#: Above this many faces the graph comes from k nearest neighbours, not the full matrix.
DENSE_LIMIT = 4096
#: Neighbours per face of the k-NN graph.
NEIGHBOURS = 32


def cluster_embeddings(embeddings: np.ndarray, threshold: float, method: str = DEFAULT_METHOD, distance: str = "l2",
                       min_size: int = 2, neighbours: int = NEIGHBOURS, dense_limit: int = DENSE_LIMIT,
                       progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """Cluster ``embeddings`` so that each cluster is one person.

    Args:
        embeddings: float ``[N, D]``.
        threshold: the largest distance at which two faces are the same person (the model's
            verification threshold), > 0.
        method: one of :data:`METHODS`; default :data:`DEFAULT_METHOD`.
        distance: a name of :data:`facenet_tf.distances.DISTANCES` (the model's).
        min_size: clusters with fewer faces are "unclustered" (label -1); default 2.
        neighbours: k of the k-NN graph (used above ``dense_limit`` faces).
        dense_limit: the most faces clustered from a full distance matrix.
        progress: optional callable receiving the number of faces just assigned.

    Returns:
        int64 ``[N]``: cluster ids ``0..C-1``, numbered by decreasing size (ties: first face
        first), or -1 for a face in no cluster of ``min_size`` faces.

    Raises:
        FacenetError: a bad method, distance, threshold or shape.
    """
    from scipy.sparse.csgraph import connected_components

    check_choice("method", method, METHODS)
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise FacenetError(f"embeddings must have shape [N, D]; received {x.shape}")
    if not (np.isfinite(threshold) and threshold > 0):
        raise FacenetError(f"threshold must be a finite distance > 0; received {threshold!r}")
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    graph = _threshold_graph(x, threshold, distance, neighbours, dense_limit)
    if method == "dbscan":
        from sklearn.cluster import DBSCAN

        raw = DBSCAN(eps=threshold, min_samples=min_size, metric="precomputed").fit_predict(graph)
        if progress is not None:
            progress(n)
        return _renumber(raw, min_size)
    _, component = connected_components(graph, directed=False)
    raw = np.full(n, -1, np.int64)
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.diff(component[order])) + 1
    next_id = 0
    for members in np.split(order, bounds):  # one step per component, most are one or two faces
        raw[members] = next_id + _cluster_component(x, members, graph, threshold, method, distance, dense_limit)
        next_id = raw[members].max() + 1
        if progress is not None:
            progress(len(members))
    return _renumber(raw, min_size)


def _threshold_graph(x: np.ndarray, threshold: float, distance: str, neighbours: int, dense_limit: int):
    """Sparse symmetric CSR ``[N, N]``: the distance of every pair within ``threshold`` (pairs of
    k nearest neighbours above ``dense_limit`` faces); each face also links to itself (a
    distance of 0 is stored as the smallest float)."""
    from scipy import sparse

    from facenet_tf.distances import pairwise_distances_numpy

    n = len(x)
    if n <= dense_limit:
        d = np.asarray(pairwise_distances_numpy(x, metric=distance), np.float64)
        rows, cols = np.nonzero(d <= threshold)
        values = d[rows, cols]
    else:
        rows, cols, values = _neighbour_pairs(x, threshold, distance, min(neighbours, n))
    # A zero distance (the diagonal, duplicates) must stay a stored entry: sparse operations drop
    # zeros, and DBSCAN and the components read stored entries.
    values = np.maximum(values, np.finfo(np.float64).tiny)
    graph = sparse.csr_matrix((values, (rows, cols)), shape=(n, n))
    return graph.maximum(graph.T).tocsr()  # symmetric: a neighbour of mine is my neighbour


def _neighbour_pairs(x: np.ndarray, threshold: float, distance: str, k: int):
    """``(rows, cols, distances)`` of each face's ``k`` nearest neighbours within ``threshold``.

    faiss (when installed) picks the candidates with a flat, exact index; their distances come
    from the shared definition (:func:`facenet_tf.distances.paired_distances_numpy`), face by
    neighbour, so the threshold means what it means everywhere else."""
    from facenet_tf.distances import paired_distances_numpy
    from facenet_tf.errors import FacenetError
    from facenet_tf.gallery.index import EmbeddingIndex, import_faiss

    try:
        faiss = import_faiss()
    except FacenetError:  # not installed: exact NumPy search instead
        faiss = None
    if faiss is None:
        d, cols = EmbeddingIndex(x, distance, "numpy").search(x, k)
    else:
        from facenet_tf.distances import get, unit_rows_numpy

        if get(distance).faiss_unit_inner_product:
            index, queries = faiss.IndexFlatIP(x.shape[1]), unit_rows_numpy(x).astype(np.float32)
        else:
            index, queries = faiss.IndexFlatL2(x.shape[1]), x
        index.add(queries)
        cols = index.search(queries, k)[1].astype(np.int64)
        d = np.concatenate([paired_distances_numpy(np.repeat(x[start:start + 4096], k, axis=0),
                                                   x[cols[start:start + 4096].ravel()], distance)
                            for start in range(0, len(x), 4096)]).reshape(cols.shape)
    rows = np.repeat(np.arange(len(x)), k)
    keep = d.ravel() <= threshold
    return rows[keep], cols.ravel()[keep], d.ravel()[keep].astype(np.float64)


def _cluster_component(x: np.ndarray, members: np.ndarray, graph, threshold: float, method: str, distance: str,
                       dense_limit: int) -> np.ndarray:
    """Local cluster ids ``0..`` of one connected component."""
    if len(members) <= 2:  # one face, or two within the threshold: one cluster either way
        return np.zeros(len(members), np.int64)
    from sklearn.cluster import AgglomerativeClustering

    if len(members) <= dense_limit:
        from facenet_tf.distances import pairwise_distances_numpy

        d = np.asarray(pairwise_distances_numpy(x[members], metric=distance), np.float64)
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="precomputed",
                                        linkage=method)
        return model.fit_predict(d).astype(np.int64)
    # A very large component: its k-NN graph restricts which clusters may merge (sparse linkage).
    sub = graph[members][:, members]
    metric = "cosine" if distance == "cosine" else "euclidean"
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=_as_metric(threshold, distance),
                                    metric=metric, linkage=method, connectivity=sub)
    return model.fit_predict(x[members]).astype(np.int64)


def _as_metric(threshold: float, distance: str) -> float:
    """The threshold in scikit-learn's metric (``squared_l2`` is compared as its square root)."""
    return float(np.sqrt(threshold)) if distance == "squared_l2" else float(threshold)


def _renumber(raw: np.ndarray, min_size: int) -> np.ndarray:
    """Ids by decreasing cluster size (ties: earliest face first); -1 below ``min_size``."""
    out = np.full(raw.shape, -1, np.int64)
    valid = raw >= 0
    if not valid.any():
        return out
    ids, first, counts = np.unique(raw[valid], return_index=True, return_counts=True)
    first = np.flatnonzero(valid)[first]
    kept = counts >= min_size
    order = np.lexsort((first[kept], -counts[kept]))
    new_id = np.full(ids.size, -1, np.int64)
    new_id[np.flatnonzero(kept)[order]] = np.arange(order.size)
    out[valid] = new_id[np.searchsorted(ids, raw[valid])]
    return out
