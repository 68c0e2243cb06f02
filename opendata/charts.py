"""Inline SVG bar charts from small extracts of the published CSVs (no JavaScript, no external
files): the rows a chart draws, or sums aggregated in blocks by ``site.column_sums``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from html import escape

import pandas as pd

Rows = list[dict[str, str]]
BAR = "#1f5f8b"  # 7.0:1 on white
TEXT = "#1a1a1a"
LEVEL_ORDER = {"municipality": 0, "district": 1, "state": 2, "country": 3}
PROTECTION_TOP_LEVEL = ("SCHUTZST-OF", "SCHUTZST-AK-1", "SCHUTZST-X")
# the columns each chart reads (site.read_rows and site.column_sums read no others)
SHARE_COLUMNS = ("indicator", "unit", "value", "region_level", "region_name", "reference_date")
PROTECTION_BY = ("reference_date", "region_name", "protection_status_label")  # sums of value by
UNITS = {"percent": "%", "per_1000": "je 1.000 / per 1,000", "count": "Anzahl / count"}
MAX_BARS = 30
"""A chart with more values shows the largest ones and says where all of them are."""


@dataclass
class Chart:
    """One chart: headings, the SVG (None when its data is missing) and a note."""

    id: str
    title_de: str
    title_en: str
    svg: str | None
    note: str


def _fmt(value: float) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", " ").replace(".", ",")


def hbar(chart_id: str, title: str, desc: str, items: list[tuple[str, float]], unit: str) -> str:
    """A horizontal bar chart as accessible inline SVG (role=img, <title>, <desc>)."""
    label_w, bar_w, row_h, top = 300, 340, 28, 10
    width, height = label_w + bar_w + 90, top + row_h * len(items) + 10
    top_value = max((v for _, v in items), default=0.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" id="{escape(chart_id)}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-labelledby="{chart_id}-t {chart_id}-d">',
             f'<title id="{chart_id}-t">{escape(title)}</title>',
             f'<desc id="{chart_id}-d">{escape(desc)}</desc>']
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = max(1.0, bar_w * value / top_value)
        parts.append(f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" fill="{TEXT}" '
                     f'font-size="13">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                     f'fill="{BAR}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" fill="{TEXT}" '
                     f'font-size="13">{escape(_fmt(value))} {escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _num(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _describe(items: list[tuple[str, float]], unit: str) -> str:
    return "; ".join(f"{label}: {_fmt(v)} {unit}" for label, v in items)


def _capped(items: list[tuple[str, float]], resource: str) -> tuple[list[tuple[str, float]], str]:
    """At most MAX_BARS items (the largest, largest first) and a note when some were left out."""
    if len(items) <= MAX_BARS:
        return items, ""
    top = sorted(items, key=lambda item: (-item[1], item[0]))[:MAX_BARS]
    n = f"{len(items):,}"
    return top, (f" Gezeigt: die {MAX_BARS} größten von {n.replace(',', '.')} Werten, alle in "
                 f"{resource}.csv. Shown: the {MAX_BARS} largest of {n} values, all of them in "
                 f"{resource}.csv.")


def share_charts(derived: Rows | None, indicators: Rows | None) -> list[Chart]:
    """One chart per percent indicator in derived_indicators: regions side by side."""
    labels = {r.get("code", ""): r for r in indicators or []}
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in derived or []:
        if row.get("unit") == "percent" and _num(row.get("value", "")) is not None:
            groups[row.get("indicator", "")].append(row)
    charts = []
    for code in sorted(groups):
        rows = sorted(groups[code], key=lambda r: (LEVEL_ORDER.get(r.get("region_level", ""), 9),
                                                   r.get("region_name", ""),
                                                   r.get("reference_date", "")))
        items, more = _capped([(f"{r.get('region_name', '')} ({r.get('reference_date', '')})",
                                float(r["value"])) for r in rows], "derived_indicators")
        label = labels.get(code, {})
        de, en = label.get("label_de") or code, label.get("label_en") or code
        svg = hbar(f"chart-{code}", f"{de} / {en}", _describe(items, "%"), items, "%")
        charts.append(Chart(f"chart-{code}", de, en, svg,
                            "Quelle: derived_indicators (Formel und Eingangswerte dort). "
                            "Source: derived_indicators (formula and inputs there)." + more))
    if not charts:
        charts.append(Chart("chart-shares", "Anteile im Vergleich", "Shares compared", None,
                            "Keine Anteilswerte veröffentlicht. No shares published."))
    return charts


def protection_chart(sums: pd.DataFrame | None) -> Chart:
    """Protection seekers by top-level status (sum over sex and citizenship), latest date.

    ``sums`` holds one row per region and status of the latest date (columns
    ``PROTECTION_BY`` and ``value``): ``site.column_sums`` of protection_seekers.
    """
    chart = Chart("chart-protection", "Schutzsuchende nach Schutzstatus",
                  "Protection seekers by protection status", None,
                  "Keine Daten zu Schutzsuchenden veröffentlicht. No protection seeker data "
                  "published.")
    if sums is None or not len(sums):
        return chart
    latest = str(sums["reference_date"].max())
    sums = sums[sums["reference_date"] == latest]
    items, more = _capped([(f"{status} ({region})", float(v)) for region, status, v in sorted(zip(
        sums["region_name"], sums["protection_status_label"], sums["value"], strict=True))],
        "protection_seekers")
    title = f"{chart.title_de}, {latest} / {chart.title_en}, {latest}"
    chart.svg = hbar(chart.id, title, _describe(items, "Personen / persons"), items, "")
    chart.note = ("Summe der Zellen über Geschlecht und Staatsangehörigkeit; die Quelle rundet "
                  "jede Zelle auf ein Vielfaches von 5, Summen sind daher ungefähr. Sum of cells "
                  "over sex and citizenship; the source rounds every cell to a multiple of 5, "
                  "so sums are approximate." + more)
    return chart


def _label(dim: str, value: str) -> str:
    """German first: 'laufend / ongoing' for status codes; other values as they are."""
    from opendata.transform.measures_normalise import STATUS_DE

    german = {**STATUS_DE, "unknown": "unbekannt", "unassigned": "nicht zugeordnet"}
    return f"{german[value]} / {value}" if dim == "status" and value in german else value


def measure_charts(rows: Rows | None) -> list[Chart]:
    """Measures by status and by field of action, from measure_summary."""
    specs = (("status", "status", "Maßnahmen nach Umsetzungsstand", "Measures by status"),
             ("field_of_action", "field_of_action", "Maßnahmen nach Handlungsfeld",
              "Measures by field of action"))
    charts = []
    for dim, col, de, en in specs:
        items = [(_label(dim, r.get(col, "")), float(r["count"])) for r in rows or []
                 if r.get("dimension") == dim and _num(r.get("count", "")) is not None]
        svg = hbar(f"chart-measures-{dim}", f"{de} / {en}", _describe(items, ""), items, "") \
            if items else None
        note = ("Quelle: measure_summary. Source: measure_summary." if items else
                "Keine Daten veröffentlicht. No data published.")
        charts.append(Chart(f"chart-measures-{dim}", de, en, svg, note))
    return charts
