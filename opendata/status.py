"""What is published, the last runs, and whether sources are stale."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opendata import runlog, snapshot, store
from opendata.config import CADENCES, Config
from opendata.errors import SnapshotError
from opendata.paths import Paths


def _parse(ts: str) -> datetime | None:
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def source_freshness(cfg: Config, paths: Paths, package: str, now: datetime) -> list[dict[str, Any]]:
    """Per source: the last data change (newest snapshot) against its cadence."""
    out = []
    for src in cfg.sources_for(package):
        try:
            snap = snapshot.latest(paths.source_raw(src.id), src.id)
            changed = snap.manifest.get("fetched_at", "")
        except SnapshotError:
            changed = ""
        limit = CADENCES.get(src.cadence, 0)
        when = _parse(changed)
        age = (now - when).days if when else None
        # an unverified table is not in service yet: it cannot be stale
        stale = src.verified and bool(limit) and (age is None or age > limit)
        out.append({"source": src.id, "cadence": src.cadence, "last_change": changed,
                    "age_days": age, "stale": stale, "verified": src.verified})
    return out


def _last(runs: list[dict[str, Any]], outcome: str) -> dict[str, Any] | None:
    found = [r for r in runs if r.get("outcome") == outcome]
    return found[-1] if found else None


def collect(cfg: Config, paths: Paths, now: datetime | None = None) -> dict[str, Any]:
    """The status of every package as one JSON-ready dict; 'healthy' is False when failing or stale."""
    now = now or datetime.now(UTC)
    runs = runlog.read(paths)
    last_ok, last_fail = _last(runs, "success"), _last(runs, "failed")
    failing = bool(last_fail and (not last_ok or last_fail["finished"] > last_ok["finished"]))
    packages: list[dict[str, Any]] = []
    for pkg in sorted(cfg.packages):
        index = store.read_versions(paths.package_dir(pkg))
        entries: list[dict[str, Any]] = list(index.get("versions") or [])
        latest = next((e for e in entries if e["version"] == index.get("latest")), None)
        packages.append({"package": pkg, "latest_version": index.get("latest"),
                         "released_at": latest["date"] if latest else None,
                         "sources": source_freshness(cfg, paths, pkg, now)})
    stale = any(s["stale"] for p in packages for s in p["sources"])
    return {"healthy": not failing and not stale, "failing": failing, "stale": stale,
            "last_success": last_ok, "last_failure": last_fail, "packages": packages}


def text(status: dict[str, Any]) -> str:
    """The status for people."""
    lines = []
    for p in status["packages"]:
        lines.append(f"{p['package']}: {p['latest_version'] or 'nothing published'}"
                     + (f" (released {p['released_at']})" if p["released_at"] else ""))
        for s in p["sources"]:
            flag = "STALE" if s["stale"] else "ok" if s["verified"] else "unverified table code"
            lines.append(f"  {s['source']:<28} {s['cadence']:<9} last change "
                         f"{s['last_change'] or '-'} {flag}")
    ok, fail = status["last_success"], status["last_failure"]
    lines.append(f"last successful run: {ok['finished'] if ok else '-'}")
    lines += [f"  warning: {w}" for w in (ok or {}).get("warnings", [])]
    if fail:
        lines.append(f"last failed run: {fail['finished']}: {fail.get('error', '')}")
    lines.append("healthy" if status["healthy"] else
                 "NOT healthy: " + ", ".join(x for x in ("failing" if status["failing"] else "",
                                                         "stale sources" if status["stale"] else "") if x))
    return "\n".join(lines)
