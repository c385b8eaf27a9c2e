"""Values that come from somewhere else: a manifest value may be a lookup instead of text.

A lookup is a mapping with exactly one key, its kind, resolved at plan time in the
administrator account and region and cached for the run:

| lookup | value | secret (NoEcho everywhere) |
|---|---|---|
| ``{env: VAR}`` | the environment variable ``VAR`` of the deploying process | yes |
| ``{ssm: /name}`` | the SSM parameter (``SecureString`` decrypted) | when ``SecureString`` |
| ``{secretsmanager: {id: NAME, key: K}}`` | the secret's string, or its JSON key ``K`` | yes |
| ``{account: NAME_OR_ID}`` | the 12-digit id of an account of the Organization | no |
| ``{accounts: [REF, ...]}`` | sorted, comma-separated ids of the accounts named and of the | no |
|  | active accounts under the OUs named (nested OUs in, the management account out) | |
| ``{output: {stack_set: S, key: K, account: REF, region: R}}`` | that output of that stack set's | no |
|  | instance; without ``account``/``region``, every instance's, comma-separated, stable order | |
| ``{join: [TEXT or LOOKUP, ...]}`` | the parts joined, e.g. ``[mlops-dev-models-, {account: dev}]`` | if a part is |

References (``account:name``, ``ou:/path``, ids) follow :mod:`deploy.common.refs`. An output
of a stack set that is not deployed yet raises :class:`NotYetKnown`: the plan shows the value
as known after apply.

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
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from deploy.common.errors import error_code, error_message
from deploy.common.refs import (
    ACCOUNT_PREFIX,
    ACCOUNT_REF_PATTERN,
    OU_REF_PATTERN,
    UnresolvedReference,
    is_account_id,
    is_account_name,
    is_ou_id,
    is_root_id,
)


class LookupKind(str, Enum):
    ENV = "env"
    SSM = "ssm"
    SECRETSMANAGER = "secretsmanager"
    ACCOUNT = "account"
    ACCOUNTS = "accounts"
    OUTPUT = "output"
    JOIN = "join"


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


KINDS[LookupKind.ACCOUNT] = {
    "type": "string",
    "pattern": r"^(\d{12}|account:\S.{0,49}|[^:\s][^:]{0,49})$",
    "description": "an account id, account:NAME or a name",
}
KINDS[LookupKind.ACCOUNTS] = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "pattern": f"{ACCOUNT_REF_PATTERN[:-1]}|{OU_REF_PATTERN[1:]}"},
    "description": "account and OU references (ids, account:NAME, ou:/PATH)",
}
KINDS[LookupKind.OUTPUT] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stack_set", "key"],
    "properties": {
        "stack_set": {"type": "string", "pattern": r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$"},
        "key": {"type": "string", "minLength": 1, "maxLength": 255},
        "account": {"type": "string", "pattern": ACCOUNT_REF_PATTERN},
        "region": {"type": "string", "pattern": r"^[a-z]{2}(-[a-z]+)+-\d$"},
    },
}


def lookup_schema(join: bool = True) -> dict:
    """The JSON Schema of a lookup: one of the kinds, exactly one key. ``{join: [...]}`` joins
    text and (non-join) lookups into one value, e.g. a bucket name from an account id."""
    kinds = {kind.value: schema for kind, schema in KINDS.items()}
    if join:
        part = {"anyOf": [{"type": ["string", "number"]}, lookup_schema(join=False)]}
        kinds[LookupKind.JOIN.value] = {"type": "array", "minItems": 1, "items": part}
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": kinds,
        "description": f"a lookup: a mapping with exactly one of {', '.join(k.value for k in LookupKind)}",
    }


@dataclass(frozen=True)
class Lookup:
    """A value to fetch at plan time; ``argument`` is hashable (str, or sorted item tuples)."""

    kind: LookupKind
    argument: Any

    def describe(self) -> str:
        """How the lookup was written, for messages (never its value)."""
        if self.kind is LookupKind.JOIN:
            return (
                "{join: ["
                + ", ".join(p.describe() if isinstance(p, Lookup) else json.dumps(p) for p in self.argument)
                + "]}"
            )
        argument = self.argument
        if isinstance(argument, tuple):
            argument = dict(argument) if all(isinstance(i, tuple) for i in argument) else list(argument)
        return f"{{{self.kind.value}: {json.dumps(argument, sort_keys=True)}}}"


def parse_value(raw: Any) -> str | Lookup:
    """A schema-valid manifest value as text or as a :class:`Lookup`."""
    if isinstance(raw, Mapping):
        ((kind, argument),) = raw.items()
        if LookupKind(kind) is LookupKind.JOIN:
            return Lookup(
                LookupKind.JOIN,
                tuple(parse_value(part) if isinstance(part, Mapping) else str(part) for part in argument),
            )
        if isinstance(argument, Mapping):
            argument = tuple(sorted(argument.items()))
        elif isinstance(argument, list):
            argument = tuple(argument)
        return Lookup(LookupKind(kind), argument)
    return raw


class LookupFailed(Exception):
    """A lookup that could not be resolved: ``str()`` says which source and why."""


class NotYetKnown(LookupFailed):
    """A value that exists only once another stack set is deployed (known after apply)."""


class Organizations(Protocol):
    """What account lookups need of :class:`deploy.common.refs.OrganizationsResolver`."""

    def account_id(self, ref: str) -> str: ...
    def ou_id(self, path: str) -> str: ...
    def accounts_under(self, parent: str) -> frozenset[str]: ...
    def management_account(self) -> str | None: ...
    def active_accounts(self) -> frozenset[str]: ...


# (stack set, output key, account or None, region or None) -> the values found, in a stable order.
OutputReader = Callable[[str, str, "str | None", "str | None"], list[str]]


@dataclass(frozen=True)
class Resolved:
    value: str
    secret: bool


class ValueResolver:
    """Resolves lookups with the administrator account's clients, each once per run."""

    def __init__(
        self,
        client: Callable[[str], Any],
        environ: Mapping[str, str] | None = None,
        organizations: Organizations | None = None,
        outputs: OutputReader | None = None,
    ):
        self._client = client  # service name -> boto3 client of the admin region
        self._environ = os.environ if environ is None else environ
        self._organizations = organizations
        self._outputs = outputs
        self._cache: dict[Lookup, Resolved] = {}
        self._lock = threading.Lock()
        self._resolvers: dict[LookupKind, Callable[[Any], Resolved]] = {
            LookupKind.ENV: self._env,
            LookupKind.SSM: self._ssm,
            LookupKind.SECRETSMANAGER: self._secretsmanager,
            LookupKind.ACCOUNT: self._account,
            LookupKind.ACCOUNTS: self._accounts,
            LookupKind.OUTPUT: self._output,
            LookupKind.JOIN: self._join,
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

    def _join(self, parts: tuple) -> Resolved:
        resolved = [self.resolve(part) if isinstance(part, Lookup) else Resolved(part, False) for part in parts]
        return Resolved("".join(r.value for r in resolved), secret=any(r.secret for r in resolved))

    def _org(self) -> Organizations:
        if self._organizations is None:
            raise LookupFailed("account lookups need Organizations, which this command does not use")
        return self._organizations

    def _account(self, ref: str) -> Resolved:
        org = self._org()
        try:
            if is_account_id(ref):
                if ref not in org.active_accounts():
                    raise LookupFailed(f"no active account {ref} in the Organization")
                return Resolved(ref, secret=False)
            return Resolved(org.account_id(ref if ref.startswith(ACCOUNT_PREFIX) else ACCOUNT_PREFIX + ref), False)
        except UnresolvedReference as error:
            raise LookupFailed(str(error)) from None
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(_aws_problem(f"the account {ref}", error)) from None

    def _accounts(self, refs: tuple[str, ...]) -> Resolved:
        org = self._org()
        found: set[str] = set()
        try:
            management = org.management_account()
            for ref in refs:
                if is_account_id(ref) or is_account_name(ref):
                    found.add(self._account(ref).value)
                    continue
                parent = ref if is_ou_id(ref) or is_root_id(ref) else org.ou_id(ref)
                found |= org.accounts_under(parent) - {management}
        except UnresolvedReference as error:
            raise LookupFailed(str(error)) from None
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(_aws_problem("the Organization", error)) from None
        return Resolved(",".join(sorted(found)), secret=False)

    def _output(self, argument: tuple) -> Resolved:
        if self._outputs is None:
            raise LookupFailed("output lookups need the deployer's stack set reader")
        options = dict(argument)
        account = options.get("account")
        if account is not None and not is_account_id(account):
            account = self._account(account).value
        values = self._outputs(options["stack_set"], options["key"], account, options.get("region"))
        return Resolved(",".join(values), secret=False)


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
