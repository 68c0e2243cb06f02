"""The `nightly` Prefect flow: fetch → validate → publish. Thin: it only wires library calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.runtime import task_run as task_run_ctx
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import Task

from opendata import config as config_mod
from opendata import notify, pipeline, runlog
from opendata.errors import (
    ConfigError,
    DeadlineExceeded,
    LockError,
    OpendataError,
    StorageError,
    TransientFetchError,
    is_file_error,
)
from opendata.lock import pipeline_lock
from opendata.paths import Paths
from opendata.secrets import has_credentials, redact


def transient_only(task_: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a task only when it failed with a transient fetch fault."""
    try:
        state.result()
    except TransientFetchError:
        return True
    except Exception:  # noqa: BLE001 - anything else is terminal
        return False
    return False


@task(name="fetch", task_run_name="fetch-{source_id}", retries=2, retry_delay_seconds=[30, 120],
      retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def fetch_task(source_id: str, data_dir: str, config_path: str, online: bool,
               deadline: float | None = None, full: bool = False) -> dict[str, Any]:
    """Fetch one source and snapshot it if its content changed (by ``deadline``, epoch seconds;
    default: [settings] source_deadline from the task's first attempt, kept across retries)."""
    cfg = config_mod.load(Path(config_path))
    deadline = deadline or _first_attempt_deadline(cfg)
    try:
        res = pipeline.fetch_source(cfg.source(source_id), cfg, cfg.paths(Path(data_dir)),
                                    online=online, deadline=deadline, full=full)
    except TransientFetchError as exc:
        _no_retry_past(deadline, cfg, exc)
        raise
    if res.note:
        get_run_logger().warning(res.note)
    else:
        get_run_logger().info("%s: %s snapshot %s%s", source_id, "new" if res.changed else "same",
                              res.snapshot.name if res.snapshot else "-",
                              f" ({res.info})" if res.info else "")
    return {"source": res.source, "snapshot": str(res.snapshot or ""), "changed": res.changed,
            "mode": res.mode, "note": res.note, "info": res.info}


_DEADLINES: dict[str, float] = {}


def _first_attempt_deadline(cfg: config_mod.Config) -> float:
    """The source's deadline: set when its task first runs (not when it was queued), the same
    for every retry of that task run (Prefect retries in the same process)."""
    run_id = str(task_run_ctx.id or "")
    if run_id not in _DEADLINES or int(task_run_ctx.run_count or 1) <= 1:
        _DEADLINES[run_id] = time.time() + pipeline.source_deadline(cfg)
    return _DEADLINES[run_id]


def _no_retry_past(deadline: float | None, cfg: config_mod.Config, exc: TransientFetchError) -> None:
    """A task retry that could only start after the source's deadline fails the source now."""
    if deadline is None:
        return
    attempt = int(task_run_ctx.run_count or 1)
    delays = task_retries(cfg)["retry_delay_seconds"] or [0.0]
    if attempt > task_retries(cfg)["retries"]:
        return  # the last attempt: its own message says it gave up
    wait = delays[min(attempt, len(delays)) - 1]
    if time.time() + wait >= deadline:
        raise DeadlineExceeded(exc.source, pipeline.source_deadline(cfg), exc.message) from exc


def task_retries(cfg: config_mod.Config) -> dict[str, Any]:
    """Task-level retries of a fetch (on top of the HTTP retries), from [settings].

    No Prefect task timeout: tasks run in worker threads, where Prefect cannot interrupt them
    (it only warns, on every task run). Each fetch is bounded by its source deadline instead,
    which the HTTP client enforces on every request.
    """
    delays = cfg.settings.get("task_retry_delays", [30, 120])
    return {"retries": int(cfg.settings.get("task_retries", len(delays))),
            "retry_delay_seconds": [float(d) for d in delays] or 0}


def load_config(config_path: str, base_url: str = "") -> config_mod.Config:
    """The registry, with the public base URL overridden when one is given."""
    cfg = config_mod.load(Path(config_path))
    if base_url:
        cfg.catalog["base_url"] = base_url.rstrip("/") + "/"
    return cfg


@task(name="validate-and-publish", cache_policy=NO_CACHE)
def publish_task(data_dir: str, config_path: str, dry_run: bool, run_id: str,
                 base_url: str = "", allow_mass_removal: bool = False) -> pipeline.RunResult:
    """Validate every package and publish them only if all are valid."""
    cfg = load_config(config_path, base_url)
    return pipeline.publish_all(cfg, cfg.paths(Path(data_dir)), dry_run=dry_run, run_id=run_id,
                                allow_mass_removal=allow_mass_removal)


def _steps(data_dir: str, config_path: str, online: bool | None, dry_run: bool,
           base_url: str, allow_mass_removal: bool = False, full: bool = False
           ) -> pipeline.RunResult:
    cfg = load_config(config_path, base_url)
    if online is None:  # scheduled runs: online exactly when credentials are configured
        online = has_credentials(cfg)
        get_run_logger().info("mode: %s", "online" if online else
                              "offline (no API credentials configured; newest raw snapshots)")
    get_run_logger().info("task runner: %s", describe_runner(cfg))
    fetch = fetch_task.with_options(**task_retries(cfg))
    futures = [fetch.submit(s.id, data_dir, config_path, online, full=full) for s in cfg.sources]
    fetched = [f.result() for f in futures]  # concurrently, at most fetch_concurrency at once
    run_id = str(flow_run.get_id() or "")
    result: pipeline.RunResult = publish_task(data_dir, config_path, dry_run, run_id, base_url,
                                              allow_mass_removal)
    result.fetched = [pipeline.FetchResult(f["source"], Path(f["snapshot"]) if f["snapshot"] else None,
                                           f["changed"], f["mode"], f["note"], f.get("info", ""))
                      for f in fetched]
    from flows import artifacts

    artifacts.publish_artifacts(result, cfg)
    if not dry_run:
        notify.releases(result.outcomes, cfg.published_url)
    return result


def task_runner(cfg: config_mod.Config) -> Any:
    """The task runner from [settings]: threads (default) or a Dask cluster (prefect-dask).

    ``task_runner = "dask"`` starts a local cluster of ``dask_workers`` worker processes, or
    connects to ``dask_address`` (e.g. ``tcp://scheduler:8786``) when one is configured.
    """
    kind = str(cfg.settings.get("task_runner", "threads"))
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigError(str(cfg.path), "settings", "task_runner = 'dask' needs the "
                              "prefect-dask package: pip install -e . (or pip install "
                              "prefect-dask)") from None

        address = str(cfg.settings.get("dask_address", "") or "")
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": int(cfg.settings.get("dask_workers", 2)),
                                              "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    if kind != "threads":
        raise ConfigError(str(cfg.path), "settings", f"task_runner must be 'threads' or 'dask', "
                          f"got {kind!r}")
    return ThreadPoolTaskRunner(max_workers=max(1, int(cfg.settings.get("fetch_concurrency", 4))))


def describe_runner(cfg: config_mod.Config) -> str:
    """One line for the log: which task runner a run uses."""
    if str(cfg.settings.get("task_runner", "threads")) == "dask":
        address = str(cfg.settings.get("dask_address", "") or "")
        return f"dask cluster at {address}" if address else \
            f"dask, local cluster with {int(cfg.settings.get('dask_workers', 2))} worker processes"
    return f"threads (at most {int(cfg.settings.get('fetch_concurrency', 4))} fetches at once)"


def _failed(paths: Paths, started: str, exc: Exception) -> None:
    """Record a failed run in the run log (for `opendata status`) and notify the webhook."""
    msg = redact(exc.message if isinstance(exc, OpendataError) else f"{type(exc).__name__}: {exc}")
    code = exc.exit_code if isinstance(exc, OpendataError) else 1
    runlog.append_failure(paths, {"command": "run", "started": started,
                                  "finished": runlog.now_iso(), "outcome": "failed",
                                  "exit_code": code, "error": msg[:500]})
    notify.failure(msg, "run", code)
    setattr(exc, "opendata_recorded", True)  # noqa: B010 - the CLI must not record it again


@flow(name="nightly", log_prints=True)
def nightly(data_dir: str = "data", config_path: str = "", online: bool | None = None,
            dry_run: bool = False, base_url: str = "",
            allow_mass_removal: bool = False, full: bool = False) -> pipeline.RunResult:
    """Fetch all sources, validate, and publish new releases (one run at a time per data dir).

    ``allow_mass_removal``: publish even when a resource would lose more than
    ``max_removed_share`` of its rows (the guard stops the run otherwise). ``full``: download
    every GENESIS table, even one whose metadata says it is unchanged (see recheck_days).
    """
    config_path = config_path or str(config_mod.CONFIG_FILE)
    paths, started = Paths(Path(data_dir)), runlog.now_iso()
    try:
        paths = load_config(config_path).paths(Path(data_dir))  # the config's namespace
        with pipeline_lock(paths.lock_file):
            result = _steps(data_dir, config_path, online, dry_run, base_url, allow_mass_removal,
                            full)
        if not dry_run:
            runlog.append(paths, {"command": "run", "started": started,
                                  "finished": runlog.now_iso(), "outcome": "success",
                                  "exit_code": 0, "error": "",
                                  "warnings": [redact(f.note) for f in result.fetched if f.note]})
    except LockError as exc:
        get_run_logger().warning("skipped: %s", exc.message)
        raise
    except Exception as exc:
        err = StorageError.from_oserror(exc, paths.data_dir) if is_file_error(exc) else exc
        if not dry_run:
            _failed(paths, started, err)
        if err is not exc:
            raise err from None  # the clear message, exit code 4
        raise
    return result
