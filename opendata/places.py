"""Knowledge about places, kept as data: the region registry and the territorial changes.

``config/regions/regions.csv`` lists every region (key, key type, name, level, parent,
validity, successor, the same territory's other key, notes, where the row comes from);
``config/regions/changes.csv`` lists territorial changes (a key dissolved, a territory
enlarged, a new key) with their date and a source. Regions are matched by key, never by name
(two municipalities may share a name). Nothing here knows a particular municipality.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from opendata.frames import combine
from opendata.paths import REGIONS_DIR

REGION_FILE = REGIONS_DIR / "regions.csv"
CHANGE_FILE = REGIONS_DIR / "changes.csv"
REGION_COLUMNS = ["key", "name", "level", "key_type", "valid_from", "valid_to", "successor_key",
                  "parent_key", "same_as_key", "note", "note_de"]
"""Columns of the published ``regions`` resource."""
REGISTRY_COLUMNS = [*REGION_COLUMNS, "source"]
BREAK_COLUMNS = ["region_key", "break_date", "change", "related_key", "description",
                 "description_de"]
"""Columns of the published ``series_breaks`` resource."""
CHANGE_COLUMNS = [*BREAK_COLUMNS, "source"]
LEVELS = ("country", "state", "district", "municipality")
LINKS = ("parent_key", "successor_key", "same_as_key")


def ars_to_ags(ars: pd.Series) -> pd.Series:
    """12-digit regional keys (ARS) → 8-digit municipality keys (AGS): Kreis + municipality."""
    return ars.str.slice(0, 5) + ars.str.slice(9, 12)


@dataclass(frozen=True)
class Registry:
    """Every known region (indexed by key) and every territorial change."""

    regions: pd.DataFrame
    changes: pd.DataFrame

    def has(self, key: str) -> bool:
        """True when the key is in the registry."""
        return key in self.regions.index

    def get(self, key: str, column: str) -> str:
        """One cell of a region's row ("" when the key or the value is unknown)."""
        return str(self.regions[column].get(key, "")) if self.has(key) else ""

    def known_keys(self) -> set[str]:
        """Every key of the registry."""
        return set(self.regions.index)

    def levels(self) -> pd.Series:
        """Region key → level, for mapping a key column in one step."""
        return self.regions["level"]

    def resolve(self, key: str) -> str:
        """The registry key for a key as people write it: a known key, or an AGS → its ARS."""
        if self.has(key):
            return key
        hit = self.regions.index[(self.regions["same_as_key"] == key)
                                 & (self.regions["key_type"] == "ars")]
        return str(hit[0]) if len(hit) else ""

    def ancestors(self, key: str) -> list[str]:
        """The regions a key lies in, nearest first (its Kreis, its Land, Germany)."""
        out: list[str] = []
        parent = self.get(key, "parent_key")
        while parent and parent not in out and self.has(parent):
            out.append(parent)
            parent = self.get(parent, "parent_key")
        return out

    def predecessors(self, key: str) -> list[str]:
        """Keys that were dissolved into ``key`` (from the territorial changes)."""
        c = self.changes
        return sorted(c.loc[(c["change"] == "dissolved") & (c["related_key"] == key),
                            "region_key"])

    def closure(self, keys: Iterable[str]) -> list[str]:
        """The keys plus every region they refer to (parents, successors, same territory,
        related changes), so that the published code list satisfies its foreign keys."""
        todo = [k for k in keys if self.has(k)]
        seen: set[str] = set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            todo += [self.get(key, col) for col in LINKS if self.has(self.get(key, col))]
            related = self.changes.loc[self.changes["region_key"] == key, "related_key"]
            todo += [k for k in related if self.has(k)]
        return sorted(seen)

    def frame(self, keys: Iterable[str]) -> pd.DataFrame:
        """The published ``regions`` rows of the given keys, sorted by key."""
        rows = self.regions.loc[sorted(set(keys))].reset_index()
        return rows[REGION_COLUMNS].astype(object).reset_index(drop=True)

    def breaks(self, keys: Iterable[str]) -> pd.DataFrame:
        """The ``series_breaks`` rows of the given keys, sorted by key and date."""
        found = self.changes[self.changes["region_key"].isin(set(keys))]
        return found[BREAK_COLUMNS].sort_values(["region_key", "break_date"], kind="stable") \
            .astype(object).reset_index(drop=True)

    def existed(self, key: str, first: str, last: str) -> bool:
        """Did the region exist on some day from ``first`` to ``last`` (ISO dates; "" = unknown)?"""
        start, end = self.get(key, "valid_from"), self.get(key, "valid_to")
        return not first or not ((end and first > end) or (start and last < start))

    def outside_validity(self, frame: pd.DataFrame, date_col: str = "reference_date") -> pd.Series:
        """True for rows dated before their region's valid_from or after its valid_to."""
        def outside(pairs: pd.DataFrame) -> np.ndarray:
            keys, dates = pairs.iloc[:, 0].astype(str), pairs.iloc[:, 1].astype(str)
            start = keys.map(self.regions["valid_from"]).fillna("")
            end = keys.map(self.regions["valid_to"]).fillna("")
            return (dates.ne("") & ((start.ne("") & (dates < start))
                                    | (end.ne("") & (dates > end)))).to_numpy(dtype=bool)
        codes, per_pair = combine([frame["region_key"], frame[date_col]], outside)
        return pd.Series(per_pair[codes], index=frame.index)


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame[columns].astype(object)


def with_ags_rows(regions: pd.DataFrame) -> pd.DataFrame:
    """Add the AGS row of every municipality listed only by its ARS (``same_as_key``).

    The AGS names the same territory as the ARS row (same name, level, parent, validity), so a
    published ``regions`` list that names a municipality's AGS in ``same_as_key`` also has that
    key as a row (its foreign key). Curated AGS rows (with notes) are kept as they are.
    """
    ars = regions[(regions["key_type"] == "ars") & regions["same_as_key"].ne("")]
    ars = ars[~ars["same_as_key"].isin(regions["key"])]
    ags = ars.assign(key=ars["same_as_key"], key_type="ags", same_as_key=ars["key"], note="",
                     note_de="", source="derived from the ARS row (same territory)")
    return pd.concat([regions, ags[REGISTRY_COLUMNS]], ignore_index=True).astype(object)


@lru_cache(maxsize=4)
def load(directory: Path = REGIONS_DIR) -> Registry:
    """The registry in ``directory`` (regions.csv and changes.csv), read once per process."""
    regions = with_ags_rows(_read(directory / REGION_FILE.name, REGISTRY_COLUMNS))
    regions = regions.set_index("key", drop=False)
    regions.index.name = None
    return Registry(regions, _read(directory / CHANGE_FILE.name, CHANGE_COLUMNS))
