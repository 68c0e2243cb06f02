"""`make bench`: one table of the whole pipeline per size, stage by stage, against frictionless-py.

Usage: python benchmarks/bench.py [--sizes 30000,300000,1000000,3000000]
                                  [--frictionless-max 100000] [--keep]
       (the issue's target size is 10 M rows: --sizes 10000000; it takes several minutes)

For each size the SYNTHETIC ("BEISPIEL") tables of benchmarks/bench_scale.py are generated:
12531-0043 (protection seekers, about ``size`` rows) and 12411-01-01-4 (population) for every
Kreis, with the default config reduced to them (``bench_scale._config``). Then, each step a
`python -m flows` process with ``--timings`` (stage seconds and peak RSS measured inside it,
opendata/timings.py):

1. ``fetch --online``: both tables over HTTP from the GENESIS replay server of the tests
   (tests/replay_server.py) on 127.0.0.1, serving a synthetic recording in the layout of
   ../shared/genesis: download, content checks, snapshot;
2. ``publish``: inputs, build, serialise, validate, diff, release (row counts, README,
   checksums, ZIP, index), site;
3. a quiet night on the unchanged data: ``fetch --online`` and ``publish`` again;
3b. served nights (benchmarks/bench_serve.py): `opendata serve --online` on a Prefect server on
   127.0.0.1 with a fresh data dir, one full run and two quiet runs of the deployment, each
   timed by Prefect from Pending to Completed (so including the start of the run's process);
   once per bench, Prefect's floor: benchmarks/floor_flow.py served and timed alike (the same
   task runs and artifacts, no work), so quiet − floor is the quiet night's own work;
4. frictionless-py (``Package(...).get_resource("protection_seekers").validate()``, foreign keys
   included) in its own process on the published protection_seekers CSV, its first
   ``--frictionless-max`` rows when it is longer (other resources whole).

One markdown table goes to stdout, progress to stderr, everything to
benchmarks/results/<UTC time>-bench.json (not committed).
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
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

import replay_server  # noqa: E402  (tests/replay_server.py)
from bench_scale import _config, population_csv, protection_chunks, zip_chunks  # noqa: E402
from bench_serve import PrefectServer, config_sources, floor_nights, served_nights  # noqa: E402

from opendata import store  # noqa: E402
from opendata.store import csv_records  # noqa: E402

SIZES = "30000,300000,1000000,3000000"
PACKAGE = "integration_statistics"
BIG = "protection_seekers"
COLUMNS = ("fetch", "inputs", "build", "serialise", "validate", "diff", "release", "site")
TABLES = {  # source table -> (API host as recorded, ZIP member, statistics code)
    "12531-0043": ("www-genesis.destatis.de", "12531-0043_1_de_flat.csv", "12531"),
    "12411-01-01-4": ("www.regionalstatistik.de", "12411-01-01-4_1_de_flat.csv", "12411"),
}
FRICTIONLESS = """import json, sys, time
from frictionless import Package
res = Package(sys.argv[1]).get_resource(sys.argv[2])
start = time.perf_counter()
report = res.validate()
took = time.perf_counter() - start
print(json.dumps({"seconds": took, "valid": report.valid,
                  "errors": report.flatten(["rowNumber", "fieldName", "type"])[:5]}))
"""


def progress(text: str) -> None:
    """One line of progress on stderr."""
    print(f"{datetime.now().strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


class Synthetic(replay_server.Handler):
    """The replay handler without the per-line region selection: the synthetic answer holds
    exactly the requested Kreise, and filtering a million lines would time the server."""

    def _select(self, endpoint: str, form: dict[str, str], body: bytes) -> bytes:
        return body


def serve(recording: Path) -> tuple[ThreadingHTTPServer, replay_server.Replay]:
    """The replay server (as tests/replay_server.serve) on a synthetic recording."""
    replay = replay_server.Replay(replay_server.load(recording))
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Bound", (Synthetic,), {"replay": replay}))
    server.daemon_threads = True
    replay.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server, replay


def _record(recording: Path, table: str, chunks: Iterable[tuple[bytes, int]]) -> int:
    """A recording in the layout of ../shared/genesis: tablefile (ZIP, written as a stream) and
    metadata/table; the CSV's data lines."""
    host, member, code = TABLES[table]
    folder = recording / table
    (folder / "bodies").mkdir(parents=True)
    lines, _ = zip_chunks(folder / "bodies" / "data.zip", member, chunks)
    meta = {"Status": {"Code": 0, "Content": "erfolgreich", "Type": "Information"},
            "Object": {"Code": table, "Content": f"BEISPIEL: synthetische Tabelle {table}",
                       "Time": {"From": "31.12.2014", "To": "31.12.2024"},
                       "Structure": {"Head": {"Code": code, "Content": "BEISPIEL"}},
                       "Updated": "01.03.2026 10:00:00h"}}
    (folder / "bodies" / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    base = f"https://{host}{replay_server.PREFIXES[host]}"
    entries = [{"seq": 0, "method": "POST", "url": base + "data/tablefile",
                "form": {"name": table, "language": "de"}, "status": 200,
                "headers": {"Content-Type": "application/zip"}, "body": "bodies/data.zip"},
               {"seq": 1, "method": "POST", "url": base + "metadata/table",
                "form": {"name": table, "language": "de"}, "status": 200,
                "headers": {"Content-Type": "application/json;charset=UTF-8"},
                "body": "bodies/metadata.json"}]
    (folder / "interactions.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return lines


def generate(size: int, root: Path) -> tuple[Path, Path, int]:
    """Config, synthetic recording and the rows of 12531-0043 for one size."""
    cfg = _config(root / "config")
    rows = _record(root / "recording", "12531-0043", protection_chunks(size))
    _record(root / "recording", "12411-01-01-4", [(population_csv(size), 0)])
    return cfg, root / "recording", rows


def opendata(command: str, cfg: Path, data: Path, env: dict[str, str],
             timings: Path) -> dict[str, Any]:
    """One `python -m flows` process with --timings; its timings plus the process wall time."""
    args = [sys.executable, "-m", "flows", command, "--config", str(cfg), "--data-dir", str(data),
            "-q", "--timings", str(timings)] + (["--online"] if command == "fetch" else [])
    start = time.perf_counter()
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{command} failed (exit {out.returncode}): {out.stderr.strip()[-600:]}")
    doc: dict[str, Any] = json.loads(timings.read_text(encoding="utf-8"))
    return doc | {"process_seconds": round(wall, 2)}


def release_rows(data: Path) -> tuple[Path, dict[str, int]]:
    """The latest release of the package and the rows of each of its resources."""
    rel = store.latest_dir(data / "published" / PACKAGE)
    if rel is None:
        raise RuntimeError(f"nothing published under {data / 'published' / PACKAGE}")
    return rel, {p.stem: csv_records(p) - 1 for p in sorted((rel / "data").glob("*.csv"))}


def frictionless(rel: Path, work: Path, cap: int, rows: int) -> dict[str, Any]:
    """frictionless-py on the release's protection_seekers (first ``cap`` rows), own process."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    desc = json.loads((rel / "datapackage.json").read_text(encoding="utf-8"))
    for res in desc["resources"]:
        res.pop("hash", None)
        res.pop("bytes", None)
        src, dest = rel / res["path"], work / res["path"]
        if res["name"] == BIG and rows > cap:
            with src.open("rb") as fh, dest.open("wb") as out:
                for _, line in zip(range(cap + 1), fh, strict=False):
                    out.write(line)
        else:
            shutil.copyfile(src, dest)
    (work / "datapackage.json").write_text(json.dumps(desc), encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", FRICTIONLESS, str(work / "datapackage.json"), BIG],
                         cwd=work, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"frictionless failed: {out.stderr.strip()[-600:]}")
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    checked = min(cap, rows)
    return found | {"rows": checked, "rows_per_s": round(checked / found["seconds"])}


def _sum(*docs: dict[str, Any]) -> dict[str, float]:
    total: dict[str, float] = {}
    for d in docs:
        for k, v in d["seconds"].items():
            total[k] = total.get(k, 0.0) + v
    return total


def _peak(*docs: dict[str, Any]) -> tuple[float, str]:
    """The highest process peak RSS and the first stage that reached it."""
    best, where = 0.0, "-"
    for d in docs:
        top = d["process_peak_rss_mb"]
        if top > best:
            best = top
            where = next((k for k, v in d["peak_rss_mb"].items() if v >= top), d["command"])
    return best, where


def one(size: int, root: Path, cap: int, env: dict[str, str],
        prefect: PrefectServer | None, floors: dict[int, tuple[float, int]]) -> dict[str, Any]:
    """Generate, fetch, publish, quiet night, served nights, frictionless: one size."""
    tag = f"[{size:,} rows]"
    progress(f"{tag} generating the synthetic tables")
    start = time.perf_counter()
    cfg, recording, input_rows = generate(size, root)
    progress(f"{tag} {input_rows:,} rows of 12531-0043 in {time.perf_counter() - start:.1f} s; "
             "serving them on 127.0.0.1")
    server, replay = serve(recording)
    env = env | {"OPENDATA_GENESIS_BASE_URL": replay.url("genesis"),
                 "OPENDATA_REGIONALSTATISTIK_BASE_URL": replay.url("regionalstatistik")}
    data, runs = root / "data", {}
    try:
        for name, command in (("fetch", "fetch"), ("publish", "publish"),
                              ("fetch_again", "fetch"), ("publish_again", "publish")):
            progress(f"{tag} {command}{' (nothing changed)' if 'again' in name else ''}")
            runs[name] = opendata(command, cfg, data, env, root / f"timings-{name}.json")
            progress(f"{tag}   {sum(runs[name]['seconds'].values()):.1f} s in stages, "
                     f"{runs[name]['process_seconds']:.1f} s as a process")
        served = None
        if prefect is not None:
            progress(f"{tag} opendata serve: a full run, then two quiet runs")
            served = served_nights(prefect, cfg, root / "served", env, root / "serve.log",
                                   online=True)
            progress(f"{tag}   served: full {served['full']['seconds']:.1f} s, quiet "
                     f"{served['quiet_s']:.2f} s ({served['share']:.0%})")
            served["floor_s"], served["floor_cold_starts"] = floor(prefect, cfg, root, floors)
    finally:
        replay_server.stop(server)
    rel, rows = release_rows(data)
    progress(f"{tag} frictionless-py on {min(cap, rows[BIG]):,} rows of {BIG}")
    fric = frictionless(rel, root / "frictionless", cap, rows[BIG])
    full = _sum(runs["fetch"], runs["publish"])
    walls = {k: v["wall_seconds"] for k, v in runs.items()}
    quiet = walls["fetch_again"] + walls["publish_again"]
    procs = {k: v["process_seconds"] for k, v in runs.items()}
    peak, where = _peak(runs["fetch"], runs["publish"])
    total_rows = sum(rows.values())
    ours = total_rows / full["validate"] if full.get("validate") else 0.0
    return {"size": size, "input_rows": input_rows, "rows": total_rows, "resource_rows": rows,
            "seconds": {k: round(v, 3) for k, v in full.items()},
            "total_s": round(sum(full.values()), 2),
            "rows_per_s": round(total_rows / sum(full.values())),
            "peak_rss_mb": peak, "peak_stage": where,
            "no_change_s": round(quiet, 2),
            "no_change_share": quiet / (walls["fetch"] + walls["publish"]),
            "no_change_process_s": round(procs["fetch_again"] + procs["publish_again"], 2),
            "no_change_process_share": (procs["fetch_again"] + procs["publish_again"])
            / (procs["fetch"] + procs["publish"]),
            "served": served,
            "validate_rows_per_s": round(ours), "frictionless": fric,
            "vs_frictionless": ours / fric["rows_per_s"], "runs": runs}


def floor(prefect: PrefectServer, cfg: Path, root: Path,
          floors: dict[int, tuple[float, int]]) -> tuple[float, int]:
    """Prefect's floor for the config's number of sources (benchmarks/floor_flow.py), measured
    once per number of sources: its seconds and cold starts (0: warm, as the nightly runs)."""
    sources = config_sources(cfg)
    if sources not in floors:
        progress(f"Prefect's floor: the same flow shape ({sources} sources) without work")
        found = floor_nights(prefect, sources, root / "floor.log")
        floors[sources] = found["floor_s"], found["cold_starts"]
        progress(f"  floor {found['floor_s']:.2f} s")
    return floors[sources]


def _served(found: dict[str, Any] | None) -> str:
    """The served-nights cell: full run, quiet run and its share, Prefect's floor."""
    if not found:
        return "-"
    full = found["full"]["seconds"]
    floor_s = found.get("floor_s")
    return (f"{full:.1f} s / {found['quiet_s']:.2f} s ({found['share']:.0%})"
            + (f"; floor {floor_s:.2f} s ({floor_s / full:.0%})" if floor_s else "")
            + (f", {found['cold_starts']} cold start(s)" if found["cold_starts"] else ""))


def table(found: list[dict[str, Any]], cap: int) -> str:
    """The one markdown table."""
    head = ["rows", *(f"{c} s" for c in COLUMNS), "total s", "rows/s", "peak RSS",
            "no change", "served: full / quiet", "validate rows/s", "frictionless rows/s",
            "validate ÷ frictionless"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in found:
        if "error" in r:
            lines.append(f"| {r['size']:,} | failed: {r['error'][:200]} |")
            continue
        fr = r["frictionless"]
        capped = " (first {:,} rows)".format(fr["rows"]) if fr["rows"] < r["resource_rows"][BIG] \
            else ""
        cells = [f"{r['rows']:,}", *(f"{r['seconds'].get(c, 0.0):.2f}" for c in COLUMNS),
                 f"{r['total_s']:.1f}", f"{r['rows_per_s']:,}",
                 f"{r['peak_rss_mb'] / 1024:.2f} GB ({r['peak_stage']})",
                 f"{r['no_change_s']:.1f} s ({r['no_change_share']:.0%}); as processes "
                 f"{r['no_change_process_s']:.1f} s ({r['no_change_process_share']:.0%})",
                 _served(r.get("served")),
                 f"{r['validate_rows_per_s']:,}", f"{fr['rows_per_s']:,}{capped}",
                 f"{r['vs_frictionless']:.0f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        "rows: published rows of all resources of the package (protection_seekers: "
        "≈ the size asked for, at least one citizenship per Kreis, status, sex and year). "
        "Stage seconds are measured inside the processes (opendata --timings), without "
        "interpreter start and imports; fetch is a real download over HTTP from a local "
        "GENESIS replay server (127.0.0.1) plus content checks and the snapshot; release = row "
        "counts, datapackage, README, CHANGELOG, checksums, ZIP, index. rows/s = rows / total. "
        "peak RSS: the highest of the fetch and publish processes, and the first stage that "
        "reached it (VmHWM of each process). no change: a quiet night on the same data (fetch "
        "again + publish, nothing changed): the commands' whole wall time (without interpreter "
        "start) and its share of the full run's; then the same for the two processes as cron "
        "starts them (interpreter start and imports included, about 0.4 s each). "
        "served: `opendata serve` runs of the deployment on a Prefect server (127.0.0.1), "
        "full run and the quicker of two quiet runs, each from Pending to Completed as Prefect "
        "records it (the run's process start included; warm starts, flows/warm.py); floor: "
        "the quickest of three served runs of a flow with the same tasks and artifacts and no "
        "work (benchmarks/floor_flow.py), Prefect's own cost of such a run. "
        "validate rows/s: all rows of the package "
        "/ validate stage; frictionless: frictionless-py validating protection_seekers "
        f"(foreign keys included; at most {cap:,} rows) in its own process.",
    ]
    return "\n".join(lines + notes)


def main() -> int:
    """Run every size, print the table, write the results file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SIZES, help=f"rows of 12531-0043 (default {SIZES}; "
                    "the issue's target is 10000000)")
    ap.add_argument("--frictionless-max", type=int, default=100_000,
                    help="frictionless-py validates at most this many rows (~10 k rows/s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    ap.add_argument("--no-serve", action="store_true", help="skip the served nights")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"default {RESULTS}")
    ns = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in ns.sizes.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="opendata-bench-"))
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    for key in [k for k in env if k.endswith(("_TOKEN", "_USERNAME", "_PASSWORD"))]:
        env.pop(key)  # never send real credentials to the local server
    found: list[dict[str, Any]] = []
    floors: dict[int, tuple[float, int]] = {}
    prefect = None if ns.no_serve else PrefectServer(work / "prefect-server", env)
    try:
        for size in sizes:
            try:
                found.append(one(size, work / str(size), ns.frictionless_max, env, prefect,
                                 floors))
            except RuntimeError as exc:
                progress(f"[{size:,} rows] {exc}")
                found.append({"size": size, "error": str(exc)})
            if not ns.keep:
                shutil.rmtree(work / str(size), ignore_errors=True)
    finally:
        if prefect is not None:
            prefect.stop()
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            progress(f"kept {work}")
    print(table(found, ns.frictionless_max))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ns.results.mkdir(parents=True, exist_ok=True)
    path = ns.results / f"{stamp}-bench.json"
    doc = {"created": stamp, "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "frictionless_max": ns.frictionless_max, "results": found}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    progress(f"results: {path}")
    return 1 if any("error" in r for r in found) else 0


if __name__ == "__main__":
    sys.exit(main())
