"""ffcsv long frames (and the city's figures table) → tidy resources shaped by their Table Schema.

The builder is generic: region = the first classifying variable; every further classifying
variable is named through ``DIMENSIONS`` and fills the schema fields ``<dim>_code``,
``<dim>_label`` (and ``<dim>_variable`` when the schema has it). Adding a GENESIS table is a
config entry plus a schema (plus a line here if it brings a new variable code).
"""

from __future__ import annotations

import re
from dataclasses import replace
from numbers import Integral

import numpy as np
import pandas as pd

from opendata import text
from opendata.config import SourceConfig
from opendata.frames import combine, compact, constant, distinct, from_codes, map_text
from opendata.model import Issue
from opendata.transform.regions import REGION_VARIABLES, levels

DIMENSIONS: dict[str, str] = {
    "GES": "sex",
    "NAT": "nationality",
    "SCHST2": "protection_status",
    "STAAG5": "citizenship",
    "ALTGR2": "age_group",
    "WDGAT1": "immigration_history",
    "WDGAT2": "immigration_history",
}
"""GENESIS classifying variable code → dimension name used in the tidy column names."""

UNITS: dict[str, str] = {"Anzahl": "count", "count": "count", "number": "count",
                         "Prozent": "percent", "%": "percent", "percent": "percent"}
"""Units as written by the source → unit codes of the package."""

TOTAL_LABEL = "Insgesamt"


def _issue(code: str, source: SourceConfig, resource: str, message: str, field: str = "",
           row: int | None = None, severity: str = "error") -> Issue:
    return Issue(severity, code, message, source=source.id, resource=resource, row=row, field=field)


def _dim_numbers(frame: pd.DataFrame) -> list[int]:
    return sorted(int(m.group(1)) for c in frame.columns if (m := re.fullmatch(r"dim(\d+)_code", c)))


def _region(frame: pd.DataFrame, source: SourceConfig, resource: str,
            out: pd.DataFrame, issues: list[Issue]) -> None:
    variables = distinct(frame["dim1_variable_code"])
    unknown = [v for v in variables if v not in REGION_VARIABLES]
    if unknown:
        issues.append(_issue("unknown-region-variable", source, resource,
                             f"first classifying variable {unknown} is not a known regional variable; "
                             "add it to opendata.transform.regions.REGION_VARIABLES",
                             field="dim1_variable_code"))
    out["region_key"] = compact(frame["dim1_code"])
    out["region_name"] = compact(frame["dim1_label"])
    known = levels()

    def level(pairs: pd.DataFrame) -> np.ndarray:
        by_var = pairs["dim1_variable_code"].map(REGION_VARIABLES).fillna("")
        return pairs["dim1_code"].map(known).fillna(by_var).astype(str).to_numpy(dtype=object)
    codes, per_pair = combine([frame["dim1_code"], frame["dim1_variable_code"]], level)
    out["region_level"] = from_codes(codes, per_pair, out.index)


def _dimension(frame: pd.DataFrame, n: int, fields: list[str], source: SourceConfig,
               resource: str, out: pd.DataFrame, issues: list[Issue]) -> None:
    variables = distinct(frame[f"dim{n}_variable_code"])
    if not variables:
        return  # no data rows: reported once by tidy_genesis
    names = {DIMENSIONS.get(v, "") for v in variables}
    if "" in names or len(names) != 1:
        issues.append(_issue("unknown-variable", source, resource,
                             f"classifying variable(s) {variables} (position {n}) map to {sorted(names)}; "
                             "add each code to opendata.transform.tidy.DIMENSIONS",
                             field=f"dim{n}_variable_code"))
        return
    name = names.pop()
    if f"{name}_code" not in fields:
        issues.append(_issue("schema-lacks-dimension", source, resource,
                             f"schema has no field {name}_code for variable(s) {variables}; "
                             f"add {name}_code and {name}_label to the schema", field=f"{name}_code"))
        return
    if len(variables) > 1 and f"{name}_variable" not in fields:
        issues.append(_issue("schema-lacks-dimension", source, resource,
                             f"variables {variables} share dimension {name}; add {name}_variable "
                             "to the schema", field=f"{name}_variable"))
    if f"{name}_variable" in fields:
        out[f"{name}_variable"] = compact(frame[f"dim{n}_variable_code"])
    out[f"{name}_code"] = compact(frame[f"dim{n}_code"])
    out[f"{name}_label"] = compact(frame[f"dim{n}_label"])


def _year(pairs: pd.DataFrame) -> pd.Series:
    date, time = pairs.iloc[:, 0].astype(str), pairs.iloc[:, 1].astype(str)
    year = date.str.slice(0, 4).where(date.ne(""), time.str.slice(0, 4))
    return pd.to_numeric(year, errors="coerce").astype("Int64")


def _period(reference_date: pd.Series, time: pd.Series) -> pd.Series:
    """The year of the reference date (else of ``time``), computed per distinct pair."""
    codes, years = combine([reference_date.rename("d"), time.rename("t")], _year)
    return pd.Series(pd.array(years, dtype="Int64").take(codes), index=reference_date.index)


def _units(raw: pd.Series, source: SourceConfig, resource: str, issues: list[Issue]) -> pd.Series:
    unknown = sorted(set(distinct(raw)) - set(UNITS))
    if unknown:
        issues.append(_issue("unknown-unit", source, resource,
                             f"unit(s) {unknown} unknown; add them to opendata.transform.tidy.UNITS",
                             field="value_unit"))
    return map_text(raw, UNITS, default="")


def _cell_key(frame: pd.DataFrame) -> list[str]:
    """The columns that name one cell of an ffcsv table (without its unit)."""
    dims = [f"dim{n}_code" for n in _dim_numbers(frame)]
    return ["time", *dims, "value_variable_code"]


def _unit_key(frame: pd.DataFrame, source: SourceConfig, resource: str, pk: list[str],
              issues: list[Issue]) -> None:
    """Several units for one cell (Zensus: Anzahl and Prozent) need ``unit`` in the primary key."""
    if "unit" in pk or frame.empty or len(distinct(frame["value_unit"])) < 2:
        return
    key = _cell_key(frame)
    cells = len(frame[key].drop_duplicates())
    with_unit = len(frame[[*key, "value_unit"]].drop_duplicates())
    if with_unit > cells:
        units = distinct(frame["value_unit"])
        issues.append(_issue("several-units-per-key", source, resource,
                             f"table {source.table} gives {with_unit - cells:,} cell(s) in several "
                             f"units ({', '.join(units)}), but the primary key of {resource} "
                             f"({', '.join(pk)}) has no 'unit': rows would collide. Add 'unit' to "
                             "the primaryKey of the resource's schema, or select one unit in the "
                             "source's params.", field="unit"))


def _time_key(out: pd.DataFrame, frame: pd.DataFrame, source: SourceConfig, resource: str,
              pk: list[str], issues: list[Issue]) -> None:
    """The table's time variable must fill the time field of the primary key."""
    blank = out["reference_date"].eq("") if "reference_date" in pk else out["period"].isna() \
        if "period" in pk else None
    if blank is not None and blank.any():
        field = "reference_date" if "reference_date" in pk else "period"
        times = distinct(frame.loc[blank, "time_code"])
        examples = distinct(frame.loc[blank, "time"])[:3]
        issues.append(_issue("time-variable-mismatch", source, resource,
                             f"{int(blank.sum()):,} row(s) have time variable {times} with values "
                             f"{examples}, which give no {field}; the primary key of {resource} "
                             f"needs {field}. The answer is not the configured kind of table "
                             f"({source.table}), or the schema expects another time variable.",
                             field=field))


def neutralise(out: pd.DataFrame, source: SourceConfig, resource: str,
               issues: list[Issue]) -> pd.DataFrame:
    """Neutralise every text column (formula-like labels); one warning per affected column."""
    out = out.copy(deep=False)  # columns are replaced, never changed in place
    for col in out.columns:
        if not (pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col])):
            continue
        safe, controls, formulas = text.neutralise_series(out[col])
        changed = controls | formulas
        if not changed.any():
            continue
        out[col] = safe
        shown = ", ".join(repr(v) for v in distinct(safe[changed])[:3])
        issues.append(_issue("formula-neutralised", source, resource,
                             f"{int(changed.sum()):,} cell(s) of {col} from table {source.table} "
                             f"could run as a spreadsheet formula or held control characters; "
                             f"published neutralised (leading apostrophe, control characters "
                             f"removed): {shown}", field=col, severity="warning"))
    return out


def tidy_genesis(frame: pd.DataFrame, source: SourceConfig, resource: str,
                 fields: list[str], primary_key: list[str] | None = None
                 ) -> tuple[pd.DataFrame, list[Issue]]:
    """An ffcsv frame (see ARCHITECTURE.md) → the tidy columns of ``fields`` plus issues."""
    issues: list[Issue] = []
    if frame.empty:
        issues.append(_issue("no-data-rows", source, resource,
                             f"table {source.table} has no data rows; check the source's params"))
    pk = primary_key or []
    out = pd.DataFrame(index=frame.index)
    _region(frame, source, resource, out, issues)
    out["reference_date"] = compact(frame["reference_date"])
    out["period"] = _period(frame["reference_date"], frame["time"])
    _time_key(out, frame, source, resource, pk, issues)
    for n in _dim_numbers(frame)[1:]:
        _dimension(frame, n, fields, source, resource, out, issues)
    out["indicator"] = compact(frame["value_variable_code"])
    out["value"] = frame["value"].astype("float64")
    out["unit"] = _units(frame["value_unit"], source, resource, issues)
    _unit_key(frame, source, resource, pk, issues)
    out["value_note"] = compact(frame["value_note"])
    out["quality"] = compact(frame["value_q"])
    out["source_table"] = constant(source.table, out.index)
    out = conform(out, fields, source, resource, issues)
    return neutralise(out, source, resource, issues), issues


def tidy_city(frame: pd.DataFrame, source: SourceConfig, resource: str, fields: list[str],
              text_fields: list[str] | None = None, file: str = "") -> tuple[pd.DataFrame, list[Issue]]:
    """The city's figures table (all-string cells) → tidy columns plus issues.

    Every cell is checked for control characters, and the cells of ``text_fields`` (default:
    all) are neutralised against formulas, by ``opendata.text`` (findings name ``file``).
    """
    texts = [c for c in frame.columns if text_fields is None or c in text_fields]
    out, issues = text.neutralise_frame(frame, text.Origin(source.id, resource, file),
                                        formula_columns=texts)
    out["region_level"] = out["region_key"].map(levels()).fillna("").astype(object)
    out["period"] = _period(out["reference_date"], out["reference_date"])
    for dim in ("sex", "citizenship"):
        total = out[f"{dim}_code"].eq("")
        out[f"{dim}_label"] = out[f"{dim}_label"].where(~total, TOTAL_LABEL)
    values = pd.to_numeric(out["value"], errors="coerce")
    for row in out.index[values.isna()]:
        issues.append(replace(_issue("not-a-number", source, resource,
                                     f"value {out.at[row, 'value']!r} is not a number; write "
                                     "digits only (decimal point '.')", field="value",
                                     row=_row(row)), file=file))
    out["value"] = values.astype("float64")
    out["value_note"] = pd.Series("", index=out.index, dtype=object)
    out["quality"] = pd.Series("", index=out.index, dtype=object)
    return conform(out, fields, source, resource, issues), issues


def _row(index: object) -> int | None:
    return int(index) if isinstance(index, Integral) else None


def conform(out: pd.DataFrame, fields: list[str], source: SourceConfig, resource: str,
            issues: list[Issue]) -> pd.DataFrame:
    """Keep exactly the schema's fields, in schema order; a missing field is an error issue."""
    for name in fields:
        if name not in out.columns:
            issues.append(_issue("field-not-filled", source, resource,
                                 f"schema field {name} cannot be filled from source {source.id}; "
                                 "check the schema against the table's classifying variables",
                                 field=name))
            out[name] = ""
    return out[fields]
