"""Config field rules: each field's help, type and range, declared once and read by everyone.

A config dataclass declares a field with :func:`setting` instead of a bare default::

    epochs: int = setting(6, "passes of steps_per_epoch batches", low=1, high=100_000)

The rule (:class:`Rule`) lives in the field's metadata. Three readers use it:

* :func:`validate` (called by the library before any work): strict types from the type
  hints (``True`` is no ``int``, ``"5"`` no ``float``), ranges with an upper bound a
  machine can hold, and choices from a :class:`facenet_tf.registry.Registry` or a tuple;
* :func:`config_from_dict` (``--config FILE.json``): unknown keys by name, lists → tuples;
* the command line (:mod:`facenet_tf.cli.config_flags`): one flag per field, its help and
  choices generated from the rule, its default shown from the dataclass.

So a range is never restated in a help text or a second check, and a wrong value is one
line naming the field before any file is created.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

from facenet_tf.errors import FacenetError

_KEY = "facenet_tf"


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a config field accepts.

    Attributes:
        help: one line for the command line and the docs (no default: it is shown from
            the dataclass).
        low: smallest allowed number (inclusive), or ``None``.
        high: largest allowed number (inclusive), or ``None``.
        low_open: ``low`` itself is not allowed (``> low``).
        choices: allowed values: a tuple, or a :class:`~facenet_tf.registry.Registry`
            (its names, read when checked, so plug-ins registered later count).
        flag: the command-line flag, where the field's own name would be unclear.
    """

    help: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    choices: Any = None
    flag: Optional[str] = None

    def range_text(self) -> str:
        """``"1..100000"``, ``"> 0"``, ``">= 2"`` or ``""``."""
        low = f"{'> ' if self.low_open else '>= '}{_number(self.low)}" if self.low is not None else ""
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{_number(self.low)}..{_number(self.high)}"
        high = f"<= {_number(self.high)}" if self.high is not None else ""
        return ", ".join(x for x in (low, high) if x)

    def choice_names(self) -> Tuple[Any, ...]:
        if self.choices is None:
            return ()
        return tuple(self.choices.names()) if hasattr(self.choices, "names") else tuple(self.choices)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def setting(default: Any, help: str, *, low: Optional[float] = None, high: Optional[float] = None,  # noqa: A002
            low_open: bool = False, choices: Any = None, flag: Optional[str] = None) -> Any:
    """A dataclass field with ``default`` and its :class:`Rule` (see the module docstring)."""
    rule = Rule(help, low, high, low_open, choices, flag)
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed in a frozen config")
    return dataclasses.field(default=default, metadata={_KEY: rule})


def rule(field: dataclasses.Field) -> Optional[Rule]:
    """The :class:`Rule` of a dataclass field, or ``None`` for a field declared without one."""
    return field.metadata.get(_KEY)


def nested_dataclass(hint) -> Optional[type]:
    """The dataclass a type hint names (``AugmentConfig`` in ``Optional[AugmentConfig]``), or ``None``."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def leaves(cls, prefix: str = "") -> Iterator[Tuple[str, Any, dataclasses.Field]]:
    """``(path, type hint, field)`` of every non-dataclass field of ``cls``, depth first (``data.augment.flip``)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        nested = nested_dataclass(hints[field.name])
        if nested is not None:
            yield from leaves(nested, prefix + field.name + ".")
        else:
            yield prefix + field.name, hints[field.name], field


def _optional(hint) -> Tuple[Any, bool]:
    """``(inner hint, allows None)`` of ``Optional[X]`` / ``X``."""
    if typing.get_origin(hint) is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else Union[tuple(args)]), len(args) < len(typing.get_args(hint))
    return hint, False


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} " + "/".join(sorted({_type_name(a) for a in args}))
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(hint, str(hint))


def label(path: str, field: dataclasses.Field) -> str:
    """How messages name a field: its path, plus its flag where the rule renames it
    (``num_shards (--shards)``, ``mode (--tta)``)."""
    field_rule = rule(field)
    return f"{path} (--{field_rule.flag})" if field_rule is not None and field_rule.flag else path


def check_value(name: str, hint, value: Any, field_rule: Optional[Rule]) -> None:
    """Raise :class:`FacenetError` unless ``value`` has type ``hint`` and meets ``field_rule``."""
    inner, nullable = _optional(hint)
    if value is None:
        if nullable:
            return
        raise FacenetError(f"{name} must be {_type_name(inner)}; received null")
    if inner is float and isinstance(value, float) and not math.isfinite(value):
        raise FacenetError(f"{name} must be a finite number; received {value!r}")
    if not _has_type(inner, value):
        raise FacenetError(f"{name} must be {_type_name(inner)}; received {value!r} ({type(value).__name__})")
    if field_rule is None:
        return
    for item in (value if isinstance(value, tuple) else (value,)):
        _check_rule(name, item, field_rule)


def _has_type(hint, value) -> bool:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(args[0], v) for v in value)
        return len(value) == len(args) and all(_has_type(a, v) for a, v in zip(args, value))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return True


def _check_rule(name: str, value: Any, field_rule: Rule) -> None:
    names = field_rule.choice_names()
    if names and value not in names:
        raise FacenetError(f"{name} must be one of {', '.join(map(str, names))}; received {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = field_rule.low, field_rule.high
        too_low = low is not None and (value <= low if field_rule.low_open else value < low)
        if too_low or (high is not None and value > high):
            raise FacenetError(f"{name} must be {field_rule.range_text()}; received {value!r}")


def validate(config, prefix: str = "") -> None:
    """Check every field of a config dataclass (nested ones too) against its type and rule.

    Raises:
        FacenetError: the first field of the wrong type, out of range or not a choice,
            named by its path (``data.identities_per_batch``).
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        path = prefix + field.name
        nested = nested_dataclass(hints[field.name])
        if nested is not None:
            if value is None:
                check_value(path, hints[field.name], value, None)
            elif not isinstance(value, nested):
                raise FacenetError(f"{path} must be a {nested.__name__}; received {type(value).__name__}")
            else:
                validate(value, path + ".")
        else:
            check_value(label(path, field), hints[field.name], value, rule(field))


def to_dict(config) -> Dict[str, Any]:
    """A config dataclass (nested ones too) as JSON values; tuples become lists."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def from_dict(cls, values: Dict[str, Any], where: str = "config"):
    """Build dataclass ``cls`` from JSON ``values``; missing keys keep their defaults.

    Nested dataclass fields take an object (or ``null`` where the field is optional); lists
    become tuples. Types and ranges are checked by :func:`validate`, which the library
    calls before any work.

    Raises:
        FacenetError: not an object, or a key ``cls`` does not have.
    """
    if not isinstance(values, dict):
        raise FacenetError(f"{where} must be a JSON object; received {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FacenetError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        nested = nested_dataclass(hints[name])
        if nested is not None and value is not None:
            value = from_dict(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def options_config(cls, options: Sequence[str], base: Dict[str, Any], where: str, owner: str):
    """An instance of config dataclass ``cls`` (a plug-in's settings) from ``NAME=VALUE`` texts
    (``--detector-options upsample=2``), each value read as its field's type, over ``base``
    values and then the fields' defaults; validated (:func:`validate`).

    Args:
        options: ``NAME=VALUE`` texts; a later one for a name replaces an earlier one.
        base: ``{name: value}`` taken where no option names the field.
        where: the option's name in messages (``"detector_options"``).
        owner: what the settings belong to, in messages (``"detector dlib_hog"``).

    Raises:
        FacenetError: one line: an option not ``NAME=VALUE``, a name ``cls`` lacks (with the
            names it has), or a value of the wrong type or range.
    """
    hints = typing.get_type_hints(cls)
    values = dict(base)
    for option in options:
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FacenetError(f"{where} must be NAME=VALUE each; received {option!r}")
        if key not in hints:
            raise FacenetError(f"{where}: {owner} takes no {key}; its settings: {', '.join(hints) or 'none'}")
        values[key] = _read_text(f"{where}: {key}", text.strip(), _optional(hints[key])[0])
    config = cls(**values)
    validate(config, prefix=f"{where}: ")
    return config


def _read_text(name: str, text: str, hint) -> Any:
    """``text`` as a value of type ``hint`` (int, float, bool as true/false, or text)."""
    try:
        if hint is bool:
            return {"true": True, "false": False}[text.lower()]
        return hint(text) if hint in (int, float) else text
    except (KeyError, ValueError):
        raise FacenetError(f"{name} must be {_type_name(hint)}; received {text!r}") from None


def is_list(hint) -> bool:
    """Whether ``hint`` (or the ``X`` of ``Optional[X]``) is a list of any length, ``Tuple[T, ...]``."""
    inner, _ = _optional(hint)
    args = typing.get_args(inner)
    return typing.get_origin(inner) is tuple and len(args) == 2 and args[1] is Ellipsis


def _shown(hint, default: Any) -> str:
    """A default as typed on a command line: ``112x92`` for a size, ``int8 float16`` for a list."""
    if not isinstance(default, tuple):
        return str(default)
    if is_list(hint):
        return " ".join(map(str, default)) if default else "none"
    return "x".join(map(str, default))


def help_text(field: dataclasses.Field, hint, shown_default: Any = dataclasses.MISSING) -> str:
    """The command-line help of a field: its rule's help, choices, range and default."""
    field_rule = rule(field)
    text = field_rule.help if field_rule else field.name.replace("_", " ")
    extra = []
    if field_rule is not None:
        if field_rule.choices is not None and hasattr(field_rule.choices, "help"):
            extra.append(field_rule.choices.help())
        elif field_rule.choice_names():
            extra.append("one of " + ", ".join(map(str, field_rule.choice_names())))
        if field_rule.range_text():
            extra.append(field_rule.range_text())
    default = field.default if shown_default is dataclasses.MISSING else shown_default
    if default is not None and not dataclasses.is_dataclass(default):
        extra.append(f"default: {_shown(hint, default)}")
    return text + (f" ({'; '.join(extra)})" if extra else "")
