"""Build the embedded raw snapshots of the statistics sources from ../shared/genesis.

For every `genesis` source of the registry, this script takes the recorded `data/tablefile`
(or `data/resultfile`) response in ``../shared/genesis/<table>/`` whose request matches the
source's ``language``/``quality`` params, keeps the header and only the rows of the regions in
the source's ``params.regionalkey`` (region = the first classifying variable's attribute code),
and stores them as an immutable raw snapshot in the exact ffcsv format (UTF-8 with BOM, ``;``,
LF, recorded header, column order and row order) with the recorded ``metadata/table`` JSON.

It also stores the snapshot of the local table source ``city_figures``
(``config/city/kennzahlen.csv``), so that ``opendata run --offline`` has every input in git.

The snapshots go to the configuration's namespace of the data dir (``[municipality] id``):
``data/raw/<source>/`` for config/opendata.toml (Eisenach), ``data/raw/jena/<source>/`` for
config/jena/opendata.toml. Re-running is idempotent: a source is skipped when a snapshot with
the same content_sha256 exists. Usage::

    .venv/bin/python scripts/build_embedded.py [--shared ../shared] [--data-dir data]
                                               [--config config/jena/opendata.toml]
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import logging
import sys
import zipfile
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opendata import canonical, snapshot  # noqa: E402
from opendata.config import Config, SourceConfig, load  # noqa: E402
from opendata.paths import Paths  # noqa: E402  (type of config.paths())

log = logging.getLogger("build_embedded")
DEFAULT_SHARED = REPO.parent / "shared"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DATA_ENDPOINTS = ("data/tablefile", "data/resultfile")
SECRET_KEYS = {"username", "password", "token", "apikey"}
KEPT_HEADERS = ("Content-Type", "Content-Disposition", "Date")
PACKAGE = "integration_statistics"


def interactions(table_dir: Path) -> list[dict[str, Any]]:
    """The recorded interactions of one table, in recording order."""
    return list(json.loads((table_dir / "interactions.json").read_text(encoding="utf-8")))


def _matches(entry: dict[str, Any], source: SourceConfig) -> bool:
    form = entry.get("form", {})
    want = {"language": source.params.get("language", "de"),
            "quality": source.params.get("quality", "off")}
    return all(form.get(k, v) == v for k, v in want.items())


def pick(entries: list[dict[str, Any]], source: SourceConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first successful ZIP data response matching the source, and the matching metadata."""
    data = [e for e in entries if e["url"].endswith(DATA_ENDPOINTS) and e["status"] == 200
            and e["headers"].get("Content-Type", "").startswith("application/zip")
            and _matches(e, source)]
    meta = [e for e in entries if e["url"].endswith("metadata/table") and e["status"] == 200
            and e["form"].get("language") == source.params.get("language", "de")]
    if not data or not meta:
        raise SystemExit(f"source {source.id}: no matching recorded data/metadata response for "
                         f"table {source.table} (language/quality {source.params})")
    return data[0], meta[0]


def filter_csv(raw: bytes, keys: set[str]) -> bytes:
    """Header plus the recorded lines whose region (1_variable_attribute_code) is in ``keys``
    (a key may be a pattern as GENESIS allows, e.g. ``*`` or ``16*``; ``?`` = one character)."""
    text = raw.decode("utf-8-sig")
    if "\r" in text:
        raise SystemExit("recorded CSV has CR line endings; expected LF only")
    lines = text.split("\n")
    header = next(csv.reader([lines[0]], delimiter=";"))
    col = header.index("1_variable_attribute_code")
    patterns = [k for k in keys if any(c in k for c in "*?")]
    kept = [line for line in lines[1:]
            if line and _wanted(next(csv.reader([line], delimiter=";"))[col], keys, patterns)]
    return ("\ufeff" + "\n".join([lines[0], *kept]) + "\n").encode("utf-8")


def _wanted(key: str, keys: set[str], patterns: list[str]) -> bool:
    return key in keys or any(fnmatch.fnmatchcase(key, p) for p in patterns)


def deterministic_zip(name: str, content: bytes) -> bytes:
    """A ZIP with one member and a fixed date, so equal content gives equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, content, compresslevel=9)
    return buf.getvalue()


def _member(body: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".csv"))
        return info.filename, zf.read(info)


def _params(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(form.items()) if k.lower() not in SECRET_KEYS}


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in KEPT_HEADERS if k in headers}


def exists(source_dir: Path, content_sha256: str) -> bool:
    """True when a snapshot with this content hash is already stored."""
    for path in snapshot.candidates(source_dir):
        mf = path / snapshot.MANIFEST
        if mf.is_file() and json.loads(mf.read_text(encoding="utf-8")).get(
                "content_sha256") == content_sha256:
            return True
    return False


def genesis_files(source: SourceConfig, table_dir: Path) -> tuple[list[snapshot.FetchedFile], str,
                                                                    datetime, str]:
    """Files, content hash, recording time and provenance note of one genesis source."""
    data, meta = pick(interactions(table_dir), source)
    name, raw = _member((table_dir / data["body"]).read_bytes())
    keys = [str(k) for k in source.params.get("regionalkey", [])]
    csv_bytes = filter_csv(raw, set(keys))
    recorded = parsedate_to_datetime(data["headers"]["Date"]).astimezone(UTC)
    metadata = json.loads((table_dir / meta["body"]).read_text(encoding="utf-8"))
    files = [
        snapshot.FetchedFile("data.zip", deterministic_zip(name, csv_bytes), data["url"], "data",
                             _params(data["form"]), data["status"], _headers(data["headers"])),
        snapshot.FetchedFile("metadata.json",
                             (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode(),
                             meta["url"], "metadata", _params(meta["form"]), meta["status"],
                             _headers(meta["headers"]))]
    rows = csv_bytes.count(b"\n") - 1
    note = (f"{rows} rows of regions {','.join(keys)} filtered by scripts/build_embedded.py from the "
            f"response recorded on {recorded:%Y-%m-%d} in ../shared/genesis/{source.table} "
            f"({data['body']}, {name}); header, column order and row order as recorded; "
            "metadata.json re-serialised from the recorded metadata/table response")
    return files, canonical.canonical_csv_sha256(csv_bytes), recorded, note


def build_genesis(source: SourceConfig, shared: Path, paths: Paths) -> Path | None:
    """Store the embedded snapshot of one genesis source; None when it is already there."""
    files, sha, recorded, note = genesis_files(source, shared / "genesis" / source.table)
    target = paths.source_raw(source.id)
    if exists(target, sha):
        log.info("unchanged %s (content_sha256 %s)", source.id, sha[:12])
        return None
    snap = snapshot.store(target, source.id, "genesis", files, sha, now=recorded, note=note)
    log.info("stored %s -> %s", source.id, snap.path)
    return snap.path


def build_table(source: SourceConfig, config: Config, paths: Paths) -> Path | None:
    """Store the snapshot of a local-path table source (the file's bytes, unchanged)."""
    path = (config.path.parent / source.location).resolve()
    content = path.read_bytes()
    sha = snapshot.sha256_bytes(content)
    target = paths.source_raw(source.id)
    if exists(target, sha):
        log.info("unchanged %s (content_sha256 %s)", source.id, sha[:12])
        return None
    file = snapshot.FetchedFile("data.csv", content, f"file:{source.location}", "data", {}, 200,
                                {"Content-Type": "text/csv; charset=utf-8"})
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    note = f"copy of {shown} stored by scripts/build_embedded.py"
    snap = snapshot.store(target, source.id, "table", [file], sha, note=note)
    log.info("stored %s -> %s", source.id, snap.path)
    return snap.path


def run(shared: Path, data_dir: Path, config_file: Path | None = None) -> list[Path]:
    """Build every embedded statistics snapshot; returns the folders newly written."""
    config = load(config_file)
    paths = config.paths(data_dir)
    written = []
    for source in config.sources_for(PACKAGE):
        if not source.verified:  # no recorded response exists for an unverified table code
            continue
        if source.kind == "genesis":
            out = build_genesis(source, shared, paths)
        elif source.location and "://" not in source.location:
            out = build_table(source, config, paths)
        else:
            continue
        if out is not None:
            written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the ../shared folder")
    ap.add_argument("--data-dir", type=Path, default=REPO / "data", help="data dir holding raw/")
    ap.add_argument("--config", type=Path, default=None,
                    help="registry TOML (default config/opendata.toml); its [municipality] id "
                         "is the namespace below raw/")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.shared / "genesis").is_dir():
        ap.error(f"{args.shared}/genesis not found; pass --shared")
    written = run(args.shared, args.data_dir, args.config)
    log.info("%d snapshot(s) written", len(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
