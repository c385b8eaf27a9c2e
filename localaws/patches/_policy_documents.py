"""The grammar of IAM policy documents, shared by the patches that store resource policies
(``sagemaker.py``: model package groups; ``s3_bucket_policies.py``: bucket policies).

IAM User Guide, "IAM JSON policy element reference" / "Grammar of the IAM JSON policy
language": a policy is a JSON object whose ``Version`` is "2012-10-17" or "2008-10-17",
whose ``Statement`` is one statement or a list of them; a statement has an ``Effect``
("The Effect element is required and specifies whether the statement results in an allow
or an explicit deny. Valid values for Effect are Allow and Deny."), exactly one of
``Action`` / ``NotAction`` and of ``Resource`` / ``NotResource``, and in a resource-based
policy a ``Principal`` or ``NotPrincipal`` ("You must use the Principal element in
resource-based policies"). Where the services do not document what they refuse, this is
stricter than AWS: ``Version`` is required (IAM would default it to 2008-10-17), unknown
keys are refused, and a statement must name its resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable

VERSIONS = ("2012-10-17", "2008-10-17")
_POLICY_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction"}
_STATEMENT_KEYS |= {"Resource", "NotResource", "Condition"}
_PRINCIPAL_KEYS = {"AWS", "Service", "Federated", "CanonicalUser"}
_ACTION = re.compile(r"^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$")
_ACCOUNT = re.compile(r"^\d{12}$")
_AWS_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$")


def _strings(value) -> list[str] | None:
    """The value as a list of strings, None when it is not a string or a list of strings."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(item, str) and item for item in values):
        return None
    return values


def _principal_problem(principal, principal_exists: Callable[[str], bool] | None) -> str | None:
    if principal == "*":
        return None
    if not isinstance(principal, dict) or not principal or set(principal) - _PRINCIPAL_KEYS:
        return "Invalid principal in policy"
    for kind, value in principal.items():
        values = _strings(value)
        if values is None:
            return "Invalid principal in policy"
        if len(set(values)) != len(values):
            return "Duplicate principal"
        if kind == "AWS" and not all(v == "*" or _ACCOUNT.match(v) or _AWS_PRINCIPAL_ARN.match(v) for v in values):
            return "Invalid principal in policy"
        if kind == "AWS" and principal_exists and not all(v == "*" or principal_exists(v) for v in values):
            return "Invalid principal in policy"
    return None


def _statement_problem(statement, resource_policy: bool, principal_exists=None) -> str | None:
    if not isinstance(statement, dict):
        return "Statement must be an object"
    if set(statement) - _STATEMENT_KEYS:
        return f"Statement has unknown elements: {sorted(set(statement) - _STATEMENT_KEYS)}"
    if statement.get("Effect") not in ("Allow", "Deny"):
        return (
            "Missing required field Effect"
            if "Effect" not in statement
            else "Invalid effect: Effect must be Allow or Deny"
        )
    for pair in (("Action", "NotAction"), ("Resource", "NotResource")) + (
        (("Principal", "NotPrincipal"),) if resource_policy else ()
    ):
        present = [key for key in pair if key in statement]
        if len(present) != 1:
            return f"Missing required field {pair[0]}" if not present else f"{pair[0]} and {pair[1]} are both present"
    if not resource_policy and ("Principal" in statement or "NotPrincipal" in statement):
        return "Policy document should not specify a principal"
    actions = _strings(statement.get("Action", statement.get("NotAction")))
    if actions is None or not all(_ACTION.match(action) for action in actions):
        return "Invalid action"
    if _strings(statement.get("Resource", statement.get("NotResource"))) is None:
        return "Invalid resource"
    principal = statement.get("Principal", statement.get("NotPrincipal"))
    if resource_policy and (problem := _principal_problem(principal, principal_exists)):
        return problem
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict) or not all(isinstance(test, dict) for test in condition.values()):
        return "Invalid Condition"
    return None


def statements(document: dict) -> list:
    """The document's statements as a list (a single statement object counts as one)."""
    value = document.get("Statement")
    return value if isinstance(value, list) else [value]


def policy_problem(
    document, resource_policy: bool = True, principal_exists: Callable[[str], bool] | None = None
) -> str | None:
    """What makes ``document`` (parsed JSON) not a valid IAM policy; None when it is one.

    ``principal_exists``, when given, is asked about every ``AWS`` principal but ``"*"`` (an
    account id or an IAM/STS ARN): a principal it denies is "Invalid principal in policy".
    """
    if not isinstance(document, dict):
        return "The policy must be a JSON object"
    if set(document) - _POLICY_KEYS:
        return f"Policy has unknown elements: {sorted(set(document) - _POLICY_KEYS)}"
    if document.get("Version") not in VERSIONS:
        return "The policy must contain a valid version string"
    if not isinstance(document.get("Statement"), (list, dict)) or not statements(document):
        return "Missing required field Statement"
    for statement in statements(document):
        if problem := _statement_problem(statement, resource_policy, principal_exists):
            return problem
    return None


def without_no_value(node):
    """``node`` without the ``AWS::NoValue`` entries CloudFormation drops (moto leaves None)."""
    if isinstance(node, dict):
        return {key: without_no_value(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [without_no_value(value) for value in node if value is not None]
    return node
