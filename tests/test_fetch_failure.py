"""A night where the statistics service is down: bounded retries, exit 3, nothing published."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import copy_config, copy_raw, opendata
from pytest_httpserver import HTTPServer

APIS = ("genesis", "regionalstatistik", "zensus")


def _fast_retries(cfg: Path) -> None:
    text = cfg.read_text(encoding="utf-8")
    for old, new in (("timeout = 60.0", "timeout = 5.0"), ("retries = 4", "retries = 2"),
                     ("backoff = 2.0", "backoff = 0.0"), ("task_retries = 2", "task_retries = 1"),
                     ("task_retry_delays = [30, 120]", "task_retry_delays = [0]")):
        assert old in text, old
        text = text.replace(old, new, 1)
    cfg.write_text(text, encoding="utf-8")


def test_service_down_exits_3_after_bounded_retries(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/rest/data/tablefile", method="POST").respond_with_data(
        "Service Unavailable", status=503)
    cfg = copy_config(tmp_path / "config")
    _fast_retries(cfg)
    data = copy_raw(tmp_path / "data")
    env = {f"OPENDATA_{api.upper()}_BASE_URL": httpserver.url_for("/rest/") for api in APIS}
    env["REGIONALSTATISTIK_TOKEN"] = "fake-token-for-the-test"
    res = opendata("run", "--online", "--data-dir", str(data), "--config", str(cfg), env=env)
    assert res.returncode == 3, res.stderr[-3000:]
    assert "fetch failed for source 'population_kreise'" in res.stderr
    assert "HTTP 503" in res.stderr and "gave up after 2 attempts" in res.stderr
    tables = [r.form.get("name") for r, _ in httpserver.log if r.path == "/rest/data/tablefile"]
    # sources are fetched in parallel; each one: 2 HTTP attempts x (1 try + 1 task retry)
    assert tables.count("12411-01-01-4") == 4
    assert all(tables.count(t) <= 4 for t in set(tables))
    assert not (data / "published").exists() or not any((data / "published").rglob("*.csv"))
    runs = [json.loads(line) for line in (data / "state" / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["outcome"] == "failed" and runs[-1]["exit_code"] == 3
    assert "population_kreise" in runs[-1]["error"]
    assert "fake-token-for-the-test" not in res.stderr + res.stdout
    status = opendata("status", "--data-dir", str(data), "--config", str(cfg))
    assert status.returncode == 1
    assert "last failed run" in status.stdout and "HTTP 503" in status.stdout
