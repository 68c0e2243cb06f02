"""`opendata init`: a new configuration directory for one municipality, from the region registry.

The directory holds ``opendata.toml`` (rendered from ``templates/opendata.toml.tmpl``) and the
municipality's tables under ``city/`` (header only, columns from ``templates/*_vorlage.csv``).
The standard statistics sources, [settings], [schedule] and [apis] are taken from a base
configuration (default ``config/opendata.toml``), so there is one list of standard sources; only
their ``region_levels`` make them specific, and those are resolved for the new municipality.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template
from typing import Any

from opendata import places
from opendata.config import Config
from opendata.errors import ConfigError
from opendata.municipality import Municipality, resolve
from opendata.paths import CONFIG_FILE, REGIONS_DIR, REPO_ROOT
from opendata.text import CONTROL

TEMPLATES_DIR = REPO_ROOT / "templates"
CONFIG_TEMPLATE = TEMPLATES_DIR / "opendata.toml.tmpl"
CONFIG_NAME = "opendata.toml"
MAX_NAME_CHARS = 100
KEY_HELP = ("give the 8-digit AGS of a municipality (e.g. 16055000), the 5-digit key of a "
            "kreisfreie Stadt (e.g. 16055) or its 12-digit ARS; find it by name with "
            "`grep -i 'NAME' config/regions/regions.csv` (column same_as_key of a "
            "municipality row holds its AGS)")


@dataclass(frozen=True)
class Scaffold:
    """What ``write`` wrote: the directory, its files, and the municipality."""

    directory: Path
    files: list[Path]
    municipality: Municipality
    slug: str


def slug(name: str) -> str:
    """A directory and id name: lower case ASCII letters, digits and '-' ("Bad Salzungen" → bad-salzungen)."""
    text = name.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def short_name(registry_name: str) -> str:
    """The name people use: "Weimar, Stadt" → "Weimar", "Weimarer Land, Landkreis" → "Landkreis …"."""
    base, _, kind = registry_name.partition(", ")
    if kind in ("Landkreis", "Kreis"):
        return f"{kind} {base}"
    return base if kind else registry_name


def municipality(key: str) -> Municipality:
    """The municipality of an AGS, a kreisfreie Stadt's Kreis key or an ARS; ConfigError otherwise."""
    registry = places.load()
    where = str(REGIONS_DIR / "regions.csv")
    found = registry.resolve(key.strip())
    if not found:
        raise ConfigError(where, "municipality", f"key {key[:40]!r} is not in the region "
                          f"registry; {KEY_HELP}")
    town = resolve(key.strip(), "", where) if registry.get(found, "key_type") in (
        "ags", "ars", "kreis") else None
    successor = registry.get(found, "successor_key")
    if successor:
        raise ConfigError(where, "municipality", f"key {key!r} ({registry.get(found, 'name')}) "
                          f"ended on {registry.get(found, 'valid_to')}; use its successor "
                          f"{successor}")
    if town is None or not town.ars:
        raise ConfigError(where, "municipality", f"key {key!r} is the {registry.get(found, 'level')} "
                          f"{registry.get(found, 'name')!r}, not one municipality; {KEY_HELP}")
    return town


def standard_sources(base: Config) -> list[dict[str, Any]]:
    """The base configuration's GENESIS sources, as TOML tables, without anything naming its town.

    A ``note`` that names the base municipality (its name or one of its own keys) is left out;
    any other field naming it, or a source without ``region_levels``, is a ConfigError: a
    standard source must get its regions from [municipality].
    """
    needles = _needles(base.municipality)
    out = []
    for raw in base.raw.get("sources", []):
        if raw.get("kind") != "genesis":
            continue
        entry = f"sources (id={raw.get('id')})"
        if not raw.get("region_levels") or "regionalkey" in (raw.get("params") or {}):
            raise ConfigError(str(base.path), entry, "a standard source needs 'region_levels' "
                              "and no params.regionalkey, so that `opendata init` can derive its "
                              "regions for another municipality")
        table = dict(raw)
        for name in sorted(table):
            if needles.search(json.dumps(table[name], ensure_ascii=False)):
                if name != "note":
                    raise ConfigError(str(base.path), entry, f"'{name}' names the municipality "
                                      f"{base.municipality.name if base.municipality else ''}; a "
                                      "standard source must not")
                del table[name]
        out.append(table)
    return out


def _needles(town: Municipality | None) -> re.Pattern[str]:
    """A pattern matching the base municipality's name or own keys (without one: nothing)."""
    if town is None:
        return re.compile(r"(?!x)x")
    keys = sorted({town.ags, town.ars, town.kreis, *town.former} - {""})
    words = [re.escape(short_name(town.name))] + [rf"(?<!\d){k}(?!\d)" for k in keys]
    return re.compile("|".join(words))


# --- TOML text ------------------------------------------------------------------------------


def toml_string(value: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes; DEL escaped too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """One TOML value: string, bool, number, list or inline table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def toml_key(key: str) -> str:
    """A bare key when possible, else a quoted one."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _pairs(table: dict[str, Any]) -> str:
    return "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())


def _sources_text(sources: list[dict[str, Any]], town: Municipality) -> str:
    blocks = []
    for src in sources:
        lines = ["[[sources]]"]
        for key, value in src.items():
            if key == "params":
                continue
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
            if key == "region_levels":
                keys = town.selection(value, src.get("region_key_type", "ags"))
                lines[-1] += f"      # regionalkey: {toml_value(keys)}"
        if src.get("params"):
            lines += ["[sources.params]", _pairs(src["params"])]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _apis_text(apis: dict[str, Any]) -> str:
    return "\n\n".join(f"[apis.{toml_key(k)}]\n{_pairs(v)}" for k, v in apis.items())


def _and(names: list[str], word: str) -> str:
    return ", ".join(names[:-1]) + f" {word} {names[-1]}" if len(names) > 1 else "".join(names)


def render(town: Municipality, ident: str, base: Config) -> str:
    """The text of the new ``opendata.toml`` for ``town`` (its name as shown) with id ``ident``."""
    registry = places.load()
    land = registry.get(town.land, "name")
    regions = registry.regions
    kreis_free = ((regions["parent_key"] == town.kreis) & (regions["key_type"] == "ars")).sum() == 1
    kreis = short_name(registry.get(town.kreis, "name"))
    comparison = ([] if kreis_free else [kreis]) + [land]
    text = {"name": town.name, "slug": ident, "key": town.key, "ags": town.ags, "land": town.land,
            "kreis": town.kreis, "land_name": land, "base": _shown(base.path),
            "comparison_de": _and([*comparison, "Deutschland"], "und"),
            "comparison_en": _and([*comparison, "Germany"], "and")}
    blocks = {"settings": _pairs(base.raw.get("settings", {})),
              "schedule": _pairs(base.raw.get("schedule", {})),
              "apis": _apis_text(base.raw.get("apis", {})),
              "sources": _sources_text(standard_sources(base), town)}
    escaped = {k: toml_string(v)[1:-1] for k, v in text.items()}
    template = Template(CONFIG_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(escaped | blocks)


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _header(template: Path) -> str:
    """The header line of a CSV template (semicolon, BOM) as comma-separated UTF-8."""
    with template.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh, delimiter=";"))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header)
    return buf.getvalue()


def city_tables(config_text: str) -> dict[str, str]:
    """Location → content (header only) of every local table the new configuration reads."""
    out = {}
    for src in tomllib.loads(config_text)["sources"]:
        if src["kind"] == "table" and "://" not in src["location"]:
            template = TEMPLATES_DIR / f"{Path(src['location']).stem}_vorlage.csv"
            out[src["location"]] = _header(template)
    return out


def check_name(name: str) -> str:
    """A display name from the command line, stripped; ConfigError when unusable."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or CONTROL.search(name) or "\t" in name \
            or "\n" in name or "\r" in name:
        raise ConfigError("--name", "municipality", f"the name must be one line of 1 to "
                          f"{MAX_NAME_CHARS} printable characters, got {name!r}")
    return name


def write(key: str, directory: Path | None = None, *, name: str = "", force: bool = False,
          base: Config) -> Scaffold:
    """Write the configuration directory for the municipality ``key``; return what was written."""
    town = municipality(key)
    name = check_name(name or short_name(places.load().get(town.ars, "name")))
    town = replace(town, name=name)
    ident = slug(name) or town.ags
    directory = Path(directory) if directory else CONFIG_FILE.parent / ident
    text = render(town, ident, base)
    tables = city_tables(text)
    _check_target(directory, force)
    files = [directory / CONFIG_NAME, *(directory / loc for loc in tables)]
    try:
        for path, content in zip(files, [text, *tables.values()], strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise ConfigError(str(directory), "init", f"cannot write {exc.filename} "
                          f"({exc.strerror}); choose another --dir") from None
    return Scaffold(directory, files, town, ident)


def _check_target(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(str(directory), "init", "exists and is not a directory; choose "
                          "another --dir")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ConfigError(str(directory), "init", "the directory exists and is not empty; "
                          "choose another --dir, or pass --force to replace its opendata.toml "
                          "and city tables")
    if force and (directory / "city").is_symlink():
        raise ConfigError(str(directory), "init", "city/ is a symbolic link; remove it first")


def report(done: Scaffold) -> str:
    """What was written and the next steps, for the command line."""
    town, d = done.municipality, _shown(done.directory)
    cfg = f"{d}/{CONFIG_NAME}"
    data = f"data/{done.slug}"
    lines = [f"wrote {d}/ for {town.name} (AGS {town.ags}, ARS {town.ars}; Kreis {town.kreis}, "
             f"Land {town.land}" + (f"; former keys {', '.join(town.former)}" if town.former
                                    else "") + "):"]
    lines += [f"  {_shown(p)}" for p in done.files]
    lines += ["next steps:",
              f"  1. set [catalog] publisher_name (and publisher_url, contact_url, base_url) in {cfg}",
              f"  2. fill in the tables in {d}/city/ (guide: templates/README.md)",
              "  3. with credentials in the environment (README, 'Credentials'):",
              f"     opendata fetch --online --config {cfg} --data-dir {data}",
              f"  4. opendata run --config {cfg} --data-dir {data}",
              f"  5. every night: opendata serve --config {cfg} --data-dir {data} "
              "(or a cron line, docs/operations.md)"]
    return "\n".join(lines)

