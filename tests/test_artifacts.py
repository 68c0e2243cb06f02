"""The nightly flow leaves Prefect artifacts with stable keys (real Prefect, temporary database)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import copy_raw

from opendata.paths import CONFIG_FILE

KEYS = {"validation-summary", "row-counts", "release-notes", "source-freshness"}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Any], Any, Any]]:
    """Two nightly runs (publish, then unchanged) against a test harness server; their artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from flows.nightly import nightly

    data = copy_raw(tmp_path_factory.mktemp("artifacts") / "data")
    with prefect_test_harness(server_startup_timeout=180):
        first = nightly(data_dir=str(data), config_path=str(CONFIG_FILE), online=False)
        second = nightly(data_dir=str(data), config_path=str(CONFIG_FILE), online=False)
        with get_client(sync_client=True) as client:
            yield client.read_artifacts(), first, second


def test_every_run_leaves_all_artifacts(artifacts: tuple[list[Any], Any, Any]) -> None:
    found, _, _ = artifacts
    for key in KEYS:
        assert sum(1 for a in found if a.key == key) == 2, f"{key}: one per run expected"


def test_release_notes_link_the_release(artifacts: tuple[list[Any], Any, Any]) -> None:
    found, first, second = artifacts
    notes = sorted((a for a in found if a.key == "release-notes"), key=lambda a: a.created)
    assert first.outcomes and all(o.published for o in first.outcomes)
    assert "**integration_statistics 1.0.0**" in notes[0].data
    assert "integration_statistics/1.0.0/" in notes[0].data
    assert "integration_statistics: unchanged (1.0.0)" in notes[1].data
    assert not any(o.published for o in second.outcomes)


def test_validation_and_freshness_tables(artifacts: tuple[list[Any], Any, Any]) -> None:
    found, _, _ = artifacts
    summary = sorted((a for a in found if a.key == "validation-summary"), key=lambda a: a.created)
    assert "| integration_measures | True | 0 |" in summary[0].data
    assert "All inputs unchanged: nothing was validated again." in summary[1].data
    assert "## Sources skipped (unverified table codes)" in summary[0].data
    assert "- unverified table 12521-0040 of source foreigners" in summary[0].data
    fresh = next(a for a in found if a.key == "source-freshness")
    sources = {row["source"] for row in fresh.data} if isinstance(fresh.data, list) else set()
    if not sources:  # the API returns table artifacts as JSON text
        import json

        sources = {row["source"] for row in json.loads(fresh.data)}
    assert {"population_kreise", "measures"} <= sources
    rows = next(a for a in found if a.key == "row-counts")
    assert "protection_seekers" in str(rows.data)


def test_artifact_keys_are_stable(artifacts: tuple[list[Any], Any, Any]) -> None:
    found, _, _ = artifacts
    assert {a.key for a in found} == KEYS
