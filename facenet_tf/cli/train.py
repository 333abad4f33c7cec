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
import json
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
    from facenet_tf.cli.config_flags import flags_named
    from facenet_tf.training import TrainConfig, train

    with flags_named(TrainConfig, PREFIXES):
        result = train(config_from_args(args), verbose=args.verbose, restart=args.restart,
                       allow_existing_files=args.allow_existing_files)
    if result.already_finished:
        print(f"the run in {result.output_dir} already finished (same configuration): nothing to do; "
              f"--restart trains it again")
        print(json.dumps(result.metrics, sort_keys=True, default=float))
        return 0
    print(f"wrote {os.path.join(result.output_dir, 'model.keras')}, saved_model/, metadata.json, metrics.json")
    print(f"TensorBoard: tensorboard --logdir {shlex.quote(os.path.join(result.output_dir, 'logs'))}")
    print(json.dumps(result.metrics, sort_keys=True, default=float))
    return 0
