"""Site charts from published CSVs read in blocks: columnar filters and sums, not rows as dicts.

The figures are checked against sums computed independently (csv.DictReader) on the real
embedded release (tests/golden) and on a small BEISPIEL table whose dates are out of order
across blocks.
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import REPO

import opendata.fastcheck.stream
from opendata import charts, pages, site
from opendata.paths import Paths

GOLDEN = REPO / "tests" / "golden" / "integration_statistics"
TOP = {"protection_status_code": set(charts.PROTECTION_TOP_LEVEL)}


def _published(tmp_path: Path, data: Path = GOLDEN / "data") -> tuple[Paths, site.Published]:
    """A release of integration_statistics holding the CSVs of ``data``."""
    paths = Paths(tmp_path / "data")
    rel = paths.package_dir("integration_statistics") / "1.0.0"
    shutil.copytree(data, rel / "data")
    names = sorted(p.stem for p in (rel / "data").glob("*.csv"))
    desc: dict[str, Any] = {"resources": [{"name": n} for n in names]}
    return paths, site.Published("integration_statistics", {}, [{"version": "1.0.0"}], desc, {})


def _expected(path: Path) -> tuple[str, dict[tuple[str, str], float]]:
    """The chart's figures the slow way: every row as a dict, summed in Python."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh)
                if r["protection_status_code"] in charts.PROTECTION_TOP_LEVEL and r["value"]]
    latest = max(r["reference_date"] for r in rows)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        if r["reference_date"] == latest:
            sums[(r["region_name"], r["protection_status_label"])] += float(r["value"])
    return latest, dict(sums)


def _got(sums: Any) -> dict[tuple[str, str], float]:
    return {(r.region_name, r.protection_status_label): r.value for r in sums.itertuples()}


@pytest.mark.parametrize("block", [opendata.fastcheck.stream.BLOCK_SIZE, 2048])
def test_protection_sums_of_the_real_release(tmp_path: Path, block: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opendata.fastcheck.stream, "BLOCK_SIZE", block)  # 2 KiB: ~20 blocks
    paths, pub = _published(tmp_path)
    sums = site.column_sums(paths, pub, "protection_seekers", charts.PROTECTION_BY, TOP,
                            latest="reference_date")
    latest, want = _expected(GOLDEN / "data" / "protection_seekers.csv")
    assert sums is not None and set(sums["reference_date"]) == {latest}
    assert _got(sums) == want and len(want) >= 2
    assert list(sums.columns) == [*charts.PROTECTION_BY, "value"]


def test_protection_chart_draws_the_sums(tmp_path: Path) -> None:
    paths, pub = _published(tmp_path)
    latest, want = _expected(GOLDEN / "data" / "protection_seekers.csv")
    chart = next(c for c in pages.package_charts(paths, pub) if c.id == "chart-protection")
    assert chart.svg is not None and f"Schutzsuchende nach Schutzstatus, {latest}" in chart.svg
    for (region, status), value in want.items():
        assert f"{status} ({region}): {charts._fmt(value)} Personen" in chart.svg


BEISPIEL_HEAD = ("region_name,reference_date,protection_status_code,protection_status_label,"
                 "sex_code,value")


def _beispiel(tmp_path: Path) -> Path:
    """A small BEISPIEL table: the newest date sits in the middle, older dates follow."""
    lines = [BEISPIEL_HEAD]
    for date, value in (("2022-12-31", "100"), ("2023-12-31", "40"), ("2021-12-31", "7")):
        for i in range(60):
            lines += [f"BEISPIEL Kreis {i % 3},{date},SCHUTZST-OF,offen,GESM,{value}",
                      f"BEISPIEL Kreis {i % 3},{date},SCHUTZST-X,\"Beispiel, mit Komma\",GESW,5",
                      f"BEISPIEL Kreis {i % 3},2030-12-31,SCHUTZST-AK-2,nicht oben,GESW,1"]
    lines += ["BEISPIEL Kreis 0,2029-12-31,SCHUTZST-OF,offen,GESM,",  # no value: no date
              "BEISPIEL Kreis 0,2023-12-31,SCHUTZST-OF,offen,GESW,2.5"]
    data = tmp_path / "beispiel" / "data"
    data.mkdir(parents=True)
    (data / "protection_seekers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def test_latest_date_and_sums_across_blocks(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opendata.fastcheck.stream, "BLOCK_SIZE", 1024)
    data = _beispiel(tmp_path)
    paths, pub = _published(tmp_path, data)
    sums = site.column_sums(paths, pub, "protection_seekers", charts.PROTECTION_BY, TOP,
                            latest="reference_date")
    assert sums is not None and set(sums["reference_date"]) == {"2023-12-31"} and len(sums) == 6
    assert _got(sums) == {("BEISPIEL Kreis 0", "offen"): 20 * 40 + 2.5,
                          ("BEISPIEL Kreis 1", "offen"): 20 * 40.0,
                          ("BEISPIEL Kreis 2", "offen"): 20 * 40.0,
                          ("BEISPIEL Kreis 0", "Beispiel, mit Komma"): 20 * 5.0,
                          ("BEISPIEL Kreis 1", "Beispiel, mit Komma"): 20 * 5.0,
                          ("BEISPIEL Kreis 2", "Beispiel, mit Komma"): 20 * 5.0}
    assert _expected(data / "protection_seekers.csv") == ("2023-12-31", _got(sums))
    everything = site.column_sums(paths, pub, "protection_seekers", ["sex_code"])
    assert everything is not None
    assert _got_by(everything, "sex_code") == {"GESM": 60 * 147.0, "GESW": 60 * 3 * 6 + 2.5}


def _got_by(sums: Any, col: str) -> dict[str, float]:
    return dict(zip(sums[col], sums["value"], strict=True))


def test_missing_resource_column_or_rows_give_none(tmp_path: Path) -> None:
    paths, pub = _published(tmp_path)
    assert site.column_sums(paths, pub, "no_such_resource", ["region_name"]) is None
    assert site.column_sums(paths, pub, "protection_seekers", ["no_such_column"]) is None
    assert site.column_sums(paths, pub, "protection_seekers", ["region_name"],
                            {"protection_status_code": {"NO-SUCH-CODE"}}) is None
    assert charts.protection_chart(None).svg is None


def test_csv_blocks_keep_the_wanted_columns_and_rows(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opendata.fastcheck.stream, "BLOCK_SIZE", 2048)
    path = GOLDEN / "data" / "protection_seekers.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    blocks = list(site.csv_blocks(path, ["value", "region_name", "nope"],
                                  {"sex_code": {"GESW"}}))
    assert len(blocks) > 1 and all(b.column_names == ["value", "region_name"] for b in blocks)
    got = [r for b in blocks for r in b.to_pylist()]
    assert got == [{"value": r["value"], "region_name": r["region_name"]}
                   for r in rows if r["sex_code"] == "GESW"]
    assert list(site.csv_blocks(path, ["value"], {"nope": {"x"}})) == []
    assert list(site.csv_blocks(path, ["nope"])) == []


def test_a_chart_of_many_regions_shows_the_largest_and_says_so() -> None:
    """Hundreds of Kreise (BEISPIEL): the chart draws MAX_BARS bars, the largest first, and its
    note names how many values there are and the CSV that holds all of them."""
    n = 400
    sums = pd.DataFrame({"reference_date": ["2024-12-31"] * n,
                         "region_name": [f"Beispielkreis {i:03d}" for i in range(n)],
                         "protection_status_label": ["Beispielstatus"] * n,
                         "value": [float(i) for i in range(n)]})
    chart = charts.protection_chart(sums)
    assert chart.svg is not None and chart.svg.count("<rect") == charts.MAX_BARS
    first = chart.svg.index("Beispielkreis 399")
    assert first < chart.svg.index("Beispielkreis 398") and "Beispielkreis 369" not in chart.svg
    assert "30 largest of 400 values" in chart.note and "protection_seekers.csv" in chart.note
