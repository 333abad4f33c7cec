"""SavedModel export with two serving signatures and the metadata as an asset.

Signatures (both return ``{"embeddings": float32 [N, D]}``, unit L2 norm):

* ``serving_default``: ``images`` float32 ``[N, H, W, 3]``, RGB pixel values 0..255.
* ``embed_encoded``: ``image_bytes`` tf.string ``[N]``, encoded JPEG/PNG/GIF/BMP of any
  size; decoding, greyscale→RGB and resizing run in the graph with the very ops training
  used (:mod:`facenet_tf.data.images`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import keras
import tensorflow as tf

from facenet_tf.artifacts import METADATA_FILE, atomic_path
from facenet_tf.data import images as image_ops
from facenet_tf.model import model_image_size


def export_saved_model(model: keras.Model, path: str, metadata: Optional[Dict[str, Any]] = None) -> str:
    """Write ``model`` as a SavedModel at ``path`` (atomically: temp sibling + rename).

    Args:
        model: embedding model taking float32 ``[N,H,W,3]`` pixels in 0..255.
        path: target directory; a previous export there stays intact until the new one
            is complete.
        metadata: JSON-serialisable dict stored as ``assets/metadata.json``.

    Returns:
        ``path``.
    """
    height, width = model_image_size(model)

    archive = keras.export.ExportArchive()
    archive.track(model)

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
    with atomic_path(path, is_dir=True) as tmp:
        os.rmdir(tmp)
        archive.write_out(tmp, verbose=False)
        if metadata is not None:
            os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
            with open(os.path.join(tmp, "assets", METADATA_FILE), "w") as f:
                json.dump(metadata, f, indent=2, sort_keys=True)
    return path
