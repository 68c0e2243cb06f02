"""All paths in one place; the data dir is overridable by --data-dir / OPENDATA_DATA_DIR."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "schemas"
CONFIG_FILE = REPO_ROOT / "config" / "opendata.toml"
REGIONS_DIR = REPO_ROOT / "config" / "regions"
DEFAULT_DATA_DIR = Path("data")
DATA_DIR_ENV = "OPENDATA_DATA_DIR"


def default_data_dir() -> Path:
    """The data dir from the environment, else ./data."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


@dataclass(frozen=True)
class Paths:
    """Locations below one data dir."""

    data_dir: Path

    @property
    def raw(self) -> Path:
        """Immutable raw snapshots, one folder per source."""
        return self.data_dir / "raw"

    @property
    def published(self) -> Path:
        """Published releases, one folder per package."""
        return self.data_dir / "published"

    @property
    def state(self) -> Path:
        """Run state: reports, run log, lock, cache (not published)."""
        return self.data_dir / "state"

    @property
    def reports(self) -> Path:
        """JSON validation reports, one per run."""
        return self.state / "reports"

    @property
    def tmp(self) -> Path:
        """Private temporary files and staging folders: never in the served tree, but on the
        same file system as published/, so that moving a finished file in is one atomic rename."""
        return self.state / "tmp"

    @classmethod
    def of_package(cls, pkg_dir: Path) -> Paths:
        """The Paths whose ``package_dir`` is ``pkg_dir`` (``<data dir>/published/<package>``)."""
        if pkg_dir.parent.name != "published":
            raise ValueError(f"{pkg_dir} is not a package folder below a published/ folder")
        return cls(pkg_dir.parent.parent)

    @property
    def lock_file(self) -> Path:
        """The pipeline lock."""
        return self.state / "pipeline.lock"

    def source_raw(self, source_id: str) -> Path:
        """Snapshots of one source."""
        return self.raw / source_id

    def package_dir(self, package: str) -> Path:
        """All releases of one package."""
        return self.published / package

    def schema(self, package: str, resource: str) -> Path:
        """The Table Schema of one published resource."""
        return SCHEMAS_DIR / package / f"{resource}.schema.json"
