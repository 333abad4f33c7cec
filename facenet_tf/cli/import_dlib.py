"""``facenet-tf import-dlib``: the alias of ``facenet-tf import dlib`` (:mod:`facenet_tf.cli.import_model`)."""

from __future__ import annotations

import argparse

HELP = "same as 'facenet-tf import dlib': dlib's pretrained face ResNet (CC0) as a model directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.import_model import add_arguments as add_import_arguments

    add_import_arguments(p, importer="dlib")
    p.set_defaults(importer="dlib")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.import_model import run as run_import

    return run_import(args)
