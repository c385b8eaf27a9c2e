"""Policy and template analysis shared by the cfn-lint security rules and the policy linter.

Used by ``generator.rules`` (the custom cfn-lint rules) and by ``generator.policy_lint``
(parliament, run from the linters' own venv, which has neither cfn-lint nor troposphere):
so this module imports the standard library only, never cfn-lint. It lives outside the
``generator.rules`` package because importing that package imports cfn-lint.

Values are analysed in two forms:

* *variants*: every combination of ``Fn::If`` branches (by condition name, so one
  condition takes the same branch everywhere), with ``AWS::NoValue`` removed;
* *symbols*: intrinsic functions rendered as ``Fn::Sub``-style text (``{"Ref": "X"}`` ->
  ``${X}``, ``GetAtt X.Arn`` -> ``${X.Arn}``), so that ARNs can be compared as strings.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Fewer Fn::If conditions than this in one value are expanded exhaustively; beyond it
# each condition is still tried both ways, the others held at their first branch.
_MAX_EXHAUSTIVE_CONDITIONS = 8
UNKNOWN = "${?}"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# --- Fn::If expansion ------------------------------------------------------------------


def condition_names(value: Any) -> set[str]:
    """Names of the conditions of every ``Fn::If`` inside ``value``."""
    names: set[str] = set()
    if isinstance(value, dict):
        if_args = value.get("Fn::If") if len(value) == 1 else None
        if isinstance(if_args, list) and len(if_args) == 3 and isinstance(if_args[0], str):
            names.add(str(if_args[0]))
        for item in value.values():
            names |= condition_names(item)
    elif isinstance(value, list):
        for item in value:
            names |= condition_names(item)
    return names


def _choose(value: Any, choice: dict[str, bool]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, args),) = value.items()
            if key == "Fn::If" and isinstance(args, list) and len(args) == 3:
                return _choose(args[1] if choice.get(str(args[0]), True) else args[2], choice)
            if key == "Ref" and args == "AWS::NoValue":
                return NO_VALUE
        out = {}
        for key, item in value.items():
            chosen = _choose(item, choice)
            if chosen is not NO_VALUE:
                out[str(key)] = chosen
        return out
    if isinstance(value, list):
        return [c for c in (_choose(item, choice) for item in value) if c is not NO_VALUE]
    return value


def variants(value: Any) -> list[Any]:
    """``value`` once per combination of its ``Fn::If`` conditions (deduplicated)."""
    names = sorted(condition_names(value))
    if len(names) <= _MAX_EXHAUSTIVE_CONDITIONS:
        combos = itertools.product((True, False), repeat=len(names))
        choices = [dict(zip(names, combo, strict=True)) for combo in combos]
    else:
        choices = [{}] + [{name: False} for name in names]
    seen, out = set(), []
    for choice in choices:
        chosen = _choose(value, choice)
        key = json.dumps(chosen, sort_keys=True, default=repr)
        if key not in seen:
            seen.add(key)
            out.append(chosen)
    return out


# --- symbols ---------------------------------------------------------------------------


def symbol(value: Any) -> str:
    """``value`` as text with intrinsic functions in ``${...}`` form; ``${?}`` where unknown."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, args),) = value.items()
        if key == "Ref":
            return "${" + str(args) + "}"
        if key == "Fn::GetAtt":
            if isinstance(args, list):
                return "${" + ".".join(str(a) for a in args) + "}"
            return "${" + str(args) + "}"
        if key == "Fn::Sub":
            if isinstance(args, str):
                return args
            if isinstance(args, list) and args and isinstance(args[0], str):
                text = args[0]
                mapping = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
                for name, item in mapping.items():
                    text = text.replace("${" + str(name) + "}", symbol(item))
                return text
        if key == "Fn::Join" and isinstance(args, list) and len(args) == 2 and isinstance(args[1], list):
            return str(args[0]).join(symbol(item) for item in args[1])
        if key == "Fn::ImportValue":
            return "${ImportValue:" + symbol(args) + "}"
    return UNKNOWN


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (a scalar or a single intrinsic becomes a one-item list)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def symbols(value: Any) -> list[str]:
    """Every item of a scalar-or-list value, as symbols."""
    return [symbol(item) for item in as_list(value)]


def truthy(value: Any) -> bool:
    """A CloudFormation boolean that is literally true (``true``, ``"true"``, ``True``)."""
    return symbol(value).lower() == "true"


def get_path(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` or ``None`` when any step is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


# --- accounts and principals --------------------------------------------------------------

_OWN_ACCOUNT = "${AWS::AccountId}"
_PARTITIONS = ("${AWS::Partition}", "aws", "aws-cn", "aws-us-gov", "*")


def own_account_root(principal: str) -> bool:
    """Is ``principal`` this account's root (``arn:<p>:iam::${AWS::AccountId}:root`` or the bare id)?"""
    if principal == _OWN_ACCOUNT:
        return True
    return any(principal == f"arn:{p}:iam::{_OWN_ACCOUNT}:root" for p in _PARTITIONS if p != "*")


def same_account_principal(principal: str, local_roles: set[str] = frozenset()) -> bool:
    """Does ``principal`` name this account (its root, or a role/user ARN in it)?

    ``local_roles`` are the logical ids of IAM roles and users in the same template: a
    ``${X.Arn}`` of one of them is in this account by construction.
    """
    if own_account_root(principal):
        return True
    match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\.Arn\}", principal)
    if match and match.group(1) in local_roles:
        return True
    parts = arn_parts(principal)
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam" and parts[4] == _OWN_ACCOUNT


_ARN_FIELD = re.compile(r"(?:\$\{[^}]*\}|[^:$]|\$(?!\{))*")


def arn_parts(text: str) -> list[str]:
    """The six fields of an ARN symbol, splitting on colons outside ``${...}``; [] if not an ARN."""
    parts, position = [], 0
    while len(parts) < 5:
        field_match = _ARN_FIELD.match(text, position)
        end = field_match.end()
        if end >= len(text) or text[end] != ":":
            return []
        parts.append(text[position:end])
        position = end + 1
    parts.append(text[position:])
    return parts if parts[0] == "arn" else []


# --- policy documents ---------------------------------------------------------------------

# Where each resource type keeps its policy documents: (kind, path); "*" walks a list.
# Kinds: identity (attached to a principal), trust (a role's AssumeRolePolicyDocument),
# key (a KMS key policy), endpoint (a VPC endpoint policy), resource (any other
# resource-based policy).
POLICY_LOCATIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "AWS::IAM::Role": (("trust", ("AssumeRolePolicyDocument",)), ("identity", ("Policies", "*", "PolicyDocument"))),
    "AWS::IAM::User": (("identity", ("Policies", "*", "PolicyDocument")),),
    "AWS::IAM::Group": (("identity", ("Policies", "*", "PolicyDocument")),),
    "AWS::IAM::Policy": (("identity", ("PolicyDocument",)),),
    "AWS::IAM::ManagedPolicy": (("identity", ("PolicyDocument",)),),
    "AWS::IAM::RolePolicy": (("identity", ("PolicyDocument",)),),
    "AWS::IAM::UserPolicy": (("identity", ("PolicyDocument",)),),
    "AWS::IAM::GroupPolicy": (("identity", ("PolicyDocument",)),),
    "AWS::SSO::PermissionSet": (("identity", ("InlinePolicy",)),),
    "AWS::S3::BucketPolicy": (("resource", ("PolicyDocument",)),),
    "AWS::S3::AccessPoint": (("resource", ("Policy",)),),
    "AWS::KMS::Key": (("key", ("KeyPolicy",)),),
    "AWS::KMS::ReplicaKey": (("key", ("KeyPolicy",)),),
    "AWS::ECR::Repository": (("resource", ("RepositoryPolicyText",)),),
    "AWS::ECR::RegistryPolicy": (("resource", ("PolicyText",)),),
    "AWS::SageMaker::ModelPackageGroup": (("resource", ("ModelPackageGroupPolicy",)),),
    "AWS::SNS::TopicPolicy": (("resource", ("PolicyDocument",)),),
    "AWS::SQS::QueuePolicy": (("resource", ("PolicyDocument",)),),
    "AWS::SecretsManager::ResourcePolicy": (("resource", ("ResourcePolicy",)),),
    "AWS::Logs::ResourcePolicy": (("resource", ("PolicyDocument",)),),
    "AWS::Backup::BackupVault": (("resource", ("AccessPolicy",)),),
    "AWS::CodeArtifact::Domain": (("resource", ("PermissionsPolicyDocument",)),),
    "AWS::CodeArtifact::Repository": (("resource", ("PermissionsPolicyDocument",)),),
    "AWS::Events::EventBus": (("resource", ("Policy",)),),
    "AWS::EC2::VPCEndpoint": (("endpoint", ("PolicyDocument",)),),
}


@dataclass(frozen=True)
class PolicyDocument:
    """One policy document of a resource: where it is and what it is."""

    resource: str
    resource_type: str
    kind: str
    path: tuple  # from the template root, for cfn-lint's line numbers
    document: Any  # as written: may hold intrinsic functions and Fn::If


def _walk(node: Any, keys: tuple[str, ...], path: tuple) -> Iterator[tuple[tuple, Any]]:
    if not keys:
        yield path, node
        return
    key, rest = keys[0], keys[1:]
    if isinstance(node, dict) and len(node) == 1 and "Fn::If" in node and isinstance(node["Fn::If"], list):
        for index in (1, 2):
            if len(node["Fn::If"]) > index:
                yield from _walk(node["Fn::If"][index], keys, path + ("Fn::If", index))
        return
    if key == "*":
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _walk(item, rest, path + (index,))
    elif isinstance(node, dict) and key in node:
        yield from _walk(node[key], rest, path + (key,))


def policy_documents(template: dict) -> Iterator[PolicyDocument]:
    """Every policy document held by a resource of ``template`` (a decoded template dict)."""
    resources = template.get("Resources") or {}
    if not isinstance(resources, dict):
        return
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("Type")
        properties = resource.get("Properties")
        if rtype not in POLICY_LOCATIONS or not isinstance(properties, dict):
            continue
        for kind, keys in POLICY_LOCATIONS[rtype]:
            for path, document in _walk(properties, keys, ("Resources", name, "Properties")):
                if isinstance(document, str):
                    try:
                        document = json.loads(document)
                    except ValueError:
                        continue
                if document is not None and document is not NO_VALUE:
                    yield PolicyDocument(str(name), str(rtype), _kind(kind, properties), path, document)


BOUNDARY_NAME_SUFFIX = "permissions-boundary"


def _kind(kind: str, properties: dict) -> str:
    """``boundary`` for the product's permissions boundary (``<prefix>permissions-boundary``):
    a ceiling that grants nothing by itself, so the grant rules do not apply to it."""
    name = properties.get("ManagedPolicyName")
    text = name.get("Fn::Sub") if isinstance(name, dict) else name
    if kind == "identity" and isinstance(text, str) and text.endswith(BOUNDARY_NAME_SUFFIX):
        return "boundary"
    return kind


@dataclass(frozen=True)
class Statement:
    """One policy statement, normalised: lower-case actions and condition keys, symbols."""

    index: int
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principals: dict = field(hash=False)  # kind -> tuple of symbols; "*" is {"AWS": ("*",)}
    not_principal: bool
    conditions: dict = field(hash=False)  # operator (lower) -> key (lower) -> tuple of symbols
    sid: str = ""

    def allows(self) -> bool:
        return self.effect == "Allow"

    def grants(self, action: str) -> bool:
        """Does this statement's action element cover ``action`` (``service:Name``)?"""
        action = action.lower()
        hit = any(fnmatch.fnmatchcase(action, pattern) for pattern in self.actions)
        return hit != self.not_action

    def everyone(self) -> bool:
        """Is the principal everyone (``*`` or ``{"AWS": "*"}``)?"""
        return not self.not_principal and "*" in self.principals.get("AWS", ())

    def aws_principals(self) -> tuple[str, ...]:
        return tuple(self.principals.get("AWS", ()))

    def condition_values(self, operators: set[str], key: str) -> list[str]:
        """Values tested for ``key`` under any of ``operators`` (both lower case)."""
        values: list[str] = []
        for operator, tests in self.conditions.items():
            if operator in operators:
                values.extend(tests.get(key, ()))
        return values


def _principals(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str) or (
        isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Ref", "Fn::Sub", "Fn::GetAtt")
    ):
        return {"AWS": tuple(symbols(value))}
    if isinstance(value, dict):
        return {str(kind): tuple(symbols(item)) for kind, item in value.items()}
    return {}


def _conditions(value: Any) -> dict:
    out: dict = {}
    if isinstance(value, dict):
        for operator, tests in value.items():
            if isinstance(tests, dict):
                out[str(operator).lower()] = {str(k).lower(): tuple(symbols(v)) for k, v in tests.items()}
    return out


def statements(document: Any) -> list[Statement]:
    """The statements of one (already variant-expanded) policy document."""
    if not isinstance(document, dict):
        return []
    out = []
    for index, raw in enumerate(as_list(document.get("Statement"))):
        if not isinstance(raw, dict):
            continue
        not_action = "NotAction" in raw
        not_resource = "NotResource" in raw
        not_principal = "NotPrincipal" in raw
        out.append(
            Statement(
                index=index,
                effect=symbol(raw.get("Effect", "")),
                actions=tuple(a.lower() for a in symbols(raw.get("NotAction" if not_action else "Action"))),
                not_action=not_action,
                resources=tuple(symbols(raw.get("NotResource" if not_resource else "Resource"))),
                not_resource=not_resource,
                principals=_principals(raw.get("NotPrincipal" if not_principal else "Principal")),
                not_principal=not_principal,
                conditions=_conditions(raw.get("Condition")),
                sid=symbol(raw.get("Sid", "")),
            )
        )
    return out


def statement_path(policy: PolicyDocument, document: Any, statement: Statement) -> tuple:
    """Path of ``statement`` in the template (or of its document when it cannot be located)."""
    raw = policy.document.get("Statement") if isinstance(policy.document, dict) else None
    if isinstance(raw, list) and isinstance(document.get("Statement"), list) and len(raw) == len(document["Statement"]):
        return policy.path + ("Statement", statement.index)
    return policy.path


def logical_ids_of_type(template: dict, *types: str) -> set[str]:
    """Logical ids of the resources of ``types`` in ``template``."""
    resources = template.get("Resources") or {}
    return {str(n) for n, r in resources.items() if isinstance(r, dict) and r.get("Type") in types}


def unique_matches(matches: list) -> list:
    """``matches`` without repeats (one per path and message), in order: variants often agree."""
    seen, out = set(), []
    for match in matches:
        key = (tuple(match.path), match.message)
        if key not in seen:
            seen.add(key)
            out.append(match)
    return out


# --- parameters --------------------------------------------------------------------------------


def possible_values(template: dict, value: Any) -> list[str]:
    """The values ``value`` may take at launch: a literal itself; a parameter's AllowedValues.

    A parameter without AllowedValues may be given anything, so it yields ``${?}``: a rule
    requiring a setting is satisfied by a parameter only when every allowed value satisfies it.
    """
    text = symbol(value)
    match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\}", text)
    parameters = template.get("Parameters") or {}
    if match and isinstance(parameters.get(match.group(1)), dict):
        allowed = [symbol(v) for v in as_list(parameters[match.group(1)].get("AllowedValues"))]
        return allowed or [UNKNOWN]
    return [text]


def always(template: dict, value: Any, *expected: str, ignore_case: bool = False) -> bool:
    """Is every value ``value`` may take one of ``expected``?"""
    values = possible_values(template, value)
    if ignore_case:
        return all(v.lower() in {e.lower() for e in expected} for v in values)
    return all(v in expected for v in values)
