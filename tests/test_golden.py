"""Golden files pin the published CSV/JSON of the embedded data byte for byte; pandas reads them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO

from opendata import config, pipeline
from opendata.paths import Paths

GOLDEN = REPO / "tests" / "golden"
PANDAS_TYPES = {"string": str, "integer": "Int64", "number": "float64", "boolean": "boolean"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded data published in-process (no Prefect) into a temp data dir."""
    data = tmp_path_factory.mktemp("golden") / "data"
    shutil.copytree(REPO / "data" / "raw", data / "raw")
    pipeline.publish_all(config.load(), Paths(data))
    return data / "published"


def _golden_files() -> list[Path]:
    return sorted(p for p in GOLDEN.rglob("*") if p.is_file())


def test_golden_files_exist() -> None:
    names = {p.name for p in _golden_files()}
    assert {"population.csv", "derived_indicators.json", "measures.csv",
            "measure_status_history.csv"} <= names


@pytest.mark.parametrize("golden", _golden_files(), ids=lambda p: p.relative_to(GOLDEN).as_posix())
def test_published_file_matches_golden(published: Path, golden: Path) -> None:
    rel = golden.relative_to(GOLDEN)
    package, rest = rel.parts[0], Path(*rel.parts[1:])
    produced = published / package / "1.0.0" / rest
    assert produced.read_bytes() == golden.read_bytes(), (
        f"{rel} differs from the golden file; if the change is intended, run "
        "scripts/update_golden.py and review the diff")


def test_no_unpinned_data_files(published: Path) -> None:
    for pkg_dir in sorted(p for p in published.iterdir() if p.is_dir()):
        for f in sorted((pkg_dir / "1.0.0" / "data").iterdir()):
            assert (GOLDEN / pkg_dir.name / "data" / f.name).is_file(), f"{f.name} has no golden file"


def test_pandas_reads_every_csv_with_documented_dtypes(published: Path) -> None:
    for desc_path in sorted(published.glob("*/1.0.0/datapackage.json")):
        desc = json.loads(desc_path.read_text(encoding="utf-8"))
        for res in desc["resources"]:
            fields = res["schema"]["fields"]
            dtypes = {f["name"]: PANDAS_TYPES.get(f.get("type", "string"), str) for f in fields}
            df = pd.read_csv(desc_path.parent / res["path"], dtype=dtypes,
                             keep_default_na=False, na_values={n: [""] for n, t in dtypes.items()
                                                               if t is not str})
            assert list(df.columns) == [f["name"] for f in fields]
            for f in fields:
                if f.get("type") == "number":
                    assert df[f["name"]].dtype == "float64"
            if "region_key" in df.columns:
                keys = set(df["region_key"])
                assert keys <= {"DG", "16", "16056", "16063", "16063105", "160630105105"}, keys
                assert all(isinstance(k, str) for k in keys)
