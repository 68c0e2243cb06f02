"""The municipality a configuration is about, and its comparison regions, from the registry.

``[municipality] key`` is an 8-digit AGS (or the 5-digit key of a kreisfreie Stadt); its ARS,
Kreis, Land and former keys (dissolved into it, from config/regions/changes.csv) are looked up
in the region registry, so that every statistics request can derive its region selection.
"""

from __future__ import annotations

from dataclasses import dataclass

from opendata import places
from opendata.errors import ConfigError

KEY_TYPES = ("ags", "ars")


@dataclass(frozen=True)
class Municipality:
    """A municipality with the regions it is compared with."""

    key: str  # as configured
    name: str
    ags: str
    ars: str
    kreis: str
    land: str
    former: tuple[str, ...] = ()  # keys dissolved into it (e.g. a former kreisfreie Stadt)

    def keys(self) -> list[str]:
        """Every key of the municipality and its comparison regions."""
        return sorted({self.ags, self.ars, self.kreis, self.land, "DG", *self.former} - {""})

    def selection(self, levels: list[str], key_type: str = "ags") -> list[str]:
        """Region keys to request for the given levels (country, state, district, municipality)."""
        registry = places.load()
        former = {lvl: [k for k in self.former if registry.get(k, "level") == lvl]
                  for lvl in places.LEVELS}
        by_level = {"country": ["DG"], "state": [self.land],
                    "district": sorted({self.kreis, *former["district"]}),
                    "municipality": [self.ars if key_type == "ars" else self.ags,
                                     *former["municipality"]]}
        return [k for lvl in places.LEVELS if lvl in levels for k in by_level[lvl] if k]


def _single_municipality(registry: places.Registry, kreis: str) -> str:
    """The ARS of the only municipality of a kreisfreie Stadt, or ''."""
    regions = registry.regions
    found = regions.index[(regions["parent_key"] == kreis) & (regions["key_type"] == "ars")]
    return str(found[0]) if len(found) == 1 else ""


def resolve(key: str, name: str = "", file: str = "") -> Municipality:
    """Look a municipality key up in the registry; ConfigError naming the key if unknown."""
    registry = places.load()
    found = registry.resolve(key.strip())
    if not found:
        raise ConfigError(file, "municipality", f"key {key!r} is not in the region registry "
                          f"(config/regions/regions.csv); give the 8-digit AGS of the "
                          "municipality (e.g. 16053000) or the 5-digit key of a kreisfreie Stadt")
    kind = registry.get(found, "key_type")
    if kind == "kreis":
        ars = _single_municipality(registry, found)
        kreis = found
    elif kind == "ars":
        ars, kreis = found, registry.get(found, "parent_key")
    elif kind == "ags":
        ars, kreis = registry.get(found, "same_as_key"), registry.get(found, "parent_key")
    else:
        raise ConfigError(file, "municipality", f"key {key!r} is a {kind} key, not a municipality")
    ags = registry.get(ars, "same_as_key") if ars else (found if kind == "ags" else "")
    land = registry.get(kreis, "parent_key") or kreis[:2]
    former = {p for k in {found, ags, ars, kreis} - {""} for p in registry.predecessors(k)}
    return Municipality(key, name or registry.get(found, "name"), ags, ars, kreis, land,
                        tuple(sorted(former)))
