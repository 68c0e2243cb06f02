"""Derived integration indicators from the tidy statistics resources, and what cannot be derived.

Every indicator is a fraction of two sums over rows of the same region and reference date
(so nothing is ever combined across a territorial break). Both sums are computed by grouping
on (region_key, reference_date) and joined to the base rows on that key: the cost grows
linearly with the rows. ``input_keys`` names the inputs in text that does not grow with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opendata.transform.indicators import DERIVED_COLUMNS, PROTECTION_TOP_LEVEL, SOURCE_COLUMNS

Frames = dict[str, pd.DataFrame]
Keys = dict[str, list[str]]
Match = dict[str, "str | tuple[str, ...]"]
AT = ["region_key", "reference_date"]
MISSING = "an input value is missing in the source (marker or no row)"
EXAMPLES = 3
ROUNDED_NOTE = ("12531-0043 has no 'Insgesamt' rows: the numerator is the sum of the top-level "
                "status categories over all sexes and citizenships, each cell rounded to a multiple "
                "of 5 by the source, so it is approximate")
AZR_NOTE = ("numerator from the Central Register of Foreigners (Ausländerstatistik 12521), "
            "denominator from the population update (12411); the two registers are counted "
            "differently, so the share is approximate")
CITY_NOTE = "computed from figures reported by the city, not from official statistics"


@dataclass(frozen=True)
class Side:
    """Rows of one resource that match every condition (a tuple means 'any of')."""

    resource: str
    match: Match = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One derived indicator: one value per base row, numerator / denominator × factor."""

    indicator: str
    unit: str
    topic: str
    factor: float
    formula: str
    note: str
    base: Side
    num: Side
    den: Side

    @property
    def needs(self) -> tuple[str, ...]:
        """The resources this indicator reads."""
        return tuple(dict.fromkeys((self.base.resource, self.num.resource, self.den.resource)))


def _city(indicator: str, numerator: str, factor: float, unit: str) -> Step:
    totals: Match = {"sex_code": "", "citizenship_code": ""}
    return Step(indicator, unit, "demography", factor,
                f"city_figures({numerator}) / city_figures(city_inhabitants) × {factor:g}",
                CITY_NOTE, Side("city_figures", {"indicator": "city_inhabitants"}),
                Side("city_figures", {"indicator": numerator, **totals}),
                Side("city_figures", {"indicator": "city_inhabitants", **totals}))


STEPS: list[Step] = [
    Step("foreigners_share_employees", "percent", "labour_market", 100.0,
         "employees(nationality_code=NATA, sex_code='') / employees(nationality_code='', "
         "sex_code='') × 100", "",
         Side("employees", {"nationality_code": "", "sex_code": ""}),
         Side("employees", {"nationality_code": "NATA", "sex_code": ""}),
         Side("employees", {"nationality_code": "", "sex_code": ""})),
    Step("immigration_history_share", "percent", "demography", 100.0,
         "immigration_history(WDGAT2=WANDERUNG-BEID, age total) / immigration_history(WDGAT2 "
         "total, age total) × 100", "Zensus 2022, reference date 15 May 2022",
         Side("immigration_history", {"immigration_history_variable": "WDGAT2",
                                      "immigration_history_code": "", "age_group_code": ""}),
         Side("immigration_history", {"immigration_history_variable": "WDGAT2",
                                      "immigration_history_code": "WANDERUNG-BEID",
                                      "age_group_code": ""}),
         Side("immigration_history", {"immigration_history_variable": "WDGAT2",
                                      "immigration_history_code": "", "age_group_code": ""})),
    Step("protection_seekers_per_1000", "per_1000", "demography", 1000.0,
         "sum of protection_seekers(protection_status_code in "
         f"{'/'.join(PROTECTION_TOP_LEVEL)}) / population(sex_code='') × 1000", ROUNDED_NOTE,
         Side("population", {"sex_code": ""}),
         Side("protection_seekers", {"protection_status_code": PROTECTION_TOP_LEVEL}),
         Side("population", {"sex_code": ""})),
    Step("foreigners_share_azr", "percent", "demography", 100.0,
         "foreigners(sex_code='') / population(sex_code='') × 100", AZR_NOTE,
         Side("foreigners", {"sex_code": ""}), Side("foreigners", {"sex_code": ""}),
         Side("population", {"sex_code": ""})),
    _city("foreigners_share_population", "city_foreigners", 100.0, "percent"),
    _city("asylum_seekers_refugees_per_1000", "city_asylum_seekers_refugees", 1000.0, "per_1000"),
]
"""The derived indicators, in the order they are computed."""

def select(frame: pd.DataFrame, match: Match) -> pd.DataFrame:
    """The rows matching every condition of ``match``."""
    mask = np.ones(len(frame), dtype=bool)
    for col, want in match.items():
        mask &= (frame[col].isin(want) if isinstance(want, tuple) else frame[col].eq(want)).to_numpy()
    return frame[mask]


def row_keys(rows: pd.DataFrame, resource: str, pk: list[str]) -> pd.Series:
    """'resource(f=v, …)' for every row, built column by column."""
    text = pd.Series(f"{resource}(", index=rows.index, dtype=object)
    for i, f in enumerate(pk):
        text = text + (", " if i else "") + f"{f}=" + rows[f].astype(str)
    return text + ")"


def _selection(side: Side) -> str:
    """The conditions of a side as text: 'f=v' or 'f in a/b/c', comma-separated."""
    return "".join(f", {f} in {'/'.join(v)}" if isinstance(v, tuple) else f", {f}={v}"
                   for f, v in side.match.items())


def _sums(rows: pd.DataFrame, side: Side, pk: list[str]) -> pd.DataFrame:
    """Per (region_key, reference_date): the sum, whether any value is missing, the input keys.

    A sum of one row names that row by its primary key; a sum of several rows names the
    selection that picks exactly them (region, date and the side's conditions) and their
    count, so the text stays one line however many rows a value sums.
    """
    grouped = rows.groupby(AT, sort=False, observed=True)
    ids = grouped.ngroup().to_numpy()
    out = pd.DataFrame({"value": grouped["value"].sum(), "gap": rows["value"].isna()
                        .groupby([rows[c] for c in AT], sort=False, observed=True).any()})
    counts = np.bincount(ids, minlength=len(out))
    single = counts[ids] == 1
    keys = np.empty(len(out), dtype=object)
    keys[ids[single]] = row_keys(rows[single], side.resource, pk).to_numpy(dtype=object)
    many = counts > 1
    at = out.index.to_frame(index=False)
    keys[many] = (f"{side.resource}(region_key=" + at["region_key"].astype(str)[many]
                  + ", reference_date=" + at["reference_date"].astype(str)[many]
                  + _selection(side) + ") [" + pd.Series(counts).astype(str)[many]
                  + " rows]").to_numpy(dtype=object)
    out["keys"] = keys
    return out


def _sources(rows: pd.DataFrame, used: pd.DataFrame) -> set[str]:
    """The tables or publications of the input rows that fed a derived value."""
    col = next((c for c in SOURCE_COLUMNS if c in rows.columns), None)
    if col is None or used.empty:
        return set()
    return set(rows.merge(used[AT].drop_duplicates(), on=AT)[col].astype(str).unique()) - {""}


def _missing_lines(step: Step, base: pd.DataFrame) -> list[str]:
    """One line per region level: how many base rows lack an input, with a few examples."""
    lines = []
    for level, rows in base.groupby("region_level", sort=True):
        shown = [f"{k} ({n}) on {d}" for k, n, d in rows[["region_key", "region_name",
                                                            "reference_date"]].head(EXAMPLES)
                 .itertuples(index=False)]
        more = f" and {len(rows) - EXAMPLES:,} more" if len(rows) > EXAMPLES else ""
        lines.append(f"{step.indicator} for {len(rows):,} {level or 'unknown-level'} "
                     f"value(s), {MISSING}: {'; '.join(shown)}{more}")
    return lines


def derive(step: Step, frames: Frames, keys: Keys) -> tuple[pd.DataFrame, list[str], set[str]]:
    """The rows of one derived indicator, what is missing, and the sources of the inputs used."""
    base = select(frames[step.base.resource], step.base.match).drop_duplicates(AT)
    num_rows = select(frames[step.num.resource], step.num.match)
    den_rows = select(frames[step.den.resource], step.den.match)
    num = _sums(num_rows, step.num, keys[step.num.resource])
    den = _sums(den_rows, step.den, keys[step.den.resource])
    joined = (base.set_index(AT)[["region_name", "region_level", "period"]]
              .join(num.add_prefix("n_")).join(den.add_prefix("d_")).reset_index())
    ok = (joined["n_value"].notna() & joined["d_value"].notna() & ~joined["n_gap"].fillna(True)
          .astype(bool) & ~joined["d_gap"].fillna(True).astype(bool) & joined["d_value"].ne(0))
    good = joined[ok]
    out = pd.DataFrame({
        "region_key": good["region_key"], "region_name": good["region_name"],
        "region_level": good["region_level"], "reference_date": good["reference_date"],
        "period": good["period"], "indicator": step.indicator,
        "value": (good["n_value"] / good["d_value"] * step.factor).round(2),
        "unit": step.unit, "numerator": good["n_value"], "denominator": good["d_value"],
        "formula": step.formula, "input_keys": good["n_keys"] + " | " + good["d_keys"],
        "topic": step.topic, "note": step.note}, columns=DERIVED_COLUMNS)
    sources = _sources(num_rows, good) | _sources(den_rows, good)
    return out, _missing_lines(step, joined[~ok]), sources


def _several_values(step: Step, frames: Frames) -> list[str]:
    """A share needs one value variable in its numerator resource (e.g. foreigners)."""
    frame = frames[step.num.resource]
    if step.num.resource == step.base.resource and step.num.resource != step.den.resource \
            and frame["indicator"].nunique() > 1:
        return [f"{step.indicator}: the {step.num.resource} table has several value variables "
                f"{sorted(set(frame['indicator']))}; the share needs exactly one"]
    return []


def compute(frames: Frames, keys: Keys, expected_absent: frozenset[str] = frozenset()
            ) -> tuple[pd.DataFrame, list[str], dict[str, set[str]]]:
    """The derived_indicators rows, what is missing and why, and each indicator's input sources.

    A step whose inputs include a resource in ``expected_absent`` (e.g. from an unverified
    source, reported elsewhere) is skipped without a note.
    """
    parts: list[pd.DataFrame] = []
    missing: list[str] = []
    sources: dict[str, set[str]] = {}
    for step in STEPS:
        absent = [n for n in step.needs if n not in frames]
        if absent:
            if not expected_absent.intersection(absent):
                missing.append(f"{step.needs[0]}: resource not built, derived indicators from it "
                               "skipped")
            continue
        trouble = _several_values(step, frames)
        if trouble:
            missing += trouble
            continue
        rows, lacking, used = derive(step, frames, keys)
        missing += lacking
        if len(rows):
            parts.append(rows)
            sources[step.indicator] = used
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DERIVED_COLUMNS)
    for col in DERIVED_COLUMNS:
        if col not in ("value", "numerator", "denominator", "period"):
            out[col] = out[col].astype(object)
    for col in ("value", "numerator", "denominator"):
        out[col] = out[col].astype("float64")
    out["period"] = out["period"].astype("Int64")
    return out, missing, sources
