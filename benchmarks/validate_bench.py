"""Row validation throughput: the columnar engine (opendata.fastcheck) vs. frictionless-py.

Usage: python benchmarks/validate_bench.py [--sizes 30000,300000,3000000,10000000]
                                           [--frictionless-max 300000]
For each size a synthetic package shaped like the embedded GENESIS tables is generated
(benchmarks/synthetic.py: population + regions + indicators, BEISPIEL data, real schemas). Each
engine validates it in its own process (wall time and peak RSS of that process, as run_bench.py
measures); frictionless only up to --frictionless-max rows (it manages ~10 k rows/s). The table
gives rows/s of the population resource and the speed-up over frictionless in the same run.
Results: benchmarks/results/<UTC time>-validate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

import synthetic  # noqa: E402
from run_bench import WRAPPER  # noqa: E402  (the same per-process wall time and peak RSS)

ENGINES = {
    "fastcheck": "from opendata import fastcheck\n"
                 "r = fastcheck.check_package(DESC)\n"
                 "bad = [(k, v) for k, v in r.items() if not isinstance(v, fastcheck.TableResult)"
                 " or v.errors]\n"
                 "assert not bad, bad\n",
    "frictionless": "from frictionless import Package\n"
                    "r = Package(str(DESC)).validate(name='population')\n"
                    "assert r.valid, r.flatten(['rowNumber', 'type', 'note'])[:5]\n",
}


def measure(engine: str, desc: Path) -> dict[str, float]:
    """One engine on one package in a fresh process: wall time and peak RSS."""
    code = f"from pathlib import Path\nDESC = Path({str(desc)!r})\n" + ENGINES[engine]
    out = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-c", code], cwd=REPO,
                         capture_output=True, text=True, check=True)
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if result["returncode"] != 0:
        raise SystemExit(f"{engine} failed on {desc} (exit code {result['returncode']})")
    return result


def main() -> int:
    """Generate, measure, print one table, write the results file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30000,300000,3000000,10000000")
    ap.add_argument("--frictionless-max", type=int, default=300_000)
    ns = ap.parse_args()
    sizes = [int(s) for s in ns.sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="opendata-validate-bench-"))
    rows_out = []
    try:
        for size in sizes:
            desc = synthetic.build(size, work / str(size))
            found = {"rows": size, "csv_mb": round((desc.parent / "data" / "population.csv")
                                                    .stat().st_size / 1e6, 1)}
            for engine in ENGINES:
                if engine == "frictionless" and size > ns.frictionless_max:
                    continue
                m = measure(engine, desc)
                found[engine] = {"s": round(m["wall_s"], 2), "rows_per_s": round(size / m["wall_s"]),
                                 "peak_rss_mb": round(m["peak_rss_mb"], 1)}
            rows_out.append(found)
            shutil.rmtree(desc.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'rows':>10} {'CSV MB':>7} | {'fast s':>7} {'rows/s':>10} {'RSS MB':>7} | "
          f"{'fric. s':>7} {'rows/s':>8} {'RSS MB':>7} | {'speed-up':>8}")
    for r in rows_out:
        f, fr = r["fastcheck"], r.get("frictionless")
        fric = (f"{fr['s']:7.2f} {fr['rows_per_s']:8d} {fr['peak_rss_mb']:7.1f}" if fr
                else f"{'-':>7} {'-':>8} {'-':>7}")
        ratio = f"{fr['s'] / f['s']:7.1f}x" if fr else f"{'-':>8}"
        print(f"{r['rows']:>10} {r['csv_mb']:>7} | {f['s']:7.2f} {f['rows_per_s']:10d} "
              f"{f['peak_rss_mb']:7.1f} | {fric} | {ratio}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}-validate.json"
    path.write_text(json.dumps({"created": stamp, "python": platform.python_version(),
                                "cpus": os.cpu_count(), "results": rows_out}, indent=2) + "\n",
                    encoding="utf-8")
    print(f"results: {path}  (times include process start and imports, ~1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
