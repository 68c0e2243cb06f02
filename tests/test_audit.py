"""What an independent audit of release 1.0.0 found (issue 12): each published byte is true.

One publish of the embedded data, under a strict umask, and the checks of what it says about
itself: servable permissions, foreign keys, attribution, coverage, temporal extent, dropped rows.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from helpers import copy_raw

from opendata import config, pipeline
from opendata.paths import Paths

STAT = "integration_statistics"
MEAS = "integration_measures"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data published in-process while the umask forbids group and world access."""
    root = copy_raw(tmp_path_factory.mktemp("audit") / "data")
    old = os.umask(0o077)
    try:
        pipeline.publish_all(config.load(), Paths(root))
    finally:
        os.umask(old)
    return root


def _release(data: Path, package: str) -> Path:
    return data / "published" / package / "1.0.0"


def _csv(data: Path, package: str, resource: str) -> pd.DataFrame:
    return pd.read_csv(_release(data, package) / "data" / f"{resource}.csv", dtype=str,
                       keep_default_na=False)


def _desc(data: Path, package: str) -> dict:
    return json.loads((_release(data, package) / "datapackage.json").read_text(encoding="utf-8"))


def test_published_tree_is_world_readable_whatever_the_umask(data: Path) -> None:
    published = data / "published"
    seen = 0
    for path in [published, *published.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        want = 0o755 if path.is_dir() else 0o644
        assert mode == want, f"{path.relative_to(data)} has mode {oct(mode)}, want {oct(want)}"
        seen += 1
    assert seen > 40
    assert (published / STAT / "1.0.0" / "data" / "population.csv").is_file()


def test_readme_names_foreign_key_fields_whole(data: Path) -> None:
    text = (_release(data, STAT) / "README.md").read_text(encoding="utf-8")
    assert "r, e, g" not in text and "`k, e, y`" not in text
    assert "Foreign key: `region_key` → `regions`: `key`" in text
    assert "Foreign key: `indicator` → `indicators`: `code`" in text
    # a self-reference (reference.resource = "") names the resource itself
    assert "Foreign key: `successor_key` → `regions`: `key`" in text


def test_attribution_names_exactly_the_sources_with_rows(data: Path) -> None:
    stat_attr = _desc(data, STAT)["licenses"][0]["attribution"]
    for table in ("12411-01-01-4", "12531-0043", "13111-01-03-4", "1000A-2022", "1000A-0000"):
        assert any(table in a for a in stat_attr), table
    # the press figure of end-2020 is published, so the newspaper is named
    assert "Thüringische Landeszeitung, „Zuzüge klettern in Eisenach über den Wert der Wegzüge“" \
        in stat_attr
    # unfetched (unverified) tables have no rows: not attributed, but listed as not covered
    assert not any("12521-0040" in a or "12711-01-03-4" in a for a in stat_attr)
    readme = (_release(data, STAT) / "README.md").read_text(encoding="utf-8")
    licence = readme.split("## Lizenz und Namensnennung", 1)[1]
    missing = readme.split("## Fehlt / Not covered", 1)[1].split("\n## ", 1)[0]
    assert "12521-0040" not in licence and "12521-0040" in missing
    assert all(f"- {a}" in licence for a in stat_attr)


def test_measures_are_attributed_to_their_public_source_and_say_how_many(data: Path) -> None:
    desc = _desc(data, MEAS)
    announcement = ("eisenachonline.de, „Integrationskonzept der Stadt Eisenach ist online“ "
                    "(Ankündigung der Stadt Eisenach, 2020)")
    assert desc["licenses"][0]["attribution"] == [announcement]
    measures = _csv(data, MEAS, "measures")
    n = len(measures)
    assert n == 5
    assert desc["title"].endswith(f"({n} von 30 Maßnahmen)")
    assert f"{n} of 30 measures" in desc["title_en"]
    assert f"{n} von 30 Maßnahmen" in desc["description"]
    ttl = (data / "published" / "catalog.ttl").read_text(encoding="utf-8")
    page = (data / "published" / MEAS / "index.html").read_text(encoding="utf-8")
    for text in (ttl, page):
        assert f"{n} von 30 Maßnahmen" in text and "Integrationsmanagement\"" not in text
    assert announcement in page


def test_temporal_coverage_spans_every_date_in_the_data(data: Path) -> None:
    measures = _csv(data, MEAS, "measures")
    dates = [d for col in ("start_date", "end_date", "status_date") for d in measures[col] if d]
    assert min(dates) == "2018" and max(dates) == "2020"  # start 2018, status reviewed 2020
    assert _desc(data, MEAS)["temporal"] == {"start": "2018-01-01", "end": "2020-12-31"}
    stat_dates = sorted(d for name in ("population", "employees", "city_figures",
                                       "immigration_history", "derived_indicators")
                        for d in _csv(data, STAT, name)["reference_date"])
    assert _desc(data, STAT)["temporal"] == {"start": stat_dates[0], "end": stat_dates[-1]}
    ttl = (data / "published" / "catalog.ttl").read_text(encoding="utf-8")
    page = (data / "published" / MEAS / "index.html").read_text(encoding="utf-8")
    assert '"2018-01-01"^^xsd:date' in ttl and '"2020-12-31"^^xsd:date' in ttl
    assert "<time>2018-01-01</time> – <time>2020-12-31</time>" in page
    readme = (_release(data, MEAS) / "README.md").read_text(encoding="utf-8")
    assert "## Zeitraum / Time coverage\n\n2018-01-01 – 2020-12-31" in readme


def test_descriptions_say_what_the_data_contains(data: Path) -> None:
    desc = _desc(data, STAT)
    regions = _csv(data, STAT, "regions").set_index("key")["name"]
    for text in (desc["description"], desc["description_en"]):
        assert "continuous" not in text and "durchgehend" not in text
        assert "für Eisenach im Vergleich" not in text
    # every region with rows in a data resource is named in the generated sentence, with years
    for name in ("population", "employees", "census_population", "city_figures"):
        frame = _csv(data, STAT, name)
        for key in set(frame["region_key"]):
            assert regions[key] in desc["description_en"], (name, key)
    assert "Population by sex: Wartburgkreis 2024." in desc["description_en"]
    assert "Figures reported by the city: Eisenach, kreisfreie Stadt 2017, 2020." \
        in desc["description_en"]
    project_readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    assert "continuous across" not in project_readme


def test_indicator_sources_name_the_tables_actually_used(data: Path) -> None:
    ind = _csv(data, STAT, "indicators").set_index("code")["source"]
    assert ind["immigration_history_share"] == "Zensus 2022 Datenbank, Tabelle 1000A-2022"
    assert "1000A-0000" not in ind["immigration_history_share"]
    assert "12531-0043" in ind["protection_seekers_per_1000"]
    assert "12411-01-01-4" in ind["protection_seekers_per_1000"]
    # the 2017 share uses the city's report only, not the newspaper's 2020 figure
    assert "Landeszeitung" not in ind["foreigners_share_population"]
    assert "Landeszeitung" in ind["city_inhabitants"]


def test_a_dissolved_region_is_not_a_zero(data: Path) -> None:
    for name in ("population", "employees"):
        frame = _csv(data, STAT, name)
        late = frame[(frame["region_key"] == "16056") & (frame["reference_date"] > "2021-06-30")]
        assert late.empty, name
    readme = (_release(data, STAT) / "README.md").read_text(encoding="utf-8")
    missing = readme.split("## Fehlt / Not covered", 1)[1].split("\n## ", 1)[0]
    assert "for 16056 (Eisenach, kreisfreie Stadt) on 2024" not in missing
    assert "for 16056 (Eisenach, kreisfreie Stadt) on 2025" not in missing
    report = json.loads((data / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    stats = next(p for p in report["packages"] if p["package"] == STAT)
    assert stats["dropped_rows"] == 9
    assert {(d["resource"], d["region_key"], d["rows"]) for d in stats["dropped"]} == {
        ("population", "16056", 3), ("employees", "16056", 6)}
    assert all("did not exist" in d["reason"] for d in stats["dropped"])


def test_coverage_text_stays_small_with_many_regions() -> None:
    from opendata import coverage

    keys = [f"{16000 + i:05d}" for i in range(400)] + ["DG"]
    frame = pd.DataFrame({"region_key": keys, "period": 2024, "reference_date": "2024-12-31"})
    levels = {k: "country" if k == "DG" else "district" for k in keys}
    names = {k: f"Kreis {k}" for k in keys} | {"DG": "Deutschland"}
    assert coverage.region_years(frame, names, levels, "de") == "Deutschland / 400 Kreise 2024"
    assert coverage.region_dates(frame, levels) == "DG: 2024-12-31; 400 district keys: 2024-12-31"
    few = frame[frame["region_key"].isin(["DG", "16001"])]
    assert coverage.region_years(few, names, levels) == "Deutschland / Kreis 16001 2024"
