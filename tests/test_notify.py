"""Webhook notifications: payload shapes against a real HTTP server on 127.0.0.1, never raising."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
from helpers import copy_config, copy_raw, edit_city_cell, opendata
from pytest_httpserver import HTTPServer

from opendata import notify
from opendata.publish import Outcome


def _outcome(published: bool = True) -> Outcome:
    return Outcome("integration_measures", "1.1.0" if published else None, "1.0.0",
                   "measures: 1 rows added", {"measures": 6}, published=published)


def _bodies(server: HTTPServer) -> list[dict[str, object]]:
    return [json.loads(req.get_data(as_text=True)) for req, _ in server.log]


def test_release_payload_reaches_the_webhook(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hooks/abc", method="POST").respond_with_data("ok")
    sent = notify.releases([_outcome(), _outcome(published=False)],
                           base_url="https://example.org/integration/",
                           url=httpserver.url_for("/hooks/abc"))
    assert sent == 1
    [body] = _bodies(httpserver)
    assert body["event"] == "release"
    assert body["package"] == "integration_measures" and body["version"] == "1.1.0"
    assert body["summary"] == "measures: 1 rows added" and body["error"] is None
    assert body["url"] == "https://example.org/integration/integration_measures/1.1.0/"
    assert "integration_measures 1.1.0 published" in str(body["text"])
    req, _ = httpserver.log[0]
    assert req.headers["Content-Type"] == "application/json"


def test_failure_payload_is_redacted(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESIS_PASSWORD", "s3cret-passw0rd-value")
    monkeypatch.setenv(notify.WEBHOOK_ENV, httpserver.url_for("/hook"))
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    assert notify.failure("login failed for s3cret-passw0rd-value at genesis", "run", 3)
    [body] = _bodies(httpserver)
    assert body["event"] == "failure" and body["exit_code"] == 3
    assert body["version"] is None and body["package"] is None
    assert "FAILED" in str(body["text"]) and "genesis" in str(body["error"])
    assert "s3cret-passw0rd-value" not in json.dumps(body)


def test_no_url_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(notify.WEBHOOK_ENV, raising=False)
    assert notify.send(notify.failure_payload("x")) is False


def test_http_error_is_a_warning_not_an_exception(httpserver: HTTPServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/secret-token-path").respond_with_data("no", status=500)
    with caplog.at_level(logging.WARNING, logger="opendata.notify"):
        assert notify.send(notify.failure_payload("x"), httpserver.url_for("/secret-token-path")) is False
    assert "HTTP 500" in caplog.text
    assert "secret-token-path" not in caplog.text  # the webhook path often is the secret


def test_unreachable_webhook_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="opendata.notify"):
        assert notify.send(notify.failure_payload("x"), f"http://127.0.0.1:{port}/h", timeout=2) is False
    assert "not reached" in caplog.text


def test_cli_publish_notifies_failure_then_releases(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Real `opendata publish` processes: a validation failure, then two new releases."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = {notify.WEBHOOK_ENV: httpserver.url_for("/hook")}
    data = copy_raw(tmp_path / "data")
    bad = copy_config(tmp_path / "config")
    edit_city_cell(bad, "status", "vielleicht")  # not a known status: a validation error
    assert opendata("fetch", "-q", "--data-dir", str(data), "--config", str(bad)).returncode == 0
    assert opendata("publish", "-q", "--data-dir", str(data), "--config", str(bad), env=env).returncode == 1
    [failure] = _bodies(httpserver)
    assert failure["event"] == "failure" and failure["exit_code"] == 1 and failure["command"] == "publish"
    assert "validation failed" in str(failure["error"]) and "nothing was published" in str(failure["text"])
    assert opendata("fetch", "-q", "--data-dir", str(data)).returncode == 0
    assert opendata("publish", "-q", "--data-dir", str(data), env=env).returncode == 0
    releases = _bodies(httpserver)[1:]
    assert sorted((b["package"], b["version"], b["event"]) for b in releases) == [
        ("integration_measures", "1.0.0", "release"), ("integration_statistics", "1.0.0", "release")]
    assert all(str(b["url"]).endswith(f"{b['package']}/1.0.0/") for b in releases)
