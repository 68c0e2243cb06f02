"""The regions code list and the series breaks of Eisenach's 2021 merger into the Wartburgkreis."""

from __future__ import annotations

import pandas as pd

REGION_VARIABLES: dict[str, str] = {
    "DINSG": "country", "GEODL1": "country",
    "DLAND": "state", "GEOBL1": "state",
    "KREISE": "district",
    "GEOGM4": "municipality",
}
"""GENESIS regional variables (first classifying variable of a table) → region level."""

_MERGER = ("Eisenach, until then the kreisfreie Stadt 16056, became part of the Wartburgkreis 16063 "
           "on 1 July 2021, as the municipality 16063105 (ARS 160630105105).")
_MERGER_DE = ("Die bis dahin kreisfreie Stadt Eisenach (16056) wurde am 1.7.2021 in den Wartburgkreis "
              "(16063) eingegliedert, als Gemeinde 16063105 (ARS 160630105105).")

REGIONS: list[dict[str, str]] = [
    {"key": "DG", "name": "Deutschland", "level": "country", "key_type": "country"},
    {"key": "16", "name": "Thüringen", "level": "state", "key_type": "land", "parent_key": "DG"},
    {"key": "16056", "name": "Eisenach, kreisfreie Stadt", "level": "district", "key_type": "kreis",
     "valid_to": "2021-06-30", "successor_key": "16063105", "parent_key": "16",
     "note": _MERGER + " Kreis tables list 16056 with '-' after the merger; such rows are left out.",
     "note_de": _MERGER_DE + " Kreistabellen führen 16056 danach mit '-'; solche Zeilen sind weggelassen."},
    {"key": "16063", "name": "Wartburgkreis", "level": "district", "key_type": "kreis",
     "parent_key": "16",
     "note": "Territory enlarged by Eisenach on 2021-07-01; see series_breaks.",
     "note_de": "Gebiet am 1.7.2021 um Eisenach erweitert; siehe series_breaks."},
    {"key": "16063105", "name": "Eisenach, Stadt", "level": "municipality", "key_type": "ags",
     "valid_from": "2021-07-01", "parent_key": "16063", "same_as_key": "160630105105",
     "note": "Municipality key (AGS) of Eisenach since the merger; a 'Große Kreisstadt'.",
     "note_de": "Amtlicher Gemeindeschlüssel (AGS) Eisenachs seit der Eingliederung; Große Kreisstadt."},
    {"key": "160630105105", "name": "Eisenach, Stadt", "level": "municipality", "key_type": "ars",
     "valid_from": "2021-07-01", "parent_key": "16063", "same_as_key": "16063105",
     "note": "Regional key (ARS) of the municipality Eisenach, used by the Zensus 2022 database.",
     "note_de": "Regionalschlüssel (ARS) der Gemeinde Eisenach, so in der Zensusdatenbank 2022."},
]
"""Every region the package can contain. Regions are matched by key only: another municipality
called "Eisenach" exists in Rhineland-Palatinate (07232218) and is not part of this package."""

SERIES_BREAKS: list[dict[str, str]] = [
    {"region_key": "16056", "break_date": "2021-07-01", "change": "dissolved",
     "related_key": "16063105",
     "description": _MERGER + " The 16056 series ends on 2021-06-30; values of the municipality "
                    "16063105/160630105105 afterwards are a different region level and are not "
                    "continued into the 16056 series.",
     "description_de": _MERGER_DE + " Die Reihe 16056 endet am 30.6.2021; Werte der Gemeinde "
                       "16063105/160630105105 danach gehören zu einer anderen Ebene und setzen "
                       "die Reihe 16056 nicht fort."},
    {"region_key": "16063", "break_date": "2021-07-01", "change": "territory_enlarged",
     "related_key": "16056",
     "description": "The Wartburgkreis includes Eisenach from 2021-07-01: values before and after "
                    "this date describe different territories and must not be compared as one series.",
     "description_de": "Der Wartburgkreis umfasst ab 1.7.2021 auch Eisenach: Werte vor und nach "
                       "diesem Tag beschreiben unterschiedliche Gebiete und bilden keine "
                       "durchgehende Reihe."},
    {"region_key": "16063105", "break_date": "2021-07-01", "change": "new_key",
     "related_key": "16056",
     "description": "Eisenach as a municipality of the Wartburgkreis; predecessor: kreisfreie Stadt 16056.",
     "description_de": "Eisenach als Gemeinde des Wartburgkreises; Vorgänger: kreisfreie Stadt 16056."},
]

REGION_COLUMNS = ["key", "name", "level", "key_type", "valid_from", "valid_to", "successor_key",
                  "parent_key", "same_as_key", "note", "note_de"]


def known_keys() -> set[str]:
    """Every key of the regions code list."""
    return {r["key"] for r in REGIONS}


def levels() -> dict[str, str]:
    """Region key → level."""
    return {r["key"]: r["level"] for r in REGIONS}


def outside_validity(frame: pd.DataFrame, date_col: str = "reference_date") -> pd.Series:
    """True for rows dated before their region's valid_from or after its valid_to."""
    valid = pd.DataFrame(REGIONS, columns=REGION_COLUMNS).fillna("").set_index("key")
    keys, dates = frame["region_key"].astype(str), frame[date_col].astype(str)
    start = keys.map(valid["valid_from"]).fillna("")
    end = keys.map(valid["valid_to"]).fillna("")
    dated = dates.ne("")
    return dated & ((start.ne("") & (dates < start)) | (end.ne("") & (dates > end)))


def drop_outside_validity(frame: pd.DataFrame, source: str,
                          resource: str) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Leave out rows of a region dated outside its validity; one record per region dropped."""
    if not {"region_key", "reference_date"} <= set(frame.columns):
        return frame, []
    out = outside_validity(frame)
    if not out.any():
        return frame, []
    valid = {r["key"]: (r.get("valid_from", ""), r.get("valid_to", "")) for r in REGIONS}
    dropped = []
    for key, rows in frame[out].groupby("region_key", sort=True):
        start, end = valid[str(key)]
        span = f"{start or '…'} – {end or '…'}"
        first, last = rows["reference_date"].min(), rows["reference_date"].max()
        dropped.append({"source": source, "resource": resource, "region_key": str(key),
                        "rows": len(rows), "dates": first if first == last else f"{first} – {last}",
                        "reason": f"dated outside the validity of region {key} ({span}): the "
                                  "region did not exist then; see series_breaks"})
    return frame[~out].reset_index(drop=True), dropped


def regions_frame() -> pd.DataFrame:
    """The regions code list, sorted by key."""
    rows = [{c: r.get(c, "") for c in REGION_COLUMNS} for r in REGIONS]
    return pd.DataFrame(rows, columns=REGION_COLUMNS, dtype=object).sort_values(
        "key", kind="stable").reset_index(drop=True)


def breaks_frame() -> pd.DataFrame:
    """The series-break table, sorted by region key and date."""
    cols = ["region_key", "break_date", "change", "related_key", "description", "description_de"]
    return pd.DataFrame(SERIES_BREAKS, columns=cols, dtype=object).sort_values(
        ["region_key", "break_date"], kind="stable").reset_index(drop=True)


def breaks_text() -> list[str]:
    """One readable line per series break (for the README)."""
    return [f"{b['region_key']} ({b['change']}, {b['break_date']}): {b['description']}"
            for b in SERIES_BREAKS]
