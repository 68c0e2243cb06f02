"""tidy_genesis on real rows (tests/fixtures/ffcsv, 12411-01-01-4) modified in the test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opendata import config as config_mod
from opendata.ffcsv import read_ffcsv
from opendata.tables import field_names, load_schema, primary_key
from opendata.transform.statistics import schema_path
from opendata.transform.tidy import tidy_genesis

EXCERPT = Path(__file__).parent / "fixtures" / "ffcsv" / "12411-01-01-4_excerpt_de_flat.csv"


def _tidy(csv: bytes, pk_extra: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list]:
    source = config_mod.load().source("population_kreise")
    schema = load_schema(schema_path(source.package, source.resource))
    frame = read_ffcsv(csv, source=source.id, language="de")
    return tidy_genesis(frame, source, source.resource, field_names(schema),
                        primary_key(schema) + list(pk_extra))


def _with_percent_rows() -> bytes:
    """In-test modification: every row given a second time in the unit Prozent (as Zensus does)."""
    lines = EXCERPT.read_bytes().decode("utf-8-sig").strip().split("\n")
    percent = [line.replace(";Anzahl;", ";Prozent;") for line in lines[1:]]
    return "\n".join(lines + percent).encode()


def test_several_units_per_key_need_unit_in_the_primary_key() -> None:
    _, issues = _tidy(_with_percent_rows())
    (issue,) = [i for i in issues if i.code == "several-units-per-key"]
    assert issue.severity == "error" and "Anzahl, Prozent" in issue.message
    assert "no 'unit'" in issue.message and "primaryKey" in issue.message
    frame, issues = _tidy(_with_percent_rows(), pk_extra=("unit",))
    assert not [i for i in issues if i.code == "several-units-per-key"]
    assert sorted(set(frame["unit"])) == ["count", "percent"]


def test_one_unit_per_key_passes() -> None:
    _, issues = _tidy(EXCERPT.read_bytes())
    assert not [i for i in issues if i.severity == "error"]


def test_a_time_variable_without_dates_does_not_fit_a_date_key() -> None:
    csv = EXCERPT.read_bytes().replace(b";STAG;Stichtag;2024-12-31;", b";JAHR;Jahr;2024;")
    _, issues = _tidy(csv)
    (issue,) = [i for i in issues if i.code == "time-variable-mismatch"]
    assert "time variable ['JAHR']" in issue.message and issue.field == "reference_date"


def test_formula_labels_are_neutralised_with_a_warning() -> None:
    csv = EXCERPT.read_bytes().replace(b";Wartburgkreis;", b";=HYPERLINK(\"x\");")
    csv = csv.replace(b";weiblich;", b";\x00+1;")
    frame, issues = _tidy(csv)
    assert not frame.map(lambda v: isinstance(v, str) and v[:1] in ("=", "+", "-", "@")).to_numpy().any()
    assert set(frame.loc[frame["region_key"] == "16063", "region_name"]) == {"'=HYPERLINK(\"x\")"}
    assert "'+1" in set(frame["sex_label"])
    found = {i.field: i for i in issues if i.code == "formula-neutralised"}
    assert set(found) == {"region_name", "sex_label"}
    assert {i.severity for i in found.values()} == {"warning"}


def test_an_empty_frame_says_no_data_rows() -> None:
    source = config_mod.load().source("population_kreise")
    schema = load_schema(schema_path(source.package, source.resource))
    frame = read_ffcsv(EXCERPT.read_bytes()).iloc[0:0]
    _, issues = tidy_genesis(frame, source, source.resource, field_names(schema), primary_key(schema))
    assert "no-data-rows" in {i.code for i in issues}
    assert not [i for i in issues if "map to []" in i.message]
