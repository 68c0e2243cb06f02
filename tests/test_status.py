"""`opendata status`: healthy, failing (with the reason) and stale, as text and --json, exit codes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import copy_config, copy_raw, edit_city_cell, opendata

from opendata import config as config_mod
from opendata import snapshot, status
from opendata.paths import Paths


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir after one successful `opendata fetch` + `publish` (real processes)."""
    data = copy_raw(tmp_path_factory.mktemp("status") / "data")
    assert opendata("fetch", "-q", "--data-dir", str(data)).returncode == 0
    res = opendata("publish", "-q", "--data-dir", str(data))
    assert res.returncode == 0, res.stderr[-2000:]
    return data


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _set_age(data: Path, days: float, source: str | None = None) -> None:
    """Rewrite the newest snapshot's fetched_at (of one source, or all) to `days` ago."""
    when = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for src_dir in sorted((data / "raw").iterdir()):
        if source and src_dir.name != source:
            continue
        if not (snapshot.candidates(src_dir)[-1] / "manifest.json").is_file():
            continue  # another configuration's namespace (e.g. raw/jena/), not a source
        manifest = snapshot.candidates(src_dir)[-1] / "manifest.json"
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        doc["fetched_at"] = when
        manifest.write_text(snapshot.dump_json(doc), encoding="utf-8")


def test_healthy(published: Path, tmp_path: Path) -> None:
    data = _copy(published, tmp_path / "data")
    _set_age(data, 1)
    res = opendata("status", "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "integration_measures: 1.0.0 (released " in res.stdout
    assert "last successful run: " in res.stdout and res.stdout.rstrip().endswith("healthy")
    js = opendata("status", "--json", "--data-dir", str(data))
    assert js.returncode == 0
    doc = json.loads(js.stdout)
    assert doc["healthy"] is True and doc["failing"] is False and doc["stale"] is False
    assert doc["last_success"]["command"] == "publish" and doc["last_failure"] is None
    pkgs = {p["package"]: p for p in doc["packages"]}
    assert pkgs["integration_statistics"]["latest_version"] == "1.0.0"
    assert pkgs["integration_measures"]["released_at"]
    sources = {s["source"]: s for s in pkgs["integration_measures"]["sources"]}
    assert sources["measures"]["cadence"] == "quarterly" and sources["measures"]["age_days"] == 1


def test_stale_source(published: Path, tmp_path: Path) -> None:
    data = _copy(published, tmp_path / "data")
    _set_age(data, 1)
    _set_age(data, 150, "measures")  # quarterly: stale after 100 days
    res = opendata("status", "--data-dir", str(data))
    assert res.returncode == 1
    line = next(x for x in res.stdout.splitlines() if x.strip().startswith("measures "))
    assert "STALE" in line and "quarterly" in line
    assert "NOT healthy: stale sources" in res.stdout
    doc = json.loads(opendata("status", "--json", "--data-dir", str(data)).stdout)
    assert doc["stale"] is True and doc["failing"] is False and doc["healthy"] is False
    flagged = [s["source"] for p in doc["packages"] for s in p["sources"] if s["stale"]]
    assert flagged == ["measures"]


def test_irregular_source_is_never_stale(published: Path) -> None:
    cfg = config_mod.load()
    later = datetime.now(UTC) + timedelta(days=5000)
    rows = status.source_freshness(cfg, Paths(published), "integration_statistics", later)
    by_id = {r["source"]: r for r in rows}
    assert by_id["census_population"]["stale"] is False  # cadence irregular
    assert by_id["population_kreise"]["stale"] is True  # yearly, 5000 days later


def _break_measures(cfg_path: Path) -> None:
    edit_city_cell(cfg_path, "status", "vielleicht")  # not a known status: a validation error


def test_failing_then_recovered(published: Path, tmp_path: Path) -> None:
    data = _copy(published, tmp_path / "data")
    _set_age(data, 1)
    bad = copy_config(tmp_path / "config")
    _break_measures(bad)
    assert opendata("fetch", "-q", "--data-dir", str(data), "--config", str(bad)).returncode == 0
    failed = opendata("publish", "-q", "--data-dir", str(data), "--config", str(bad))
    assert failed.returncode == 1
    res = opendata("status", "--data-dir", str(data), "--config", str(bad))
    assert res.returncode == 1
    assert "last failed run: " in res.stdout and "validation failed" in res.stdout
    assert "NOT healthy: failing" in res.stdout
    doc = json.loads(opendata("status", "--json", "--data-dir", str(data), "--config", str(bad)).stdout)
    assert doc["failing"] is True and doc["last_failure"]["exit_code"] == 1
    assert "status" in doc["last_failure"]["error"]  # the reason names the field
    assert opendata("fetch", "-q", "--data-dir", str(data)).returncode == 0  # the fix arrives
    _set_age(data, 1, "measures")
    assert opendata("publish", "-q", "--data-dir", str(data)).returncode == 0
    again = opendata("status", "--data-dir", str(data))
    assert again.returncode == 0, again.stdout
    assert "last failed run: " in again.stdout  # still shown, but no longer failing
