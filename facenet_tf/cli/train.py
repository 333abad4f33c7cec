"""``facenet-tf train``: ``--config FILE.json`` and flags → :class:`TrainConfig` → :func:`train`.

Every field of :class:`TrainConfig` (nested ones included) has a flag, generated from the
dataclasses so that defaults and help live in one place: ``data.*`` and ``model.*``
fields keep their plain names (``--identities-per-batch``, ``--backbone``),
``model.weights`` is ``--backbone-weights``, ``data.augment.*`` are ``--augment-*`` and
``--no-augment`` switches augmentation off. A flag given overrides ``--config``, which
overrides the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing
from typing import Any, Dict, List, Tuple

HELP = "train an embedding model with online triplet mining"

#: config path → flag name, where the field's own name would be unclear.
RENAMES = {"model.weights": "backbone-weights"}
#: nested config → flag prefix ("" = the field's own name).
PREFIXES = {"data": "", "model": "", "data.augment": "augment-"}
HELPS = {
    "data.data_dir": "folder with one sub-folder of images per identity, or TFRecord shards (default: built-in synthetic identities)",
    "data.identities_per_batch": "P",
    "data.strict": "stop at the first bad image file or unreadable folder (one line naming it, exit 2) instead of "
                   "skipping and counting it",
    "data.max_image_pixels": "refuse images above this many pixels, read from their header",
    "data.data_service": "grpc://HOST:PORT of a tf.data service dispatcher (prepared shards the workers can read)",
    "data.images_per_identity": "K",
    "data.validation_identities": "hold out the last N identities, evaluated each epoch (default: 10%% of identities)",
    "model.image_size": "N or HxW in pixels (default: 64x64, or the --init-from model's own size)",
    "model.backbone": "small_cnn, mobilenet_v2 or inception_resnet_v2",
    "model.weights": "local Keras weights file for a keras.applications backbone, or 'imagenet' for the file in ~/.keras/models",
    "output_dir": "where model.keras, saved_model/, logs/ and metrics go",
    "loss": "semihard, hard, soft_hard or batch_all",
    "distance": "squared_l2, l2 or cosine (default: squared_l2, or the --init-from model's own distance)",
    "learning_rate": "peak learning rate (default: 2e-3 from scratch, 1e-5 with --init-from)",
    "init_from": "start from a local model: model directory, .keras file, SavedModel dir or .weights.h5",
    "freeze_backbone_epochs": "train only the embedding head for N epochs, then unfreeze at a lower learning rate",
    "strategy": "tf.distribute strategy: auto, default, mirrored or multi_worker (TF_CONFIG)",
    "jit_compile": "compile the training step with XLA",
    "deterministic": "TensorFlow op determinism: two runs give bit-identical weights on CPU",
    "keep_best": "with --init-from: evaluate the start model first and keep the best of it and every epoch",
    "freeze_normalization": "with --init-from: keep BatchNormalization / affine statistics fixed",
}


def _leaves(cls, prefix: str = "") -> List[Tuple[str, Any, Any]]:
    """``(config path, type hint, default)`` of every non-dataclass field, depth first."""
    from facenet_tf.training.config import nested_dataclass

    out = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        path = prefix + field.name
        hint = hints[field.name]
        nested = nested_dataclass(hint)
        if nested is not None:
            out += _leaves(nested, path + ".")
        else:
            out.append((path, hint, field.default))
    return out


def flag_name(path: str) -> str:
    """The command-line flag (without ``--``) of a config path such as ``data.augment.flip``."""
    if path in RENAMES:
        return RENAMES[path]
    parent, _, name = path.rpartition(".")
    return (PREFIXES.get(parent, "") + name).replace("_", "-")


def _converter(hint, default):
    # Sizes ("64", "112x92") stay text here; train() parses them with its one-line error.
    options = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    base = next((t for t in options if t is not type(None)), str)
    return base if base in (int, float, str) else str


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.training import TrainConfig

    p.add_argument("--config", default=None, metavar="FILE.json",
                   help="a TrainConfig as JSON (as written to metadata.json 'config'); flags given override it")
    defaults = TrainConfig()
    for path, hint, _ in _leaves(TrainConfig):
        default = _get(defaults, path)
        shown = "x".join(map(str, default)) if isinstance(default, tuple) else default
        text = HELPS.get(path, f"config key {path}")
        text += "" if "(default:" in text else f" (default: {shown})"
        if hint is bool or isinstance(default, bool):
            p.add_argument(f"--{flag_name(path)}", dest=path, default=None, action=argparse.BooleanOptionalAction,
                           help=text)
        else:
            p.add_argument(f"--{flag_name(path)}", dest=path, default=None, type=_converter(hint, default), help=text,
                           metavar=path.rpartition(".")[2].upper())
    p.add_argument("--no-augment", action="store_true", help="disable augmentation (data.augment = null)")
    p.add_argument("--restart", action="store_true",
                   help="start over even if --output-dir holds this run (default: resume a killed run, skip a finished one)")
    from facenet_tf.ownership import add_allow_argument

    add_allow_argument(p)
    p.add_argument("--verbose", type=int, nargs="?", const=2, default=1,
                   help="0 silent, 1 progress bar (default), 2 (or --verbose alone) one line per epoch and, on an "
                        "error, the Python traceback")


def _get(config, path: str):
    for part in path.split("."):
        config = getattr(config, part)
    return config


def _with(config, path: str, value):
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    inner = getattr(config, head)
    if inner is None:  # data.augment switched off in the config file, a flag turns it on again
        from facenet_tf.data import AugmentConfig

        inner = AugmentConfig()
    return dataclasses.replace(config, **{head: _with(inner, rest, value)})


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of ``--config`` (or the defaults) with every given flag applied."""
    from facenet_tf.training import TrainConfig, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    given: Dict[str, Any] = {k: v for k, v in vars(args).items()
                             if "." in k or k in {f.name for f in dataclasses.fields(TrainConfig)}}
    for path, value in given.items():
        if value is not None:
            config = _with(config, path, value)
    if args.no_augment:
        config = _with(config, "data.augment", None)
    return config


def run(args: argparse.Namespace) -> int:
    from facenet_tf.training import train

    result = train(config_from_args(args), verbose=args.verbose, restart=args.restart,
                   allow_existing_files=args.allow_existing_files)
    if result.already_finished:
        print(f"the run in {result.output_dir} already finished (same configuration): nothing to do; "
              f"--restart trains it again")
        print(json.dumps(result.metrics, sort_keys=True, default=float))
        return 0
    print(f"wrote {os.path.join(result.output_dir, 'model.keras')}, saved_model/, metadata.json, metrics.json")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(result.output_dir, 'logs')}")
    print(json.dumps(result.metrics, sort_keys=True, default=float))
    return 0
