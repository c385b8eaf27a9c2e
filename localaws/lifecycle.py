"""Start, find and stop the local AWS server process; the one code path of ``local up``
(:mod:`localaws.cli`), the pytest fixture (``tests/conftest.py``) and the demo
(:mod:`localaws.demo`).

The server runs detached (its own session), logs to ``<state dir>/server.log``, and is
known by ``<state dir>/server.pid`` plus ``server.json`` (pid, port, endpoint). ``stop``
signals a pid only after checking that its command line is our server module with our
ready file: a stale pid file reused by another process is never killed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.common.errors import DeployError
from localaws import DEFAULT_REGION, DUMMY_CREDENTIALS, SERVER_MODULE, STATE_DIR
from localaws.server import HEALTH_PATH

PID_FILE, READY_FILE, LOG_FILE, STATE_FILE = "server.pid", "server.json", "server.log", "state.json"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the project (localaws/ is top-level since the move)


class LocalAWSError(DeployError):
    """The local server could not be started, reached or stopped."""


@dataclass
class ServerInfo:
    pid: int
    port: int
    endpoint_url: str
    state_dir: Path


def state_dir_path(state_dir: str | Path | None = None) -> Path:
    return Path(state_dir or os.environ.get("LOCAL_AWS_STATE_DIR") or STATE_DIR).resolve()


def _cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` (None when gone, a zombie, or not readable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:  # no procfs (macOS): ps prints the command line
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return None
    return out.split() or None


def is_our_server(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is a ``localaws.server`` process started for ``state_dir``."""
    argv = _cmdline(pid)
    if not argv:
        return False
    return SERVER_MODULE in argv and str(state_dir / READY_FILE) in argv


def _health(endpoint_url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"{endpoint_url}{HEALTH_PATH}", timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def running_server(state_dir: str | Path | None = None) -> ServerInfo | None:
    """The server recorded in ``state_dir`` if it is alive, ours and healthy."""
    state_dir = state_dir_path(state_dir)
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
        info = json.loads((state_dir / READY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if info.get("pid") != pid or not is_our_server(pid, state_dir):
        return None
    health = _health(info["endpoint_url"])
    if not health or health.get("pid") != pid:
        return None
    return ServerInfo(pid=pid, port=int(info["port"]), endpoint_url=info["endpoint_url"], state_dir=state_dir)


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        return "\n".join((state_dir / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(
    state_dir: str | Path | None = None, port: int = 0, watch_pid: int | None = None, timeout: float = 60.0
) -> ServerInfo:
    """Start a detached server for ``state_dir`` and wait until it answers its health check.

    Raises LocalAWSError when a server of this state dir is already running (use
    ``running_server`` first), or when it does not come up within ``timeout`` seconds.
    """
    if importlib.util.find_spec("moto") is None:
        raise LocalAWSError("the local AWS needs moto: pip install 'sagemaker-stackset-deploy[local]'")
    state_dir = state_dir_path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    if running_server(state_dir):
        raise LocalAWSError(
            f"a local AWS server is already running for {state_dir}: `python -m deploy local down` first"
        )
    for name in (PID_FILE, READY_FILE, STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)
    ready = state_dir / READY_FILE
    command = [sys.executable, "-m", SERVER_MODULE, "--port", str(port), "--ready-file", str(ready)]
    if watch_pid:
        command += ["--watch-pid", str(watch_pid)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.pop("MOTO_ACCOUNT_ID", None)  # it would pin every request, assumed roles included, to one account
    with open(state_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(state_dir),
            start_new_session=True,
        )
    (state_dir / PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (state_dir / PID_FILE).unlink(missing_ok=True)
            raise LocalAWSError(
                f"the local AWS server exited with status {process.returncode}; "
                f"last lines of {state_dir / LOG_FILE}:\n{_log_tail(state_dir)}"
            )
        info = running_server(state_dir)
        if info:
            return info
        time.sleep(0.1)
    _terminate(process.pid, state_dir)
    raise LocalAWSError(
        f"the local AWS server did not answer within {timeout:.0f}s; "
        f"last lines of {state_dir / LOG_FILE}:\n{_log_tail(state_dir)}"
    )


def _gone(pid: int, state_dir: Path) -> bool:
    try:  # reap it if it is our child, so it does not linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    return not is_our_server(pid, state_dir)


def _terminate(pid: int, state_dir: Path, timeout: float = 15.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if _gone(pid, state_dir):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(pid, state_dir):
                return
            time.sleep(0.05)
    raise LocalAWSError(f"the local AWS server (pid {pid}) did not stop")


def stop(state_dir: str | Path | None = None) -> str:
    """Stop the server recorded in ``state_dir``; return what happened, in one sentence.

    Only a pid whose command line is our server for this state dir is signalled; a stale
    pid file is removed and its pid left alone.
    """
    state_dir = state_dir_path(state_dir)
    pid_file = state_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        return f"no local AWS server recorded in {state_dir}: nothing to stop"
    except (OSError, ValueError):
        pid = None
    if pid is None or not is_our_server(pid, state_dir):
        _forget(state_dir)
        return (
            f"the pid file {pid_file} named {pid if pid is not None else 'no valid pid'}, which is not our server: "
            "removed the stale file, signalled nothing"
        )
    _terminate(pid, state_dir)
    _forget(state_dir)
    return f"stopped the local AWS server (pid {pid})"


def _forget(state_dir: Path) -> None:
    for name in (PID_FILE, READY_FILE, STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)


def read_state(state_dir: str | Path | None = None) -> dict | None:
    try:
        return json.loads((state_dir_path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def environment(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """The environment that points boto3 (and so every deploy command) at the local server."""
    return {"AWS_ENDPOINT_URL": endpoint_url, **DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}


# Variables that could make a client use a real profile or token instead of the dummy keys.
UNSET_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")


@contextmanager
def environment_set(values: dict[str, str], unset: tuple[str, ...] = ()):
    """Set ``values`` and remove ``unset`` in os.environ for the block, then restore both."""
    saved = {key: os.environ.get(key) for key in [*values, *unset]}
    os.environ.update(values)
    for key in unset:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {key}={value}" for key, value in env.items()] + [f"unset {' '.join(UNSET_VARIABLES)}"]


def up(
    state_dir: str | Path | None = None, port: int = 0, org_file: str | Path | None = None, watch_pid: int | None = None
) -> tuple[dict, bool]:
    """Start and seed a server unless one runs for ``state_dir``; return (state, started).

    The org file is checked before anything starts (bad input: InputError, nothing runs).
    A server that fails to seed is stopped again.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from localaws.seed import DEFAULT_ORG_FILE, load_org_file, seed, write_state

    org_file = Path(org_file or DEFAULT_ORG_FILE)
    spec = load_org_file(org_file)
    state_dir = state_dir_path(state_dir)
    existing = running_server(state_dir)
    if existing:
        state = read_state(state_dir)
        if state is None:
            raise LocalAWSError(
                f"a local AWS server runs for {state_dir} (pid {existing.pid}) but was never seeded: "
                "`python -m deploy local down`, then `up` again"
            )
        return state, False
    info = start(state_dir, port=port, watch_pid=watch_pid)
    try:
        state = seed(info.endpoint_url, spec)
    except (ClientError, BotoCoreError, OSError) as error:
        stop(state_dir)
        raise LocalAWSError(f"seeding the local AWS from {org_file} failed: {error}") from error
    except BaseException:
        stop(state_dir)
        raise
    state.update({"pid": info.pid, "port": info.port, "org_file": str(org_file)})
    write_state(state_dir, state)
    return state, True
