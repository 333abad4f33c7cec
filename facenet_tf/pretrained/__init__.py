"""Pretrained face-recognition networks imported from other libraries (nothing is downloaded).

Every module of this package is imported with it, and each importer module registers itself
(and its Keras layers) in :data:`facenet_tf.models.importers.IMPORTERS`; the table imports
this package on its first lookup. Adding an importer is one module here plus its tests.
dlib: :mod:`facenet_tf.faces.dlib_format` reads dlib's DNN files with NumPy alone, ``dlib_resnet`` rebuilds
dlib's ResNet face-recognition network as a Keras model, ``dlib_import`` writes it as a
model directory.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
