"""KMS key invariants: rotation on; full control (kms:*) only for the account root."""

from __future__ import annotations

from cfnlint.rules import CloudFormationLintRule

from generator import policy_analysis as analysis
from generator.rules._walk import resource_problems, statement_problems

KEY_TYPES = ["AWS::KMS::Key"]
KEY_POLICY_TYPES = ["AWS::KMS::Key", "AWS::KMS::ReplicaKey"]


class KeyRotationEnabled(CloudFormationLintRule):
    """Symmetric encryption keys rotate their key material."""

    id = "E9201"
    shortdesc = "KMS key rotation enabled"
    description = (
        "Every symmetric AWS::KMS::Key (KeySpec SYMMETRIC_DEFAULT, the default) sets EnableKeyRotation true. "
        "Asymmetric and HMAC keys cannot rotate and are not checked."
    )
    source_url = "https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html"
    tags = ["security", "kms"]

    def match(self, cfn):
        def check(name, _rtype, props):
            specs = analysis.possible_values(cfn.template, props.get("KeySpec", "SYMMETRIC_DEFAULT"))
            if "SYMMETRIC_DEFAULT" not in specs and analysis.UNKNOWN not in specs:
                return
            if not analysis.always(cfn.template, props.get("EnableKeyRotation", "false"), "true", ignore_case=True):
                yield f"KMS key {name} does not rotate: set EnableKeyRotation true"

        return resource_problems(cfn, KEY_TYPES, check)


class KeyPolicyFullControlOnlyForRoot(CloudFormationLintRule):
    """No key policy statement allows kms:* (or *) to anyone but this account's root."""

    id = "E9202"
    shortdesc = "KMS key policy grants kms:* only to the account root"
    description = (
        "A key policy statement that allows kms:* (or *, or uses NotAction) names as principal only this "
        "account's root (arn:${AWS::Partition}:iam::${AWS::AccountId}:root), which delegates to IAM. Any "
        "other principal gets the actions it needs, enumerated."
    )
    source_url = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html"
    tags = ["security", "kms", "iam"]

    def match(self, cfn):
        return statement_problems(cfn, {"key"}, _full_control_problems)


def _full_control_problems(policy, statement):
    if not (statement.not_action or any(a in ("*", "kms:*") for a in statement.actions)):
        return
    others = _non_root_principals(statement)
    if others:
        yield (
            f"Key policy of {policy.resource} allows "
            f"{'NotAction' if statement.not_action else 'kms:*'} to "
            f"{', '.join(others)}: only this account's root may "
            "hold kms:*; enumerate the actions other principals need"
        )


def _non_root_principals(statement) -> list[str]:
    if statement.not_principal:
        return ["NotPrincipal (everyone else)"]
    if not statement.principals:
        return ["(no principal)"]
    out = []
    for kind, values in statement.principals.items():
        for value in values:
            if kind != "AWS" or not analysis.own_account_root(value):
                out.append(f"{kind}:{value}")
    return out
