"""Whole-process timings of the nightly job: a full run on a fresh copy of data/raw vs. a no-change rerun.

Usage: python benchmarks/run_bench.py [--repeats N] [--command run|publish] [--keep]
Each measurement is a separate `python -m flows <command>` process, started by a small wrapper
process that reports the wall time and the peak RSS of its children (resource.getrusage
RUSAGE_CHILDREN), so figures are per process. Results: benchmarks/results/<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
WRAPPER = """import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_rss_mb": rss / 1024, "returncode": rc}))
"""


def measure(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one command in a fresh wrapper process; its wall time and peak RSS."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise SystemExit(f"{' '.join(args)} failed with exit code {result['returncode']}")
    return dict(result)


def one_repeat(command: str, work: Path, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """A full run on a fresh copy of data/raw, then a no-change rerun on the same data dir."""
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(REPO / "data" / "raw", data / "raw")
    steps = [["fetch"]] if command == "publish" else []
    for step in steps:  # publish builds from snapshots: snapshot the local city tables first
        measure([sys.executable, "-m", "flows", *step, "-q", "--data-dir", str(data)], env)
    cmd = [sys.executable, "-m", "flows", command, "-q", "--data-dir", str(data)]
    return {"full": measure(cmd, env), "no_change": measure(cmd, env)}


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Median and min of wall time, max of peak RSS, per kind of run."""
    out = {}
    for kind in ("full", "no_change"):
        walls = [r[kind]["wall_s"] for r in runs]
        out[kind] = {"median_s": round(statistics.median(walls), 2), "min_s": round(min(walls), 2),
                     "peak_rss_mb": round(max(r[kind]["peak_rss_mb"] for r in runs), 1)}
    return out


def main() -> int:
    """Run the benchmark and write the results file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--command", choices=("run", "publish"), default="run",
                    help="run = the Prefect flow (ephemeral server unless PREFECT_API_URL is set); "
                         "publish = the library path without Prefect")
    ns = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="opendata-bench-"))
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    try:
        one_repeat(ns.command, work, env)  # warm-up: Prefect database migrations, OS file cache
        runs = [one_repeat(ns.command, work, env) for _ in range(ns.repeats)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(runs)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {"created": stamp, "command": f"python -m flows {ns.command}", "repeats": ns.repeats,
           "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "api_url": env.get("PREFECT_API_URL", "ephemeral"),
           "summary": summary, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}-{ns.command}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for kind, s in summary.items():
        print(f"{kind:<10} median {s['median_s']:7.2f} s   min {s['min_s']:7.2f} s   "
              f"peak RSS {s['peak_rss_mb']:7.1f} MB")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
