"""Group faces by person.

* :mod:`~facenet_tf.cluster.core`: :func:`cluster_embeddings`, the clustering of embeddings
  (scikit-learn's agglomerative clustering or DBSCAN on the within-threshold graph).
"""

from facenet_tf.cluster.core import METHODS, cluster_embeddings

__all__ = ["METHODS", "cluster_embeddings"]
