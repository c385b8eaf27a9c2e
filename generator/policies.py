"""Reusable IAM policy statements and documents, all built from awacs objects.

Builders compose these instead of writing statements inline, so that each security
control (TLS only, through the VPC endpoint, ExternalId on cross-account trust, ...) has
one implementation that tests and lint rules can recognise.
"""

from __future__ import annotations

from collections.abc import Iterable

from awacs import s3, sts
from awacs.aws import (
    Allow,
    ArnNotLike,
    Bool,
    Condition,
    Deny,
    Null,
    Policy,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringNotEquals,
    StringNotEqualsIfExists,
)
from troposphere import AWSHelperFn

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


def cross_account_trust(
    principal_arn: object, external_id: object = None, org_id: object = None, sid="TrustCrossAccount"
) -> Policy:
    """Trust policy letting ``principal_arn`` (a role or account root, or a list) assume the role.

    A principal of another account must be pinned by an ``sts:ExternalId`` (a third party
    acting for us) or an ``aws:PrincipalOrgID`` (our own organization); both may be given.
    """
    conditions = []
    if external_id is not None:
        conditions.append(StringEquals({"sts:ExternalId": external_id}))
    if org_id is not None:
        conditions.append(StringEquals({"aws:PrincipalOrgID": org_id}))
    statement = Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("AWS", principal_arn if isinstance(principal_arn, list) else [principal_arn]),
        Action=[sts.AssumeRole],
    )
    if conditions:
        statement.Condition = Condition(conditions)
    return Policy(Version=VERSION, Statement=[statement])


def allow(
    sid: str, actions: Iterable, resources: Iterable | AWSHelperFn, condition: Condition | None = None
) -> Statement:
    """An Allow statement; ``actions`` are awacs actions, never ``*``.

    ``resources`` is a list, or one intrinsic function returning a list (``Ref`` of a
    ``CommaDelimitedList`` parameter).
    """
    resource = resources if isinstance(resources, AWSHelperFn) else list(resources)
    statement = Statement(Sid=sid, Effect=Allow, Action=list(actions), Resource=resource)
    if condition is not None:
        statement.Condition = condition
    return statement


def allow_through_endpoint(
    sid: str, actions: Iterable, resources: Iterable, condition: Condition | None = None
) -> Statement:
    """An Allow statement of a VPC endpoint policy: any principal, since the callers' own policies still apply."""
    statement = Statement(
        Sid=sid, Effect=Allow, Principal=Principal("*"), Action=list(actions), Resource=list(resources)
    )
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


class ConditionalStatement(Statement):
    """A statement present only when a template Condition holds (``Fn::If`` to ``AWS::NoValue``).

    awacs accepts only ``Statement`` objects in a statement list; this subclass renders as
    ``{"Fn::If": [condition, statement, {"Ref": "AWS::NoValue"}]}``, so an optional
    statement (cross-account readers given by a parameter that may be empty) stays an awacs
    object with checked actions.
    """

    def __init__(self, condition: str, statement: Statement):
        super().__init__(**statement.properties)
        self.__dict__["_template_condition"] = condition

    @property
    def template_condition(self) -> str:
        return self.__dict__["_template_condition"]

    def JSONrepr(self) -> dict:  # noqa: N802 - awacs API
        return {"Fn::If": [self.template_condition, super().JSONrepr(), {"Ref": "AWS::NoValue"}]}


def when(condition: str, statement: Statement) -> ConditionalStatement:
    """``statement`` only when the template condition ``condition`` is true."""
    return ConditionalStatement(condition, statement)


def account_trust(account: object = "${AWS::AccountId}", sid="TrustAccountPrincipals") -> Policy:
    """Trust policy delegating to IAM in the *same* account: who may assume is decided there.

    For persona roles that people reach through IAM Identity Center or federation.
    """
    from generator.parameters import account_root_arn

    return Policy(
        Version=VERSION,
        Statement=[
            Statement(
                Sid=sid,
                Effect=Allow,
                Principal=Principal("AWS", [account_root_arn(account)]),
                Action=[sts.AssumeRole, sts.TagSession, sts.SetSourceIdentity],
            )
        ],
    )


def deny_outside_network_perimeter(
    resources: Iterable,
    actions: Iterable,
    vpce_ids: object,
    principal_account: object = None,
    exempt_principal_arns: object = None,
    exempt_services: object = None,
    exempt_aws_service_calls: bool = False,
    sid="DenyOutsideVpcEndpoint",
) -> Statement:
    """Deny ``actions`` on ``resources`` unless the request arrives through ``vpce_ids``.

    With ``principal_account`` the deny binds only that account's principals; principals
    matching ``exempt_principal_arns`` (``ArnLike`` patterns: cross-account readers that
    come through their own endpoint, service-linked roles) and the service principals
    ``exempt_services`` (log delivery) are left to the other statements.
    ``exempt_aws_service_calls`` exempts requests an AWS service makes for a caller (S3
    calling KMS for SSE-KMS, EBS, EFS), which never carry ``aws:SourceVpce``: AWS's
    data-perimeter guidance for key policies. Only data actions belong in ``actions``: a
    deny on management actions would lock CloudFormation and the administrators out.
    """
    conditions = [StringNotEquals({"aws:SourceVpce": vpce_ids})]
    if exempt_aws_service_calls:
        conditions.append(Bool({"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"}))
    if principal_account is not None:
        conditions.append(StringEquals({"aws:PrincipalAccount": principal_account}))
    if exempt_principal_arns is not None:
        conditions.append(ArnNotLike({"aws:PrincipalArn": exempt_principal_arns}))
    if exempt_services is not None:
        conditions.append(StringNotEqualsIfExists({"aws:PrincipalServiceName": exempt_services}))
    return Statement(
        Sid=sid,
        Effect=Deny,
        Principal=Principal("*"),
        Action=list(actions),
        Resource=list(resources),
        Condition=Condition(conditions),
    )


def deny_without_vpc(actions: Iterable, sid_prefix="DenySageMaker") -> list[Statement]:
    """The preventive denies: SageMaker ``actions`` fail unless the request names subnets and SGs."""
    return [
        Statement(
            Sid=f"{sid_prefix}WithoutVpc{key}",
            Effect=Deny,
            Action=list(actions),
            Resource=["*"],
            Condition=Condition(Null({f"sagemaker:Vpc{key}": "true"})),
        )
        for key in ("Subnets", "SecurityGroupIds")
    ]
