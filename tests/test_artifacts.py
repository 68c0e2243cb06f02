"""The nightly flow leaves Prefect artifacts with stable keys (real Prefect, temporary database);
the benchmarks' floor flow has the same Prefect shape."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import copy_raw

from opendata import config as config_mod
from opendata.paths import CONFIG_FILE

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
Shape = tuple[Counter[str], list[str]]  # task names, artifact keys
Runs = tuple[list[Any], Any, Any, dict[str, Shape]]  # artifacts, two results, shape per flow

KEYS = {"validation-summary", "row-counts", "release-notes", "source-freshness"}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Two nightly runs (publish, then unchanged) and a floor run against a test harness server:
    the nightly runs' artifacts and results, and each flow's shape."""
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from flows.nightly import nightly

    data = copy_raw(tmp_path_factory.mktemp("artifacts") / "data")
    with prefect_test_harness(server_startup_timeout=180):
        first = nightly(data_dir=str(data), config_path=str(CONFIG_FILE), online=False)
        second = nightly(data_dir=str(data), config_path=str(CONFIG_FILE), online=False)
        with get_client(sync_client=True) as client:
            found = client.read_artifacts()
            sys.path.insert(0, str(BENCHMARKS))
            try:
                from floor_flow import floor
            finally:
                sys.path.remove(str(BENCHMARKS))
            floor(sources=len(config_mod.load(CONFIG_FILE).sources))
            yield found, first, second, _shape(client)


def _shape(client: Any) -> dict[str, Shape]:
    """Per flow name, the last run's task names (without their suffix) and artifact keys."""
    shapes = {}
    for run in sorted(client.read_flow_runs(), key=lambda r: r.created):
        flow = client.read_flow(run.flow_id).name
        tasks = Counter(t.name.rsplit("-", 1)[0] if t.name.startswith("validate") else
                        t.name.split("-", 1)[0]
                        for t in client.read_task_runs() if t.flow_run_id == run.id)
        keys = sorted(a.key for a in client.read_artifacts() if a.flow_run_id == run.id)
        shapes[flow] = (tasks, keys)
    return shapes


def test_the_floor_flow_has_the_nightly_shape(artifacts: Runs) -> None:
    """benchmarks/floor_flow.py (Prefect's cost of a run, without work) makes as many task runs
    of the same names and the same artifacts as a nightly run."""
    shapes = artifacts[3]
    nightly, floor = shapes["nightly"], shapes["floor"]
    sources = len(config_mod.load(CONFIG_FILE).sources)
    assert nightly[0] == Counter({"fetch": sources, "validate-and-publish": 1})
    assert floor == nightly and floor[1] == sorted(KEYS)


def test_every_run_leaves_all_artifacts(artifacts: Runs) -> None:
    found, *_ = artifacts
    for key in KEYS:
        assert sum(1 for a in found if a.key == key) == 2, f"{key}: one per run expected"


def test_release_notes_link_the_release(artifacts: Runs) -> None:
    found, first, second, _ = artifacts
    notes = sorted((a for a in found if a.key == "release-notes"), key=lambda a: a.created)
    assert first.outcomes and all(o.published for o in first.outcomes)
    assert "**integration_statistics 1.0.0**" in notes[0].data
    assert "integration_statistics/1.0.0/" in notes[0].data
    assert "integration_statistics: unchanged (1.0.0)" in notes[1].data
    assert not any(o.published for o in second.outcomes)


def test_validation_and_freshness_tables(artifacts: Runs) -> None:
    found, *_ = artifacts
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


def test_artifact_keys_are_stable(artifacts: Runs) -> None:
    found, *_ = artifacts
    assert {a.key for a in found} == KEYS
