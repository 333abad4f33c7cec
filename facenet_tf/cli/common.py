"""Defaults and helpers shared by the sub-commands."""

from facenet_tf.progress import embedding_progress, progress_bar  # noqa: F401  (the commands' one progress helper)
from facenet_tf.training.config import TrainConfig

#: Where ``train`` writes by default, and so where the other commands look for the model.
DEFAULT_OUTPUT = TrainConfig.output_dir


#: ``dest`` roots of the configs the embedding commands share a parser with (see config_flags).
TTA_ROOT, ALIGN_ROOT = "tta.", "align."

#: The :class:`~facenet_tf.faces.aligner.AlignConfig` fields the embedding commands override.
ALIGN_OVERRIDES = ("method", "face", "detector")


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

    add_config_flags(p, TTAConfig, root=TTA_ROOT, shown={"mode": "the model's recorded augmentation, else none"})


def add_face_arguments(p) -> None:
    """``--align-method``, ``--face`` and ``--detector`` from :class:`AlignConfig`'s fields, for the embedding
    commands: unset, the model's recorded alignment decides."""
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.faces.aligner import AlignConfig

    d = AlignConfig()
    add_config_flags(p, AlignConfig, root=ALIGN_ROOT, only=ALIGN_OVERRIDES,
                     shown={"method": f"the model's recorded method, else {d.method}",
                            "face": f"the model's recorded rule, else {d.face}",
                            "detector": f"the model's recorded detector, else {d.detector}"})


def embedding_options(args):
    """The :class:`TTAConfig` and the alignment overrides given (``{field: value}`` of
    ``--align-method``/``--face``/``--detector``), each checked before any model is loaded.

    Raises:
        FacenetError: a flag of the wrong type, out of range or not a choice; ``--align``
            with ``--no-align``.
    """
    from facenet_tf import fields
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.errors import FacenetError
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.serving.tta import TTAConfig

    if args.align and args.no_align:
        raise FacenetError("--align and --no-align exclude each other")
    tta = apply_flags(TTAConfig(), args, root=TTA_ROOT)
    tta.validate()
    fields.validate(apply_flags(AlignConfig(), args, root=ALIGN_ROOT))
    overrides = {name: getattr(args, ALIGN_ROOT + name, None) for name in ALIGN_OVERRIDES}
    return tta, {name: value for name, value in overrides.items() if value is not None}


def embedder_from_args(args):
    """The ``--model`` embedder, aligning image files the way the model records (unless
    ``--no-align``: then the fingerprint says so), or with ``--align`` as ``facenet-tf align`` does; ``--align-method``,
    ``--face`` and ``--detector`` override the recorded ones; the ``--tta*`` flags override the
    test-time augmentation the model records (none unless it records one)."""
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.faces.embedder import AlignedEmbedder, with_overrides, with_recorded_alignment, without_alignment
    from facenet_tf.serving.inference import load_embedder
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.serving.tta import TTAConfig, with_tta

    _, overrides = embedding_options(args)
    embedder = load_embedder(args.model, getattr(args, "image_size", None))
    embedder = with_tta(embedder, apply_flags(TTAConfig.from_contract(embedder.contract), args, root=TTA_ROOT))
    if args.no_align:
        return without_alignment(embedder)
    aligned = with_recorded_alignment(embedder, workers=0, **overrides)  # 0: processes where the detector needs them
    if aligned is embedder and (args.align or overrides):  # an alignment flag implies --align
        return AlignedEmbedder(embedder, with_overrides(AlignConfig(), **overrides), workers=0)
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

