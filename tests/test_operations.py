"""Operational failures as real processes: file system errors (a full disk, a path in the way), a
failure handler that cannot write, a hung service against the source deadline, and a killed run
that must not leave its temporary Prefect server behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, SilentServer, copy_config, copy_raw, edit_city_cell, opendata
from pytest_httpserver import HTTPServer

from opendata import config as config_mod
from opendata import notify, store

APIS = ("genesis", "regionalstatistik", "zensus")


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the committed raw snapshots plus the city's tables, nothing published."""
    data = copy_raw(tmp_path_factory.mktemp("ops") / "data")
    res = opendata("fetch", "-q", "--data-dir", str(data))
    assert res.returncode == 0, res.stderr[-2000:]
    return data


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    """A statistics service that accepts connections and never answers."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _copy(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


def _hook(httpserver: HTTPServer) -> dict[str, str]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return {notify.WEBHOOK_ENV: httpserver.url_for("/hook")}


def _webhook_bodies(httpserver: HTTPServer) -> list[dict[str, object]]:
    return [json.loads(r.get_data(as_text=True)) for r, _ in httpserver.log if r.path == "/hook"]


def _last_run(data: Path) -> dict[str, object]:
    lines = (data / "state" / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    return dict(json.loads(lines[-1]))


def _failing(data: Path) -> bool:
    res = opendata("status", "--json", "--data-dir", str(data))
    return bool(json.loads(res.stdout)["failing"])


def _served_leftovers(published: Path) -> list[str]:
    """Temporary or hidden files and folders anywhere in the served tree."""
    return sorted(p.relative_to(published).as_posix() for p in published.rglob("*")
                  if p.name.startswith(".") or p.name.endswith(".tmp") or "staging" in p.name)


# --- file system errors ---------------------------------------------------------------------------

def test_file_system_error_in_a_run_is_a_clear_failure(fetched: Path, tmp_path: Path,
                                                        httpserver: HTTPServer) -> None:
    """A path in the way (works as root too, unlike chmod): exit 4, a message, run log, status,
    webhook; no traceback."""
    data = _copy(fetched, tmp_path / "data")
    (data / "published").write_text("BEISPIEL: a file where the published folder belongs\n")
    res = opendata("run", "--data-dir", str(data), env=_hook(httpserver))
    assert res.returncode == 4, res.stderr[-3000:]
    assert "Traceback" not in res.stderr + res.stdout
    target = data / "published" / "integration_statistics"
    assert f"error: could not write {target}: a part of the path is a file" in res.stderr
    assert "free of" in res.stderr and "How to fix: move that file" in res.stderr
    last = _last_run(data)
    assert last["outcome"] == "failed" and last["exit_code"] == 4
    assert "could not write" in str(last["error"])
    assert _failing(data)
    [body] = _webhook_bodies(httpserver)
    assert body["event"] == "failure" and body["exit_code"] == 4 and body["command"] == "run"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions; the test above covers "
                    "the same path with a file in the way")
def test_read_only_published_folder_is_a_clear_failure(fetched: Path, tmp_path: Path) -> None:
    data = _copy(fetched, tmp_path / "data")
    (data / "published").mkdir()
    (data / "published").chmod(0o555)
    try:
        res = opendata("publish", "-q", "--data-dir", str(data))
    finally:
        (data / "published").chmod(0o755)
    assert res.returncode == 4, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert f"could not write {data / 'published'}" in res.stderr
    assert "permission denied" in res.stderr and "free of" in res.stderr
    assert _last_run(data)["exit_code"] == 4 and _failing(data)


def test_full_disk_during_the_site_write_is_reported_and_retried(fetched: Path, tmp_path: Path,
                                                                 httpserver: HTTPServer) -> None:
    """ENOSPC (test hook) while writing catalog.ttl after the releases: exit 4, no temporary file
    in the served tree, `status` failing; the next publish writes the site and is healthy again."""
    data = _copy(fetched, tmp_path / "data")
    env = _hook(httpserver) | {store.ENOSPC_ENV: "catalog.ttl"}
    res = opendata("publish", "-q", "--data-dir", str(data), env=env)
    assert res.returncode == 4, res.stderr[-3000:]
    assert "Traceback" not in res.stderr + res.stdout
    assert f"could not write {data / 'published' / 'catalog.ttl'}: the disk is full" in res.stderr
    assert "free of" in res.stderr
    published = data / "published"
    assert (published / "integration_measures" / "1.0.0").is_dir()  # released before the site
    assert not (published / "catalog.ttl").exists()
    assert _served_leftovers(published) == []
    assert not [p for p in (data / "state" / "tmp").iterdir() if p.name.endswith(".tmp")]
    assert _failing(data)
    assert _webhook_bodies(httpserver)[-1]["exit_code"] == 4
    again = opendata("publish", "-q", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1.0.0" in (published / "catalog.ttl").read_text(encoding="utf-8")
    assert not _failing(data)
    assert _served_leftovers(published) == []


@pytest.mark.parametrize("command", ["publish", "run"])
def test_a_failure_handler_that_cannot_write_keeps_the_original_error(
        command: str, fetched: Path, tmp_path: Path, httpserver: HTTPServer) -> None:
    """runs.jsonl cannot be written (a folder is in its place): the user still sees the
    validation failure and exit 1, plus a warning; the webhook still fires."""
    data = _copy(fetched, tmp_path / "data")
    cfg = copy_config(tmp_path / "config")
    edit_city_cell(cfg, "status", "vielleicht")  # not a known status: a validation error
    assert opendata("fetch", "-q", "--data-dir", str(data), "--config", str(cfg)).returncode == 0
    (data / "state" / "runs.jsonl").mkdir(parents=True)
    args = ["run", "--offline"] if command == "run" else ["publish"]
    res = opendata(*args, "--data-dir", str(data), "--config", str(cfg), env=_hook(httpserver))
    assert res.returncode == 1, res.stderr[-3000:]
    assert "error: validation failed, nothing was published" in res.stderr
    assert f"could not record this failed run in {data / 'state' / 'runs.jsonl'}" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    [body] = _webhook_bodies(httpserver)
    assert body["exit_code"] == 1 and "validation failed" in str(body["error"])


# --- a hung service -------------------------------------------------------------------------------

def _settings(cfg: Path, **values: str) -> None:
    text = cfg.read_text(encoding="utf-8")
    for key, value in values.items():
        start = text.index(f"\n{key} = ") + 1
        end = text.index("\n", start)
        text = text[:start] + f"{key} = {value}" + text[end:]
    cfg.write_text(text, encoding="utf-8")


def _online_env(server: SilentServer) -> dict[str, str]:
    env = {f"OPENDATA_{api.upper()}_BASE_URL": server.url("/rest/") for api in APIS}
    return env | {"REGIONALSTATISTIK_TOKEN": "fake-token-for-the-test"}


def test_a_service_that_never_answers_fails_at_the_source_deadline(
        silent: SilentServer, fetched: Path, tmp_path: Path) -> None:
    """Without the deadline this setup makes 12 attempts per source (4 HTTP x 3 task attempts);
    with a deadline of 8 s each source (fetched in parallel) gives up after at most two, and the
    run exits 3."""
    cfg = copy_config(tmp_path / "config")
    _settings(cfg, timeout="5.0", retries="4", backoff="2.0", task_retries="2",
              task_retry_delays="[0, 0]", source_deadline="8.0")
    data = _copy(fetched, tmp_path / "data")
    res = opendata("run", "--online", "--data-dir", str(data), "--config", str(cfg),
                   env=_online_env(silent), timeout=240)
    assert res.returncode == 3, res.stderr[-3000:]
    assert "fetch failed for source 'population_kreise'" in res.stderr
    assert "source deadline of 8 s" in res.stderr and "raise source_deadline" in res.stderr
    online = [s for s in config_mod.load(cfg).sources if s.kind == "genesis"]
    assert 1 <= len(silent.connections) <= 2 * len(online)  # not 12 per source
    assert "Traceback" not in res.stderr
    assert _last_run(data)["exit_code"] == 3


# --- a killed run leaves no process behind --------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait(check: object, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if callable(check) and check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_run_leaves_no_prefect_server_behind(silent: SilentServer, fetched: Path,
                                                    tmp_path: Path) -> None:
    data = _copy(fetched, tmp_path / "data")
    env = dict(os.environ) | _online_env(silent)
    run = subprocess.Popen([sys.executable, "-m", "flows", "run", "--online", "--data-dir",
                            str(data)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    server: list[int] = []
    try:
        def started() -> bool:
            server[:] = [c for c in _children(run.pid) if "uvicorn" in _cmdline(c)]
            return bool(server)

        assert _wait(started, 180), "no temporary Prefect server was started"
        args = _cmdline(server[0])
        port = int(args[args.index("--port") + 1])
        assert _wait(lambda: _healthy(port), 180), "the temporary server never answered"
        assert _wait(lambda: bool(silent.connections), 180), "the run never reached the fetch"
        assert run.poll() is None, "the run ended before it could be killed"
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=60) == -signal.SIGKILL
        assert _wait(lambda: not _alive(server[0]), 60), "the Prefect server outlived the run"
        assert not _healthy(port)
    finally:
        if run.poll() is None:
            run.kill()
        for pid in server:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
