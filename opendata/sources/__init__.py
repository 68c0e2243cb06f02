"""Source kinds: one module per kind, each with ``fetch`` and ``read``."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from opendata.snapshot import FetchedFile


@dataclass
class Fetched:
    """What a kind's fetch returns: files to snapshot and the hash that decides 'unchanged' (no
    files and ``not_downloaded`` set: the previous snapshot still holds the source)."""

    files: list[FetchedFile]
    content_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)
    not_downloaded: str = ""  # why nothing was downloaded: the previous snapshot still holds it


def kind_module(kind: str) -> ModuleType:
    """The module implementing a source kind."""
    if kind == "genesis":
        from opendata.sources import genesis
        return genesis
    if kind == "table":
        from opendata.sources import table
        return table
    raise ValueError(f"unknown source kind {kind!r}")
