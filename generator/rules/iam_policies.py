"""IAM invariants: no wildcard grants, cross-account trust pinned, PassRole never on every role."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from generator import policy_analysis as analysis

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


def _allow_statements(cfn, kinds: set[str]):
    """(policy, variant, statement) for each Allow statement of the policies of ``kinds``."""
    for policy in analysis.policy_documents(cfn.template):
        if policy.kind not in kinds:
            continue
        for variant in analysis.variants(policy.document):
            for statement in analysis.statements(variant):
                if statement.allows():
                    yield policy, variant, statement


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
        matches = []
        for policy, variant, statement in _allow_statements(cfn, {"identity", "trust", "resource", "endpoint"}):
            path = list(analysis.statement_path(policy, variant, statement))
            where = f"{policy.resource} ({policy.kind} policy)"
            if statement.not_action:
                matches.append(
                    RuleMatch(
                        path, f"{where}: Allow with NotAction grants every other action: list the actions allowed"
                    )
                )
                continue
            if "*" in statement.actions:
                matches.append(RuleMatch(path, f"{where}: Allow with Action *: list the actions needed"))
                continue
            every_resource = statement.not_resource or "*" in statement.resources
            service_wide = sorted(a for a in statement.actions if re.fullmatch(r"[a-z0-9-]+:\*", a))
            if service_wide and every_resource:
                matches.append(
                    RuleMatch(
                        path,
                        (
                            f"{where}: Allow of {', '.join(service_wide)} on "
                            "Resource *: list the actions and scope the resources"
                        ),
                    )
                )
        return analysis.unique_matches(matches)


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
        matches = []
        local = analysis.logical_ids_of_type(cfn.template, *_IAM_ROLE_AND_USER_TYPES)
        for policy, variant, statement in _allow_statements(cfn, {"trust"}):
            if not any(statement.grants(a) for a in _ASSUME_ACTIONS):
                continue
            if statement.not_principal:
                outside = ["NotPrincipal (everyone else)"]
            else:
                outside = [p for p in statement.aws_principals() if not analysis.same_account_principal(p, local)]
            if not outside or _pinned(statement):
                continue
            matches.append(
                RuleMatch(
                    list(analysis.statement_path(policy, variant, statement)),
                    f"Trust policy of {policy.resource} lets {', '.join(outside)} "
                    "assume it without a pinning condition: add "
                    "StringEquals sts:ExternalId (a third party) or aws:PrincipalOrgID (your organization)",
                )
            )
        return analysis.unique_matches(matches)


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
        matches = []
        for policy, variant, statement in _allow_statements(cfn, {"identity", "resource", "endpoint"}):
            if not statement.grants("iam:PassRole"):
                continue
            broad = ["NotResource"] if statement.not_resource else [r for r in statement.resources if _every_role(r)]
            if broad:
                matches.append(
                    RuleMatch(
                        list(analysis.statement_path(policy, variant, statement)),
                        (
                            f"{policy.resource} ({policy.kind} policy) allows iam:PassRole on "
                            f"{', '.join(broad)}: name the roles (or a role-name prefix) to pass"
                        ),
                    )
                )
        return analysis.unique_matches(matches)


def _every_role(resource: str) -> bool:
    if resource == "*":
        return True
    parts = analysis.arn_parts(resource)
    return bool(parts) and parts[2] in ("iam", "*") and parts[5] in _EVERY_ROLE_PATHS
