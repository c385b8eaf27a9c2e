"""STS: AssumeRole evaluates the role's trust policy, as AWS does.

moto 5.2.5 hands out credentials for any RoleArn ("the role does not need to exist"),
whatever the trust policy says, with any ExternalId and any session name. Here AssumeRole
refuses, with AWS's AccessDenied (HTTP 403) "User: <caller arn> is not authorized to
perform: sts:AssumeRole on resource: <role arn>", a role that does not exist and one whose
trust policy does not allow the caller, and refuses an invalid RoleSessionName or
ExternalId with ValidationError.

The evaluator is small and explicit: it understands the forms this project's templates
and seeding use, and refuses (never allows) what it does not understand.

- Principal ``{"AWS": ...}``: ``*``, an account id, ``arn:<p>:iam::<account>:root`` (any
  principal of that account), a role ARN (a session of that role), a user ARN. Service and
  federated principals never match an IAM caller.
- Action ``sts:AssumeRole`` (or a wildcard that covers it: ``sts:*``, ``*``); statements with
  ``NotPrincipal`` or ``NotAction`` are not understood.
- Conditions: ``StringEquals`` / ``StringEqualsIfExists`` (and ``StringLike`` without
  wildcards) on ``sts:ExternalId``, ``aws:PrincipalOrgID``, ``aws:PrincipalAccount`` and
  ``aws:SourceAccount``. Any other operator or key: the statement does not match.

The same evaluator (``resource_policy_allows``) reads KMS key policies for another action and
its own context keys (``servicecatalog.py``: a template object encrypted under a KMS key).
- A matching ``Deny`` wins; a ``Deny`` that is not understood also refuses.

Not evaluated: the caller's own identity policies (AWS also needs them to allow
sts:AssumeRole on the role across accounts), session policies, DurationSeconds against the
role's MaxSessionDuration, role chaining limits.
"""

from __future__ import annotations

import fnmatch
import json
import re
import urllib.parse

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends
from moto.sts import responses
from moto.sts.exceptions import STSValidationError

# botocore roleSessionNameType: min 2, max 64, pattern [\w+=,.@-]*
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
# botocore externalIdType: min 2, max 1224, pattern [\w+=,.@:\/-]*
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
_ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_ALLOWED_OPERATORS = {"StringEquals", "StringEqualsIfExists", "StringLike"}


class AccessDenied(ServiceException):
    """STS's AccessDenied (not modeled in botocore; AWS answers 403, type Sender)."""

    code = "AccessDenied"

    def __init__(self, caller_arn: str, role_arn: str):
        # IAM UG, "I can't assume a role": "If your account number is not listed in the Principal
        # element of the role's trust policy, then you cannot assume the role, no matter what
        # permissions are granted to you in access policies." The same answer when the role does
        # not exist: AWS does not disclose whether it does.
        super().__init__(f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")


def _validation(value: str, member: str, pattern: str) -> STSValidationError:
    return STSValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def _caller(response) -> tuple[str, str]:
    """(caller ARN, caller account) of the request, as GetCallerIdentity would answer."""
    _, arn, account = response.backend.get_caller_identity(response.get_access_key(), response.region)
    return arn, account


def caller_of(response) -> tuple[str, str]:
    """(caller ARN, caller account) of a request to any service, as GetCallerIdentity would answer."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    backend = sts_backends[response.current_account][get_partition(response.region)]
    _, arn, account = backend.get_caller_identity(response.get_access_key(), response.region)
    return arn, account


def _organization_id(account: str) -> str | None:
    for _account, _partition, backend in organizations_backends.iter_backends():
        org = backend.org
        if org is None:
            continue
        if account == org.master_account_id or any(a.id == account for a in backend.accounts):
            return org.id
    return None


def _principal_matches(values, caller_arn: str, caller_account: str) -> bool:
    """Whether the caller is one of an ``{"AWS": ...}`` principal's values."""
    if isinstance(values, str):
        values = [values]
    caller_role = None
    match = re.fullmatch(r"arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
    if match:
        caller_role = (match.group(1), match.group(2))
    for value in values:
        if value == "*" or value in (caller_account, f"arn:aws:iam::{caller_account}:root"):
            return True
        if re.fullmatch(rf"arn:aws[a-z-]*:iam::{caller_account}:root", value):
            return True
        role = _ROLE_ARN.fullmatch(value)
        if role and caller_role and (role.group(2), role.group(3)) == caller_role:
            return True
        if value == caller_arn and ":user/" in value:
            return True
    return False


def _condition_holds(condition: dict, context: dict) -> bool | None:
    """True / False, or None when the condition uses a form this evaluator does not understand.

    ``context`` holds the keys (lower case) the request defines, a value or None when the request
    lacks it; a key not in ``context`` is not understood.
    """
    for operator, pairs in condition.items():
        if operator not in _ALLOWED_OPERATORS or not isinstance(pairs, dict):
            return None
        for key, wanted in pairs.items():
            if key.lower() not in context:
                return None
            wanted = [wanted] if isinstance(wanted, str) else wanted
            if operator == "StringLike" and any("*" in w or "?" in w for w in wanted):
                return None
            actual = context.get(key.lower())
            if actual is None:
                # IAM UG, condition keys: "If the condition keys are missing from a request context,
                # the policy can fail the evaluation" (aws:SourceAccount "is only available when the
                # call to your resource is made directly by an AWS service principal").
                if operator.endswith("IfExists"):
                    continue
                return False
            if actual not in wanted:
                return False
    return True


def _statement(statement: dict, action: str, caller_arn: str, caller_account: str, context: dict) -> bool | None:
    """Whether a statement applies to this request for ``action`` (None: not understood)."""
    if "NotPrincipal" in statement or "NotAction" in statement:
        return None
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        return None
    # IAM UG, "IAM JSON policy elements: Action": "You can use wildcards (* or ?) in the action
    # name"; action names are case-insensitive.
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
        return False
    principal = statement.get("Principal")
    if principal == "*":
        matched = True
    elif isinstance(principal, dict):
        matched = "AWS" in principal and _principal_matches(principal["AWS"], caller_arn, caller_account)
    else:
        return None
    if not matched:
        return False
    return _condition_holds(statement.get("Condition") or {}, context)


def trust_allows(policy: dict | str, caller_arn: str, caller_account: str, context: dict) -> bool:
    """The explicit evaluation of a role's trust policy for an AssumeRole request."""
    return resource_policy_allows(policy, "sts:AssumeRole", caller_arn, caller_account, context)


def resource_policy_allows(
    policy: dict | str, action: str, caller_arn: str, caller_account: str, context: dict
) -> bool:
    """Whether a resource policy (a trust policy, a KMS key policy) lets the caller do ``action``:
    an Allow that applies and no Deny that applies or is not understood (see the module's notes)."""
    if isinstance(policy, str):
        try:
            policy = json.loads(urllib.parse.unquote(policy))
        except ValueError:
            return False
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            return False
        verdict = _statement(statement, action, caller_arn, caller_account, context)
        if statement.get("Effect") == "Deny" and verdict is not False:
            return False  # a matching Deny, or one not understood: refuse
        if statement.get("Effect") == "Allow" and verdict is True:
            allowed = True
    return allowed


def _role(role_arn: str):
    match = _ROLE_ARN.fullmatch(role_arn or "")
    if not match:
        return None
    partition, account, name = match.groups()
    if account not in iam_backends or partition not in iam_backends[account]:
        return None
    backend = iam_backends[account][partition]
    role = next((r for r in backend.roles.values() if r.name == name), None)
    return role


_original_assume_role = responses.TokenResponse.assume_role


def assume_role(self):
    role_arn = self._get_param("RoleArn")
    session_name = self._get_param("RoleSessionName") or ""
    external_id = self._get_param("ExternalId")
    if not _SESSION_NAME.fullmatch(session_name):
        raise _validation(session_name, "roleSessionName", r"[\w+=,.@-]*")
    if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
        raise _validation(external_id, "externalId", r"[\w+=,.@:\/-]*")
    caller_arn, caller_account = _caller(self)
    role = _role(role_arn)
    # IAM UG: "Verify that you meet all the conditions that are specified in the role's trust
    # policy. A Condition can specify an expiration date, an external ID, or that a request must
    # come only from specific IP addresses."
    context = {
        "sts:externalid": external_id,
        "aws:principalorgid": _organization_id(caller_account),
        "aws:principalaccount": caller_account,
        "aws:sourceaccount": None,  # set only when an AWS service principal calls
    }
    if role is None or not trust_allows(role.assume_role_policy_document, caller_arn, caller_account, context):
        # AccessDenied is not in STS's error model, so moto would answer 400: AWS answers 403.
        _status, headers, body = self.serialized(ActionResult(AccessDenied(caller_arn, role_arn)))
        headers["status"] = 403
        return body, headers
    return _original_assume_role(self)


def apply() -> None:
    """Evaluate trust policies in AssumeRole (idempotent)."""
    responses.TokenResponse.assume_role = assume_role
