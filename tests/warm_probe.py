"""What a warm child runs in tests/test_warm.py and tests/test_schedule.py: it records where it ran."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from prefect import flow


def record(path: str, module: str = "colorsys") -> None:
    """Write this process's pid and whether ``module`` was imported before the call."""
    Path(path).write_text(json.dumps({"pid": os.getpid(), "preloaded": module in sys.modules}),
                          encoding="utf-8")


@flow(name="warm-probe")
def probe(path: str) -> int:
    """A flow run that records its process."""
    record(path)
    return os.getpid()
