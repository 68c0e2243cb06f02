"""Credentials: sent as request headers, never in forms, manifests, diagnosis files or logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from replay_server import Fault, Replay
from test_genesis import POLICY, make_config, make_source

from opendata import secrets
from opendata.config import ApiConfig
from opendata.errors import TerminalFetchError
from opendata.snapshot import dump_json, store
from opendata.sources import genesis

USER, PASSWORD, TOKEN = "fake-user-4b1e9c", "fake-pass-77d0aa", "fake-token-e3f812"


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    for api in ("GENESIS", "REGIONALSTATISTIK", "ZENSUS"):
        for suffix in ("TOKEN", "USERNAME", "PASSWORD"):
            monkeypatch.delenv(f"{api}_{suffix}", raising=False)
    monkeypatch.delenv(secrets.PREFECT_OPT_IN, raising=False)
    monkeypatch.setenv("REGIONALSTATISTIK_USERNAME", USER)
    monkeypatch.setenv("REGIONALSTATISTIK_PASSWORD", PASSWORD)
    monkeypatch.setenv("ZENSUS_TOKEN", TOKEN)


def all_text(folder: Path) -> str:
    """Every file below ``folder`` decoded leniently, concatenated."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*"))
                     if p.is_file())


@pytest.mark.shared
def test_credentials_go_in_headers_and_nowhere_else(replay: Replay, creds: None, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    src = make_source("12411-01-01-4", "regionalstatistik", language="de")
    echo = {"Status": {"Code": 0, "Content": "erfolgreich"},
            "Parameter": {"name": src.table, "username": USER, "password": PASSWORD},
            "Object": {"Code": src.table, "Content": "Titel", "Updated": "31.03.2025 11:18:07h"}}
    replay.inject(Fault("body", body=json.dumps(echo).encode(), content_type="application/json",
                        endpoint="metadata/table"))
    got = genesis.fetch(src, make_config(replay), policy=POLICY, diag_dir=tmp_path / "failed")
    snap = store(tmp_path / "raw", src.id, "genesis", got.files, got.content_sha256)
    replay.inject(Fault("body", body=b"<html>maintenance</html>", endpoint="data/tablefile"))
    with pytest.raises(TerminalFetchError):
        genesis.fetch(src, make_config(replay), policy=POLICY, diag_dir=tmp_path / "failed")
    assert len(replay.received) == 3
    for r in replay.received:
        assert (r.headers["username"], r.headers["password"]) == (USER, PASSWORD)
        assert USER.encode() not in r.raw and PASSWORD.encode() not in r.raw
    assert json.loads(snap.read("metadata"))["Parameter"] == {"name": src.table}
    assert (tmp_path / "failed" / src.id).is_dir()
    text = all_text(tmp_path) + caplog.text + dump_json(got.meta)
    text += "".join(dump_json({"p": f.params, "h": f.headers}) for f in got.files)
    assert USER not in text and PASSWORD not in text


@pytest.mark.shared
def test_token_is_username_with_empty_password(replay: Replay, creds: None) -> None:
    src = make_source("1000A-0000", "zensus", language="en")
    genesis.fetch(src, make_config(replay), policy=POLICY)
    assert {(r.headers["username"], r.headers["password"]) for r in replay.received} == {(TOKEN, "")}


@pytest.mark.shared
def test_anonymous_without_credentials(replay: Replay, creds: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZENSUS_TOKEN")
    genesis.fetch(make_source("1000A-0000", "zensus", language="de"), make_config(replay), policy=POLICY)
    assert all("username" not in r.headers for r in replay.received)


def test_credentials_from_env(creds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert secrets.credentials(ApiConfig("r", "http://x/", "REGIONALSTATISTIK")) == (USER, PASSWORD)
    assert secrets.credentials(ApiConfig("z", "http://x/", "zensus")) == (TOKEN, "")
    assert secrets.credentials(ApiConfig("g", "http://x/", "GENESIS")) is None
    monkeypatch.setenv("REGIONALSTATISTIK_TOKEN", "tok-123")
    assert secrets.credentials(ApiConfig("r", "http://x/", "REGIONALSTATISTIK")) == ("tok-123", "")


def test_redact_masks_every_known_value(creds: None) -> None:
    text = f"user {USER} pass {PASSWORD} token {TOKEN} other"
    assert secrets.redact(text) == "user *** pass *** token *** other"
    assert secrets.redact_bytes(f"x{PASSWORD}y".encode()) == b"x***y"


def test_redacting_filter(creds: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_redacting_filter")
    log.addFilter(secrets.RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test_redacting_filter"):
        log.info("login %s with %s", USER, PASSWORD)
    assert caplog.records[0].getMessage() == "login *** with ***"


def test_redacting_filter_keeps_number_formats(creds: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_redacting_filter_numbers")
    log.addFilter(secrets.RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test_redacting_filter_numbers"):
        log.info("built %d rows in %.0f s for %s", 249, 1.4, TOKEN)
        log.info("%(n)d polls by %(who)s", {"n": 3, "who": USER})
    assert [r.getMessage() for r in caplog.records] == ["built 249 rows in 1 s for ***",
                                                        "3 polls by ***"]


def test_has_credentials(creds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from opendata.config import Config, PackageConfig
    apis = {"regionalstatistik": ApiConfig("regionalstatistik", "http://x/", "REGIONALSTATISTIK"),
            "genesis": ApiConfig("genesis", "http://x/", "GENESIS")}
    one = make_source("12411-01-01-4", "regionalstatistik")
    config = Config(Path("t.toml"), [one], {"p": PackageConfig("p", "statistics", {})}, apis, {}, {}, {})
    assert secrets.has_credentials(config)
    config.sources.append(make_source("12531-0043", "genesis"))
    assert not secrets.has_credentials(config)
