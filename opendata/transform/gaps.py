"""What the statistics package does not cover, computed from what was configured and what arrived.

Nothing here is written about a particular municipality: for each derived indicator, the
configured regions (the municipality and its comparison regions) without a value are listed
with the reason — not requested from the tables it needs (their region selection), or no rows
in those tables — and the topic fields of the Integrationsmonitoring der Länder without any
indicator are named.
"""

from __future__ import annotations

import pandas as pd

from opendata import places
from opendata.config import Config, SourceConfig
from opendata.frames import distinct
from opendata.transform.derived import STEPS, Step

TOPIC_LABELS = {
    "demography": "demographic basics, population with and without migration history, asylum "
                  "and refuge",
    "legal_integration": "legal integration",
    "early_education_language": "child day-care and language skills",
    "education": "education",
    "labour_market": "labour market and livelihood",
    "health": "health",
    "housing": "housing",
    "crime": "crime",
    "intercultural_opening": "intercultural opening",
    "subjective": "subjective indicators",
}
"""The topic fields of the Integrationsmonitoring der Länder (codes of derived_indicators.topic)."""


def _sources(config: Config, package: str, step: Step) -> list[SourceConfig]:
    resources = set(step.needs)
    return [s for s in config.sources_for(package) if s.resource in resources]


def _span(frames: dict[str, pd.DataFrame], step: Step) -> tuple[str, str]:
    dates = sorted({d for n in step.needs if n in frames
                    for d in distinct(frames[n]["reference_date"])} - {""})
    return (dates[0], dates[-1]) if dates else ("", "")


def _region_gaps(config: Config, package: str, frames: dict[str, pd.DataFrame],
                 derived: pd.DataFrame) -> list[str]:
    town = config.municipality
    if town is None:
        return []
    registry = places.load()
    configured = [k for k in ("DG", town.land, town.kreis, *town.former, town.ags) if k]
    lines = []
    for step in STEPS:
        sources = _sources(config, package, step)
        if any(n not in frames for n in step.needs) or any(s.kind != "genesis" for s in sources):
            continue
        have = set(distinct(derived.loc[derived["indicator"] == step.indicator, "region_key"]))
        present = set().union(*(distinct(frames[n]["region_key"]) for n in step.needs))
        span = _span(frames, step)
        asked = set().union(*(set(s.params.get("regionalkey") or []) for s in sources))
        tables = ", ".join(dict.fromkeys(s.table for s in sources))
        gaps: dict[str, list[str]] = {}
        for key in configured:
            if key in have or key in present or not registry.existed(key, *span):
                continue  # a value, a row with a missing input (reported), or no such region then
            reason = (f"not requested from {tables}" if asked and key not in asked
                      else f"no rows for it in {tables}")
            gaps.setdefault(reason, []).append(f"{registry.get(key, 'name') or key} ({key})")
        lines += [f"{step.indicator}: no value for {', '.join(names)} – {reason}"
                  for reason, names in gaps.items()]
    return lines


def _topic_gaps(derived: pd.DataFrame) -> list[str]:
    missing = [label for code, label in TOPIC_LABELS.items()
               if code not in set(derived.get("topic", pd.Series(dtype=object)))]
    if not missing:
        return []
    return ["Topic fields of the Integrationsmonitoring der Länder without an indicator in this "
            f"package: {'; '.join(missing)}."]


def not_covered(config: Config, package: str, frames: dict[str, pd.DataFrame],
                derived: pd.DataFrame) -> list[str]:
    """Lines for the release README's 'Fehlt / Not covered' section."""
    return _region_gaps(config, package, frames, derived) + _topic_gaps(derived)
