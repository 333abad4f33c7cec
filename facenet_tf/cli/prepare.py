"""``facenet-tf prepare``: pack an identity folder into TFRecord shards for large-scale training."""

from __future__ import annotations

import argparse

HELP = "pack a folder of identities into TFRecord shards (train with --data-dir SHARD_DIR)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True, help="folder with one sub-folder of images per identity")
    p.add_argument("--output", required=True, help="folder for the shards and shards.json")
    p.add_argument("--shards", type=int, default=16, help="number of shard files (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image order (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import progress_bar
    from facenet_tf.data import scan_directory
    from facenet_tf.data.tfrecord import write_shards

    catalog = scan_directory(args.data_dir)
    with progress_bar(catalog.num_images, "prepare") as bar:
        paths = write_shards(catalog, args.output, args.shards, args.seed, progress=bar.update)
    print(f"wrote {len(paths)} shards of {catalog.summary()} to {args.output}")
    return 0
