"""Warm starts for `opendata serve`: each scheduled run starts in a process that is already up.

Prefect's runner executes every served flow run in a new interpreter (``spawn``), which then
imports Prefect, pandas, pyarrow and this package: about 1.2 s per run on this project's
machine, paid by every run, and more than a quiet night's whole work. Here the serving process
keeps one such child ready, started and imported *between* runs. When a run is due, Prefect
builds its payload exactly as it always does (`prefect.flow_engine.run_flow_in_subprocess`),
and only the process that receives it differs: the ready child runs Prefect's own target with
Prefect's own arguments, then exits, as a spawned child would. Each run still has a process of
its own (memory released, a crash or a cancellation kills the run, not the server); the next
child is started when the previous one has exited.

The hook is the override point Prefect documents in `prefect.runner._starter_direct`
("patch the module to override"). Whenever a warm child is not available (not ready in
time, died, or a Prefect version that starts processes differently), the run starts as before,
in a new process, and the log says so.
"""

from __future__ import annotations

import importlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection, wait
from typing import Any

from prefect.logging import get_logger

log = get_logger("opendata.warm")  # shown with the runner's own lines

# What a run imports anyway (including what Prefect's engine imports on first use); imported by
# the ready child before its run is due.
PRELOAD = ("prefect.flow_engine", "prefect.task_engine", "prefect.utilities.visualization",
           "prefect._internal.observers", "prefect.concurrency._sync", "prefect._vendor.croniter",
           "anyio._backends._asyncio", "flows.nightly", "flows.artifacts", "opendata.pipeline",
           "opendata.publish", "opendata.validate", "opendata.site", "opendata.sources.table",
           "pandas", "pyarrow.csv", "pyarrow.compute", "pyarrow.pandas_compat", "frictionless")


def _warm_up(preload: tuple[str, ...]) -> None:
    """Import ``preload`` and fill the process-wide caches a run reads (the places registry)."""
    for name in preload:
        with suppress(ImportError):  # an optional module: the run imports what it needs
            importlib.import_module(name)
    try:
        from opendata import places

        places.load()  # read once per process in any case (lru_cache), now before the run
    except Exception:  # noqa: BLE001 - the run reads it itself and reports a problem properly
        pass


def _child(conn: Connection, preload: tuple[str, ...]) -> None:
    """The ready child: warm up, wait for one call (or the end of the parent), run it, exit."""
    _warm_up(preload)
    try:
        call = conn.recv()
    except (EOFError, OSError):  # the serving process ended: nothing to run
        return
    finally:
        conn.close()
    if call is not None:
        target, args = call
        target(*args)


class WarmChild:
    """One started child, waiting for a call."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        ctx = multiprocessing.get_context("spawn")  # as Prefect's own children
        child_end, self.conn = ctx.Pipe(duplex=False)  # (receive, send)
        self.process = ctx.Process(target=_child, args=(child_end, preload), name="opendata-warm")
        self.process.start()
        child_end.close()
        self.used = False

    def alive(self) -> bool:
        """Whether the child can still take a call."""
        return not self.used and self.process.is_alive()

    def give(self, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Hand the child its one call; it runs it and exits."""
        self.used = True
        try:
            self.conn.send((target, args))
        finally:
            self.conn.close()

    def stop(self) -> None:
        """Let an unused child exit (it sees the end of its pipe)."""
        if not self.used:
            self.used = True
            self.conn.close()
            self.process.join(timeout=10)


class _Started:
    """The process Prefect gets back: the warm child, started by handing it Prefect's call (or,
    if the child died in the meantime, a new process running the same call)."""

    def __init__(self, child: WarmChild, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._child, self._target, self._args = child, target, args
        self._process: Any = child.process
        self.warm = False  # whether the ready child took the call

    def start(self) -> None:
        """Prefect's ``process.start()``: the child runs the call."""
        try:
            self._child.give(self._target, self._args)
            self.warm = True
        except OSError as exc:  # the child is gone (its pipe is closed): start as Prefect would
            log.warning("the ready process is gone (%s); starting a new one (slower start)", exc)
            self._process = multiprocessing.get_context("spawn").Process(target=self._target,
                                                                         args=self._args)
            self._process.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._process, name)  # pid, join, exitcode, is_alive, kill, sentinel …


class _Context:
    """A ``spawn`` context whose next `Process` is the warm child."""

    def __init__(self, child: WarmChild) -> None:
        self.child, self.taken = child, False

    def Process(self, target: Callable[..., Any], args: tuple[Any, ...] = (),  # noqa: N802
                **kwargs: Any) -> Any:
        """The warm child in place of a new process (once; then real processes)."""
        if self.taken or kwargs.get("kwargs"):
            return multiprocessing.get_context("spawn").Process(target=target, args=args, **kwargs)
        self.taken = True
        return _Started(self.child, target, args)


class _Multiprocessing:
    """`multiprocessing` as the flow engine sees it during one call."""

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx

    def get_context(self, method: str | None = None) -> Any:
        """The warm context for spawn; anything else as usual."""
        return self._ctx if method == "spawn" else multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


@contextmanager
def _engine_multiprocessing(engine: Any, shim: Any) -> Iterator[None]:
    previous = engine.multiprocessing
    engine.multiprocessing = shim
    try:
        yield
    finally:
        engine.multiprocessing = previous


class WarmStarter:
    """Keeps one child ready and starts each served run in it."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        self.preload = preload
        self.child: WarmChild | None = None
        self.warm_runs = 0
        self.cold_runs = 0
        self.closed = False
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Start the next ready child unless one is waiting (or the starter is closed)."""
        with self._lock:
            if not self.closed and (self.child is None or not self.child.alive()):
                self.child = WarmChild(self.preload)

    def _take(self) -> WarmChild | None:
        with self._lock:
            child, self.child = self.child, None
        return child if child is not None and child.alive() else None

    def run_flow_in_subprocess(self, flow: Any, flow_run: Any = None, **kwargs: Any) -> Any:
        """Prefect's `run_flow_in_subprocess`, in the ready child when there is one."""
        from prefect import flow_engine

        child = self._take()
        if child is None:
            log.warning("no ready process for this run; starting a new one (slower start)")
            self.cold_runs += 1
            process = flow_engine.run_flow_in_subprocess(flow, flow_run=flow_run, **kwargs)
        else:
            ctx = _Context(child)
            try:
                with _engine_multiprocessing(flow_engine, _Multiprocessing(ctx)):
                    process = flow_engine.run_flow_in_subprocess(flow, flow_run=flow_run, **kwargs)
            except BaseException:  # Prefect could not start the run: the child goes, a new one comes
                child.stop()
                self.prepare()
                raise
            if getattr(process, "warm", False):
                log.info("flow run %s started in the ready process (pid %s)",
                         getattr(flow_run, "id", "?"), child.process.pid)
                self.warm_runs += 1
            else:
                if not ctx.taken:  # this Prefect starts processes differently
                    log.warning("this Prefect version does not start runs through "
                                "multiprocessing.get_context('spawn'); the run started in a new "
                                "process (no warm start)")
                child.stop()
                self.cold_runs += 1
        threading.Thread(target=self._after, args=(process,), daemon=True,
                         name="opendata-warm-next").start()
        return process

    def _after(self, process: Any) -> None:
        """When the run's process has exited, start the child for the next run (waits on the
        process's sentinel: Prefect joins and reaps the process itself)."""
        with suppress(OSError, ValueError):  # closed by its owner: it has ended
            wait([process.sentinel])
        self.prepare()

    def close(self) -> None:
        """Let a waiting child exit; start no more."""
        with self._lock:
            self.closed = True
            child, self.child = self.child, None
        if child is not None:
            child.stop()


@contextmanager
def warm_starts(preload: tuple[str, ...] = PRELOAD) -> Iterator[WarmStarter]:
    """Serve with warm starts: install the starter in Prefect's runner, undo it on exit."""
    starter = WarmStarter(preload)
    try:
        from prefect.runner import _starter_direct

        previous = _starter_direct.run_flow_in_subprocess
    except (ImportError, AttributeError):
        log.warning("this Prefect version has no run starter to hook into; every run starts in "
                    "a new process (no warm starts)")
        yield starter
        return
    _starter_direct.run_flow_in_subprocess = starter.run_flow_in_subprocess  # type: ignore[assignment]
    starter.prepare()
    try:
        yield starter
    finally:
        _starter_direct.run_flow_in_subprocess = previous
        starter.close()
