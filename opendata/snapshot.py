"""Immutable raw snapshots with a manifest; sha256 is checked on every read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opendata.errors import SnapshotError

MANIFEST = "manifest.json"
TS_FORMAT = "%Y%m%dT%H%M%SZ"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_json(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


@dataclass
class FetchedFile:
    """One response body plus what is recorded about it (no credentials)."""

    name: str
    content: bytes
    url: str
    role: str = "data"
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """A stored, verified snapshot folder."""

    path: Path
    manifest: dict[str, Any]

    @property
    def source(self) -> str:
        """Source id."""
        return str(self.manifest["source"])

    @property
    def content_sha256(self) -> str:
        """The hash that decides 'unchanged'."""
        return str(self.manifest["content_sha256"])

    def file(self, role: str = "data") -> Path:
        """Path of the first file with this role."""
        for entry in self.manifest["files"]:
            if entry.get("role", "data") == role:
                return self.path / entry["name"]
        raise SnapshotError(f"snapshot {self.path} has no file with role '{role}'")

    def read(self, role: str = "data") -> bytes:
        """Bytes of the first file with this role."""
        return self.file(role).read_bytes()


def _timestamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime(TS_FORMAT)


def store(source_dir: Path, source: str, kind: str, files: list[FetchedFile],
          content_sha256: str, *, now: datetime | None = None, note: str = "") -> Snapshot:
    """Write a new snapshot folder atomically (temp dir + rename) and return it."""
    ts = _timestamp(now)
    manifest: dict[str, Any] = {
        "source": source, "kind": kind, "content_sha256": content_sha256,
        "fetched_at": datetime.strptime(ts, TS_FORMAT).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [],
    }
    if note:
        manifest["note"] = note
    source_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=source_dir))
    try:
        for f in files:
            (tmp / f.name).write_bytes(f.content)
            manifest["files"].append({
                "name": f.name, "role": f.role, "url": f.url, "params": f.params,
                "status": f.status, "headers": f.headers,
                "sha256": sha256_bytes(f.content), "bytes": len(f.content)})
        (tmp / MANIFEST).write_text(dump_json(manifest), encoding="utf-8")
        final = source_dir / ts
        n = 1
        while final.exists():
            final = source_dir / f"{ts}-{n}"
            n += 1
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(final, manifest)


def verify(path: Path) -> Snapshot:
    """Load a snapshot and check every file against its manifest sha256."""
    mf = path / MANIFEST
    if not mf.is_file():
        raise SnapshotError(f"snapshot {path} has no {MANIFEST}; delete the folder or re-fetch")
    manifest = json.loads(mf.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        fp = path / entry["name"]
        if not fp.is_file():
            raise SnapshotError(f"snapshot file {fp} is missing; re-fetch with --online")
        got = sha256_file(fp)
        if got != entry["sha256"]:
            raise SnapshotError(
                f"snapshot file {fp} is corrupt: expected sha256 {entry['sha256']}, got {got}. "
                "Raw snapshots are immutable: restore the file from version control or "
                "delete this snapshot folder and re-fetch with --online.")
    return Snapshot(path, manifest)


def candidates(source_dir: Path) -> list[Path]:
    """Snapshot folders of one source, oldest first."""
    if not source_dir.is_dir():
        return []
    return sorted((p for p in source_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=_order)


def _order(path: Path) -> tuple[str, int]:
    """Timestamp, then the number added when several snapshots share a second ("-1", "-10")."""
    ts, _, n = path.name.partition("-")
    return ts, int(n) if n.isdigit() else 0


def latest(source_dir: Path, source: str) -> Snapshot:
    """The newest snapshot of a source, verified."""
    found = candidates(source_dir)
    if not found:
        raise SnapshotError(
            f"no raw snapshot for source '{source}' in {source_dir}; "
            "run 'opendata fetch --online' with credentials, or restore data/raw from git")
    return verify(found[-1])
