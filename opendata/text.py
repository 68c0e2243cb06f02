"""Text from any input is made safe here, in one place (city tables now, GENESIS labels later).

Rules for every text cell:

* **Control characters** other than tab, CR and LF (U+0000–U+0008, U+000B, U+000C,
  U+000E–U+001F, U+007F–U+009F, NUL included) are *rejected*: each such cell is an error
  ``control-character`` naming file, row and column, so nothing is published until the city
  fixes the cell. (Stripping them silently could turn an unreadable cell into a different
  value; the frame returned has them removed only so that later checks can run.)
* **Formula-like cells** (first character after any leading whitespace or control characters
  is ``=``, ``+``, ``-`` or ``@``, or the cell starts with tab or CR) are published with a
  leading apostrophe so that no spreadsheet runs them (OWASP CSV injection advice); each one
  is a warning ``formula-neutralised``.

``neutralise_frame`` works column by column with vectorised string operations; it builds one
``Issue`` per affected cell only. ``md_escape`` makes any input-derived string inert in
generated Markdown (release README, CHANGELOG).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from opendata.frames import codes_values, from_codes, is_compact
from opendata.model import Issue

CONTROL_CLASS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
CONTROL = re.compile(f"[{CONTROL_CLASS}]")
FORMULA = re.compile(f"^(?:[\\s{CONTROL_CLASS}]*[=+\\-@]|[\\t\\r])")
ROWS_SHOWN = 10  # rows listed for one repeated finding before "… and N more"


@dataclass(frozen=True)
class Origin:
    """Where a frame came from, for the findings: source id, resource, file, raw column names."""

    source: str
    resource: str = ""
    file: str = ""
    raw: dict[str, str] = field(default_factory=dict)  # frame column -> name the city sees


def is_formula(value: str) -> bool:
    """True when a spreadsheet could run the cell as a formula."""
    return bool(FORMULA.match(value))


def neutralise(value: str) -> str:
    """One cell: control characters removed, a leading apostrophe before a formula-like start."""
    value = CONTROL.sub("", value)
    return "'" + value if is_formula(value) else value


def control_mask(column: pd.Series) -> pd.Series:
    """Per cell: does it contain a control character other than tab, CR, LF (non-text: False)."""
    return column.str.contains(CONTROL, na=False).astype(bool)


def formula_mask(column: pd.Series) -> pd.Series:
    """Per cell: is it formula-like (non-text: False)."""
    return column.str.contains(FORMULA, na=False).astype(bool)


def neutralise_series(column: pd.Series, *, formulas: bool = True
                      ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(safe column, control-character mask, formula mask) for one column, vectorised.

    The patterns run once per distinct value (labels and codes repeat a lot), not per row.
    ``formulas=False`` (a numeric or date column): control characters only.
    """
    codes, uniques = codes_values(column)  # a compact column: its own codes, no copy
    values = uniques.astype(str)
    controls_u = control_mask(values).to_numpy()
    found_u = formula_mask(values.str.replace(CONTROL, "", regex=True)).to_numpy() if formulas \
        else controls_u & False
    nothing = pd.Series(False, index=column.index)
    if not controls_u.any() and not found_u.any():
        return column, nothing, nothing
    safe_u = values.str.replace(CONTROL, "", regex=True)
    safe_u = safe_u.where(~found_u, "'" + safe_u)
    hit = codes >= 0
    controls = pd.Series(hit & controls_u[codes.clip(0)], index=column.index)
    found = pd.Series(hit & found_u[codes.clip(0)], index=column.index)
    if is_compact(column):  # new categories, taken back by code
        return from_codes(codes, safe_u.to_numpy(dtype=object), column.index, column.name), \
            controls, found
    out = column.copy()
    changed = controls | found
    out[changed] = safe_u.to_numpy()[codes[changed.to_numpy()]]
    return out, controls, found


def _row(index: object) -> int | None:
    return int(index) if isinstance(index, int) and not isinstance(index, bool) else None


def _control_names(value: str) -> str:
    found = sorted(set(CONTROL.findall(value)))
    return ", ".join(f"U+{ord(c):04X}" for c in found)


def neutralise_frame(frame: pd.DataFrame, origin: Origin, *,
                     columns: Iterable[str] | None = None,
                     formula_columns: Iterable[str] | None = None
                     ) -> tuple[pd.DataFrame, list[Issue]]:
    """Neutralise the text cells of ``columns`` (default: all); one Issue per affected cell.

    Control characters are checked in ``columns``; formulas only in ``formula_columns``
    (default: the same), so that e.g. a negative number in a numeric column stays a number.
    Issue rows are the frame's index when it is an integer (table sources: the 1-based data row).
    """
    out = frame.copy()
    issues: list[Issue] = []
    cols = list(frame.columns) if columns is None else list(columns)
    texts = set(cols if formula_columns is None else formula_columns)
    for col in cols:
        safe, controls, formulas = neutralise_series(frame[col].astype(object),
                                                     formulas=col in texts)
        out[col] = safe
        name = origin.raw.get(str(col), str(col))
        for row, value in frame[col][controls].items():
            issues.append(Issue(
                "error", "control-character",
                f"cell contains the control character(s) {_control_names(str(value))}, which are "
                "invisible and not allowed (only tab, line breaks and printable text are). "
                "Retype the cell or remove the character, then save the file again.",
                origin.source, origin.resource, _row(row), name, origin.file))
        for row, value in safe[formulas].items():
            issues.append(Issue(
                "warning", "formula-neutralised",
                f"cell starts with {str(value)[1:2]!r} and could run as a spreadsheet formula; "
                "published with a leading apostrophe. Remove the leading character in the "
                "source if it is not meant.", origin.source, origin.resource, _row(row), name,
                origin.file))
    return out, issues


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(value: object) -> str:
    """Input-derived text for generated Markdown: no markup, no HTML, one line."""
    text = " ".join(CONTROL.sub("", str(value)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


_MD_UNESCAPE = re.compile(r"\\([\\`*_\[\]|#~])")


def md_unescape(text: str) -> str:
    """Plain text of a string made by ``md_escape`` (pages HTML-escape it again themselves)."""
    plain = _MD_UNESCAPE.sub(r"\1", text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def rows_text(rows: list[int], limit: int = ROWS_SHOWN) -> str:
    """'1, 2, 3' or '17, 18, … and 499,982 more' for a repeated finding."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = len(rows) - limit
    return shown + (f" … and {more:,} more" if more > 0 else "")


def warning_lines(issues: list[Issue], texts: dict[str, str] | None = None) -> list[str]:
    """Release-note lines: warnings grouped by source and code, their rows summarised."""
    groups: dict[tuple[str, str], list[Issue]] = {}
    for i in issues:
        if i.severity == "warning":
            groups.setdefault((i.source, i.code), []).append(i)
    lines = []
    for (source, code), found in sorted(groups.items()):
        rows = [i.row for i in found if i.row is not None]
        where = rows_text(rows)
        file = f" ({found[0].file})" if found[0].file else ""
        if where and found[0].sheet_row is not None:
            where = f"data rows {where}; spreadsheet rows {rows_text([r + 1 for r in rows])}"
        lines.append(f"{source}{file}: {code} in {len(found):,} row(s)"
                     + (f" ({where})" if where else "")
                     + f": {(texts or {}).get(code, found[0].message)}")
    return lines
