"""Writing a model directory and its SavedModel: what ``train`` and ``import-dlib`` leave behind.

A model directory holds ``model.keras``, ``saved_model/`` (serving signatures),
``metadata.json`` and, after training, ``metrics.json``, published together
(:func:`facenet_tf.artifacts.staged_model_directory`). :mod:`facenet_tf.models.loader`
reads every such directory. Signatures of the SavedModel (both return
``{"embeddings": float32 [N, D]}``):

* ``serving_default``: ``images`` float32 ``[N, H, W, 3]``, RGB pixel values 0..255.
* ``embed_encoded``: ``image_bytes`` tf.string ``[N]``, encoded JPEG/PNG/GIF/BMP of any
  size; decoding, greyscale→RGB and resizing run in the graph with the very ops training
  used (:mod:`facenet_tf.data.images`).
* ``embed_flip``: ``images`` as ``serving_default``; test-time augmentation: the mean of the
  embeddings of each image and its mirror, re-normalised to unit length when the contract
  says the model's embeddings are unit-norm (``facenet-tf ... --tta flip`` computes the same).

None of these detects or aligns faces: a model that records an alignment takes aligned chips.
``facenet-tf export`` adds ``detect_and_embed`` (photo bytes → every face) for models recording
dlib's alignment (:mod:`facenet_tf.serving.detect_and_embed`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from facenet_tf.artifacts import (KERAS_FILE, METADATA_FILE, METRICS_FILE, SAVED_MODEL_DIR, staged_model_directory,
                                  write_json)
from facenet_tf.data import images as image_ops
from facenet_tf.errors import FacenetError
from facenet_tf.models.contract import ModelContract
from facenet_tf.models.loader import KERAS_ARCHITECTURE_FILE, model_image_size


#: What :func:`write_model_directory` reports to its ``progress``, one step each.
WRITTEN_STEPS = ("model.keras", "saved_model/", "metadata.json")


def write_model_directory(model: keras.Model, output_dir: str, contract: ModelContract,
                          metrics: Optional[Dict[str, Any]] = None,
                          progress: Optional[Callable[[int], None]] = None, owner=None) -> None:
    """Write a model directory: ``model.keras``, ``saved_model/``, ``metadata.json`` and
    (when given) ``metrics.json``, published together (:func:`staged_model_directory`):
    a reader sees the previous model or this one, whole. What ``train`` and
    ``import-dlib`` write. ``progress``, when given, receives 1 after each of
    :data:`WRITTEN_STEPS` (the SavedModel, whose signatures are traced, takes longest).
    ``owner``: the writing command's claim on ``output_dir`` (``train``'s, ``import-dlib``'s);
    ``None`` claims it as a library-written model directory (see :func:`staged_model_directory`).

    Raises:
        FacenetError: a weight is NaN or infinite (nothing is written).
    """
    require_finite_weights(model, f"model for {output_dir}")
    # model.keras and saved_model/ each hold the weights once (+ structure): checked before writing.
    needed = 3 * sum(int(np.asarray(w).nbytes) for w in model.weights)
    with staged_model_directory(output_dir, needed_bytes=needed, owner=owner) as stage:
        done = progress if progress is not None else (lambda n: None)
        model.save(os.path.join(stage, KERAS_FILE))
        done(1)
        write_saved_model(model, os.path.join(stage, SAVED_MODEL_DIR), contract)
        done(1)
        write_json(os.path.join(stage, METADATA_FILE), contract.to_json())
        if metrics is not None:
            write_json(os.path.join(stage, METRICS_FILE), metrics)
        done(1)


def require_finite_weights(model: keras.Model, what: str) -> None:
    """Raise :class:`FacenetError` naming the first weight of ``model`` that holds NaN or inf."""
    for variable in model.weights:
        if not np.all(np.isfinite(np.asarray(variable))):
            raise FacenetError(f"{what}: weight {variable.path} holds NaN or inf values; refusing to write it")


def write_saved_model(model: keras.Model, path: str, contract: Optional[ModelContract] = None,
                      endpoints: Optional[Dict[str, Tuple[Callable, List[tf.TensorSpec]]]] = None) -> None:
    """Write the SavedModel into ``path`` (an empty or absent directory), not atomically.

    Its assets hold the contract (``metadata.json``) and the Keras architecture
    (:data:`~facenet_tf.models.loader.KERAS_ARCHITECTURE_FILE`), so the loader rebuilds a
    trainable model of any architecture from the SavedModel alone. ``endpoints``: more
    signatures, ``{name: (fn, input_signature)}`` (``export``'s ``detect_and_embed``); the
    variables they use are saved with them.
    """
    height, width = model_image_size(model)

    # No archive.track(model): the endpoints capture every variable they use, and tracking the
    # model as well makes Keras 3.15 store each weight twice (a SavedModel twice the size).
    archive = keras.export.ExportArchive()
    # The weights in model order, so `train --init-from SAVED_MODEL` can rebuild a trainable model.
    archive.add_variable_collection("model_weights", model.weights)

    def embed_pixels(images):
        return {"embeddings": model(images, training=False)}

    def embed_encoded(image_bytes):
        pixels = tf.map_fn(
            lambda data: image_ops.resize(image_ops.decode_image(data), (height, width)),
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )
        return {"embeddings": model(pixels, training=False)}

    archive.add_endpoint(
        "serving_default", embed_pixels, input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name="images")]
    )
    archive.add_endpoint(
        "embed_encoded", embed_encoded, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    normalized = contract.normalized if contract is not None else True

    def embed_flip(images):
        mean = (model(images, training=False) + model(tf.reverse(images, axis=[2]), training=False)) / 2
        return {"embeddings": tf.math.l2_normalize(mean, axis=1) if normalized else mean}

    archive.add_endpoint(
        "embed_flip", embed_flip, input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name="images")]
    )
    for name, (fn, signature) in (endpoints or {}).items():
        archive.add_endpoint(name, fn, input_signature=signature)
    if os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
    archive.write_out(path, verbose=False)
    assets = os.path.join(path, "assets")
    os.makedirs(assets, exist_ok=True)
    with open(os.path.join(assets, KERAS_ARCHITECTURE_FILE), "w") as f:
        f.write(model.to_json())
    if contract is not None:
        write_json(os.path.join(assets, METADATA_FILE), contract.to_json())
