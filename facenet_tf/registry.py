"""Named plug-in tables: losses, backbones, strategies, alignment methods, indexes, importers.

A :class:`Registry` maps a name (what a user types: ``--loss semihard``) to an entry and a
one-line help text. Each entry registers itself in the module that defines it, so adding a
loss or a backbone is one module plus its tests: the CLI's choices and help, config
validation and the lookups all read the table. An entry whose module is heavy (Keras
classes) may be registered as a :class:`~facenet_tf.lazy.Lazy` reference, resolved on its
first lookup, so that the names and help (``--help``) cost no import.

Entries live in the packages a registry names (``plugins``); the first lookup imports
those packages (each package's ``__init__`` imports its modules), so the table is complete
whichever module asked first, and a lower layer (``models/``) can look up entries that a
higher one (``pretrained/``) provides without importing it at module level.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, Generic, Iterator, Optional, Sequence, Tuple, TypeVar

from facenet_tf.errors import FacenetError
from facenet_tf.lazy import Lazy

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plug-in: its ``name``, the registered ``value`` and a one-line ``help``."""

    name: str
    value: T
    help: str


class Registry(Generic[T]):
    """A table of named plug-ins of one kind.

    Args:
        kind: what the entries are, for messages (``"loss"``).
        argument: the option that names an entry, for errors (``"--loss"``).
        plugins: packages whose import registers every entry (imported on first lookup).
    """

    def __init__(self, kind: str, argument: str, plugins: Sequence[str] = ()):
        self.kind = kind
        self.argument = argument
        self._plugins = tuple(plugins)
        self._loaded = not self._plugins
        self._entries: Dict[str, Entry[T]] = {}

    def register(self, name: str, value: Optional[T] = None, *, help: str) -> Any:  # noqa: A002 - argparse's word
        """Add ``value`` under ``name``; without ``value``, a decorator that registers what it decorates.

        Raises:
            ValueError: ``name`` taken by another value (two plug-ins claiming one name).
        """
        def add(item: T) -> T:
            previous = self._entries.get(name)
            if previous is not None and previous.value is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, item, help)
            return item

        return add if value is None else add(value)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for package in self._plugins:
                importlib.import_module(package)

    def names(self) -> Tuple[str, ...]:
        """Registered names, in registration order."""
        self._load()
        return tuple(self._entries)

    def entries(self) -> Tuple[Entry[T], ...]:
        """Every entry, its value resolved (a :class:`Lazy` one imported)."""
        return tuple(self._resolved(name) for name in self.names())

    def _resolved(self, name: str) -> Entry[T]:
        entry = self._entries[name]
        if isinstance(entry.value, Lazy):
            entry = self._entries[name] = Entry(name, entry.value.resolve(), entry.help)
        return entry

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def check(self, name: str, argument: Optional[str] = None) -> str:
        """``name`` when registered; else :class:`FacenetError` naming the option, the choices and the value."""
        if name not in self:
            raise FacenetError(f"{argument or self.argument} must be one of {', '.join(self.names())}; "
                               f"received {name!r}")
        return name

    def get(self, name: str, argument: Optional[str] = None) -> T:
        """The entry registered as ``name`` (see :meth:`check` for the error)."""
        return self._resolved(self.check(name, argument)).value

    def help(self) -> str:
        """``"name: help; name: help"`` for a CLI help text."""
        self._load()
        return "; ".join(f"{e.name}: {e.help}" for e in self._entries.values())

    def build(self, name: str, *args, argument: Optional[str] = None, **kwargs) -> Any:
        """Call the entry registered as ``name`` (a class or factory) with the arguments."""
        factory: Callable = self.get(name, argument)  # type: ignore[assignment]
        return factory(*args, **kwargs)
