"""Defaults and helpers shared by the sub-commands."""

import os

DEFAULT_OUTPUT = os.path.join("saved_models", "facenet_tf")


def add_align_argument(p) -> None:
    """``--align`` for the commands that embed image files."""
    p.add_argument("--align", action="store_true",
                   help="detect and align each face with MTCNN first, as 'facenet-tf align' does (for models trained "
                        "on aligned faces; needs the [align] extra)")


def load_embedder(args):
    """The ``--model`` embedder, aligning image files first with ``--align``."""
    from facenet_tf.inference import Embedder

    embedder = Embedder.load(args.model)
    if getattr(args, "align", False):
        from facenet_tf.align import AlignedEmbedder

        embedder = AlignedEmbedder(embedder)
    return embedder
