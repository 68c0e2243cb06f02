"""A whole online run against the replay server with fake credentials: they must leak nowhere."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SHARED
from helpers import opendata
from replay_server import Replay, serve, stop

FAKE = {"GENESIS_USERNAME": "fake-genesis-user-4711", "GENESIS_PASSWORD": "fake-genesis-pw-0815",
        "REGIONALSTATISTIK_TOKEN": "fake-regio-token-a1b2c3d4", "ZENSUS_TOKEN": "fake-zensus-token-e5f6"}
SECRETS = ("fake-genesis-pw-0815", "fake-regio-token-a1b2c3d4", "fake-zensus-token-e5f6",
           "fake-genesis-user-4711")


@pytest.fixture(scope="module")
def online_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str, Replay]]:
    """`opendata run` (online, because credentials are set) with its own Prefect home."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the replay server needs the shared recordings")
    server, replay = serve(SHARED / "genesis")
    try:
        yield _run(tmp_path_factory, replay)
    finally:
        stop(server)


def _run(tmp_path_factory: pytest.TempPathFactory, replay: Replay) -> tuple[Path, Path, str, Replay]:
    root = tmp_path_factory.mktemp("secrets")
    data, home = root / "data", root / "prefect-home"
    env = dict(FAKE) | {f"OPENDATA_{api.upper()}_BASE_URL": replay.url(api)
                        for api in ("genesis", "regionalstatistik", "zensus")}
    env |= {"OPENDATA_JOB_POLL_INTERVAL": "0", "PREFECT_HOME": str(home)}
    res = opendata("run", "--data-dir", str(data), env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return data, home, res.stdout + res.stderr, replay


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def test_run_was_online_and_sent_credentials(online_run: tuple[Path, Path, str, Replay]) -> None:
    data, _, out, replay = online_run
    assert "offline" not in out.split("summary:")[0].lower().replace("offline)", "")
    tablefile = replay.requests_to("data/tablefile")
    assert tablefile, "the replay server saw no tablefile request"
    sent = {r.headers.get("username", "") for r in tablefile}
    assert "fake-regio-token-a1b2c3d4" in sent and "fake-genesis-user-4711" in sent
    assert all("password" not in r.form and "username" not in r.form for r in tablefile)
    assert (data / "published" / "integration_statistics" / "1.0.0" / "datapackage.json").is_file()


def test_credentials_appear_nowhere(online_run: tuple[Path, Path, str, Replay]) -> None:
    data, home, out, _ = online_run
    for secret in SECRETS:
        assert secret not in out, "credential in the command output (logs)"
    checked = 0
    for path in _files(data) + _files(home):  # raw snapshots, manifests, reports, releases,
        blob = path.read_bytes()                # catalog, pages, and Prefect's database
        checked += 1                            # (flow run parameters, logs, artifacts)
        for secret in SECRETS:
            assert secret.encode() not in blob, f"credential found in {path}"
    assert checked > 50
    assert any(p.suffix == ".db" for p in _files(home)), "Prefect database not found to search"


def test_no_log_line_is_lost(online_run: tuple[Path, Path, str, Replay]) -> None:
    """The masking filter keeps %d/%.0f arguments numbers: no '--- Logging error ---'."""
    _, _, out, _ = online_run
    assert "Logging error" not in out
    assert "TypeError" not in out
    assert re.search(r"validated integration_statistics: \d+ errors, \d+ warnings", out)
    assert re.search(r"built population from population_kreise: \d+ rows", out)


def test_environment_is_untouched() -> None:
    for name in FAKE:
        assert name not in os.environ


def test_unverified_codes_are_reported_not_fatal(online_run: tuple[Path, Path, str, Replay]) -> None:
    data, _, out, replay = online_run
    names = {r.form.get("name") for r in replay.requests_to("data/tablefile")}
    assert {"12521-0040", "12711-01-03-4"} <= names  # an online run does try them
    assert "warning: unverified table 12521-0040 of source foreigners" in out
    runs = [json.loads(line) for line in (data / "state" / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["outcome"] == "success"
    assert any("unverified table 12711-01-03-4" in w for w in runs[-1]["warnings"])
