"""The deployment manifest: YAML loading, schema validation and semantic checks.

Everything a user can get wrong in the manifest is caught here, before any AWS call,
as an ``InputError`` naming the file, the stack set and the key (exit status 2). The
result is plain frozen data (``Manifest`` / ``StackSetSpec``) that the pure planner
consumes; the API's enumerations are ``str`` enums (``PermissionModel``, ``CallAs``,
``AccountFilter``), and ``depends_on`` is checked as a graph with ``graphlib`` (unknown
names, self-dependencies and cycles are errors). OU references by path (``ou:/staging``)
stay unresolved here; the adapter resolves them through Organizations at plan time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import botocore.session
import yaml
from jsonschema import Draft202012Validator

from deploy.common.config import (
    MAX_TEMPLATE_BYTES,
    Locator,
    check_schema,
    did_you_mean,
    load_yaml_file,
    parse_yaml,
    read_text_file,
    yaml_problem,
)
from deploy.common.errors import InputError
from deploy.common.ownership import TOOL_TAG_PREFIX
from deploy.common.refs import ACCOUNT_ID_RE, ACCOUNT_NAME_RE, OU_ID_RE, OU_PATH_RE, ROOT_ID_RE
from deploy.common.values import Lookup, LookupKind, lookup_schema, parse_value

STACK_SET_NAME_RE = r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$"
MANIFEST_ID_RE = r"^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,127}$"
# AWS DevOps blog on StackSet dependencies: "Define up to 10 dependencies per StackSet".
MAX_AUTO_DEPLOYMENT_DEPENDENCIES = 10
IAM_ROLE_ARN_RE = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"

# Resource types whose named variants need CAPABILITY_NAMED_IAM (name property per type).
_NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data (offline, read once)."""
    endpoints = botocore.session.get_session().get_data("endpoints")
    return frozenset(region for partition in endpoints["partitions"] for region in partition.get("regions", {}))


# --------------------------------------------------------------------------- enumerations
# ``str`` enums: the members compare equal to, and serialise to JSON as, the API spellings.
# Where a plain string is needed (f-strings, boto3 parameters) use ``.value``: ``format()``
# of a ``str, Enum`` mixin is not the value on every Python version.


class PermissionModel(str, Enum):
    """Who creates the instance stacks' roles (CloudFormation's ``PermissionModel``)."""

    SERVICE_MANAGED = "SERVICE_MANAGED"
    SELF_MANAGED = "SELF_MANAGED"


class CallAs(str, Enum):
    """The identity stack set calls are made as (CloudFormation's ``CallAs``)."""

    SELF = "SELF"
    DELEGATED_ADMIN = "DELEGATED_ADMIN"


class AccountFilter(str, Enum):
    """How ``accounts`` narrow or widen OU targets (CloudFormation's ``AccountFilterType``)."""

    NONE = "NONE"
    INTERSECTION = "INTERSECTION"
    DIFFERENCE = "DIFFERENCE"
    UNION = "UNION"


# --------------------------------------------------------------------------- data


ParameterValue = str | Lookup  # a lookup until resolved at plan time (deploy.stacksets.lookups)
KNOWN_AFTER_APPLY = "(known after apply)"


def resolved_values(pairs: Iterable[tuple[str, ParameterValue]]) -> dict[str, str]:
    """``{name: value}``; the plan only ever sees resolved values, so a lookup here is a bug."""
    values = dict(pairs)
    pending = sorted(name for name, value in values.items() if not isinstance(value, str))
    if pending:
        raise ValueError(f"parameter(s) {', '.join(pending)} still to be looked up: resolve lookups before planning")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class TemplateParameter:
    """What the manifest needs to know about one template parameter."""

    name: str
    type: str = "String"
    default: str | None = None
    no_echo: bool = False
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_length: float | None = None
    max_length: float | None = None
    min_value: float | None = None
    max_value: float | None = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class TemplateInfo:
    """A template file read from disk, with what was derived from it."""

    path: str
    body: str
    parameters: dict[str, TemplateParameter]
    capabilities: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Override:
    """Parameter values for the instances of some accounts/OUs in some regions.

    Empty ``accounts`` and ``organizational_units`` mean every target; ``regions`` is
    always explicit (defaults to the stack set's regions when loaded).
    """

    accounts: tuple[str, ...]
    organizational_units: tuple[str, ...]
    regions: tuple[str, ...]
    parameters: tuple[tuple[str, ParameterValue], ...]


@dataclass(frozen=True)
class TargetEntry:
    """One entry of a ``targets`` list: its own targets and regions.

    ``exclude_accounts`` is already applied: for a service-managed entry it became
    ``accounts`` with ``AccountFilter.DIFFERENCE``; for a self-managed one it was removed
    from ``accounts``.
    """

    organizational_units: tuple[str, ...]
    accounts: tuple[str, ...]
    account_filter: AccountFilter
    regions: tuple[str, ...]


@dataclass(frozen=True)
class StackSetSpec:
    """One stack set as the manifest wants it (API spellings for enumerations)."""

    name: str
    template: TemplateInfo
    description: str
    permission_model: PermissionModel
    call_as: CallAs
    auto_deployment: bool
    retain_stacks_on_account_removal: bool
    retain_stacks: bool
    administration_role_arn: str | None
    execution_role_name: str | None
    organizational_units: tuple[str, ...]  # ids, or ``ou:/path`` until resolved
    accounts: tuple[str, ...]
    account_filter: AccountFilter
    regions: tuple[str, ...]
    parameters: tuple[tuple[str, ParameterValue], ...]
    overrides: tuple[Override, ...]
    operation_preferences: tuple[tuple[str, Any], ...]
    depends_on: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    capabilities: tuple[str, ...]
    # Parameters whose value came from a secret source: NoEcho everywhere, like the template's.
    secret_parameters: frozenset[str] = frozenset()
    # Parameters whose lookup reads a stack set not deployed yet: KNOWN_AFTER_APPLY until apply
    # has deployed it and resolves them again (deploy.stacksets.lookups).
    deferred_parameters: frozenset[str] = frozenset()
    # ``targets`` written as a list: each entry with its own regions and exclusions. Empty for the
    # single mapping, whose targets are the fields above; with entries, those fields hold their union
    # (``account_filter`` NONE, ``regions`` every region used).
    target_entries: tuple[TargetEntry, ...] = ()
    # ``depends_on`` entries that are self-managed stack sets: the rollout orders them, but
    # AutoDeployment.DependsOn takes only service-managed stack sets (no auto-deployment to wait for).
    unsequenced_dependencies: frozenset[str] = frozenset()

    def entries(self) -> tuple[TargetEntry, ...]:
        """The target entries: those of a ``targets`` list, or the single mapping as one entry."""
        if self.target_entries:
            return self.target_entries
        return (TargetEntry(self.organizational_units, self.accounts, self.account_filter, self.regions),)

    def masked_parameters(self) -> frozenset[str]:
        """Parameters never shown: the template's NoEcho ones and those from secret sources."""
        no_echo = {name for name, p in self.template.parameters.items() if p.no_echo}
        return frozenset(no_echo) | self.secret_parameters

    def masked_values(self) -> set[str]:
        """The values written in the manifest for NoEcho parameters (to mask wherever they appear)."""
        masked = self.masked_parameters()
        pairs = [*self.parameters, *(pair for o in self.overrides for pair in o.parameters)]
        return {value for name, value in pairs if name in masked and isinstance(value, str)}

    def lookups(self) -> list[tuple[str, str, Lookup]]:
        """(key, parameter, lookup) of every value still to look up."""
        found = [(f"parameters.{n}", n, v) for n, v in self.parameters if isinstance(v, Lookup)]
        for index, override in enumerate(self.overrides):
            found += [
                (f"overrides[{index}].parameters.{n}", n, v) for n, v in override.parameters if isinstance(v, Lookup)
            ]
        return found

    @property
    def service_managed(self) -> bool:
        return self.permission_model is PermissionModel.SERVICE_MANAGED

    @property
    def parameter_dict(self) -> dict[str, str]:
        return resolved_values(self.parameters)

    def effective_parameters(self) -> dict[str, str]:
        """Given parameters plus the template's defaults: what the stacks will see."""
        values = {name: p.default for name, p in self.template.parameters.items() if p.default is not None}
        values.update(self.parameter_dict)
        return values

    def overridden_keys(self) -> frozenset[str]:
        """Every parameter some override rule sets."""
        return frozenset(key for rule in self.overrides for key, _ in rule.parameters)

    def stack_set_parameters(self) -> tuple[tuple[str, str], ...]:
        """The stack set's ``Parameters``: the given values, plus every overridden key with its default.

        "You can only override the parameter values that are specified in the StackSet"
        (API reference, UpdateStackInstances.ParameterOverrides): a key only overridden per
        instance must also be a parameter of the stack set itself.
        """
        values = self.parameter_dict
        effective = self.effective_parameters()
        for key in self.overridden_keys():
            if key not in values and key in effective:
                values[key] = effective[key]
        return tuple(sorted(values.items()))


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    path: str
    admin_region: str
    admin_account_id: str | None
    template_bucket: str | None
    stack_sets: tuple[StackSetSpec, ...]
    id: str = ""  # which manifest owns the stack sets (the ``id`` key, or the file's stem)
    output_reader_role: str = "OrganizationAccountAccessRole"  # assumed in member accounts for {output} lookups
    references: tuple[tuple[str, str, str], ...] = field(
        default=()
    )  # (stack set, key, ou:/... or account:...) to resolve

    def by_name(self) -> dict[str, StackSetSpec]:
        return {spec.name: spec for spec in self.stack_sets}

    def ou_paths(self) -> set[str]:
        """Every ``ou:/...`` reference that needs resolving through Organizations."""
        return {ref for _, _, ref in self.references if ref.startswith("ou:")}

    def account_names(self) -> set[str]:
        """Every ``account:<name>`` reference that needs resolving through Organizations."""
        return {ref for _, _, ref in self.references if ref.startswith("account:")}


# --------------------------------------------------------------------------- schema


def _manifest_spellings(enum: type[Enum]) -> list[str]:
    """The manifest spells the API's enumerations in lower case."""
    return [member.value.lower() for member in enum]


_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_SCALAR = {"type": ["string", "number", "boolean"]}
# A value is written out, or looked up at plan time (deploy.common.values: env, ssm, ...).
_PARAMETER_VALUES = {
    "type": "object",
    "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}, lookup_schema()]},
}

_TARGET_KEYS: dict[str, Any] = {
    "organizational_units": _STRING_LIST,
    "accounts": _STRING_LIST,
    "account_filter": {"enum": _manifest_spellings(AccountFilter)},
}
_TARGETS = {"type": "object", "additionalProperties": False, "properties": _TARGET_KEYS}
_TARGET_ENTRY = {
    **_TARGETS,
    "properties": {
        **_TARGET_KEYS,
        "regions": {**_STRING_LIST, "minItems": 1},
        "exclude_accounts": {**_STRING_LIST, "minItems": 1},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["admin_region", "stack_sets"],
    "properties": {
        "id": {"type": "string", "pattern": MANIFEST_ID_RE},
        "admin_region": {"type": "string"},
        "admin_account_id": {"type": "string"},
        "template_bucket": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
        "output_reader_role": {"type": "string", "pattern": r"^[\w+=,.@-]{1,64}$", "description": "an IAM role name"},
        "stack_sets": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "template", "regions", "targets"],
                "properties": {
                    "name": {"type": "string", "pattern": STACK_SET_NAME_RE},
                    "template": {"type": "string", "minLength": 1},
                    "description": {"type": "string", "maxLength": 1024},
                    "permission_model": {"enum": _manifest_spellings(PermissionModel)},
                    "call_as": {"enum": _manifest_spellings(CallAs)},
                    "auto_deployment": {"type": "boolean"},
                    "retain_stacks_on_account_removal": {"type": "boolean"},
                    "retain_stacks": {"type": "boolean"},
                    "administration_role_arn": {"type": "string", "pattern": IAM_ROLE_ARN_RE},
                    "execution_role_name": {"type": "string", "pattern": r"^[\w+=,.@-]{1,64}$"},
                    # One mapping, or a list of entries each with its own regions and exclusions.
                    "targets": {
                        "type": ["object", "array"],
                        "if": {"type": "object"},
                        "then": _TARGETS,
                        "else": {"minItems": 1, "items": _TARGET_ENTRY},
                    },
                    "regions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "parameters": _PARAMETER_VALUES,
                    "overrides": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["parameters"],
                            "properties": {
                                "accounts": _STRING_LIST,
                                "organizational_units": _STRING_LIST,
                                "regions": _STRING_LIST,
                                "parameters": {**_PARAMETER_VALUES, "minProperties": 1},
                            },
                        },
                    },
                    "operation_preferences": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "region_concurrency": {"enum": ["sequential", "parallel"]},
                            "region_order": _STRING_LIST,
                            "max_concurrent_count": {"type": "integer", "minimum": 1},
                            "max_concurrent_percentage": {"type": "integer", "minimum": 1, "maximum": 100},
                            "failure_tolerance_count": {"type": "integer", "minimum": 0},
                            "failure_tolerance_percentage": {"type": "integer", "minimum": 0, "maximum": 100},
                            "concurrency_mode": {"enum": ["strict_failure_tolerance", "soft_failure_tolerance"]},
                        },
                    },
                    "depends_on": _STRING_LIST,
                    "tags": {
                        "type": "object",
                        "maxProperties": 40,
                        "additionalProperties": {"type": "string", "maxLength": 256},
                    },
                },
            },
        },
    },
}

_VALIDATOR = Draft202012Validator(SCHEMA)
_LOCATOR = Locator(items="stack_sets", label="stack set", relative_keys=True)

# Defaults that keep a rollout parallel: SOFT mode does not cap concurrency at tolerance+1.
DEFAULT_OPERATION_PREFERENCES = {
    "RegionConcurrencyType": "PARALLEL",
    "MaxConcurrentPercentage": 100,
    "FailureToleranceCount": 0,
    "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE",
}

_PREFERENCE_KEYS = {
    "region_concurrency": "RegionConcurrencyType",
    "region_order": "RegionOrder",
    "max_concurrent_count": "MaxConcurrentCount",
    "max_concurrent_percentage": "MaxConcurrentPercentage",
    "failure_tolerance_count": "FailureToleranceCount",
    "failure_tolerance_percentage": "FailureTolerancePercentage",
    "concurrency_mode": "ConcurrencyMode",
}


# --------------------------------------------------------------------------- templates


def read_template(path: Path, source: str, where: str) -> TemplateInfo:
    """Read and inspect a template file: parameters, NoEcho, capabilities."""
    key = "template"
    if not path.is_file():
        raise InputError(
            f"template file '{path}' does not exist (paths are relative to the manifest's directory)",
            source,
            where,
            key,
        )
    try:
        # CloudFormation's limit for a template read from S3, checked before reading.
        body = read_text_file(path, "template", MAX_TEMPLATE_BYTES)
    except InputError as error:
        raise InputError(f"template '{path}': {error.message}", source, where, key) from None
    try:
        data = parse_yaml(body)
    except yaml.YAMLError as error:
        at, problem = yaml_problem(error)  # never quotes the file: it may not be a template at all
        at = f" ({at})" if at else ""
        raise InputError(f"template '{path}' is not valid YAML/JSON{at}: {problem}", source, where, key) from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise InputError(
            f"template '{path}' has no Resources section: is it a CloudFormation template?", source, where, key
        )
    parameters = {}
    for name, spec in (data.get("Parameters") or {}).items():
        spec = spec or {}
        default = spec.get("Default")
        parameters[name] = TemplateParameter(
            name=name,
            type=str(spec.get("Type", "String")),
            default=None if default is None else _stringify(default),
            no_echo=str(spec.get("NoEcho", "false")).lower() == "true",
            allowed_values=tuple(_stringify(v) for v in spec.get("AllowedValues", []) or []),
            allowed_pattern=spec.get("AllowedPattern"),
            min_length=_number(spec.get("MinLength")),
            max_length=_number(spec.get("MaxLength")),
            min_value=_number(spec.get("MinValue")),
            max_value=_number(spec.get("MaxValue")),
        )
    return TemplateInfo(path=str(path), body=body, parameters=parameters, capabilities=derive_capabilities(data))


def derive_capabilities(template: dict) -> tuple[str, ...]:
    """The capabilities CloudFormation will demand for ``template``."""
    capabilities = set()
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict):
            continue
        rtype = str(resource.get("Type", ""))
        if rtype.startswith("AWS::IAM::"):
            capabilities.add("CAPABILITY_IAM")
            name_key = _NAMED_IAM.get(rtype)
            if name_key and name_key in (resource.get("Properties") or {}):
                capabilities.add("CAPABILITY_NAMED_IAM")
        if rtype in ("AWS::Serverless::Application",) or rtype.startswith("AWS::Serverless::"):
            capabilities.add("CAPABILITY_AUTO_EXPAND")
    if template.get("Transform"):
        capabilities.add("CAPABILITY_AUTO_EXPAND")
    return tuple(sorted(capabilities))


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_stringify(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- loading


VERBATIM_KEYS = frozenset({"parameters", "tags"})


def load_manifest(path: str | Path, regions: frozenset[str] | None = None) -> Manifest:
    """Load and validate a manifest file; raise ``InputError`` on the first problem found."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("manifest file does not exist", source)
    # Parameter and tag values reach AWS as written: YAML 1.1 would turn 012345670123 into an
    # octal number, 1e3 into 1000.0 and yes into true.
    data = load_yaml_file(path, "manifest", verbatim_under=VERBATIM_KEYS)
    if not isinstance(data, dict):
        raise InputError("the manifest must be a mapping with 'admin_region' and 'stack_sets'", source)
    check_schema(data, _VALIDATOR, source, _LOCATOR)
    return _build(data, path, regions if regions is not None else known_regions())


def _build(data: dict, path: Path, regions: frozenset[str]) -> Manifest:
    source = str(path)
    admin_region = data["admin_region"]
    if admin_region not in regions:
        raise InputError(_unknown_region(admin_region, regions), source, None, "admin_region")
    admin_account = data.get("admin_account_id")
    if admin_account is not None and not ACCOUNT_ID_RE.match(admin_account):
        raise InputError(f"'{admin_account}' is not a 12-digit account id", source, None, "admin_account_id")

    seen: dict[str, int] = {}
    specs = []
    ou_refs: list[tuple[str, str, str]] = []
    for index, item in enumerate(data["stack_sets"]):
        name = item["name"]
        if name in seen:
            raise InputError(
                f"duplicate stack set name (also stack_sets[{seen[name]}])", source, f"stack set '{name}'", "name"
            )
        seen[name] = index
        spec, refs = _build_stack_set(item, path, regions)
        specs.append(spec)
        ou_refs.extend((name, key, ref) for key, ref in refs)

    specs = _with_lookup_dependencies(specs, source)
    _check_dependencies(specs, source)
    self_managed = {spec.name for spec in specs if not spec.service_managed}
    specs = [
        replace(spec, unsequenced_dependencies=frozenset(set(spec.depends_on) & self_managed))
        if set(spec.depends_on) & self_managed
        else spec
        for spec in specs
    ]
    return Manifest(
        id=str(data.get("id") or path.stem),
        output_reader_role=data.get("output_reader_role", "OrganizationAccountAccessRole"),
        path=source,
        admin_region=admin_region,
        admin_account_id=admin_account,
        template_bucket=data.get("template_bucket"),
        stack_sets=tuple(specs),
        references=tuple(ou_refs),
    )


def output_producers(spec: StackSetSpec) -> set[str]:
    """Stack sets whose outputs ``spec``'s lookups read (``{output: {stack_set: ...}}``, also in joins)."""
    found: set[str] = set()
    pending = [lookup for _, _, lookup in spec.lookups()]
    while pending:
        lookup = pending.pop()
        if lookup.kind is LookupKind.OUTPUT:
            found.add(str(dict(lookup.argument)["stack_set"]))
        elif lookup.kind is LookupKind.JOIN:
            pending.extend(part for part in lookup.argument if isinstance(part, Lookup))
    return found


def _with_lookup_dependencies(specs: list[StackSetSpec], source: str) -> list[StackSetSpec]:
    """A stack set that reads another one's outputs depends on it, as if ``depends_on`` said so."""
    names = {spec.name for spec in specs}
    out = []
    for spec in specs:
        producers = output_producers(spec)
        if spec.name in producers:
            raise InputError(
                "a stack set cannot look up its own outputs", source, f"stack set '{spec.name}'", "parameters"
            )
        extra = sorted((producers & names) - set(spec.depends_on))
        out.append(replace(spec, depends_on=(*spec.depends_on, *extra)) if extra else spec)
    return out


def _unknown_region(region: str, regions: frozenset[str]) -> str:
    return f"unknown region '{region}'{did_you_mean(region, regions)}"


def _check_ou(ref: str, source: str, where: str, key: str) -> None:
    if not (OU_ID_RE.match(ref) or ROOT_ID_RE.match(ref) or OU_PATH_RE.match(ref)):
        raise InputError(
            f"'{ref}' is not an OU id (ou-xxxx-xxxxxxxx), a root id (r-xxxx) or an OU path (ou:/name/child)",
            source,
            where,
            key,
        )


def _check_accounts(
    accounts: list[str], source: str, where: str, key: str, refs: list | None = None
) -> tuple[str, ...]:
    for account in accounts:
        if ACCOUNT_NAME_RE.match(account):
            if refs is not None:
                refs.append((key, account))
            continue
        if not ACCOUNT_ID_RE.match(account):
            raise InputError(
                f"'{account}' is not a 12-digit account id (quote it in YAML to keep leading zeros) "
                "or an account name (account:<name>)",
                source,
                where,
                key,
            )
    duplicates = sorted(a for a, n in Counter(accounts).items() if n > 1)
    if duplicates:
        raise InputError(f"account(s) listed twice: {', '.join(duplicates)}", source, where, key)
    return tuple(accounts)


def _check_parameters(
    values: dict, template: TemplateInfo, source: str, where: str, key: str
) -> tuple[tuple[str, ParameterValue], ...]:
    out: list[tuple[str, ParameterValue]] = []
    for name, value in values.items():
        if name not in template.parameters:
            hint = did_you_mean(name, template.parameters)
            known = ", ".join(sorted(template.parameters)) or "none"
            raise InputError(
                f"'{name}' is not a parameter of template '{template.path}'{hint}; it takes: {known}",
                source,
                where,
                f"{key}.{name}",
            )
        if isinstance(value, dict):  # a lookup: its value is checked once it is known
            out.append((name, parse_value(value)))
            continue
        text = _stringify(value)
        check_value(template.parameters[name], text, source, where, f"{key}.{name}")
        out.append((name, text))
    return tuple(sorted(out, key=lambda item: item[0]))


def check_value(spec: TemplateParameter, text: str, source: str, where: str, key: str, secret: bool = False) -> None:
    """InputError when CloudFormation would reject ``text`` for ``spec`` (``secret``: never shown)."""
    problem = _parameter_problem(replace(spec, no_echo=True) if secret else spec, text)
    if problem:
        raise InputError(problem, source, where, key)


def _parameter_problem(spec: TemplateParameter, text: str) -> str | None:
    """What CloudFormation would reject in ``text`` for ``spec`` (NoEcho values never shown)."""
    shown = "****" if spec.no_echo else repr(text)
    if spec.allowed_values and text not in spec.allowed_values:
        return f"value {shown} is not allowed; allowed values: {', '.join(spec.allowed_values)}"
    if spec.type == "String":
        if spec.min_length is not None and len(text) < spec.min_length:
            return f"value {shown} is shorter than the template's MinLength {spec.min_length:.0f}"
        if spec.max_length is not None and len(text) > spec.max_length:
            return f"value {shown} is longer than the template's MaxLength {spec.max_length:.0f}"
    items = (
        [text]
        if spec.type in ("String", "Number")
        else text.split(",")
        if spec.type in ("CommaDelimitedList", "List<Number>")
        else []
    )
    if spec.allowed_pattern:
        for item in items:
            if not re.fullmatch(spec.allowed_pattern, item):
                shown_item = "****" if spec.no_echo else repr(item)
                return f"value {shown_item} does not match the template's AllowedPattern {spec.allowed_pattern}"
    if spec.type in ("Number", "List<Number>"):
        for item in items:
            try:
                number = float(item)
            except ValueError:
                return f"value {'****' if spec.no_echo else repr(item)} is not a number"
            if spec.min_value is not None and number < spec.min_value:
                return f"value {shown} is below the template's MinValue {spec.min_value:g}"
            if spec.max_value is not None and number > spec.max_value:
                return f"value {shown} is above the template's MaxValue {spec.max_value:g}"
    return None


_STRAY_REGIONS = "region(s) {} are not among the stack set's regions"


def _check_among(
    values: Iterable[str], allowed: Iterable[str], message: str, source: str, where: str, key: str
) -> None:
    """InputError naming the ``values`` not in ``allowed`` (``message`` has one ``{}`` for them)."""
    stray = sorted(set(values) - set(allowed))
    if stray:
        raise InputError(message.format(", ".join(stray)), source, where, key)


def _parse_targets(
    raw: dict, key: str, item: dict, service_managed: bool, source: str, where: str, refs: list[tuple[str, str]]
) -> tuple[tuple[str, ...], tuple[str, ...], AccountFilter]:
    """(OUs, accounts, filter) of one targets mapping (``key``: ``targets`` or ``targets[i]``), checked."""
    ous = list(raw.get("organizational_units") or [])
    accounts = _check_accounts(list(raw.get("accounts") or []), source, where, f"{key}.accounts", refs)
    account_filter = AccountFilter((raw.get("account_filter") or "none").upper())
    for ou in ous:
        _check_ou(ou, source, where, f"{key}.organizational_units")
        refs.append((f"{key}.organizational_units", ou))
    if len(set(ous)) != len(ous):
        raise InputError("an OU is listed twice", source, where, f"{key}.organizational_units")

    if service_managed:
        if not ous:
            raise InputError(
                "a service_managed stack set targets organizational_units "
                "(accounts only narrow or widen them with account_filter)",
                source,
                where,
                f"{key}.organizational_units",
            )
        if accounts and account_filter is AccountFilter.NONE:
            raise InputError(
                "accounts given with OUs need account_filter intersection, difference or union",
                source,
                where,
                f"{key}.account_filter",
            )
        if account_filter is not AccountFilter.NONE and not accounts:
            raise InputError(
                f"account_filter {account_filter.value.lower()} needs {key}.accounts",
                source,
                where,
                f"{key}.accounts",
            )
        _check_filter_auto_deployment(account_filter, item, source, where)
    else:
        if ous:
            raise InputError(
                "a self_managed stack set targets accounts only; use permission_model service_managed for OUs",
                source,
                where,
                f"{key}.organizational_units",
            )
        if "account_filter" in raw and account_filter is not AccountFilter.NONE:
            raise InputError(
                "account_filter applies to service_managed stack sets only", source, where, f"{key}.account_filter"
            )
    return tuple(ous), accounts, account_filter


def _check_filter_auto_deployment(account_filter: AccountFilter, item: dict, source: str, where: str) -> None:
    if account_filter is not AccountFilter.NONE and item.get("auto_deployment"):
        # User Guide, stacksets-orgs-manage-auto-deployment: "Automatic deployments do not
        # consider account level targeting filters. If you target specific accounts and enable
        # automatic deployments, your StackSet will continue to deploy to any newly added
        # accounts within the deployed organization."
        raise InputError(
            f"auto_deployment ignores account filters: AWS would deploy to every account that joins "
            f"the OUs, whatever account_filter {account_filter.value.lower()} says; set auto_deployment: false",
            source,
            where,
            "auto_deployment",
        )


def _target_entry(
    raw: dict,
    index: int,
    item: dict,
    service_managed: bool,
    region_list: list[str],
    source: str,
    where: str,
    refs: list[tuple[str, str]],
) -> TargetEntry:
    """One entry of a ``targets`` list: its targets, ``exclude_accounts`` applied, and its regions."""
    key = f"targets[{index}]"
    if "exclude_accounts" in raw and ("account_filter" in raw or (service_managed and raw.get("accounts"))):
        raise InputError(
            "exclude_accounts is the entry's account filter (difference): give either exclude_accounts "
            "or accounts with account_filter, not both",
            source,
            where,
            f"{key}.exclude_accounts",
        )
    ous, accounts, account_filter = _parse_targets(raw, key, item, service_managed, source, where, refs)
    excluded = _check_accounts(list(raw.get("exclude_accounts") or []), source, where, f"{key}.exclude_accounts", refs)
    if excluded and service_managed:
        accounts, account_filter = tuple(sorted(excluded)), AccountFilter.DIFFERENCE
        _check_filter_auto_deployment(account_filter, item, source, where)
    elif excluded:
        message = "account(s) {} to exclude are not among this entry's accounts"
        _check_among(excluded, accounts, message, source, where, f"{key}.exclude_accounts")
        accounts = tuple(a for a in accounts if a not in excluded)
    if not ous and not accounts:
        raise InputError("this entry targets no account", source, where, f"{key}.accounts")
    entry_regions = list(raw.get("regions") or region_list)
    _check_among(entry_regions, region_list, _STRAY_REGIONS, source, where, f"{key}.regions")
    if len(set(entry_regions)) != len(entry_regions):
        raise InputError("a region is listed twice", source, where, f"{key}.regions")
    return TargetEntry(
        organizational_units=tuple(sorted(ous)),
        accounts=tuple(sorted(accounts)),
        account_filter=account_filter,
        regions=tuple(r for r in region_list if r in entry_regions),
    )


def _build_stack_set(
    item: dict, manifest_path: Path, regions: frozenset[str]
) -> tuple[StackSetSpec, list[tuple[str, str]]]:
    source = str(manifest_path)
    name = item["name"]
    where = f"stack set '{name}'"
    template = read_template(Path(os.path.normpath(manifest_path.parent / item["template"])), source, where)

    permission_model = PermissionModel(item.get("permission_model", "service_managed").upper())
    service_managed = permission_model is PermissionModel.SERVICE_MANAGED
    targets = item["targets"]
    refs: list[tuple[str, str]] = []
    ous: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    account_filter = AccountFilter.NONE
    if isinstance(targets, dict):
        ous, accounts, account_filter = _parse_targets(targets, "targets", item, service_managed, source, where, refs)
    if not service_managed:
        for key in ("auto_deployment", "retain_stacks_on_account_removal"):
            if item.get(key):
                raise InputError(f"{key} applies to service_managed stack sets only", source, where, key)
        if item.get("call_as") == "delegated_admin":
            # API reference, CreateStackSet.CallAs: "Valid only if the permissions model is SERVICE_MANAGED."
            raise InputError(
                "call_as delegated_admin applies to service_managed stack sets only "
                "(a delegated administrator cannot run self_managed stack sets)",
                source,
                where,
                "call_as",
            )
    if service_managed:
        for key in ("administration_role_arn", "execution_role_name"):
            if key in item:
                raise InputError(f"{key} applies to self_managed stack sets only", source, where, key)

    region_list = list(item["regions"])
    for region in region_list:
        if region not in regions:
            raise InputError(_unknown_region(region, regions), source, where, "regions")
    if len(set(region_list)) != len(region_list):
        raise InputError("a region is listed twice", source, where, "regions")
    entries: tuple[TargetEntry, ...] = ()
    if isinstance(targets, list):
        entries = tuple(
            _target_entry(raw, index, item, service_managed, region_list, source, where, refs)
            for index, raw in enumerate(targets)
        )
        ous = tuple(sorted({ou for entry in entries for ou in entry.organizational_units}))
        accounts = tuple(sorted({a for entry in entries for a in entry.accounts}))

    parameters = _check_parameters(item.get("parameters") or {}, template, source, where, "parameters")
    given = dict(parameters)
    missing = [p.name for p in template.parameters.values() if p.required and p.name not in given]
    if missing:
        raise InputError(
            f"template '{template.path}' requires parameter(s) without a default: {', '.join(sorted(missing))}",
            source,
            where,
            "parameters",
        )

    overrides = []
    for index, raw in enumerate(item.get("overrides") or []):
        key = f"overrides[{index}]"
        o_accounts = _check_accounts(list(raw.get("accounts") or []), source, where, f"{key}.accounts", refs)
        o_ous = list(raw.get("organizational_units") or [])
        for ou in o_ous:
            _check_ou(ou, source, where, f"{key}.organizational_units")
            refs.append((f"{key}.organizational_units", ou))
        if o_ous and not service_managed:
            raise InputError(
                "organizational_units in an override need a service_managed stack set",
                source,
                where,
                f"{key}.organizational_units",
            )
        if not service_managed:
            _check_among(
                o_accounts,
                accounts,
                "account(s) {} are not among the stack set's targets",
                source,
                where,
                f"{key}.accounts",
            )
        o_regions = list(raw.get("regions") or region_list)
        _check_among(o_regions, region_list, _STRAY_REGIONS, source, where, f"{key}.regions")
        overrides.append(
            Override(
                accounts=tuple(sorted(o_accounts)),
                organizational_units=tuple(sorted(o_ous)),
                regions=tuple(sorted(set(o_regions))),
                parameters=_check_parameters(raw["parameters"], template, source, where, f"{key}.parameters"),
            )
        )

    preferences = dict(DEFAULT_OPERATION_PREFERENCES)
    raw_prefs = item.get("operation_preferences") or {}
    for a, b in (
        ("max_concurrent_count", "max_concurrent_percentage"),
        ("failure_tolerance_count", "failure_tolerance_percentage"),
    ):
        if a in raw_prefs and b in raw_prefs:
            raise InputError(f"give either {a} or {b}, not both", source, where, f"operation_preferences.{b}")
        if a in raw_prefs:
            preferences.pop(_PREFERENCE_KEYS[b], None)
        if b in raw_prefs:
            preferences.pop(_PREFERENCE_KEYS[a], None)
    for key, value in raw_prefs.items():
        if key == "region_order":
            _check_among(value, region_list, _STRAY_REGIONS, source, where, "operation_preferences.region_order")
        preferences[_PREFERENCE_KEYS[key]] = value.upper() if isinstance(value, str) else value

    tags = item.get("tags") or {}
    for tag in tags:
        if tag.startswith(TOOL_TAG_PREFIX) or tag.lower().startswith("aws:"):
            raise InputError(f"tag '{tag}' is reserved", source, where, f"tags.{tag}")

    # Without account filters auto-deployment is on by default; with them it cannot be (see above).
    unfiltered = all(entry.account_filter is AccountFilter.NONE for entry in entries) and (
        account_filter is AccountFilter.NONE
    )
    auto_deployment = bool(item.get("auto_deployment", service_managed and unfiltered))
    if item.get("retain_stacks_on_account_removal") is not None and service_managed and not auto_deployment:
        # API reference, AutoDeployment.RetainStacksOnAccountRemoval: "Specify only if Enabled is set to True."
        raise InputError(
            "retain_stacks_on_account_removal applies only with auto_deployment: true",
            source,
            where,
            "retain_stacks_on_account_removal",
        )
    depends_on = tuple(item.get("depends_on") or [])
    if auto_deployment and len(depends_on) > MAX_AUTO_DEPLOYMENT_DEPENDENCIES:
        raise InputError(
            f"auto-deployment takes at most {MAX_AUTO_DEPLOYMENT_DEPENDENCIES} dependencies (AutoDeployment.DependsOn)",
            source,
            where,
            "depends_on",
        )
    spec = StackSetSpec(
        name=name,
        template=template,
        description=item.get("description", f"{name} (managed by sagemaker-stackset-deploy)"),
        permission_model=permission_model,
        call_as=CallAs(item.get("call_as", "self").upper()),
        auto_deployment=auto_deployment,
        retain_stacks_on_account_removal=bool(item.get("retain_stacks_on_account_removal", False)),
        retain_stacks=bool(item.get("retain_stacks", False)),
        administration_role_arn=item.get("administration_role_arn"),
        execution_role_name=item.get("execution_role_name"),
        organizational_units=tuple(sorted(ous)),
        accounts=tuple(sorted(accounts)),
        account_filter=account_filter,
        regions=tuple(region_list),
        parameters=parameters,
        overrides=tuple(overrides),
        operation_preferences=tuple(sorted(preferences.items())),
        depends_on=depends_on,
        tags=tuple(sorted((k, str(v)) for k, v in tags.items())),
        capabilities=template.capabilities,
        target_entries=entries,
    )
    return spec, refs


def dependency_graph(specs: Iterable[StackSetSpec]) -> dict[str, tuple[str, ...]]:
    """Each stack set's name -> the names it ``depends_on`` (graphlib's predecessor mapping)."""
    return {spec.name: spec.depends_on for spec in specs}


def _check_dependencies(specs: list[StackSetSpec], source: str) -> None:
    names = [spec.name for spec in specs]
    for spec in specs:
        where = f"stack set '{spec.name}'"
        for dep in spec.depends_on:
            if dep == spec.name:
                raise InputError("a stack set cannot depend on itself", source, where, "depends_on")
            if dep not in names:
                raise InputError(f"unknown stack set '{dep}'{did_you_mean(dep, names)}", source, where, "depends_on")
    try:
        TopologicalSorter(dependency_graph(specs)).prepare()
    except CycleError as error:
        # graphlib lists each node before the one that depends on it, first node repeated last:
        # reversed, it reads along depends_on; start it at the member listed first in the manifest.
        members = list(reversed(error.args[1]))[:-1]
        first = min(range(len(members)), key=lambda i: names.index(members[i]))
        cycle = members[first:] + members[:first]
        raise InputError(
            f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}", source, f"stack set '{cycle[-1]}'", "depends_on"
        ) from None


def dependency_order(specs: Iterable[StackSetSpec]) -> list[str]:
    """Names in an order where every stack set comes after its dependencies (deterministic)."""
    return list(TopologicalSorter(dependency_graph(specs)).static_order())


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
