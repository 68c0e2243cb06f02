"""Prefect artifacts with stable keys, so the UI shows their history run after run."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from opendata.config import Config


def _validation_md(result: Any) -> str:
    lines = ["# Validation", "", "| package | valid | errors | warnings | rows |", "|---|---|---|---|---|"]
    for r in result.reports:
        rows = ", ".join(f"{k} {v}" for k, v in sorted(r.row_counts.items()))
        lines.append(f"| {r.package} | {r.valid} | {len(r.errors)} | {len(r.warnings)} | {rows} |")
    for r in result.reports:
        lines += [f"- {i}" for i in r.warnings[:20]]
    if not result.reports:
        lines.append("All inputs unchanged: nothing was validated again.")
    skipped = [f.note for f in result.fetched if f.note]
    if skipped:
        lines += ["", "## Sources skipped (unverified table codes)", ""] + [f"- {n}" for n in skipped]
    return "\n".join(lines)


def _release_md(result: Any, cfg: Config) -> str:
    base = cfg.published_url
    lines = ["# Releases", ""]
    for o in result.outcomes:
        if o.published:
            lines.append(f"- **{o.package} {o.version}**: {o.summary} "
                         f"([release]({base}{o.package}/{o.version}/))")
        else:
            lines.append(f"- {o.package}: unchanged ({o.previous})")
    return "\n".join(lines)


def _in_context(ctx: contextvars.Context, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run inside ``ctx`` (a thread does not inherit the flow run's context)."""
    return lambda **kw: ctx.run(fn, **kw)


def publish_artifacts(result: Any, cfg: Config) -> None:
    """Validation summary, row counts, release notes and source freshness (sent at once: each
    is one request to the Prefect API)."""
    rows = [{"package": o.package, "resource": name, "rows": n,
             "version": o.version or o.previous or ""}
            for o in result.outcomes for name, n in sorted(o.row_counts.items())]
    fresh = [{"source": f.source, "snapshot": f.snapshot.name if f.snapshot else "",
              "new_content": f.changed, "mode": f.mode, "note": f.note} for f in result.fetched]
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (create_markdown_artifact, {"key": "validation-summary", "markdown": _validation_md(result),
                                    "description": "Validation errors, warnings and row counts"}),
        (create_table_artifact, {"key": "row-counts", "table": rows,
                                 "description": "Rows per resource"}),
        (create_markdown_artifact, {"key": "release-notes", "markdown": _release_md(result, cfg),
                                    "description": "What this run published"}),
        (create_table_artifact, {"key": "source-freshness", "table": fresh,
                                 "description": "Snapshot per source"}),
    ]
    create_all(calls)


def create_all(calls: list[tuple[Callable[..., Any], dict[str, Any]]]) -> None:
    """Make the calls (Prefect's artifact functions, each one API request) at once, each in a
    thread of its own in a copy of this context, so that the artifacts belong to this run."""
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="artifacts") as pool:
        # each call in a copy of this context: the artifact belongs to the current flow run
        done = [pool.submit(_in_context(contextvars.copy_context(), fn), **kw) for fn, kw in calls]
        for future in done:
            future.result()
