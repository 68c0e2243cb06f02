"""Shared pytest helpers: the read-only recordings in ../shared and a marker that skips without them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from replay_server import Replay, serve, stop

from opendata import config as config_mod
from opendata.paths import Paths

# Prefect reads its settings at import time: give the tests their own home, no analytics,
# and an ephemeral server (never a real PREFECT_API_URL from the developer's shell).
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ.pop("PREFECT_API_URL", None)
for _name in ("GENESIS", "REGIONALSTATISTIK", "ZENSUS"):
    for _suffix in ("_TOKEN", "_USERNAME", "_PASSWORD"):
        os.environ.pop(_name + _suffix, None)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared() -> Path:
    """Path of ../shared; skips the test when it is absent (e.g. in a fresh clone)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these tests need the shared recordings")
    return SHARED


@pytest.fixture
def replay(shared: Path) -> Iterator[Replay]:
    """A GENESIS replay server on 127.0.0.1 (tests/replay_server.py); skips without ../shared."""
    server, state = serve(shared / "genesis")
    try:
        yield state
    finally:
        stop(server)


@pytest.fixture
def replay_registry(replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> tuple[config_mod.Config, Paths]:
    """The repository's registry with every API pointed at the replay server, no credentials;
    an empty data dir."""
    for api in ("genesis", "regionalstatistik", "zensus"):
        monkeypatch.setenv(f"OPENDATA_{api.upper()}_BASE_URL", replay.url(api))
        for suffix in ("TOKEN", "USERNAME", "PASSWORD"):
            monkeypatch.delenv(f"{api.upper()}_{suffix}", raising=False)
    return config_mod.load(), Paths(tmp_path / "data")
