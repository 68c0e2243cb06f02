"""Regenerate tests/golden/: the published data files for the embedded data (run on purpose only)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opendata import config, pipeline  # noqa: E402

GOLDEN = REPO / "tests" / "golden"


def main() -> None:
    """Publish the embedded data into a temp dir and copy data/ and schemas/ of each release."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(REPO / "data" / "raw", data / "raw")
        cfg = config.load()
        pipeline.publish_all(cfg, cfg.paths(data))
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for pkg in sorted(cfg.packages):
            rel = data / "published" / pkg / "1.0.0"
            for sub in ("data", "schemas"):
                shutil.copytree(rel / sub, GOLDEN / pkg / sub)
    print(f"golden files written to {GOLDEN}")


if __name__ == "__main__":
    main()
