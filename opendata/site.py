"""Catalog and landing pages, rebuilt from the published files after every release."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from opendata import publish, store
from opendata.config import Config
from opendata.paths import Paths, release_ref

log = logging.getLogger(__name__)
CHANGELOG_HEAD = re.compile(r"^## (\d+\.\d+\.\d+)\b.*$", re.MULTILINE)
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"  # a plain decimal number, as tables.py writes
VERSIONS = "versions.json"  # marks a package folder in published/


@dataclass
class FileInfo:
    """One published file: path relative to the package folder, size and sha256."""

    rel: str
    size: int
    sha256: str


@dataclass
class Published:
    """What the site needs to know about one package, read from its published files."""

    id: str
    meta: dict[str, Any]
    versions: list[dict[str, Any]]  # live releases from versions.json, newest first
    descriptor: dict[str, Any]
    changelog: dict[str, str]  # version -> changelog entry (markdown bullet lines)
    files: dict[str, FileInfo] = field(default_factory=dict)  # key: path in the release
    namespace: str = ""  # the configuration's [municipality] id ("" = top level)

    @property
    def ref(self) -> str:
        """The package folder relative to published/ (and its URL below the base URL)."""
        return release_ref(self.namespace, self.id)

    @property
    def latest(self) -> str:
        """The latest live version."""
        return str(self.versions[0]["version"])

    @property
    def attribution(self) -> list[str]:
        """The attribution the latest release's datapackage.json records."""
        licenses = self.descriptor.get("licenses") or [{}]
        return [str(a) for a in licenses[0].get("attribution", [])]

    @property
    def first_date(self) -> str:
        """Date of the first (oldest) live release."""
        return str(self.versions[-1]["date"])


def parse_changelog(text: str) -> dict[str, str]:
    """Split CHANGELOG.md into {version: entry body}."""
    heads = list(CHANGELOG_HEAD.finditer(text))
    out = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[m.group(1)] = text[m.end():end].strip()
    return out


def _files(rel_dir: Path, versions: list[dict[str, Any]], version: str) -> dict[str, FileInfo]:
    files = {}
    for line in (rel_dir / store.CHECKSUMS).read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            files[name] = FileInfo(name, (rel_dir / name).stat().st_size, digest)
    entry = next(e for e in versions if e["version"] == version)
    zip_name = Path(str(entry["zip"])).name
    files[zip_name] = FileInfo(zip_name, (rel_dir / zip_name).stat().st_size,
                               str(entry["zip_sha256"]))
    return files


def _meta(config: Config, namespace: str, package: str, desc: dict[str, Any]) -> dict[str, Any]:
    """Released metadata; a release made before it was recorded falls back to its config."""
    released = desc.get(publish.RELEASED_META)
    if not isinstance(released, dict):
        ours = namespace == config.namespace and package in config.packages
        released = (config.packages[package].meta | publish.released_meta(config, package)) if ours \
            else {}
    return dict(released) | {  # titles and descriptions as released
        "keywords": desc.get("keywords", released.get("keywords", [])),
        "title_de": desc.get("title", ""), "title_en": desc.get("title_en", ""),
        "description_de": desc.get("description", ""),
        "description_en": desc.get("description_en", "")}


def read_package(config: Config, pkg_dir: Path, namespace: str = "") -> Published | None:
    """Read one package's versions.json, latest descriptor, changelog and checksums."""
    index = store.read_versions(pkg_dir)
    versions = [e for e in index.get("versions", []) if not e.get("removed")]
    if not versions:
        return None
    rel_dir = pkg_dir / str(versions[0]["version"])
    desc = json.loads((rel_dir / "datapackage.json").read_text(encoding="utf-8"))
    changelog = parse_changelog((rel_dir / "CHANGELOG.md").read_text(encoding="utf-8"))
    pub = Published(pkg_dir.name, _meta(config, namespace, pkg_dir.name, desc), versions, desc,
                    changelog, namespace=namespace)
    pub.files = _files(rel_dir, versions, pub.latest)
    return pub


def _packages_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / VERSIONS).is_file())


def package_dirs(paths: Paths) -> list[tuple[str, Path]]:
    """(namespace, folder) of every package published in the data dir, top level first.

    A folder of published/ holding versions.json is a package; any other folder is a
    namespace whose packages are the folders below it that hold versions.json.
    """
    root = paths.published
    if not root.is_dir():
        return []
    top = _packages_in(root)
    found = [("", p) for p in top]
    for ns in sorted(p for p in root.iterdir() if p.is_dir() and p not in top):
        found += [(ns.name, p) for p in _packages_in(ns)]
    return found


def published_packages(config: Config, paths: Paths) -> list[Published]:
    """Every package of every namespace in the data dir with a live release, sorted."""
    out = []
    for namespace, pkg_dir in package_dirs(paths):
        found = read_package(config, pkg_dir, namespace)
        if found is not None:
            out.append(found)
    return out


def release_dir(paths: Paths, pub: Published) -> Path:
    """The folder of a published package in the data dir."""
    return paths.namespaced(pub.namespace).package_dir(pub.id)


def _csv_path(paths: Paths, pub: Published, resource: str) -> Path:
    return release_dir(paths, pub) / pub.latest / "data" / f"{resource}.csv"


def csv_blocks(path: Path, columns: Iterable[str] | None = None,
               where: dict[str, set[str]] | None = None) -> Iterator[pa.Table]:
    """A published CSV in blocks of rows (Arrow tables, every cell as text, "" for empty).

    Only the wanted columns that the file has are read (``None``: all); ``where`` keeps only
    rows whose column holds one of the given texts (a column the file lacks keeps none).
    Streamed by ``fastcheck.stream`` (bounded read-ahead): memory does not grow with the table.
    """
    from opendata.fastcheck.stream import open_csv  # with frictionless: only when reading

    stream, fh = open_csv(path)
    fh.close()
    head = stream.labels
    keep = head if columns is None else [c for c in dict.fromkeys(columns) if c in head]
    filters = dict(where or {})
    if not keep or any(c not in head for c in filters):
        return
    read = sorted({head.index(c) for c in [*keep, *filters]})
    names = [head[i] for i in read]
    stream, fh = open_csv(path, columns=read)
    with fh:
        for batch in stream.batches:
            block = pa.Table.from_batches([batch]).rename_columns(names)
            for col, allowed in filters.items():
                block = block.filter(pc.is_in(block[col], value_set=pa.array(sorted(allowed),
                                                                             pa.string())))
            if block.num_rows:
                yield block.select(keep)


def read_rows(paths: Paths, pub: Published, resource: str, columns: Iterable[str] | None = None,
              where: dict[str, set[str]] | None = None) -> list[dict[str, str]] | None:
    """Rows of one resource CSV of the latest release, or None when it is not published.

    ``columns`` and ``where`` as in ``csv_blocks``. Every kept row becomes a dict: only for
    small tables or for filters that keep what a chart draws row by row; sums over a table
    that grows with the data are ``column_sums``.
    """
    path = _csv_path(paths, pub, resource)
    if not path.is_file():
        return None
    rows: list[dict[str, str]] = []
    for block in csv_blocks(path, columns, where):
        rows += block.to_pylist()
    return rows


def _numeric(block: pa.Table, value: str) -> pa.Table:
    """The rows whose ``value`` is a plain decimal number, that column as float64."""
    block = block.filter(pc.match_substring_regex(block[value], NUMBER))
    return block.set_column(block.column_names.index(value), value,
                            pc.cast(block[value], pa.float64()))


def _sum(block: pa.Table, by: list[str], value: str) -> pa.Table:
    return block.group_by(by, use_threads=False).aggregate([(value, "sum")]) \
        .rename_columns([*by, value]).select([*by, value])


def column_sums(paths: Paths, pub: Published, resource: str, by: Iterable[str],
                where: dict[str, set[str]] | None = None, value: str = "value",
                latest: str | None = None) -> pd.DataFrame | None:
    """Sums of the numeric ``value`` cells by the ``by`` columns, read in blocks.

    Rows are kept by ``where`` (as in ``csv_blocks``) and when ``value`` is a plain number;
    with ``latest`` (a column of ``by``) only rows whose ``latest`` text is the greatest of
    the kept rows count. Each block is reduced to its partial sums (vectorised, Arrow) and
    combined with the sums so far, so memory grows with the groups, never with the rows.
    None when the resource is not published or no row is kept.
    """
    path = _csv_path(paths, pub, resource)
    by = list(by)
    if not path.is_file():
        return None
    best: str | None = None
    total: pa.Table | None = None
    for block in csv_blocks(path, [*by, value], where):
        if block.num_columns < len(by) + 1:
            return None  # the file lacks a column to group or sum by
        block = _numeric(block, value)
        if latest is not None and block.num_rows:
            top = str(pc.max(block[latest]).as_py())
            if best is not None and top < best:
                continue
            if best is None or top > best:
                best, total = top, None
            block = block.filter(pc.equal(block[latest], top))
        if block.num_rows:
            parts = [block] if total is None else [total, block]
            total = _sum(pa.concat_tables(parts), by, value)
    return None if total is None else total.to_pandas()


def temporal(pub: Published) -> tuple[str, str] | None:
    """The time span the latest release's datapackage.json records, or None."""
    span = pub.descriptor.get("temporal") or {}
    return (str(span["start"]), str(span["end"])) if span.get("start") else None


def regenerate(config: Config, paths: Paths) -> None:
    """Write catalog.ttl, catalog.jsonld, index.html and one page per published package."""
    import opendata.catalog
    import opendata.pages

    pubs = published_packages(config, paths)
    store.public_mkdir(paths.published)
    opendata.catalog.write(config, paths, pubs)
    opendata.pages.write_all(config, paths, pubs)
    log.info("catalog and pages written for %d package(s)", len(pubs))
