"""SageMaker Studio: a domain in ``VpcOnly`` mode and an optional example user profile."""

from __future__ import annotations

from troposphere import And, Equals, GetAtt, Not, Ref, Sub, Template
from troposphere.sagemaker import DefaultSpaceSettings, Domain, SharingSettings, UserProfile, UserSettings

from generator.parameters import Environment, choice_parameter, string_parameter

HAS_USER_PROFILE = "CreateExampleUserProfile"


def _user_settings(execution_role, security_group) -> UserSettings:
    return UserSettings(
        ExecutionRole=GetAtt(execution_role, "Arn"),
        SecurityGroups=[GetAtt(security_group, "GroupId")],
        # Notebook sharing would copy notebooks and outputs to S3 outside the policies here.
        SharingSettings=SharingSettings(NotebookOutputOption="Disabled"),
    )


def add_studio(template: Template, env: Environment, network, execution_role, efs_key) -> Domain:
    """The domain: VPC only (no SageMaker-managed internet), workload SG, private subnets, EFS key."""
    auth = choice_parameter(
        template,
        "StudioAuthMode",
        "How users sign in to Studio: IAM (presigned URLs for the persona roles) or SSO (IAM Identity Center)",
        ["IAM", "SSO"],
        "IAM",
    )
    profile_name = string_parameter(
        template,
        "StudioUserProfileName",
        "Create an example Studio user profile with this name (IAM auth mode only; empty: none)",
        r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$",
        "empty, or a Studio user profile name (letters, digits, hyphens)",
        default="",
    )
    template.add_condition(HAS_USER_PROFILE, And(Not(Equals(Ref(profile_name), "")), Equals(Ref(auth), "IAM")))
    domain = template.add_resource(
        Domain(
            "StudioDomain",
            DomainName=Sub("${EnvName}-${EnvType}"),
            AuthMode=Ref(auth),
            AppNetworkAccessType="VpcOnly",
            VpcId=network.vpc_id,
            SubnetIds=network.private_subnet_ids,
            KmsKeyId=GetAtt(efs_key, "Arn"),
            DefaultUserSettings=_user_settings(execution_role, network.workload_sg),
            # Shared spaces run in the same security group, under the same role.
            DefaultSpaceSettings=DefaultSpaceSettings(
                ExecutionRole=GetAtt(execution_role, "Arn"), SecurityGroups=[GetAtt(network.workload_sg, "GroupId")]
            ),
            TagPropagation="ENABLED",
            Tags=env.tags(),
        )
    )
    template.add_resource(
        UserProfile(
            "ExampleUserProfile",
            Condition=HAS_USER_PROFILE,
            DomainId=GetAtt(domain, "DomainId"),
            UserProfileName=Ref(profile_name),
            UserSettings=_user_settings(execution_role, network.workload_sg),
            Tags=env.tags(),
        )
    )
    return domain
