"""Prefect artifacts with stable keys, so the UI shows their history run after run."""

from __future__ import annotations

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


def publish_artifacts(result: Any, cfg: Config) -> None:
    """Validation summary, row counts, release notes and source freshness."""
    create_markdown_artifact(key="validation-summary", markdown=_validation_md(result),
                             description="Validation errors, warnings and row counts")
    rows = [{"package": o.package, "resource": name, "rows": n,
             "version": o.version or o.previous or ""}
            for o in result.outcomes for name, n in sorted(o.row_counts.items())]
    create_table_artifact(key="row-counts", table=rows, description="Rows per resource")
    create_markdown_artifact(key="release-notes", markdown=_release_md(result, cfg),
                             description="What this run published")
    fresh = [{"source": f.source, "snapshot": f.snapshot.name if f.snapshot else "",
              "new_content": f.changed, "mode": f.mode, "note": f.note} for f in result.fetched]
    create_table_artifact(key="source-freshness", table=fresh, description="Snapshot per source")
