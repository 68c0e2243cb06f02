"""Hostile city tables (issue 15): injection, control characters, markup, XML attacks, limits,
encodings, exit codes and guards against silent mass changes.

Every table written here is a test input (labelled "Testmaßnahme" / "BEISPIEL-Test"), not a fact
about Eisenach. The pipeline runs for real: real files, real snapshots, real frictionless, the
real command line (in-process, offline).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from helpers import copy_config, copy_raw
from test_measures import FIELDS, FIELDS_HEADER, GOOD, MEASURES_HEADER, make_config, measure

from flows.cli import main
from opendata import text
from opendata.config import Limits
from opendata.errors import InputError
from opendata.model import Issue
from opendata.sources import table
from opendata.validate import summarised

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cli(cfg: Path, data: Path, *args: str) -> int:
    """One `opendata` command, offline, on a test registry and data dir."""
    return main([*args, "--offline", "-q", "--config", str(cfg), "--data-dir", str(data)])


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> None:
    """A comma-separated city table."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))


def published_rows(data: Path, package: str, resource: str) -> list[dict[str, str]]:
    """The rows of a resource of the latest release, as the CSV module reads them."""
    path = data / "published" / package / "latest" / "data" / f"{resource}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def report_issues(data: Path) -> list[dict[str, object]]:
    """Every issue entry of the latest validation report."""
    report = json.loads((data / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    return [i for p in report["packages"] for i in p["issues"]]


def changelog(data: Path, package: str = "integration_measures") -> str:
    """CHANGELOG.md of the latest release."""
    return (data / "published" / package / "latest" / "CHANGELOG.md").read_text(encoding="utf-8")


# --- one neutralisation module --------------------------------------------------------------


def test_neutralise_frame_formulas_after_whitespace_and_control_characters() -> None:
    frame = pd.DataFrame({"a": ["\x00=1+1", " =2", "ok", "a\tb", "-5"],
                          "n": ["-5", "\x07", "3", "", "+1"]},
                         index=pd.Index([1, 2, 3, 4, 5], name="row"), dtype=object)
    out, issues = text.neutralise_frame(frame, text.Origin("s", "r", "t.csv", {"a": "spalte_a"}),
                                        formula_columns=["a"])
    assert out["a"].tolist() == ["'=1+1", "' =2", "ok", "a\tb", "'-5"]
    assert out["n"].tolist() == ["-5", "", "3", "", "+1"]  # not a text column: numbers stay
    found = sorted((i.code, i.severity, i.row, i.field) for i in issues)
    assert found == [("control-character", "error", 1, "spalte_a"),
                     ("control-character", "error", 2, "n"),
                     ("formula-neutralised", "warning", 1, "spalte_a"),
                     ("formula-neutralised", "warning", 2, "spalte_a"),
                     ("formula-neutralised", "warning", 5, "spalte_a")]
    nul = next(i for i in issues if i.code == "control-character" and i.row == 1)
    assert "U+0000" in nul.message and nul.file == "t.csv"
    assert "file t.csv" in str(nul) and "spreadsheet row 2, data row 1, field spalte_a" in str(nul)


def test_nul_before_formula_in_measures_is_refused_naming_file_row_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, [measure("M1"), measure("M2", partner="\x00=1+1")])
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    capsys.readouterr()
    assert cli(cfg.path, data, "publish") == 1
    err = capsys.readouterr().err
    assert "[control-character]" in err and "file m.csv" in err
    assert "spreadsheet row 3, data row 2, field partner" in err and "U+0000" in err
    assert not (data / "published" / "integration_measures").exists() or \
        not (data / "published" / "integration_measures" / "latest").exists()


@pytest.fixture(scope="module")
def figures_released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data with formulas in the city's figures table, published offline."""
    root = tmp_path_factory.mktemp("figures")
    cfg = copy_config(root / "cfg")
    path = cfg.parent / "city" / "kennzahlen.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    male = next(r for r in rows[1:] if r[head.index("sex_code")] == "GESM")
    male[head.index("sex_label")] = "+cmd|' /C calc'!A0"
    rows[1][head.index("source")] = '=HYPERLINK("http://example.invalid/BEISPIEL","klick")'
    rows[2][head.index("source")] = "@SUM(1+1)*cmd|' /C calc'!A0"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    data = copy_raw(root / "data")
    assert cli(cfg, data, "fetch") == 0
    assert cli(cfg, data, "publish") == 0
    return data


def test_city_figures_formulas_are_neutralised_end_to_end(figures_released: Path) -> None:
    rows = published_rows(figures_released, "integration_statistics", "city_figures")
    cells = [c for r in rows for c in r.values()]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    assert "'=HYPERLINK(\"http://example.invalid/BEISPIEL\",\"klick\")" in cells
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in cells and "'+cmd|' /C calc'!A0" in cells
    found = [i for i in report_issues(figures_released) if i["code"] == "formula-neutralised"
             and i["source"] == "city_figures"]
    assert len(found) == 3 and all(i["file"] == "kennzahlen.csv" for i in found)
    assert {(i["row"], i["sheet_row"], i["field"]) for i in found} >= {(1, 2, "source"),
                                                                       (2, 3, "source")}
    log = changelog(figures_released, "integration_statistics")
    assert "city\\_figures (kennzahlen.csv): formula-neutralised in 3 row(s)" in log


# --- markup in generated Markdown ----------------------------------------------------------


@pytest.mark.parametrize("column", ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>"])
def test_column_names_with_markup_do_not_reach_changelog_raw(tmp_path: Path, column: str) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD)
    path = cfg.path.parent / "city" / "m.csv"
    write_csv(path, [*MEASURES_HEADER, column], [[*r, "x"] for r in GOOD])
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    log = changelog(data)
    assert "unknown-column" in log
    assert "<img" not in log and "<script" not in log and "&lt;" in log
    page = (data / "published" / "integration_measures" / "index.html").read_text(encoding="utf-8")
    assert "<img" not in page and "<script" not in page
    assert "&lt;" in page and "\\_" not in page  # pages show the plain text, HTML-escaped


def test_md_escape_makes_markup_inert_and_round_trips() -> None:
    raw = "<b>x</b> [link](javascript:alert(1)) *bold* `code` a|b\n# head & more"
    safe = text.md_escape(raw)
    assert "<" not in safe and ">" not in safe and "\n" not in safe
    assert "\\[link\\]" in safe and "\\*bold\\*" in safe and "\\`code\\`" in safe and "\\|" in safe
    assert text.md_unescape(safe) == " ".join(raw.split())


# --- XLSX with a DTD -----------------------------------------------------------------------


def hostile_xlsx(path: Path, doctype: str) -> Path:
    """A valid XLSX whose first sheet's XML is given a DTD (built here, not downloaded)."""
    book = openpyxl.Workbook()
    for row in [MEASURES_HEADER, measure("M1")]:
        book.active.append(row)
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                decl, rest = body.split(b"?>", 1) if body.startswith(b"<?xml") else (b"", body)
                body = (decl + b"?>" if decl else b"") + doctype.encode() + rest
            dst.writestr(info, body)
    path.write_bytes(out.getvalue())
    return path


BILLION_LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize("doctype", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_xlsx_with_dtd_is_refused_clearly_and_not_stored(
        tmp_path: Path, doctype: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD, "xlsx")
    hostile_xlsx(cfg.path.parent / "city" / "m.xlsx", doctype)
    with pytest.raises(InputError, match="declares a DTD or XML entities"):
        table.parse((cfg.path.parent / "city" / "m.xlsx").read_bytes(), "xlsx", source="measures")
    data = tmp_path / "data"
    capsys.readouterr()
    assert cli(cfg.path, data, "fetch") == 1
    err = capsys.readouterr().err
    assert "input error in source 'measures' (file m.xlsx)" in err and "Traceback" not in err
    assert not list((data / "raw" / "measures").glob("2*"))  # no snapshot stored


def test_openpyxl_parses_with_defusedxml() -> None:
    from openpyxl import xml

    assert xml.DEFUSEDXML  # the dependency is installed, so openpyxl refuses entities itself


# --- limits --------------------------------------------------------------------------------


def limited(tmp_path: Path, rows: list[list[str]], **limits: int) -> Path:
    """A measures registry with extra [settings] limits; returns the config path."""
    cfg = make_config(tmp_path / "cfg", FIELDS, rows)
    body = cfg.path.read_text(encoding="utf-8")
    extra = "".join(f"{k} = {v}\n" for k, v in limits.items())
    cfg.path.write_text(body.replace("[settings]\n", "[settings]\n" + extra), encoding="utf-8")
    return cfg.path


@pytest.mark.parametrize(("limits", "rows", "needle"), [
    ({"max_table_rows": 3}, [measure(f"M{i}") for i in range(1, 5)],
     "more than 3 data rows (max_table_rows"),
    ({"max_table_bytes": 500}, [measure(f"M{i}") for i in range(1, 9)],
     "more than the limit of 500 (max_table_bytes"),
    ({"max_table_cells": 13}, [[*measure("M1"), "extra"]],
     "spreadsheet row 2 (data row 1) has 14 cells, more than the limit of 13"),
    ({"max_cell_chars": 100}, [measure("M1"), measure("M2", beschreibung="x" * 101)],
     "spreadsheet row 3 (data row 2), column 4: the cell has 101 characters, more than the limit "
     "of 100 (max_cell_chars"),
])
def test_input_over_a_limit_is_refused_before_a_snapshot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], limits: dict[str, int],
        rows: list[list[str]], needle: str) -> None:
    cfg = limited(tmp_path, rows, **limits)
    data = tmp_path / "data"
    capsys.readouterr()
    assert cli(cfg, data, "fetch") == 1
    err = capsys.readouterr().err
    assert needle in err and "(file m.csv)" in err, err
    assert not list((data / "raw" / "measures").glob("2*"))


def test_python_csv_cell_limit_names_row_column_and_limit(tmp_path: Path) -> None:
    big = "B" * 131_073  # one more than Python's csv default field limit
    data = ",".join(MEASURES_HEADER).encode() + b"\n" + \
        ",".join(measure("M1", beschreibung=big)).encode() + b"\n"
    with pytest.raises(InputError) as exc:
        table.parse(data, "csv", source="measures", file="massnahmen.csv",
                    limits=limits_with(max_cell_chars=32_767))
    assert "spreadsheet row 2 (data row 1), column 4: the cell has 131,073 characters, more " \
           "than the limit of 32,767 (max_cell_chars" in exc.value.message
    assert "massnahmen.csv" in exc.value.message
    wide = table.parse(data, "csv", source="measures", limits=limits_with(max_cell_chars=200_000))
    assert wide.loc[1, "beschreibung"] == big  # a raised limit is honoured, no csv.Error


def limits_with(**values: int) -> Limits:
    """Default limits with some values replaced."""
    return replace(Limits(), **values)


def test_bad_limit_in_settings_is_a_config_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = limited(tmp_path, GOOD, max_table_rows=0)
    assert cli(cfg, tmp_path / "data", "fetch") == 2
    assert "'max_table_rows' must be a positive whole number" in capsys.readouterr().err


# --- summarised findings -------------------------------------------------------------------


def test_repeated_findings_are_summarised_in_changelog_report_and_page(tmp_path: Path) -> None:
    rows = [measure(f"M{i:03d}", partner="-Jobcenter") for i in range(1, 61)]
    cfg = make_config(tmp_path / "cfg", FIELDS, rows)
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    line = next(x for x in changelog(data).splitlines() if "formula-neutralised" in x)
    assert "in 60 row(s) (data rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 … and 50 more; " \
           "spreadsheet rows 2, 3" in line
    assert " 11," not in line
    found = [i for i in report_issues(data) if i["code"] == "formula-neutralised"]
    assert len(found) == 21 and found[-1]["more"] == 40
    assert found[-1]["message"] == "row 21 … and 39 more with this finding, not listed (60 in all)"
    page = (data / "published" / "integration_measures" / "index.html").read_text(encoding="utf-8")
    assert "… and 50 more" in page and " 59, 60" not in page


def test_summarised_keeps_counts_per_group() -> None:
    issues = [Issue("warning", "w", "m", "s", "r", n, "f") for n in range(1, 500_001)]
    issues.append(Issue("error", "e", "m", "s", "r", 3, "g"))
    out = summarised(issues, per_group=3)
    assert [(i["code"], i["row"]) for i in out] == [("w", 1), ("w", 2), ("w", 3), ("e", 3),
                                                    ("w", 4)]
    assert out[-1]["more"] == 499_997 and "… and 499,996 more" in str(out[-1]["message"])
    assert text.rows_text(list(range(17, 500_000)), 1) == "17 … and 499,982 more"


# --- encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_utf16_and_utf32_with_bom_are_read_correctly(encoding: str) -> None:
    rows = [measure("M1", titel="Sprachcafé Müller – Grüße")]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([MEASURES_HEADER, *rows])
    body = buf.getvalue().encode(encoding)
    if encoding.endswith("-be"):
        bom = {"utf-16-be": b"\xfe\xff", "utf-32-be": b"\x00\x00\xfe\xff"}[encoding]
        body = bom + body
    frame = table.parse(body, "csv", source="measures")
    assert frame.loc[1, "titel"] == "Sprachcafé Müller – Grüße"
    assert list(frame.columns) == MEASURES_HEADER


def test_utf16_without_bom_is_refused_clearly() -> None:
    body = (",".join(FIELDS_HEADER) + "\n" + ",".join(FIELDS[0]) + "\n").encode("utf-16-le")
    with pytest.raises(InputError, match="UTF-16 or UTF-32 text without a byte-order mark"):
        table.parse(body, "csv", source="fields_of_action", file="handlungsfelder.csv")


# --- exit codes ----------------------------------------------------------------------------


def test_parse_problem_is_an_input_error_exit_1(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD)
    (cfg.path.parent / "city" / "m.csv").write_text(",".join(MEASURES_HEADER) + "\n"
                                                    + ",".join(measure("M1")) + ",zu viel\n",
                                                    encoding="utf-8")
    capsys.readouterr()
    assert cli(cfg.path, tmp_path / "data", "fetch") == 1
    err = capsys.readouterr().err
    assert "input error in source 'measures' (file m.csv): spreadsheet row 2 (data row 1) has " \
           "more cells than the header" in err
    assert "fetch failed" not in err


# --- guards --------------------------------------------------------------------------------


def test_mass_removal_stops_unless_allowed(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD)
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    write_csv(cfg.path.parent / "city" / "m.csv", MEASURES_HEADER, [])  # header, no rows
    assert cli(cfg.path, data, "fetch") == 0
    capsys.readouterr()
    assert cli(cfg.path, data, "publish") == 1
    err = capsys.readouterr().err
    assert "measures: 4 of 4 rows removed (100%)" in err and "--allow-mass-removal" in err
    versions = json.loads((data / "published" / "integration_measures" / "versions.json").read_text())
    assert versions["latest"] == "1.0.0"
    assert not list((data / "published" / "integration_measures").glob(".staging-*"))
    assert not list((data / "state" / "tmp").glob("*staging*"))  # the discarded candidate
    assert cli(cfg.path, data, "publish", "--allow-mass-removal") == 0
    rows = published_rows(data, "integration_measures", "measures")
    assert len(rows) == 4 and all(r["removed"] == "true" for r in rows)


def test_mass_removal_flag_passes_through_the_prefect_run(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD)
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    write_csv(cfg.path.parent / "city" / "m.csv", MEASURES_HEADER, [measure("M1")])
    assert cli(cfg.path, data, "run") == 1  # 3 of 4 measures removed: over 50 %
    assert cli(cfg.path, data, "run", "--allow-mass-removal") == 0
    versions = json.loads((data / "published" / "integration_measures" / "versions.json").read_text())
    assert versions["latest"] == "1.1.0"


def test_status_moving_backwards_is_published_with_a_warning(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "cfg", FIELDS, GOOD)
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    back = [measure("M1"), GOOD[1], measure("M3", status="geplant", beginn="03.2026"), GOOD[3]]
    write_csv(cfg.path.parent / "city" / "m.csv", MEASURES_HEADER, back)
    assert cli(cfg.path, data, "fetch") == 0
    assert cli(cfg.path, data, "publish") == 0
    rows = {r["id"]: r for r in published_rows(data, "integration_measures", "measures")}
    assert rows["M3"]["status"] == "planned"
    found = [i for i in report_issues(data) if i["code"] == "status-moved-back"]
    assert [(i["severity"], i["row"], i["field"]) for i in found] == [("warning", 3, "status")]
    assert "from 'completed' (previous release) to 'planned'" in str(found[0]["message"])
    assert "status-moved-back in 1 row(s) (data rows 3; spreadsheet rows 4)" in changelog(data)


@pytest.mark.parametrize(("fields", "rows", "expected"), [
    ([*FIELDS, ["HF/3", "Testfeld", "", "", "", "Test"]], [measure("M1")],
     ("fields_of_action", 3, "id")),
    (FIELDS, [measure("M1"), measure("M/2")], ("measures", 2, "id")),
    (FIELDS, [measure("M1", handlungsfeld="HF 1")], ("measures", 1, "handlungsfeld")),
])
def test_one_id_rule_for_all_city_tables(tmp_path: Path, fields: list[list[str]],
                                         rows: list[list[str]],
                                         expected: tuple[str, int, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path / "cfg", fields, rows)
    data = tmp_path / "data"
    assert cli(cfg.path, data, "fetch") == 0
    capsys.readouterr()
    assert cli(cfg.path, data, "publish") == 1
    report = report_issues(data)
    errors = [(i["source"], i["row"], i["field"], i["code"]) for i in report
              if i["severity"] == "error" and i["code"] != "foreign-key"]
    assert errors == [(*expected, "invalid-id")]
    message = next(str(i["message"]) for i in report if i["code"] == "invalid-id")
    assert "the same rule in every city table" in message
    assert "several fields of action" not in capsys.readouterr().err
