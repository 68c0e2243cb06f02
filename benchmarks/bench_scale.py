"""End-to-end scale benchmark: `opendata publish` on a SYNTHETIC protection-seekers table of N rows.

The table is shaped exactly like the real 12531-0043 answer (same ffcsv header, statistics code,
variables and value format), but its cells are invented: every real Kreis key of the registry ×
reference dates × the five top-level and nested status categories × sex × synthetic citizenship
codes (ST100…), with random counts. Labels say BEISPIEL. The population table the derived
indicator needs is taken from the embedded real snapshot's layout with synthetic values too.
Each size is published as a whole process; rows, seconds and peak RSS are printed.

    .venv/bin/python benchmarks/bench_scale.py [rows ...]     (default 300000 1000000 3000000)
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opendata import canonical, places, snapshot  # noqa: E402
from opendata.ffcsv import csv_blocks  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "scale"
STATUS = ["SCHUTZST-OF", "SCHUTZST-AK-1", "SCHUTZST-X", "SCHUTZST-AK-2", "AUSRPFL-1"]
SEXES = ["GESM", "GESW"]
CHUNK_LINES = 100_000  # synthetic lines generated at a time
HEAD12531 = ("statistics_code;statistics_label;time_code;time_label;time;1_variable_code;"
             "1_variable_label;1_variable_attribute_code;1_variable_attribute_label;"
             "2_variable_code;2_variable_label;2_variable_attribute_code;2_variable_attribute_label;"
             "3_variable_code;3_variable_label;3_variable_attribute_code;3_variable_attribute_label;"
             "4_variable_code;4_variable_label;4_variable_attribute_code;4_variable_attribute_label;"
             "value;value_unit;value_variable_code;value_variable_label")
HEAD12411 = ("statistics_code;statistics_label;time_code;time_label;time;1_variable_code;"
             "1_variable_label;1_variable_attribute_code;1_variable_attribute_label;"
             "2_variable_code;2_variable_label;2_variable_attribute_code;2_variable_attribute_label;"
             "value;value_unit;value_variable_code;value_variable_label")


def _kreise() -> list[str]:
    reg = places.load().regions
    keys = reg.index[(reg["level"] == "district") & reg.index.str.fullmatch(r"\d{5}")]
    return sorted(k for k in keys if not reg.at[k, "valid_to"])


def _grid(rows: int) -> tuple[list[str], list[str], int]:
    kreise = _kreise()
    years = [f"{y}-12-31" for y in range(2014, 2025)]
    per = len(kreise) * len(years) * len(STATUS) * len(SEXES)
    citizenships = max(1, rows // per)
    return kreise, years, citizenships


def protection_chunks(rows: int) -> Iterator[tuple[bytes, int]]:
    """About ``rows`` synthetic ffcsv lines of table 12531-0043 as (bytes, lines) chunks: the
    header, then about 100 k lines at a time (in table order), so the whole text is never held."""
    kreise, years, n_cit = _grid(rows)
    rng = np.random.default_rng(0)
    step = max(1, CHUNK_LINES // (len(STATUS) * len(SEXES) * n_cit))  # Kreise per chunk
    yield ("\ufeff" + HEAD12531 + "\n").encode("utf-8"), 0
    for year, at in ((y, i) for y in years for i in range(0, len(kreise), step)):
        idx = pd.MultiIndex.from_product([[year], kreise[at:at + step], STATUS, SEXES,
                                          [f"ST{100 + i:03d}" for i in range(n_cit)]])
        f = idx.to_frame(index=False, name=["time", "kreis", "status", "sex", "cit"])
        values = rng.integers(0, 200, len(f)) * 5
        line = ("12531;Statistik über Schutzsuchende (BEISPIEL);STAG;Stichtag;" + f["time"]
                + ";KREISE;Kreise;" + f["kreis"] + ";Beispielkreis " + f["kreis"]
                + ";SCHST2;Schutzstatuskategorie;" + f["status"] + ";Beispielstatus"
                + ";GES;Geschlecht;" + f["sex"] + ";Beispielgeschlecht;STAAG5;Staatsangehörigkeit;"
                + f["cit"] + ";Beispielland;" + pd.Series(values).astype(str)
                + ";Anzahl;BEV030;Schutzsuchende")
        yield ("\n".join(line.tolist()) + "\n").encode("utf-8"), len(f)


def zip_chunks(path: Path, member: str, chunks: Iterable[tuple[bytes, int]]) -> tuple[int, int]:
    """Write the chunks as the one member of a ZIP file, streamed; (lines, CSV bytes)."""
    lines = size = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open(member, "w", force_zip64=True) as out:
        for data, n in chunks:
            out.write(data)
            lines, size = lines + n, size + len(data)
    return lines, size


def population_csv(rows: int) -> bytes:
    """Synthetic ffcsv lines of table 12411-01-01-4 for the same Kreise and dates."""
    kreise, years, _ = _grid(rows)
    idx = pd.MultiIndex.from_product([years, kreise, ["", "GESM", "GESW"]])
    f = idx.to_frame(index=False, name=["time", "kreis", "sex"])
    values = np.random.default_rng(1).integers(30_000, 900_000, len(f))
    line = ("12411;Fortschreibung des Bevölkerungsstandes (BEISPIEL);STAG;Stichtag;" + f["time"]
            + ";KREISE;Kreise;" + f["kreis"] + ";Beispielkreis " + f["kreis"]
            + ";GES;Geschlecht;" + f["sex"] + ";Beispiel;" + pd.Series(values).astype(str)
            + ";Anzahl;BEVSTD;Bevölkerungsstand")
    return ("\ufeff" + HEAD12411 + "\n" + "\n".join(line.tolist()) + "\n").encode("utf-8")


def _config(dest: Path) -> Path:
    """The default config reduced to the two synthetic tables, all Kreise, no municipality."""
    text = (REPO / "config" / "opendata.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[municipality\].*?(?=^\[)", "", text)
    text = re.sub(r'(?m)^publisher_name = .*$', 'publisher_name = "Benchmark (BEISPIEL)"', text)
    text = re.sub(r"(?m)^max_csv_bytes = .*$", "", text)
    blocks = text.split("\n[[sources]]\n")
    kept = [blocks[0].replace("[settings]\n", "[settings]\nmax_csv_bytes = 8000000000\n", 1)]
    for block in blocks[1:]:
        sid = re.search(r'(?m)^id = "([^"]+)"', block)
        if sid and sid.group(1) in ("population_kreise", "protection_seekers"):
            block = re.sub(r"(?m)^region_levels = .*\n", "", block)
            kept.append(block.replace("[sources.params]\n",
                                      '[sources.params]\nregionalkey = ["?????"]\n'))
    text = "\n[[sources]]\n".join(kept)
    text = re.sub(r"(?ms)^\[packages\.integration_measures\].*?(?=^\[|^#)", "", text)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "opendata.toml").write_text(text, encoding="utf-8")
    return dest / "opendata.toml"


def _store(data: Path, source: str, table: str, member: str,
           chunks: Iterable[tuple[bytes, int]]) -> tuple[int, int]:
    """A raw snapshot of the synthetic table, written and hashed as streams; (lines, bytes)."""
    (data / "raw").mkdir(parents=True, exist_ok=True)
    path = data / "raw" / f".{source}.zip"
    lines, size = zip_chunks(path, member, chunks)
    raw = path.read_bytes()  # the compressed body, as a download would hold it
    path.unlink()
    files = [snapshot.FetchedFile("data.zip", raw, "synthetic:bench_scale", "data",
                                  {"name": table}, 200, {"Content-Type": "application/zip"})]
    content = canonical.canonical_csv_sha256_blocks(csv_blocks(raw, source=source, limit=1 << 40))
    snapshot.store(data / "raw" / source, source, "genesis", files, content,
                   note="SYNTHETIC (BEISPIEL) benchmark data")
    return lines, size


def run(rows: int) -> None:
    """Generate, publish as a whole process, print one line."""
    root = OUT / str(rows)
    shutil.rmtree(root, ignore_errors=True)
    cfg = _config(root / "config")
    start = time.perf_counter()
    n, size = _store(root / "data", "protection_seekers", "12531-0043",
                     "12531-0043_1_de_flat.csv", protection_chunks(rows))
    _store(root / "data", "population_kreise", "12411-01-01-4", "12411-01-01-4_1_de_flat.csv",
           [(population_csv(rows), 0)])
    made = time.perf_counter() - start
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "flows", "publish", "--config", str(cfg),
                          "--data-dir", str(root / "data"), "-q"], cwd=REPO, capture_output=True,
                         text=True, check=False)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    status = "ok" if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()[-300:]}"
    print(f"| {n:,} | {size / 1e6:,.0f} MB | {made:.1f} s | {took:.1f} s | "
          f"{n / took:,.0f} | {peak:,.0f} MB | {status} |", flush=True)


if __name__ == "__main__":
    print("| rows (12531) | CSV | generate | publish | rows/s | peak RSS (max so far) | outcome |")
    print("|---|---|---|---|---|---|---|")
    for size in [int(a) for a in sys.argv[1:]] or [300_000, 1_000_000, 3_000_000]:
        run(size)
