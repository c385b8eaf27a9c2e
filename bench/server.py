"""The local AWS for benchmarks: the project's patched moto server, counting every API call.

Calls are counted on the server, at the HTTP layer, so that every client is seen (the
deployer's, the baseline's, anything they start) without a hook in the code measured.
For each call the server also works out how many pages AWS would have needed to answer
it: the emulator ignores ``MaxResults`` on some list operations and returns everything
in one page, which would make a read count on a large fleet look better than it is. The
AWS page size comes from the botocore service model (the ``MaxResults`` maximum, or the
caller's smaller value) and the item count from the response, parsed by botocore.

``python -m bench.server --ready-file F [--watch-pid P]`` serves it (the same
``localaws.server`` process, its app wrapped); ``BenchServer`` starts one for the
duration of a ``with`` block. ``GET /_bench/calls`` returns the counts since the last
``POST /_bench/calls/reset``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

from deploy.common.clients import is_read

CALLS_PATH = "/_bench/calls"
RESET_PATH = "/_bench/calls/reset"
_UNCOUNTED_PREFIXES = ("/moto-api", "/_local/", "/_bench/")
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- page arithmetic


class PageModel:
    """What botocore knows about paginated operations: result key and AWS's largest page."""

    def __init__(self) -> None:
        import botocore.session

        self._session = botocore.session.get_session()
        self._cache: dict[tuple[str, str], tuple | None] = {}
        self._lock = threading.Lock()

    def lookup(self, service: str, operation: str):
        """(operation model, result key, limit key, AWS max page) or None when not paginated by a limit."""
        key = (service, operation)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._load(service, operation)
            return self._cache[key]

    def _load(self, service: str, operation: str):
        try:
            model = self._session.get_service_model(service)
            paginators = self._session.get_paginator_model(service)
            config = paginators.get_paginator(operation)
            op_model = model.operation_model(operation)
        except Exception:  # unknown service/operation or no paginator: count one page
            return None
        limit_key = config.get("limit_key")
        result_key = config.get("result_key")
        if not limit_key or not isinstance(result_key, str) or not op_model.input_shape:
            return None
        limit_shape = op_model.input_shape.members.get(limit_key)
        largest = limit_shape.metadata.get("max") if limit_shape is not None else None
        if not largest:
            return None
        return op_model, result_key, limit_key, int(largest)


def aws_pages(items: int, requested: int | None, largest: int) -> int:
    """Pages AWS needs to return ``items`` at the caller's page size (capped at AWS's largest)."""
    size = min(requested or largest, largest)
    return max(1, math.ceil(items / size))


# --------------------------------------------------------------------------- counting middleware


class CallLog:
    """Thread-safe counts of calls and AWS-page equivalents, by ``service.Operation``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: Counter = Counter()
            self.pages: Counter = Counter()
            self.items: Counter = Counter()

    def record(self, key: str, pages: int, items: int | None) -> None:
        with self._lock:
            self.calls[key] += 1
            self.pages[key] += pages
            if items is not None:
                self.items[key] += items

    def snapshot(self) -> dict:
        with self._lock:
            return {"calls": dict(self.calls), "aws_pages": dict(self.pages), "items": dict(self.items)}


def _service_of(environ) -> str:
    """The signing name in the SigV4 credential scope: ``.../us-east-1/cloudformation/aws4_request``."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            return scope[3]
    return "unknown"


def _operation_of(environ, body: bytes) -> tuple[str, dict]:
    """(operation name, request parameters) for JSON, query and REST protocols."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    form = {}
    if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    action = form.get("Action") or query.get("Action")
    if action:
        return action, {**query, **form}
    # REST protocols (S3...): no operation name on the wire; classify by method.
    method = environ.get("REQUEST_METHOD", "GET")
    return ("GetREST" if method in ("GET", "HEAD") else f"{method.title()}REST"), query


def _access_key_of(environ) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    return auth.split(marker, 1)[1].split("/", 1)[0] if marker in auth else None


def counting_app(app, log: CallLog, pages: PageModel):
    """Wrap a WSGI app: count each AWS call, serve the counts at ``/_bench/calls``.

    Requests signed with the local AWS's dummy key get moto's ``x-moto-account-id``
    header set to the account moto would find anyway (its default account: the dummy key
    belongs to no account). moto finds it by scanning the IAM backend of every account,
    which costs time in proportion to the fleet on every request; with the header the
    answer is the same and the cost of a call no longer depends on the fleet size, as on AWS.
    """
    from botocore.parsers import create_parser
    from moto.core import DEFAULT_ACCOUNT_ID

    from localaws import DUMMY_CREDENTIALS

    dummy_key = DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]

    def respond(start_response, payload: dict):
        data = json.dumps(payload).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
            log.reset()
            return respond(start_response, {"reset": True})
        if path == CALLS_PATH:
            return respond(start_response, log.snapshot())
        if path.startswith(_UNCOUNTED_PREFIXES):
            return app(environ, start_response)

        if _access_key_of(environ) == dummy_key and "HTTP_X_MOTO_ACCOUNT_ID" not in environ:
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = DEFAULT_ACCOUNT_ID
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service = _service_of(environ)
        operation, params = _operation_of(environ, body)
        paging = pages.lookup(service, operation)
        if paging is None:
            log.record(f"{service}.{operation}", 1, None)
            return app(environ, start_response)

        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        chunks = list(app(environ, capture))
        op_model, result_key, limit_key, largest = paging
        items = None
        try:
            status = int(str(captured.get("status", "500")).split()[0])
            if status < 300:
                parser = create_parser(op_model.metadata["protocol"])
                response = {
                    "status_code": status,
                    "headers": dict(captured.get("headers") or []),
                    "body": b"".join(chunks),
                }
                parsed = parser.parse(response, op_model.output_shape)
                items = len(parsed.get(result_key) or [])
        except Exception:  # an unparsable answer counts as one page
            items = None
        try:
            requested = int(params.get(limit_key)) if params.get(limit_key) is not None else None
        except (TypeError, ValueError):
            requested = None
        log.record(f"{service}.{operation}", aws_pages(items or 0, requested, largest), items)
        return chunks

    return wrapped


# --------------------------------------------------------------------------- counts seen by the bench


def summarise(snapshot: dict) -> dict:
    """Reads, writes and AWS-page-equivalent reads of a ``/_bench/calls`` snapshot."""
    calls, pages = snapshot["calls"], snapshot["aws_pages"]
    reads = sum(n for key, n in calls.items() if is_read(key.split(".", 1)[1]))
    writes = sum(n for key, n in calls.items() if not is_read(key.split(".", 1)[1]))
    read_pages = sum(n for key, n in pages.items() if is_read(key.split(".", 1)[1]))
    return {
        "reads": reads,
        "writes": writes,
        "calls": reads + writes,
        "aws_page_reads": read_pages,
        "aws_equivalent_calls": read_pages + writes,
        "by_operation": dict(sorted(calls.items())),
    }


class BenchServer:
    """A counting local AWS in a child process, for the duration of a ``with`` block."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.endpoint_url = ""
        self._dir = None

    def __enter__(self) -> BenchServer:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-aws-")
        ready = Path(self._dir.name) / "server.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        env.pop("MOTO_ACCOUNT_ID", None)
        command = [sys.executable, "-m", "bench.server", "--ready-file", str(ready), "--watch-pid", str(os.getpid())]
        log = open(Path(self._dir.name) / "server.log", "ab")  # closed with the process
        self._log = log
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self._dir.name
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bench server exited with status {self.process.returncode}: {self._tail()}")
            try:
                info = json.loads(ready.read_text())
                if info.get("pid") == self.process.pid:
                    self.endpoint_url = info["endpoint_url"]
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"bench server did not start within {self.timeout:.0f}s: {self._tail()}")

    def _tail(self) -> str:
        try:
            return (Path(self._dir.name) / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _request(self, path: str, method: str = "GET") -> dict:
        request = urllib.request.Request(
            f"{self.endpoint_url}{path}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def reset_counts(self) -> None:
        self._request(RESET_PATH, "POST")

    def counts(self) -> dict:
        return self._request(CALLS_PATH)

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def reset_state(self) -> None:
        """Forget every resource on the server (moto's reset), as a fresh server would."""
        self._request("/moto-api/reset", "POST")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--watch-pid", type=int)
    args = parser.parse_args(argv)

    from localaws import server as local_server

    log, pages = CallLog(), PageModel()
    build_app = local_server.build_app
    local_server.build_app = lambda nonce=None: counting_app(build_app(nonce), log, pages)
    local_server.serve("127.0.0.1", args.port, args.ready_file, args.watch_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
