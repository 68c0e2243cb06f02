"""Benchmark of the statistics transform (derived indicators, custom checks, coverage) at scale.

SYNTHETIC data only: tidy frames shaped like the published population, employees and
protection_seekers resources, for N invented Kreis keys × years. Prints rows, seconds and
rows/s per stage so growth can be read off (linear cost: 10× rows ≈ 10× seconds).

    .venv/bin/python benchmarks/bench_transform.py [rows ...]
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import pandas as pd

from opendata import coverage
from opendata.transform import derived
from opendata.transform.indicators import PROTECTION_TOP_LEVEL
from opendata.transform.stat_checks import check_all

YEARS = list(range(2014, 2025))
PK = {"population": ["region_key", "reference_date", "sex_code", "indicator"],
      "employees": ["region_key", "reference_date", "nationality_code", "sex_code", "indicator"],
      "protection_seekers": ["region_key", "reference_date", "protection_status_code",
                             "sex_code", "citizenship_code", "indicator"]}


def _grid(regions: int, **dims: list[str]) -> pd.DataFrame:
    keys = [f"{16000 + i:05d}" if i < 99_999 else f"{i:08d}" for i in range(regions)]
    index = pd.MultiIndex.from_product([keys, [f"{y}-12-31" for y in YEARS], *dims.values()],
                                       names=["region_key", "reference_date", *dims])
    frame = index.to_frame(index=False)
    n = len(frame)
    rng = np.random.default_rng(0)
    frame["region_name"] = "Beispielkreis " + frame["region_key"]
    frame["region_level"] = "district"
    frame["period"] = frame["reference_date"].str.slice(0, 4).astype("Int64")
    frame["value"] = rng.integers(1, 100_000, n).astype("float64")
    frame["unit"] = "count"
    frame["value_note"] = ""
    frame["source_table"] = "SYNTHETIC"
    return frame


def frames(rows: int) -> dict[str, pd.DataFrame]:
    """About ``rows`` rows in all, split over three resources like the real tables."""
    per_region = len(YEARS) * (3 + 6 + 5 * 3 * 4)
    regions = max(1, rows // per_region)
    pop = _grid(regions, sex_code=["", "GESM", "GESW"])
    emp = _grid(regions, nationality_code=["", "NATA"], sex_code=["", "GESM", "GESW"])
    prot = _grid(regions, protection_status_code=[*PROTECTION_TOP_LEVEL, "SCHUTZST-AK-2",
                                                  "AUSRPFL-1"],
                 sex_code=["GESM", "GESW", "X"], citizenship_code=["ST100", "ST200", "ST300", "UNK"])
    for f, ind in ((pop, "BEVSTD"), (emp, "ERW032"), (prot, "BEV030")):
        f["indicator"] = ind
    return {"population": pop, "employees": emp, "protection_seekers": prot}


def _timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - start, out


def run(rows: int) -> None:
    """Time each stage on about ``rows`` synthetic rows and print one line."""
    data = frames(rows)
    total = sum(len(f) for f in data.values())
    t_derived, (out, missing, _) = _timed(lambda: derived.compute(data, PK))  # type: ignore[misc]
    known = set(data["population"]["region_key"])
    t_checks, _ = _timed(lambda: [check_all(f, PK[n], known, "", n) for n, f in data.items()])
    t_cov, _ = _timed(lambda: coverage.temporal(data.values()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{total:>10,} rows | derived {t_derived:7.2f} s ({len(out):,} values) | checks "
          f"{t_checks:6.2f} s | temporal {t_cov:5.2f} s | {total / (t_derived + t_checks):,.0f} "
          f"rows/s | peak RSS {peak:,.0f} MB", flush=True)


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [30_000, 300_000, 3_000_000]:
        run(n)
