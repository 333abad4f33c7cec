"""Command-line flags generated from config dataclasses (:mod:`facenet_tf.fields`).

Every leaf field of a config (nested ones too) gets one flag whose help, choices, range and
default come from the field's :class:`~facenet_tf.fields.Rule` and the dataclass, so
nothing is restated by hand. Nested configs keep their fields' plain names
(``--identities-per-batch``) unless a prefix is given (``data.augment.*`` →
``--augment-*``); a rule's ``flag`` renames one (``model.weights`` → ``--backbone-weights``).

Flags are read as text and converted by :func:`apply_flags`, so a wrongly typed value is
one :class:`~facenet_tf.errors.FacenetError` line naming the field (``epochs must be an
integer; received 'six'``), exit 2, as an out-of-range one is, not argparse's usage
screen. Several configs can share one parser: ``root`` keeps their ``dest`` apart
(``tta.seed`` beside evaluate's ``seed``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import typing
from typing import Any, Collection, Dict, Mapping, Optional

from facenet_tf import fields
from facenet_tf.errors import FacenetError


def flag_name(path: str, prefixes: Dict[str, str], field: Optional[dataclasses.Field] = None) -> str:
    """The flag (without ``--``) of a config path such as ``data.augment.flip``."""
    rule = fields.rule(field) if field is not None else None
    if rule is not None and rule.flag:
        return rule.flag
    parent, _, name = path.rpartition(".")
    return (prefixes.get(parent, "") + name).replace("_", "-")


@contextlib.contextmanager
def flags_named(cls, prefixes: Optional[Dict[str, str]] = None):
    """Re-raise a :class:`FacenetError` that names a nested field of ``cls`` by its config path
    (``data.identities_per_batch must be …``) with the field's flag added, so a command-line user
    reads the flag they typed (``data.identities_per_batch (--identities-per-batch) must be …``)."""
    try:
        yield
    except FacenetError as err:
        text = str(err)
        for path, _, field in fields.leaves(cls):
            if "." in path and text.startswith(path + " ") and not text.startswith(path + " (--"):
                flag = flag_name(path, prefixes or {}, field)
                raise FacenetError(f"{path} (--{flag}){text[len(path):]}") from err
        raise


def add_config_flags(p: argparse.ArgumentParser, cls, prefixes: Optional[Dict[str, str]] = None, defaults=None, *,
                     root: str = "", only: Optional[Collection[str]] = None, skip: Collection[str] = (),
                     shown: Optional[Mapping[str, str]] = None) -> None:
    """One flag per leaf field of ``cls``; its ``dest`` is ``root`` + the field's path, default ``None`` (= not given).

    Args:
        prefixes: nested config path → flag prefix (``{"data.augment": "augment-"}``).
        defaults: the config whose values the help shows (default ``cls()``).
        root: ``dest`` prefix, for a second config on the same parser (``"tta."``).
        only: the paths to offer (default all); ``skip``: paths left to a hand-written flag.
        shown: path → the default as words, where the flag's absence means more than a value
            (``"the model's recorded method, else arcface"``).
    """
    defaults = defaults if defaults is not None else cls()
    for path, hint, field in fields.leaves(cls):
        if path in skip or (only is not None and path not in only):
            continue
        default = (shown or {}).get(path, _get(defaults, path))
        text = fields.help_text(field, hint, default).replace("%", "%%")
        flag = f"--{flag_name(path, prefixes or {}, field)}"
        metavar = path.rpartition(".")[2].upper()
        if fields._optional(hint)[0] is bool:
            p.add_argument(flag, dest=root + path, default=None, action=argparse.BooleanOptionalAction, help=text)
        elif fields.is_list(hint):
            p.add_argument(flag, dest=root + path, default=None, nargs="+", help=text, metavar=metavar)
        else:
            p.add_argument(flag, dest=root + path, default=None, help=text, metavar=metavar)


def _get(config, path: str):
    for part in path.split("."):
        config = getattr(config, part) if config is not None else None
    return config


def parse_flag(path: str, hint, field: dataclasses.Field, value: Any) -> Any:
    """The value of a flag as given (text, a list of texts, a bool) in the field's type.

    Sizes (``"112x92"``) stay text for the config to parse; numbers become ``int``/``float``.

    Raises:
        FacenetError: text that is not a number where the field takes one, naming the field.
    """
    inner, _ = fields._optional(hint)
    if isinstance(value, list):
        item = typing.get_args(inner)[0]
        return tuple(parse_flag(path, item, field, v) for v in value)
    if inner in (int, float) and isinstance(value, str):
        try:
            return inner(value.strip())
        except ValueError:
            kind = "an integer" if inner is int else "a number"
            raise FacenetError(f"{fields.label(path, field)} must be {kind}; received {value!r}") from None
    return value


def with_value(config, path: str, value: Any):
    """``config`` with the field at ``path`` set to ``value`` (a ``None`` nested config is made from its defaults)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    inner = getattr(config, head)
    if inner is None:  # e.g. data.augment switched off in a config file: a flag turns it on again
        inner = fields.nested_dataclass(typing.get_type_hints(type(config))[head])()
    return dataclasses.replace(config, **{head: with_value(inner, rest, value)})


def apply_flags(config, args: argparse.Namespace, root: str = ""):
    """``config`` with every flag of :func:`add_config_flags` that was given, in the field's type.

    Raises:
        FacenetError: a value that is not of the field's type (see :func:`parse_flag`).
    """
    for path, hint, field in fields.leaves(type(config)):
        value = getattr(args, root + path, None)
        if value is not None:
            config = with_value(config, path, parse_flag(path, hint, field, value))
    return config
