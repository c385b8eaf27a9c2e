"""The local AWS server process: moto in-process, patched, on a loopback port.

Run as a process of its own, started (detached) by :mod:`localaws.lifecycle` for ``local up``,
the demo and the tests.

``python -m localaws.server [--port P] [--ready-file F] [--watch-pid PID]`` applies
every patch of ``localaws.patches`` to moto's backends, then serves moto's WSGI app
on 127.0.0.1 (port 0, the default, lets the kernel pick a free port: no race between
choosing a port and binding it). Once listening it writes ``{"pid", "port",
"endpoint_url"}`` to the ready file, which is how ``local up`` learns the port.
``GET /_local/health`` answers with the pid and the applied patches, so a client can tell
this server from any other process on the port; ``POST /_local/control/<patch>?k=v`` sets
a patch's run-time options (see ``localaws.patches``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from pathlib import Path

HEALTH_PATH = "/_local/health"
CONTROL_PATH = "/_local/control/"
IDENTIFY_PATH = "/_local/identify"


def identity_proof(nonce: str, challenge: str) -> str:
    """What only the holder of ``nonce`` can answer to ``challenge`` (HMAC-SHA256)."""
    return hmac.new(nonce.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def _local_routes(app, patches: list[str], nonce: str | None = None):
    """Answer /_local/health, /_local/identify and /_local/control/<patch>; pass everything else to moto.

    ``/_local/identify?challenge=C`` answers the pid and ``identity_proof(nonce, C)``: the
    nonce is in the ready file (readable by its owner only), so ``local down`` can tell this
    server from any process that merely names it on its command line or took over the port.
    """
    import moto

    from localaws.patches import CONTROLS

    health = {"server": "localaws", "pid": os.getpid(), "moto": moto.__version__, "patches": patches}

    def respond(start_response, status: str, body: dict):
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            return respond(start_response, "200 OK", health)
        if path == IDENTIFY_PATH and nonce:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            challenge = (query.get("challenge") or [""])[-1]
            if len(challenge) < 16:
                return respond(start_response, "400 Bad Request", {"error": "a challenge of 16+ characters is needed"})
            return respond(start_response, "200 OK", {"pid": os.getpid(), "proof": identity_proof(nonce, challenge)})
        if path.startswith(CONTROL_PATH):
            control = CONTROLS.get(path[len(CONTROL_PATH) :])
            if control is None:
                return respond(
                    start_response,
                    "404 Not Found",
                    {"error": f"no control named {path[len(CONTROL_PATH) :]!r}", "controls": sorted(CONTROLS)},
                )
            values = {key: items[-1] for key, items in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
            try:
                return respond(start_response, "200 OK", control(values))
            except (ValueError, TypeError) as error:
                return respond(start_response, "400 Bad Request", {"error": str(error)})
        return app(environ, start_response)

    return wrapped


def build_app(nonce: str | None = None):
    """moto's WSGI app with every local patch applied, plus the health and identify endpoints."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from localaws.patches import apply_all

    patches = apply_all()
    return _local_routes(DomainDispatcherApplication(create_backend_app), patches, nonce)


def _write_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the identity nonce
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _exit_when_gone(pid: int) -> None:
    """Stop this server when the process that started it is gone (a killed test run)."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except PermissionError:
            pass


def serve(host: str = "127.0.0.1", port: int = 0, ready_file: Path | None = None, watch_pid: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT; remove the ready file on the way out."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    nonce = secrets.token_hex(32)
    server = make_server(host, port, build_app(nonce), threaded=True, request_handler=MotoRequestHandler)
    bound_port = server.server_address[1]
    info = {
        "pid": os.getpid(),
        "host": host,
        "port": bound_port,
        "endpoint_url": f"http://{host}:{bound_port}",
        "nonce": nonce,
    }

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if watch_pid:
        threading.Thread(target=_exit_when_gone, args=(watch_pid,), daemon=True).start()
    if ready_file:
        _write_atomically(ready_file, info)
    print(f"local AWS listening on {info['endpoint_url']} (pid {info['pid']})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if ready_file:
            try:
                if json.loads(ready_file.read_text()).get("pid") == os.getpid():
                    ready_file.unlink()
            except (OSError, ValueError):
                pass


def _loopback(value: str) -> str:
    if not ipaddress.ip_address(value).is_loopback:
        raise argparse.ArgumentTypeError(
            f"{value} is not a loopback address: the local AWS accepts any credentials, keep it on 127.0.0.1"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name if __spec__ else 'localaws.server'}", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--host", type=_loopback, default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free port)")
    parser.add_argument("--ready-file", type=Path, help="write {pid, port, endpoint_url} here once listening")
    parser.add_argument("--watch-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.ready_file, args.watch_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
