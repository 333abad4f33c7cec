"""Serving: using a trained model outside training.

* :mod:`~facenet_tf.serving.inference`: :class:`Embedder`, images → embeddings with a
  loaded model (and the raw-pixel / eigenface baselines).
* :mod:`~facenet_tf.serving.export`: the verified export (SavedModel signatures, TFLite
  variants checked against the Keras model); its options, :class:`ExportConfig`, in
  :mod:`~facenet_tf.serving.export_config`.
* :mod:`~facenet_tf.serving.detect_and_embed`: the whole face pipeline as one TensorFlow graph
  (photo bytes → every face's box and embedding), export's ``detect_and_embed`` signature;
  :mod:`~facenet_tf.serving.graph_check` checks it against the Python pipeline at export.
* :mod:`~facenet_tf.serving.tta`: test-time augmentation (:class:`TTAConfig`, ``TTA_MODES``).
* :mod:`~facenet_tf.serving.tflite`: TFLite conversion and running with LiteRT.
"""
