"""Release texts for people: README.md (from the schemas) and CHANGELOG.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opendata.config import Config
from opendata.model import Build
from opendata.text import md_escape
from opendata.versioning import Changes, summary


def _field_row(f: dict[str, Any]) -> str:
    c = f.get("constraints", {})
    allowed = ", ".join(f"`{v}`" for v in c.get("enum", []))
    if "pattern" in c:
        allowed = allowed or f"pattern `{c['pattern']}`"
    if "minimum" in c:
        allowed = (allowed + " " if allowed else "") + f"≥ {c['minimum']}"
    desc = f.get("description", "").replace("\n", " ").replace("|", "\\|")
    allowed = allowed.replace("|", "\\|")
    return (f"| `{f['name']}` | {f.get('type', 'string')} | {f.get('unit', '')} | "
            f"{desc} | {allowed} |")


def _names(fields: str | list[str]) -> str:
    """Field names of a key, which a Table Schema may give as one string or a list."""
    return ", ".join(f"`{f}`" for f in ([fields] if isinstance(fields, str) else fields))


def _resource_section(res: dict[str, Any]) -> list[str]:
    schema = res["schema"]
    pk = schema.get("primaryKey", [])
    lines = [f"### `{res['name']}` – {res.get('title', '')}", "", res.get("description", ""), "",
             f"File: `{res['path']}` (and `{res['path'][:-4]}.json`). Primary key: "
             f"{', '.join(f'`{k}`' for k in pk) or '–'}.", "",
             "| field | type | unit | description | allowed values |", "|---|---|---|---|---|"]
    lines += [_field_row(f) for f in schema["fields"]]
    for fk in schema.get("foreignKeys", []):
        ref = fk["reference"]
        target = ref.get("resource") or res["name"]  # "" = the resource itself
        lines.append(f"\nForeign key: {_names(fk['fields'])} → `{target}`: {_names(ref['fields'])}")
    return lines + [""]


def _loading(name: str, version: str, desc: dict[str, Any]) -> list[str]:
    first = desc["resources"][0]
    keys = [f["name"] for f in first["schema"]["fields"] if f.get("type", "string") == "string"
            and ("key" in f["name"] or f["name"].endswith("_code") or f["name"] == "id")][:3]
    dtype = "{" + ", ".join(f'"{k}": str' for k in keys) + "}" if keys else "str"
    return ["## Loading / Laden", "", "```python",
            f'import pandas as pd; df = pd.read_csv("{first["path"]}", dtype={dtype}, '
            'keep_default_na=False, na_values=[""])',
            "```", "", "```r",
            f'df <- read.csv("{first["path"]}", colClasses = "character", encoding = "UTF-8")',
            "```", "", "```python",
            'import frictionless; pkg = frictionless.Package("datapackage.json"); '
            f'rows = pkg.get_resource("{first["name"]}").read_rows()',
            "```", ""]


def readme(desc: dict[str, Any], build: Build, config: Config, version: str) -> str:
    """The release README, generated from the descriptor, the schemas and the build meta."""
    meta = build.meta
    title = desc["title"]
    lines = [f"# {title} – Version {version}", "", f"*{desc.get('title_en', '')}*", "",
             desc.get("description", ""), "", desc.get("description_en", ""), ""]
    temporal = desc.get("temporal")
    if temporal:
        lines += ["## Zeitraum / Time coverage", "", f"{temporal['start']} – {temporal['end']}", ""]
    for key, head in (("breaks", "Brüche / Known breaks"), ("coverage", "Abdeckung / Coverage"),
                      ("missing", "Fehlt / Not covered"), ("notes", "Hinweise / Notes")):
        value = meta.get(key)
        if value:
            items = value if isinstance(value, list) else [value]
            lines += [f"## {head}", ""] + [f"- {md_escape(x)}" for x in items] + [""]
    lines += ["## Ressourcen / Resources", ""]
    for res in desc["resources"]:
        lines += _resource_section(res)
    lines += _loading(desc["name"], version, desc)
    publisher = config.catalog["publisher_name"]
    lines += ["## Zitieren / How to cite", "",
              f"{publisher}: {title}, Version {version} ({desc.get('created', '')[:10]}). "
              f"{config.release_url(build.package)}{version}/", "",
              "## Lizenz und Namensnennung / Licence and attribution", "",
              "Datenlizenz Deutschland – Namensnennung – Version 2.0 "
              "(https://www.govdata.de/dl-de/by-2-0). Required attribution:", ""]
    lines += [f"- {a}" for a in desc["licenses"][0]["attribution"]]
    return "\n".join(lines).rstrip() + "\n"


def changelog(previous: Path | None, version: str, date: str, changes: Changes,
              build: Build) -> str:
    """The new CHANGELOG entry followed by the previous release's changelog."""
    entry = [f"## {version} – {date}", "", f"- {md_escape(summary(changes))}"]
    entry += [f"- Warning: {md_escape(w)}" for w in build.meta.get("warnings", [])]
    old = ""
    if previous and (previous / "CHANGELOG.md").is_file():
        old = (previous / "CHANGELOG.md").read_text(encoding="utf-8").split("\n", 2)[-1]
    return "# Changelog\n\n" + "\n".join(entry) + "\n\n" + old.lstrip("\n")
