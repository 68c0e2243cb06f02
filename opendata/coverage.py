"""What a package covers, computed from its data: the time span, and which regions have which
data on which dates. Descriptions, READMEs, the catalog and the pages all take it from here."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

TEMPORAL_COLUMNS = ("reference_date", "start_date", "end_date", "status_date")
"""Columns holding the dates the data describes (ISO 8601, possibly YYYY or YYYY-MM)."""
LEVEL_ORDER = {"country": 0, "state": 1, "district": 2, "municipality": 3}
_ISO = r"\d{4}(-\d{2}(-\d{2})?)?"


def date_bounds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """First and last day of each ISO date of reduced precision; other values are dropped."""
    s = values.astype(str).str.strip()
    s = s[s.str.fullmatch(_ISO)]
    n = s.str.len()
    month_end = (pd.to_datetime(s[n == 7] + "-01") + pd.offsets.MonthEnd(0)).dt.strftime("%Y-%m-%d")
    low = s.where(n == 10, s.where(n == 7, s + "-01") + "-01")
    high = s.where(n != 4, s + "-12-31")
    high = high.where(n != 7, month_end.reindex(high.index))
    return low, high


def temporal(frames: Iterable[pd.DataFrame]) -> tuple[str, str] | None:
    """The earliest and latest day any date column of the frames describes, or None."""
    lows: list[str] = []
    highs: list[str] = []
    for frame in frames:
        for col in TEMPORAL_COLUMNS:
            if col in frame.columns and len(frame):
                low, high = date_bounds(frame[col])
                if len(low):
                    lows.append(str(low.min()))
                    highs.append(str(high.max()))
    return (min(lows), max(highs)) if lows else None


def years_text(years: Iterable[int]) -> str:
    """2014, 2015, 2016 → '2014–2016'; gaps are listed: '2017, 2020'."""
    ys = sorted(set(years))
    if len(ys) > 2 and ys[-1] - ys[0] == len(ys) - 1:
        return f"{ys[0]}–{ys[-1]}"
    return ", ".join(str(y) for y in ys)


def region_years(frame: pd.DataFrame, names: dict[str, str], levels: dict[str, str]) -> str:
    """'Deutschland / Thüringen 2025; Wartburgkreis 2014–2024': regions grouped by their years."""
    pairs = frame[["region_key", "period"]].dropna().drop_duplicates()
    by_region = pairs.groupby("region_key")["period"].agg(lambda p: tuple(sorted(int(x) for x in p)))
    keys = sorted(by_region.index, key=lambda k: (LEVEL_ORDER.get(levels.get(k, ""), 9), k))
    groups: dict[tuple[int, ...], list[str]] = {}
    for key in keys:
        groups.setdefault(by_region[key], []).append(names.get(key, key))
    return "; ".join(f"{' / '.join(regions)} {years_text(ys)}" for ys, regions in groups.items())


def region_dates(frame: pd.DataFrame) -> str:
    """'16063: 2014-12-31 – 2024-12-31 (11 dates)' per region key, for the README."""
    pairs = frame[["region_key", "reference_date"]].drop_duplicates()
    parts = []
    for key, dates in pairs.groupby("region_key", sort=True)["reference_date"]:
        ds = sorted(d for d in dates if d)
        if not ds:
            continue
        span = ds[0] if len(ds) == 1 else f"{ds[0]} – {ds[-1]} ({len(ds)} dates)"
        parts.append(f"{key}: {span}")
    return "; ".join(parts)
