"""The `nightly` Prefect flow: fetch → validate → publish. Thin: it only wires library calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run
from prefect.tasks import Task

from opendata import config as config_mod
from opendata import notify, pipeline, runlog
from opendata.errors import LockError, OpendataError, TransientFetchError
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
      retry_condition_fn=transient_only, timeout_seconds=3600, cache_policy=NO_CACHE)
def fetch_task(source_id: str, data_dir: str, config_path: str, online: bool) -> dict[str, Any]:
    """Fetch one source and snapshot it if its content changed."""
    cfg = config_mod.load(Path(config_path))
    res = pipeline.fetch_source(cfg.source(source_id), cfg, cfg.paths(Path(data_dir)), online=online)
    if res.note:
        get_run_logger().warning(res.note)
    else:
        get_run_logger().info("%s: %s snapshot %s", source_id, "new" if res.changed else "same",
                              res.snapshot.name if res.snapshot else "-")
    return {"source": res.source, "snapshot": str(res.snapshot or ""), "changed": res.changed,
            "mode": res.mode, "note": res.note}


def task_retries(cfg: config_mod.Config) -> dict[str, Any]:
    """Task-level retries of a fetch (on top of the HTTP retries), from [settings]."""
    delays = cfg.settings.get("task_retry_delays", [30, 120])
    return {"retries": int(cfg.settings.get("task_retries", len(delays))),
            "retry_delay_seconds": [float(d) for d in delays] or 0,
            "timeout_seconds": float(cfg.settings.get("task_timeout", 3600))}


def load_config(config_path: str, base_url: str = "") -> config_mod.Config:
    """The registry, with the public base URL overridden when one is given."""
    cfg = config_mod.load(Path(config_path))
    if base_url:
        cfg.catalog["base_url"] = base_url.rstrip("/") + "/"
    return cfg


@task(name="validate-and-publish", timeout_seconds=3600, cache_policy=NO_CACHE)
def publish_task(data_dir: str, config_path: str, dry_run: bool, run_id: str,
                 base_url: str = "", allow_mass_removal: bool = False) -> pipeline.RunResult:
    """Validate every package and publish them only if all are valid."""
    cfg = load_config(config_path, base_url)
    return pipeline.publish_all(cfg, cfg.paths(Path(data_dir)), dry_run=dry_run, run_id=run_id,
                                allow_mass_removal=allow_mass_removal)


def _steps(data_dir: str, config_path: str, online: bool | None, dry_run: bool,
           base_url: str, allow_mass_removal: bool = False) -> pipeline.RunResult:
    cfg = load_config(config_path, base_url)
    if online is None:  # scheduled runs: online exactly when credentials are configured
        online = has_credentials(cfg)
        get_run_logger().info("mode: %s", "online" if online else
                              "offline (no API credentials configured; newest raw snapshots)")
    fetch = fetch_task.with_options(**task_retries(cfg))
    fetched = [fetch(s.id, data_dir, config_path, online) for s in cfg.sources]
    run_id = str(flow_run.get_id() or "")
    result: pipeline.RunResult = publish_task(data_dir, config_path, dry_run, run_id, base_url,
                                              allow_mass_removal)
    result.fetched = [pipeline.FetchResult(f["source"], Path(f["snapshot"]) if f["snapshot"] else None,
                                           f["changed"], f["mode"], f["note"]) for f in fetched]
    from flows import artifacts

    artifacts.publish_artifacts(result, cfg)
    if not dry_run:
        notify.releases(result.outcomes, cfg.published_url)
    return result


def _failed(paths: Paths, started: str, exc: Exception) -> None:
    """Record a failed run in the run log (for `opendata status`) and notify the webhook."""
    msg = redact(exc.message if isinstance(exc, OpendataError) else f"{type(exc).__name__}: {exc}")
    code = exc.exit_code if isinstance(exc, OpendataError) else 1
    runlog.append(paths, {"command": "run", "started": started, "finished": runlog.now_iso(),
                          "outcome": "failed", "exit_code": code, "error": msg[:500]})
    notify.failure(msg, "run", code)
    setattr(exc, "opendata_recorded", True)  # noqa: B010 - the CLI must not record it again


@flow(name="nightly", log_prints=True)
def nightly(data_dir: str = "data", config_path: str = "", online: bool | None = None,
            dry_run: bool = False, base_url: str = "",
            allow_mass_removal: bool = False) -> pipeline.RunResult:
    """Fetch all sources, validate, and publish new releases (one run at a time per data dir).

    ``allow_mass_removal``: publish even when a resource would lose more than
    ``max_removed_share`` of its rows (the guard stops the run otherwise).
    """
    config_path = config_path or str(config_mod.CONFIG_FILE)
    paths, started = Paths(Path(data_dir)), runlog.now_iso()
    try:
        paths = load_config(config_path).paths(Path(data_dir))  # the config's namespace
        with pipeline_lock(paths.lock_file):
            result = _steps(data_dir, config_path, online, dry_run, base_url, allow_mass_removal)
    except LockError as exc:
        get_run_logger().warning("skipped: %s", exc.message)
        raise
    except Exception as exc:
        if not dry_run:
            _failed(paths, started, exc)
        raise
    if not dry_run:
        runlog.append(paths, {"command": "run", "started": started, "finished": runlog.now_iso(),
                              "outcome": "success", "exit_code": 0, "error": "",
                              "warnings": [redact(f.note) for f in result.fetched if f.note]})
    return result
