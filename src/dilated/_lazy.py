"""Lazy package namespaces (PEP 562): a package lists its public names and the private module of each, and a name's
module is imported on first use, so that importing the package (and the ``dilated`` command's ``--help``) costs
nothing until a name is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public names live in ``exports`` (name -> module,
    relative to the package, e.g. ``"._fit"``). Each name is cached in the package once imported."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module attribute hook of PEP 562
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*namespace.get("__all__", ()), *exports})

    return __getattr__, __dir__
