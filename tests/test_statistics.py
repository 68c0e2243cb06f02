"""The statistics builder on the committed embedded snapshots, its checks and its schemas."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from frictionless import Package

from opendata import snapshot
from opendata.config import Config, load
from opendata.model import Build
from opendata.paths import REPO_ROOT, Paths
from opendata.tables import load_schema, to_csv_bytes
from opendata.transform.statistics import build

PKG = "integration_statistics"
KEY_RE = re.compile(r"^(DG|[0-9]{2}|[0-9]{5}|[0-9]{8}|[0-9]{12})$")


@pytest.fixture(scope="module")
def config() -> Config:
    return load()


def _snapshots(config: Config, raw_root: Path = REPO_ROOT / "data") -> dict[str, snapshot.Snapshot]:
    paths = Paths(raw_root)
    return {s.id: snapshot.latest(paths.source_raw(s.id), s.id) for s in config.sources_for(PKG)
            if s.verified}


@pytest.fixture(scope="module")
def result(config: Config) -> Build:
    return build(config.packages[PKG], config, _snapshots(config), None)


def _frame(b: Build, name: str) -> pd.DataFrame:
    return next(r.frame for r in b.resources if r.name == name)


def _one(frame: pd.DataFrame, **match: str) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for col, want in match.items():
        mask &= frame[col].eq(want)
    rows = frame[mask]
    assert len(rows) == 1, (match, rows)
    return rows.iloc[0]


def test_builds_without_errors(result: Build) -> None:
    assert result.errors == []
    assert [r.name for r in result.resources] == [
        "population", "protection_seekers", "employees", "immigration_history", "census_population",
        "city_figures", "derived_indicators", "regions", "indicators", "series_breaks"]


def test_exact_figures(result: Build) -> None:
    pop = _frame(result, "population")
    assert _one(pop, region_key="16063", sex_code="")["value"] == 154957
    # 16056 ended on 2021-06-30: the source's '-' rows for 2024 are left out, not zeros
    assert "16056" not in set(pop["region_key"])
    assert {(d["resource"], d["region_key"], d["rows"]) for d in result.meta["dropped"]} == {
        ("population", "16056", 3), ("employees", "16056", 6)}
    census = _frame(result, "census_population")
    assert _one(census, region_key="160630105105")["value"] == 39931
    emp = _frame(result, "employees")
    assert _one(emp, region_key="16", nationality_code="NATA", sex_code="")["value"] == 78539
    der = _frame(result, "derived_indicators")
    share = _one(der, region_key="16", indicator="foreigners_share_employees")
    assert (share["numerator"], share["denominator"]) == (78539, 783130)
    assert share["value"] == round(78539 / 783130 * 100, 2)
    prot = _one(der, region_key="16063", indicator="protection_seekers_per_1000")
    assert (prot["numerator"], prot["denominator"]) == (5150, 154957)
    assert "rounded to a multiple of 5" in prot["note"]
    city = _one(der, region_key="16056", indicator="foreigners_share_population")
    assert city["value"] == round(3442 / 42983 * 100, 2) and city["reference_date"] == "2017-12-31"
    assert set(der["topic"]) == {"demography", "labour_market"}


def test_never_merges_across_the_break(result: Build) -> None:
    der = _frame(result, "derived_indicators")
    for _, row in der.iterrows():
        refs = set(re.findall(r"reference_date=([0-9-]+)", row["input_keys"]))
        regs = set(re.findall(r"region_key=(\w+)", row["input_keys"]))
        assert refs == {row["reference_date"]} and regs == {row["region_key"]}
    breaks = _frame(result, "series_breaks")
    assert set(breaks["region_key"]) == {"16056", "16063", "16063105"}
    regions = _frame(result, "regions").set_index("key")
    assert regions.loc["16056", "valid_to"] == "2021-06-30"
    assert regions.loc["16056", "successor_key"] == "16063105"
    assert "07232218" not in regions.index


def test_meta_for_the_readme(result: Build, config: Config) -> None:
    assert any("12521" in m for m in result.meta["missing"])
    assert any("16063" in b for b in result.meta["breaks"])
    assert any(line.startswith("`population` (") and "16063: 2024-12-31" in line
               for line in result.meta["coverage"])
    assert "Wartburgkreis 2024" in result.meta["summary"]["de"]


def test_region_keys_stay_strings(result: Build, tmp_path: Path) -> None:
    for res in result.resources:
        col = "key" if res.name == "regions" else "region_key"
        if col not in res.frame.columns:
            continue
        assert all(isinstance(k, str) and KEY_RE.match(k) for k in res.frame[col]), res.name
        path = tmp_path / f"{res.name}.csv"
        path.write_bytes(to_csv_bytes(res.frame, load_schema(res.schema_path)))
        back = pd.read_csv(path, dtype={col: str}, keep_default_na=False)
        assert list(back[col]) == list(res.frame[col])


def _write_package(b: Build, root: Path) -> Path:
    resources = []
    for res in b.resources:
        schema = load_schema(res.schema_path)
        (root / f"{res.name}.csv").write_bytes(to_csv_bytes(res.frame, schema))
        resources.append({"name": res.name, "path": f"{res.name}.csv", "format": "csv",
                          "schema": schema})
    desc = root / "datapackage.json"
    desc.write_text(json.dumps({"name": PKG, "resources": resources}), encoding="utf-8")
    return desc


def test_frames_validate_with_frictionless(result: Build, tmp_path: Path) -> None:
    report = Package(str(_write_package(result, tmp_path))).validate()
    assert report.valid, report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])


def test_foreign_keys_are_checked(result: Build, tmp_path: Path) -> None:
    desc = _write_package(result, tmp_path)
    regions = tmp_path / "regions.csv"
    lines = regions.read_text(encoding="utf-8").splitlines(keepends=True)
    regions.write_text("".join(x for x in lines if not x.startswith("16063,")), encoding="utf-8")
    report = Package(str(desc)).validate()
    assert "foreign-key" in {row[0] for row in report.flatten(["type"])}


CITY_HEADER = ("reference_date,region_key,region_name,indicator,sex_code,sex_label,"
               "citizenship_code,citizenship_label,value,unit,source\n")
GOOD = '2017-12-31,16056,"Eisenach, kreisfreie Stadt",city_inhabitants,,,,,42983,count,"example"\n'
BAD_CASES = {
    "negative-count": ('2017-12-31,16056,"Eisenach, kreisfreie Stadt",city_foreigners,,,,,-5,count,"x"\n',
                       "value"),
    "share-above-100": ('2017-12-31,16056,"Eisenach, kreisfreie Stadt",city_foreigners_share,,,,,'
                        '120,percent,"x"\n', "value"),
    "unknown-region": ('2017-12-31,16063999,"Eisenach",city_inhabitants,,,,,374,count,"x"\n',
                       "region_key"),
    "duplicate-key": (GOOD, "region_key,reference_date,sex_code,citizenship_code,indicator"),
    "period-out-of-range": ('1899-12-31,16056,"Eisenach, kreisfreie Stadt",city_inhabitants,,,,,'
                            '1,count,"x"\n', "period"),
}


@pytest.mark.parametrize("code", sorted(BAD_CASES))
def test_bad_city_data_gives_error_issue(code: str, config: Config, tmp_path: Path) -> None:
    line, fld = BAD_CASES[code]
    content = (CITY_HEADER + GOOD + line).encode("utf-8")
    file = snapshot.FetchedFile("data.csv", content, "file:city/kennzahlen.csv")
    snap = snapshot.store(tmp_path / "city_figures", "city_figures", "table", [file],
                          snapshot.sha256_bytes(content))
    snaps = {**_snapshots(config), "city_figures": snap}
    b = build(config.packages[PKG], config, snaps, None)
    hits = [i for i in b.errors if i.code == code]
    assert hits, [str(i) for i in b.issues]
    assert hits[0].source == "city_figures" and hits[0].resource == "city_figures"
    assert hits[0].field == fld and isinstance(hits[0].row, int) and hits[0].row >= 1


def test_negative_count_in_a_genesis_snapshot(config: Config, tmp_path: Path) -> None:
    snaps = _snapshots(config)
    old = snaps["population_kreise"]
    with zipfile.ZipFile(io.BytesIO(old.read("data"))) as zf:
        name = zf.namelist()[0]
        text = zf.read(name).decode("utf-8-sig").replace(";76953;", ";-76953;")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, ("\ufeff" + text).encode("utf-8"))
    file = snapshot.FetchedFile("data.zip", buf.getvalue(), "https://example.invalid/data/tablefile")
    snaps["population_kreise"] = snapshot.store(tmp_path / "p", "population_kreise", "genesis",
                                                [file], "x")
    b = build(config.packages[PKG], config, snaps, None)
    (hit,) = [i for i in b.errors if i.code == "negative-count"]
    frame = _frame(b, "population")
    assert (hit.source, hit.resource, hit.field) == ("population_kreise", "population", "value")
    assert frame.iloc[hit.row - 1]["sex_code"] == "GESM"
