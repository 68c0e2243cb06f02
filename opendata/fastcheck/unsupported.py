"""The one exception of the fast engine."""

from __future__ import annotations


class Unsupported(Exception):
    """The table or schema uses something the columnar engine does not decide exactly.

    The caller validates that resource with frictionless instead (same findings, its speed).
    """
