"""Small helpers shared by the pipeline tests: temp data dirs and config copies."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def copy_raw(data_dir: Path) -> Path:
    """A data dir holding a copy of the committed raw snapshots."""
    shutil.copytree(REPO / "data" / "raw", data_dir / "raw")
    return data_dir


def copy_config(dest: Path) -> Path:
    """A copy of config/ (registry + city tables) that a test may edit; returns the TOML path."""
    shutil.copytree(REPO / "config", dest, ignore=shutil.ignore_patterns(".tmp*"))
    return dest / "opendata.toml"


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below root (symlinks as their target text)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def opendata(*args: str, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m flows ...` as a real process."""
    full_env = dict(os.environ) | (env or {})
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def edit_city_cell(cfg_path: Path, column: str, value: str, *, row: int = 1,
                   table: str = "massnahmen.csv") -> None:
    """Set one cell (1-based data row) of a city table in a copied config (comma-separated CSV)."""
    path = cfg_path.parent / "city" / table
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[row][rows[0].index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung service)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections.append(conn)  # held open, never read or answered

    def url(self, path: str = "/") -> str:
        """The server's URL for a path."""
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self.sock.close()
        for conn in self.connections:
            conn.close()


def load_script(name: str) -> ModuleType:
    """A script of scripts/ imported as a module (e.g. ``load_script("build_embedded")``)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A folder served by http.server on 127.0.0.1; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process group started with start_new_session (the process and its children)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_for(check: Callable[[], Any], timeout: float, what: str,
             proc: subprocess.Popen[bytes] | None = None, log: Path | None = None,
             every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something true; an HTTP error counts as not yet. Raises
    RuntimeError (with the log's tail) when ``proc`` ends first or after ``timeout`` seconds."""
    import httpx

    def tail() -> str:
        return log.read_text(encoding="utf-8", errors="replace")[-3000:] if log else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process ended (exit {proc.returncode}):\n{tail()}")
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(every)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s:\n{tail()}")
