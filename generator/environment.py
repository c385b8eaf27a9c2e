"""The environment template: the secure data-science environment of the development account.

Composed from one small builder per concern, in dependency order: network and interface
endpoints, roles, keys (their policies name the roles and the KMS endpoint), buckets,
the S3 gateway endpoint (its policy names the buckets), bucket policies (they name the
endpoint), the model registry, Studio, the roles' policies, and the published outputs.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template

from generator.encryption import add_keys
from generator.identity import add_guardrails, add_role_policies, add_roles
from generator.model_readers import add_model_readers
from generator.model_registry import add_model_registry, group_name
from generator.network import (
    NETWORK_PARAMETERS,
    WORKLOAD_INTERFACE_ENDPOINTS,
    add_private_network,
    add_s3_gateway_endpoint,
    endpoint_specs,
    publish_network,
)
from generator.outputs import group_parameters, publish
from generator.parameters import add_environment
from generator.storage import add_bucket_policies, add_buckets, environment_gateway_policy
from generator.studio import add_studio

# Interface endpoints of the development account: SageMaker (API, runtime, feature store,
# notebook and Studio), what jobs and Studio apps call (STS, logs, metrics, KMS, ECR, SSM),
# and what the MLOps project templates call from the VPC (Service Catalog, CloudFormation,
# CodePipeline, CodeBuild).
ENVIRONMENT_INTERFACE_ENDPOINTS = (
    endpoint_specs(
        ("SageMakerApi", "sagemaker.api"),
        ("SageMakerRuntime", "sagemaker.runtime"),
        ("SageMakerFeatureStoreRuntime", "sagemaker.featurestore-runtime"),
        ("SageMakerNotebook", "notebook", "aws.sagemaker"),
        ("SageMakerStudio", "studio", "aws.sagemaker"),
    )
    + WORKLOAD_INTERFACE_ENDPOINTS
    + endpoint_specs(
        ("Ssm", "ssm"),
        ("ServiceCatalog", "servicecatalog"),
        ("CloudFormation", "cloudformation"),
        ("CodePipeline", "codepipeline"),
        ("CodeBuild", "codebuild"),
    )
)

# Two AZs by default: the development account runs experiments and pipelines, not a
# service with an availability target, and every interface endpoint is billed per AZ
# (16 endpoints: a third AZ adds 16 ENIs). Studio and training work with two.
DEFAULT_AZ_COUNT = 2


def build_environment_template(az_count: int = DEFAULT_AZ_COUNT) -> Template:
    """The development account's environment: network, keys, buckets, Studio, roles, registry."""
    template = Template(
        Description="Secure SageMaker data-science environment of the development account: private network with "
        "endpoints, KMS keys, S3 buckets, Studio domain (VpcOnly), persona and execution roles, shared model registry"
    )
    env = add_environment(template, default_type="dev")
    readers = add_model_readers(template)
    network = add_private_network(template, env, az_count=az_count, interface_endpoints=ENVIRONMENT_INTERFACE_ENDPOINTS)
    roles = add_roles(template, env)
    keys = add_keys(template, env, roles.arns(), network.endpoint("kms"), readers)
    storage = add_buckets(template, env, keys.data, keys.models)
    s3_endpoint = add_s3_gateway_endpoint(template, env, network, environment_gateway_policy(storage))
    add_bucket_policies(template, storage, keys, s3_endpoint, readers)
    registry = add_model_registry(template, env, readers, keys.models)
    domain = add_studio(template, env, network, roles.execution, keys.efs)
    add_guardrails(template, env, roles, network.private_subnet_ids, [GetAtt(network.workload_sg, "GroupId")])
    add_role_policies(template, env, roles, storage, registry, domain)

    publish_network(template, env, network)
    for name, key in (("Data", keys.data), ("Models", keys.models), ("Ebs", keys.ebs), ("StudioEfs", keys.efs)):
        slug = {"StudioEfs": "studio-efs"}.get(name, name.lower())
        publish(template, env, f"{name}KeyArn", GetAtt(key, "Arn"), f"ARN of the {slug} KMS key", f"kms/{slug}-key-arn")
    publish(template, env, "DataBucketName", Ref(storage.data), "Data bucket", "s3/data-bucket-name")
    publish(
        template,
        env,
        "ModelsBucketName",
        Ref(storage.models),
        "Models bucket (model artifacts)",
        "s3/models-bucket-name",
    )
    publish(
        template,
        env,
        "AccessLogsBucketName",
        Ref(storage.access_logs),
        "Server access log bucket",
        "s3/access-logs-bucket-name",
    )
    publish(
        template,
        env,
        "ModelArtifactsPrefix",
        Ref(storage.model_prefix),
        "Key prefix the target accounts may read",
        "s3/model-artifacts-prefix",
    )
    publish(
        template,
        env,
        "ModelPackageGroupArn",
        GetAtt(registry.group, "ModelPackageGroupArn"),
        "Model package group shared with the target accounts",
        "registry/model-package-group-arn",
    )
    publish(
        template,
        env,
        "ModelPackageGroupName",
        group_name(),
        "Model package group name",
        "registry/model-package-group-name",
    )
    publish(
        template,
        env,
        "ModelImageRepositoryName",
        Ref(registry.repository),
        "ECR repository of inference images",
        "registry/model-image-repository-name",
    )
    publish(
        template,
        env,
        "ModelImageRepositoryUri",
        GetAtt(registry.repository, "RepositoryUri"),
        "ECR repository URI",
        "registry/model-image-repository-uri",
    )
    publish(
        template, env, "StudioDomainId", GetAtt(domain, "DomainId"), "SageMaker Studio domain id", "studio/domain-id"
    )
    for role, slug in (
        (roles.execution, "sagemaker-execution-role-arn"),
        (roles.pipeline, "pipeline-execution-role-arn"),
        (roles.data_scientist, "data-scientist-role-arn"),
        (roles.mlops_engineer, "mlops-engineer-role-arn"),
    ):
        publish(template, env, f"{role.title}Arn", GetAtt(role, "Arn"), f"ARN of {role.title}", f"iam/{slug}")
    group_parameters(
        template,
        {
            "Environment": ["EnvName", "EnvType"],
            "Network": [*NETWORK_PARAMETERS],
            "Storage": ["ModelsBucketName", "ModelArtifactsPrefix"],
            "Sharing models with the staging and production accounts": [
                "TargetAccountIds",
                "OrganizationId",
                "TargetS3EndpointIds",
                "TargetKmsEndpointIds",
            ],
            "SageMaker Studio": ["StudioAuthMode", "StudioUserProfileName"],
        },
    )
    return template
