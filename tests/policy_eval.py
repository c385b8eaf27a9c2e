"""A tiny IAM policy evaluator over rendered templates, for tests of policy *logic*.

``Resolver`` turns a template's intrinsic functions into plain values for one set of
parameter values (conditions evaluated, ``AWS::NoValue`` dropped, resources given
recognisable fake ids). ``evaluate`` decides one request against a list of statements the
way IAM does for a single policy: an explicit Deny wins, then any Allow, else an implicit
deny. It knows the condition operators the templates use; an unknown one fails the test
rather than being ignored.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

ACCOUNT = "111122223333"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()


class Resolver:
    """Resolve intrinsic functions of ``template`` (a ``to_dict()``) for ``parameters``."""

    def __init__(
        self,
        template: dict,
        parameters: dict | None = None,
        *,
        partition: str = PARTITION,
        account: str = ACCOUNT,
        ssm: dict | None = None,
    ):
        self.template = template
        self.partition = partition
        self.account = account
        self.ssm = ssm or {}  # values of {{resolve:ssm:NAME}} dynamic references
        self.parameters = {}
        for name, slot in template.get("Parameters", {}).items():
            value = (parameters or {}).get(name, slot.get("Default"))
            if slot["Type"] == "CommaDelimitedList" or slot["Type"].startswith("List<"):
                value = value.split(",") if isinstance(value, str) else list(value)
            self.parameters[name] = value
        unknown = set(parameters or {}) - set(self.parameters)
        assert not unknown, f"unknown parameters {unknown}"
        self._conditions: dict[str, bool] = {}

    # --- references -----------------------------------------------------------------
    def ref(self, name: str):
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": REGION,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "stack",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.template["Resources"][name]
        kind = resource["Type"]
        if kind == "AWS::EC2::VPCEndpoint":
            return f"vpce-{name.lower()}"
        if kind == "AWS::S3::Bucket":
            return f"bucket-{name.lower()}"
        return f"{name}-id"

    def get_att(self, name: str, attribute: str):
        kind = self.template["Resources"][name]["Type"]
        if attribute == "Arn" and kind == "AWS::IAM::Role":
            return f"arn:{self.partition}:iam::{self.account}:role/{name}"
        if attribute == "Arn" and kind == "AWS::KMS::Key":
            return f"arn:{self.partition}:kms:{REGION}:{self.account}:key/{name}"
        if attribute == "Arn" and kind == "AWS::S3::Bucket":
            return f"arn:{self.partition}:s3:::{self.ref(name)}"
        if attribute == "ModelPackageGroupArn":
            group = self.resolve(self.template["Resources"][name]["Properties"]["ModelPackageGroupName"])
            return f"arn:{self.partition}:sagemaker:{REGION}:{self.account}:model-package-group/{group}"
        if attribute == "GroupId":
            return f"sg-{name.lower()}"
        return f"{name}.{attribute}"

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._test(self.template["Conditions"][name])
        return self._conditions[name]

    def _test(self, node) -> bool:
        ((operator, args),) = node.items()
        if operator == "Condition":
            return self.condition(args)
        if operator == "Fn::Equals":
            left, right = (self.resolve(a) for a in args)
            return left == right
        if operator == "Fn::Not":
            return not self._test(args[0])
        if operator == "Fn::And":
            return all(self._test(a) for a in args)
        if operator == "Fn::Or":
            return any(self._test(a) for a in args)
        raise AssertionError(f"unknown condition function {operator}")

    # --- values ---------------------------------------------------------------------
    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            if key == "Ref":
                return self.ref(args)
            if key == "Fn::GetAtt":
                return self.get_att(*args)
            if key == "Fn::If":
                name, yes, no = args
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Sub":
                text, variables = (args, {}) if isinstance(args, str) else args
                values = {k: self.resolve(v) for k, v in variables.items()}

                def substitute(match):
                    name = match.group(1)
                    if name in values:
                        return str(values[name])
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    value = self.ref(name)
                    return ",".join(value) if isinstance(value, list) else str(value)

                text = re.sub(r"\$\{([^}!]+)\}", substitute, text)
                return re.sub(r"\{\{resolve:ssm:([^}]+)\}\}", lambda m: self.ssm.get(m.group(1), m.group(0)), text)
            if key == "Fn::Join":
                delimiter, items = args
                return delimiter.join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = args
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                delimiter, text = args
                return self.resolve(text).split(delimiter)
            if key == "Fn::GetAZs":
                return [f"{REGION}{c}" for c in "abc"]
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}


# --- evaluation -------------------------------------------------------------------------


@dataclass
class Request:
    """One request: who (an IAM principal ARN and account, or a service), what, where, context."""

    action: str
    resource: str = "*"
    principal_arn: str | None = None
    principal_account: str | None = None
    service: str | None = None
    context: dict = field(default_factory=dict)

    def keys(self) -> dict:
        values = {k.lower(): v for k, v in self.context.items()}
        # Keys IAM puts in every request context.
        values.setdefault("aws:viaawsservice", "false")
        values.setdefault("aws:securetransport", "true")
        if self.principal_arn:
            values.setdefault("aws:principalarn", self.principal_arn)
        if self.principal_account:
            values.setdefault("aws:principalaccount", self.principal_account)
        if self.service:
            values.setdefault("aws:principalservicename", self.service)
            values.setdefault("aws:principalisawsservice", "true")
        else:
            values.setdefault("aws:principalisawsservice", "false")
        return values


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _principal_matches(principal, request: Request, root_delegates: bool = True) -> bool:
    if principal is None:  # identity policy: applies to its holder
        return True
    if principal == "*":
        return True
    for kind, values in principal.items():
        for value in _as_list(values):
            if kind == "Service" and request.service == value:
                return True
            if kind != "AWS" or request.service:
                continue
            if value == "*":
                return True
            if re.fullmatch(r"\d{12}", value) and request.principal_account == value:
                return True
            root = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):root", value)
            # A key or bucket policy naming the account root delegates to that account's IAM.
            if root and root_delegates and request.principal_account == root.group(1):
                return True
            if value == request.principal_arn:
                return True
    return False


def _like(pattern: str, value: str, case_sensitive=True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _matches_any(patterns, value, case_sensitive=True) -> bool:
    return any(_like(p, value, case_sensitive) for p in _as_list(patterns))


def _condition_holds(operator: str, key: str, expected, request_values: dict) -> bool:
    present = key.lower() in request_values
    actual = request_values.get(key.lower())
    expected = [str(e) for e in _as_list(expected)]
    if operator.startswith("ForAnyValue:"):
        base = operator.split(":", 1)[1]
        if not present:
            return False
        return any(_condition_holds(base, key, expected, {key.lower(): item}) for item in _as_list(actual))
    if operator.endswith("IfExists"):
        if not present:
            return True
        operator = operator[: -len("IfExists")]
    if operator == "Null":
        return (not present) == (expected[0] == "true")
    negated = "Not" in operator
    base = operator.replace("Not", "")
    if not present:
        return negated
    actual = str(actual)
    if base == "StringEquals":
        result = actual in expected
    elif base in ("StringLike", "ArnLike", "ArnEquals"):
        result = _matches_any(expected, actual)
    elif base == "Bool":
        result = actual.lower() == expected[0].lower()
    else:
        raise AssertionError(f"condition operator {operator} is not known to the test evaluator")
    return not result if negated else result


def statement_applies(statement: dict, request: Request, root_delegates: bool = True) -> bool:
    if not _principal_matches(statement.get("Principal"), request, root_delegates):
        return False
    if not _matches_any(statement["Action"], request.action, case_sensitive=False):
        return False
    if "Resource" in statement and not _matches_any(statement["Resource"], request.resource):
        return False
    values = request.keys()
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, expected in tests.items():
            if not _condition_holds(operator, key, expected, values):
                return False
    return True


def evaluate(document: dict, request: Request) -> str:
    """``"Deny"`` (explicit), ``"Allow"``, or ``"ImplicitDeny"`` for ``request`` under ``document``."""
    statements = _as_list(document["Statement"])
    if any(s["Effect"] == "Deny" and statement_applies(s, request) for s in statements):
        return "Deny"
    if any(s["Effect"] == "Allow" and statement_applies(s, request) for s in statements):
        return "Allow"
    return "ImplicitDeny"


def _names_the_principal(document: dict, request: Request) -> bool:
    """Whether an Allow of ``document`` applies to ``request`` without delegating to the account root."""
    return any(
        s["Effect"] == "Allow" and statement_applies(s, request, root_delegates=False)
        for s in _as_list(document["Statement"])
    )


def deciding_statements(document: dict, request: Request) -> list[str]:
    """Sids of the statements that apply to ``request`` (for assertion messages)."""
    return [s.get("Sid", "?") for s in _as_list(document["Statement"]) if statement_applies(s, request)]


# --- one request through every policy that decides it (SCP-free) -------------------------


@dataclass
class Walk:
    """The policies AWS consults for one request, each already resolved.

    ``identity``: the caller's identity policies; ``boundary``: its permissions boundary;
    ``resource``: the resource's policy (bucket, key, repository, group) of account
    ``resource_account``; ``endpoint``: the VPC endpoint policy the request passes through;
    ``key``: set when ``resource`` is a KMS key policy (a key policy is always required).
    """

    identity: list[dict]
    boundary: dict | None = None
    resource: dict | None = None
    resource_account: str | None = None
    endpoint: dict | None = None
    key: bool = False


def decide(walk: Walk, request: Request) -> tuple[bool, str]:
    """(allowed, why) for ``request`` under ``walk``, the way IAM combines the policy types.

    An explicit Deny anywhere wins; an endpoint policy and a boundary must each allow; across
    accounts both the identity and the resource policy must allow; in one account either
    does, except for KMS, whose key policy must allow (and, through the account root, IAM too).
    """
    documents = [("identity", d) for d in walk.identity]
    documents += [
        (kind, d)
        for kind, d in (("boundary", walk.boundary), ("resource", walk.resource), ("endpoint", walk.endpoint))
        if d
    ]
    for kind, document in documents:
        if evaluate(document, request) == "Deny":
            return False, f"explicit deny in the {kind} policy: {deciding_statements(document, request)}"
    for kind, document in (("endpoint", walk.endpoint), ("boundary", walk.boundary)):
        if document and evaluate(document, request) != "Allow":
            return False, f"the {kind} policy does not allow it"
    identity = any(evaluate(d, request) == "Allow" for d in walk.identity)
    resource = walk.resource is not None and evaluate(walk.resource, request) == "Allow"
    cross_account = walk.resource_account is not None and walk.resource_account != request.principal_account
    if walk.key and not cross_account and resource and _names_the_principal(walk.resource, request):
        # A key policy statement naming the principal itself (not the account root) is enough.
        return True, "the key policy allows the principal itself"
    if walk.key or cross_account:
        if not resource:
            return False, "the resource policy does not allow it"
        if not identity:
            return False, "no identity policy allows it"
        return True, "identity and resource policies allow it"
    if identity or resource:
        return True, "allowed in one account"
    return False, "nothing allows it"
