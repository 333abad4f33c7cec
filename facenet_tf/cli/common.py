"""Defaults and helpers shared by the sub-commands."""

from facenet_tf.training.config import TrainConfig

#: Where ``train`` writes by default, and so where the other commands look for the model.
DEFAULT_OUTPUT = TrainConfig.output_dir


def add_align_argument(p) -> None:
    """``--align`` / ``--no-align`` for the commands that embed image files."""
    p.add_argument("--align", action="store_true",
                   help="detect and align each face with MTCNN first, as 'facenet-tf align' does (for models trained "
                        "on aligned faces; needs the [align] extra). Models that record their alignment (imported "
                        "dlib) are always aligned their own way")
    p.add_argument("--no-align", action="store_true",
                   help="the images are ready aligned chips: skip the alignment the model records")


def embedder_from_args(args):
    """The ``--model`` embedder, aligning image files the way the model records (unless
    ``--no-align``), or with ``--align`` as ``facenet-tf align`` does."""
    from facenet_tf.faces.embedder import AlignedEmbedder, with_recorded_alignment
    from facenet_tf.errors import FacenetError
    from facenet_tf.serving.inference import load_embedder

    if args.align and args.no_align:
        raise FacenetError("--align and --no-align exclude each other")
    embedder = load_embedder(args.model, getattr(args, "image_size", None))
    if args.no_align:
        return embedder
    aligned = with_recorded_alignment(embedder)
    if aligned is embedder and args.align:
        return AlignedEmbedder(embedder)
    return aligned


def progress_bar(total: int, desc: str, unit: str = "img", quiet: bool = False):
    """A tqdm bar on stderr (hidden when stderr is not a terminal); pass ``bar.update`` as a progress callback."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet or not sys.stderr.isatty())
