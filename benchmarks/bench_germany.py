"""Germany-wide benchmark on real data: every Kreis (and every municipality for Zensus 1000A-0000)
from the recorded GENESIS answers in ../shared/genesis, published offline.

It writes a configuration without a [municipality] (explicit regionalkey patterns: all regions
of each table, Regierungsbezirke left out), builds raw snapshots from the recordings with
scripts/build_embedded.py (nothing reduced), then times `opendata publish` and a no-change
rerun as whole processes and reports rows, seconds and peak RSS. Everything lands in
benchmarks/results/germany/ (not committed). The data is real; only the selection is wider.

    .venv/bin/python benchmarks/bench_germany.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import build_embedded  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "germany"
SELECTIONS = {  # GENESIS regionalkey patterns: every region of the table
    "population_kreise": ["?????", "????????"],           # all Kreise (5 and 8 digits)
    "protection_seekers": ["?????"],                       # (this table has no 8-digit Kreise)
    "employees_nationality": ["DG", "??", "?????", "????????"],  # Germany, Länder, Kreise
    "census_immigration_history": ["DG", "??"],            # Germany and the Länder
    "census_population": ["*"],                            # every municipality (ARS)
}


def write_config(dest: Path) -> Path:
    """The default config without municipality, city tables and measures; all regions."""
    text = (REPO / "config" / "opendata.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[municipality\].*?(?=^\[)", "", text)
    text = re.sub(r'(?m)^publisher_name = .*$', 'publisher_name = "Benchmark (BEISPIEL)"', text)
    blocks = text.split("\n[[sources]]\n")
    kept = [blocks[0]]
    for block in blocks[1:]:
        sid = re.search(r'(?m)^id = "([^"]+)"', block)
        if not sid or sid.group(1) not in SELECTIONS:
            continue
        block = re.sub(r"(?m)^region_levels = .*\n|^region_key_type = .*\n", "", block)
        keys = ", ".join(f'"{k}"' for k in SELECTIONS[sid.group(1)])
        block = block.replace("[sources.params]\n", f"[sources.params]\nregionalkey = [{keys}]\n")
        kept.append(block)
    text = "\n[[sources]]\n".join(kept)
    text = re.sub(r"(?ms)^\[packages\.integration_measures\].*?(?=^\[|^#)", "", text)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "opendata.toml").write_text(text, encoding="utf-8")
    return dest / "opendata.toml"


def timed(args: list[str]) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) of the child and its output tail for `python -m flows ...`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "flows", *args], cwd=REPO, capture_output=True,
                         text=True, check=False)
    seconds = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    if out.returncode != 0:
        raise SystemExit(f"opendata {' '.join(args)} failed ({out.returncode}):\n"
                         f"{(out.stdout + out.stderr)[-4000:]}")
    return seconds, peak, out.stdout


def main() -> None:
    """Build the data dir, publish twice, print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args()
    if not (args.shared / "genesis").is_dir():
        raise SystemExit(f"{args.shared}/genesis is absent: this benchmark needs the recordings")
    shutil.rmtree(OUT, ignore_errors=True)
    cfg = write_config(OUT / "config")
    start = time.perf_counter()
    build_embedded.run(args.shared, OUT / "data", cfg)
    build = time.perf_counter() - start
    common = ["--config", str(cfg), "--data-dir", str(OUT / "data"), "-q"]
    full, full_rss, _ = timed(["publish", *common])
    quiet, quiet_rss, _ = timed(["publish", *common])
    rel = OUT / "data" / "published" / "integration_statistics" / "latest"
    rows = json.loads((OUT / "data" / "state" / "reports" / "latest.json").read_text())
    counts = rows["packages"][0]["row_counts"] if rows["packages"] else {}
    total = sum(int(n) for n in counts.values())
    print(f"Germany-wide (real recordings, {len(SELECTIONS)} tables; snapshots built in "
          f"{build:.1f} s)")
    print("| step | rows | seconds | rows/s | peak RSS |")
    print("|---|---|---|---|---|")
    print(f"| publish (build, validate, write) | {total:,} | {full:.1f} | {total / full:,.0f} | "
          f"{full_rss:,.0f} MB |")
    print(f"| no-change rerun | {total:,} | {quiet:.1f} | – | {quiet_rss:,.0f} MB |")
    print("rows per resource: " + ", ".join(f"{k} {int(v):,}" for k, v in sorted(counts.items())))
    print(f"release: {rel.resolve()}")


if __name__ == "__main__":
    main()
