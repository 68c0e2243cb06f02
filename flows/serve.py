"""`opendata serve`: register the `nightly` deployment with its schedule and execute its runs."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from prefect.schedules import Cron

from opendata.config import Config
from opendata.paths import Paths

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TZ = "Europe/Berlin"


def schedule(cfg: Config, cron: str | None = None, timezone: str | None = None) -> Any:
    """The nightly Cron schedule (02:00 Europe/Berlin unless configured otherwise)."""
    sched = cfg.raw.get("schedule", {})
    return Cron(cron or sched.get("cron", DEFAULT_CRON),
                timezone=timezone or sched.get("timezone", DEFAULT_TZ))


def _who(cfg: Config) -> str:
    """The municipality a deployment serves, for its description."""
    return cfg.municipality.name if cfg.municipality else str(cfg.catalog["publisher_name"])


def serve(cfg: Config, paths: Paths, *, cron: str | None = None, timezone: str | None = None,
          online: bool | None = None, base_url: str = "") -> None:
    """Serve the deployment; global_limit=1 makes an overdue run wait instead of overlapping.

    With ``[settings] warm_start`` (default true) each run starts in a process that was started
    and imported before the run was due (flows/warm.py).
    """
    from flows.nightly import nightly, task_runner
    from flows.warm import warm_starts

    params = {"data_dir": str(paths.data_dir.resolve()), "config_path": str(cfg.path.resolve()),
              "online": online,  # None: decided per run by whether credentials are configured
              "base_url": base_url}
    flow = nightly.with_options(task_runner=task_runner(cfg))
    name = f"nightly-{cfg.namespace}" if cfg.namespace else "nightly"  # one per municipality
    with warm_starts() if warm_start(cfg) else nullcontext():
        flow.serve(name=name, schedules=[schedule(cfg, cron, timezone)], parameters=params,
                   global_limit=1,
                   description=f"Fetch, validate and publish the open data of {_who(cfg)}")


def warm_start(cfg: Config) -> bool:
    """Whether served runs start in a ready process ([settings] warm_start, default true)."""
    value = cfg.settings.get("warm_start", True)
    if not isinstance(value, bool):
        from opendata.errors import ConfigError

        raise ConfigError(str(cfg.path), "settings", f"'warm_start' must be true or false, "
                          f"got {value!r}")
    return value
