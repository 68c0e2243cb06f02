"""A GENESIS REST 2020 replay server on 127.0.0.1 built from ../shared/genesis, with fault injection.

Each recorded interaction is keyed by API path prefix + endpoint + table (or job selection) +
language + job flag + quality. Requests with the same key get the recorded answers in recorded
order; after the last one the last answer repeats. So ``12531-0043`` replays 98, 99, the 104
polls of ``catalogue/results`` (as many as recorded), the 0 answer and the result file.

``Replay.rewrite(table, fn, ...)`` queues in-test modifications of the CSV inside the next data
answers of one table (one function per answer, applied after the region selection), e.g.
``shuffle_rows`` for the same rows in another order, as the real Regionaldatenbank sends them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import random
import socket
import struct
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PREFIXES = {  # recorded host -> local path prefix (the real services' paths)
    "www-genesis.destatis.de": "/genesisWS/rest/2020/",
    "www.regionalstatistik.de": "/genesisws/rest/2020/",
    "ergebnisse.zensus2022.de": "/api/rest/2020/",
}
API_OF_PREFIX = {"/genesisWS/rest/2020/": "genesis", "/genesisws/rest/2020/": "regionalstatistik",
                 "/api/rest/2020/": "zensus"}
REPLAYED_HEADERS = ("Content-Type", "Content-Disposition", "Date")
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Wartungsarbeiten</title></head>"
             b"<body><h1>Wartungsarbeiten</h1><p>Der Dienst ist voruebergehend nicht erreichbar.</p>"
             b"</body></html>")


@dataclass
class Fault:
    """One injected fault: kind is status|reset|slow|truncate|cut|body."""

    kind: str
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    endpoint: str = ""  # only requests to this endpoint ("data/tablefile") consume the fault


@dataclass
class Answer:
    """One recorded response."""

    status: int
    headers: dict[str, str]
    body: Path


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    endpoint: str
    api: str
    headers: dict[str, str]
    form: dict[str, str]
    raw: bytes


def key_of(prefix: str, endpoint: str, form: dict[str, str]) -> tuple[str, ...]:
    """How a request is matched to recorded answers."""
    if endpoint == "catalogue/results":
        return (prefix, endpoint, form.get("selection", ""))
    if endpoint == "metadata/table":
        return (prefix, endpoint, form.get("name", ""), form.get("language", "de") or "de")
    return (prefix, endpoint, form.get("name", ""), form.get("language", "de") or "de",
            form.get("job", "false") or "false", form.get("quality", "off") or "off")


def load(root: Path) -> dict[tuple[str, ...], list[Answer]]:
    """All recorded answers under ``root`` (the shared/genesis folder), grouped by key."""
    answers: dict[tuple[str, ...], list[Answer]] = defaultdict(list)
    for f in sorted(root.glob("*/interactions.json")):
        for e in json.loads(f.read_text(encoding="utf-8")):
            url = urlsplit(e["url"])
            prefix = PREFIXES[url.hostname or ""]
            endpoint = url.path.split("/rest/2020/", 1)[1]
            answers[key_of(prefix, endpoint, e["form"])].append(
                Answer(e["status"], e["headers"], f.parent / e["body"]))
    return answers


def count(root: Path, table: str, endpoint: str) -> int:
    """How many recorded requests of one table went to one endpoint."""
    entries = json.loads((root / table / "interactions.json").read_text(encoding="utf-8"))
    return sum(1 for e in entries if e["url"].endswith("/" + endpoint))


@dataclass
class Replay:
    """State shared by the handler threads."""

    answers: dict[tuple[str, ...], list[Answer]]
    faults: list[Fault] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    served: dict[tuple[str, ...], int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    selections: dict[str, str] = field(default_factory=dict)  # table -> regionalkey requested
    rewrites: dict[str, list[Callable[[bytes], bytes]]] = field(default_factory=dict)

    def rewrite(self, table: str, *fns: Callable[[bytes], bytes]) -> None:
        """Queue CSV modifications for the next data answers of ``table`` (one per answer)."""
        with self.lock:
            self.rewrites.setdefault(table, []).extend(fns)

    def next_rewrite(self, table: str) -> Callable[[bytes], bytes] | None:
        """Pop the next queued CSV modification of ``table``."""
        with self.lock:
            queued = self.rewrites.get(table) or []
            return queued.pop(0) if queued else None

    def url(self, api: str) -> str:
        """Base URL of one API ('genesis', 'regionalstatistik', 'zensus') on this server."""
        prefix = next(p for p, a in API_OF_PREFIX.items() if a == api)
        return f"http://127.0.0.1:{self.port}{prefix}"

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next requests (one fault per request, in order)."""
        with self.lock:
            self.faults.extend(faults)

    def requests_to(self, endpoint: str) -> list[Received]:
        """Received requests to one endpoint, in order."""
        return [r for r in self.received if r.endpoint == endpoint]

    def next_fault(self, endpoint: str) -> Fault | None:
        """Pop the first queued fault that applies to this endpoint."""
        with self.lock:
            for i, f in enumerate(self.faults):
                if not f.endpoint or f.endpoint == endpoint:
                    return self.faults.pop(i)
        return None

    def answer(self, key: tuple[str, ...]) -> Answer | None:
        """The next recorded answer for a key (the last one repeats)."""
        with self.lock:
            found = self.answers.get(key)
            if not found:
                return None
            n = self.served[key]
            self.served[key] += 1
        return found[min(n, len(found) - 1)]


class Handler(BaseHTTPRequestHandler):
    """Answers POSTs from the recording or from the fault queue."""

    replay: Replay  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        """Silence the default stderr access log."""

    def _send(self, status: int, body: bytes, headers: dict[str, str], length: int | None = None) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        """Record the request, then answer it."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        prefix = next((p for p in API_OF_PREFIX if self.path.startswith(p)), "")
        endpoint = self.path[len(prefix):].split("?")[0] if prefix else self.path
        with self.replay.lock:
            self.replay.received.append(Received(self.path, endpoint, API_OF_PREFIX.get(prefix, ""),
                                                 dict(self.headers.items()), form, raw))
        fault = self.replay.next_fault(endpoint)
        if fault is not None and self._fault(fault):
            return
        found = self.replay.answer(key_of(prefix, endpoint, form)) if prefix else None
        if found is None:
            msg = f"replay: no recording for {self.path} {sorted(form.items())}".encode()
            self._send(404, msg, {"Content-Type": "text/plain; charset=utf-8"})
            return
        headers = {k: v for k, v in found.headers.items() if k in REPLAYED_HEADERS}
        body = self._select(endpoint, form, found.body.read_bytes())
        if fault is not None and fault.kind in ("truncate", "cut"):
            short = body[: len(body) // 2]
            self._send(found.status, short, headers, None if fault.kind == "truncate" else len(body))
            if fault.kind == "cut":
                self._reset()
            return
        self._send(found.status, body, headers)

    def _select(self, endpoint: str, form: dict[str, str], body: bytes) -> bytes:
        """Like the real service, deliver only the rows of the requested regionalkey."""
        table = form.get("name", "").split("_")[0]
        if endpoint == "data/tablefile":
            with self.replay.lock:
                self.replay.selections[table] = form.get("regionalkey", "")
        keys = self.replay.selections.get(table, "")
        if endpoint not in ("data/tablefile", "data/resultfile") or body[:2] != b"PK":
            return body
        if keys:
            body = select_regions(body, keys)
        fn = self.replay.next_rewrite(table)
        return rewrite_csv(body, fn) if fn else body

    def _fault(self, fault: Fault) -> bool:
        """Apply a fault; True when the request is fully answered by it."""
        if fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, b"Service Unavailable", {"Content-Type": "text/plain", **extra})
            return True
        if fault.kind == "reset":
            self._reset()
            return True
        if fault.kind == "body":
            self._send(200, fault.body, {"Content-Type": fault.content_type})
            return True
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        return False  # slow, truncate, cut: continue with the recorded answer

    def finish(self) -> None:
        """Ignore errors writing to a client that gave up (timeouts, resets)."""
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        """Like the base class, but a client that went away is not an error."""
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def select_regions(body: bytes, keys: str) -> bytes:
    """Keep the ffcsv rows whose first classifying variable matches a key (``*`` wildcards)."""
    patterns = [k.strip() for k in keys.split(",") if k.strip()]
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        name = zf.namelist()[0]
        lines = zf.read(name).split(b"\n")
    idx = lines[0].decode("utf-8-sig").split(";").index("1_variable_attribute_code")
    kept = [lines[0]] + [line for line in lines[1:] if line and any(
        fnmatch.fnmatchcase(line.split(b";")[idx].decode("utf-8"), p) for p in patterns)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, b"\n".join(kept) + b"\n")
    return out.getvalue()


def rewrite_csv(body: bytes, fn: Callable[[bytes], bytes]) -> bytes:
    """The ZIP ``body`` with ``fn`` applied to its CSV member (same member name)."""
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        name = zf.namelist()[0]
        csv = zf.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, fn(csv))
    return out.getvalue()


def shuffle_rows(csv: bytes, seed: int = 1) -> bytes:
    """The same header and data lines in another order (a fixed permutation per seed)."""
    lines = csv.split(b"\n")
    head, rows = lines[0], [line for line in lines[1:] if line]
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    if shuffled == rows:
        shuffled.reverse()
    return b"\n".join([head, *shuffled]) + b"\n"


def serve(root: Path) -> tuple[ThreadingHTTPServer, Replay]:
    """Start a replay server on 127.0.0.1 with a random port (stop with ``stop``)."""
    replay = Replay(load(root))
    handler = type("BoundHandler", (Handler,), {"replay": replay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    replay.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, replay


def stop(server: ThreadingHTTPServer) -> None:
    """Stop a server started by ``serve``."""
    server.shutdown()
    server.server_close()
