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
    add_face_arguments(p, default=None)
    add_tta_arguments(p)


def add_tta_arguments(p) -> None:
    """``--tta``, ``--tta-jitters`` and ``--tta-seed`` (test-time augmentation)."""
    from facenet_tf.serving.tta import TTA_MODES, TTAConfig

    d = TTAConfig()
    p.add_argument("--tta", default=d.mode, choices=TTA_MODES.names(),
                   help=f"test-time augmentation ({TTA_MODES.help()}); a gallery remembers it (default: %(default)s)")
    p.add_argument("--tta-jitters", type=int, default=d.jitters, help="N for --tta jitter (default: %(default)s)")
    p.add_argument("--tta-seed", type=int, default=d.seed, help="draws the --tta jitter crops (default: %(default)s)")


def add_face_arguments(p, default: bool = True) -> None:
    """``--align-method`` and ``--face``, their choices and help read from the registries."""
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.choice import FACE_CHOICES
    from facenet_tf.faces.methods import ALIGN_METHODS

    d = AlignConfig()
    p.add_argument("--align-method", default=d.method if default else None, choices=ALIGN_METHODS.names(),
                   help=f"how a face becomes a chip ({ALIGN_METHODS.help()}); default: "
                        + (d.method if default else "the model's recorded method, else arcface"))
    p.add_argument("--face", default=d.face if default else None, choices=FACE_CHOICES.names(),
                   help=f"which face where an image holds several ({FACE_CHOICES.help()}); default: "
                        + (d.face if default else f"the model's recorded rule, else {d.face}"))


def embedder_from_args(args):
    """The ``--model`` embedder, aligning image files the way the model records (unless
    ``--no-align``), or with ``--align`` as ``facenet-tf align`` does; ``--align-method`` and
    ``--face`` override the method and the face rule; ``--tta`` adds test-time augmentation."""
    from facenet_tf.errors import FacenetError
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.embedder import AlignedEmbedder, with_recorded_alignment
    from facenet_tf.serving.inference import load_embedder
    from facenet_tf.serving.tta import TTAConfig, with_tta

    if args.align and args.no_align:
        raise FacenetError("--align and --no-align exclude each other")
    embedder = load_embedder(args.model, getattr(args, "image_size", None))
    embedder = with_tta(embedder, TTAConfig(getattr(args, "tta", "none"), getattr(args, "tta_jitters", 10),
                                            getattr(args, "tta_seed", 0)))
    if args.no_align:
        return embedder
    method, face = getattr(args, "align_method", None), getattr(args, "face", None)
    aligned = with_recorded_alignment(embedder, method, face)
    if aligned is embedder and (args.align or method or face):  # --align-method/--face imply --align
        d = AlignConfig()
        return AlignedEmbedder(embedder, AlignConfig(method=method or d.method, face=face or d.face))
    return aligned


def progress_bar(total: int, desc: str, unit: str = "img", quiet: bool = False):
    """A tqdm bar on stderr (hidden when stderr is not a terminal); pass ``bar.update`` as a progress callback."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet or not sys.stderr.isatty())
