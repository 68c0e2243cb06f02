"""Regions for the statistics builder: the published code list, series breaks and the validity
rule, all taken from the region registry (``opendata.places``, data in config/regions/)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from opendata import places
from opendata.frames import distinct

REGION_VARIABLES: dict[str, str] = {
    "DINSG": "country", "GEODL1": "country",
    "DLAND": "state", "GEOBL1": "state",
    "KREISE": "district",
    "GEOGM4": "municipality",
}
"""GENESIS regional variables (first classifying variable of a table) → region level."""


def known_keys() -> set[str]:
    """Every key of the region registry."""
    return places.load().known_keys()


def levels() -> pd.Series:
    """Region key → level (a Series, for ``keys.map(levels())``)."""
    return places.load().levels()


def drop_outside_validity(frame: pd.DataFrame, source: str,
                          resource: str) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Leave out rows of a region dated outside its validity; one record per region dropped."""
    if not {"region_key", "reference_date"} <= set(frame.columns):
        return frame, []
    registry = places.load()
    out = registry.outside_validity(frame)
    if not out.any():
        return frame, []
    dropped = []
    for key, rows in frame[out].groupby("region_key", sort=True):
        start, end = registry.get(str(key), "valid_from"), registry.get(str(key), "valid_to")
        first, last = rows["reference_date"].min(), rows["reference_date"].max()
        dropped.append({"source": source, "resource": resource, "region_key": str(key),
                        "rows": len(rows), "dates": first if first == last else f"{first} – {last}",
                        "reason": f"dated outside the validity of region {key} ({start or '…'} – "
                                  f"{end or '…'}): the region did not exist then; see series_breaks"})
    return frame[~out].reset_index(drop=True), dropped


def used_keys(frames: Iterable[pd.DataFrame], configured: Iterable[str] = ()) -> list[str]:
    """Every region the package refers to: keys in the data and the configured regions, with
    the regions they point to (parents, successors, other keys of the same territory)."""
    keys = set(configured)
    for frame in frames:
        if "region_key" in frame.columns:
            keys |= set(distinct(frame["region_key"]))
    return places.load().closure(keys)


def regions_frame(keys: Iterable[str]) -> pd.DataFrame:
    """The regions code list of the given keys, sorted by key."""
    return places.load().frame(keys)


def breaks_frame(keys: Iterable[str]) -> pd.DataFrame:
    """The series breaks of the given keys, sorted by region key and date."""
    return places.load().breaks(keys)


def breaks_text(keys: Iterable[str]) -> list[str]:
    """One readable line per series break of the given keys (for the README)."""
    return [f"{b.region_key} ({b.change}, {b.break_date}): {b.description}"
            for b in breaks_frame(keys).itertuples(index=False)]
