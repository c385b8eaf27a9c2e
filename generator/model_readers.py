"""The cross-account model readers: the target accounts' ``ModelExecutionRole``.

Every resource policy of the development account that shares models (models bucket, its
KMS key, the model package group, the ECR repository) admits the same principals, scoped
either to the listed target accounts or, when an organization id is given, to the
organization (``aws:PrincipalOrgID``). This module holds those parameters, their
conditions, and the one function that writes the sharing statements.

The role name is fixed by ``generator.cross_account``: ``<EnvName>-model-execution`` in
each target account.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import aws as awacs_aws
from awacs.aws import Condition, Principal, Statement
from troposphere import And, Equals, If, Join, Not, Or, Parameter, Ref, Split, Sub, Template
from troposphere import Condition as TemplateCondition

from generator.policies import when

MODEL_EXECUTION_ROLE_NAME = "${EnvName}-model-execution"

SHARE_WITH_ORGANIZATION = "ShareWithOrganization"
SHARE_WITH_TARGET_ACCOUNTS = "ShareWithTargetAccounts"
SHARE_MODELS = "ShareModels"
HAS_TARGET_S3_ENDPOINTS = "HasTargetS3EndpointIds"
HAS_TARGET_KMS_ENDPOINTS = "HasTargetKmsEndpointIds"
SCOPES = (SHARE_WITH_ORGANIZATION, SHARE_WITH_TARGET_ACCOUNTS)
# Fn::Join takes no function as its delimiter, so the partition that turns account ids into
# root ARNs is chosen by one condition per partition; ``aws`` last, as the fallback.
PARTITIONS = ("aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc", "aws")
_SLOT = "|"  # where ``arn:<partition>`` goes; not a character of an account id or an ARN


def _partition_condition(partition: str) -> str:
    return "PartitionIs" + "".join(part.capitalize() for part in partition.split("-"))


def account_root_arns(accounts: Parameter) -> Split:
    """``arn:<partition>:iam::<id>:root`` of each id of the CommaDelimitedList ``accounts``.

    The ARNs are written with a slot for ``arn:<partition>``, cut at the slots and joined
    again with it (a literal delimiter chosen by a condition on ``AWS::Partition``). Needs
    the ``PartitionIs*`` conditions of :func:`add_partition_conditions`.
    """
    pieces = Split(_SLOT, Sub(f"{_SLOT}:iam::${{Ids}}:root", Ids=Join(f":root,{_SLOT}:iam::", Ref(accounts))))
    joined = Join(f"arn:{PARTITIONS[-1]}", pieces)
    for partition in reversed(PARTITIONS[:-1]):
        joined = If(_partition_condition(partition), Join(f"arn:{partition}", pieces), joined)
    return Split(",", joined)


def add_partition_conditions(template: Template) -> None:
    for partition in PARTITIONS[:-1]:
        template.add_condition(_partition_condition(partition), Equals(Ref("AWS::Partition"), partition))


@dataclass(frozen=True)
class ModelReaders:
    """Parameters naming who may read models, and how resource policies admit them."""

    target_accounts: Parameter
    organization_id: Parameter
    s3_endpoint_ids: Parameter
    kms_endpoint_ids: Parameter

    @staticmethod
    def role_arn_pattern() -> Sub:
        """``ArnLike`` pattern of a target account's model execution role (account by the principal)."""
        return Sub("arn:${AWS::Partition}:iam::*:role/" + MODEL_EXECUTION_ROLE_NAME)

    def statements(
        self, sid: str, actions, resources, condition: dict | None = None, requires: str | None = None, roles_only=True
    ):
        """Allow ``actions`` on ``resources`` to the readers: one statement per scope, each conditional.

        ``condition`` adds condition operators (``{"StringEquals": {...}}``); ``requires``
        names a further template condition both statements depend on; ``roles_only=False``
        admits the whole target accounts (registry and ECR, used by their deployment
        role), not only their model execution role.
        """
        result = []
        for scope in SCOPES:
            operators: dict = {}
            if scope == SHARE_WITH_ORGANIZATION:
                principal = Principal("*")
                operators.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = Ref(self.organization_id)
            else:
                principal = Principal("AWS", account_root_arns(self.target_accounts))
            if roles_only:
                operators.setdefault("ArnLike", {})["aws:PrincipalArn"] = self.role_arn_pattern()
            for operator, values in (condition or {}).items():
                operators.setdefault(operator, {}).update(values)
            statement = Statement(
                Sid=f"{sid}{'Organization' if scope == SHARE_WITH_ORGANIZATION else 'Accounts'}",
                Effect="Allow",
                Principal=principal,
                Action=list(actions),
            )
            if operators:  # an empty Condition block renders as ``Condition: {}``
                statement.Condition = Condition(
                    [getattr(awacs_aws, op)(values) for op, values in sorted(operators.items())]
                )
            if resources is not None:  # None: a repository policy, which names no resource
                statement.Resource = list(resources)
            result.append(when(f"{scope}And{requires}" if requires else scope, statement))
        return result


def add_model_readers(template: Template) -> ModelReaders:
    """Parameters and conditions of cross-account model sharing."""
    accounts = template.add_parameter(
        Parameter(
            "TargetAccountIds",
            Type="CommaDelimitedList",
            Default="",
            Description=(
                "Staging and production account ids whose "
                "<EnvName>-model-execution role may read models (empty: no sharing)"
            ),
        )
    )
    org = template.add_parameter(
        Parameter(
            "OrganizationId",
            Type="String",
            Default="",
            AllowedPattern=r"^(o-[a-z0-9]{10,32})?$",
            ConstraintDescription="empty, or an organization id such as o-a1b2c3d4e5",
            Description=(
                "Share with every account of this organization (aws:PrincipalOrgID) instead of TargetAccountIds"
            ),
        )
    )
    s3_endpoints = template.add_parameter(
        Parameter(
            "TargetS3EndpointIds",
            Type="CommaDelimitedList",
            Default="",
            Description=(
                "The target accounts' S3 gateway endpoint ids (target-network "
                "output): readers must come through them (empty: any)"
            ),
        )
    )
    kms_endpoints = template.add_parameter(
        Parameter(
            "TargetKmsEndpointIds",
            Type="CommaDelimitedList",
            Default="",
            Description=(
                "The target accounts' KMS endpoint ids (target-network output): "
                "admit direct KMS calls through them (empty: only through S3)"
            ),
        )
    )
    # Each condition is written out rather than aliased ({"Condition": ...} alone), which
    # moto's template parser cannot evaluate.
    template.add_condition(SHARE_WITH_ORGANIZATION, Not(Equals(Ref(org), "")))
    template.add_condition("HasTargetAccountIds", Not(Equals(Join("", Ref(accounts)), "")))
    template.add_condition(
        SHARE_WITH_TARGET_ACCOUNTS, And(Equals(Ref(org), ""), TemplateCondition("HasTargetAccountIds"))
    )
    template.add_condition(
        SHARE_MODELS, Or(TemplateCondition(SHARE_WITH_ORGANIZATION), TemplateCondition(SHARE_WITH_TARGET_ACCOUNTS))
    )
    add_partition_conditions(template)
    template.add_condition(HAS_TARGET_S3_ENDPOINTS, Not(Equals(Join("", Ref(s3_endpoints)), "")))
    template.add_condition(HAS_TARGET_KMS_ENDPOINTS, Not(Equals(Join("", Ref(kms_endpoints)), "")))
    for scope in SCOPES:
        template.add_condition(
            f"{scope}And{HAS_TARGET_KMS_ENDPOINTS}",
            And(TemplateCondition(scope), TemplateCondition(HAS_TARGET_KMS_ENDPOINTS)),
        )
    return ModelReaders(
        target_accounts=accounts, organization_id=org, s3_endpoint_ids=s3_endpoints, kms_endpoint_ids=kms_endpoints
    )
