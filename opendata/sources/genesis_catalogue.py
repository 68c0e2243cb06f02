"""Check configured GENESIS table codes against the live catalogue, and search the catalogue.

``check`` asks ``metadata/table`` for one source's table: does the service know the code, what
is its title and last update, which variables does it have, and do they fit the source's schema.
``find`` lists ``catalogue/tables`` for a selection such as ``12511*``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from opendata import secrets
from opendata.config import Config, SourceConfig
from opendata.errors import FetchError, TerminalFetchError
from opendata.http import RetryPolicy
from opendata.sources.genesis import Context, auth_headers, base_url, fault_detail, iso_updated, json_status
from opendata.tables import field_names, load_schema
from opendata.transform.regions import REGION_VARIABLES
from opendata.transform.tidy import DIMENSIONS


@dataclass
class TableCheck:
    """What the catalogue says about one configured table."""

    source: str
    api: str
    table: str
    verified: bool
    ok: bool
    message: str = ""
    title: str = ""
    updated: str = ""
    variables: list[str] = field(default_factory=list)  # classifying variables
    values: list[str] = field(default_factory=list)  # value variables
    schema_problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form with a fixed key order."""
        return {"source": self.source, "api": self.api, "table": self.table,
                "verified": self.verified, "ok": self.ok, "message": self.message,
                "title": self.title, "updated": self.updated, "variables": self.variables,
                "values": self.values, "schema_problems": self.schema_problems}


def _ctx(source: SourceConfig, config: Config, policy: RetryPolicy,
         sess: requests.Session | None, sleep: Callable[[float], None]) -> Context:
    return Context(source, config, policy, sess, sleep, base_url(source, config),
                auth_headers(source, config))


TIME_VARIABLES = frozenset({"STAG", "JAHR", "MONAT"})
"""Time variables seen in the recorded metadata and error messages; not classifying variables."""


def _merkmale(node: Any, variables: list[str], values: list[str], under_region: bool = False) -> None:
    """Sort the variables ('Merkmal') of a metadata structure into classifying and value ones.

    GENESIS lists value variables in Head; the Zensus database has none there and nests them
    under the regional variable in Rows, so there a variable below a regional one is a value.
    """
    if isinstance(node, list):
        for item in node:
            _merkmale(item, variables, values, under_region)
        return
    if not isinstance(node, dict):
        return
    code = str(node.get("Code") or "")
    if node.get("Type") == "Merkmal" and code and code not in TIME_VARIABLES:
        target = values if under_region else variables
        if code not in target:
            target.append(code)
    below = under_region or code in REGION_VARIABLES
    for key in ("Structure", "Columns", "Rows"):
        _merkmale(node.get(key), variables, values, below)


def _structure(obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    struct = obj.get("Structure") or {}
    variables: list[str] = []
    values: list[str] = []
    _merkmale((struct.get("Head") or {}).get("Structure"), values, values)
    if values:  # GENESIS layout: everything in Rows and Columns classifies
        _merkmale([struct.get("Rows"), struct.get("Columns")], variables, variables)
    else:
        _merkmale([struct.get("Rows"), struct.get("Columns")], variables, values)
    return variables, values


def schema_fit(source: SourceConfig, variables: list[str]) -> list[str]:
    """Problems between a table's classifying variables and the source's schema ([] = fits)."""
    from opendata.transform.statistics import schema_path

    fields = field_names(load_schema(schema_path(source.package, source.resource)))
    problems = []
    dims = [v for v in variables if v not in REGION_VARIABLES]
    if not any(v in REGION_VARIABLES for v in variables):
        problems.append(f"no known regional variable among {variables}")
    for var in dims:
        dim = DIMENSIONS.get(var)
        if dim is None:
            problems.append(f"variable {var} is not in opendata.transform.tidy.DIMENSIONS")
        elif f"{dim}_code" not in fields:
            problems.append(f"variable {var} ({dim}) has no field {dim}_code in the schema")
    wanted = {f.removesuffix("_code") for f in fields if f.endswith("_code")} - {"region"}
    present = {DIMENSIONS.get(v) for v in dims}
    problems += [f"schema field {d}_code has no variable in the table" for d in sorted(wanted - present)]
    return problems


def check(source: SourceConfig, config: Config, *, policy: RetryPolicy,
          sess: requests.Session | None = None,
          sleep: Callable[[float], None] = time.sleep) -> TableCheck:
    """Ask metadata/table about one source's table; never raises for a service-side problem."""
    out = TableCheck(source.id, source.api, source.table, source.verified, ok=False)
    ctx = _ctx(source, config, policy, sess, sleep)
    form = {"name": source.table, "language": str(source.params.get("language", "de"))}
    try:
        code, message, doc = json_status(ctx, ctx.post("metadata/table", form))
    except FetchError as exc:
        text = fault_detail(exc) if isinstance(exc, TerminalFetchError) else exc.message
        out.message = secrets.redact(text)
        return out
    obj = doc.get("Object")
    if code != 0 or not isinstance(obj, dict):
        out.message = secrets.redact(f"server status {code}: {message}")
        return out
    out.title = " ".join(str(obj.get("Content") or "").split())
    out.updated = iso_updated(str(obj.get("Updated") or "")) or str(obj.get("Updated") or "")
    out.variables, out.values = _structure(obj)
    if str(obj.get("Code", source.table)) != source.table:
        out.message = f"the service answered for table {obj.get('Code')!r}"
        return out
    out.schema_problems = schema_fit(source, out.variables) if out.variables else []
    out.ok = True
    out.message = "found" + ("" if not out.schema_problems else "; schema does not fit")
    return out


def find(api: str, config: Config, selection: str, *, policy: RetryPolicy,
         pagelength: int = 100, sess: requests.Session | None = None) -> list[dict[str, str]]:
    """catalogue/tables for a selection like '12511*': code, title and time span per table."""
    probe = SourceConfig(id=f"catalogue-{api}", kind="genesis", package="", schema="-/-",
                         license="", attribution="", api=api)
    ctx = _ctx(probe, config, policy, sess, time.sleep)
    form = {"selection": selection, "area": "all", "pagelength": str(pagelength), "language": "de"}
    code, message, doc = json_status(ctx, ctx.post("catalogue/tables", form))
    if code == 104:
        return []
    if code != 0:
        raise TerminalFetchError(probe.id, secrets.redact(f"catalogue/tables {selection!r}: server "
                                                          f"status {code}: {message}"))
    return [{"code": str(i.get("Code", "")), "title": " ".join(str(i.get("Content", "")).split()),
             "time": str(i.get("Time", ""))} for i in doc.get("List") or [] if isinstance(i, dict)]
