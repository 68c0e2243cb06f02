"""What a package covers, computed from its data: the time span, and which regions have which
data on which dates. Descriptions, READMEs, the catalog and the pages all take it from here."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from opendata.frames import distinct

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
                low, high = date_bounds(pd.Series(distinct(frame[col]), dtype=object))
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


MANY = 6
"""More regions of one level than this are counted, not named."""
LEVEL_WORDS = {"de": {"country": "Staaten", "state": "Länder", "district": "Kreise",
                      "municipality": "Gemeinden"},
               "en": {"country": "countries", "state": "Länder", "district": "Kreise",
                      "municipality": "municipalities"}}


def _by_level(keys: list[str], levels: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in sorted(keys, key=lambda k: (LEVEL_ORDER.get(levels.get(k, ""), 9), k)):
        out.setdefault(levels.get(key, ""), []).append(key)
    return out


def _regions_text(keys: list[str], names: dict[str, str], levels: dict[str, str],
                  lang: str) -> str:
    """Region names, or per level a count when there are many ('401 Kreise')."""
    parts: list[str] = []
    for level, group in _by_level(keys, levels).items():
        if len(group) > MANY:
            count = f"{len(group):,}".replace(",", "." if lang == "de" else ",")
            parts.append(f"{count} {LEVEL_WORDS[lang].get(level, level or 'regions')}")
        else:
            parts += [names.get(k, k) for k in group]
    return " / ".join(parts)


def region_years(frame: pd.DataFrame, names: dict[str, str], levels: dict[str, str],
                 lang: str = "en") -> str:
    """'Deutschland / Thüringen 2025; Wartburgkreis 2014–2024': regions grouped by their years
    (more than MANY regions of a level are counted: '401 Kreise 2024')."""
    pairs = frame[["region_key", "period"]].dropna().drop_duplicates()
    by_region = pairs.groupby("region_key")["period"].agg(lambda p: tuple(sorted(int(x) for x in p)))
    groups: dict[tuple[int, ...], list[str]] = {}
    for key in _by_level(list(by_region.index), levels).values():
        for k in key:
            groups.setdefault(by_region[k], []).append(k)
    return "; ".join(f"{_regions_text(keys, names, levels, lang)} {years_text(ys)}"
                     for ys, keys in groups.items())


def region_dates(frame: pd.DataFrame, levels: dict[str, str] | None = None) -> str:
    """'16063: 2014-12-31 – 2024-12-31 (11 dates)' per region key, for the README; with more
    than MANY keys of a level, one line per level: '401 district keys: 2024-12-31'."""
    pairs = frame[["region_key", "reference_date"]].drop_duplicates()
    pairs = pairs[pairs["reference_date"].astype(str) != ""]
    levels = levels or {}
    parts = []
    for level, keys in _by_level(list(pairs["region_key"].unique()), levels).items():
        if len(keys) > MANY:
            dates = sorted(set(pairs.loc[pairs["region_key"].isin(keys), "reference_date"]))
            parts.append(f"{len(keys):,} {level or 'other'} keys: {_span(dates)}")
            continue
        for key in keys:
            parts.append(f"{key}: {_span(sorted(pairs.loc[pairs['region_key'] == key, 'reference_date']))}")
    return "; ".join(parts)


def _span(dates: list[str]) -> str:
    return dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]} ({len(dates)} dates)"
