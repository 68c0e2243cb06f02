"""Cell checks of one Table Schema field, vectorised over the distinct values of a column.

The vectorised path only decides which values are *surely valid* (plain ASCII forms whose outcome is
certain). Every other distinct value is handed to frictionless's own cell reader, which decides
exactly as frictionless does. So the engine never reports what frictionless would not, and the
Python work grows with the number of unusual distinct values, not with the number of rows.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from frictionless import Field

from opendata.fastcheck.unsupported import Unsupported

# Plain forms: the outcome of frictionless's parser is certain for these ASCII strings.
_INTEGER = r"^-?[0-9]{1,18}$"
_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
_YEAR = r"^[0-9]{4}$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_NUMBER_OPTIONS = {"group_char", "decimal_char", "bare_number"}
_MAX_FLOAT_DIGITS = 15  # decimals with at most 15 digits map to distinct, order-preserving doubles

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "any": pa.string(), "integer": pa.int64(), "year": pa.int64(),
    "number": pa.float64(), "date": pa.date32(), "boolean": pa.bool_()}
_BOUNDS = {"minimum": pc.greater_equal, "maximum": pc.less_equal,
           "exclusiveMinimum": pc.greater, "exclusiveMaximum": pc.less}


def _np(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array (nulls as False) as a numpy bool array."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _digits_ok(values: pa.Array) -> pa.Array:
    """At most 15 digits in a plain decimal string (sign and point not counted)."""
    length = pc.utf8_length(values)
    extra = pc.add(pc.cast(pc.starts_with(values, "-"), pa.int32()),
                   pc.cast(pc.match_substring(values, "."), pa.int32()))
    return pc.less_equal(pc.subtract(length, extra), _MAX_FLOAT_DIGITS)


def _digits_only(values: pa.Array, present: pa.Array, most: int, *,
                 exact: bool = False) -> pa.Array | None:
    """``present`` when every present value is 1..``most`` ASCII digits (``most`` exactly when
    ``exact``); None when some is not, and the full regular expression must decide.

    Such values match the type's plain form, so the common all-digit column skips the regex.
    """
    size = pc.binary_length(values)
    fits = pc.equal(size, most) if exact else pc.less_equal(size, most)
    digits = pc.and_(pc.ascii_is_decimal(values), fits)
    if pc.all(pc.fill_null(pc.or_(pc.invert(present), digits), False)).as_py() is False:
        return None
    return present


def _cast_plain(values: pa.Array, plain: pa.Array, to: pa.DataType) -> pa.Array:
    """``values`` cast to ``to`` where plain (other positions hold a placeholder)."""
    if pc.all(pc.fill_null(plain, False)).as_py() is not False:
        return pc.cast(values, to)
    return pc.cast(pc.if_else(plain, values, "0"), to)


def _exact_float(value: Any) -> float | None:
    """A bound or key as a float when the float comparison is exact, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    dec = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not dec.is_finite() or len(dec.as_tuple().digits) > _MAX_FLOAT_DIGITS:
        return None
    return float(dec)


class FieldCheck:
    """The type and constraint checks of one field (a frictionless Field, as the header maps it)."""

    def __init__(self, field: Field) -> None:
        self.field = field
        self.name: str = field.name
        self.type: str = field.type
        self.reader = field.create_cell_reader()
        self.value_reader = field.create_value_reader()
        missing = field.missing_values
        if not field.has_defined("missing_values") and field.schema:
            missing = field.schema.missing_values
        self.missing = pa.array([str(m) for m in missing], pa.string())
        self.constraints = {k: v for k, v in (field.constraints or {}).items()
                            if k in field.supported_constraints}
        self.required = bool(self.constraints.get("required"))
        self._pattern = self._compile_pattern()
        fmt = getattr(field, "format", "default") or "default"
        # Any text is valid: only a missing value can be an error (when required).
        self.any_text = self.type == "any" or (self.type == "string" and fmt == "default")
        self.any_text = self.any_text and set(self.constraints) <= {"required"}
        self._blank_only = [str(m) for m in missing] == [""]

    def missing_mask(self, values: pa.Array) -> np.ndarray:
        """Per value: True where it is one of the field's missing values."""
        if self._blank_only:
            return _np(pc.equal(pc.binary_length(values), 0))
        return _np(pc.is_in(values, value_set=self.missing))

    def _compile_pattern(self) -> str | None:
        pattern = self.constraints.get("pattern")
        if pattern is None:
            return None
        full = f"^{pattern}$"  # as frictionless: re.compile("^{0}$".format(pattern)).match
        try:
            pc.match_substring_regex(pa.array(["x"]), full)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # not RE2 syntax: every value goes to the exact reader
        return full

    # Type level

    def parse(self, values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Missing mask, plain mask (surely type-valid) and parsed values (valid where plain)."""
        missing = pc.is_in(values, value_set=self.missing)
        present = pc.invert(missing)
        kind, fmt = self.type, getattr(self.field, "format", "default") or "default"
        if kind in ("string", "any") and (kind == "any" or fmt == "default"):
            return missing, present, values
        if kind == "boolean":
            true = pa.array(list(getattr(self.field, "true_values", [])), pa.string())
            false = pa.array(list(getattr(self.field, "false_values", [])), pa.string())
            plain = pc.and_(present, pc.or_(pc.is_in(values, value_set=true),
                                            pc.is_in(values, value_set=false)))
            return missing, plain, pc.is_in(values, value_set=true)
        if kind == "integer" and getattr(self.field, "bare_number", False):
            plain = _digits_only(values, present, 18)
            if plain is None:
                plain = pc.and_(present, pc.match_substring_regex(values, _INTEGER))
            return missing, plain, _cast_plain(values, plain, pa.int64())
        if kind == "year":
            plain = _digits_only(values, present, 4, exact=True)
            if plain is None:
                plain = pc.and_(present, pc.match_substring_regex(values, _YEAR))
            return missing, plain, _cast_plain(values, plain, pa.int64())
        if kind == "number" and not set(self.field.list_defined()) & _NUMBER_OPTIONS:
            plain = _digits_only(values, present, _MAX_FLOAT_DIGITS)
            if plain is None:
                plain = pc.and_(pc.and_(present, pc.match_substring_regex(values, _NUMBER)),
                                _digits_ok(values))
            return missing, plain, _cast_plain(values, plain, pa.float64())
        if kind == "date" and fmt == "default":
            shaped = pc.and_(pc.and_(present, pc.match_substring_regex(values, _DATE)),
                             pc.invert(pc.starts_with(values, "0000")))
            text = pc.if_else(shaped, values, "2000-01-01")
            stamp = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
            same = pc.equal(pc.strftime(stamp, format="%Y-%m-%d"), text)
            plain = pc.fill_null(pc.and_(shaped, same), False)
            return missing, plain, pc.cast(pc.cast(stamp, pa.timestamp("s")), pa.date32())
        return missing, pa.array(np.zeros(len(values), dtype=bool)), values

    # Constraint level

    def _arrow_constant(self, value: Any) -> pa.Scalar | None:
        """A constraint value read as frictionless reads it, as an Arrow scalar (None: not exact)."""
        target = self.value_reader(value)
        if target is None:
            return None
        if self.type == "number":
            f = _exact_float(target)
            return None if f is None else pa.scalar(f, pa.float64())
        if self.type in ("integer", "year"):
            return pa.scalar(target, pa.int64()) if isinstance(target, int) \
                and not isinstance(target, bool) and abs(target) < 2**62 else None
        if self.type == "date":
            return pa.scalar(target, pa.date32()) if isinstance(target, date) else None
        if self.type in ("string", "any", "boolean"):
            return pa.scalar(target, ARROW_TYPES[self.type])
        return None

    def _constraint_ok(self, name: str, rule: Any, values: pa.Array, parsed: pa.Array) -> pa.Array:
        """Where the constraint surely holds on plain values; False where only the reader can tell."""
        none = pa.array(np.zeros(len(values), dtype=bool))
        if name == "required":
            return pa.array(np.ones(len(values), dtype=bool))  # plain values are present
        if name == "pattern":
            if self._pattern is None:
                return none
            simple = pc.and_(pc.string_is_ascii(values), pc.invert(pc.ends_with(values, "\n")))
            return pc.and_(simple, pc.match_substring_regex(values, self._pattern))
        if name in ("minLength", "maxLength") and self.type in ("string", "any"):
            length = pc.utf8_length(values)
            cmp = pc.greater_equal if name == "minLength" else pc.less_equal
            return cmp(length, int(rule)) if isinstance(rule, int) else none
        if name in _BOUNDS:
            bound = self._arrow_constant(rule)
            return none if bound is None else _BOUNDS[name](parsed, bound)
        if name == "enum" and isinstance(rule, list):
            items = [self._arrow_constant(v) for v in rule]
            if any(i is None for i in items):
                return none
            return pc.is_in(parsed, value_set=pa.array([i.as_py() for i in items if i is not None],
                                                       ARROW_TYPES[self.type]))
        return none

    def _sure_ok(self, values: pa.Array) -> tuple[np.ndarray, pa.Array]:
        """Per value: True where frictionless surely finds no error; and the missing mask."""
        missing, plain, parsed = self.parse(values)
        ok = plain
        for name, rule in self.constraints.items():
            ok = pc.and_(ok, self._constraint_ok(name, rule, values, parsed))
        if not self.required:
            ok = pc.or_(missing, ok)
        return _np(ok), missing

    def evaluate(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Per value: True where frictionless reports a type or constraint error; missing mask.

        Values not surely valid are judged by frictionless's cell reader, once per distinct value.
        """
        ok, missing = self._sure_ok(values)
        out = np.zeros(len(values), dtype=bool)
        if not ok.all():
            where = np.flatnonzero(~ok)
            suspects = values.take(pa.array(where))
            verdicts = [(v, bool(self.reader(v)[1])) for v in pc.unique(suspects).to_pylist()]
            bad = [v for v, is_bad in verdicts if is_bad]
            if bad:
                out[where] = _np(pc.is_in(suspects, value_set=pa.array(bad, pa.string())))
        return out, _np(missing)

    # Canonical values (what frictionless compares in keys)

    def canonical(self, values: pa.Array) -> pa.Array:
        """Parsed values as frictionless compares them in keys; null for missing and type errors."""
        arrow_type = ARROW_TYPES.get(self.type)
        if arrow_type is None:
            raise Unsupported(f"a key on a field of type {self.type!r} ({self.name})")
        missing, plain, parsed = self.parse(values)
        plain_np = _np(plain)
        other = np.flatnonzero(~plain_np & ~_np(missing))
        if len(other) == 0:
            return pc.if_else(plain, pc.cast(parsed, arrow_type), pa.scalar(None, arrow_type))
        out: list[Any] = pc.if_else(plain, pc.cast(parsed, arrow_type),
                                    pa.scalar(None, arrow_type)).to_pylist()
        for i in other:
            out[int(i)] = self._python_key(self.reader(values[int(i)].as_py())[0])
        return pa.array(out, arrow_type)

    def _python_key(self, target: Any) -> Any:
        """An unusual parsed value as an Arrow-comparable key, or Unsupported."""
        if target is None or self.type in ("string", "any", "boolean", "date"):
            return target
        if self.type in ("integer", "year") and isinstance(target, int) and abs(target) < 2**62:
            return target
        if self.type == "number":
            f = _exact_float(target)
            if f is not None:
                return f
        raise Unsupported(f"key value {target!r} of field {self.name} has no exact columnar form")

