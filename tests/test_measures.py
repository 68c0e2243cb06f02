"""Measures builder: real config, real files, real snapshots, real frictionless.

The tables written here are test inputs (labelled "Testmaßnahme"), not facts about Eisenach.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import frictionless
import openpyxl
import pytest

from opendata import config as config_mod
from opendata import snapshot
from opendata.config import Config
from opendata.http import RetryPolicy
from opendata.model import Build
from opendata.sources import table
from opendata.transform import builder

PACKAGE = "integration_measures"
TODAY = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
FIELDS_HEADER = ["id", "titel_de", "titel_en", "beschreibung", "ziel", "quelle"]
MEASURES_HEADER = ["id", "handlungsfeld", "titel", "beschreibung", "verantwortlich", "partner",
                   "zielgruppe", "beginn", "ende", "status", "status_datum", "erfolgsindikator",
                   "quelle"]
FIELDS = [["HF1", "Testfeld eins", "Test field one", "", "", "Test"],
          ["HF2", "Testfeld zwei", "", "", "", "Test"]]


def load_schema(path: Path) -> dict[str, Any]:
    """A Table Schema file as a dict."""
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def measure(mid: str, **cells: str) -> list[str]:
    """One raw measure row with harmless defaults; override cells by German column name."""
    row = {"id": mid, "handlungsfeld": "HF1", "titel": f"Testmaßnahme {mid}",
           "beschreibung": "Testzeile", "verantwortlich": "Testamt", "partner": "",
           "zielgruppe": "", "beginn": "01.01.2026", "ende": "", "status": "geplant",
           "status_datum": "01.06.2026", "erfolgsindikator": "", "quelle": "Test"} | cells
    return [row[c] for c in MEASURES_HEADER]


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Write rows as csv (UTF-8, comma), cp1252.csv (semicolon), xlsx or json by suffix."""
    if path.suffix == ".xlsx":
        book = openpyxl.Workbook()
        for r in [header, *rows]:
            book.active.append(r)
        book.save(path)
    elif path.suffix == ".json":
        path.write_text(json.dumps([dict(zip(header, r, strict=True)) for r in rows]),
                        encoding="utf-8")
    else:
        cp1252 = path.name.endswith(".cp1252.csv")
        buf = io.StringIO()
        csv.writer(buf, delimiter=";" if cp1252 else ",", lineterminator="\r\n" if cp1252 else
                   "\n").writerows([header, *rows])
        path.write_bytes(buf.getvalue().encode("cp1252" if cp1252 else "utf-8"))
    return path


def make_config(root: Path, fields: list[list[str]], measures: list[list[str]],
                ext: str = "csv", *, review_days: int = 365) -> Config:
    """A registry in ``root`` with the two city tables written next to it."""
    (root / "city").mkdir(parents=True, exist_ok=True)
    write_table(root / "city" / f"hf.{ext}", FIELDS_HEADER, fields)
    write_table(root / "city" / f"m.{ext}", MEASURES_HEADER, measures)
    entries = [("fields_of_action", "hf"), ("measures", "m")]
    text = f"[settings]\nstatus_review_days = {review_days}\n\n[packages.{PACKAGE}]\n" \
           'builder = "measures"\nmeasures_in_concept = 30\nfields_in_concept = 9\n\n' \
           '[catalog]\npublisher_name = "Testkommune (BEISPIEL)"\n'
    for res, stem in entries:
        text += (f'\n[[sources]]\nid = "{res}"\nkind = "table"\nlocation = "city/{stem}.{ext}"\n'
                 f'package = "{PACKAGE}"\nschema = "{PACKAGE}/{res}"\nlicense = "dl-de/by-2-0"\n'
                 f'attribution = "Test"\nformat = "{"csv" if "csv" in ext else ext}"\n')
    (root / "opendata.toml").write_text(text, encoding="utf-8")
    return config_mod.load(root / "opendata.toml")


def run_build(cfg: Config, data_dir: Path, previous: Path | None = None, *,
              now: datetime = NOW, today: date = TODAY) -> Build:
    """Fetch both sources into snapshots (fixed time) and run the measures builder."""
    snaps = {}
    for src in cfg.sources_for(PACKAGE):
        got = table.fetch(src, cfg, policy=RetryPolicy(attempts=1))
        snaps[src.id] = snapshot.store(data_dir / "raw" / src.id, src.id, src.kind, got.files,
                                       got.content_sha256, now=now)
    build_fn = builder("measures")
    return build_fn(cfg.packages[PACKAGE], cfg, snaps, previous, today=today)  # type: ignore[no-any-return]


def csv_bytes(resource_frame: object, schema_path: Path) -> bytes:
    """Publisher-style CSV: UTF-8, comma, header, '\\n', schema order, booleans true/false."""
    schema = load_schema(schema_path)
    names = [f["name"] for f in schema["fields"]]
    frame = resource_frame.sort_values(schema.get("primaryKey") or names)  # type: ignore[attr-defined]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for rec in frame[names].to_dict("records"):
        w.writerow([str(v).lower() if isinstance(v, bool) else v for v in rec.values()])
    return buf.getvalue().encode("utf-8")


def publish_like(build: Build, folder: Path) -> Path:
    """Write the build's resources as <folder>/data/<name>.csv the way the publisher does."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for res in build.resources:
        (folder / "data" / f"{res.name}.csv").write_bytes(csv_bytes(res.frame, res.schema_path))
    return folder


def frictionless_report(build: Build, folder: Path) -> frictionless.Report:
    """Validate the published CSVs as one data package (foreign keys included)."""
    publish_like(build, folder)
    resources = [{"name": r.name, "path": f"data/{r.name}.csv", "profile": "tabular-data-resource",
                  "schema": load_schema(r.schema_path)} for r in build.resources]
    descriptor = folder / "datapackage.json"
    descriptor.write_text(json.dumps({"name": "m", "resources": resources}), encoding="utf-8")
    return frictionless.Package(str(descriptor)).validate()


def by(build: Build, name: str) -> dict[str, dict[str, object]]:
    """Rows of one resource keyed by id."""
    frame = next(r.frame for r in build.resources if r.name == name)
    return {str(rec["id"]): rec for rec in frame.to_dict("records")}


GOOD = [measure("M1"), measure("M2", status="in Umsetzung", partner="Jobcenter; Verein"),
        measure("M3", status="Abgeschlossen", ende="2026-05-31", beginn="03.2026"),
        measure("M4", handlungsfeld="HF2", status="", status_datum="", beginn="2025")]


@pytest.mark.parametrize("ext", ["xlsx", "json", "cp1252.csv"])
def test_csv_xlsx_json_give_identical_output(tmp_path: Path, ext: str) -> None:
    base = run_build(make_config(tmp_path / "csv", FIELDS, GOOD), tmp_path / "d1")
    other = run_build(make_config(tmp_path / "x", FIELDS, GOOD, ext), tmp_path / "d2")
    assert [r.name for r in base.resources] == [r.name for r in other.resources]
    for a, b in zip(base.resources, other.resources, strict=True):
        assert csv_bytes(a.frame, a.schema_path) == csv_bytes(b.frame, b.schema_path), a.name
    def where(i: object) -> dict[str, object]:  # the file name (and JSON: no sheet row) differs
        return {k: v for k, v in i.as_dict().items() if k not in ("file", "sheet_row")}  # type: ignore[attr-defined]

    assert [where(i) for i in base.issues] == [where(i) for i in other.issues]


def test_good_tables_normalise_and_validate(tmp_path: Path) -> None:
    build = run_build(make_config(tmp_path, FIELDS, GOOD), tmp_path / "data")
    assert build.errors == []
    rows = by(build, "measures")
    assert [rows[m]["status"] for m in ("M1", "M2", "M3", "M4")] == \
        ["planned", "in progress", "completed", ""]
    assert (rows["M3"]["start_date"], rows["M3"]["end_date"]) == ("2026-03", "2026-05-31")
    assert rows["M1"]["start_date"] == "2026-01-01" and rows["M1"]["removed"] is False
    summary = next(r.frame for r in build.resources if r.name == "measure_summary")
    counts = {(d, f, s): n for d, f, s, n in summary.itertuples(index=False)}
    assert counts[("total", "all", "all")] == 4
    assert counts[("status", "all", "completed")] == 1 and counts[("status", "all", "unknown")] == 1
    assert counts[("field_of_action", "HF1", "all")] == 3
    assert [w for w in build.meta["warnings"] if "status-missing" in w] == \
        ["measures (m.csv): status-missing in 1 row(s) (data rows 4; spreadsheet rows 5): "
         "no status recorded yet"]
    assert build.meta["coverage_counts"]["measures_documented"] == 4
    report = frictionless_report(build, tmp_path / "rel")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


@pytest.mark.parametrize(("word", "status"), [
    ("geplant", "planned"), ("IN UMSETZUNG", "in progress"), ("begonnen", "in progress"),
    ("laufend", "ongoing"), ("Dauerhaft", "ongoing"), ("fortlaufend", "ongoing"),
    ("umgesetzt", "completed"), ("ausgesetzt", "suspended"), ("pausiert", "suspended"),
    ("verworfen", "dropped"), ("eingestellt", "dropped"), ("in  progress", "in progress"),
    ("Ongoing", "ongoing")])
def test_status_words(tmp_path: Path, word: str, status: str) -> None:
    rows = [measure("M1", status=word, ende="2026-02-01")]
    build = run_build(make_config(tmp_path, FIELDS, rows), tmp_path / "data")
    assert by(build, "measures")["M1"]["status"] == status
    assert build.errors == []


ERROR_CASES = [
    ("duplicate-id", [measure("M1"), measure("M1")], 2, "id"),
    ("missing-id", [measure("M1"), measure("")], 2, "id"),
    ("example-row", [measure("BEISPIEL")], 1, "id"),
    ("missing-title", [measure("M1", titel="")], 1, "titel"),
    ("unknown-field-of-action", [measure("M1"), measure("M2", handlungsfeld="HF7")], 2,
     "handlungsfeld"),
    ("multiple-fields-of-action", [measure("M1", handlungsfeld="HF1, HF2")], 1, "handlungsfeld"),
    ("unknown-status", [measure("M1"), measure("M2"), measure("M3", status="irgendwie")], 3,
     "status"),
    ("start-after-end", [measure("M1", beginn="01.01.2026", ende="2025")], 1, "ende"),
    ("missing-end-date", [measure("M1", status="abgeschlossen")], 1, "ende"),
    ("invalid-date", [measure("M1", beginn="31.02.2026")], 1, "beginn"),
    ("invalid-date", [measure("M1", status_datum="gestern")], 1, "status_datum"),
]


@pytest.mark.parametrize(("code", "rows", "row", "field"), ERROR_CASES)
def test_each_error_names_row_and_field(tmp_path: Path, code: str, rows: list[list[str]],
                                        row: int, field: str) -> None:
    build = run_build(make_config(tmp_path, FIELDS, rows), tmp_path / "data")
    found = [(i.code, i.source, i.row, i.field) for i in build.errors]
    assert found == [(code, "measures", row, field)]


def test_field_table_errors_and_missing_column(tmp_path: Path) -> None:
    fields = [*FIELDS, ["HF2", "", "", "", "", ""]]
    cfg = make_config(tmp_path, fields, [measure("M1")])
    broken = "id,titel,status\nM1,Test,geplant\n"  # the template's other columns are missing
    (tmp_path / "city" / "m.csv").write_text(broken, encoding="utf-8")
    build = run_build(cfg, tmp_path / "data")
    assert ("duplicate-id", "fields_of_action", 3, "id") in \
        [(i.code, i.source, i.row, i.field) for i in build.errors]
    missing = sorted(i.field for i in build.errors if i.code == "missing-column")
    assert missing == sorted(set(MEASURES_HEADER) - {"id", "titel", "status"})


def test_warnings_review_responsible_unassigned(tmp_path: Path) -> None:
    # M4: reviewed exactly 365 days before TODAY, which is not "more than" 365 days
    rows = [measure("M1", status_datum="15.06.2025"), measure("M2", verantwortlich=""),
            measure("M3", handlungsfeld=""), measure("M4", status_datum="2025-06-30")]
    build = run_build(make_config(tmp_path, FIELDS, rows, review_days=365), tmp_path / "data")
    assert build.errors == []
    found = {(i.code, i.row, i.field) for i in build.issues if i.severity == "warning"}
    assert found == {("status-not-reviewed", 1, "status_datum"), ("no-responsible", 2,
                     "verantwortlich"), ("field-of-action-unassigned", 3, "handlungsfeld")}
    assert by(build, "measures")["M3"]["field_of_action"] == ""
    report = frictionless_report(build, tmp_path / "rel")  # empty FK is allowed by the schema
    assert report.valid


def test_formula_cells_are_neutralised_and_reported(tmp_path: Path) -> None:
    rows = [measure("M1", beschreibung='=HYPERLINK("http://x","klick")', partner="-Jobcenter"),
            measure("M2", zielgruppe="@alle", erfolgsindikator="+10 %")]
    build = run_build(make_config(tmp_path, FIELDS, rows), tmp_path / "data")
    m = by(build, "measures")
    assert m["M1"]["description"] == "'=HYPERLINK(\"http://x\",\"klick\")"
    assert (m["M1"]["partners"], m["M2"]["target_group"]) == ("'-Jobcenter", "'@alle")
    assert m["M2"]["success_indicator"] == "'+10 %"
    found = sorted((i.row, i.field) for i in build.issues if i.code == "formula-neutralised")
    assert found == [(1, "beschreibung"), (1, "partner"), (2, "erfolgsindikator"),
                     (2, "zielgruppe")]
    assert all(i.severity == "warning" for i in build.issues if i.code == "formula-neutralised")
    assert any("apostrophe" in n for n in build.meta["notes"])
    published = publish_like(build, tmp_path / "rel") / "data" / "measures.csv"
    cells = [c for r in csv.reader(published.read_text(encoding="utf-8").splitlines()) for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_schema_rejects_status_outside_vocabulary(tmp_path: Path) -> None:
    build = run_build(make_config(tmp_path, FIELDS, [measure("M1", status="irgendwie")]),
                      tmp_path / "data")
    report = frictionless_report(build, tmp_path / "rel")
    assert not report.valid
    errors = sorted((t.name, e.field_name, e.type) for t in report.tasks for e in t.errors)
    assert errors == [("measure_status_history", "status", "constraint-error"),
                      ("measures", "status", "constraint-error")]


def test_schemas_load_and_match_frames(tmp_path: Path) -> None:
    build = run_build(make_config(tmp_path, FIELDS, GOOD), tmp_path / "data")
    for res in build.resources:
        schema = frictionless.Schema.from_descriptor(str(res.schema_path))
        assert schema.field_names == list(res.frame.columns), res.name
    for name in ("measures", "fields_of_action"):
        raw = frictionless.Schema.from_descriptor(f"schemas/raw/{name}.schema.json")
        assert raw.field_names[0] == "id"
    raw_measures = load_schema(Path("schemas/raw/measures.schema.json"))
    assert [f["name"] for f in raw_measures["fields"]] == MEASURES_HEADER


def test_embedded_records_build_without_errors(tmp_path: Path) -> None:
    cfg = config_mod.load()
    build = run_build(cfg, tmp_path / "data", today=date(2026, 1, 1))
    assert build.errors == []
    measures, fields = by(build, "measures"), by(build, "fields_of_action")
    assert len(measures) == 5 and sorted(fields) == [f"HF{i}" for i in range(1, 10)]
    assert all(m["source"] for m in measures.values())
    assert all(f["source"] and not f["title_de"] for f in fields.values())
    frueh = next(m for m in measures.values() if "Frauenfrühstück" in str(m["title"]))
    assert (frueh["status"], frueh["start_date"]) == ("ongoing", "2018")
    assert build.meta["coverage_counts"]["measures_in_concept"] == 30
    assert build.meta["coverage"][0].startswith("5 of the 30 measures")
    assert frictionless_report(build, tmp_path / "rel").valid
