"""Parameters, conditions, tags and ARNs shared by every template.

Per-account values reach a StackSet-deployed template through these parameters and the
pseudo parameters; nothing here hard-codes a partition, a region or an account.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Condition, Equals, Not, Parameter, Ref, Sub, Tags, Template
from troposphere.cloudformation import WaitConditionHandle

ACCOUNT_ID_PATTERN = r"^\d{12}$"
NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"


@dataclass(frozen=True)
class Environment:
    """The environment-name and environment-type parameters of a template."""

    name: Parameter
    type: Parameter

    def tags(self, **extra) -> Tags:
        """The tags every resource of the environment carries, plus ``extra``."""
        values = {"sagemaker:environment-name": Ref(self.name), "sagemaker:environment-type": Ref(self.type)}
        values.update(extra)
        return Tags(**values)

    def name_sub(self, suffix: str) -> Sub:
        """A physical name ``<env-name>-<env-type>-<suffix>`` (only where another account needs it)."""
        return Sub("${EnvName}-${EnvType}-" + suffix)

    def export_name(self, suffix: str) -> Sub:
        """Export name of an output, unique per environment name and type."""
        return Sub("${EnvName}-${EnvType}-" + suffix)

    def ssm_name(self, suffix: str) -> Sub:
        """SSM parameter name under the documented prefix ``/<env-name>/<env-type>/``."""
        return Sub("/${EnvName}/${EnvType}/" + suffix)


def string_parameter(
    template: Template, title: str, description: str, pattern: str, constraint: str, default: str | None = None
) -> Parameter:
    """Add a String parameter that must match ``pattern`` (``constraint`` says so in words)."""
    parameter = Parameter(
        title, Type="String", Description=description, AllowedPattern=pattern, ConstraintDescription=constraint
    )
    if default is not None:
        parameter.Default = default
    return template.add_parameter(parameter)


def choice_parameter(template: Template, title: str, description: str, values: list[str], default: str) -> Parameter:
    """Add a String parameter that takes one of ``values``."""
    return template.add_parameter(
        Parameter(title, Type="String", AllowedValues=values, Default=default, Description=description)
    )


def add_environment(template: Template, types=("dev", "staging", "prod"), default_type="dev") -> Environment:
    """Add the ``EnvName`` and ``EnvType`` parameters every environment template takes."""
    name = string_parameter(
        template,
        "EnvName",
        "Environment name, lower case: prefixes physical names, exports and SSM parameters",
        NAME_PATTERN,
        "3-32 characters: lower-case letters, digits and hyphens, starting with a letter",
        default="mlops",
    )
    env_type = template.add_parameter(
        Parameter(
            "EnvType",
            Type="String",
            Description="Environment type (stage) of this account",
            AllowedValues=list(types),
            Default=default_type,
        )
    )
    return Environment(name=name, type=env_type)


def add_account_id(template: Template, title: str, description: str) -> Parameter:
    """A 12-digit AWS account id parameter."""
    return template.add_parameter(
        Parameter(
            title,
            Type="String",
            Description=description,
            AllowedPattern=ACCOUNT_ID_PATTERN,
            ConstraintDescription="a 12-digit AWS account id",
        )
    )


def add_organization_id(template: Template) -> Parameter:
    """The AWS Organizations id that pins cross-account trust (``aws:PrincipalOrgID``)."""
    return template.add_parameter(
        Parameter(
            "OrganizationId",
            Type="String",
            Description=(
                "AWS Organizations id (o-...) of the accounts; "
                "cross-account trust requires principals of this organization"
            ),
            AllowedPattern=r"^o-[a-z0-9]{10,32}$",
            ConstraintDescription="an organization id such as o-a1b2c3d4e5",
        )
    )


@dataclass(frozen=True)
class PrimaryRegion:
    """The primary-region parameter and the condition that gates global (IAM) resources."""

    parameter: Parameter
    condition: str
    secondary_condition: str


def add_primary_region(template: Template) -> PrimaryRegion:
    """Gate global resources on one region, so a multi-region StackSet creates them once.

    Named IAM roles are global per account: a stack set targeting two regions of one
    account would fail in the second one. Resources created under ``IsPrimaryRegion`` are
    made only where ``AWS::Region`` equals ``PrimaryRegion``; in every other region the
    stack holds only a no-op wait-condition handle, since a stack needs one resource.
    """
    parameter = template.add_parameter(
        Parameter(
            "PrimaryRegion",
            Type="String",
            Description="The one region in which this stack creates its global (IAM) resources",
            AllowedPattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$",
            ConstraintDescription="a region name such as us-east-1",
            Default="us-east-1",
        )
    )
    template.add_condition("IsPrimaryRegion", Equals(Ref("AWS::Region"), Ref(parameter)))
    template.add_condition("IsSecondaryRegion", Not(Condition("IsPrimaryRegion")))
    template.add_resource(WaitConditionHandle("SecondaryRegionPlaceholder", Condition="IsSecondaryRegion"))
    return PrimaryRegion(parameter=parameter, condition="IsPrimaryRegion", secondary_condition="IsSecondaryRegion")


def partition_arn(
    service: str,
    resource: str,
    region: str | None = "${AWS::Region}",
    account: str | None = "${AWS::AccountId}",
    **variables,
) -> Sub:
    """``arn:${AWS::Partition}:<service>:<region>:<account>:<resource>`` as a ``Fn::Sub``.

    ``region`` and ``account`` may be ``""`` (IAM, S3) or any ``${...}`` expression;
    ``variables`` are passed to ``Fn::Sub`` for the placeholders used in them.
    """
    text = f"arn:${{AWS::Partition}}:{service}:{region or ''}:{account or ''}:{resource}"
    return Sub(text, **variables) if variables else Sub(text)


def iam_role_arn(account: str, role_name: str, **variables) -> Sub:
    """ARN of a role by name in ``account`` (``${...}`` expressions allowed in both)."""
    return partition_arn("iam", f"role/{role_name}", region="", account=account, **variables)


def account_root_arn(account: str, **variables) -> Sub:
    """ARN of an account's root principal, e.g. ``account_root_arn("${ConsumerAccountId}")``."""
    return partition_arn("iam", "root", region="", account=account, **variables)
