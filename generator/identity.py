"""IAM of the environment: two persona roles, two service roles, and the guardrails.

- ``DataScientistRole`` and ``MlopsEngineerRole``: for people (IAM Identity Center or
  federation); trust the account, which decides who may assume them.
- ``SageMakerExecutionRole``: Studio apps and the jobs they start.
- ``PipelineExecutionRole``: SageMaker Pipelines.

Roles are created bare and receive their policies as separate managed policies: the KMS
key policies name the roles (so the keys depend on them) and the policies name the keys
and buckets, which would otherwise be a dependency cycle.

Every role gets the guardrail policy: deny starting SageMaker jobs, models and notebooks
outside the environment's subnets and security group (or without any VPC configuration),
and without a KMS key for their volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import cloudwatch, ec2, ecr, iam, logs, sagemaker, servicecatalog
from awacs.aws import (
    Condition,
    Deny,
    ForAnyValueStringNotEquals,
    Null,
    Statement,
    StringEquals,
    StringLike,
    StringNotEquals,
)
from troposphere import GetAtt, Ref, Sub, Template
from troposphere.iam import ManagedPolicy, Role

from generator.model_registry import group_name
from generator.parameters import Environment, partition_arn
from generator.policies import account_trust, allow, deny_without_vpc, document, service_trust
from generator.storage import LIST_ACTIONS, READ_ACTIONS, WRITE_ACTIONS, bucket_arn, objects_arn

# Actions that take sagemaker:VpcSubnets / sagemaker:VpcSecurityGroupIds (IAM service
# authorization reference); on an action without the keys a Null test would always deny.
VPC_ACTIONS = (
    sagemaker.CreateTrainingJob,
    sagemaker.CreateProcessingJob,
    sagemaker.CreateHyperParameterTuningJob,
    sagemaker.CreateModel,
    sagemaker.CreateNotebookInstance,
    sagemaker.CreateAutoMLJob,
    sagemaker.CreateMonitoringSchedule,
    sagemaker.CreateDataQualityJobDefinition,
    sagemaker.CreateModelQualityJobDefinition,
    sagemaker.CreateModelBiasJobDefinition,
    sagemaker.CreateModelExplainabilityJobDefinition,
)
# Actions that take sagemaker:VolumeKmsKey.
VOLUME_ACTIONS = (
    sagemaker.CreateTrainingJob,
    sagemaker.CreateProcessingJob,
    sagemaker.CreateHyperParameterTuningJob,
    sagemaker.CreateTransformJob,
    sagemaker.CreateNotebookInstance,
    sagemaker.CreateEndpointConfig,
    sagemaker.CreateAutoMLJob,
)
JOB_ACTIONS = (
    sagemaker.CreateTrainingJob,
    sagemaker.DescribeTrainingJob,
    sagemaker.StopTrainingJob,
    sagemaker.CreateProcessingJob,
    sagemaker.DescribeProcessingJob,
    sagemaker.StopProcessingJob,
    sagemaker.CreateHyperParameterTuningJob,
    sagemaker.DescribeHyperParameterTuningJob,
    sagemaker.StopHyperParameterTuningJob,
    sagemaker.CreateTransformJob,
    sagemaker.DescribeTransformJob,
    sagemaker.StopTransformJob,
    sagemaker.CreateModel,
    sagemaker.DescribeModel,
    sagemaker.DeleteModel,
    sagemaker.AddTags,
    sagemaker.ListTags,
)
JOB_KINDS = ("training-job", "processing-job", "hyper-parameter-tuning-job", "transform-job", "model")
# SageMaker List*/Search actions have no resource-level permissions ("*" required).
LIST_SAGEMAKER = (
    sagemaker.ListTrainingJobs,
    sagemaker.ListProcessingJobs,
    sagemaker.ListHyperParameterTuningJobs,
    sagemaker.ListTransformJobs,
    sagemaker.ListModels,
    sagemaker.ListModelPackageGroups,
    sagemaker.ListPipelines,
    sagemaker.ListDomains,
    sagemaker.ListUserProfiles,
    sagemaker.ListApps,
    sagemaker.ListSpaces,
    sagemaker.ListProjects,
    sagemaker.Search,
)
NETWORK_INTERFACE_ACTIONS = (
    ec2.CreateNetworkInterface,
    ec2.CreateNetworkInterfacePermission,
    ec2.DeleteNetworkInterface,
    ec2.DeleteNetworkInterfacePermission,
)
# EC2 Describe* have no resource-level permissions.
NETWORK_DESCRIBE_ACTIONS = (
    ec2.DescribeNetworkInterfaces,
    ec2.DescribeVpcs,
    ec2.DescribeDhcpOptions,
    ec2.DescribeSubnets,
    ec2.DescribeSecurityGroups,
)


@dataclass(frozen=True)
class Roles:
    data_scientist: Role
    mlops_engineer: Role
    execution: Role
    pipeline: Role

    def all(self) -> list[Role]:
        return [self.data_scientist, self.mlops_engineer, self.execution, self.pipeline]

    def arns(self) -> list[GetAtt]:
        return [GetAtt(role, "Arn") for role in self.all()]


def add_roles(template: Template, env: Environment) -> Roles:
    """The four roles, without policies (see the module docstring)."""
    sagemaker_trust = service_trust("sagemaker.amazonaws.com", source_account=Ref("AWS::AccountId"))

    def role(logical_id: str, description: str, trust) -> Role:
        return template.add_resource(
            Role(
                logical_id,
                Description=description,
                AssumeRolePolicyDocument=trust,
                MaxSessionDuration=3600,
                Tags=env.tags(),
            )
        )

    return Roles(
        data_scientist=role(
            "DataScientistRole",
            "Data scientist persona: Studio, experiments and jobs in the environment's VPC",
            account_trust(),
        ),
        mlops_engineer=role(
            "MlopsEngineerRole",
            "MLOps engineer persona: pipelines, model registry approvals, images, project products",
            account_trust(),
        ),
        execution=role(
            "SageMakerExecutionRole", "SageMaker execution role of Studio apps and the jobs they start", sagemaker_trust
        ),
        pipeline=role(
            "PipelineExecutionRole",
            "SageMaker Pipelines execution role: runs steps and registers models",
            sagemaker_trust,
        ),
    )


def guardrail_statements(subnet_ids, security_group_ids) -> list[Statement]:
    """Preventive denies: SageMaker resources only in these subnets and SGs, volumes only with a KMS key."""
    vpc_actions = list(VPC_ACTIONS)
    return [
        *deny_without_vpc(vpc_actions, sid_prefix="Deny"),
        *(
            Statement(
                Sid=sid,
                Effect=Deny,
                Action=vpc_actions,
                Resource=["*"],
                Condition=Condition(ForAnyValueStringNotEquals({key: allowed})),
            )
            for sid, key, allowed in (
                ("DenyOtherSubnets", "sagemaker:VpcSubnets", subnet_ids),
                ("DenyOtherSecurityGroups", "sagemaker:VpcSecurityGroupIds", security_group_ids),
            )
        ),
        Statement(
            Sid="DenyVolumesWithoutKmsKey",
            Effect=Deny,
            Action=list(VOLUME_ACTIONS),
            Resource=["*"],
            Condition=Condition(Null({"sagemaker:VolumeKmsKey": "true"})),
        ),
        *(
            Statement(
                Sid=f"DenyNotebook{access}",
                Effect=Deny,
                Action=[sagemaker.CreateNotebookInstance],
                Resource=["*"],
                Condition=Condition(StringNotEquals({f"sagemaker:{key}": "Disabled"})),
            )
            for access, key in (("InternetAccess", "DirectInternetAccess"), ("RootAccess", "RootAccess"))
        ),
    ]


def add_guardrails(template: Template, env: Environment, roles: Roles, subnet_ids, security_group_ids) -> ManagedPolicy:
    return template.add_resource(
        ManagedPolicy(
            "SageMakerGuardrailsPolicy",
            Description=Sub(
                "${EnvName}-${EnvType}: SageMaker resources only in the environment's VPC and with encrypted volumes"
            ),
            PolicyDocument=document(*guardrail_statements(subnet_ids, security_group_ids)),
            Roles=[Ref(r) for r in roles.all()],
        )
    )


def _sagemaker_arns(*kinds: str) -> list:
    return [partition_arn("sagemaker", f"{kind}/*") for kind in kinds]


def _bucket_statements(sid: str, buckets, write: bool) -> list[Statement]:
    statements = [
        allow(f"{sid}List", LIST_ACTIONS, [bucket_arn(b) for b in buckets]),
        allow(f"{sid}Read", READ_ACTIONS, [objects_arn(b) for b in buckets]),
    ]
    if write:
        statements.append(allow(f"{sid}Write", WRITE_ACTIONS, [objects_arn(b) for b in buckets]))
    return statements


def _pass_role(sid: str, roles) -> Statement:
    return allow(
        sid,
        [iam.PassRole],
        [GetAtt(r, "Arn") for r in roles],
        Condition(StringEquals({"iam:PassedToService": "sagemaker.amazonaws.com"})),
    )


def _workload_statements(repository) -> list[Statement]:
    """What a SageMaker job needs at run time: ENIs in the VPC, logs, metrics, images."""
    return [
        allow("ManageJobNetworkInterfaces", NETWORK_INTERFACE_ACTIONS, [partition_arn("ec2", "*")]),
        allow("DescribeNetwork", NETWORK_DESCRIBE_ACTIONS, ["*"]),
        allow(
            "WriteSageMakerLogs",
            [logs.CreateLogGroup, logs.CreateLogStream, logs.PutLogEvents, logs.DescribeLogStreams, logs.GetLogEvents],
            [partition_arn("logs", "log-group:/aws/sagemaker/*")],
        ),
        allow(
            "PublishSageMakerMetrics",
            [cloudwatch.PutMetricData],
            ["*"],
            Condition(StringLike({"cloudwatch:namespace": ["/aws/sagemaker/*", "sagemaker/*"]})),
        ),
        allow("GetRegistryToken", [ecr.GetAuthorizationToken], ["*"]),
        allow(
            "PullImages",
            [ecr.BatchGetImage, ecr.GetDownloadUrlForLayer, ecr.BatchCheckLayerAvailability],
            [GetAtt(repository, "Arn"), partition_arn("ecr", "repository/*")],
        ),
        pull_aws_owned_images(),
    ]


def pull_aws_owned_images(sid: str = "PullAwsOwnedImages") -> Statement:
    """Pull SageMaker's own images: built-in algorithms and Deep Learning Containers.

    SageMaker checks ``ecr:BatchGetImage`` on the execution role also for these. They live
    in AWS-owned accounts that differ by region and framework (the SageMaker SDK's
    ``image_uris`` tables), so the account cannot be named; the region is the workload's own
    (SageMaker pulls from its region), the actions are pull-only, and a repository of another
    account still has to admit this one in its own policy, as AWS's image repositories do.
    """
    return allow(
        sid, [ecr.BatchGetImage, ecr.GetDownloadUrlForLayer], [partition_arn("ecr", "repository/*", account="*")]
    )


def _project_statements() -> list[Statement]:
    """Create SageMaker projects: SageMaker launches the project's Service Catalog product as the caller."""
    return [
        allow(
            "LaunchProjectProducts",
            [
                servicecatalog.DescribeProduct,
                servicecatalog.DescribeProvisioningParameters,
                servicecatalog.ListLaunchPaths,
                servicecatalog.ProvisionProduct,
            ],
            # Products may be shared from a hub account's portfolio.
            [partition_arn("catalog", "product/*", account="*")],
        ),
        allow(
            "TrackProvisionedProducts",
            [
                servicecatalog.SearchProducts,
                servicecatalog.DescribeRecord,
                servicecatalog.DescribeProvisionedProduct,
                servicecatalog.UpdateProvisionedProduct,
                servicecatalog.TerminateProvisionedProduct,
            ],
            # No resource-level permissions: access follows the portfolio and the product's owner.
            ["*"],
        ),
        allow("ManageProjects", [sagemaker.CreateProject, sagemaker.DescribeProject], _sagemaker_arns("project")),
    ]


def add_role_policies(template: Template, env: Environment, roles: Roles, storage, registry, domain) -> None:
    """Least-privilege managed policies of the four roles (keys are granted by the key policies)."""
    group_arn = GetAtt(registry.group, "ModelPackageGroupArn")
    # Ref of a model package group is its ARN: the packages' ARN is built from the name.
    packages = Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/${Group}/*",
        Group=group_name(),
    )
    domain_id = GetAtt(domain, "DomainId")
    profiles = Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:user-profile/${DomainId}/*",
        DomainId=domain_id,
    )
    describe_domain = allow(
        "DescribeStudioDomain",
        [sagemaker.DescribeDomain],
        [
            Sub(
                "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:domain/${DomainId}",
                DomainId=domain_id,
            )
        ],
    )
    studio = [
        allow("OpenStudio", [sagemaker.CreatePresignedDomainUrl, sagemaker.DescribeUserProfile], [profiles]),
        describe_domain,
        allow("ListSageMakerResources", LIST_SAGEMAKER, ["*"]),
    ]
    projects = _project_statements()
    manage_pipelines = allow(
        "ManagePipelines",
        [
            sagemaker.CreatePipeline,
            sagemaker.UpdatePipeline,
            sagemaker.DescribePipeline,
            sagemaker.StartPipelineExecution,
            sagemaker.StopPipelineExecution,
            sagemaker.DescribePipelineExecution,
            sagemaker.ListPipelineExecutions,
            sagemaker.ListPipelineExecutionSteps,
            sagemaker.DescribePipelineDefinitionForExecution,
            sagemaker.AddTags,
        ],
        _sagemaker_arns("pipeline", "pipeline-execution"),
    )
    approve_packages = allow("ApproveModelPackages", [sagemaker.UpdateModelPackage], [packages])
    read_registry = allow(
        "ReadModelRegistry",
        [
            sagemaker.DescribeModelPackageGroup,
            sagemaker.DescribeModelPackage,
            sagemaker.ListModelPackages,
            sagemaker.BatchDescribeModelPackage,
        ],
        [group_arn, packages],
    )
    policies = {
        roles.data_scientist: [
            *studio,
            allow("RunJobs", JOB_ACTIONS, _sagemaker_arns(*JOB_KINDS)),
            _pass_role("PassExecutionRoleToSageMaker", [roles.execution]),
            *_bucket_statements("DataBucket", [storage.data], write=True),
            *_bucket_statements("ModelsBucket", [storage.models], write=False),
            read_registry,
            allow("DescribeNetworkForJobs", NETWORK_DESCRIBE_ACTIONS, ["*"]),
        ],
        roles.mlops_engineer: [
            *studio,
            manage_pipelines,
            _pass_role("PassPipelineRolesToSageMaker", [roles.pipeline, roles.execution]),
            read_registry,
            approve_packages,
            allow(
                "PushModelImages",
                [
                    ecr.BatchCheckLayerAvailability,
                    ecr.InitiateLayerUpload,
                    ecr.UploadLayerPart,
                    ecr.CompleteLayerUpload,
                    ecr.PutImage,
                    ecr.BatchGetImage,
                    ecr.GetDownloadUrlForLayer,
                    ecr.DescribeImages,
                    ecr.ListImages,
                ],
                [GetAtt(registry.repository, "Arn")],
            ),
            allow("GetRegistryToken", [ecr.GetAuthorizationToken], ["*"]),
            *_bucket_statements("DataBucket", [storage.data], write=False),
            *_bucket_statements("ModelsBucket", [storage.models], write=True),
            *projects,
        ],
        roles.execution: [
            allow("RunJobs", JOB_ACTIONS, _sagemaker_arns(*JOB_KINDS)),
            _pass_role("PassItselfToSageMaker", [roles.execution]),
            allow(
                "StudioApps",
                [
                    sagemaker.CreateApp,
                    sagemaker.DeleteApp,
                    sagemaker.DescribeApp,
                    sagemaker.CreateSpace,
                    sagemaker.UpdateSpace,
                    sagemaker.DeleteSpace,
                    sagemaker.DescribeSpace,
                ],
                [
                    Sub(
                        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:${Kind}/${DomainId}/*",
                        Kind=kind,
                        DomainId=domain_id,
                    )
                    for kind in ("app", "space")
                ],
            ),
            allow("ListSageMakerResources", LIST_SAGEMAKER, ["*"]),
            read_registry,
            *_bucket_statements("EnvironmentBuckets", storage.environment_buckets(), write=True),
            *_workload_statements(registry.repository),
        ],
        roles.pipeline: [
            allow("RunPipelineSteps", JOB_ACTIONS, _sagemaker_arns(*JOB_KINDS)),
            _pass_role("PassExecutionRoleToSageMaker", [roles.execution]),
            allow(
                "RegisterModels",
                [
                    sagemaker.CreateModelPackage,
                    sagemaker.DescribeModelPackage,
                    sagemaker.DescribeModelPackageGroup,
                    sagemaker.ListModelPackages,
                    sagemaker.AddTags,
                ],
                [group_arn, packages],
            ),
            *_bucket_statements("DataBucket", [storage.data], write=False),
            *_bucket_statements("ModelsBucket", [storage.models], write=True),
            allow("DescribeNetworkForJobs", NETWORK_DESCRIBE_ACTIONS, ["*"]),
        ],
    }
    for role, statements in policies.items():
        template.add_resource(
            ManagedPolicy(
                f"{role.title.removesuffix('Role')}Policy",
                Description=Sub("${EnvName}-${EnvType}: permissions of " + role.title),
                PolicyDocument=document(*statements),
                Roles=[Ref(role)],
            )
        )
    # Studio apps run as the execution role (not as the persona that opened Studio): what the
    # seed flows do from a notebook (create a project, run its pipeline, register and approve
    # models) on this environment's domain, group and account. A policy of its own: one
    # managed policy holds 6,144 characters.
    template.add_resource(
        ManagedPolicy(
            "SageMakerExecutionStudioPolicy",
            Description=Sub("${EnvName}-${EnvType}: what Studio apps do as SageMakerExecutionRole"),
            PolicyDocument=document(
                _pass_role("PassPipelineRoleToSageMaker", [roles.pipeline]),
                allow("DescribeOwnUserProfiles", [sagemaker.DescribeUserProfile], [profiles]),
                describe_domain,
                manage_pipelines,
                *projects,
                allow("RegisterModels", [sagemaker.CreateModelPackage, sagemaker.AddTags], [group_arn, packages]),
                approve_packages,
            ),
            Roles=[Ref(roles.execution)],
        )
    )
