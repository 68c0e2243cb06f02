"""Neutralise text cells of statistics answers so that no spreadsheet runs them as formulas.

The rule is the one for city tables (OWASP CSV injection advice): control characters other than
tab, CR and LF are removed, and a cell whose first character (after whitespace or control
characters) is ``=``, ``+``, ``-`` or ``@``, or that starts with tab or CR, gets a leading
apostrophe. Vectorised: one pass of string operations per column.
"""

from __future__ import annotations

import re

import pandas as pd

CONTROL_CLASS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
CONTROL = re.compile(f"[{CONTROL_CLASS}]")
FORMULA = re.compile(f"^(?:[\\s{CONTROL_CLASS}]*[=+\\-@]|[\\t\\r])")


def neutralise_series(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(safe column, per-cell 'changed' mask); non-text cells and columns are left as they are."""
    unchanged = pd.Series(False, index=s.index, dtype=bool)
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return s, unchanged
    controls = s.str.contains(CONTROL, na=False).astype(bool)
    out = s.copy()
    if controls.any():
        out[controls] = s[controls].str.replace(CONTROL, "", regex=True)
    formulas = out.str.contains(FORMULA, na=False).astype(bool)
    if formulas.any():
        out[formulas] = "'" + out[formulas]
    return out, controls | formulas
