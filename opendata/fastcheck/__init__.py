"""Fast columnar Table Schema validation (pyarrow) with the findings frictionless-py reports.

``check_package(descriptor)`` checks every resource of a data package row by row: header labels,
types, required, enum, pattern, length and range constraints, unique fields, the primary key and
foreign keys (to other resources and to itself), byte count and hash. The findings are
frictionless error objects (type, message, row number with the header as row 1, field name and
number), ordered and cut at the error limit as frictionless does.

Anything the engine cannot decide exactly (another CSV dialect, ragged rows, invalid UTF-8, a key on
an exotic type…) raises ``Unsupported`` for that resource; the caller then asks frictionless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from frictionless import Package, Schema, errors, helpers
from frictionless import Resource as FResource

from opendata.fastcheck.keys import KeyColumn, Reference
from opendata.fastcheck.stream import open_csv
from opendata.fastcheck.table import LIMIT_ERRORS, Lookup, TableCheck, TableResult
from opendata.fastcheck.unsupported import Unsupported

__all__ = ["LIMIT_ERRORS", "TableResult", "Unsupported", "check_csv", "check_package",
           "check_table"]

_HASHES = ("md5", "sha256")


def _schema(schema: Schema | dict[str, Any]) -> Schema:
    return schema if isinstance(schema, Schema) else Schema.from_descriptor(dict(schema))


def check_csv(source: Path | bytes, schema: Schema | dict[str, Any], *, name: str = "",
              lookup: Lookup | None = None, limit_errors: int = LIMIT_ERRORS) -> TableResult:
    """Validate one UTF-8 CSV table (a file or its bytes) against a Table Schema."""
    stream, fh = open_csv(source)
    with fh:
        check = TableCheck(_schema(schema), stream.labels, name=name, limit_errors=limit_errors)
        for batch in stream.batches:
            check.feed(batch)
    return check.finish(lookup)


def check_table(table: pa.Table, schema: Schema | dict[str, Any], *, name: str = "",
                lookup: Lookup | None = None, limit_errors: int = LIMIT_ERRORS) -> TableResult:
    """Validate an in-memory Arrow table: column names are the labels, cells their text form."""
    check = TableCheck(_schema(schema), [str(n) for n in table.column_names], name=name,
                       limit_errors=limit_errors)
    for batch in table.to_batches(max_chunksize=1 << 17):
        cols = []
        for col in batch.columns:
            text = col if pa.types.is_string(col.type) else pc.cast(col, pa.string())
            cols.append(pc.fill_null(text, ""))
        check.feed(pa.RecordBatch.from_arrays(cols, names=[f"c{i}" for i in range(len(cols))]))
    return check.finish(lookup)


def _table_resource(resource: FResource) -> Path:
    """The local CSV file of a resource, when the engine reads it exactly as frictionless does."""
    if not isinstance(resource.path, str) or resource.data is not None:
        raise Unsupported(f"resource {resource.name} is not a local file")
    if (resource.format or "csv") != "csv" or resource.compression or resource.innerpath:
        raise Unsupported(f"resource {resource.name} is not plain CSV")
    if (resource.encoding or "utf-8").lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise Unsupported(f"resource {resource.name} is not UTF-8")
    if resource.has_defined("dialect") and resource.dialect.to_descriptor():
        raise Unsupported(f"resource {resource.name} declares a CSV dialect")
    path = Path(resource.normpath or "")
    if not path.is_file():
        raise Unsupported(f"resource {resource.name}: {path} is not a file")
    return path


def _reference(package: Package, name: str, fields: list[str]) -> Reference:
    """The parsed key values of a referenced resource, as frictionless's lookup collects them."""
    if not package.has_resource(name):
        raise Unsupported(f"foreign key to the missing resource {name!r}")
    resource = package.get_resource(name)
    path = _table_resource(resource)
    stream, fh = open_csv(path)
    fh.close()
    check = TableCheck(resource.schema, stream.labels, name=name)
    wanted = sorted({check.pos[f] for f in fields if f in check.pos})
    stream, fh = open_csv(path, columns=wanted)
    chunks: dict[int, list[pa.DictionaryArray]] = {j: [] for j in wanted}
    rows = 0
    with fh:
        for batch in stream.batches:
            rows += batch.num_rows
            for k, j in enumerate(wanted):
                chunks[j].append(pc.dictionary_encode(batch.column(k)))
    columns = [KeyColumn.build(chunks[check.pos[f]], check.checks[check.pos[f]])
               if f in check.pos else KeyColumn.absent(rows) for f in fields]
    return Reference.of(columns)


def _end_errors(resource: FResource, result: TableResult, size: int,
                digests: dict[str, str]) -> list[Any]:
    """frictionless's end-of-table checks: hash, bytes, declared field and row counts."""
    out: list[Any] = []
    note = 'expected is "%s" and actual is "%s"'
    if resource.hash:
        algorithm, expected = helpers.parse_resource_hash_v1(resource.hash)
        actual = digests.get(algorithm)
        if actual and actual != expected:
            out.append(errors.HashCountError(note=note % (expected, actual)))
    if resource.bytes and resource.bytes != size:
        out.append(errors.ByteCountError(note=note % (resource.bytes, size)))
    if resource.fields and resource.fields != len(resource.schema.fields):
        out.append(errors.FieldCountError(note=note % (resource.fields, len(resource.schema.fields))))
    if resource.rows and resource.rows != result.rows:
        out.append(errors.RowCountError(note=note % (resource.rows, result.rows)))
    return out


def check_resource(resource: FResource, lookup: Lookup | None = None,
                   limit_errors: int = LIMIT_ERRORS) -> TableResult:
    """Validate one resource of a package (its file, schema, hash and byte count)."""
    path = _table_resource(resource)
    algorithm = helpers.parse_resource_hash_v1(resource.hash)[0] if resource.hash else ""
    stream, fh = open_csv(path, hashes=(algorithm,) if algorithm in _HASHES else ())
    with fh:
        check = TableCheck(resource.schema, stream.labels, name=resource.name,
                           limit_errors=limit_errors)
        for batch in stream.batches:
            check.feed(batch)
    result = check.finish(lookup)
    if not result.partial:
        digests = {a: stream.digest(a) for a in stream.hashes}
        result.errors += _end_errors(resource, result, stream.bytes, digests)
    return result


def check_package(descriptor: Path, *, names: list[str] | None = None,
                  limit_errors: int = LIMIT_ERRORS) -> dict[str, TableResult | Unsupported]:
    """Row-level validation of the resources (all, or ``names``) of a datapackage.json.

    The descriptor itself is not checked here (frictionless does that).
    """
    package = Package(str(descriptor))
    cache: dict[tuple[str, tuple[str, ...]], Reference] = {}

    def lookup(name: str, fields: list[str]) -> Reference:
        key = (name, tuple(fields))
        if key not in cache:
            cache[key] = _reference(package, name, fields)
        return cache[key]

    results: dict[str, TableResult | Unsupported] = {}
    for resource in package.resources:
        if names is not None and resource.name not in names:
            continue
        try:
            results[resource.name] = check_resource(resource, lookup, limit_errors)
        except Unsupported as exc:
            results[resource.name] = exc
    return results
