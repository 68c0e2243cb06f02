"""Checks of the city's measure tables; each finding is an Issue naming source, row and field.

Rows are the 1-based data rows of the city's file (the frame index from ``table.read``);
fields are the column names of the template (German).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from opendata.model import Issue
from opendata.text import Origin
from opendata.transform.measures_normalise import (
    FIELD_COLUMNS,
    MEASURE_COLUMNS,
    STATUSES,
    date_bounds,
    normalise_date,
    normalise_status,
)

EXAMPLE_MARK = "BEISPIEL"
DATE_FIELDS = ("start_date", "end_date", "status_date")
_RAW = {v: k for k, v in MEASURE_COLUMNS.items()}
_RAW_FIELDS = {v: k for k, v in FIELD_COLUMNS.items()}
_SPLIT = re.compile(r"[,;/|]")
ID_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID_CHAR = re.compile(r"[A-Za-z0-9._-]")
ID_TEXT = ("an id starts with a letter or digit and has at most 64 letters (A-Z, a-z), digits, "
           "'.', '_' or '-' (no spaces, no '/'), the same rule in every city table")


@dataclass(frozen=True)
class Where:
    """Which source and resource a check reports on, and its raw column names."""

    source: str
    resource: str
    raw: dict[str, str]
    file: str = ""  # the city's file name, e.g. massnahmen.csv

    def issue(self, severity: str, code: str, message: str, row: object, field: str) -> Issue:
        """An Issue at one row and (published) field, reported with the raw column name."""
        return Issue(severity, code, message, self.source, self.resource, int(str(row)),
                     self.raw.get(field, field), self.file)

    def origin(self) -> Origin:
        """The same context for ``opendata.text.neutralise_frame``."""
        return Origin(self.source, self.resource, self.file, self.raw)


def measures_where(source: str, file: str = "") -> Where:
    """Where-context for the measures table."""
    return Where(source, "measures", _RAW, file)


def fields_where(source: str, file: str = "") -> Where:
    """Where-context for the fields-of-action table."""
    return Where(source, "fields_of_action", _RAW_FIELDS, file)


def id_problem(value: str) -> str:
    """Why a text is not a valid id of a city table ('' when it is one); one rule for all."""
    if ID_RULE.fullmatch(value):
        return ""
    bad = sorted({c for c in value if not ID_CHAR.fullmatch(c)})
    return (f"id '{value}' contains {', '.join(repr(c) for c in bad) or 'a bad first character'}"
            f"; {ID_TEXT}")


def check_ids(frame: pd.DataFrame, where: Where) -> list[Issue]:
    """Errors: empty, malformed or duplicate ids, a template example row left in place."""
    issues: list[Issue] = []
    first: dict[str, object] = {}
    for row, value in frame["id"].items():
        if not value:
            issues.append(where.issue("error", "missing-id", "the id is empty; every row needs "
                                      "a unique id", row, "id"))
        elif EXAMPLE_MARK in value.upper():
            issues.append(where.issue("error", "example-row", f"row '{value}' is the template's "
                                      "example; delete it", row, "id"))
        elif problem := id_problem(value):
            issues.append(where.issue("error", "invalid-id", problem, row, "id"))
        elif value in first:
            issues.append(where.issue("error", "duplicate-id", f"id '{value}' is used again (first "
                                      f"in row {first[value]}); ids must be unique", row, "id"))
        else:
            first[value] = row
    return issues


def check_titles(frame: pd.DataFrame, where: Where) -> list[Issue]:
    """Error: a measure without a title."""
    return [where.issue("error", "missing-title", "the title is empty; give the measure's name",
                        row, "title") for row, v in frame["title"].items() if not v]


def check_field_of_action(frame: pd.DataFrame, known: set[str], where: Where) -> list[Issue]:
    """Exactly one existing field of action; an empty one is a warning (not yet assigned)."""
    issues: list[Issue] = []
    for row, value in frame["field_of_action"].items():
        if not value:
            issues.append(where.issue("warning", "field-of-action-unassigned", "field of action "
                                      "not yet assigned; fill in one id of the fields-of-action "
                                      "table", row, "field_of_action"))
        elif value in known:
            continue
        elif len([p for p in _SPLIT.split(value) if p.strip()]) > 1:
            issues.append(where.issue("error", "multiple-fields-of-action", f"'{value}' names "
                                      "several fields of action; a measure belongs to exactly "
                                      "one", row, "field_of_action"))
        elif problem := id_problem(value):
            issues.append(where.issue("error", "invalid-id", f"field of action: {problem}",
                                      row, "field_of_action"))
        elif value not in known:
            issues.append(where.issue("error", "unknown-field-of-action", f"field of action "
                                      f"'{value}' does not exist; use one of: "
                                      f"{', '.join(sorted(known)) or '(none defined)'}",
                                      row, "field_of_action"))
    return issues


def normalise_statuses(frame: pd.DataFrame, where: Where) -> tuple[pd.DataFrame, list[Issue]]:
    """Map status words to the vocabulary; unknown words are errors, empty is a warning."""
    out, issues = frame.copy(), []
    for row, value in frame["status"].items():
        status = normalise_status(value)
        if status is None:
            issues.append(where.issue("error", "unknown-status", f"status '{value}' is not "
                                      f"recognised; use one of: {', '.join(STATUSES)} (or the "
                                      "German words of the template)", row, "status"))
        elif not status:
            issues.append(where.issue("warning", "status-missing", "no status recorded yet",
                                      row, "status"))
        else:
            out.at[row, "status"] = status
    return out, issues


def normalise_dates(frame: pd.DataFrame, where: Where) -> tuple[pd.DataFrame, list[Issue]]:
    """Dates to ISO; an unparseable date is an error."""
    out, issues = frame.copy(), []
    for col in DATE_FIELDS:
        for row, value in frame[col].items():
            iso = normalise_date(value)
            if iso is None:
                issues.append(where.issue("error", "invalid-date", f"'{value}' is not a date; "
                                          "write dd.mm.yyyy, yyyy-mm-dd, mm.yyyy or yyyy", row, col))
            else:
                out.at[row, col] = iso
    return out, issues


def _iso_ok(value: str) -> bool:
    return bool(value) and normalise_date(value) == value


def check_dates(frame: pd.DataFrame, where: Where) -> list[Issue]:
    """Errors: start after end; a completed measure without an end date."""
    issues = []
    for row, rec in frame.iterrows():
        start, end = rec["start_date"], rec["end_date"]
        if _iso_ok(start) and _iso_ok(end) and date_bounds(start)[0] > date_bounds(end)[1]:
            issues.append(where.issue("error", "start-after-end", f"start {start} is after end "
                                      f"{end}; correct one of the two", row, "end_date"))
        if rec["status"] == "completed" and not end:
            issues.append(where.issue("error", "missing-end-date", "status is completed but the "
                                      "end date is empty; fill in when it was completed",
                                      row, "end_date"))
    return issues


def check_review(frame: pd.DataFrame, where: Where, *, days: int, today: date) -> list[Issue]:
    """Warnings: a status without a date, or not reviewed for more than ``days`` days."""
    issues = []
    for row, rec in frame.iterrows():
        status, when = rec["status"], rec["status_date"]
        if status not in STATUSES:
            continue
        if not when:
            issues.append(where.issue("warning", "status-date-missing", "status has no date; "
                                      "fill in when it was last checked", row, "status_date"))
        elif _iso_ok(when) and date_bounds(when)[1] + timedelta(days=days) < today:
            issues.append(where.issue("warning", "status-not-reviewed", f"status last reviewed "
                                      f"{when}, more than {days} days before {today.isoformat()}; "
                                      "check it and update the status date", row, "status_date"))
    return issues


def check_responsible(frame: pd.DataFrame, where: Where) -> list[Issue]:
    """Warning: a measure without a responsible body."""
    return [where.issue("warning", "no-responsible", "no responsible body named", row,
                        "responsible") for row, v in frame["responsible"].items() if not v]
