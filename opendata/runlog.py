"""A small append-only log of runs (state/runs.jsonl), read by `opendata status`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opendata.paths import Paths

log = logging.getLogger(__name__)


def now_iso() -> str:
    """UTC now as ISO 8601 with Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def append(paths: Paths, entry: dict[str, Any]) -> None:
    """Append one run record."""
    paths.state.mkdir(parents=True, exist_ok=True)
    with (paths.state / "runs.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def read(paths: Paths) -> list[dict[str, Any]]:
    """All run records, oldest first (unreadable lines are skipped)."""
    path: Path = paths.state / "runs.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def append_failure(paths: Paths, entry: dict[str, Any]) -> bool:
    """Append a failed run's record; when even that cannot be written, warn and return False, so
    that the error the user sees (and the exit code) stays the original one."""
    try:
        append(paths, entry)
    except OSError as exc:
        log.warning("could not record this failed run in %s (%s: %s); 'opendata status' will not "
                    "show it", paths.state / "runs.jsonl", type(exc).__name__, exc.strerror or exc)
        return False
    return True
