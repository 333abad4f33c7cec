"""The importers' table: foreign pretrained networks that become facenet_tf models.

An importer reads a local weights file of another framework and writes a normal model
directory (:func:`facenet_tf.models.writer.write_model_directory`) whose
:class:`~facenet_tf.models.contract.ModelContract` names the importer's ``architecture``.
Importers live in :mod:`facenet_tf.pretrained`, one module each, and register themselves
in :data:`IMPORTERS`; looking up the table imports that package, which also registers the
importers' Keras layers, so :mod:`facenet_tf.models.loader` can deserialise an imported
model without importing :mod:`facenet_tf.pretrained` itself. Adding an importer is one
module there (registered in its package ``__init__``) plus its tests.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from facenet_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class Importer:
    """One importer.

    Attributes:
        architecture: the ``architecture`` its contracts name (e.g. ``"dlib_resnet_v1"``).
        run: ``(output_dir, source_path or None, *, allow_existing_files=False, steps=None)
            -> ModelContract``: read the file (``None``: the file of the importer's optional
            package, never a download) and write a model directory; ``steps`` is told of each
            long step (:data:`facenet_tf.progress.StepStart`) for a progress display.
        source: one line on the file it reads, for the command line.
    """

    architecture: str
    run: Callable
    source: str


IMPORTERS: Registry[Importer] = Registry("importer", "importer", plugins=("facenet_tf.pretrained",))
