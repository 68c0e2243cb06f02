"""What an independent audit of release 1.0.0 found (issue 12): each published byte is true.

One publish of the embedded data, under a strict umask, and the checks of what it says about
itself: servable permissions, foreign keys, attribution, coverage, temporal extent, dropped rows.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from helpers import copy_raw

from opendata import config, pipeline
from opendata.paths import Paths

STAT = "integration_statistics"
MEAS = "integration_measures"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data published in-process while the umask forbids group and world access."""
    root = copy_raw(tmp_path_factory.mktemp("audit") / "data")
    old = os.umask(0o077)
    try:
        pipeline.publish_all(config.load(), Paths(root))
    finally:
        os.umask(old)
    return root


def _release(data: Path, package: str) -> Path:
    return data / "published" / package / "1.0.0"


def _csv(data: Path, package: str, resource: str) -> pd.DataFrame:
    return pd.read_csv(_release(data, package) / "data" / f"{resource}.csv", dtype=str,
                       keep_default_na=False)


def _desc(data: Path, package: str) -> dict:
    return json.loads((_release(data, package) / "datapackage.json").read_text(encoding="utf-8"))


def test_published_tree_is_world_readable_whatever_the_umask(data: Path) -> None:
    published = data / "published"
    seen = 0
    for path in [published, *published.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        want = 0o755 if path.is_dir() else 0o644
        assert mode == want, f"{path.relative_to(data)} has mode {oct(mode)}, want {oct(want)}"
        seen += 1
    assert seen > 40
    assert (published / STAT / "1.0.0" / "data" / "population.csv").is_file()


def test_readme_names_foreign_key_fields_whole(data: Path) -> None:
    text = (_release(data, STAT) / "README.md").read_text(encoding="utf-8")
    assert "r, e, g" not in text and "`k, e, y`" not in text
    assert "Foreign key: `region_key` → `regions`: `key`" in text
    assert "Foreign key: `indicator` → `indicators`: `code`" in text
    # a self-reference (reference.resource = "") names the resource itself
    assert "Foreign key: `successor_key` → `regions`: `key`" in text
