"""Pretrained face-recognition networks imported from other libraries (nothing is downloaded).

One module set per importer; each importer registers itself in
:data:`facenet_tf.models.importers.IMPORTERS` when this package is imported (the table
imports it on first lookup). dlib: ``dlib_format`` reads dlib's DNN files with NumPy
alone, ``dlib_resnet`` rebuilds dlib's ResNet face-recognition network as a Keras model,
``dlib_import`` writes it as a model directory (its chips are cut by :mod:`facenet_tf.faces.chips`).
"""

from facenet_tf.pretrained import dlib_import  # noqa: F401 - registers the dlib importer and its layers
