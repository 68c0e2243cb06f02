"""Prefect's floor: a served flow with the `nightly` flow's Prefect shape and no work at all.

Usage: python benchmarks/floor_flow.py SOURCES [--cold]   (serves until stopped)
       SOURCES = "bare": a flow that returns at once (no tasks, no artifacts)

Same as `opendata serve` (warm starts, one deployment, the thread pool task runner with at most
4 tasks at once), but each task returns at once: SOURCES fetch tasks, one publish task and the
flow's four artifacts. bench_serve.py times its runs the same way as the served nightly runs,
so the difference between a quiet night and this floor is the project's own quiet-night work;
the floor itself is Prefect's cost of one flow run of that shape on the machine.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from flows.artifacts import create_all  # noqa: E402
from flows.warm import warm_starts  # noqa: E402

DEPLOYMENT = "floor"


@task(name="fetch", task_run_name="fetch-{source_id}", cache_policy=NO_CACHE)
def fetch_task(source_id: str) -> dict[str, Any]:
    """No fetch: the task's result has the nightly fetch result's shape."""
    return {"source": source_id, "snapshot": "", "changed": False, "mode": "", "note": "",
            "info": ""}


@task(name="validate-and-publish", cache_policy=NO_CACHE)
def publish_task(fetched: int) -> int:
    """No validation, no release."""
    return fetched


@flow(name="floor", log_prints=True)
def floor(sources: int = 2) -> int:
    """The nightly flow's tasks and artifacts, without their work."""
    futures = [fetch_task.submit(f"source-{i}") for i in range(sources)]
    fetched = [f.result() for f in futures]
    published: int = publish_task(len(fetched))
    create_all([(create_markdown_artifact, {"key": "validation-summary", "markdown": "# floor"}),
                (create_table_artifact, {"key": "row-counts", "table": fetched}),
                (create_markdown_artifact, {"key": "release-notes", "markdown": "# floor"}),
                (create_table_artifact, {"key": "source-freshness", "table": fetched})])
    return published


@flow(name="floor", log_prints=True)  # the same flow name: bench_serve waits for "floor/floor"
def bare() -> int:
    """A served flow run and nothing else."""
    return 0


def main() -> int:
    """Serve the floor flow (until stopped), warm unless --cold."""
    arg = sys.argv[1] if len(sys.argv) > 1 else "2"
    cold = "--cold" in sys.argv[2:]
    runner: Any = ThreadPoolTaskRunner(max_workers=4)  # as flows.nightly.task_runner
    with nullcontext() if cold else warm_starts():
        if arg == "bare":
            bare.serve(name=DEPLOYMENT)
        else:
            floor.with_options(task_runner=runner).serve(name=DEPLOYMENT,
                                                         parameters={"sources": int(arg)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
