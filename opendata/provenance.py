"""provenance.json: where every byte of a release came from."""

from __future__ import annotations

import subprocess
from importlib import metadata
from typing import Any

from opendata import __version__
from opendata.config import Config
from opendata.model import Build
from opendata.paths import REPO_ROOT

LIBRARIES = ("pandas", "frictionless", "requests", "prefect")


def git_commit() -> str:
    """The current git commit of the code, or '' outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def library_versions() -> dict[str, str]:
    """Versions of the key libraries."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def _snapshot_entry(snap: Any, config: Config) -> dict[str, Any]:
    files = snap.manifest.get("files", [])
    data = next((f for f in files if f.get("role", "data") == "data"), files[0] if files else {})
    return {
        "source": snap.source, "snapshot": f"raw/{snap.source}/{snap.path.name}",
        "content_sha256": snap.content_sha256, "fetched_at": snap.manifest.get("fetched_at", ""),
        "url": data.get("url", ""), "params": data.get("params", {}),
        "files": [{"name": f["name"], "sha256": f["sha256"], "bytes": f["bytes"]} for f in files],
        "note": snap.manifest.get("note", ""),
        "attribution": config.source(snap.source).attribution,
    }


def build(build_: Build, config: Config, run_id: str, created: str) -> dict[str, Any]:
    """The provenance record of a release (created and flow_run_id vary by design)."""
    return {
        "package": build_.package, "created": created, "flow_run_id": run_id,
        "code": {"package": "eisenach-opendata", "version": __version__, "git_commit": git_commit()},
        "libraries": library_versions(),
        "sources": [_snapshot_entry(s, config)
                    for s in sorted(build_.snapshots, key=lambda s: s.source)],
    }
