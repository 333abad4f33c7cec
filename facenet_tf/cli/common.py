"""Defaults and helpers shared by the sub-commands."""

import json

from facenet_tf.progress import embedding_progress, progress_bar  # noqa: F401  (the commands' one progress helper)
from facenet_tf.training.config import TrainConfig

#: Where ``train`` writes by default, and so where the other commands look for the model.
DEFAULT_OUTPUT = TrainConfig.output_dir


def print_summary(lines, payload, args) -> None:
    """A long command's ending: a few human ``lines``, then, with ``--json``, ``payload`` as one
    JSON object on the last line (what scripts parse)."""
    for line in lines:
        print(line)
    if getattr(args, "json", False):
        print(json.dumps(payload, sort_keys=True, default=float))


#: ``dest`` roots of the configs the embedding commands share a parser with (see config_flags).
TTA_ROOT, ALIGN_ROOT = "tta.", "align."

#: The :class:`~facenet_tf.faces.aligner.AlignConfig` fields the embedding commands override.
ALIGN_OVERRIDES = ("method", "face", "detector", "detector_options")


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
    """``--align-method``, ``--face``, ``--detector`` and ``--detector-options`` from :class:`AlignConfig`'s fields, for the embedding
    commands: unset, the model's recorded alignment decides."""
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.faces.aligner import AlignConfig

    d = AlignConfig()
    add_config_flags(p, AlignConfig, root=ALIGN_ROOT, only=ALIGN_OVERRIDES,
                     shown={"method": f"the model's recorded method, else {d.method}",
                            "face": f"the model's recorded rule, else {d.face}",
                            "detector": f"the model's recorded detector, else {d.detector}",
                            "detector_options": "the model's recorded ones, else the detector's defaults"})


def embedding_options(args):
    """The ``--tta*`` flags given (``{field: value}``, replacing the model's recorded
    augmentation) and the alignment overrides given (``{field: value}`` of
    ``--align-method``/``--face``/``--detector``/``--detector-options``), each checked before any
    model is loaded (the options' names and values against the detector once it is known).

    Raises:
        FacenetError: a flag of the wrong type, out of range or not a choice; ``--align``
            with ``--no-align``.
    """
    import dataclasses

    from facenet_tf import fields
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.errors import FacenetError
    from facenet_tf.faces.aligner import AlignConfig
    from facenet_tf.serving.tta import TTAConfig

    if args.align and args.no_align:
        raise FacenetError("--align and --no-align exclude each other")
    tta = apply_flags(TTAConfig(), args, root=TTA_ROOT)
    tta.validate()
    align = apply_flags(AlignConfig(), args, root=ALIGN_ROOT)
    fields.validate(align)
    given = {f.name: getattr(tta, f.name) for f in dataclasses.fields(TTAConfig)
             if getattr(args, TTA_ROOT + f.name, None) is not None}
    return given, {name: getattr(align, name) for name in ALIGN_OVERRIDES
                   if getattr(args, ALIGN_ROOT + name, None) is not None}


def recognizer_from_args(args):
    """The ``--model`` :class:`~facenet_tf.recognition.FaceRecognizer`: ``--align`` / ``--no-align``,
    ``--align-method`` / ``--face`` / ``--detector`` and the ``--tta*`` flags as the library's
    policy takes them (:meth:`FaceRecognizer.load`)."""
    from facenet_tf.recognition import FaceRecognizer

    tta, overrides = embedding_options(args)
    align = False if args.no_align else (True if args.align else None)
    return FaceRecognizer.load(args.model, align=align, tta=tta, image_size=getattr(args, "image_size", None),
                               workers=0, **overrides)  # 0: processes where the detector needs them


def add_batch_arguments(p) -> None:
    """``--quiet`` (no progress bars) and ``--strict`` (the first bad image file stops the command)
    for the commands that read many photos."""
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--strict", action="store_true", help="stop at the first bad image file (default: skip it, "
                                                         "count it per reason, reasons on stderr)")


def add_report_arguments(p) -> None:
    """``--report DIR`` (an HTML page with figures, :mod:`facenet_tf.evaluation.report_html`) and the
    ownership flag for that folder."""
    from facenet_tf.ownership import add_allow_argument

    p.add_argument("--report", default=None, metavar="DIR",
                   help="also write DIR/index.html: ROC and DET curves, distance histograms with the threshold, "
                        "accuracy per fold, the hardest pairs' faces (needs the [report] extra)")
    add_allow_argument(p)


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

