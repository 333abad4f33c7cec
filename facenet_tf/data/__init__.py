"""Data: identity catalogs, image decoding, synthetic identities and the P×K batch stream."""

from facenet_tf.data.augment import AugmentConfig, build_augmenter
from facenet_tf.data.catalog import IMAGE_EXTENSIONS, IdentityCatalog, natural_key, scan_directory
from facenet_tf.data.images import decode_image, load_image, load_images, parse_image_size, read_image, resize
from facenet_tf.data.config import DataConfig
from facenet_tf.data.sampler import PKConfig, pk_dataset, pk_indices
from facenet_tf.data.synthetic import synthetic_identities, write_synthetic_dataset

__all__ = [
    "AugmentConfig", "DataConfig", "IMAGE_EXTENSIONS", "IdentityCatalog", "PKConfig", "build_augmenter", "decode_image",
    "load_image", "load_images", "natural_key", "parse_image_size", "pk_dataset",
    "pk_indices", "read_image", "resize", "scan_directory", "synthetic_identities", "write_synthetic_dataset",
]
