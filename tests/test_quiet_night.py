"""A run where nothing changed reports the rows of the latest releases from versions.json, as
recorded when each release was made, and never reads the released data files to count them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import copy_raw

from opendata import config, pipeline, store
from opendata.errors import ConfigError
from opendata.paths import Paths


def _real_counts(rel: Path) -> dict[str, int]:
    """Rows per data CSV of a release, counted by csv.DictReader (the reference)."""
    out = {}
    for path in sorted((rel / "data").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            out[path.stem] = sum(1 for _ in csv.DictReader(fh))
    return out


def _versions(pkg_dir: Path) -> dict[str, Any]:
    return dict(json.loads((pkg_dir / "versions.json").read_text(encoding="utf-8")))


@pytest.fixture()
def published(tmp_path: Path) -> tuple[config.Config, Paths]:
    cfg, paths = config.load(), Paths(copy_raw(tmp_path / "data"))
    first = pipeline.publish_all(cfg, paths)
    assert all(o.published for o in first.outcomes)
    return cfg, paths


def test_rows_are_recorded_at_publish_and_reported_by_a_quiet_run(
        published: tuple[config.Config, Paths], tmp_path: Path) -> None:
    cfg, paths = published
    real = {p: _real_counts(paths.package_dir(p) / "1.0.0") for p in cfg.packages}
    for pkg in cfg.packages:
        entry = _versions(paths.package_dir(pkg))["versions"][0]
        assert entry["rows"] == real[pkg] and sum(real[pkg].values()) > 0
    aside = tmp_path / "aside"  # the quiet run must not need the released data files
    for pkg in cfg.packages:
        shutil.move(paths.package_dir(pkg) / "1.0.0" / "data", aside / pkg)
    try:
        again = pipeline.publish_all(cfg, paths)
    finally:
        for pkg in cfg.packages:
            shutil.move(aside / pkg, paths.package_dir(pkg) / "1.0.0" / "data")
    assert {o.summary for o in again.outcomes} == {"inputs unchanged"}
    assert {o.package: o.row_counts for o in again.outcomes} == real
    assert all(store.verify_package(paths.package_dir(p)) == [] for p in cfg.packages)


@pytest.mark.parametrize("old", ["entry without rows", "no versions.json"])
def test_a_release_indexed_without_rows_is_counted_once(
        published: tuple[config.Config, Paths], old: str) -> None:
    cfg, paths = published
    pkg_dir = paths.package_dir("integration_statistics")
    if old == "no versions.json":  # as after a crash before the release was indexed
        (pkg_dir / "versions.json").unlink()
    else:  # as written before rows were recorded
        index = _versions(pkg_dir)
        del index["versions"][0]["rows"]
        store.write_versions(pkg_dir, index)
    assert store.recorded_rows(pkg_dir) is None
    again = pipeline.publish_all(cfg, paths)
    real = _real_counts(pkg_dir / "1.0.0")
    by_pkg = {o.package: o for o in again.outcomes}
    assert by_pkg["integration_statistics"].row_counts == real
    assert store.recorded_rows(pkg_dir) == real == _versions(pkg_dir)["versions"][0]["rows"]
    assert store.verify_package(pkg_dir) == []


def test_a_config_checked_once_is_not_parsed_again(tmp_path: Path) -> None:
    """Each task of a run loads the config: the same text is checked once per process, every
    caller gets its own copy, and a changed or broken file is read and checked again."""
    shutil.copytree(config.CONFIG_FILE.parent, tmp_path, dirs_exist_ok=True)
    path = tmp_path / config.CONFIG_FILE.name  # relative paths start at the config
    first = config.load(path)
    first.catalog["base_url"] = "https://changed.example/"
    first.settings["fetch_concurrency"] = 99
    second = config.load(path)
    assert second is not first and second.catalog == config.load(config.CONFIG_FILE).catalog
    assert second.settings.get("fetch_concurrency") != 99
    assert second.sources == first.sources and second.sources is not first.sources
    path.write_text(path.read_text(encoding="utf-8").replace(
        'publisher_name = "', 'publisher_name = "Neu: ', 1), encoding="utf-8")
    assert config.load(path).catalog["publisher_name"].startswith("Neu: ")
    path.write_text(path.read_text(encoding="utf-8") + "\n[[sources]\n", encoding="utf-8")
    for _ in range(2):  # an error is never remembered as a good config
        with pytest.raises(ConfigError, match="not valid TOML"):
            config.load(path)
