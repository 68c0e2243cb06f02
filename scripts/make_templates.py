"""Generate the city's fill-in templates in templates/ from the raw schemas.

    .venv/bin/python scripts/make_templates.py [OUT_DIR]

Writes massnahmen_vorlage.{xlsx,csv} and handlungsfelder_vorlage.{xlsx,csv}: every column of
schemas/raw/<table>.schema.json, one example row marked BEISPIEL, and in the XLSX a status
drop-down plus a sheet "Hinweise" with the column descriptions and the allowed status words.
CSV files are semicolon-separated UTF-8 with BOM (what Excel on German Windows opens cleanly).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opendata.transform.measures_normalise import STATUS_DE, STATUS_WORDS, STATUSES  # noqa: E402

FIXED_TIME = datetime(2026, 1, 1)
EXAMPLES = {
    "massnahmen": {
        "id": "BEISPIEL-1", "handlungsfeld": "HF1",
        "titel": "BEISPIEL (Zeile bitte löschen): Name der Maßnahme",
        "beschreibung": "BEISPIEL: kurze Beschreibung der Maßnahme",
        "verantwortlich": "BEISPIEL: verantwortliches Amt oder verantwortliche Stelle",
        "partner": "BEISPIEL: Partner A; Partner B", "zielgruppe": "BEISPIEL: Zielgruppe",
        "beginn": "01.09.2021", "ende": "", "status": "in Umsetzung", "status_datum": "15.03.2024",
        "erfolgsindikator": "BEISPIEL: Zahl der Teilnehmenden pro Jahr",
        "quelle": "BEISPIEL: Beschluss, Protokoll oder Link als Beleg",
    },
    "handlungsfelder": {
        "id": "BEISPIEL-HF", "titel_de": "BEISPIEL (Zeile bitte löschen): Name des Handlungsfelds",
        "titel_en": "EXAMPLE: name of the field of action",
        "beschreibung": "BEISPIEL: worum es in dem Handlungsfeld geht",
        "ziel": "BEISPIEL: Ziel des Handlungsfelds", "quelle": "BEISPIEL: Integrationskonzept, Teil 2",
    },
}
RAW = {"massnahmen": "measures", "handlungsfelder": "fields_of_action"}
GUIDE = [
    "So füllen Sie die Tabelle aus / how to fill in the table:",
    "1. Eine Zeile pro Maßnahme (bzw. Handlungsfeld). Die Spaltennamen nicht ändern.",
    "2. Die Beispielzeile (BEISPIEL) löschen; bleibt sie stehen, wird nichts veröffentlicht.",
    "3. Pflicht ist nur: id (eindeutig) und titel. Unbekanntes leer lassen, nichts schätzen.",
    "4. Handlungsfeld: genau eine id aus der Handlungsfelder-Tabelle (z. B. HF1); leer = noch "
    "nicht zugeordnet.",
    "5. Datum: TT.MM.JJJJ, MM.JJJJ, JJJJ oder JJJJ-MM-TT. Bei Status abgeschlossen ist ein Ende "
    "Pflicht.",
    "6. status_datum: wann der Status zuletzt geprüft wurde. Nach mehr als einem Jahr gibt es "
    "einen Hinweis.",
    "7. Text, der mit = + - @ beginnt, wird mit einem Apostroph (') veröffentlicht, damit er "
    "nie als Formel läuft.",
    "8. Speichern als XLSX oder als CSV (Semikolon oder Komma, UTF-8 oder Windows-1252).",
]


def _schema(name: str) -> list[dict[str, str]]:
    path = REPO / "schemas" / "raw" / f"{RAW[name]}.schema.json"
    return list(json.loads(path.read_text(encoding="utf-8"))["fields"])


def _csv(name: str, out: Path) -> None:
    fields = [f["name"] for f in _schema(name)]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerows([fields, [EXAMPLES[name][f] for f in fields]])
    (out / f"{name}_vorlage.csv").write_bytes(buf.getvalue().encode("utf-8-sig"))


def _hints(book: openpyxl.Workbook, name: str) -> None:
    ws = book.create_sheet("Hinweise")
    rows: list[list[str]] = [[line] for line in GUIDE] + [[""], ["Spalte", "Beschreibung"]]
    rows += [[f["name"], f.get("description", "")] for f in _schema(name)]
    if name == "massnahmen":
        rows += [[""], ["Status (Auswahl)", "Bedeutung / auch akzeptiert"]]
        for status in STATUSES:
            words = sorted(w for w, v in STATUS_WORDS.items() if v == status)
            rows.append([STATUS_DE[status], f"{status}; " + ", ".join(words)])
    for row in rows:
        ws.append(row)
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 110


def _xlsx(name: str, out: Path) -> None:
    fields = [f["name"] for f in _schema(name)]
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = name.capitalize()
    ws.append(fields)
    ws.append([EXAMPLES[name][f] for f in fields])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        ws.column_dimensions[cell.column_letter].width = max(14, len(str(cell.value)) + 4)
    ws.freeze_panes = "A2"
    if "status" in fields:
        col = openpyxl.utils.get_column_letter(fields.index("status") + 1)
        choice = DataValidation(type="list", allow_blank=True, showErrorMessage=True,
                                formula1='"' + ",".join(STATUS_DE[s] for s in STATUSES) + '"',
                                errorTitle="Status", error="Bitte einen Wert aus der Liste wählen.")
        choice.add(f"{col}2:{col}1000")
        ws.add_data_validation(choice)
    _hints(book, name)
    book.properties.created = book.properties.modified = FIXED_TIME
    book.properties.creator = "eisenach-opendata scripts/make_templates.py"
    book.save(out / f"{name}_vorlage.xlsx")


def main(out: Path) -> None:
    """Write all templates into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        _csv(name, out)
        _xlsx(name, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "templates")
