"""Shared pytest helpers: the read-only recordings in ../shared and a marker that skips without them."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared() -> Path:
    """Path of ../shared; skips the test when it is absent (e.g. in a fresh clone)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these tests need the shared recordings")
    return SHARED
