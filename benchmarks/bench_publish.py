"""Release writing at scale: serialise (old per-cell writer vs. the columnar one), diff, ZIP.

Usage: python benchmarks/bench_publish.py [--sizes 30000,300000,1000000,3000000]
                                          [--old-max 1000000] [--keep]

The data is SYNTHETIC ("BEISPIEL"): frames shaped like the published population resource
(tests/golden/integration_statistics/data/population.csv, schema
schemas/integration_statistics/population.schema.json): made-up municipality keys and names,
31 December of consecutive years, three sexes, integer counts with some decimals and some
missing values, rows shuffled. Every step runs in its own process, so each peak RSS
(resource.getrusage ru_maxrss) belongs to one step only; "base" is the RSS just before the
measured step (the frame alone for serialise). Steps per size:

* serialise_new: tables.write_tables (CSV + JSON, as publish.stage writes them)
* serialise_old: the per-cell writer that tables.py replaced (kept in tests/test_tables.py),
  up to --old-max rows; its files are compared byte for byte with the new ones
* diff: versioning.diff of that release against a revised copy (1 % of values changed,
  0.5 % of rows removed, 0.5 % added), from the files on disk
* zip: archive.write_zip of the release folder (parallel deflate of large members)

Results: a table on stdout and benchmarks/results/<UTC time>-publish.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
SCHEMA = REPO / "schemas" / "integration_statistics" / "population.schema.json"
RESULTS = REPO / "benchmarks" / "results"
SIZES = (30_000, 300_000, 1_000_000, 3_000_000)
SEXES = (("", "Insgesamt"), ("GESM", "männlich"), ("GESW", "weiblich"))


def synthetic_frame(rows: int, seed: int = 14) -> pd.DataFrame:
    """A shuffled synthetic population-shaped frame with ``rows`` rows (BEISPIEL data)."""
    rng = np.random.default_rng(seed)
    regions = min(10_786, max(1, rows // 30))
    years = -(-rows // (regions * len(SEXES)))
    idx = np.arange(rows)
    region = idx // (years * len(SEXES))
    year = 2024 - (idx // len(SEXES)) % years
    sex = idx % len(SEXES)
    keys = np.array([f"16{r:06d}" for r in range(regions)], dtype=object)
    names = np.array([f"Beispielgemeinde {r} (synthetisch)" if r % 7 else
                      f"Beispielstadt {r}, kreisfrei (synthetisch)" for r in range(regions)],
                     dtype=object)
    value = rng.integers(0, 250_000, rows).astype(np.float64)
    frac = rng.random(rows) < 0.1
    scale = 10.0 ** rng.integers(1, 12, int(frac.sum()))  # shares with 1 to 11 decimals
    value[frac] = np.trunc(rng.random(int(frac.sum())) * 100 * scale) / scale
    missing = rng.random(rows) < 0.03
    value[missing] = np.nan
    years_text = np.array([str(y) for y in range(2024 - years, 2025)], dtype=object)
    frame = pd.DataFrame({
        "region_key": keys[region], "region_name": names[region],
        "region_level": np.where(region % 50 == 0, "district", "municipality").astype(object),
        "reference_date": (years_text[year - (2024 - years)] + "-12-31").astype(object),
        "period": pd.array(year, dtype="Int64"),
        "sex_code": np.array([s[0] for s in SEXES], dtype=object)[sex],
        "sex_label": np.array([s[1] for s in SEXES], dtype=object)[sex],
        "indicator": np.full(rows, "BEVSTD", dtype=object), "value": value,
        "unit": np.full(rows, "count", dtype=object),
        "value_note": np.where(missing, "nothing there (zero)", "").astype(object),
        "quality": np.full(rows, "", dtype=object),
        "source_table": np.full(rows, "12411-01-01-4 (BEISPIEL)", dtype=object)})
    return frame.iloc[rng.permutation(rows)].reset_index(drop=True)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _release(folder: Path, frame: pd.DataFrame, schema: dict[str, Any], writer: str) -> None:
    from opendata.tables import write_tables

    (folder / "data").mkdir(parents=True, exist_ok=True)
    csv, js = folder / "data" / "population.csv", folder / "data" / "population.json"
    if writer == "new":
        write_tables(frame, schema, csv, js)
    else:
        from test_tables import ref_csv, ref_json

        csv.write_bytes(ref_csv(frame, schema))
        js.write_bytes(ref_json(frame, schema))
    dp = {"name": "beispiel", "version": "0.0.0", "created": "",
          "resources": [{"name": "population", "path": "data/population.csv", "schema": schema}]}
    (folder / "datapackage.json").write_text(json.dumps(dp), encoding="utf-8")


def _revised(frame: pd.DataFrame, seed: int = 15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.drop(index=rng.choice(n, n // 200, replace=False)).reset_index(drop=True)
    change = rng.choice(len(out), max(1, n // 100), replace=False)
    out.loc[change, "value"] = out.loc[change, "value"].fillna(0) + 1
    added = frame.sample(n=max(1, n // 200), random_state=seed).copy()
    added["indicator"] = "BEVSTD_BEISPIEL"
    return pd.concat([out, added], ignore_index=True)


def child(step: str, rows: int, work: Path) -> dict[str, Any]:
    """One step in this process; returns seconds, RSS before and peak RSS."""
    from opendata import archive, versioning
    from opendata.tables import load_schema

    schema = load_schema(SCHEMA)
    extra: dict[str, Any] = {}
    if step in ("serialise_new", "serialise_old", "prepare_revised"):
        frame = synthetic_frame(rows)
        if step == "prepare_revised":
            _release(work / "b", _revised(frame), schema, "new")
            return {}
        base = _rss_mb()
        t = time.perf_counter()
        _release(work / ("a" if step == "serialise_new" else "old"), frame, schema, step[10:])
        seconds = time.perf_counter() - t
        if step == "serialise_old":
            extra["identical"] = all(
                (work / "a" / "data" / f).read_bytes() == (work / "old" / "data" / f).read_bytes()
                for f in ("population.csv", "population.json"))
            shutil.rmtree(work / "old")
        extra["mb_written"] = sum(p.stat().st_size for p in (work / "a" / "data").iterdir()) / 2**20
    elif step == "diff":
        base = _rss_mb()
        t = time.perf_counter()
        changes = versioning.diff(work / "a", work / "b")
        seconds = time.perf_counter() - t
        rc = changes.resources["population"]
        extra = {"added": len(rc.added), "removed": len(rc.removed), "changed": len(rc.changed)}
    elif step == "zip":
        base = _rss_mb()
        t = time.perf_counter()
        archive.write_zip(work / "a", work / "a.zip", "beispiel-1.0.0")
        seconds = time.perf_counter() - t
        extra["zip_mb"] = (work / "a.zip").stat().st_size / 2**20
    else:
        raise SystemExit(f"unknown step {step}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"step": step, "rows": rows, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds) if seconds else None,
            "base_rss_mb": round(base), "peak_rss_mb": round(peak), **extra}


def run_step(step: str, rows: int, work: Path) -> dict[str, Any]:
    """Run one step in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--child", step, "--rows", str(rows),
                          "--work", str(work)], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"step {step} at {rows} rows failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Every step at every size, each in its own process; print a table, save JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--old-max", type=int, default=1_000_000,
                    help="largest size for the old per-cell writer (slow, much memory)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.work)))
        return
    results = []
    print(f"{'rows':>10} {'step':<14} {'seconds':>8} {'rows/s':>10} {'base MB':>8} {'peak MB':>8}  notes")
    for rows in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
            work = Path(tmp)
            steps = ["serialise_new"] + (["serialise_old"] if rows <= args.old_max else [])
            for step in [*steps, "prepare_revised", "diff", "zip"]:
                r = run_step(step, rows, work)
                if not r:
                    continue
                results.append(r)
                notes = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()
                         if k not in ("step", "rows", "seconds", "rows_per_s", "base_rss_mb",
                                      "peak_rss_mb")}
                print(f"{rows:>10} {step:<14} {r['seconds']:>8.2f} {r['rows_per_s']:>10} "
                      f"{r['base_rss_mb']:>8} {r['peak_rss_mb']:>8}  {notes}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-publish.json"
    out.write_text(json.dumps({"python": platform.python_version(), "pandas": pd.__version__,
                               "numpy": np.__version__, "results": results}, indent=1) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
