"""The temporary Prefect server of `opendata run`, tied to the run: it never outlives the process.

Prefect 3 starts its temporary ("ephemeral") API server lazily as a child process
(`prefect.server.api.server.SubprocessASGIServer`) and stops it at exit; a run killed by SIGKILL
never gets there, and the server stays behind, orphaned and listening. Here the same server is
started before the flow, through a small guard that asks the kernel (Linux `PR_SET_PDEATHSIG`)
to send it SIGTERM when the run dies, and then becomes the uvicorn server Prefect would start.
Prefect uses it as its default temporary server, so nothing else changes. Its own output (for
instance the errors Prefect's services log when they are stopped mid-flush) goes to
``$PREFECT_HOME/temporary-server.log`` (the last run's), not into the run's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prefect
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, get_current_settings

LOG_NAME = "temporary-server.log"
# argv: parent pid, then uvicorn's arguments. Without prctl (not Linux) the server starts unguarded.
GUARD = """import ctypes, os, signal, sys
try:
    ok = ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0) == 0  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    ok = False
if ok and os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the run died before the guard was set
os.execv(sys.executable, [sys.executable, "-m", "uvicorn", *sys.argv[2:]])
"""


class SupervisedServer(SubprocessASGIServer):
    """Prefect's temporary server, started so that it dies with the process that started it."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1",
               **get_current_settings().to_environment_variables(exclude_unset=True)}
        args = ["--app-dir", str(prefect.__module_path__.parent), "--factory",
                "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
                str(self.port), "--log-level", "error", "--lifespan", "on"]
        home = get_current_settings().home
        home.mkdir(parents=True, exist_ok=True)
        with (home / LOG_NAME).open("wb") as log:  # the child keeps its own copy of the handle
            return subprocess.Popen([sys.executable, "-c", GUARD, str(os.getpid()), *args],
                                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def start_temporary_server() -> str:
    """Start the run's temporary server unless PREFECT_API_URL names a server (call from the
    main thread: the kernel ties the guard to the thread that started the child). Returns its
    API URL ("" when none was started here)."""
    if PREFECT_API_URL.value():
        return ""
    server = SupervisedServer()  # becomes Prefect's default temporary server (port None)
    if isinstance(server, SupervisedServer):  # else Prefect already started its own
        server.start()  # Prefect stops it at exit, as before
        return str(server.api_url)
    return ""


@contextmanager
def for_child_processes(api_url: str) -> Iterator[None]:
    """Task runs in child processes (Dask workers) report to the run's server, not their own:
    PREFECT_API_URL is set while the flow runs and restored afterwards."""
    old = os.environ.get("PREFECT_API_URL")
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    try:
        yield
    finally:
        if api_url:
            if old is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old
