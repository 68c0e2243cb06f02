"""Package builders: one module per ``PackageConfig.builder``, each with ``build()``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

BUILDERS = {"statistics": "opendata.transform.statistics",
            "measures": "opendata.transform.measures"}


def builder(name: str) -> Callable[..., Any]:
    """The ``build`` function of a package builder, imported lazily."""
    if name not in BUILDERS:
        raise ValueError(f"unknown package builder {name!r}; use one of {', '.join(BUILDERS)}")
    module = importlib.import_module(BUILDERS[name])
    build: Callable[..., Any] = module.build
    return build
