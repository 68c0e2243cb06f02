"""Status history and removed measures, derived by comparing with the previous release.

History is append-only: earlier rows of ``data/measure_status_history.csv`` are copied
unchanged and new rows get the next ``sequence`` per measure. A row is appended when a
measure first appears (``new``), its status differs from its last history row (``changed``),
it disappears from the source (``removed``) or comes back (``restored``). A measure that
disappears keeps its last published row in ``measures`` with ``removed = true``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["measure_id", "sequence", "change", "status", "status_date", "first_seen"]
TRUE_WORDS = {"true", "1", "yes"}


def read_previous(previous: Path | None, resource: str) -> pd.DataFrame | None:
    """A resource CSV of the previous release as strings, or None when there is none."""
    if previous is None:
        return None
    path = previous / "data" / f"{resource}.csv"
    if not path.is_file():
        log.info("previous release has no %s", path)
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8").astype(object)


def carry_removed(current: pd.DataFrame, prev: pd.DataFrame | None) -> pd.DataFrame:
    """Current rows with removed=False plus previous rows missing now, with removed=True."""
    out = current.reset_index(drop=True).copy()
    out["removed"] = False
    if prev is None or prev.empty:
        return out
    gone = prev[~prev["id"].isin(set(out["id"]))].copy()
    if gone.empty:
        return out
    for col in out.columns:
        if col not in gone.columns:
            gone[col] = ""
    gone = gone[list(out.columns)]
    gone["removed"] = True
    return pd.concat([out, gone], ignore_index=True)


def is_true(value: object) -> bool:
    """A CSV boolean cell as bool."""
    return value is True or str(value).strip().lower() in TRUE_WORDS


def _last_rows(history: pd.DataFrame) -> dict[str, dict[str, object]]:
    last: dict[str, dict[str, object]] = {}
    for rec in history.to_dict("records"):
        mid = str(rec["measure_id"])
        if mid not in last or int(str(rec["sequence"])) > int(str(last[mid]["sequence"])):
            last[mid] = rec
    return last


def _change(rec: dict[str, object], last: dict[str, object] | None) -> str:
    if is_true(rec["removed"]):
        return "" if last is not None and last["change"] == "removed" else "removed"
    if last is None:
        return "new"
    if last["change"] == "removed":
        return "restored"
    return "changed" if last["status"] != rec["status"] else ""


def empty_history() -> pd.DataFrame:
    """A history frame without rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})


def extend_history(measures: pd.DataFrame, prev: pd.DataFrame | None,
                   first_seen: str) -> pd.DataFrame:
    """Previous history plus one row per new, changed, removed or restored measure."""
    history = empty_history() if prev is None else prev[HISTORY_COLUMNS].copy()
    last = _last_rows(history)
    rows = []
    for rec in measures.sort_values("id").to_dict("records"):
        before = last.get(str(rec["id"]))
        change = _change(rec, before)
        if change:
            seq = int(str(before["sequence"])) + 1 if before else 1
            rows.append({"measure_id": rec["id"], "sequence": seq, "change": change,
                         "status": rec["status"], "status_date": rec["status_date"],
                         "first_seen": first_seen})
    parts = [f for f in (history, pd.DataFrame(rows, columns=HISTORY_COLUMNS)) if not f.empty]
    out = pd.concat(parts, ignore_index=True) if parts else empty_history()
    out["sequence"] = out["sequence"].astype(int)
    return out.sort_values(["measure_id", "sequence"], kind="mergesort").reset_index(drop=True)
