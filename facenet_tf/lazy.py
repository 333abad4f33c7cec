"""Names resolved on first use: a package's exports (PEP 562) and plug-ins kept in their module.

Configs, their field rules and the plug-in tables must import without TensorFlow (so that
``facenet-tf --help`` and a command's flags stay quick); the packages that also hold Keras
code export their names through :func:`exports`, and a heavy plug-in registers as a
:class:`Lazy` reference.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Tuple


@dataclasses.dataclass(frozen=True)
class Lazy:
    """A value that stays in its module until it is asked for: ``module.attribute``."""

    module: str
    attribute: str

    def resolve(self) -> Any:
        return getattr(importlib.import_module(self.module), self.attribute)


def exports(package: str, table: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``table`` (public name → module that defines it,
    absolute or relative to ``package``): each name is imported on first use and then kept."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = table[name] if "." in table[name] else f"{package}.{table[name]}"
        value = namespace[name] = Lazy(module, name).resolve()
        return value

    def __dir__() -> List[str]:
        return list(namespace.get("__all__", sorted(table)))

    return __getattr__, __dir__
