"""Data: identity catalogs, the one image reader, skip reports, synthetic identities, the P×K
batch stream, and prepared TFRecord shards with their manifest.

Names are imported on first use (PEP 562), so ``prepare``'s worker processes, which only need
:mod:`facenet_tf.data.reader`, never pay for importing TensorFlow and Keras.
"""

from facenet_tf.lazy import exports

#: public name → module under facenet_tf.data that defines it
_EXPORTS = {
    "AugmentConfig": "config", "build_augmenter": "augment",
    "IMAGE_EXTENSIONS": "catalog", "IdentityCatalog": "catalog", "natural_key": "catalog",
    "scan_directory": "catalog", "usable_catalog": "catalog",
    "decode_image": "images", "load_image": "images", "load_images": "images", "parse_image_size": "reader",
    "read_image": "images", "resize": "images",
    "read_rgb": "reader", "BadImage": "reader", "ImageLimits": "reader",
    "SkipReport": "report",
    "DataConfig": "config", "PrepareConfig": "prepare_config",
    "PKConfig": "sampler", "pk_dataset": "sampler", "pk_indices": "sampler",
    "synthetic_identities": "synthetic", "write_synthetic_dataset": "synthetic",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)
