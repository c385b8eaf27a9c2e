"""The deploying roles' rights, generated from the CloudFormation registry schemas cfn-lint ships.

Each resource type's schema lists the permissions its create, read, update, delete and list
handlers call (``handlers.<handler>.permissions``); cfn-lint's IAM reference
(``AdditionalSpecs/Policies.json``) says, for each action, which resource types IAM can
scope it to and their ARN formats. From the two, for exactly the resource types of the
templates a role deploys:

- ``Describe*`` and ``List*`` actions become one read-only wildcard per service on ``*``
  (metadata only, and it keeps the policies within IAM's size limits);
- an action IAM scopes to resources gets the ARN formats of its resource types, in this
  account, with the product's names where the product names them (roles, policies, groups,
  buckets: :class:`Names`);
- an action IAM does not scope (``kms:CreateKey``) gets ``*``, by action name, never a
  write wildcard;
- IAM writes that can raise a role's rights need the product's permissions boundary
  (``iam:PermissionsBoundary``), may attach only the product's own policies
  (``iam:PolicyARN``), and are denied on the deploying roles themselves and on the boundary.

A new template, resource type or schema version changes the rights visibly in
``python -m generator --check``: nothing here is a hand-kept action list.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources as package_data

from awacs.aws import (
    Action,
    ArnLike,
    ArnNotLike,
    Condition,
    Deny,
    Statement,
    StringEquals,
    StringEqualsIfExists,
    StringNotEquals,
)
from troposphere import Sub, encode_to_dict

HANDLERS = ("create", "read", "update", "delete", "list")
SCHEMA_REGION = "us-east-1"
READ_PREFIXES = ("Describe", "List")

# The deploying roles and the templates each deploys (names of generator.registry.TEMPLATES).
# The boundary is in no list: an administrator deploys it, no deploying role may change it.
# The StackSet execution role: every template a self-managed stack set may carry, the MLOps
# project pipeline's model-deploy stack set included; the launch role: every catalog product.
DEPLOYED_TEMPLATES = {
    "stackset-execution-role": (
        "environment",
        "target-network",
        "target-account-roles",
        "model-deploy",
        "endpoint-invoke-role",
        "endpoint-consumer-policy",
        "servicecatalog-launch-role",
    ),
    "servicecatalog-launch-role": (
        "environment",
        "target-account-roles",
        "model-deploy",
        "mlops-model-build-project",
        "mlops-multi-account-project",
    ),
    "model-deployment-role": ("model-deploy",),
}

# IAM writes whose request carries the role's boundary: allowed only with the product's.
BOUNDED_ROLE_ACTIONS = frozenset(
    {
        "iam:CreateRole",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
    }
)
# Actions that attach a managed policy: only the product's own policies (never AdministratorAccess).
ATTACH_ACTIONS = frozenset({"iam:AttachRolePolicy", "iam:AttachGroupPolicy", "iam:AttachUserPolicy"})
# Handler permissions a deploying role never gets: they would lift a role out of its boundary.
FORBIDDEN = frozenset({"iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"})
# Writes that would change the boundary policy or a deploying role: denied on those ARNs.
POLICY_WRITES = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
ROLE_WRITES = (
    "iam:AttachRolePolicy",
    "iam:DeleteRole",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:TagRole",
    "iam:UntagRole",
)
# IAM resource types whose owner is AWS or another account: not scoped to this account.
_FOREIGN_RESOURCES = {("ec2", "vpc-endpoint-service"), ("ec2", "prefix-list")}


def _lower_text(pattern: str) -> str:
    """``pattern`` in lower case outside its ``${...}`` variables."""
    return re.sub(r"(\$\{[^}]*\})|([^$]+)", lambda m: m.group(1) or m.group(2).lower(), pattern)


# Service prefixes the schemas spell otherwise than IAM does.
SERVICE_ALIASES = {"efs": "elasticfilesystem"}


@dataclass(frozen=True)
class Names:
    """The product's names a deploying role may write, as ``Fn::Sub`` patterns.

    ``prefixes``: name prefixes of what the product names (``${EnvName}-``) and of what
    CloudFormation names after the stack (``StackSet-``, ``SC-``); ``boundary``: the name of
    the permissions boundary policy; ``protected_roles``: the deploying roles' own names.
    """

    prefixes: tuple[str, ...]
    boundary: str
    protected_roles: tuple[str, ...]
    pass_roles: tuple = ()  # when given: the only roles iam:PassRole reaches (ARNs or Fn::Sub texts)
    pass_to: str | None = None  # when given: the only service those roles are passed to (iam:PassedToService)

    def iam(self, kind: str, name: str) -> str:
        return f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:{kind}/{name}"

    def boundary_arn(self) -> str:
        return self.iam("policy", self.boundary)

    def product(self, kind: str) -> list[str]:
        return [self.iam(kind, f"{p}*") for p in self.prefixes]

    def buckets(self, suffix: str = "") -> list[str]:
        # Bucket names are lower case: CloudFormation lowers the stack name it derives them from.
        return [f"arn:${{AWS::Partition}}:s3:::{_lower_text(p)}*{suffix}" for p in self.prefixes]


# --- what the templates need ---------------------------------------------------------------


@cache
def template_resource_types(name: str) -> frozenset[str]:
    """The resource types of the registered template ``name`` (built, never read from disk)."""
    from generator.registry import TEMPLATES  # the registry imports the builders that call this

    return frozenset(r["Type"] for r in TEMPLATES[name]().to_dict().get("Resources", {}).values())


def resource_types(template_names: Iterable[str]) -> frozenset[str]:
    return frozenset().union(*(template_resource_types(n) for n in template_names))


@cache
def _schema_handlers(resource_type: str, region: str = SCHEMA_REGION) -> dict:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    return PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema.get("handlers", {})


def handler_permissions(types: Iterable[str], handlers: Iterable[str] = HANDLERS) -> dict[str, set[str]]:
    """``{action: {"<type> <handler>", ...}}``: every permission the handlers of ``types`` call."""
    needed: dict[str, set[str]] = defaultdict(set)
    for resource_type in sorted(types):
        for handler, spec in _schema_handlers(resource_type).items():
            if handler in handlers:
                for action in spec.get("permissions", []):
                    needed[iam_action(action)].add(f"{resource_type} {handler}")
    return dict(needed)


def iam_action(permission: str) -> str:
    """A schema's permission as IAM spells it (``efs:`` is ``elasticfilesystem:``)."""
    service, _, name = permission.partition(":")
    return f"{SERVICE_ALIASES.get(service, service)}:{name}"


def is_iam_action(action: str) -> bool:
    """Whether IAM knows ``action``: some schemas list API names that are no IAM action
    (``s3:PutBucketReplication`` for ``s3:PutReplicationConfiguration``), which no policy can grant."""
    service, _, name = action.partition(":")
    return name.lower() in _iam_reference().get(service, {}).get("Actions", {})


@lru_cache(maxsize=1)
def _iam_reference() -> dict:
    path = package_data.files("cfnlint") / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text())


def _arn_pattern(service: str, resource: str, fmt: str) -> str:
    account = "*" if (service, resource) in _FOREIGN_RESOURCES else "\0A"
    text = fmt.replace("${Partition}", "\0P").replace("${Region}", "*").replace("${Account}", account)
    while "${" in text:  # any other placeholder (a name, an id) matches anything
        start = text.index("${")
        text = text[:start] + "*" + text[text.index("}", start) + 1 :]
    return text.replace(".*", "*").replace("\0P", "${AWS::Partition}").replace("\0A", "${AWS::AccountId}")


def _account_wide(service: str, pattern: str) -> str:
    """Any resource of ``service`` in this account, for an ARN pattern in this account.

    The product leaves most of these resources to CloudFormation's generated names, so the
    account (and the service) is the scope; it also keeps the policies within IAM's limits.
    """
    own = f"arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:"
    # S3 ARNs with a region (access points, jobs) stay as IAM writes them: IAM refuses s3:*:<account>:*.
    return own + "*" if pattern.startswith(own) and service != "s3" else pattern


def action_resource_types(action: str) -> tuple[str, ...] | None:
    """The resource types IAM scopes ``action`` to; ``None`` when it needs ``*`` (or is unknown)."""
    service, name = action.split(":", 1)
    entry = _iam_reference().get(service, {}).get("Actions", {}).get(name.lower())
    kinds = tuple((entry or {}).get("Resources", ()))
    return kinds or None


def action_resources(action: str, names: Names) -> list[str]:
    """The ``Fn::Sub`` ARN patterns ``action`` is allowed on: the product's names where it names them."""
    service = action.split(":", 1)[0]
    if action == "iam:PassRole" and names.pass_roles:
        return list(names.pass_roles)
    if action == "iam:CreateServiceLinkedRole":
        return [names.iam("role", "aws-service-role/*")]
    kinds = action_resource_types(action)
    if kinds is None:
        return ["*"]
    if service == "s3" and {"bucket", "object"} & set(kinds):
        # The templates create buckets and objects only: an action that also reaches access
        # points, access grants or Storage Lens groups (s3:TagResource) gets none of those.
        kinds = tuple(k for k in kinds if k in ("bucket", "object"))
    patterns: list[str] = []
    for kind in kinds:
        if service == "iam" and kind in ("role", "policy", "group"):
            found = names.product(kind)
        elif service == "s3" and kind == "bucket":
            found = names.buckets()
        elif service == "s3" and kind == "object":
            found = names.buckets("/*")
        else:
            formats = _iam_reference()[service]["Resources"].get(kind, {}).get("ARNFormats", ["*"])
            found = [_account_wide(service, _arn_pattern(service, kind, f)) for f in formats]
        patterns += [p for p in found if p not in patterns]
    return sorted(patterns)


def _condition(action: str, names: Names) -> tuple:
    tests = []
    if action in BOUNDED_ROLE_ACTIONS:
        tests.append(("StringEquals", "iam:PermissionsBoundary", names.boundary_arn()))
    if action in ATTACH_ACTIONS:
        tests.append(("ArnLike", "iam:PolicyARN", tuple(names.product("policy"))))
    if action == "iam:PassRole" and names.pass_to:
        tests.append(("StringEquals", "iam:PassedToService", names.pass_to))
    return tuple(tests)


def _sid(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace(":", "-").split("-") if part)


def _awacs_action(action: str) -> Action:
    service, name = action.split(":", 1)
    return Action(service, name)


_OPERATORS = {"StringEquals": StringEquals, "ArnLike": ArnLike}
# Actions IAM cannot scope to a resource still act only on this account's resources where
# the request names one (aws:ResourceAccount is absent for some creates: IfExists).
_THIS_ACCOUNT = Condition(StringEqualsIfExists({"aws:ResourceAccount": Sub("${AWS::AccountId}")}))


def _sub(pattern):
    # Fn::Sub only for texts with a substitution: a service principal or "*" stays a plain string.
    return Sub(pattern) if isinstance(pattern, str) and "${" in pattern else pattern


def allowed_rights(actions: Iterable[str], names: Names) -> list[Statement]:
    """Allow statements granting ``actions`` (``service:Name``) as the module docstring says."""
    read_wildcards: set[str] = set()
    groups: dict[tuple, list[str]] = defaultdict(list)
    for action in sorted(a for a in set(actions) - FORBIDDEN if is_iam_action(a)):
        service, name = action.split(":", 1)
        if name.startswith(READ_PREFIXES) and service != "iam":
            read_wildcards.add(f"{service}:{next(p for p in READ_PREFIXES if name.startswith(p))}*")
            continue
        groups[(service, _condition(action, names))].append(action)
    statements = []
    if read_wildcards:
        statements.append(
            Statement(
                Sid="ReadMetadata",
                Effect="Allow",
                Action=[_awacs_action(a) for a in sorted(read_wildcards)],
                Resource=["*"],
                Condition=_THIS_ACCOUNT,
            )
        )
    counters: dict[str, int] = defaultdict(int)
    # One statement per service and condition, on the union of its actions' resources (IAM's
    # own ARNs stay per action: a role action never reaches a policy or a service-linked role).
    split = defaultdict(list)
    for (service, tests), group in groups.items():
        if service == "iam":
            for action in group:
                split[(service, tuple(action_resources(action, names)), tests)].append(action)
        else:
            for action in group:  # actions IAM cannot scope stay apart, on "*"
                unscoped = action_resources(action, names) == ["*"]
                split[(service, ("*",) if unscoped else (), tests)].append(action)
    for key in [k for k in split if k[0] != "iam" and k[1] == ()]:
        union = tuple(sorted({r for a in split[key] for r in action_resources(a, names)}))
        split[(key[0], union, key[2])] = split.pop(key)
    for (service, resources, tests), group in sorted(split.items(), key=lambda item: (item[0][0], item[1])):
        counters[service] += 1
        statement = Statement(
            Sid=f"{_sid(service)}{counters[service]}",
            Effect="Allow",
            Action=[_awacs_action(a) for a in group],
            Resource=[_sub(r) for r in resources],
        )
        if not tests and resources == ("*",):
            statement.Condition = _THIS_ACCOUNT
        if tests:
            statement.Condition = Condition(
                [
                    _OPERATORS[op]({key: [_sub(v) for v in value] if isinstance(value, tuple) else _sub(value)})
                    for op, key, value in tests
                ]
            )
        statements.append(statement)
    return statements


def escalation_denies(names: Names) -> list[Statement]:
    """No deploying role changes the boundary, a deploying role, or lifts a role out of the boundary."""
    statements = [
        Statement(
            Sid="DenyBoundaryChanges",
            Effect=Deny,
            Action=[_awacs_action(a) for a in POLICY_WRITES],
            Resource=[Sub(names.boundary_arn())],
        ),
        Statement(
            Sid="DenyRemovingBoundaries",
            Effect=Deny,
            Action=[_awacs_action(a) for a in sorted(FORBIDDEN)],
            Resource=["*"],
        ),
        Statement(
            Sid="DenyRolesWithoutProductBoundary",
            Effect=Deny,
            Action=[_awacs_action(a) for a in sorted(BOUNDED_ROLE_ACTIONS)],
            Resource=["*"],
            Condition=Condition(StringNotEquals({"iam:PermissionsBoundary": Sub(names.boundary_arn())})),
        ),
        Statement(
            Sid="DenyAttachingOtherPolicies",
            Effect=Deny,
            Action=[_awacs_action(a) for a in sorted(ATTACH_ACTIONS)],
            Resource=["*"],
            Condition=Condition(ArnNotLike({"iam:PolicyARN": [Sub(p) for p in names.product("policy")]})),
        ),
    ]
    if names.protected_roles:
        statements.insert(
            1,
            Statement(
                Sid="DenyDeployingRoleChanges",
                Effect=Deny,
                Action=[_awacs_action(a) for a in ROLE_WRITES],
                Resource=[Sub(names.iam("role", role)) for role in names.protected_roles],
            ),
        )
    return statements


def deploying_rights(role: str, names: Names, extra_actions: Iterable[str] = ()) -> list[Statement]:
    """Every statement of deploying role ``role`` (a key of :data:`DEPLOYED_TEMPLATES`)."""
    needed = set(handler_permissions(resource_types(DEPLOYED_TEMPLATES[role]))) | set(extra_actions)
    return allowed_rights(needed, names) + escalation_denies(names)


def _size(statement: Statement) -> int:
    """Characters IAM counts for ``statement`` (``Fn::Sub`` text is never shorter than its value)."""
    data = encode_to_dict(statement)

    def plain(node):
        if isinstance(node, dict):
            if set(node) == {"Fn::Sub"}:
                return node["Fn::Sub"]
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    return len(json.dumps(plain(data), separators=(",", ":")))


MANAGED_POLICY_LIMIT = 6144
_DOCUMENT_OVERHEAD = len('{"Version":"2012-10-17","Statement":[]}')


def pack(statements: list[Statement], limit: int = MANAGED_POLICY_LIMIT) -> list[list[Statement]]:
    """Split ``statements`` into documents of at most ``limit`` characters each, in order."""
    documents: list[list[Statement]] = [[]]
    used = _DOCUMENT_OVERHEAD
    for statement in statements:
        size = _size(statement) + 1
        if documents[-1] and used + size > limit:
            documents.append([])
            used = _DOCUMENT_OVERHEAD
        documents[-1].append(statement)
        used += size
    return documents


def add_rights_policies(template, title: str, statements: list[Statement], condition: str | None = None) -> list:
    """Managed policies holding ``statements`` (each within IAM's size limit), for one role."""
    from troposphere.iam import ManagedPolicy

    from generator.policies import document

    documents = pack(statements)
    if len(documents) > 10:
        raise ValueError(f"{title}: {len(documents)} managed policies, over IAM's default 10 per role")
    policies = []
    for number, part in enumerate(documents, start=1):
        extra = {"Condition": condition} if condition else {}
        policies.append(
            template.add_resource(
                ManagedPolicy(
                    f"{title}{number}",
                    Description=f"{title}, part {number} of {len(documents)}: generated by generator.deploy_rights",
                    PolicyDocument=document(*part),
                    **extra,
                )
            )
        )
    return policies
