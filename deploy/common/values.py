"""Values that come from somewhere else: a manifest value may be a lookup instead of text.

A lookup is a mapping with exactly one key, its kind, resolved at plan time in the
administrator account and region and cached for the run:

| lookup | value | secret (NoEcho everywhere) |
|---|---|---|
| ``{env: VAR}`` | the environment variable ``VAR`` of the deploying process | yes |
| ``{ssm: /name}`` | the SSM parameter (``SecureString`` decrypted) | when ``SecureString`` |
| ``{secretsmanager: {id: NAME, key: K}}`` | the secret's string, or its JSON key ``K`` | yes |

Kinds are added in one place: :data:`KINDS` (its schema) and ``ValueResolver._resolvers``.
A value that cannot be had raises :class:`LookupFailed` with a message that names the
source and never the value; the caller adds the file, stack set and key.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from deploy.common.errors import error_code, error_message


class LookupKind(str, Enum):
    ENV = "env"
    SSM = "ssm"
    SECRETSMANAGER = "secretsmanager"


_NAME = {"type": "string", "minLength": 1, "maxLength": 2048}
# The JSON Schema of each kind's argument.
KINDS: dict[LookupKind, dict] = {
    LookupKind.ENV: {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "description": "a variable name"},
    LookupKind.SSM: {**_NAME, "description": "an SSM parameter name or ARN"},
    LookupKind.SECRETSMANAGER: {
        "oneOf": [
            {**_NAME, "description": "a secret name or ARN"},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {"id": _NAME, "key": _NAME},
            },
        ]
    },
}


def lookup_schema() -> dict:
    """The JSON Schema of a lookup: one of the kinds, exactly one key."""
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {kind.value: schema for kind, schema in KINDS.items()},
        "description": f"a lookup: a mapping with exactly one of {', '.join(k.value for k in LookupKind)}",
    }


@dataclass(frozen=True)
class Lookup:
    """A value to fetch at plan time; ``argument`` is hashable (str, or sorted item tuples)."""

    kind: LookupKind
    argument: Any

    def describe(self) -> str:
        """How the lookup was written, for messages (never its value)."""
        argument = dict(self.argument) if isinstance(self.argument, tuple) else self.argument
        return f"{{{self.kind.value}: {json.dumps(argument, sort_keys=True)}}}"


def parse_value(raw: Any) -> str | Lookup:
    """A schema-valid manifest value as text or as a :class:`Lookup`."""
    if isinstance(raw, Mapping):
        ((kind, argument),) = raw.items()
        if isinstance(argument, Mapping):
            argument = tuple(sorted(argument.items()))
        return Lookup(LookupKind(kind), argument)
    return raw


class LookupFailed(Exception):
    """A lookup that could not be resolved: ``str()`` says which source and why."""


@dataclass(frozen=True)
class Resolved:
    value: str
    secret: bool


class ValueResolver:
    """Resolves lookups with the administrator account's clients, each once per run."""

    def __init__(self, client: Callable[[str], Any], environ: Mapping[str, str] | None = None):
        self._client = client  # service name -> boto3 client of the admin region
        self._environ = os.environ if environ is None else environ
        self._cache: dict[Lookup, Resolved] = {}
        self._lock = threading.Lock()
        self._resolvers: dict[LookupKind, Callable[[Any], Resolved]] = {
            LookupKind.ENV: self._env,
            LookupKind.SSM: self._ssm,
            LookupKind.SECRETSMANAGER: self._secretsmanager,
        }

    def resolve(self, lookup: Lookup) -> Resolved:
        with self._lock:
            cached = self._cache.get(lookup)
        if cached is None:
            cached = self._resolvers[lookup.kind](lookup.argument)
            with self._lock:
                self._cache[lookup] = cached
        return cached

    def _env(self, name: str) -> Resolved:
        if name not in self._environ:
            raise LookupFailed(f"the environment variable {name} is not set")
        return Resolved(self._environ[name], secret=True)

    def _ssm(self, name: str) -> Resolved:
        try:
            parameter = self._client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(_aws_problem(f"SSM parameter {name}", error)) from None
        return Resolved(str(parameter["Value"]), secret=parameter.get("Type") == "SecureString")

    def _secretsmanager(self, argument: Any) -> Resolved:
        options = dict(argument) if isinstance(argument, tuple) else {"id": argument}
        secret_id, key = options["id"], options.get("key")
        try:
            secret = self._client("secretsmanager").get_secret_value(SecretId=secret_id)
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(_aws_problem(f"secret {secret_id}", error)) from None
        if "SecretString" not in secret:
            raise LookupFailed(f"secret {secret_id} holds binary data; only a string secret can be a parameter value")
        text = secret["SecretString"]
        if key is None:
            return Resolved(text, secret=True)
        try:
            document = json.loads(text)
        except ValueError:
            raise LookupFailed(f"secret {secret_id} is not a JSON object, so it has no key {key!r}") from None
        if not isinstance(document, dict) or key not in document:
            keys = ", ".join(sorted(document)) if isinstance(document, dict) else "none"
            raise LookupFailed(f"secret {secret_id} has no key {key!r} (its keys: {keys})")
        value = document[key]
        return Resolved(value if isinstance(value, str) else json.dumps(value), secret=True)


_NOT_FOUND = {"ParameterNotFound", "ResourceNotFoundException", "ParameterVersionNotFound"}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "KMSAccessDeniedException"}


def _aws_problem(what: str, error: Exception) -> str:
    code = error_code(error)
    if code in _NOT_FOUND:
        return f"{what} does not exist in the administrator account and region"
    if code in _DENIED:
        return f"access denied reading {what} ({code}): allow it to the deploying role"
    if code:
        return f"reading {what} failed ({code}): {error_message(error)}"
    return f"reading {what} failed: {error}"
