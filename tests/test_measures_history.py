"""Status history across several builds, each compared with the previous release's CSVs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from test_measures import FIELDS, by, frictionless_report, make_config, measure, publish_like, run_build

from opendata.model import Build


def history(build: Build) -> list[tuple[object, ...]]:
    """History rows as tuples (measure_id, sequence, change, status, status_date, first_seen)."""
    frame = next(r.frame for r in build.resources if r.name == "measure_status_history")
    return [tuple(r) for r in frame.itertuples(index=False)]


def day(n: int) -> datetime:
    """A fixed snapshot time on 2026-07-<n>."""
    return datetime(2026, 7, n, 3, 0, tzinfo=UTC)


def step(tmp_path: Path, n: int, rows: list[list[str]], previous: Path | None) -> tuple[Build, Path]:
    """Build release n from ``rows`` against ``previous`` and publish it like the publisher."""
    cfg = make_config(tmp_path / f"cfg{n}", FIELDS, rows)
    build = run_build(cfg, tmp_path / "data", previous, now=day(n))
    assert build.errors == []
    return build, publish_like(build, tmp_path / f"release{n}")


def test_history_grows_with_changes_removals_and_returns(tmp_path: Path) -> None:
    m1, m2, m3 = measure("M1"), measure("M2", status="in Umsetzung"), measure("M3", status="laufend")
    b1, r1 = step(tmp_path, 1, [m1, m2, m3], None)
    assert history(b1) == [("M1", 1, "new", "planned", "2026-06-01", "2026-07-01"),
                           ("M2", 1, "new", "in progress", "2026-06-01", "2026-07-01"),
                           ("M3", 1, "new", "ongoing", "2026-06-01", "2026-07-01")]

    # M1 changes status, M2 only gets a new review date, M3 disappears, M4 is new
    m1b = measure("M1", status="begonnen", status_datum="02.07.2026")
    m2b = measure("M2", status="in Umsetzung", status_datum="02.07.2026")
    b2, r2 = step(tmp_path, 2, [m1b, m2b, measure("M4")], r1)
    assert history(b2) == history(b1)[:1] + [
        ("M1", 2, "changed", "in progress", "2026-07-02", "2026-07-02"),
        history(b1)[1], history(b1)[2],
        ("M3", 2, "removed", "ongoing", "2026-06-01", "2026-07-02"),
        ("M4", 1, "new", "planned", "2026-06-01", "2026-07-02")]
    measures = by(b2, "measures")
    assert measures["M3"]["removed"] is True and measures["M3"]["status"] == "ongoing"
    assert [m for m, rec in measures.items() if not rec["removed"]] == ["M1", "M2", "M4"]
    assert measures["M2"]["status_date"] == "2026-07-02"  # the measure row is current
    summary = next(r.frame for r in b2.resources if r.name == "measure_summary")
    assert summary.loc[summary["dimension"] == "total", "count"].tolist() == [3]
    assert frictionless_report(b2, tmp_path / "check2").valid  # removed row keeps FK intact

    # the same input again: nothing appended, the removed measure is still there
    b3, r3 = step(tmp_path, 3, [m1b, m2b, measure("M4")], r2)
    assert history(b3) == history(b2)
    assert by(b3, "measures")["M3"]["removed"] is True
    assert (r3 / "data" / "measures.csv").read_bytes() == (r2 / "data" / "measures.csv").read_bytes()

    # M3 comes back with a new status
    b4, _ = step(tmp_path, 4, [m1b, m2b, measure("M3", status="ausgesetzt"), measure("M4")], r3)
    assert set(history(b3)) < set(history(b4))  # ... but nothing was dropped or rewritten
    assert [h for h in history(b4) if h[0] == "M3"][-1] == \
        ("M3", 3, "restored", "suspended", "2026-06-01", "2026-07-04")
    assert by(b4, "measures")["M3"]["removed"] is False


def test_previous_release_without_history_starts_it(tmp_path: Path) -> None:
    b1, r1 = step(tmp_path, 1, [measure("M1")], None)
    (r1 / "data" / "measure_status_history.csv").unlink()
    b2, _ = step(tmp_path, 2, [measure("M1")], r1)
    assert history(b2) == [("M1", 1, "new", "planned", "2026-06-01", "2026-07-02")]


def test_history_rows_in_previous_are_copied_verbatim(tmp_path: Path) -> None:
    _, r1 = step(tmp_path, 1, [measure("M1")], None)
    path = r1 / "data" / "measure_status_history.csv"
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    b2, _ = step(tmp_path, 2, [measure("M1", status="umgesetzt", ende="01.07.2026")], r1)
    new = next(r.frame for r in b2.resources if r.name == "measure_status_history")
    assert new.iloc[: len(old)].astype(str).to_dict("records") == old.to_dict("records")
    assert history(b2)[-1][:4] == ("M1", 2, "changed", "completed")
