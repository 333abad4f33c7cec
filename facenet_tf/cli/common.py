"""Defaults and helpers shared by the sub-commands."""

from facenet_tf.training.config import TrainConfig

#: Where ``train`` writes by default, and so where the other commands look for the model.
DEFAULT_OUTPUT = TrainConfig.output_dir


#: ``dest`` roots of the configs the embedding commands share a parser with (see config_flags).
TTA_ROOT, ALIGN_ROOT = "tta.", "align."


def add_align_argument(p) -> None:
    """``--align`` / ``--no-align`` for the commands that embed image files, with
    ``--align-method``, ``--face`` and the ``--tta*`` flags."""
    p.add_argument("--align", action="store_true",
                   help="detect and align each face with MTCNN first, as 'facenet-tf align' does (for models trained "
                        "on aligned faces; needs the [align] extra). Models that record their alignment (imported "
                        "dlib) are always aligned their own way")
    p.add_argument("--no-align", action="store_true",
                   help="the images are ready aligned chips: skip the alignment the model records")
    add_face_arguments(p)
    add_tta_arguments(p)


def add_tta_arguments(p) -> None:
    """``--tta``, ``--tta-jitters`` and ``--tta-seed``, generated from :class:`TTAConfig`'s fields."""
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.serving.tta import TTAConfig

    add_config_flags(p, TTAConfig, root=TTA_ROOT)


def add_face_arguments(p) -> None:
    """``--align-method`` and ``--face`` from :class:`AlignConfig`'s fields, for the embedding
    commands: unset, the model's recorded alignment decides."""
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.faces.aligner import AlignConfig

    d = AlignConfig()
    add_config_flags(p, AlignConfig, root=ALIGN_ROOT, only=("method", "face"),
                     shown={"method": f"the model's recorded method, else {d.method}",
                            "face": f"the model's recorded rule, else {d.face}"})


def embedding_options(args):
    """The :class:`TTAConfig` and the ``--align-method``/``--face`` overrides (``None`` = not
    given) of the flags, checked before any model is loaded.

    Raises:
        FacenetError: a flag of the wrong type, out of range or not a choice; ``--align``
            with ``--no-align``.
    """
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.errors import FacenetError
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.serving.tta import TTAConfig

    if args.align and args.no_align:
        raise FacenetError("--align and --no-align exclude each other")
    tta = apply_flags(TTAConfig(), args, root=TTA_ROOT)
    tta.validate()
    apply_flags(AlignConfig(), args, root=ALIGN_ROOT).validate()
    return tta, getattr(args, ALIGN_ROOT + "method", None), getattr(args, ALIGN_ROOT + "face", None)


def embedder_from_args(args):
    """The ``--model`` embedder, aligning image files the way the model records (unless
    ``--no-align``), or with ``--align`` as ``facenet-tf align`` does; ``--align-method`` and
    ``--face`` override the method and the face rule; ``--tta`` adds test-time augmentation."""
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.embedder import AlignedEmbedder, with_recorded_alignment
    from facenet_tf.serving.inference import load_embedder
    from facenet_tf.serving.tta import with_tta

    tta, method, face = embedding_options(args)
    embedder = with_tta(load_embedder(args.model, getattr(args, "image_size", None)), tta)
    if args.no_align:
        return embedder
    aligned = with_recorded_alignment(embedder, method, face)
    if aligned is embedder and (args.align or method or face):  # --align-method/--face imply --align
        d = AlignConfig()
        return AlignedEmbedder(embedder, AlignConfig(method=method or d.method, face=face or d.face))
    return aligned


def add_match_arguments(p, only=None) -> None:
    """The matching flags (``--threshold``, ``--top-k``, ``--index``) of :class:`MatchConfig`'s fields in ``only``."""
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.gallery.config import MatchConfig

    add_config_flags(p, MatchConfig, only=only)


def match_options(args):
    """The :class:`MatchConfig` of the flags, checked.

    Raises:
        FacenetError: a flag of the wrong type or out of range.
    """
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.gallery.config import MatchConfig

    config = apply_flags(MatchConfig(), args)
    config.validate()
    return config


def progress_bar(total: int, desc: str, unit: str = "img", quiet: bool = False):
    """A tqdm bar on stderr (hidden when stderr is not a terminal); pass ``bar.update`` as a progress callback."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet or not sys.stderr.isatty())
