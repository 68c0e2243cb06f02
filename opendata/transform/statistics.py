"""Package builder ``statistics``: ffcsv snapshots → tidy resources, code lists, derived indicators.

Every configured source of the package becomes one tidy resource shaped by its Table Schema
(``schemas/<package>/<resource>.schema.json``); the builder adds ``derived_indicators``,
``regions``, ``indicators`` and ``series_breaks``. Custom checks become error ``Issue``s.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from opendata import coverage
from opendata.config import Config, PackageConfig, SourceConfig
from opendata.errors import OpendataError
from opendata.frames import sort_frame
from opendata.model import Build, Issue, Resource
from opendata.paths import SCHEMAS_DIR
from opendata.snapshot import Snapshot
from opendata.sources import kind_module
from opendata.sources.table import file_name
from opendata.tables import field_names, load_schema, primary_key
from opendata.text import warning_lines
from opendata.transform import derived, gaps, regions
from opendata.transform.indicators import INDICATORS, SOURCE_COLUMNS, indicators_frame
from opendata.transform.stat_checks import check_all
from opendata.transform.tidy import tidy_city, tidy_genesis
from opendata.validate import resource_issues

log = logging.getLogger(__name__)
NOTES: dict[str, str] = {
    "protection_seekers": "Protection seekers (12531-0043): the table has no 'Insgesamt' rows; "
                          "every total in this package computed from it is a sum of detail cells "
                          "that the source rounds to multiples of 5.",
    "city_figures": "city_figures are figures reported by the city and the press, not official "
                    "statistics.",
    "": "Region keys are strings: read them as text to keep leading zeros.",
}
"""README notes: for a resource when it is in the package ("" = always)."""


def schema_path(package: str, resource: str) -> Path:
    """The Table Schema file of one resource of a package."""
    return SCHEMAS_DIR / package / f"{resource}.schema.json"


def _sorted(frame: pd.DataFrame, pk: list[str]) -> pd.DataFrame:
    return sort_frame(frame, pk) if pk else frame


def _tidy(source: SourceConfig, snap: Snapshot,
          schema: dict[str, Any]) -> tuple[pd.DataFrame, list[Issue]]:
    raw = kind_module(source.kind).read(source, snap)
    if source.kind == "genesis":
        return tidy_genesis(raw, source, source.resource, field_names(schema), primary_key(schema))
    texts = [f["name"] for f in schema["fields"] if f.get("type", "string") == "string"]
    return tidy_city(raw, source, source.resource, field_names(schema), texts, file_name(source))


def _resource(package: str, name: str, frame: pd.DataFrame, sources: list[str]) -> Resource:
    path = schema_path(package, name)
    schema = load_schema(path)
    frame = _sorted(frame[field_names(schema)], primary_key(schema))
    return Resource(name, frame, path, title=schema.get("title", name),
                    description=schema.get("description", ""), sources=sources)


def _source_resource(package: str, source: SourceConfig, snap: Snapshot | None,
                     issues: list[Issue], dropped: list[dict[str, object]]) -> Resource | None:
    if snap is None:
        issues.append(Issue("error", "missing-snapshot", "no raw snapshot for this source; run "
                            "'opendata fetch'", source=source.id, resource=source.resource))
        return None
    schema = load_schema(schema_path(package, source.resource))
    try:
        frame, found = _tidy(source, snap, schema)
    except OpendataError as exc:
        issues.append(Issue("error", "unreadable-source", exc.message, source=source.id,
                            resource=source.resource))
        return None
    issues += found
    frame, gone = regions.drop_outside_validity(frame, source.id, source.resource)
    dropped += gone
    res = _resource(package, source.resource, frame, [source.id])
    issues += check_all(res.frame, primary_key(schema), regions.known_keys(), source.id, res.name)
    log.info("built %s from %s: %d rows", res.name, source.id, len(res.frame))
    return res


def _unverified(source: SourceConfig, snap: Snapshot | None, package: str, issues: list[Issue],
                skipped: list[str], dropped: list[dict[str, object]]) -> Resource | None:
    """Build an unverified source; its problems are warnings and it is left out, never blocking."""
    where = f"{source.resource} ({source.id}, table {source.table}, code not yet verified)"
    if snap is None:
        skipped.append(f"{where}: not fetched yet; it appears once an online run has fetched it "
                       "and it passes its schema")
        return None
    found: list[Issue] = []
    res = _source_resource(package, source, snap, found, dropped)
    if res is not None:
        found += resource_issues(res, source.id)
    if not any(i.severity == "error" for i in found):
        issues += found
        return res
    issues += [replace(i, severity="warning", message=i.message + " (unverified source: left out "
                       "of the package; fix its config entry or schema)") for i in found]
    skipped.append(f"{where}: left out, the fetched table does not fit its schema (see the "
                   "validation warnings)")
    return None


def _indicator_sources(built: list[Resource], labels: dict[str, str],
                       derived_sources: dict[str, set[str]]) -> dict[str, set[str]]:
    """Indicator code → the tables or publications its published rows come from."""
    codes: dict[str, set[str]] = {}
    for r in built:
        if "indicator" not in r.frame.columns:
            continue
        col = next((c for c in SOURCE_COLUMNS if c in r.frame.columns), None)
        pairs = (r.frame[["indicator", col]].drop_duplicates().itertuples(index=False) if col
                 else ((code, s) for code in r.frame["indicator"].unique()
                       for s in derived_sources.get(str(code), set())))
        for code, src in pairs:
            codes.setdefault(str(code), set()).add(labels.get(str(src), str(src)))
    return codes


def _code_lists(package: str, built: list[Resource], issues: list[Issue],
                codes: dict[str, set[str]], keys: list[str]) -> list[Resource]:
    out = [_resource(package, "regions", regions.regions_frame(keys), []),
           _resource(package, "indicators", indicators_frame(codes), []),
           _resource(package, "series_breaks", regions.breaks_frame(keys), [])]
    for res in out:
        schema = load_schema(res.schema_path)
        issues += check_all(res.frame, primary_key(schema), regions.known_keys(), "", res.name)
    return out


CODE_LISTS = ("regions", "indicators", "series_breaks")


def _parts(built: list[Resource]) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(README label, German title, English title, rows) per data resource; derived per indicator."""
    out = []
    for r in built:
        if r.name in CODE_LISTS or r.frame.empty:
            continue
        if r.name != "derived_indicators":
            schema = load_schema(r.schema_path)
            out.append((f"`{r.name}`", str(schema.get("title_de", r.title)), r.title, r.frame))
            continue
        for code, rows in r.frame.groupby("indicator", sort=True):
            de, en = INDICATORS[str(code)][:2] if code in INDICATORS else (str(code), str(code))
            out.append((f"`derived_indicators` {code}", de, en, rows))
    return out


def _coverage(built: list[Resource]) -> tuple[list[str], dict[str, str]]:
    """README lines (region keys and dates) and the description sentences (names and years)."""
    codes = next(r.frame for r in built if r.name == "regions")
    names = dict(zip(codes["key"], codes["name"], strict=True))
    levels = dict(zip(codes["key"], codes["level"], strict=True))
    parts = _parts(built)
    lines = [f"{label} ({en}): {coverage.region_dates(rows, levels)}" for label, _, en, rows in parts]
    summary = {}
    for lang, head, pick in (("de", "Enthalten –", 1), ("en", "Contents –", 2)):
        text = " ".join(f"{p[pick]}: {coverage.region_years(p[3], names, levels, lang)}."
                        for p in parts)
        if text:
            summary[lang] = f"{head} {text}"
    return lines, summary


def _notes(built: list[Resource]) -> list[str]:
    names = {"", *(r.name for r in built if len(r.frame))}
    return [note for name, note in NOTES.items() if name in names]


def _dropped_notes(dropped: list[dict[str, object]]) -> list[str]:
    return [f"{d['resource']}: {d['rows']} row(s) of region {d['region_key']} ({d['dates']}) "
            f"left out, {d['reason']}." for d in dropped]


def _meta(config: Config, package: str, built: list[Resource], missing: list[str],
          dropped: list[dict[str, object]], keys: list[str]) -> dict[str, Any]:
    lines, summary = _coverage(built)
    return {"breaks": regions.breaks_text(keys), "coverage": lines, "summary": summary,
            "missing": missing, "notes": _notes(built) + _dropped_notes(dropped), "dropped": dropped,
            "rows": {r.name: len(r.frame) for r in built}}


def build(package: PackageConfig, config: Config, snapshots: dict[str, Snapshot],
          previous: Path | None) -> Build:
    """Build the statistics package from the newest snapshot of each of its sources."""
    issues: list[Issue] = []
    built: list[Resource] = []
    used: list[Snapshot] = []
    skipped: list[str] = []
    dropped: list[dict[str, object]] = []
    for source in config.sources_for(package.id):
        snap = snapshots.get(source.id)
        res = _source_resource(package.id, source, snap, issues, dropped) if source.verified \
            else _unverified(source, snap, package.id, issues, skipped, dropped)
        if res is not None and snap is not None:
            built.append(res)
            used.append(snap)
    frames = {r.name: r.frame for r in built}
    keys = {r.name: primary_key(load_schema(r.schema_path)) for r in built}
    unverified = frozenset(s.resource for s in config.sources_for(package.id) if not s.verified)
    configured = {s.resource for s in config.sources_for(package.id)}
    absent = unverified | {n for step in derived.STEPS for n in step.needs if n not in configured}
    frame, missing, derived_sources = derived.compute(frames, keys, expected_absent=absent)
    missing += gaps.not_covered(config, package.id, frames, frame)
    der = _resource(package.id, "derived_indicators", frame, [r.sources[0] for r in built])
    issues += check_all(der.frame, keys.get("derived_indicators", primary_key(
        load_schema(der.schema_path))), regions.known_keys(), "", der.name)
    built.append(der)
    labels = {s.table: f"{config.apis[s.api].title}, Tabelle {s.table}"
              for s in config.sources_for(package.id) if s.kind == "genesis"}
    town = config.municipality
    region_keys = regions.used_keys([r.frame for r in built], town.keys() if town else [])
    built += _code_lists(package.id, built, issues,
                         _indicator_sources(built, labels, derived_sources), region_keys)
    meta = _meta(config, package.id, built, skipped + missing, dropped, region_keys)
    tables = {s.id for s in config.sources_for(package.id) if s.kind == "table"}
    meta["warnings"] = warning_lines([i for i in issues if i.source in tables])
    return Build(package.id, built, used, issues, meta)
