"""Normalise the city's measure tables: column names, status words, dates.

Column names are matched case-insensitively; the German names of the template
(``schemas/raw/*.schema.json``) and the published English names are both accepted.
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from opendata.model import Issue

# raw (German) column -> published column, in template order
MEASURE_COLUMNS = {
    "id": "id", "handlungsfeld": "field_of_action", "titel": "title",
    "beschreibung": "description", "verantwortlich": "responsible", "partner": "partners",
    "zielgruppe": "target_group", "beginn": "start_date", "ende": "end_date",
    "status": "status", "status_datum": "status_date", "erfolgsindikator": "success_indicator",
    "quelle": "source",
}
FIELD_COLUMNS = {
    "id": "id", "titel_de": "title_de", "titel_en": "title_en", "beschreibung": "description",
    "ziel": "goal", "quelle": "source",
}

STATUSES = ("planned", "in progress", "ongoing", "completed", "suspended", "dropped")
# accepted words (compared lower-case, inner whitespace collapsed) -> vocabulary
STATUS_WORDS = {
    "planned": "planned", "geplant": "planned", "in planung": "planned",
    "in progress": "in progress", "in umsetzung": "in progress", "begonnen": "in progress",
    "in bearbeitung": "in progress", "started": "in progress",
    "ongoing": "ongoing", "laufend": "ongoing", "dauerhaft": "ongoing",
    "fortlaufend": "ongoing", "regelmäßig": "ongoing", "continuous": "ongoing",
    "completed": "completed", "abgeschlossen": "completed", "umgesetzt": "completed",
    "erledigt": "completed", "done": "completed",
    "suspended": "suspended", "ausgesetzt": "suspended", "pausiert": "suspended",
    "ruhend": "suspended", "paused": "suspended",
    "dropped": "dropped", "verworfen": "dropped", "eingestellt": "dropped",
    "entfallen": "dropped", "cancelled": "dropped", "canceled": "dropped",
}
# the German word the template offers for each status
STATUS_DE = {"planned": "geplant", "in progress": "in Umsetzung", "ongoing": "laufend",
             "completed": "abgeschlossen", "suspended": "ausgesetzt", "dropped": "verworfen"}

_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_MY = re.compile(r"(\d{1,2})\.(\d{4})")
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T[\d:.]+")


def normalise_status(text: str) -> str | None:
    """The vocabulary word for a status text; '' stays ''; None when not recognised."""
    key = " ".join(text.split()).lower()
    if not key:
        return ""
    return STATUS_WORDS.get(key)


def _valid(y: int, m: int | None, d: int | None) -> bool:
    try:
        date(y, m or 1, d or 1)
    except ValueError:
        return False
    return True


def normalise_date(text: str) -> str | None:
    """ISO date text (YYYY, YYYY-MM or YYYY-MM-DD); '' stays ''; None when not a date.

    Accepts dd.mm.yyyy (also d.m.yyyy), mm.yyyy, yyyy, yyyy-mm, yyyy-mm-dd and an ISO
    date-time at midnight or later (the time is dropped).
    """
    text = text.strip()
    if not text:
        return ""
    iso_time = _ISO_TIME.fullmatch(text)
    if iso_time:
        text = iso_time.group(1)
    if m := _DMY.fullmatch(text):
        d_, mo, y = (int(x) for x in m.groups())
        return f"{y:04d}-{mo:02d}-{d_:02d}" if _valid(y, mo, d_) else None
    if m := _MY.fullmatch(text):
        mo, y = (int(x) for x in m.groups())
        return f"{y:04d}-{mo:02d}" if _valid(y, mo, None) else None
    if m := _ISO.fullmatch(text):
        y_s, mo_s, d_s = m.groups()
        ok = _valid(int(y_s), int(mo_s) if mo_s else None, int(d_s) if d_s else None)
        return text if ok else None
    return None


def date_bounds(iso: str) -> tuple[date, date]:
    """First and last day covered by a (possibly partial) ISO date."""
    parts = [int(p) for p in iso.split("-")]
    if len(parts) == 3:
        d = date(*parts)
        return d, d
    if len(parts) == 2:
        y, m = parts
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return date(y, m, 1), date.fromordinal(nxt.toordinal() - 1)
    return date(parts[0], 1, 1), date(parts[0], 12, 31)


def rename_columns(frame: pd.DataFrame, columns: dict[str, str], *, source: str,
                   resource: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Map raw column names (German or English, any case) to published names."""
    aliases = {k: v for k, v in columns.items()} | {v: v for v in columns.values()}
    rename: dict[str, str] = {}
    issues: list[Issue] = []
    for col in frame.columns:
        target = aliases.get(str(col).strip().lower())
        if target is None:
            issues.append(Issue("warning", "unknown-column", f"column '{col}' is not part of the "
                                "template and is ignored", source, resource, None, str(col)))
        elif target in rename.values():
            issues.append(Issue("error", "duplicate-column", f"column '{col}' duplicates another "
                                f"column for '{target}'; keep only one", source, resource, None,
                                str(col)))
        else:
            rename[col] = target
    raw_names = {v: k for k, v in columns.items()}
    for missing in (t for t in columns.values() if t not in rename.values()):
        issues.append(Issue("error", "missing-column", f"column '{raw_names[missing]}' is missing; "
                            "use the column names of the template (templates/)", source, resource,
                            None, raw_names[missing]))
    out = frame[list(rename)].rename(columns=rename)
    for col in columns.values():
        if col not in out.columns:
            out[col] = ""
    return out[list(columns.values())].astype(object), issues
