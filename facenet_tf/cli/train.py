"""``facenet-tf train``: ``--config FILE.json`` and flags → :class:`TrainConfig` → :func:`train`.

Every field of :class:`TrainConfig` (nested ones included) has a flag, generated from the
fields' rules (:mod:`facenet_tf.cli.config_flags`) so that help, choices, ranges and
defaults live in one place: ``data.*`` and ``model.*`` fields keep their plain names
(``--identities-per-batch``, ``--backbone``), ``model.weights`` is ``--backbone-weights``,
``data.augment.*`` are ``--augment-*`` and ``--no-augment`` switches augmentation off. A
flag given overrides ``--config``, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import os
import shlex

HELP = "train an embedding model with online triplet mining"

#: nested config → flag prefix ("" = the field's own name).
PREFIXES = {"data": "", "model": "", "data.augment": "augment-"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.training import TrainConfig

    p.add_argument("--config", default=None, metavar="FILE.json",
                   help="a TrainConfig as JSON (as written to metadata.json 'config'); flags given override it")
    add_config_flags(p, TrainConfig, PREFIXES)
    p.add_argument("--no-augment", action="store_true", help="disable augmentation (data.augment = null)")
    p.add_argument("--restart", action="store_true",
                   help="start over even if --output-dir holds this run (default: resume a killed run, skip a finished one)")
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)
    p.add_argument("--verbose", type=int, nargs="?", const=2, default=1,
                   help="0 silent, 1 progress bar (default), 2 (or --verbose alone) one line per epoch and, on an "
                        "error, the Python traceback")


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of ``--config`` (or the defaults) with every given flag applied."""
    from facenet_tf.cli.config_flags import apply_flags, with_value
    from facenet_tf.training import TrainConfig, load_config

    config = apply_flags(load_config(args.config) if args.config else TrainConfig(), args)
    if args.no_augment:
        config = with_value(config, "data.augment", None)
    return config


def run(args: argparse.Namespace) -> int:
    from facenet_tf.cli.common import print_summary
    from facenet_tf.cli.config_flags import flags_named
    from facenet_tf.training.config import TrainConfig

    config = config_from_args(args)
    with flags_named(TrainConfig, PREFIXES):
        config.validate()  # a wrong flag is one line before TensorFlow is imported
        from facenet_tf.training.run import train

        result = train(config, verbose=args.verbose, restart=args.restart,
                       allow_existing_files=args.allow_existing_files)
    if result.already_finished:
        lines = [f"the run in {result.output_dir} already finished (same configuration): nothing to do; "
                 f"--restart trains it again"]
    else:
        lines = [f"wrote {os.path.join(result.output_dir, 'model.keras')}, saved_model/, metadata.json, metrics.json"]
    lines += [_figures(result.metrics),
              f"TensorBoard: tensorboard --logdir {shlex.quote(os.path.join(result.output_dir, 'logs'))}"]
    print_summary(lines, result.metrics, args)
    return 0


def _figures(metrics) -> str:
    """One line of the run's figures: final loss and, with held-out identities, their verification."""
    loss = metrics.get("final_loss")
    text = f"final loss {loss:.4f}" if loss is not None else "no epoch trained"
    held_out = metrics.get("validation") or {}
    if "accuracy" in held_out:
        text += (f"; held-out identities: accuracy {held_out['accuracy']:.4f}, AUC {held_out.get('auc', float('nan')):.4f}"
                 f" (all figures in metrics.json)")
    return text
