"""The city's templates: every raw-schema column, an example row, status drop-down, guide sheet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from test_measures import FIELDS, make_config, run_build

from opendata.sources import table
from opendata.transform.measures_normalise import STATUSES, normalise_status

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
RAW = {"massnahmen": "measures", "handlungsfelder": "fields_of_action"}


def raw_fields(name: str) -> list[str]:
    """Column names of a raw schema."""
    schema = json.loads((REPO / "schemas" / "raw" / f"{RAW[name]}.schema.json").read_text())
    return [f["name"] for f in schema["fields"]]


@pytest.mark.parametrize("name", ["massnahmen", "handlungsfelder"])
def test_xlsx_and_csv_templates_have_all_columns_and_one_example(name: str) -> None:
    xlsx = table.parse((TEMPLATES / f"{name}_vorlage.xlsx").read_bytes(), "xlsx")
    csv = table.parse((TEMPLATES / f"{name}_vorlage.csv").read_bytes(), "csv")
    assert list(xlsx.columns) == raw_fields(name)
    pd.testing.assert_frame_equal(xlsx, csv)
    assert len(xlsx) == 1 and xlsx.iloc[0]["id"].startswith("BEISPIEL")


def test_xlsx_status_dropdown_and_hints_sheet() -> None:
    book = openpyxl.load_workbook(TEMPLATES / "massnahmen_vorlage.xlsx")
    ws = book.worksheets[0]
    [dv] = ws.data_validations.dataValidation
    words = dv.formula1.strip('"').split(",")
    assert dv.type == "list" and str(dv.sqref) == "J2:J1000"  # column J = status
    assert [normalise_status(w) for w in words] == list(STATUSES)
    hints = [c for row in book["Hinweise"].iter_rows(values_only=True) for c in row if c]
    assert set(raw_fields("massnahmen")) <= set(hints)
    assert "verworfen" in hints


def test_template_left_unchanged_is_rejected(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, FIELDS, [])
    (tmp_path / "city" / "m.csv").write_bytes((TEMPLATES / "massnahmen_vorlage.csv").read_bytes())
    build = run_build(cfg, tmp_path / "data")
    assert [(i.code, i.row, i.field) for i in build.errors] == [("example-row", 1, "id")]


def test_script_regenerates_the_committed_csv_templates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_templates.py"), str(tmp_path)],
                   check=True)
    for name in RAW:
        assert (tmp_path / f"{name}_vorlage.csv").read_bytes() == \
            (TEMPLATES / f"{name}_vorlage.csv").read_bytes()
        fresh = table.parse((tmp_path / f"{name}_vorlage.xlsx").read_bytes(), "xlsx")
        committed = table.parse((TEMPLATES / f"{name}_vorlage.xlsx").read_bytes(), "xlsx")
        pd.testing.assert_frame_equal(fresh, committed)
