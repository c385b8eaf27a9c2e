"""The target-account network: where staging and production endpoints serve from.

The same private network as the environment's (``generator.network``), with the
endpoints a SageMaker endpoint in a VPC needs, and an S3 gateway endpoint whose policy
admits the development account's models bucket (model artifacts), the ECR layer bucket
(images) and this account's own buckets (data capture). Its S3 and KMS endpoint ids are
published: the development account's bucket and key policies take them as parameters
(``TargetS3EndpointIds``, ``TargetKmsEndpointIds``) to admit this account's requests.
"""

from __future__ import annotations

from awacs import s3
from awacs.aws import Condition, PolicyDocument, StringEquals, StringLike
from troposphere import Parameter, Ref, Sub, Template

from generator.network import (
    NETWORK_PARAMETERS,
    WORKLOAD_INTERFACE_ENDPOINTS,
    InterfaceEndpointSpec,
    add_private_network,
    add_s3_gateway_endpoint,
    publish_network,
)
from generator.outputs import group_parameters
from generator.parameters import add_environment, partition_arn
from generator.policies import VERSION, allow_through_endpoint
from generator.storage import LIST_ACTIONS, READ_ACTIONS, WRITE_ACTIONS, aws_owned_buckets_statement

TARGET_INTERFACE_ENDPOINTS = (
    InterfaceEndpointSpec("SageMakerRuntime", "sagemaker.runtime"),
    *WORKLOAD_INTERFACE_ENDPOINTS,
)

# Three AZs by default: this network serves production endpoints, SageMaker spreads an
# endpoint's instances over the subnets it is given, and with three AZs the loss of one
# leaves two. Its seven endpoints make the third AZ cheap.
DEFAULT_AZ_COUNT = 3


def target_gateway_policy() -> PolicyDocument:
    """Read the development account's model artifacts; use this account's buckets; pull image layers.

    Names the ``DevelopmentModelsBucketName`` and ``ModelArtifactsPrefix`` parameters.
    """
    bucket = partition_arn("s3", "${DevelopmentModelsBucketName}", region="", account="")
    objects = partition_arn("s3", "${DevelopmentModelsBucketName}/${ModelArtifactsPrefix}*", region="", account="")
    return PolicyDocument(
        Version=VERSION,
        Statement=[
            allow_through_endpoint("ReadDevelopmentModelArtifacts", READ_ACTIONS, [objects]),
            allow_through_endpoint(
                "ListDevelopmentModelArtifacts",
                [s3.ListBucket],
                [bucket],
                Condition(StringLike({"s3:prefix": [Sub("${ModelArtifactsPrefix}*")]})),
            ),
            allow_through_endpoint(
                "ThisAccountsBuckets",
                [*READ_ACTIONS, *LIST_ACTIONS, *WRITE_ACTIONS],
                [partition_arn("s3", "*", region="", account="")],
                Condition(StringEquals({"s3:ResourceAccount": Ref("AWS::AccountId")})),
            ),
            aws_owned_buckets_statement(),
        ],
    )


def build_target_network_template(az_count: int = DEFAULT_AZ_COUNT) -> Template:
    """Private network of a staging or production account, with the endpoints a SageMaker endpoint needs."""
    template = Template(
        Description="Private network of a staging/production account for SageMaker endpoints: subnets, workload SG, "
        "VPC endpoints (S3 gateway admitting the development account's models bucket, SageMaker runtime, STS, logs, "
        "metrics, KMS, ECR); ids published as outputs and SSM parameters"
    )
    env = add_environment(template, types=("staging", "prod"), default_type="staging")
    template.add_parameter(
        Parameter(
            "DevelopmentModelsBucketName",
            Type="String",
            AllowedPattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            ConstraintDescription="an S3 bucket name",
            Description="The development account's models bucket (environment output ModelsBucketName)",
        )
    )
    template.add_parameter(
        Parameter(
            "ModelArtifactsPrefix",
            Type="String",
            Default="models/",
            AllowedPattern=r"^([\w!.*'()-]+/)+$",
            ConstraintDescription="one or more path segments, each ending with /",
            Description="Key prefix of the model artifacts in that bucket (environment output ModelArtifactsPrefix)",
        )
    )
    network = add_private_network(template, env, az_count=az_count, interface_endpoints=TARGET_INTERFACE_ENDPOINTS)
    add_s3_gateway_endpoint(template, env, network, target_gateway_policy())
    publish_network(template, env, network)
    group_parameters(
        template,
        {
            "Environment": ["EnvName", "EnvType"],
            "Development account's models": ["DevelopmentModelsBucketName", "ModelArtifactsPrefix"],
            "Network": [*NETWORK_PARAMETERS],
        },
    )
    return template
