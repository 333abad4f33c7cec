"""Command-line flags generated from config dataclasses (:mod:`facenet_tf.fields`).

Every leaf field of a config (nested ones too) gets one flag whose help, choices, range and
default come from the field's :class:`~facenet_tf.fields.Rule` and the dataclass, so
nothing is restated by hand. Nested configs keep their fields' plain names
(``--identities-per-batch``) unless a prefix is given (``data.augment.*`` →
``--augment-*``); a rule's ``flag`` renames one (``model.weights`` → ``--backbone-weights``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict, Optional

from facenet_tf import fields


def flag_name(path: str, prefixes: Dict[str, str], field: Optional[dataclasses.Field] = None) -> str:
    """The flag (without ``--``) of a config path such as ``data.augment.flip``."""
    rule = fields.rule(field) if field is not None else None
    if rule is not None and rule.flag:
        return rule.flag
    parent, _, name = path.rpartition(".")
    return (prefixes.get(parent, "") + name).replace("_", "-")


def _converter(hint):
    inner, _ = fields._optional(hint)
    if typing_origin(inner) is tuple:  # sizes: "64" or "112x92", parsed by the config
        return str
    return inner if inner in (int, float, str) else str


def typing_origin(hint):
    import typing

    return typing.get_origin(hint)


def add_config_flags(p: argparse.ArgumentParser, cls, prefixes: Dict[str, str], defaults=None) -> None:
    """One flag per leaf field of ``cls``; ``dest`` is the field's path, default ``None`` (= not given)."""
    defaults = defaults if defaults is not None else cls()
    for path, hint, field in fields.leaves(cls):
        default = _get(defaults, path)
        text = fields.help_text(field, hint, default).replace("%", "%%")
        flag = f"--{flag_name(path, prefixes, field)}"
        if fields._optional(hint)[0] is bool:
            p.add_argument(flag, dest=path, default=None, action=argparse.BooleanOptionalAction, help=text)
        else:
            p.add_argument(flag, dest=path, default=None, type=_converter(hint), help=text,
                           metavar=path.rpartition(".")[2].upper())


def _get(config, path: str):
    for part in path.split("."):
        config = getattr(config, part) if config is not None else None
    return config


def with_value(config, path: str, value: Any):
    """``config`` with the field at ``path`` set to ``value`` (a ``None`` nested config is made from its defaults)."""
    import typing

    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    inner = getattr(config, head)
    if inner is None:  # e.g. data.augment switched off in a config file: a flag turns it on again
        inner = fields.nested_dataclass(typing.get_type_hints(type(config))[head])()
    return dataclasses.replace(config, **{head: with_value(inner, rest, value)})


def apply_flags(config, args: argparse.Namespace):
    """``config`` with every flag of :func:`add_config_flags` that was given."""
    for path, _, _ in fields.leaves(type(config)):
        value = getattr(args, path, None)
        if value is not None:
            config = with_value(config, path, value)
    return config
