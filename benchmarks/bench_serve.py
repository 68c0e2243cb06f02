"""Served nights: a full and a quiet run of the `nightly` deployment under `opendata serve`.

Usage (standalone, on the embedded data): python benchmarks/bench_serve.py [--cold] [--keep]

A Prefect server on 127.0.0.1 (own PREFECT_HOME) and `opendata serve` for one config and data
dir; runs are created through the API (as the schedule would) a few seconds apart, so the
serving process is idle in between, as at night. Each run's time is Prefect's own record:
from the moment the runner took the run (Pending) to its final state, so it includes starting
the run's process. ``--cold`` turns warm starts off ([settings] warm_start = false) to compare.
bench.py uses `ServedNights` for its "served" column.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from helpers import free_port, stop_group, wait_for  # noqa: E402  (tests/helpers.py)

GAP_S = 6.0  # idle time before each run: the serving process prepares the next run's process


class PrefectServer:
    """`prefect server start` on a free port of 127.0.0.1 with its own PREFECT_HOME."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = dict(env, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                        PREFECT_UI_ENABLED="false", PREFECT_RUNNER_POLL_FREQUENCY="1")
        self.env.pop("PREFECT_API_URL", None)
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        with (home / "server.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(port)], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        wait_for(lambda: httpx.get(f"{self.api}/health", timeout=2).status_code == 200, 180,
               "prefect server")
        self.env["PREFECT_API_URL"] = self.api

    def stop(self) -> None:
        """Stop the server and its children."""
        stop_group(self.proc)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _run_once(api: str, deployment: str, timeout: float) -> dict[str, Any]:
    """Create one run of the deployment, wait for its end, return its seconds."""
    for attempt in range(5):  # a busy SQLite server may answer 503 for a moment
        answer = httpx.post(f"{api}/deployments/{deployment}/create_flow_run", json={},
                            timeout=10)
        if answer.status_code != 503:
            break
        time.sleep(1 + attempt)
    run = answer.json()
    if answer.status_code >= 300 or "id" not in run:
        raise RuntimeError(f"creating a run failed ({answer.status_code}): {answer.text[:300]}")
    final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
    done = wait_for(lambda: (r := httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json())
                  ["state"]["type"] in final and r, timeout, "the flow run")
    hist = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}, timeout=5).json()
    at = {h["type"]: _ts(h["timestamp"]) for h in hist}
    if done["state"]["type"] != "COMPLETED":
        raise RuntimeError(f"served run ended {done['state']['type']}: "
                           f"{done['state'].get('message', '')[:300]}")
    return {"seconds": round(at["COMPLETED"] - at["PENDING"], 3),
            "start_s": round(at["RUNNING"] - at["PENDING"], 3),
            "in_flow_s": round(at["COMPLETED"] - at["RUNNING"], 3)}


def _nights(args: list[str], env: dict[str, str], api: str, deployment: str, log: Path, *,
            quiet_runs: int, timeout: float) -> dict[str, Any]:
    """Serve with ``args``, then one run and ``quiet_runs`` more of ``deployment``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        dep = wait_for(lambda: (r := httpx.get(f"{api}/deployments/name/{deployment}",
                                             timeout=5)).status_code == 200 and r.json(), 120,
                     f"the {deployment} deployment", proc, log)
        if not isinstance(dep.get("updated"), str):
            raise RuntimeError("unexpected deployment answer")
        runs = []
        for _ in range(1 + quiet_runs):
            time.sleep(GAP_S)
            runs.append(_run_once(api, dep["id"], timeout))
        time.sleep(3)  # the last run's process ends (Prefect stops its heartbeat) before serve
    finally:
        stop_group(proc)
    quiet = min(r["seconds"] for r in runs[1:])
    text = log.read_text(encoding="utf-8", errors="replace")
    return {"full": runs[0], "quiet": runs[1:], "quiet_s": quiet,
            "share": quiet / runs[0]["seconds"],
            "cold_starts": text.count("starting a new one")}


def served_nights(server: PrefectServer, cfg: Path, data: Path, env: dict[str, str],
                  log: Path, *, online: bool, quiet_runs: int = 2,
                  timeout: float = 3600) -> dict[str, Any]:
    """`opendata serve`: one full run, then quiet runs; Prefect's seconds for each."""
    args = [sys.executable, "-m", "flows", "serve", "--config", str(cfg), "--data-dir", str(data),
            "--cron", "0 2 1 1 *"] + (["--online"] if online else [])
    return _nights(args, server.env | env, server.api, "nightly/nightly", log,
                   quiet_runs=quiet_runs, timeout=timeout)


def config_sources(cfg: Path) -> int:
    """How many [[sources]] the config has (task runs of the floor flow)."""
    return len(tomllib.loads(cfg.read_text(encoding="utf-8")).get("sources", []))


def floor_nights(server: PrefectServer, sources: int | str, log: Path, *, cold: bool = False,
                 runs: int = 3) -> dict[str, Any]:
    """Prefect's floor (benchmarks/floor_flow.py): the nightly flow's shape for ``sources``
    sources without any work ("bare": a flow run without tasks and artifacts), served the same
    way; the quickest of ``runs`` runs."""
    args = [sys.executable, str(REPO / "benchmarks" / "floor_flow.py"), str(sources)]
    found = _nights(args + (["--cold"] if cold else []), server.env, server.api, "floor/floor",
                    log, quiet_runs=runs - 1, timeout=300)
    return dict(found, floor_s=min(found["quiet_s"], found["full"]["seconds"]))


def main() -> int:
    """Serve the embedded data (copied to a temporary folder) and print the two runs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="warm_start = false, to compare")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (serve.log; printed)")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip Prefect's floor (the same flow shape without work)")
    ns = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="opendata-bench-serve-"))
    cfg = REPO / "config" / "opendata.toml"
    if ns.cold:
        text = cfg.read_text(encoding="utf-8")
        text = text.replace("warm_start = true", "warm_start = false", 1) \
            if "warm_start = true" in text else \
            text.replace("[settings]\n", "[settings]\nwarm_start = false\n", 1)
        shutil.copytree(cfg.parent, work / "config")  # relative paths start at the config
        cfg = work / "config" / "opendata.toml"
        cfg.write_text(text, encoding="utf-8")
    shutil.copytree(REPO / "data" / "raw", work / "data" / "raw")
    server = PrefectServer(work / "prefect-home", dict(os.environ))
    try:
        found = served_nights(server, cfg, work / "data", {}, work / "serve.log",
                              online=False)
        sources = config_sources(cfg)
        floor = None if ns.no_floor else floor_nights(server, sources, work / "floor.log",
                                                      cold=ns.cold)
        bare = None if ns.no_floor else floor_nights(server, "bare", work / "bare.log",
                                                     cold=ns.cold)
    finally:
        server.stop()
        if ns.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for name, run in [("full", found["full"]), *(("quiet", r) for r in found["quiet"])]:
        print(f"{name:<6} {run['seconds']:6.2f} s (start {run['start_s']:.2f} s, "
              f"in the flow {run['in_flow_s']:.2f} s)")
    print(f"quiet night: {found['share']:.0%} of the full run; cold starts: {found['cold_starts']}")
    if floor is not None:
        runs = ", ".join(f"{r['seconds']:.2f}" for r in [floor["full"], *floor["quiet"]])
        print(f"floor  {floor['floor_s']:6.2f} s (the same flow shape, {sources} sources, no "
              f"work; runs {runs} s): "
              f"{floor['floor_s'] / found['full']['seconds']:.0%} of the full run; the quiet "
              f"night's own work {found['quiet_s'] - floor['floor_s']:+.2f} s")
    if bare is not None:
        print(f"bare   {bare['floor_s']:6.2f} s (a served flow run without tasks or artifacts): "
              f"{bare['floor_s'] / found['full']['seconds']:.0%} of the full run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
