"""GENESIS REST 2020 client (GENESIS-Online, Regionalstatistik, Zensus 2022): tablefile, jobs, metadata.

Settings (config ``[settings]``, per-source ``options``, env ``OPENDATA_<KEY>`` wins):
``job_poll_interval`` (5 s, grows x1.5 up to 60 s), ``job_max_wait`` (1800 s), ``max_csv_bytes``.
Base URL: env ``OPENDATA_<API>_BASE_URL``, else ``options.base_url``, else ``[apis.<api>].base_url``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from opendata import places, secrets
from opendata.canonical import canonical_csv_sha256_blocks, run_prefix
from opendata.config import Config, SourceConfig
from opendata.errors import InputError, SnapshotError, TerminalFetchError, TransientFetchError
from opendata.ffcsv import MAX_CSV_BYTES, csv_blocks, csv_name, is_zip, read_ffcsv
from opendata.frames import distinct
from opendata.http import RetryPolicy, request
from opendata.snapshot import FetchedFile, Snapshot, dump_json
from opendata.sources import Fetched

log = logging.getLogger(__name__)

RECORDED_HEADERS = ("Content-Type", "Content-Disposition", "Date")
"""Response headers kept in a snapshot manifest. Not Content-Length: the manifest's ``bytes`` is the
size of the file as stored, which differs for re-serialised bodies (metadata.json)."""
DIAG_HEADERS = ("Content-Type", "Content-Length", "Content-Disposition", "Date")
SECRET_KEYS = frozenset({"username", "password", "token"})
_RESULT_NAME = re.compile(r"([\w-]+_\d+)\s*$")


class _BodyError(TerminalFetchError):
    """A terminal fault about a received body, which is kept for diagnosis."""

    def __init__(self, source: str, message: str, resp: requests.Response) -> None:
        super().__init__(source, message)
        self.resp, self.detail = resp, message


def fault_detail(exc: TerminalFetchError) -> str:
    """The message of a fetch fault without the 'fetch failed for source' prefix."""
    return exc.message.removeprefix(f"fetch failed for source '{exc.source}': ")


@dataclass
class Context:
    """One source's request context: config, retry policy, session, base URL, auth headers."""

    source: SourceConfig
    config: Config
    policy: RetryPolicy
    sess: requests.Session | None
    sleep: Callable[[float], None]
    base: str
    headers: dict[str, str]

    def setting(self, key: str, default: float) -> float:
        env = os.environ.get(f"OPENDATA_{key.upper()}")
        return float(env if env else self.source.options.get(key, self.config.settings.get(key, default)))

    def post(self, endpoint: str, form: dict[str, str]) -> requests.Response:
        return request(self.source.id, "POST", self.base + endpoint, policy=self.policy, data=form,
                       headers=self.headers, sess=self.sess, sleep=self.sleep)


def base_url(source: SourceConfig, config: Config) -> str:
    """Base URL: env OPENDATA_<API>_BASE_URL, else source option base_url, else the API's."""
    api = re.sub(r"\W", "_", source.api).upper()
    env = os.environ.get(f"OPENDATA_{api}_BASE_URL", "")
    url = env or str(source.options.get("base_url") or config.apis[source.api].base_url)
    return url if url.endswith("/") else url + "/"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def form_params(source: SourceConfig, name: str | None = None) -> dict[str, str]:
    """The tablefile form: name, format=ffcsv and the source params (lists joined by commas)."""
    form = {"name": name or source.table, "format": "ffcsv"}
    form.update({k: _text(v) for k, v in source.params.items() if k.lower() not in SECRET_KEYS})
    return form


def auth_headers(ctx_source: SourceConfig, config: Config) -> dict[str, str]:
    """The username/password request headers of the source's API ({} without credentials)."""
    creds = secrets.credentials(config.apis[ctx_source.api])
    if creds is None:
        log.info("no credentials configured for API %s; sending anonymous requests", ctx_source.api)
        return {}
    return {"username": creds[0], "password": creds[1]}


def _kind(resp: requests.Response) -> str:
    body, ctype = resp.content, resp.headers.get("Content-Type", "").lower()
    head = body[:64].lstrip(b"\xef\xbb\xbf \r\n\t")
    if is_zip(body) or body[:2] == b"PK" or "zip" in ctype:
        return "zip"
    if head[:1] in (b"{", b"[") or "json" in ctype:
        return "json"
    if head[:1] == b"<" or "html" in ctype or "xml" in ctype:
        return "html"
    if head.startswith(b"statistics_code") or "csv" in ctype:
        return "csv"
    return "other"


def json_status(ctx: Context, resp: requests.Response) -> tuple[int, str, dict[str, Any]]:
    """Status.Code, Status.Content and the document of a JSON answer; unreadable → terminal."""
    try:
        doc = resp.json()
        status = doc.get("Status") or {}
        return int(status["Code"]), str(status.get("Content", "")), doc
    except (ValueError, TypeError, AttributeError, KeyError):
        raise _BodyError(ctx.source.id, f"{resp.url} answered unreadable JSON "
                                        f"({len(resp.content)} bytes): {resp.text[:200]!r}", resp) from None


def _selection(form: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in form.items() if v and k not in ("format", "name"))


def _status_error(ctx: Context, code: int, message: str, form: dict[str, str],
                  resp: requests.Response) -> _BodyError:
    sel = _selection(form) or "no further parameters"
    if code == 104:
        text = (f"no data for this selection: table {form['name']}, params {sel} "
                f"(server status 104: {message}). Widen the selection in the config.")
    else:
        text = f"server status {code} for table {form['name']} ({sel}): {message}"
    return _BodyError(ctx.source.id, secrets.redact(text), resp)


def _wait_for_job(ctx: Context, result: str) -> int:
    """Poll catalogue/results until ``result`` is listed; returns the number of polls."""
    interval = ctx.setting("job_poll_interval", 5.0)
    max_wait, cap = ctx.setting("job_max_wait", 1800.0), max(interval, 60.0)
    if ctx.policy.deadline is not None:  # a job the server confirmed may take job_max_wait more
        ctx.policy = replace(ctx.policy, deadline=ctx.policy.deadline + max_wait)
    start, waited, delay, polls = time.monotonic(), 0.0, interval, 0
    form = {"selection": result, "area": "user", "pagelength": "1"}
    while True:
        resp = ctx.post("catalogue/results", form)
        polls += 1
        code, message, doc = json_status(ctx, resp)
        listed = [i.get("Code") for i in (doc.get("List") or []) if isinstance(i, dict)]
        if code == 0 and result in listed:
            log.info("%s: job result %s ready after %d polls", ctx.source.id, result, polls)
            return polls
        if code not in (0, 104):
            raise _status_error(ctx, code, message, form | {"name": result}, resp)
        if max(waited, time.monotonic() - start) >= max_wait:
            raise TransientFetchError(ctx.source.id, f"GENESIS job {result} not ready after {polls} "
                                      f"polls ({max_wait:.0f} s); try again later or raise job_max_wait")
        if polls % 20 == 0:
            log.info("%s: waiting for GENESIS job %s (%d polls, %.0f s of at most %.0f s)",
                     ctx.source.id, result, polls, max(waited, time.monotonic() - start), max_wait)
        ctx.sleep(delay)
        waited += delay
        delay = min(cap, delay * 1.5)


def _job_result(ctx: Context, message: str, resp: requests.Response) -> str:
    m = _RESULT_NAME.search(message.strip())
    if not m:
        raise _BodyError(ctx.source.id, f"status 99 without a result name in {message!r}", resp)
    return m.group(1)


def _download(ctx: Context) -> tuple[requests.Response, dict[str, str], str]:
    """POST tablefile, following 98 (job=true) and 99 (poll, resultfile); returns the data response."""
    form, endpoint = form_params(ctx.source), "data/tablefile"
    for _ in range(3):
        resp = ctx.post(endpoint, form)
        kind = _kind(resp)
        if kind in ("zip", "csv"):
            return resp, form, endpoint
        if kind != "json":
            what = "an HTML page" if kind == "html" else f"an unexpected {kind} body"
            raise _BodyError(ctx.source.id, f"{resp.url} answered {what} instead of a ZIP "
                                            f"(Content-Type {resp.headers.get('Content-Type', '?')}): "
                                            f"{resp.text[:200]!r}", resp)
        code, message, _ = json_status(ctx, resp)
        if code == 98 and endpoint == "data/tablefile" and form.get("job") != "true":
            log.info("%s: table too large for a direct download, resending with job=true",
                     ctx.source.id)
            form = form | {"job": "true"}
        elif code == 99 and endpoint == "data/tablefile":
            result = _job_result(ctx, message, resp)
            _wait_for_job(ctx, result)
            form = {k: v for k, v in form_params(ctx.source, result).items() if k != "job"}
            endpoint = "data/resultfile"
        elif code == 0:
            raise _BodyError(ctx.source.id, f"{resp.url} answered JSON (status 0: {message}) where a "
                                            "ZIP was expected; check format=ffcsv", resp)
        else:
            raise _status_error(ctx, code, message, form, resp)
    raise _BodyError(ctx.source.id, f"no ZIP after the job flow for table {ctx.source.table}", resp)


def _scrub(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def iso_updated(updated: str) -> str:
    """A metadata 'Updated' stamp (de or en form) as ISO 8601, or "" when unparseable."""
    for fmt in ("%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"):  # de and en metadata
        try:
            return datetime.strptime(updated.rstrip("h").strip(), fmt).isoformat()
        except ValueError:
            pass
    return ""


def _metadata(ctx: Context) -> tuple[FetchedFile, dict[str, Any]]:
    form = {"name": ctx.source.table, "language": str(ctx.source.params.get("language", "de"))}
    resp = ctx.post("metadata/table", form)
    code, message, doc = json_status(ctx, resp)
    obj = doc.get("Object") or {}
    if code != 0 or not isinstance(obj, dict):
        log.warning("%s: no table metadata (status %s)", ctx.source.id, code)
        obj = {}
    updated = str(obj.get("Updated") or "")
    meta = {"table": ctx.source.table, "api": ctx.source.api, "metadata_status": code,
            "metadata_message": secrets.redact(message),
            "title": " ".join(str(obj.get("Content") or "").split()), "updated": updated,
            "updated_iso": iso_updated(updated), "time_from": (obj.get("Time") or {}).get("From", ""),
            "time_to": (obj.get("Time") or {}).get("To", "")}
    body = secrets.redact(dump_json(_scrub(doc))).encode("utf-8")
    return _file("metadata.json", "metadata", body, resp, form), meta


def _file(name: str, role: str, content: bytes, resp: requests.Response,
          form: dict[str, str]) -> FetchedFile:
    headers = {k: resp.headers[k] for k in RECORDED_HEADERS if k in resp.headers}
    return FetchedFile(name=name, content=content, url=resp.url.split("?")[0], role=role,
                       params=dict(form), status=resp.status_code, headers=headers)


def keep_failed(diag_dir: Path, source: str, resp: requests.Response, error: str) -> Path:
    """Write a failed response body + what was wrong under diag_dir/<source>/<UTC ts>/."""
    ts = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = diag_dir / source / ts
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "body.bin").write_bytes(secrets.redact_bytes(resp.content))
    info = {"url": resp.url, "status": resp.status_code, "error": secrets.redact(error),
            "headers": {k: resp.headers[k] for k in DIAG_HEADERS if k in resp.headers},
            "bytes": len(resp.content)}
    (folder / "info.json").write_text(dump_json(info), encoding="utf-8")
    return folder


def _data_file(ctx: Context, resp: requests.Response, form: dict[str, str],
               tmp_dir: Path | None = None) -> tuple[FetchedFile, str]:
    """The data file and its content hash, taken as the CSV is decompressed (a large table is
    sorted in runs in ``tmp_dir``, never held whole)."""
    limit = int(ctx.setting("max_csv_bytes", MAX_CSV_BYTES))
    blocks = csv_blocks(resp.content, source=ctx.source.id, limit=limit) \
        if _kind(resp) == "zip" else iter([resp.content])
    try:
        content_sha = canonical_csv_sha256_blocks(blocks, tmp_dir,
                                                  prefix=run_prefix(ctx.source.id))
    except TerminalFetchError as exc:
        raise _BodyError(ctx.source.id, fault_detail(exc), resp) from None
    name = "data.zip" if _kind(resp) == "zip" else "data.csv"
    return _file(name, "data", resp.content, resp, form), content_sha


def language(source: SourceConfig) -> str:
    """The language the source requests ('de' unless its params say otherwise, as the API does)."""
    return str(source.params.get("language") or "de").lower()


def head_code(doc: dict[str, Any]) -> str:
    """The statistics code of a metadata/table answer (Object.Structure.Head.Code), or ""."""
    obj = doc.get("Object") if isinstance(doc, dict) else None
    struct = obj.get("Structure") if isinstance(obj, dict) else None
    head = struct.get("Head") if isinstance(struct, dict) else None
    return str(head.get("Code") or "") if isinstance(head, dict) else ""


_MEMBER = re.compile(r"^(?P<table>[^_/]+)_\d+_(?:(?:de|en)_)?flat\.csv$", re.IGNORECASE)


def _check_table(frame: pd.DataFrame, source: SourceConfig, file: str, head: str) -> None:
    """The answer is the configured table: its statistics code and the ZIP member's table code."""
    want = head or source.table.split("-", 1)[0]
    codes = distinct(frame["statistics_code"])
    if codes != [want]:
        raise InputError(source.id, f"the answer holds statistics {codes}, but the configured table "
                                    f"{source.table} belongs to statistics {want}: the service sent "
                                    "a different table. Nothing from this answer is used; check "
                                    "'table' in config/opendata.toml or fetch again later.", file)
    m = _MEMBER.match(file)
    if m and m.group("table") != source.table:
        raise InputError(source.id, f"the ZIP holds table {m.group('table')}, not the configured "
                                    f"table {source.table}. Nothing from this answer is used.", file)


def regional_keys(source: SourceConfig) -> list[str]:
    """The source's configured ``regionalkey`` entries (list or comma-separated text)."""
    raw = source.params.get("regionalkey", [])
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return [str(k).strip() for k in items if str(k).strip()]


def _span(frame: pd.DataFrame) -> tuple[str, str]:
    """First and last day the table covers (reference dates, else the years of ``time``)."""
    dates = [d for d in distinct(frame["reference_date"]) if d]
    if dates:
        return dates[0], dates[-1]
    years = sorted({t[:4] for t in distinct(frame["time"]) if re.fullmatch(r"\d{4}", t[:4])})
    return (f"{years[0]}-01-01", f"{years[-1]}-12-31") if years else ("", "")


def _check_regions(frame: pd.DataFrame, source: SourceConfig, file: str) -> None:
    """Every configured region whose validity overlaps the table's dates is in the answer."""
    present = distinct(frame["dim1_code"])
    first, last = _span(frame)
    registry = places.load()
    for key in regional_keys(source):
        if fnmatch.filter(present, key):
            continue
        if not registry.existed(key, first, last):
            continue  # the table's dates lie outside the region's existence
        name = f" ({registry.get(key, 'name')})" if registry.get(key, "name") else ""
        shown = ", ".join(present[:10]) + (" …" if len(present) > 10 else "")
        raise InputError(source.id, f"region {key}{name} is missing from the answer for table "
                                    f"{source.table} ({first} to {last}), although regionalkey asks "
                                    f"for it; the answer lists {shown or 'no region'}. Publishing it "
                                    "would silently drop that region's rows, so nothing from this "
                                    "answer is used. Fetch again later; if the service no longer "
                                    "delivers the region, remove it from regionalkey in "
                                    "config/opendata.toml.", file)


def checked_frame(data: bytes, source: SourceConfig, metadata: dict[str, Any]) -> pd.DataFrame:
    """The ffcsv frame of a data body, checked to be the configured table with every configured
    region (InputError otherwise)."""
    limit = int(source.options.get("max_csv_bytes", MAX_CSV_BYTES))  # as at fetch, per source
    frame = read_ffcsv(data, source=source.id, language=language(source), limit=limit)
    file = csv_name(data)
    _check_table(frame, source, file, head_code(metadata))
    _check_regions(frame, source, file)
    return frame


def fetch(source: SourceConfig, config: Config, *, policy: RetryPolicy,
          sess: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
          diag_dir: Path | None = None, previous: Snapshot | None = None,
          confirmed: dict[str, Any] | None = None, tmp_dir: Path | None = None) -> Fetched:
    """Download one GENESIS table as ffcsv (following jobs) plus its metadata; check its content.

    With ``previous`` (a snapshot still within recheck_days) the metadata is asked first, and
    nothing is downloaded when ``previous`` holds the same request under the same non-empty
    'Updated' stamp (``confirmed``: the stamp and request a later download found ``previous``'s
    content under, see ``unchanged_by_metadata``). Without it the data comes first, so that a
    service's answer about the data (e.g. status 104) is what a failing first fetch reports."""
    ctx = Context(source, config, policy, sess, sleep, base_url(source, config),
               auth_headers(source, config))
    try:
        if previous is not None:
            meta_file, meta = _metadata(ctx)
            if same := unchanged_by_metadata(previous, meta | {"request": request_of(
                    meta_file, form_params(source))}, confirmed):
                return Fetched([], previous.content_sha256, meta, not_downloaded=same)
        resp, form, _ = _download(ctx)
        data, content_sha = _data_file(ctx, resp, form, tmp_dir)
        if previous is None:
            meta_file, meta = _metadata(ctx)
        meta["request"] = request_of(meta_file, form_params(source))
    except _BodyError as exc:
        _keep(diag_dir, source, exc.resp, exc.detail)
        raise TerminalFetchError(source.id, exc.detail) from None
    try:
        checked_frame(resp.content, source, json.loads(meta_file.content))
    except InputError as exc:
        _keep(diag_dir, source, resp, exc.message)
        raise
    meta["job"] = form["name"] if form["name"] != source.table else ""
    return Fetched([data, meta_file], content_sha, meta)


def _request(params: Any) -> dict[str, str]:
    """Data request params without the table/job name, the job flag and credentials."""
    if not isinstance(params, dict):
        return {}
    return {str(k): str(v) for k, v in params.items()
            if str(k).lower() not in SECRET_KEYS and k not in ("name", "job")}


def request_of(meta_file: FetchedFile, data_params: dict[str, Any]) -> dict[str, Any]:
    """What identifies a table request: the metadata URL and form and the data params (without
    the job's result name and without credentials, which are never recorded)."""
    return {"metadata_url": meta_file.url, "metadata_params": _request(meta_file.params)
            | {"name": str(meta_file.params.get("name", ""))}, "data_params": _request(data_params)}


def _entry(snap: Snapshot, role: str) -> dict[str, Any]:
    found = [e for e in snap.manifest.get("files", []) if isinstance(e, dict) and e.get("role") == role]
    return found[0] if found else {}


def _known(previous: Snapshot, confirmed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The 'Updated' stamp and request ``previous``'s content was last downloaded under: those a
    later download confirmed, else those recorded in the snapshot itself."""
    if confirmed.get("snapshot") == previous.path.name and confirmed.get("updated"):
        request = confirmed.get("request")
        return str(confirmed["updated"]), request if isinstance(request, dict) else {}
    obj = _metadata_doc(previous).get("Object")
    updated = str(obj.get("Updated") or "") if isinstance(obj, dict) else ""
    meta, data = _entry(previous, "metadata"), _entry(previous, "data")
    if not meta or not data:
        return updated, {}
    params = meta.get("params")
    params = params if isinstance(params, dict) else {}
    return updated, {"metadata_url": meta.get("url"), "metadata_params": _request(params)
                     | {"name": str(params.get("name", ""))},
                     "data_params": _request(data.get("params"))}


def unchanged_by_metadata(previous: Snapshot, meta: dict[str, Any],
                          confirmed: dict[str, Any] | None = None) -> str:
    """Why ``previous`` still holds the table ("unchanged according to metadata Updated=…"), or
    "" when it must be downloaded: no, or another, 'Updated' stamp, or another request
    (``meta`` is this fetch's metadata summary with its ``request``)."""
    updated = str(meta.get("updated") or "")
    if meta.get("metadata_status") != 0 or not updated:
        return ""
    known_updated, known_request = _known(previous, confirmed or {})
    if known_updated != updated or known_request != meta.get("request"):
        return ""
    return (f"unchanged according to metadata Updated={updated}, not downloaded "
            f"(snapshot {previous.path.name})")


def _keep(diag_dir: Path | None, source: SourceConfig, resp: requests.Response, error: str) -> None:
    if diag_dir is not None:
        folder = keep_failed(diag_dir, source.id, resp, error)
        log.error("unusable answer, raw body kept", extra={"source": source.id, "diag": str(folder)})


def _metadata_doc(snapshot: Snapshot) -> dict[str, Any]:
    try:
        doc = json.loads(snapshot.read("metadata"))
    except (SnapshotError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read(source: SourceConfig, snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's data file as the stable ffcsv frame, checked like a fresh answer."""
    return checked_frame(snapshot.read("data"), source, _metadata_doc(snapshot))


def describe(snapshot: Snapshot) -> dict[str, str]:
    """Title and last update of the table, from the snapshot's metadata/table response."""
    try:
        doc = json.loads(snapshot.read("metadata"))
    except (SnapshotError, ValueError):
        return {}
    obj = doc.get("Object") or {}
    updated = str(obj.get("Updated") or "")
    return {"table_title": " ".join(str(obj.get("Content") or "").split()),
            "last_updated": iso_updated(updated) or updated}
