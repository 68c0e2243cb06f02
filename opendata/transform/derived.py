"""Derived integration indicators from the tidy statistics resources, and what cannot be derived."""

from __future__ import annotations

import pandas as pd

from opendata.transform.indicators import (
    DERIVED_COLUMNS,
    PROTECTION_TOP_LEVEL,
    Derived,
    Part,
    derive,
    part,
)

Frames = dict[str, pd.DataFrame]
Keys = dict[str, list[str]]
ROUNDED_NOTE = ("12531-0043 has no 'Insgesamt' rows: the numerator is the sum of the top-level "
                "status categories over all sexes and citizenships, each cell rounded to a multiple "
                "of 5 by the source, so it is approximate")

NOT_COVERED = [
    "Share of foreigners in the population for Thüringen and Deutschland: the foreigners table "
    "12521-0040 is a Kreis table; for the Kreise it is configured (unverified, fetched by an "
    "online run), and the embedded data has only the city's figures for Eisenach on 2017-12-31.",
    "Eisenach after the merger (from 2021-07-01): the Kreis tables 12411, 12531 and 13111 list 16056 "
    "with '-' (left out here) or not at all, and none of them has municipality rows; only the Zensus 2022 "
    "population (1000A-0000, ARS 160630105105) describes the municipality.",
    "Immigration history for Eisenach and the Wartburgkreis: the embedded Zensus table 1000A-2022 "
    "covers Deutschland and the Länder only.",
    "Protection seekers per 1,000 inhabitants for Thüringen and Deutschland: 12531-0043 and "
    "12411-01-01-4 are embedded for the Kreise 16056 and 16063 only.",
    "Topic fields legal integration (naturalisations, Einbürgerungsstatistik 12511: no table code "
    "could be verified yet, see config/opendata.toml), child day-care and language skills, "
    "education, health, housing, crime, intercultural opening and subjective indicators: no "
    "embedded source.",
]


def _where(frame: pd.DataFrame, **match: object) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for col, want in match.items():
        mask &= frame[col].eq(want)
    return frame[mask]


def _employees(f: Frames, k: Keys) -> Derived:
    emp = f["employees"]

    def finder(b: pd.Series) -> tuple[Part | None, Part | None]:
        at = {"region_key": b["region_key"], "reference_date": b["reference_date"], "sex_code": ""}
        return (part(emp, "employees", k["employees"], nationality_code="NATA", **at),
                part(emp, "employees", k["employees"], nationality_code="", **at))
    spec = ("foreigners_share_employees", "percent", "labour_market", 100.0,
            "employees(nationality_code=NATA, sex_code='') / employees(nationality_code='', "
            "sex_code='') × 100", "")
    return derive(_where(emp, nationality_code="", sex_code=""), spec, finder)


def _immigration(f: Frames, k: Keys) -> Derived:
    imm = f["immigration_history"]

    def finder(b: pd.Series) -> tuple[Part | None, Part | None]:
        at = {"region_key": b["region_key"], "reference_date": b["reference_date"],
              "age_group_code": "", "immigration_history_variable": "WDGAT2"}
        return (part(imm, "immigration_history", k["immigration_history"],
                     immigration_history_code="WANDERUNG-BEID", **at),
                part(imm, "immigration_history", k["immigration_history"],
                     immigration_history_code="", **at))
    spec = ("immigration_history_share", "percent", "demography", 100.0,
            "immigration_history(WDGAT2=WANDERUNG-BEID, age total) / immigration_history(WDGAT2 "
            "total, age total) × 100", "Zensus 2022, reference date 15 May 2022")
    base = _where(imm, immigration_history_variable="WDGAT2", immigration_history_code="",
                  age_group_code="")
    return derive(base, spec, finder)


def _protection(f: Frames, k: Keys) -> Derived:
    pop, prot = f["population"], f["protection_seekers"]

    def finder(b: pd.Series) -> tuple[Part | None, Part | None]:
        at = {"region_key": b["region_key"], "reference_date": b["reference_date"]}
        return (part(prot, "protection_seekers", k["protection_seekers"],
                     protection_status_code=PROTECTION_TOP_LEVEL, **at),
                part(pop, "population", k["population"], sex_code="", **at))
    spec = ("protection_seekers_per_1000", "per_1000", "demography", 1000.0,
            "sum of protection_seekers(protection_status_code in "
            f"{'/'.join(PROTECTION_TOP_LEVEL)}) / population(sex_code='') × 1000", ROUNDED_NOTE)
    return derive(_where(pop, sex_code=""), spec, finder)


AZR_NOTE = ("numerator from the Central Register of Foreigners (Ausländerstatistik 12521), "
            "denominator from the population update (12411); the two registers are counted "
            "differently, so the share is approximate")


def _foreigners(f: Frames, k: Keys) -> Derived:
    pop, frg = f["population"], f["foreigners"]
    if frg["indicator"].nunique() > 1:
        return [], [f"foreigners_share_azr: the foreigners table has several value variables "
                    f"{sorted(set(frg['indicator']))}; the share needs exactly one"], set()

    def finder(b: pd.Series) -> tuple[Part | None, Part | None]:
        at = {"region_key": b["region_key"], "reference_date": b["reference_date"], "sex_code": ""}
        return (part(frg, "foreigners", k["foreigners"], **at),
                part(pop, "population", k["population"], **at))
    spec = ("foreigners_share_azr", "percent", "demography", 100.0,
            "foreigners(sex_code='') / population(sex_code='') × 100", AZR_NOTE)
    return derive(_where(frg, sex_code=""), spec, finder)


def _city(f: Frames, k: Keys, indicator: str, numerator: str, factor: float,
          unit: str) -> Derived:
    city = f["city_figures"]

    def finder(b: pd.Series) -> tuple[Part | None, Part | None]:
        at = {"region_key": b["region_key"], "reference_date": b["reference_date"],
              "sex_code": "", "citizenship_code": ""}
        return (part(city, "city_figures", k["city_figures"], indicator=numerator, **at),
                part(city, "city_figures", k["city_figures"], indicator="city_inhabitants", **at))
    spec = (indicator, unit, "demography", factor,
            f"city_figures({numerator}) / city_figures(city_inhabitants) × {factor:g}",
            "computed from figures reported by the city, not from official statistics")
    return derive(_where(city, indicator="city_inhabitants"), spec, finder)


def compute(frames: Frames, keys: Keys, expected_absent: frozenset[str] = frozenset()
            ) -> tuple[pd.DataFrame, list[str], dict[str, set[str]]]:
    """The derived_indicators rows, what is missing and why, and each indicator's input sources.

    A step whose inputs include a resource in ``expected_absent`` (e.g. from an unverified
    source, reported elsewhere) is skipped without a note.
    """
    steps = [(("employees",), lambda: _employees(frames, keys)),
             (("immigration_history",), lambda: _immigration(frames, keys)),
             (("protection_seekers", "population"), lambda: _protection(frames, keys)),
             (("foreigners", "population"), lambda: _foreigners(frames, keys)),
             (("city_figures",), lambda: _city(frames, keys, "foreigners_share_population",
                                               "city_foreigners", 100.0, "percent")),
             (("city_figures",), lambda: _city(frames, keys, "asylum_seekers_refugees_per_1000",
                                               "city_asylum_seekers_refugees", 1000.0, "per_1000"))]
    rows: list[dict[str, object]] = []
    missing: list[str] = []
    sources: dict[str, set[str]] = {}
    for needs, step in steps:
        absent = [n for n in needs if n not in frames]
        if absent:
            if not expected_absent.intersection(absent):
                missing.append(f"{needs[0]}: resource not built, derived indicators from it skipped")
            continue
        got, lacking, used = step()
        rows += got
        missing += lacking
        if got:
            sources.setdefault(str(got[0]["indicator"]), set()).update(used)
    out = pd.DataFrame(rows, columns=DERIVED_COLUMNS)
    for col in DERIVED_COLUMNS:
        if col not in ("value", "numerator", "denominator", "period"):
            out[col] = out[col].astype(object)
    out["period"] = out["period"].astype("Int64")
    return out, missing + NOT_COVERED, sources
