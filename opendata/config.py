"""Load and check the source registry (`config/opendata.toml`)."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opendata import places
from opendata.errors import ConfigError
from opendata.municipality import KEY_TYPES, Municipality, resolve
from opendata.paths import (
    CONFIG_FILE,
    NAMESPACE_RE,
    RESERVED_NAMESPACES,
    SCHEMAS_DIR,
    Paths,
    release_ref,
)

KINDS = ("genesis", "table")
CADENCES = {"daily": 2, "weekly": 10, "monthly": 40, "quarterly": 100, "yearly": 400, "irregular": 0}
SOURCE_REQUIRED: dict[str, type] = {"id": str, "kind": str, "package": str, "schema": str, "license": str,
                   "attribution": str}
KIND_REQUIRED: dict[str, dict[str, type]] = {"genesis": {"api": str, "table": str},
                                             "table": {"location": str}}


LIMIT_DEFAULTS: dict[str, int | float] = {
    "max_table_bytes": 20_000_000,  # bytes of one city table file
    "max_table_rows": 100_000,      # data rows of one city table
    "max_table_cells": 200,         # cells (columns) in one row
    "max_cell_chars": 32_767,       # characters in one cell (Excel's own cell limit)
    "max_removed_share": 0.5,       # a run may remove at most this share of a resource's rows
}


@dataclass(frozen=True)
class Limits:
    """Size limits for every input, from [settings] (safe defaults in ``LIMIT_DEFAULTS``)."""

    max_table_bytes: int = int(LIMIT_DEFAULTS["max_table_bytes"])
    max_table_rows: int = int(LIMIT_DEFAULTS["max_table_rows"])
    max_table_cells: int = int(LIMIT_DEFAULTS["max_table_cells"])
    max_cell_chars: int = int(LIMIT_DEFAULTS["max_cell_chars"])
    max_removed_share: float = float(LIMIT_DEFAULTS["max_removed_share"])


def limits_from(settings: dict[str, Any], file: str = "") -> Limits:
    """The limits of a [settings] table; a bad value is a ConfigError."""
    values: dict[str, Any] = {}
    for key, default in LIMIT_DEFAULTS.items():
        value = settings.get(key, default)
        typ = float if isinstance(default, float) else int
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if typ is int:
            ok = ok and isinstance(value, int)
        if not ok or (key == "max_removed_share" and value > 1):
            raise ConfigError(file, "settings", f"'{key}' must be a positive "
                              f"{'whole number' if typ is int else 'share between 0 and 1'}, "
                              f"got {value!r}")
        values[key] = typ(value)
    return Limits(**values)


def _check_recheck_days(settings: dict[str, Any], file: str) -> None:
    """[settings] recheck_days is a number of days >= 0 (0: download every table every time)."""
    value = settings.get("recheck_days", 7)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 36500:
        raise ConfigError(file, "settings", f"'recheck_days' must be a number of days from 0 "
                          f"(download every GENESIS table every time) to 36500, got {value!r}")


@dataclass(frozen=True)
class SourceConfig:
    """One registry entry."""

    id: str
    kind: str
    package: str
    schema: str  # "<package>/<resource>" under schemas/, the resource it feeds
    license: str
    attribution: str
    cadence: str = "yearly"
    title: str = ""
    api: str = ""
    table: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    location: str = ""
    format: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    verified: bool = True  # False: table code not yet confirmed against the live catalogue
    evidence: str = ""  # where an unverified table code comes from
    region_levels: list[str] = field(default_factory=list)  # regionalkey from [municipality]
    region_key_type: str = "ags"  # municipality key in requests: ags (8 digits) or ars (12)

    @property
    def resource(self) -> str:
        """Name of the resource this source feeds."""
        return self.schema.split("/", 1)[1]


@dataclass(frozen=True)
class ApiConfig:
    """A GENESIS-REST endpoint and where its credentials come from."""

    id: str
    base_url: str
    credentials: str  # env prefix, e.g. REGIONALSTATISTIK -> REGIONALSTATISTIK_TOKEN
    title: str = ""


@dataclass(frozen=True)
class PackageConfig:
    """Metadata of one published package."""

    id: str
    builder: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Config:
    """The whole registry."""

    path: Path
    sources: list[SourceConfig]
    packages: dict[str, PackageConfig]
    apis: dict[str, ApiConfig]
    settings: dict[str, Any]
    catalog: dict[str, Any]
    raw: dict[str, Any]
    municipality: Municipality | None = None
    namespace: str = ""  # [municipality] id: this config's folder in raw/, published/, state/

    def paths(self, data_dir: Path) -> Paths:
        """The locations of this configuration in a data dir (its namespace)."""
        return Paths(data_dir, self.namespace)

    @property
    def published_url(self) -> str:
        """The public URL of this config's releases: base URL + namespace ("" without a base)."""
        base = str(self.catalog.get("base_url", ""))
        if not base:
            return ""
        return base.rstrip("/") + "/" + (f"{self.namespace}/" if self.namespace else "")

    def release_url(self, package: str) -> str:
        """The public URL of a package's folder (base URL + namespace + package + '/')."""
        return f"{self.published_url}{package}/" if self.published_url else \
            f"{release_ref(self.namespace, package)}/"

    @property
    def limits(self) -> Limits:
        """Size limits for inputs, from [settings]."""
        return limits_from(self.settings, str(self.path))

    def sources_for(self, package: str) -> list[SourceConfig]:
        """Sources feeding one package, in registry order."""
        return [s for s in self.sources if s.package == package]

    def source(self, source_id: str) -> SourceConfig:
        """One source by id."""
        for s in self.sources:
            if s.id == source_id:
                return s
        raise ConfigError(str(self.path), f"sources.{source_id}", "no such source id")


def _need(file: str, entry: str, data: dict[str, Any], key: str, typ: type) -> Any:
    if key not in data:
        raise ConfigError(file, entry, f"missing required key '{key}'")
    if not isinstance(data[key], typ):
        raise ConfigError(file, entry, f"'{key}' must be a {typ.__name__}, got {data[key]!r}")
    return data[key]


def _regions(file: str, entry: str, d: dict[str, Any], town: Municipality | None) -> dict[str, Any]:
    """A GENESIS source's params with ``regionalkey`` derived from its ``region_levels``."""
    levels = d.get("region_levels") or []
    params = dict(d.get("params") or {})
    if not levels or "regionalkey" in params:
        return params
    bad = [lvl for lvl in levels if lvl not in places.LEVELS]
    if bad or not isinstance(levels, list):
        raise ConfigError(file, entry, f"region_levels must list levels of {places.LEVELS}, "
                          f"got {levels!r}")
    if d.get("region_key_type", "ags") not in KEY_TYPES:
        raise ConfigError(file, entry, f"region_key_type must be one of {KEY_TYPES}")
    if town is None:
        raise ConfigError(file, entry, "region_levels needs a [municipality] table (key = AGS), "
                          "or give params.regionalkey explicitly")
    params["regionalkey"] = town.selection(levels, d.get("region_key_type", "ags"))
    return params


def _source(file: str, i: int, d: dict[str, Any], packages: dict[str, PackageConfig],
            apis: dict[str, ApiConfig], town: Municipality | None = None) -> SourceConfig:
    entry = f"sources[{i}]" + (f" (id={d['id']})" if isinstance(d.get("id"), str) else "")
    for key, typ in SOURCE_REQUIRED.items():
        _need(file, entry, d, key, typ)
    if d["kind"] not in KINDS:
        raise ConfigError(file, entry, f"unknown kind '{d['kind']}'; use one of {', '.join(KINDS)}")
    for key, typ in KIND_REQUIRED[d["kind"]].items():
        _need(file, entry, d, key, typ)
    if d["package"] not in packages:
        raise ConfigError(file, entry, f"package '{d['package']}' is not defined under [packages]")
    if d["kind"] == "genesis" and d["api"] not in apis:
        raise ConfigError(file, entry, f"api '{d['api']}' is not defined under [apis]")
    if d.get("cadence", "yearly") not in CADENCES:
        raise ConfigError(file, entry, f"cadence must be one of {', '.join(CADENCES)}")
    if "/" not in d["schema"] or not (SCHEMAS_DIR / f"{d['schema']}.schema.json").is_file():
        raise ConfigError(file, entry, f"schema '{d['schema']}' not found as "
                          f"schemas/{d['schema']}.schema.json")
    if not isinstance(d.get("verified", True), bool):
        raise ConfigError(file, entry, "'verified' must be true or false")
    if d.get("verified") is False and not d.get("evidence"):
        raise ConfigError(file, entry, "an unverified source needs 'evidence': where its table "
                          "code comes from")
    known = set(SourceConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(file, entry, f"unknown key(s) {', '.join(unknown)}")
    return SourceConfig(**(d | {"params": _regions(file, entry, d, town)}))


_LOADED: dict[str, tuple[str, Config]] = {}  # path -> (its text, the checked registry)
_LOADED_MAX = 16


def load(path: Path | None = None) -> Config:
    """Read and check the registry; raise ConfigError naming file, entry and problem.

    The file is read every time; a text this process has already checked is not parsed and
    checked again (a run loads its config once per task): the caller gets its own copy.
    """
    path = Path(path or CONFIG_FILE)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found; pass --config FILE") from None
    known = _LOADED.get(file)
    if known is not None and known[0] == text:
        return copy.deepcopy(known[1])
    cfg = _parse(path, text)
    if len(_LOADED) >= _LOADED_MAX:
        _LOADED.clear()
    _LOADED[file] = (text, copy.deepcopy(cfg))
    return cfg


def _parse(path: Path, text: str) -> Config:
    """The registry in ``text`` (the file at ``path``), checked."""
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    apis = {}
    for key, a in (data.get("apis") or {}).items():
        entry = f"apis.{key}"
        apis[key] = ApiConfig(key, _need(file, entry, a, "base_url", str),
                              _need(file, entry, a, "credentials", str), a.get("title", ""))
    packages = {}
    for key, p in (data.get("packages") or {}).items():
        packages[key] = PackageConfig(key, _need(file, f"packages.{key}", p, "builder", str), p)
    if not packages:
        raise ConfigError(file, "packages", "no packages defined")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(file, "sources", "no [[sources]] entries")
    town = _municipality(file, data)
    sources = [_source(file, i, d, packages, apis, town) for i, d in enumerate(raw_sources)]
    sources = [_with_settings(s, data.get("settings") or {}) for s in sources]
    ids = [s.id for s in sources]
    dupes = sorted({x for x in ids if ids.count(x) > 1})
    if dupes:
        raise ConfigError(file, f"sources (id={dupes[0]})", "duplicate source id")
    limits_from(data.get("settings", {}), file)  # fail early on a bad limit
    _check_recheck_days(data.get("settings", {}), file)
    catalog = data.get("catalog", {})
    if not str(catalog.get("publisher_name", "")).strip():
        raise ConfigError(file, "catalog", "missing 'publisher_name': the body that publishes "
                          "the data (e.g. 'Stadt Jena'); there is no default")
    return Config(path, sources, packages, apis, data.get("settings", {}), catalog, data, town,
                  _namespace(file, data, packages, sources))


def _namespace(file: str, data: dict[str, Any], packages: dict[str, PackageConfig],
               sources: list[SourceConfig]) -> str:
    """``[municipality] id``: "" (top level of the data dir) or a slug that names no folder."""
    value = (data.get("municipality") or {}).get("id", "")
    if value == "":
        return ""
    taken = RESERVED_NAMESPACES | set(packages) | {s.id for s in sources}
    if not isinstance(value, str) or not NAMESPACE_RE.match(value) or value in taken:
        raise ConfigError(file, "municipality", f"id must be a short lowercase slug (a-z, 0-9, "
                          f"'-'; e.g. \"jena\") that is not a package, source or state folder "
                          f"name ({', '.join(sorted(taken))}), got {value!r}")
    return value


SOURCE_SETTINGS = ("max_csv_bytes",)
"""[settings] that are defaults of every source's ``options`` (a source may override them)."""


def _with_settings(src: SourceConfig, settings: dict[str, Any]) -> SourceConfig:
    """The source with the [settings] defaults of its options filled in."""
    extra = {k: settings[k] for k in SOURCE_SETTINGS if k in settings and k not in src.options}
    return replace(src, options=src.options | extra) if extra else src


def _municipality(file: str, data: dict[str, Any]) -> Municipality | None:
    """The [municipality] table resolved against the region registry, or None."""
    table = data.get("municipality")
    if table is None:
        return None
    key = _need(file, "municipality", table, "key", str)
    return resolve(key, str(table.get("name", "")), file)
