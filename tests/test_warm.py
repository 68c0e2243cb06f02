"""Warm starts of served runs (flows/warm.py): real child processes, no mocks."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import warm_probe
from helpers import copy_config

from flows import warm
from flows.serve import warm_start
from opendata import config as config_mod
from opendata.errors import ConfigError


def test_call_runs_in_the_ready_process_after_its_imports(tmp_path: Path) -> None:
    child = warm.WarmChild(preload=("colorsys",))  # a module nothing else here imports
    out = tmp_path / "where.json"
    started = warm._Started(child, warm_probe.record, (str(out),))
    started.start()
    started.join(timeout=60)
    assert started.exitcode == 0
    found = json.loads(out.read_text(encoding="utf-8"))
    assert found == {"pid": child.process.pid, "preloaded": True}
    assert started.pid == child.process.pid  # Prefect sees the warm child as the run's process


def test_unused_child_exits_when_stopped() -> None:
    child = warm.WarmChild(preload=())
    assert child.alive()
    child.stop()
    assert child.process.exitcode == 0 and not child.alive()


def test_a_dead_child_is_not_used(tmp_path: Path) -> None:
    starter = warm.WarmStarter(preload=())
    starter.prepare()
    assert starter.child is not None
    os.kill(starter.child.process.pid, signal.SIGKILL)
    starter.child.process.join(timeout=30)
    assert starter._take() is None  # the run then starts in a new process, as without warm starts
    starter.prepare()  # and the next run gets a new ready child
    assert starter.child is not None and starter.child.alive()
    starter.close()
    assert starter.child is None


def test_context_hands_out_the_child_once() -> None:
    child = warm.WarmChild(preload=())
    ctx = warm._Context(child)
    first = ctx.Process(target=warm_probe.record, args=("unused",))
    second = ctx.Process(target=warm_probe.record, args=("unused",))
    assert isinstance(first, warm._Started) and ctx.taken
    assert not isinstance(second, warm._Started)  # a real, unstarted process
    child.stop()


def test_warm_starts_installs_and_restores_the_hook() -> None:
    from prefect.runner import _starter_direct

    before = _starter_direct.run_flow_in_subprocess
    with warm.warm_starts(preload=()) as starter:
        assert _starter_direct.run_flow_in_subprocess == starter.run_flow_in_subprocess
        assert starter.child is not None and starter.child.alive()
    assert _starter_direct.run_flow_in_subprocess is before
    assert starter.child is None


def test_warm_start_setting(tmp_path: Path) -> None:
    path = copy_config(tmp_path / "config")
    assert warm_start(config_mod.load(path)) is True  # the default config turns it on
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("warm_start = true", "warm_start = false"), encoding="utf-8")
    assert warm_start(config_mod.load(path)) is False
    path.write_text(text.replace("warm_start = true", 'warm_start = "yes"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="'warm_start' must be true or false"):
        warm_start(config_mod.load(path))


def test_a_child_that_died_after_it_was_taken_is_replaced(tmp_path: Path) -> None:
    """Between taking the child and handing it the call, it died: the call runs in a new process."""
    child = warm.WarmChild(preload=())
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.join(timeout=30)
    out = tmp_path / "where.json"
    started = warm._Started(child, warm_probe.record, (str(out),))
    started.start()
    started.join(timeout=60)
    assert started.exitcode == 0 and started.pid != child.process.pid
    assert json.loads(out.read_text(encoding="utf-8"))["pid"] == started.pid


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this flow")


def test_a_run_prefect_cannot_start_leaves_a_fresh_ready_process() -> None:
    starter = warm.WarmStarter(preload=())
    starter.prepare()
    first = starter.child
    assert first is not None
    with pytest.raises(TypeError, match="cannot pickle this flow"):
        starter.run_flow_in_subprocess(_Unpicklable(), parameters={})
    first.process.join(timeout=30)
    assert first.process.exitcode == 0  # the unused child was let go
    assert starter.child is not None and starter.child is not first and starter.child.alive()
    starter.close()


def test_without_prefects_hook_serve_runs_cold(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.runner import _starter_direct

    monkeypatch.delattr(_starter_direct, "run_flow_in_subprocess")
    with warm.warm_starts(preload=()) as starter:
        assert starter.child is None  # nothing started, nothing patched
    assert not hasattr(_starter_direct, "run_flow_in_subprocess")
