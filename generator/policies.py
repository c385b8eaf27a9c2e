"""Reusable IAM policy statements and documents, all built from awacs objects.

Builders compose these instead of writing statements inline, so that each security
control (TLS only, through the VPC endpoint, ExternalId on cross-account trust, ...) has
one implementation that tests and lint rules can recognise.
"""

from __future__ import annotations

from typing import Iterable

from awacs import s3, sts
from troposphere import AWSHelperFn
from awacs.aws import (
    Allow,
    ArnNotLike,
    Bool,
    Condition,
    Deny,
    Policy,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringNotEquals,
)

VERSION = "2012-10-17"


def document(*statements: Statement) -> PolicyDocument:
    """A policy document of ``statements``."""
    return PolicyDocument(Version=VERSION, Statement=list(statements))


def service_trust(service: str, source_account: object = None) -> Policy:
    """Trust policy for an AWS service principal (``sagemaker.amazonaws.com``).

    With ``source_account``, the confused-deputy guard ``aws:SourceAccount`` limits the
    service to acting for that account.
    """
    statement = Statement(
        Sid="TrustService",
        Effect=Allow,
        Principal=Principal("Service", [service]),
        Action=[sts.AssumeRole],
    )
    if source_account is not None:
        statement.Condition = Condition(StringEquals({"aws:SourceAccount": source_account}))
    return Policy(Version=VERSION, Statement=[statement])


def cross_account_trust(principal_arn: object, external_id: object = None, org_id: object = None, sid="TrustCrossAccount") -> Policy:
    """Trust policy letting ``principal_arn`` (a role or account root) assume the role.

    A principal of another account must be pinned by an ``sts:ExternalId`` (a third party
    acting for us) or an ``aws:PrincipalOrgID`` (our own organization); both may be given.
    """
    conditions = []
    if external_id is not None:
        conditions.append(StringEquals({"sts:ExternalId": external_id}))
    if org_id is not None:
        conditions.append(StringEquals({"aws:PrincipalOrgID": org_id}))
    statement = Statement(Sid=sid, Effect=Allow, Principal=Principal("AWS", [principal_arn]), Action=[sts.AssumeRole])
    if conditions:
        statement.Condition = Condition(conditions)
    return Policy(Version=VERSION, Statement=[statement])


def allow(sid: str, actions: Iterable, resources: Iterable | AWSHelperFn, condition: Condition | None = None) -> Statement:
    """An Allow statement; ``actions`` are awacs actions, never ``*``.

    ``resources`` is a list, or one intrinsic function returning a list (``Ref`` of a
    ``CommaDelimitedList`` parameter).
    """
    resource = resources if isinstance(resources, AWSHelperFn) else list(resources)
    statement = Statement(Sid=sid, Effect=Allow, Action=list(actions), Resource=resource)
    if condition is not None:
        statement.Condition = condition
    return statement


def deny_insecure_transport(resources: Iterable, sid="DenyInsecureTransport") -> Statement:
    """Deny every S3 request to ``resources`` that is not made over TLS."""
    return Statement(
        Sid=sid,
        Effect=Deny,
        Principal=Principal("*"),
        Action=[s3.Action("*")],
        Resource=list(resources),
        Condition=Condition(Bool({"aws:SecureTransport": "false"})),
    )


def deny_outside_vpc_endpoint(resources: Iterable, vpce_ids: object, actions: Iterable, exempt_principal_arns: object = None, sid="DenyOutsideVpcEndpoint") -> Statement:
    """Deny ``actions`` on ``resources`` for requests that do not arrive through ``vpce_ids``.

    ``exempt_principal_arns`` (e.g. the target accounts' model readers, whose requests come
    through their own account's endpoint, or the stack's deployment principals) are left
    to the other statements of the policy.
    """
    conditions = [StringNotEquals({"aws:SourceVpce": vpce_ids})]
    if exempt_principal_arns is not None:
        conditions.append(ArnNotLike({"aws:PrincipalArn": exempt_principal_arns}))
    return Statement(
        Sid=sid,
        Effect=Deny,
        Principal=Principal("*"),
        Action=list(actions),
        Resource=list(resources),
        Condition=Condition(conditions),
    )
