"""Custom checks of tidy statistics resources that a Table Schema cannot express.

Every finding is an error ``Issue`` naming source, resource, 1-based row (in the sorted
resource as published) and field: negative counts, shares above 100 %, unknown region keys,
duplicate primary keys and periods outside the expected range.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from opendata.frames import duplicated, mask_of
from opendata.model import Issue

FIRST_YEAR = 1990
COUNT_UNITS = ("count",)
SHARE_UNITS = ("percent",)


def last_year() -> int:
    """The latest plausible period: next year."""
    return date.today().year + 1


def _error(code: str, message: str, source: str, resource: str, row: int, fld: str) -> Issue:
    return Issue("error", code, message, source=source, resource=resource, row=row, field=fld)


def _rows(mask: pd.Series) -> list[int]:
    return (np.flatnonzero(mask.to_numpy(dtype=bool)) + 1).tolist()


def check_values(frame: pd.DataFrame, source: str, resource: str) -> list[Issue]:
    """Negative counts and shares above 100 %."""
    if "value" not in frame.columns or "unit" not in frame.columns:
        return []
    value = pd.to_numeric(frame["value"], errors="coerce")
    out = [_error("negative-count", f"count {value.iloc[r - 1]:g} is negative; counts of persons "
                  "cannot be below 0: check the source table", source, resource, r, "value")
           for r in _rows(frame["unit"].isin(COUNT_UNITS) & (value < 0))]
    out += [_error("share-above-100", f"share {value.iloc[r - 1]:g} % is above 100 %; check "
                   "numerator and denominator", source, resource, r, "value")
            for r in _rows(frame["unit"].isin(SHARE_UNITS) & (value > 100))]
    return out


def check_regions(frame: pd.DataFrame, known: set[str], source: str, resource: str,
                  fld: str = "region_key") -> list[Issue]:
    """Region keys that are not in the regions code list."""
    if fld not in frame.columns:
        return []
    keys = frame[fld]
    unknown = mask_of(keys, lambda v: ~v.astype(str).isin(known) & v.astype(str).ne(""))
    return [_error("unknown-region", f"region key {str(keys.iloc[r - 1])!r} is not in the regions "
                   "code registry; add it to config/regions/regions.csv or fix the key",
                   source, resource, r, fld)
            for r in (np.flatnonzero(unknown) + 1).tolist()]


def check_duplicates(frame: pd.DataFrame, pk: list[str], source: str, resource: str) -> list[Issue]:
    """Rows whose primary key repeats an earlier row."""
    if not pk or not set(pk) <= set(frame.columns):
        return []
    out = []
    for r in (np.flatnonzero(duplicated(frame, pk)) + 1).tolist():
        key = ", ".join(f"{k}={frame[k].iloc[r - 1]}" for k in pk)
        out.append(_error("duplicate-key", f"primary key ({key}) occurs more than once; the source "
                          "delivers the same cell twice", source, resource, r, ",".join(pk)))
    return out


def check_periods(frame: pd.DataFrame, source: str, resource: str) -> list[Issue]:
    """Periods (and reference dates) before 1990 or after next year."""
    if "period" not in frame.columns:
        return []
    period = pd.to_numeric(frame["period"], errors="coerce")
    bad = period.isna() | (period < FIRST_YEAR) | (period > last_year())
    return [_error("period-out-of-range", f"period {frame['period'].iloc[r - 1]!r} is outside "
                   f"{FIRST_YEAR}–{last_year()}; check the reference date", source, resource, r,
                   "period")
            for r in _rows(bad)]


def check_all(frame: pd.DataFrame, pk: list[str], known: set[str], source: str,
              resource: str) -> list[Issue]:
    """All custom checks of one tidy resource."""
    return (check_values(frame, source, resource) + check_regions(frame, known, source, resource)
            + check_duplicates(frame, pk, source, resource) + check_periods(frame, source, resource))
