"""boto3 clients with the project's retry policy, and a counter of API calls.

Everything else in ``deploy`` obtains clients here. Endpoints, credentials and profiles
come from botocore's usual chain (``AWS_ENDPOINT_URL`` points every client at the local
emulator), retries from botocore's ``adaptive`` mode.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    user_agent_extra="sagemaker-stackset-deploy/0.1",
    connect_timeout=10,
    read_timeout=60,
)
# The first call of a command (STS: who am I?) fails fast when AWS cannot be reached at all (a stale
# AWS_ENDPOINT_URL, no network): a short connect timeout and one retry, so the user hears why
# within seconds instead of after ten backed-off attempts.
PROBE_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    user_agent_extra="sagemaker-stackset-deploy/0.1",
    connect_timeout=3,
    read_timeout=10,
)

# ``--profile`` and ``--region`` of the command line: every session made by ``new_session``.
_SESSION_DEFAULTS: dict[str, str] = {}


def configure_sessions(profile: str | None = None, region: str | None = None) -> None:
    """Make ``--profile``/``--region`` the defaults of every session (the AWS CLI's precedence:
    an explicit profile wins over credentials in the environment)."""
    _SESSION_DEFAULTS.clear()
    if profile:
        _SESSION_DEFAULTS["profile"] = profile
    if region:
        _SESSION_DEFAULTS["region"] = region


def chosen_region() -> str | None:
    """The ``--region`` of the command line, if one was given."""
    return _SESSION_DEFAULTS.get("region")


def new_session(region: str | None = None) -> boto3.session.Session:
    """A boto3 session with the command line's profile, in ``region`` (else ``--region``, else the chain's)."""
    return boto3.session.Session(
        profile_name=_SESSION_DEFAULTS.get("profile"), region_name=region or _SESSION_DEFAULTS.get("region")
    )


# Operation-name prefixes that only read. Everything else counts as a write.
_READ_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Search",
    "Detect",
    "Scan",
    "Query",
    "Head",
    "Lookup",
    "Batch Get",
    "Validate",
)


def is_read(operation: str) -> bool:
    """Whether a botocore operation name only reads state (``DetectStackSetDrift`` is not a write of resources)."""
    return operation.startswith(_READ_PREFIXES) or operation in {"Invoke", "InvokeEndpoint", "AssumeRole"}


@dataclass
class CallCounter:
    """Counts API calls by ``service.Operation``, split into reads and writes (thread-safe)."""

    calls: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, model, **_kwargs) -> None:
        key = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            self.calls[key] += 1

    @property
    def reads(self) -> int:
        return sum(n for key, n in self.calls.items() if is_read(key.split(".", 1)[1]))

    @property
    def writes(self) -> int:
        return sum(n for key, n in self.calls.items() if not is_read(key.split(".", 1)[1]))

    def write_calls(self) -> dict[str, int]:
        return {key: n for key, n in self.calls.items() if not is_read(key.split(".", 1)[1])}


class Clients:
    """A boto3 session and its clients, created once per (service, region).

    ``counter`` (optional) sees every API call made through these clients, retries not
    included: tests assert "zero write calls" with it and the benchmarks count calls.
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        counter: CallCounter | None = None,
        config: Config = RETRY_CONFIG,
    ):
        self.session = session or new_session()
        self.counter = counter
        self.config = config
        self._clients: dict[tuple[str, str | None], object] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None):
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                # STS answers "who am I?", every command's first call: it fails fast (PROBE_CONFIG).
                config = self.config.merge(PROBE_CONFIG) if service == "sts" else self.config
                client = self.session.client(service, region_name=region, config=config)
                if self.counter is not None:
                    client.meta.events.register("before-call.*.*", self.counter)
                self._clients[key] = client
            return self._clients[key]
