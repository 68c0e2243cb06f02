"""The schedule: cron + timezone across DST, and end to end with a real Prefect server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import REPO, copy_raw, free_port, stop_group, wait_for
from pytest_httpserver import HTTPServer

from opendata import config as config_mod

BERLIN_NIGHTS = {  # 02:00 Europe/Berlin in UTC; on 29 March 02:00 does not exist (→ 03:00 CEST)
    "2026-03-28": "2026-03-28T01:00:00Z", "2026-03-29": "2026-03-29T01:00:00Z",
    "2026-03-30": "2026-03-30T00:00:00Z", "2026-10-24": "2026-10-24T00:00:00Z",
    "2026-10-25": "2026-10-25T00:00:00Z", "2026-10-26": "2026-10-26T01:00:00Z"}


def _next_runs(sched: Any, start: datetime, n: int) -> list[str]:
    """Next run times as the Prefect server computes them (its CronSchedule)."""
    from prefect.server.schemas.schedules import CronSchedule

    server_side = CronSchedule(cron=sched.cron, timezone=sched.timezone, day_or=sched.day_or)
    dates = asyncio.run(server_side.get_dates(n=n, start=start))
    return [d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for d in dates]


def test_default_schedule_is_2am_berlin_across_dst() -> None:
    from flows.serve import schedule

    sched = schedule(config_mod.load())
    assert (sched.cron, sched.timezone) == ("0 2 * * *", "Europe/Berlin")
    spring = _next_runs(sched, datetime(2026, 3, 27, 12, tzinfo=UTC), 4)
    autumn = _next_runs(sched, datetime(2026, 10, 23, 12, tzinfo=UTC), 4)
    got = spring[:3] + autumn[:3]
    assert got == [BERLIN_NIGHTS[d] for d in sorted(BERLIN_NIGHTS)]
    assert len(set(autumn)) == 4  # the doubled hour on 25 October gives one run, not two


def test_cron_and_timezone_are_configurable() -> None:
    from flows.serve import schedule

    sched = schedule(config_mod.load(), cron="30 4 * * 1", timezone="America/New_York")
    runs = _next_runs(sched, datetime(2026, 3, 1, tzinfo=UTC), 2)  # US DST starts 8 March 2026
    assert runs == ["2026-03-02T09:30:00Z", "2026-03-09T08:30:00Z"]


# --- end to end: a real Prefect server and `opendata serve` --------------------------------------

def _env(home: Path, api: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
               PREFECT_RUNNER_POLL_FREQUENCY="2")
    env.pop("PREFECT_API_URL", None)
    return env | ({"PREFECT_API_URL": api} if api else {})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`prefect server start` on a free port with its own PREFECT_HOME; yields the API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=home, env=_env(home),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 120,
              "prefect server health", proc, log)
        yield api, home
    finally:
        stop_group(proc)


def _completed_nightly_runs(api: str) -> list[dict[str, Any]]:
    dep = httpx.get(f"{api}/deployments/name/nightly/nightly", timeout=5)
    if dep.status_code != 200:
        return []
    body = {"deployments": {"id": {"any_": [dep.json()["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    return list(httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5).json())


@pytest.mark.slow
def test_serve_runs_on_schedule_and_publishes(server: tuple[str, Path], tmp_path: Path,
                                              httpserver: HTTPServer) -> None:
    api, home = server
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    data = copy_raw(tmp_path / "data")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows", "serve", "--data-dir", str(data),
                                 "--cron", "* * * * *", "--timezone", "Europe/Berlin"], cwd=REPO,
                                env=_env(home, api) | {"OPENDATA_WEBHOOK_URL": httpserver.url_for("/hook")},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        runs = wait_for(lambda: _completed_nightly_runs(api), 240, "a completed scheduled run", proc, log)
        dep = httpx.get(f"{api}/deployments/name/nightly/nightly", timeout=5).json()
    finally:
        stop_group(proc)
    assert runs[0]["auto_scheduled"] is True  # created by the schedule, not triggered by hand
    sched = dep["schedules"][0]["schedule"]
    assert sched["cron"] == "* * * * *" and sched["timezone"] == "Europe/Berlin"
    assert dep["global_concurrency_limit"]["limit"] == 1  # overdue runs wait, never overlap
    for pkg in ("integration_measures", "integration_statistics"):
        assert (data / "published" / pkg / "latest" / "datapackage.json").is_file()
    assert '"outcome": "success"' in (data / "state" / "runs.jsonl").read_text()
    served = log.read_text(encoding="utf-8", errors="replace")
    assert "started in the ready process" in served  # a warm start (flows/warm.py)
    assert "no ready process" not in served and "Timeout of" not in served
    events = [json.loads(req.get_data(as_text=True)) for req, _ in httpserver.log]
    assert {(e["event"], e["package"], e["version"]) for e in events} == {
        ("release", "integration_measures", "1.0.0"), ("release", "integration_statistics", "1.0.0")}


HOLD = """import sys
from pathlib import Path
from opendata.lock import pipeline_lock
with pipeline_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.mark.slow
def test_second_run_does_not_interleave(server: tuple[str, Path], tmp_path: Path) -> None:
    """While one run holds the data dir's lock, `opendata run` (the flow) exits 2 and writes nothing."""
    api, home = server
    data = copy_raw(tmp_path / "data")
    lock = data / "state" / "pipeline.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = subprocess.run([sys.executable, "-m", "flows", "run", "--data-dir", str(data)], cwd=REPO,
                             env=_env(home, api), capture_output=True, text=True, timeout=120, check=False)
    finally:
        holder.communicate("", timeout=30)
    assert res.returncode == 2, res.stderr[-3000:]
    assert f"another opendata run (pid {holder.pid})" in res.stderr
    assert not (data / "published").exists()
    assert not (data / "state" / "runs.jsonl").exists()  # a skipped run is not a failed run


def test_prefect_yaml_matches_serve() -> None:
    """The work-pool deployment has the same flow, name, cron, timezone and overlap rule as serve."""
    import yaml

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    [dep] = doc["deployments"]
    path, func = dep["entrypoint"].split(":")
    assert (REPO / path).is_file() and func == "nightly" and dep["name"] == "nightly"
    [sched] = dep["schedules"]
    assert (sched["cron"], sched["timezone"]) == ("0 2 * * *", "Europe/Berlin")
    assert dep["concurrency_limit"]["limit"] == 1
    from flows.nightly import nightly

    assert set(dep["parameters"]) <= set(nightly.parameters.properties)


@pytest.mark.slow
def test_warm_start_runs_prefects_own_payload(server: tuple[str, Path], tmp_path: Path) -> None:
    """Prefect builds the run's payload as always; the ready child runs it, already imported."""
    import warm_probe
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.warm import WarmStarter

    api, _ = server
    starter = WarmStarter(preload=("colorsys",))
    starter.prepare()
    assert starter.child is not None
    ready = starter.child.process.pid
    out = tmp_path / "where.json"
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            process = starter.run_flow_in_subprocess(warm_probe.probe, parameters={"path": str(out)})
        process.join(timeout=180)
    finally:
        starter.close()
    assert process.exitcode == 0
    assert (starter.warm_runs, starter.cold_runs) == (1, 0)
    assert json.loads(out.read_text(encoding="utf-8")) == {"pid": ready, "preloaded": True}
    body = {"flows": {"name": {"any_": ["warm-probe"]}}}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
