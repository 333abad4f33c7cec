"""One-shot recognition against a persistent gallery.

* :mod:`~facenet_tf.gallery.store`: the SQLite file (schema, transactions); the only
  module that talks to SQLite.
* :mod:`~facenet_tf.gallery.index`: exact k-NN search, NumPy or faiss.
* :mod:`~facenet_tf.gallery.gallery`: :class:`Gallery`, the enrol / identify rule.
* :mod:`~facenet_tf.gallery.config`: :class:`MatchConfig`, the matching options (threshold,
  top-k, search backend) ``identify`` and ``verify`` take.
* :mod:`~facenet_tf.gallery.service`: use cases on images (enrol, identify, verify) that
  the command line calls.
"""

from facenet_tf.gallery.gallery import Gallery, Match, Neighbor
from facenet_tf.gallery.index import EmbeddingIndex

__all__ = ["EmbeddingIndex", "Gallery", "Match", "Neighbor"]
