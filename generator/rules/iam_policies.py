"""IAM invariants: no wildcard grants, cross-account trust pinned, PassRole never on every role."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule

from generator import policy_analysis as analysis
from generator.rules._walk import statement_problems

# A principal's account is pinned by one of these keys, tested for equality (or a pattern).
_PINNING_KEYS = ("sts:externalid", "aws:principalorgid", "aws:principalorgpaths")
_PINNING_OPERATORS = {
    "stringequals",
    "stringlike",
    "stringequalsignorecase",
    "foranyvalue:stringequals",
    "foranyvalue:stringlike",
}
_ASSUME_ACTIONS = ("sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity")
# Resource patterns that name every role (of one account or all): the same as "*" for PassRole.
_EVERY_ROLE_PATHS = ("*", "role/*", "role*")
_IAM_ROLE_AND_USER_TYPES = ("AWS::IAM::Role", "AWS::IAM::User")


class NoWildcardGrants(CloudFormationLintRule):
    """No Allow grants every action, or every action of a service on every resource."""

    id = "E9401"
    shortdesc = "IAM: no Allow of * actions, NotAction, or service:* on *"
    description = (
        "In identity, trust, resource and VPC endpoint policies, no Allow statement has Action * or "
        "NotAction (which grants everything not listed), and none has an action service:* together with "
        "Resource * (or NotResource). Key policies are checked by E9202, which allows kms:* for the "
        "account root."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
    tags = ["security", "iam"]

    def match(self, cfn):
        return statement_problems(cfn, {"identity", "trust", "resource", "endpoint"}, _wildcard_problems)


def _wildcard_problems(policy, statement):
    where = f"{policy.resource} ({policy.kind} policy)"
    if statement.not_action:
        yield f"{where}: Allow with NotAction grants every other action: list the actions allowed"
        return
    if "*" in statement.actions:
        yield f"{where}: Allow with Action *: list the actions needed"
        return
    every_resource = statement.not_resource or "*" in statement.resources
    service_wide = sorted(a for a in statement.actions if re.fullmatch(r"[a-z0-9-]+:\*", a))
    if service_wide and every_resource:
        yield f"{where}: Allow of {', '.join(service_wide)} on Resource *: list the actions and scope the resources"


class CrossAccountTrustPinned(CloudFormationLintRule):
    """A role another account may assume requires an ExternalId or an organization condition."""

    id = "E9402"
    shortdesc = "IAM: cross-account trust carries sts:ExternalId or an organization condition"
    description = (
        "A role trust policy statement that allows an AWS principal outside this account (another account's "
        "root, role or user, a parameter, *) to assume the role has a condition StringEquals (or StringLike) "
        "on sts:ExternalId, aws:PrincipalOrgID or aws:PrincipalOrgPaths, with a value that is not *. "
        "IfExists variants do not count: they pass when the key is absent."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"
    tags = ["security", "iam", "cross-account"]

    def match(self, cfn):
        local = analysis.logical_ids_of_type(cfn.template, *_IAM_ROLE_AND_USER_TYPES)

        def check(policy, statement):
            if not any(statement.grants(a) for a in _ASSUME_ACTIONS):
                return
            if statement.not_principal:
                outside = ["NotPrincipal (everyone else)"]
            else:
                outside = [p for p in statement.aws_principals() if not analysis.same_account_principal(p, local)]
            if outside and not _pinned(statement):
                yield (
                    f"Trust policy of {policy.resource} lets {', '.join(outside)} "
                    "assume it without a pinning condition: add "
                    "StringEquals sts:ExternalId (a third party) or aws:PrincipalOrgID (your organization)"
                )

        return statement_problems(cfn, {"trust"}, check)


def _pinned(statement) -> bool:
    for key in _PINNING_KEYS:
        values = statement.condition_values(_PINNING_OPERATORS, key)
        if values and all(v.strip("*") for v in values):
            return True
    return False


class PassRoleNeverOnEveryRole(CloudFormationLintRule):
    """iam:PassRole is granted on named roles, never on * (or every role of an account)."""

    id = "E9403"
    shortdesc = "IAM: iam:PassRole never on *"
    description = (
        "No Allow statement that covers iam:PassRole (iam:PassRole, iam:Pass*, iam:*, *) has Resource *, "
        "NotResource, or a resource naming every role (arn:...:iam::<account>:role/*): passing any role is "
        "privilege escalation to the most powerful role in the account. Scope it to the roles (or a role "
        "name prefix) the principal must pass."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"
    tags = ["security", "iam"]

    def match(self, cfn):
        return statement_problems(cfn, {"identity", "resource", "endpoint"}, _pass_role_problems)


def _pass_role_problems(policy, statement):
    if not statement.grants("iam:PassRole"):
        return
    broad = ["NotResource"] if statement.not_resource else [r for r in statement.resources if _every_role(r)]
    if broad:
        yield (
            f"{policy.resource} ({policy.kind} policy) allows iam:PassRole on "
            f"{', '.join(broad)}: name the roles (or a role-name prefix) to pass"
        )


def _every_role(resource: str) -> bool:
    if resource == "*":
        return True
    parts = analysis.arn_parts(resource)
    return bool(parts) and parts[2] in ("iam", "*") and parts[5] in _EVERY_ROLE_PATHS
