"""All paths in one place; the data dir is overridable by --data-dir / OPENDATA_DATA_DIR.

One data dir can hold several configurations (municipalities). A configuration with
``[municipality] id`` owns the namespace ``<id>``: its raw snapshots live in
``raw/<id>/<source>/``, its releases in ``published/<id>/<package>/`` and its state (cache,
reports, run log) in ``state/<id>/``. Without an id (namespace "") everything sits directly
below ``raw/``, ``published/`` and ``state/``. The lock, the catalog, the landing page and the
site stamp belong to the whole data dir.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "schemas"
CONFIG_FILE = REPO_ROOT / "config" / "opendata.toml"
REGIONS_DIR = REPO_ROOT / "config" / "regions"
DEFAULT_DATA_DIR = Path("data")
DATA_DIR_ENV = "OPENDATA_DATA_DIR"
NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# folders of state/ that a namespace must not hide
RESERVED_NAMESPACES = frozenset({"downloads", "failed", "reports", "tmp"})


def default_data_dir() -> Path:
    """The data dir from the environment, else ./data."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def release_ref(namespace: str, package: str) -> str:
    """A package's folder relative to published/ (and its URL below the base URL)."""
    return f"{namespace}/{package}" if namespace else package


@dataclass(frozen=True)
class Paths:
    """Locations below one data dir, for one namespace ("" = the data dir's top level)."""

    data_dir: Path
    namespace: str = ""

    def _own(self, root: Path) -> Path:
        return root / self.namespace if self.namespace else root

    def namespaced(self, namespace: str) -> Paths:
        """The same data dir seen from another namespace."""
        return Paths(self.data_dir, namespace)

    @property
    def raw(self) -> Path:
        """Immutable raw snapshots of this namespace, one folder per source."""
        return self._own(self.data_dir / "raw")

    @property
    def published(self) -> Path:
        """The served tree of the whole data dir: catalog, landing page, every namespace."""
        return self.data_dir / "published"

    @property
    def releases(self) -> Path:
        """The releases of this namespace, one folder per package."""
        return self._own(self.published)

    @property
    def state_root(self) -> Path:
        """State of the whole data dir: the lock and the site stamp."""
        return self.data_dir / "state"

    @property
    def state(self) -> Path:
        """Run state of this namespace: reports, run log, cache (not published)."""
        return self._own(self.state_root)

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
        """The Paths whose ``package_dir`` is ``pkg_dir``: ``<data dir>/published/<package>``
        or, in a namespace, ``<data dir>/published/<namespace>/<package>``."""
        if pkg_dir.parent.name == "published":
            return cls(pkg_dir.parent.parent)
        if pkg_dir.parent.parent.name == "published":
            return cls(pkg_dir.parent.parent.parent, pkg_dir.parent.name)
        raise ValueError(f"{pkg_dir} is not a package folder below a published/ folder")

    @property
    def lock_file(self) -> Path:
        """The pipeline lock (one per data dir, whatever the namespace)."""
        return self.state_root / "pipeline.lock"

    @property
    def site_stamp(self) -> Path:
        """What the catalog and pages were last built from (one per data dir)."""
        return self.state_root / "site.json"

    def source_raw(self, source_id: str) -> Path:
        """Snapshots of one source."""
        return self.raw / source_id

    def package_dir(self, package: str) -> Path:
        """All releases of one package."""
        return self.releases / package

    def schema(self, package: str, resource: str) -> Path:
        """The Table Schema of one published resource."""
        return SCHEMAS_DIR / package / f"{resource}.schema.json"
