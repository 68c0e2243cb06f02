"""Builder of the measures package: the city's tables -> fields_of_action, measures,
measure_status_history and measure_summary (frames, schemas, Issues, meta; writes nothing).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd

from opendata import text
from opendata.config import Config, PackageConfig, SourceConfig
from opendata.errors import ConfigError, SnapshotError
from opendata.model import Build, Issue, Resource
from opendata.paths import SCHEMAS_DIR
from opendata.snapshot import Snapshot
from opendata.sources import table
from opendata.transform import measures_checks as chk
from opendata.transform.measures_history import carry_removed, extend_history, read_previous
from opendata.transform.measures_normalise import (
    FIELD_COLUMNS,
    MEASURE_COLUMNS,
    STATUSES,
    rename_columns,
)

log = logging.getLogger(__name__)

CONCEPT_KEYS = ("measures_in_concept", "fields_in_concept")
"""Package settings: how many measures and fields of action the municipality's concept has."""
SCHEMA_PACKAGE = "integration_measures"
NOTES = [
    "Empty cells mean 'not known yet': only id and title of a measure are required, nothing "
    "is estimated. See templates/README.md for how the city fills in the tables.",
    "Tabellenkalkulations-Schutz / spreadsheet safety: a text cell starting with =, +, -, @, "
    "tab or carriage return is published with a leading apostrophe (') so that it can never "
    "run as a formula (OWASP CSV injection advice); each such cell is listed as a warning "
    "'formula-neutralised'. Cells are trimmed first, so leading tabs and carriage returns "
    "are removed. Control characters other than tab and line breaks are not accepted.",
    "Status words of the city (German or English, any case) are mapped to one vocabulary: "
    "planned, in progress, ongoing, completed, suspended, dropped. An empty status means "
    "'not yet recorded'.",
    "Dates are ISO 8601, possibly with reduced precision (YYYY or YYYY-MM) where only the "
    "year or month is documented.",
    "An empty field_of_action means 'not yet assigned' (a warning); the names of the nine "
    "fields of action are not public yet, so their titles are empty and their ids are "
    "provisional.",
    "Measures and fields of action that disappear from the city's table are kept with "
    "removed = true; measure_status_history is append-only.",
]


def _source(package: PackageConfig, config: Config, resource: str) -> SourceConfig:
    for src in config.sources_for(package.id):
        if src.resource == resource and src.kind == "table":
            return src
    raise ConfigError(str(config.path), f"packages.{package.id}",
                      f"no table source with schema '{package.id}/{resource}'; add one")


def _snapshot(src: SourceConfig, snapshots: dict[str, Snapshot]) -> Snapshot:
    if src.id not in snapshots:
        raise SnapshotError(f"no raw snapshot for source '{src.id}'; run 'opendata fetch' first")
    return snapshots[src.id]


def _load(src: SourceConfig, snap: Snapshot, columns: dict[str, str],
          where: chk.Where) -> tuple[pd.DataFrame, list[Issue]]:
    raw = table.read(src, snap)
    frame, issues = rename_columns(raw, columns, source=src.id, resource=where.resource)
    issues = [dataclasses.replace(i, file=where.file) for i in issues]
    frame, found = text.neutralise_frame(frame, where.origin())
    return frame, issues + found


def _moved_back(measures: pd.DataFrame, prev: pd.DataFrame | None,
                where: chk.Where) -> list[Issue]:
    """Warnings: a status that moved backwards against the previous release (completed → planned)."""
    if prev is None or prev.empty or "status" not in prev.columns:
        return []
    before = prev.drop_duplicates("id").set_index("id")["status"]
    old = measures["id"].map(before).fillna("")
    rank_old = old.map(STATUS_RANK)
    rank_new = measures["status"].map(STATUS_RANK)
    back = rank_new.notna() & rank_old.notna() & (rank_new < rank_old)
    return [where.issue("warning", "status-moved-back", f"status moved back from '{old[row]}' "
                        f"(previous release) to '{measures.at[row, 'status']}'; published as "
                        "given. Check that this is meant, e.g. a completed measure started again",
                        row, "status") for row in measures.index[back]]


def _check_measures(frame: pd.DataFrame, known: set[str], where: chk.Where, *, days: int,
                    today: date) -> tuple[pd.DataFrame, list[Issue]]:
    issues = chk.check_ids(frame, where) + chk.check_titles(frame, where)
    frame, found = chk.normalise_statuses(frame, where)
    issues += found
    frame, found = chk.normalise_dates(frame, where)
    issues += found
    issues += chk.check_field_of_action(frame, known, where)
    issues += chk.check_dates(frame, where)
    issues += chk.check_review(frame, where, days=days, today=today)
    return frame, issues + chk.check_responsible(frame, where)


def summary(measures: pd.DataFrame) -> pd.DataFrame:
    """Counts of current (not removed) measures: total, by status, by field of action."""
    current = measures[~measures["removed"].astype(bool)]
    by_status = Counter(s or "unknown" for s in current["status"])
    by_field = Counter(f or "unassigned" for f in current["field_of_action"])
    rows = [("total", "all", "all", len(current))]
    rows += [("status", "all", s, by_status.get(s, 0)) for s in (*STATUSES, "unknown")]
    rows += [("field_of_action", f, "all", n) for f, n in sorted(by_field.items())]
    return pd.DataFrame(rows, columns=["dimension", "field_of_action", "status", "count"])


def _concept(package: PackageConfig, config: Config) -> dict[str, int]:
    """The concept's numbers of measures and fields of action, from the package config."""
    out = {}
    for key in CONCEPT_KEYS:
        value = package.meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(str(config.path), f"packages.{package.id}", f"'{key}' must be the "
                              "number the integration concept names (a whole number), got "
                              f"{value!r}")
        out[key] = value
    return out


def _coverage(measures: pd.DataFrame, fields: pd.DataFrame,
              concept: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    current = measures[~measures["removed"].astype(bool)]
    live_fields = fields[~fields["removed"].astype(bool)]
    counts = {"measures_documented": len(current), "fields_documented": len(live_fields),
              "fields_with_title": int((live_fields["title_de"] != "").sum())} | concept
    text = [f"{counts['measures_documented']} of the {concept['measures_in_concept']} measures "
            "of the integration concept are documented here; the city adds the others with the "
            "template (templates/).",
            f"{counts['fields_documented']} of the {concept['fields_in_concept']} fields of action "
            f"are listed, {counts['fields_with_title']} of them with a title."]
    return text, counts


def _summary(counts: dict[str, int]) -> dict[str, dict[str, str]]:
    """Title suffix and description sentence saying how much of the concept is in the package."""
    m, n = counts["measures_documented"], counts["measures_in_concept"]
    f, g, t = counts["fields_documented"], counts["fields_in_concept"], counts["fields_with_title"]
    return {"title_suffix": {"de": f"{m} von {n} Maßnahmen", "en": f"{m} of {n} measures"},
            "summary": {"de": f"Dieses Paket enthält {m} von {n} Maßnahmen und {f} von {g} "
                              f"Handlungsfeldern ({t} davon mit Titel).",
                        "en": f"This package contains {m} of the {n} measures and {f} of the {g} "
                              f"fields of action ({t} of them with a title)."}}


WARNING_TEXT = {
    "field-of-action-unassigned": "field of action not yet assigned",
    "no-responsible": "no responsible body named",
    "status-missing": "no status recorded yet",
    "status-date-missing": "status without a date",
    "status-not-reviewed": "status not reviewed within the review period",
    "formula-neutralised": "cell starting with = + - @ published with a leading apostrophe",
    "status-moved-back": "status moved backwards against the previous release (e.g. completed "
                         "→ planned); published as given, please check",
}
STATUS_RANK = {"planned": 0, "in progress": 1, "ongoing": 1, "completed": 2}


def warning_lines(issues: list[Issue]) -> list[str]:
    """Release-note lines: warnings grouped by source and code, with their rows (summarised)."""
    return text.warning_lines(issues, WARNING_TEXT)


def _resource(name: str, frame: pd.DataFrame, sources: list[str], title: str) -> Resource:
    path = SCHEMAS_DIR / SCHEMA_PACKAGE / f"{name}.schema.json"
    return Resource(name, frame.reset_index(drop=True), path, title=title, sources=sources)


def _resources(fields: pd.DataFrame, measures: pd.DataFrame, history: pd.DataFrame,
               f_id: str, m_id: str) -> list[Resource]:
    return [
        _resource("fields_of_action", fields, [f_id], "Handlungsfelder / Fields of action"),
        _resource("measures", measures, [m_id], "Maßnahmen / Measures"),
        _resource("measure_status_history", history, [m_id],
                  "Statusverlauf / Measure status history"),
        _resource("measure_summary", summary(measures), [m_id, f_id],
                  "Übersicht / Measures by status and field of action"),
    ]


def build(package: PackageConfig, config: Config, snapshots: dict[str, Snapshot],
          previous: Path | None, *, today: date | None = None) -> Build:
    """Read the city's two tables, check them and derive the four published resources."""
    f_src, m_src = _source(package, config, "fields_of_action"), _source(package, config, "measures")
    f_snap, m_snap = _snapshot(f_src, snapshots), _snapshot(m_src, snapshots)
    fw = chk.fields_where(f_src.id, table.file_name(f_src))
    mw = chk.measures_where(m_src.id, table.file_name(m_src))
    fields, issues = _load(f_src, f_snap, FIELD_COLUMNS, fw)
    issues += chk.check_ids(fields, fw)
    measures, m_issues = _load(m_src, m_snap, MEASURE_COLUMNS, mw)
    issues += m_issues
    days = int(config.settings.get("status_review_days", 365))
    measures, found = _check_measures(measures, {i for i in fields["id"] if i}, mw, days=days,
                                      today=today or date.today())
    issues += found
    prev_measures = read_previous(previous, "measures")
    issues += _moved_back(measures, prev_measures, mw)
    fields = carry_removed(fields, read_previous(previous, "fields_of_action"))
    measures = carry_removed(measures, prev_measures)
    first_seen = str(m_snap.manifest.get("fetched_at", ""))[:10]
    history = extend_history(measures, read_previous(previous, "measure_status_history"),
                             first_seen)
    coverage, counts = _coverage(measures, fields, _concept(package, config))
    resources = _resources(fields, measures, history, f_src.id, m_src.id)
    log.info("%s: built %d measures, %d issues", package.id, len(measures), len(issues))
    meta = {"coverage": coverage, "coverage_counts": counts, "notes": list(NOTES),
            "warnings": warning_lines(issues)} | _summary(counts)
    return Build(package.id, resources, [f_snap, m_snap], issues, meta)
