"""Whether a KMS key policy lets the publisher use the catalog's key, pure: no AWS calls.

The publisher uploads each template with SSE-KMS under ``bucket.kms_key_id`` and then hands
its URL to Service Catalog. S3 checks the key for every request: to upload and download,
"Modify the key's policy to grant the IAM user permissions for the kms:GenerateDataKey and
kms:Decrypt actions at minimum" (AWS Knowledge Center, s3-bucket-access-default-encryption);
to read, "Amazon S3 checks if the AWS Identity and Access Management
(IAM) user or role that sent the request is authorized to decrypt the object's key. If the
IAM user or role and key belong to the same AWS account, then decrypt permissions must be
granted on the key policy" (AWS Knowledge Center, decrypt-kms-encrypted-objects-s3). Whose
credentials Service Catalog fetches the template with is not documented; the stricter
reading is taken: the caller's, so the publisher needs kms:Decrypt too.

Only the key policy is read: a statement naming the caller's account (``<id>``,
``arn:<p>:iam::<id>:root``) delegates to IAM, whose policies are not read here. The forms
understood are those of the local AWS's evaluator (``localaws/patches/sts.py``): principals
``*``, the account, a role (by name, as the caller's session is of that role) or the
caller's user ARN; actions with wildcards; conditions ``StringEquals`` /
``StringEqualsIfExists`` / ``StringLike`` without wildcards on ``kms:CallerAccount``,
``kms:ViaService``, ``aws:PrincipalAccount`` and ``aws:PrincipalOrgID``. An Allow not
understood grants nothing; a Deny not understood refuses, as one that applies does.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

_OPERATORS = {"StringEquals", "StringEqualsIfExists", "StringLike"}
_ASSUMED_ROLE = re.compile(r"arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/.+")
_ROLE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_ROOT = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")


@dataclass(frozen=True)
class Caller:
    """Who sends the requests (GetCallerIdentity) and the context keys S3 gives KMS for them."""

    arn: str
    account: str
    region: str
    organization_id: str | None = None

    def context(self) -> dict:
        return {
            "kms:calleraccount": self.account,
            "kms:viaservice": f"s3.{self.region}.amazonaws.com",
            "aws:principalaccount": self.account,
            "aws:principalorgid": self.organization_id,
        }


def _as_list(value) -> list | None:
    values = [value] if isinstance(value, str) else value
    return values if isinstance(values, list) and all(isinstance(v, str) for v in values) else None


def _principal_is(values: list[str], caller: Caller) -> bool:
    session = _ASSUMED_ROLE.fullmatch(caller.arn)
    for value in values:
        if value in ("*", caller.account) or (_ROOT.fullmatch(value) and value.split(":")[4] == caller.account):
            return True
        role = _ROLE.fullmatch(value)
        if role and session and role.groups() == session.groups():
            return True
        if value == caller.arn and ":user/" in value:
            return True
    return False


def _condition(condition, context: dict) -> bool | str:
    """True / False, or the reason it is not understood."""
    if not isinstance(condition, dict):
        return "a Condition that is not an object"
    for operator, pairs in condition.items():
        if operator not in _OPERATORS or not isinstance(pairs, dict):
            return f"the condition operator {operator}"
        for key, wanted in pairs.items():
            wanted = _as_list(wanted)
            if key.lower() not in context or wanted is None:
                return f"the condition key {key}"
            if operator == "StringLike" and any("*" in w or "?" in w for w in wanted):
                return f"a StringLike pattern on {key}"
            actual = context[key.lower()]
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if actual not in wanted:
                return False
    return True


def _applies(statement, action: str, caller: Caller) -> bool | str:
    """Whether ``statement`` covers ``caller`` doing ``action``: True / False, or why it is not understood."""
    if not isinstance(statement, dict):
        return "a statement that is not an object"
    if "NotPrincipal" in statement or "NotAction" in statement:
        return "NotPrincipal or NotAction"
    actions = _as_list(statement.get("Action"))
    if actions is None:
        return "an Action that is not a string or a list of strings"
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
        return False
    principal = statement.get("Principal")
    if principal != "*":
        values = _as_list(principal.get("AWS")) if isinstance(principal, dict) and "AWS" in principal else []
        if values is None:
            return "a Principal that is not understood"
        if not _principal_is(values, caller):
            return False
    return _condition(statement.get("Condition", {}), caller.context())


def key_policy_problem(policy, action: str, caller: Caller) -> str | None:
    """Why the key policy ``policy`` (parsed JSON) does not let ``caller`` do ``action``; None when it does."""
    statements = policy.get("Statement", []) if isinstance(policy, dict) else None
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list):
        return "the key policy has no statements"
    allowed = False
    for index, statement in enumerate(statements):
        verdict = _applies(statement, action, caller)
        name = f"statement {statement.get('Sid') or index}" if isinstance(statement, dict) else f"statement {index}"
        effect = statement.get("Effect") if isinstance(statement, dict) else None
        if effect == "Deny" and verdict is True:
            return f"{name} denies {action} to {caller.arn}"
        if effect == "Deny" and isinstance(verdict, str):
            return f"{name} is a Deny with {verdict}, which the publisher cannot evaluate (it may deny {action})"
        if effect == "Allow" and verdict is True:
            allowed = True
    return None if allowed else f"no statement allows {action} to {caller.arn} or its account {caller.account}"
