"""Write a release: stage everything in a private folder, validate, diff, then rename into place."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opendata import coverage, docs, provenance, store
from opendata.archive import write_zip
from opendata.config import Config, PackageConfig, SourceConfig
from opendata.model import Build
from opendata.snapshot import Snapshot, dump_json, sha256_file
from opendata.tables import load_schema, write_streams
from opendata.versioning import Changes, diff, next_version, summary

log = logging.getLogger(__name__)
KILL_ENV = "OPENDATA_TEST_KILL_AT"  # crash tests: SIGKILL this process at a named checkpoint
RELEASED_META = "catalog"  # datapackage.json property: the catalog metadata from the config


def checkpoint(name: str) -> None:
    """Crash-test hook: die by SIGKILL here when OPENDATA_TEST_KILL_AT names this point."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Staged:
    """A candidate release written to a staging folder (state/tmp, never in the served tree)."""

    package: str
    path: Path
    descriptor: Path
    pkg_dir: Path | None = None  # where the release goes (<data dir>/published/<package>); set by stage
    hashes: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """sha256 of the data files taken while they were written: path → (size, mtime_ns, hex)."""


@dataclass
class Outcome:
    """What publishing did for one package."""

    package: str
    version: str | None  # the new (or, in a dry run, the would-be) version; None = unchanged
    previous: str | None
    summary: str
    row_counts: dict[str, int]
    changes: Changes | None = None
    published: bool = False


def _source_entry(src: SourceConfig, snap: Snapshot | None, config: Config) -> dict[str, Any]:
    """A datapackage `sources` entry; GENESIS tables add their title and last update."""
    entry: dict[str, Any] = {"id": src.id, "title": src.title or src.id,
                             "path": src.location or src.table}
    if src.kind == "genesis":
        entry["path"] = config.apis[src.api].base_url
        entry["table"] = src.table
        if snap is not None:
            from opendata.sources import genesis

            entry.update(genesis.describe(snap))
    return entry


def attribution(build: Build, config: Config) -> list[str]:
    """Who must be named: every source with rows in the build, and only those.

    A city table names the publications in its ``source`` column; any other source gives its
    configured attribution.
    """
    out: list[str] = []
    for src in config.sources_for(build.package):
        frames = [r.frame for r in build.resources if r.name == src.resource and len(r.frame)]
        for frame in frames:
            if src.kind == "table" and "source" in frame.columns:
                out += sorted(set(frame["source"].astype(str)) - {""})
            else:
                out.append(src.attribution)
    return list(dict.fromkeys(a for a in out if a))


def _texts(build: Build, pkg: PackageConfig) -> dict[str, str]:
    """Title and description: the configured text plus what the data contains."""
    m, meta = pkg.meta, build.meta
    out = {}
    for lang, title_key, desc_key in (("de", "title", "description"),
                                      ("en", "title_en", "description_en")):
        title = str(m.get(f"title_{lang}", pkg.id if lang == "de" else ""))
        suffix = meta.get("title_suffix", {}).get(lang)
        out[title_key] = f"{title} ({suffix})" if suffix and title else title
        desc = str(m.get(f"description_{lang}", ""))
        summary = meta.get("summary", {}).get(lang)
        out[desc_key] = f"{desc} {summary}".strip() if summary else desc
    return out


def released_meta(config: Config, package: str) -> dict[str, Any]:
    """What the catalog takes from the config, recorded in datapackage.json (``RELEASED_META``).

    With it the catalog and the landing page can be rebuilt from the published files alone,
    for every configuration that publishes into the data dir.
    """
    cat, town = config.catalog, config.municipality
    meta = {k: config.packages[package].meta.get(k) for k in
            ("themes", "accrual_periodicity", "license_url")}
    meta |= {k: cat.get(k) for k in ("publisher_name", "publisher_url", "contact_url",
                                     "political_geocoding", "political_geocoding_level")}
    meta |= {"builder": config.packages[package].builder,
             "municipality": {"key": town.key, "name": town.name} if town else None}
    return {k: v for k, v in sorted(meta.items()) if v not in (None, "", [])}


def _descriptor(build: Build, pkg: PackageConfig, config: Config, version: str,
                created: str, stage: Path,
                known: dict[str, tuple[int, int, str]] | None = None) -> dict[str, Any]:
    m = pkg.meta
    snaps = {s.source: s for s in build.snapshots}
    sources = [_source_entry(s, snaps.get(s.id), config) for s in config.sources_for(pkg.id)]
    resources = []
    for res in build.resources:
        csv = stage / "data" / f"{res.name}.csv"
        resources.append({
            "name": res.name, "type": "table", "path": f"data/{res.name}.csv", "format": "csv",
            "mediatype": "text/csv", "encoding": "utf-8",
            "title": res.title or schema_meta(res.schema_path).get("title", res.name),
            "description": res.description or schema_meta(res.schema_path).get("description", ""),
            "sources": [{"title": s} for s in res.sources],
            "hash": f"sha256:{_file_sha256(csv, known or {})}", "bytes": csv.stat().st_size,
            "schema": load_schema(res.schema_path)})
    span = coverage.temporal(r.frame for r in build.resources)
    desc = {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": pkg.id.replace("_", "-"), "id": pkg.id, "version": version,
        **_texts(build, pkg),
        "keywords": m.get("keywords", []), "created": created,
        "temporal": {"start": span[0], "end": span[1]} if span else None,
        "licenses": [{"name": m.get("license", "dl-de/by-2-0"),
                      "path": "https://www.govdata.de/dl-de/by-2-0",
                      "title": "Datenlizenz Deutschland – Namensnennung – Version 2.0",
                      "attribution": attribution(build, config)}],
        "contributors": [{"title": config.catalog["publisher_name"],
                          "roles": ["publisher"]}],
        RELEASED_META: released_meta(config, pkg.id), "sources": sources, "resources": resources}
    return {k: v for k, v in desc.items() if v is not None}


def schema_meta(path: Path) -> dict[str, Any]:
    """Title and description stored in a Table Schema file (custom properties)."""
    schema = load_schema(path)
    return {k: schema[k] for k in ("title", "description") if k in schema}


def stage(build: Build, pkg: PackageConfig, config: Config, pkg_dir: Path) -> Staged:
    """Write data, schemas and a candidate datapackage.json to a private staging folder."""
    store.public_mkdir(pkg_dir)
    path = store.staging_dir(pkg_dir)
    (path / "data").mkdir()
    (path / "schemas").mkdir()
    hashes: dict[str, tuple[int, int, str]] = {}
    for res in build.resources:
        schema = load_schema(res.schema_path)
        _write_data(res.frame, schema, path / "data" / res.name, hashes)
        (path / "schemas" / f"{res.name}.schema.json").write_text(dump_json(schema), "utf-8")
        checkpoint("stage-partial")
    desc = _descriptor(build, pkg, config, "0.0.0", "", path, hashes)
    (path / "datapackage.json").write_text(dump_json(desc), encoding="utf-8")
    return Staged(pkg.id, path, path / "datapackage.json", pkg_dir, hashes)


class _Hashing:
    """A binary file that hashes what is written to it (checksums without reading it back)."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.sha = fh, hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        return int(self.fh.write(data))


def _write_data(frame: Any, schema: dict[str, Any], stem: Path,
                hashes: dict[str, tuple[int, int, str]]) -> None:
    """Write <stem>.csv and <stem>.json of a resource, recording their sha256."""
    files = [stem.parent / f"{stem.name}{suffix}" for suffix in (".csv", ".json")]
    with ExitStack() as stack:
        outs = [_Hashing(stack.enter_context(f.open("wb"))) for f in files]
        write_streams(frame, schema, outs[0], outs[1])  # type: ignore[arg-type]
    for f, out in zip(files, outs, strict=True):
        st = f.stat()
        hashes[str(f)] = (st.st_size, st.st_mtime_ns, out.sha.hexdigest())


def _file_sha256(path: Path, known: dict[str, tuple[int, int, str]]) -> str:
    """A file's sha256: the one taken while writing it if the file is unchanged since."""
    st = path.stat()
    size, mtime, sha = known.get(str(path), (-1, -1, ""))
    return sha if (size, mtime) == (st.st_size, st.st_mtime_ns) else sha256_file(path)


def _checksums(rel: Path, known: dict[str, tuple[int, int, str]] | None = None) -> None:
    lines = [f"{_file_sha256(p, known or {})}  {p.relative_to(rel).as_posix()}"
             for p in sorted(rel.rglob("*")) if p.is_file()]
    (rel / store.CHECKSUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def finalize(staged: Staged, build: Build, pkg: PackageConfig, config: Config,
             changes: Changes, version: str, run_id: str, now: datetime | None = None) -> Path:
    """Write the version-dependent files and move the release into place atomically."""
    pkg_dir = staged.pkg_dir
    if pkg_dir is None:
        raise ValueError(f"{staged.path} was not staged by publish.stage: no package folder")
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    desc = _descriptor(build, pkg, config, version, created, staged.path, staged.hashes)
    (staged.path / "datapackage.json").write_text(dump_json(desc), encoding="utf-8")
    ch = changes.as_dict() | {"version": version, "summary": summary(changes)}
    (staged.path / "changes.json").write_text(dump_json(ch), encoding="utf-8")
    checkpoint("finalize-partial")
    prov = provenance.build(build, config, run_id, created)
    (staged.path / "provenance.json").write_text(dump_json(prov), encoding="utf-8")
    prev = store.latest_dir(pkg_dir)
    (staged.path / "CHANGELOG.md").write_text(
        docs.changelog(prev, version, created[:10], changes, build), encoding="utf-8")
    (staged.path / "README.md").write_text(docs.readme(desc, build, config, version),
                                           encoding="utf-8")
    _checksums(staged.path, staged.hashes)
    name = f"{pkg_dir.name}-{version}"
    write_zip(staged.path, staged.path / f"{name}.zip", name)
    store.make_public(staged.path)
    checkpoint("before-rename")
    final = pkg_dir / version
    os.rename(staged.path, final)  # the complete release becomes visible in one step
    return final


def decide(staged: Staged, pkg_dir: Path) -> tuple[Changes, str | None, str | None]:
    """Diff the staged candidate with the latest release: (changes, previous, next version)."""
    prev_dir = store.latest_dir(pkg_dir)
    previous = prev_dir.name if prev_dir else None
    changes = diff(prev_dir, staged.path)
    version = next_version(previous, changes.bump) if changes.bump else None
    return changes, previous, version


def index_release(pkg_dir: Path, version: str, rows: dict[str, int] | None = None) -> None:
    """Add a finished release (and its ``rows`` per resource) to versions.json and point
    `latest` at it."""
    index = store.read_versions(pkg_dir)
    index["versions"] = [e for e in index["versions"] if e["version"] != version]
    index["versions"].append(store.entry_for(pkg_dir, version, rows))
    checkpoint("before-index")
    store.write_versions(pkg_dir, index)
    checkpoint("before-latest")
    store.set_latest(pkg_dir, index["latest"])


def discard(staged: Staged) -> None:
    """Remove a staging folder (dry run, invalid or unchanged candidate)."""
    shutil.rmtree(staged.path, ignore_errors=True)


def built_rows(build: Build) -> dict[str, int]:
    """Rows per resource of a build: the records its staged CSVs hold (one per row)."""
    return {r.name: len(r.frame) for r in sorted(build.resources, key=lambda r: r.name)}
