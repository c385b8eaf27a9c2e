"""SageMaker MLOps project template: multi-account model deployment on model approval.

Published in Service Catalog as a SageMaker project template (SageMaker passes
``SageMakerProjectName`` and ``SageMakerProjectId``). In the development account it
creates a pipeline that an EventBridge rule starts whenever a model package of the
project's group is approved:

  Source (S3: the model-deploy template, zipped)
  -> Build (CodeBuild: resolve the latest approved package, write stack-set parameters)
  -> DeployStaging (CloudFormationStackSet: create/update the stack set, staging targets)
  -> ApproveProduction (manual approval)
  -> DeployProduction (CloudFormationStackInstances: production targets, prod overrides)

Every role is least privilege: no wildcard actions, PassRole only for the StackSet
administration role and only to CloudFormation.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from awacs import cloudformation, codebuild, codepipeline, iam, kms, logs, s3, sagemaker, sns
from awacs.aws import Allow, ArnEqualsIfExists, Condition, Principal, Statement, StringEquals
from troposphere import Equals, GetAtt, If, Not, NoValue, Output, Parameter, Ref, Sub, Template
from troposphere import codebuild as cb
from troposphere.codepipeline import (
    Actions,
    ActionTypeId,
    ArtifactStore,
    EncryptionKey,
    InputArtifacts,
    OutputArtifacts,
    Pipeline,
    Stages,
)
from troposphere.events import Rule, Target
from troposphere.iam import Policy as InlinePolicy
from troposphere.iam import PolicyType, Role
from troposphere.logs import LogGroup

from generator import model_deploy
from generator.buckets import (
    add_access_logs_bucket,
    add_access_logs_policy,
    add_encrypted_bucket,
    objects_arn,
)
from generator.keys import add_key, key_policy
from generator.parameters import (
    Environment,
    add_environment,
    choice_parameter,
    iam_role_arn,
    partition_arn,
    string_parameter,
)
from generator.policies import allow, document, service_trust

SOURCE_ARTIFACT = "SourceArtifact"
BUILD_ARTIFACT = "StackSetArtifact"
TEMPLATE_FILE = "model-deploy.yaml"
STAGING_PARAMETERS_FILE = "staging-parameters.json"
PROD_OVERRIDES_FILE = "prod-parameter-overrides.json"
BUILD_IMAGE = "aws/codebuild/amazonlinux2-x86_64-standard:5.0"
LOG_RETENTION_DAYS = 365
# Resource names start with sagemaker-<project>-<id>: SageMaker Studio lists a project's
# pipelines and builds, and SageMaker's own project roles are scoped, by that prefix.
NAME_PREFIX = "sagemaker-${SageMakerProjectName}-${SageMakerProjectId}"
BUILD_PROJECT_NAME = NAME_PREFIX + "-resolve-model"
# A comma-separated list of targets: account ids, organizational unit ids or root ids.
_TARGET = r"(\d{12}|ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})"
TARGETS_PATTERN = "^" + _TARGET + "(," + _TARGET + ")*$"
REGION = r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d"
# The environment template's model package group (generator.model_registry.group_name):
# its resource policy lets the target accounts create models from its packages, and the
# target accounts' ModelExecutionRole may describe packages of that group only.
ENVIRONMENT_GROUP_NAME = "${EnvName}-${EnvType}-models"

SELF_MANAGED = "SelfManagedStackSet"
HAS_GROUP_NAME = "HasModelPackageGroupName"
HAS_STACK_SET_NAME = "HasStackSetName"
HAS_REGIONS = "HasDeploymentRegions"
HAS_APPROVAL_TOPIC = "HasApprovalTopic"


@dataclass(frozen=True)
class ProjectIdentity:
    """The parameters every SageMaker project template takes (:func:`add_project_identity`)."""

    env: Environment
    project_name: Parameter
    project_id: Parameter
    group_name: Parameter


@dataclass(frozen=True)
class ProjectParameters(ProjectIdentity):
    """The template's parameters, by concern."""

    stack_set_name: Parameter
    staging_targets: Parameter
    prod_targets: Parameter
    regions: Parameter
    permission_model: Parameter
    admin_role_name: Parameter
    execution_role_name: Parameter
    staging_instance_type: Parameter
    prod_instance_type: Parameter
    failure_tolerance: Parameter
    max_concurrent: Parameter
    source_key: Parameter
    approval_topic_arn: Parameter


def add_project_identity(template: Template, group_purpose: str) -> ProjectIdentity:
    """The parameters every SageMaker project template takes: the (development) environment, the
    project's name and id (SageMaker passes them) and the model package group, by default the environment's."""
    return ProjectIdentity(
        add_environment(template, types=("dev",), default_type="dev"),
        string_parameter(
            template,
            "SageMakerProjectName",
            "Name of the SageMaker project (passed by SageMaker)",
            r"^[a-zA-Z](-*[a-zA-Z0-9]){0,31}$",
            "1-32 letters, digits and hyphens, starting with a letter",
        ),
        string_parameter(
            template,
            "SageMakerProjectId",
            "Id of the SageMaker project (passed by SageMaker)",
            r"^[a-z0-9-]{1,20}$",
            "1-20 lower-case letters, digits and hyphens",
        ),
        string_parameter(
            template,
            "ModelPackageGroupName",
            f"Model package group {group_purpose}; empty: the development environment's registry group "
            "<EnvName>-<EnvType>-models, the one shared with the target accounts",
            r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$",
            "empty or a model package group name",
            default="",
        ),
    )


def add_source_key(template: Template, description: str, default: str) -> Parameter:
    """The ``SourceObjectKey`` parameter: the zip in the artifacts bucket that starts the pipeline."""
    return string_parameter(
        template, "SourceObjectKey", description, r"^[\w!.*'()/-]{1,1000}\.zip$", "an S3 key ending in .zip", default
    )


def add_project_parameters(template: Template) -> ProjectParameters:
    """Every parameter of the project template."""
    role_name = r"^[\w+=,.@-]{1,64}$"
    instance_type = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
    return ProjectParameters(
        **vars(add_project_identity(template, "whose approvals deploy")),
        stack_set_name=string_parameter(
            template,
            "StackSetName",
            "Stack set of the model endpoints; empty: sagemaker-<project name>-<project id>-deploy",
            r"^([a-zA-Z][a-zA-Z0-9-]{0,127})?$",
            "empty or up to 128 letters, digits and hyphens, starting with a letter",
            default="",
        ),
        staging_targets=string_parameter(
            template,
            "StagingDeploymentTargets",
            "Staging targets, comma separated: account ids (SELF_MANAGED) or OU/root ids (SERVICE_MANAGED)",
            TARGETS_PATTERN,
            "12-digit account ids or ou-/r- ids, comma separated, no spaces",
        ),
        prod_targets=string_parameter(
            template,
            "ProductionDeploymentTargets",
            "Production targets, comma separated: account ids (SELF_MANAGED) or OU/root ids (SERVICE_MANAGED)",
            TARGETS_PATTERN,
            "12-digit account ids or ou-/r- ids, comma separated, no spaces",
        ),
        regions=string_parameter(
            template,
            "DeploymentRegions",
            "Regions of the endpoints, comma separated, in rollout order; empty: this region",
            rf"^({REGION}(,{REGION})*)?$",
            "empty or region names, comma separated, no spaces",
            default="",
        ),
        permission_model=choice_parameter(
            template,
            "PermissionModel",
            "SELF_MANAGED: this account administers the stack set through its administration role; "
            "SERVICE_MANAGED: Organizations targets (this account must be the management account)",
            ["SELF_MANAGED", "SERVICE_MANAGED"],
            "SELF_MANAGED",
        ),
        admin_role_name=string_parameter(
            template,
            "StackSetAdministrationRoleName",
            "SELF_MANAGED: this account's StackSet administration role",
            role_name,
            "an IAM role name",
            default="AWSCloudFormationStackSetAdministrationRole",
        ),
        execution_role_name=string_parameter(
            template,
            "StackSetExecutionRoleName",
            "SELF_MANAGED: the execution role in every target account (must trust the administration role)",
            role_name,
            "an IAM role name",
            default="AWSCloudFormationStackSetExecutionRole",
        ),
        staging_instance_type=string_parameter(
            template,
            "StagingInstanceType",
            "Instance type of the staging endpoints",
            instance_type,
            "an ml.* instance type",
            default="ml.m5.large",
        ),
        prod_instance_type=string_parameter(
            template,
            "ProductionInstanceType",
            "Instance type of the production endpoints",
            instance_type,
            "an ml.* instance type",
            default="ml.m5.large",
        ),
        failure_tolerance=template.add_parameter(
            Parameter(
                "FailureTolerancePercentage",
                Type="Number",
                Default=0,
                MinValue=0,
                MaxValue=100,
                Description="Percentage of accounts per region that may fail before the rollout stops in that region",
            )
        ),
        max_concurrent=template.add_parameter(
            Parameter(
                "MaxConcurrentPercentage",
                Type="Number",
                Default=25,
                MinValue=1,
                MaxValue=100,
                Description="Percentage of accounts deployed at once (capped by the failure tolerance + 1 account)",
            )
        ),
        source_key=add_source_key(
            template,
            "Key, in the artifacts bucket, of the zip holding model-deploy.yaml at its root",
            "model-deploy/source.zip",
        ),
        approval_topic_arn=string_parameter(
            template,
            "ApprovalTopicArn",
            "SNS topic told when a production deployment waits for approval; optional",
            r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256})?$",
            "empty or an SNS topic ARN",
            default="",
        ),
    )


def add_conditions(template: Template, p: ProjectParameters) -> None:
    template.add_condition(SELF_MANAGED, Equals(Ref(p.permission_model), "SELF_MANAGED"))
    template.add_condition(HAS_GROUP_NAME, Not(Equals(Ref(p.group_name), "")))
    template.add_condition(HAS_STACK_SET_NAME, Not(Equals(Ref(p.stack_set_name), "")))
    template.add_condition(HAS_REGIONS, Not(Equals(Ref(p.regions), "")))
    template.add_condition(HAS_APPROVAL_TOPIC, Not(Equals(Ref(p.approval_topic_arn), "")))


def project_tags(p):
    """Environment tags plus the SageMaker project's name and id (how Studio finds them)."""
    return p.env.tags(**{"sagemaker:project-name": Ref(p.project_name), "sagemaker:project-id": Ref(p.project_id)})


@dataclass(frozen=True)
class Names:
    """Values derived from parameters, resolved once."""

    group: If
    stack_set: If
    regions: If
    admin_role_arn: Sub


def derive_names(p: ProjectParameters) -> Names:
    return Names(
        group=If(HAS_GROUP_NAME, Ref(p.group_name), Sub(ENVIRONMENT_GROUP_NAME)),
        stack_set=If(HAS_STACK_SET_NAME, Ref(p.stack_set_name), Sub(NAME_PREFIX + "-deploy")),
        regions=If(HAS_REGIONS, Ref(p.regions), Ref("AWS::Region")),
        admin_role_arn=iam_role_arn("${AWS::AccountId}", "${StackSetAdministrationRoleName}"),
    )


# --- Storage ---------------------------------------------------------------------------


def add_artifact_storage(
    template: Template, p, log_group_arn: Sub, key_statements=(), bucket_statements=None, **bucket_properties
):
    """The artifacts key and bucket (source object and pipeline artifacts); ``p`` has env and project parameters.

    ``key_statements`` join the key policy, ``bucket_statements(bucket)`` the bucket policy;
    ``bucket_properties`` are further bucket properties (``BucketName``).
    """
    logs_may_encrypt = Statement(
        Sid="CloudWatchLogsEncryptsBuildLogs",
        Effect=Allow,
        Principal=Principal("Service", [Sub("logs.${AWS::Region}.${AWS::URLSuffix}")]),  # amazonaws.com.cn in China
        # No DescribeKey: it carries no encryption context, so this condition could never match it.
        Action=[kms.Encrypt, kms.Decrypt, kms.ReEncryptFrom, kms.ReEncryptTo, kms.GenerateDataKey],
        Resource=["*"],
        Condition=Condition(StringEquals({"kms:EncryptionContext:aws:logs:arn": log_group_arn})),
    )
    key = add_key(
        template,
        "ArtifactsKey",
        "Encrypts the MLOps project's pipeline artifacts and build logs",
        project_tags(p),
        policy=key_policy(logs_may_encrypt, *key_statements),
    )
    logs = add_access_logs_bucket(template, "AccessLogsBucket", project_tags(p))
    bucket, _ = add_encrypted_bucket(
        template,
        "ArtifactsBucket",
        GetAtt(key, "Arn"),
        project_tags(p),
        extra_statements=bucket_statements,
        access_logs=logs,
        **bucket_properties,
    )
    add_access_logs_policy(template, logs, [bucket])
    return key, bucket


# --- Roles -----------------------------------------------------------------------------


def artifact_statements(bucket, key) -> list[Statement]:
    return [
        allow("ReadWriteArtifacts", [s3.GetObject, s3.GetObjectVersion, s3.PutObject], [objects_arn(bucket)]),
        allow("ReadArtifactsBucket", [s3.GetBucketVersioning, s3.GetBucketLocation], [GetAtt(bucket, "Arn")]),
        allow(
            "UseArtifactsKey", [kms.Decrypt, kms.Encrypt, kms.GenerateDataKey, kms.DescribeKey], [GetAtt(key, "Arn")]
        ),
    ]


def write_logs_statement(log_group: LogGroup) -> Statement:
    """CodeBuild writes its build logs to ``log_group`` only."""
    return allow(
        "WriteBuildLogs",
        [logs.CreateLogStream, logs.PutLogEvents],
        [Sub("${LogGroupArn}", LogGroupArn=GetAtt(log_group, "Arn"))],
    )


def add_build_role(template: Template, p: ProjectParameters, names: Names, bucket, key, log_group: LogGroup) -> Role:
    """CodeBuild: artifacts, its own log group, and reading the project's model packages."""
    statements = [
        allow(
            "DescribeProjectModelPackages",
            [sagemaker.DescribeModelPackage, sagemaker.DescribeModelPackageGroup],
            [
                partition_arn("sagemaker", "model-package/${Group}/*", Group=names.group),
                partition_arn("sagemaker", "model-package-group/${Group}", Group=names.group),
            ],
        ),
        # ListModelPackages has no resource-level permissions: AWS requires "*".
        allow("ListModelPackages", [sagemaker.ListModelPackages], ["*"]),
    ]
    return add_codebuild_role(
        template,
        p,
        bucket,
        key,
        log_group,
        "CodeBuild: resolves the latest approved model package and writes stack-set parameters",
        "ResolveApprovedModel",
        statements,
    )


def _stack_set_resources(names: Names) -> list:
    """The project's stack set, its targets, and the resource types of the model-deploy template."""
    types = sorted({r.resource_type for r in model_deploy.build_model_deploy_template().resources.values()})
    return [
        partition_arn("cloudformation", "stackset/${StackSet}:*", StackSet=names.stack_set),
        partition_arn(
            "cloudformation",
            "stackset-target/${StackSet}:*",
            region="*",
            account="${AWS::AccountId}",
            StackSet=names.stack_set,
        ),
        *[
            partition_arn("cloudformation", "type/resource/" + t.replace("::", "-"), region="*", account="")
            for t in types
        ],
    ]


def add_pipeline_role(template: Template, p: ProjectParameters, names: Names, bucket, key, build: cb.Project) -> Role:
    """CodePipeline: artifacts, start the build, drive the project's stack set, pass the admin role."""
    statements = [
        # CreateStackSet has no resource-level permissions (AWS requires "*"); when the
        # request names an administration role, it must be the project's.
        allow(
            "CreateStackSetWithTheAdministrationRole",
            [cloudformation.CreateStackSet],
            ["*"],
            Condition(ArnEqualsIfExists({"cloudformation:RoleArn": names.admin_role_arn})),
        ),
        allow(
            "DeployProjectStackSet",
            [
                cloudformation.UpdateStackSet,
                cloudformation.DescribeStackSet,
                cloudformation.CreateStackInstances,
                cloudformation.UpdateStackInstances,
                cloudformation.ListStackInstances,
                cloudformation.DescribeStackInstance,
                cloudformation.DescribeStackSetOperation,
                cloudformation.ListStackSetOperations,
                cloudformation.ListStackSetOperationResults,
            ],
            _stack_set_resources(names),
        ),
        allow(
            "PassStackSetAdministrationRoleToCloudFormation",
            [iam.PassRole],
            [names.admin_role_arn],
            Condition(StringEquals({"iam:PassedToService": "cloudformation.amazonaws.com"})),
        ),
    ]
    role = add_codepipeline_role(
        template,
        p,
        bucket,
        key,
        build,
        "CodePipeline: runs the model deployment pipeline of the SageMaker project",
        "DeployApprovedModel",
        statements,
    )
    template.add_resource(
        PolicyType(
            "PipelineApprovalNotificationPolicy",
            Condition=HAS_APPROVAL_TOPIC,
            PolicyName="NotifyApprovers",
            Roles=[Ref(role)],
            PolicyDocument=document(allow("NotifyApprovers", [sns.Publish], [Ref(p.approval_topic_arn)])),
        )
    )
    return role


def add_pipeline_trigger(
    template: Template,
    p,
    pipeline: Pipeline,
    *,
    role_title: str,
    rule_title: str,
    purpose: str,
    policy_name: str,
    event_pattern: dict,
) -> Rule:
    """An EventBridge rule starting ``pipeline`` on ``event_pattern``, with a role that may
    start this pipeline and nothing else (shared by both project templates)."""
    pipeline_arn = partition_arn("codepipeline", "${Pipeline}", Pipeline=Ref(pipeline))
    role = template.add_resource(
        Role(
            role_title,
            Description=f"EventBridge: {purpose}",
            AssumeRolePolicyDocument=service_trust("events.amazonaws.com", source_account=Ref("AWS::AccountId")),
            Policies=[
                InlinePolicy(
                    PolicyName=policy_name,
                    PolicyDocument=document(allow(policy_name, [codepipeline.StartPipelineExecution], [pipeline_arn])),
                )
            ],
            Tags=project_tags(p),
        )
    )
    return template.add_resource(
        Rule(
            rule_title,
            Description=purpose[0].upper() + purpose[1:],
            EventPattern=event_pattern,
            State="ENABLED",
            Targets=[Target(Id=pipeline.title, Arn=pipeline_arn, RoleArn=GetAtt(role, "Arn"))],
            Tags=project_tags(p),
        )
    )


# --- Build -----------------------------------------------------------------------------

_WRITE_PARAMETERS = f'''import json, os
env = os.environ
def network(stage):
    prefix = "/" + env["TARGET_ENV_NAME"] + "/" + stage + "/"
    return {{"SubnetIds": prefix + "{model_deploy.SUBNET_IDS_SSM_SUFFIX}",
            "WorkloadSecurityGroupId": prefix + "{model_deploy.SECURITY_GROUP_SSM_SUFFIX}"}}
def as_list(values):
    return [{{"ParameterKey": k, "ParameterValue": v}} for k, v in sorted(values.items())]
staging = {{"EnvName": env["TARGET_ENV_NAME"], "EnvType": "staging", "InstanceType": env["STAGING_INSTANCE_TYPE"],
           "ModelPackageArn": env["MODEL_PACKAGE_ARN"], "SageMakerProjectName": env["PROJECT_NAME"],
           "SageMakerProjectId": env["PROJECT_ID"], **network("staging")}}
prod = {{"EnvType": "prod", "InstanceType": env["PROD_INSTANCE_TYPE"], **network("prod")}}
with open("{STAGING_PARAMETERS_FILE}", "w") as f:
    json.dump(as_list(staging), f, indent=2)
with open("{PROD_OVERRIDES_FILE}", "w") as f:
    json.dump(as_list(prod), f, indent=2)
'''


def build_script() -> str:
    """The build's bash script: resolve the newest approved package, write the parameter files."""
    return "\n".join(
        [
            "set -euo pipefail",
            f'test -f {TEMPLATE_FILE} || {{ echo "the source zip has no {TEMPLATE_FILE} at its root" >&2; exit 1; }}',
            'MODEL_PACKAGE_ARN="$(aws sagemaker list-model-packages '
            '--model-package-group-name "$MODEL_PACKAGE_GROUP_NAME" '
            "--model-approval-status Approved --sort-by CreationTime --sort-order Descending --max-items 1 "
            "--query 'ModelPackageSummaryList[0].ModelPackageArn' --output text)\"",
            'if [ -z "$MODEL_PACKAGE_ARN" ] || [ "$MODEL_PACKAGE_ARN" = "None" ]; then',
            '  echo "no approved model package in group $MODEL_PACKAGE_GROUP_NAME" >&2',
            "  exit 1",
            "fi",
            'echo "deploying $MODEL_PACKAGE_ARN"',
            "export MODEL_PACKAGE_ARN",
            "python3 - <<'PY'",
            _WRITE_PARAMETERS.rstrip("\n"),
            "PY",
            "",
        ]
    )


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the buildspec reads as the script it is."""


_LiteralDumper.add_representer(
    str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None)
)


def buildspec() -> str:
    """The inline buildspec: one bash script, and the three files the deploy stages read."""
    spec = {
        "version": 0.2,
        "env": {"shell": "bash"},
        "phases": {"build": {"commands": [build_script()]}},
        "artifacts": {"files": [TEMPLATE_FILE, STAGING_PARAMETERS_FILE, PROD_OVERRIDES_FILE]},
    }
    return yaml.dump(spec, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def build_log_group_arn(project_name: str) -> Sub:
    """ARN of the log group of CodeBuild project ``project_name`` (a ``Fn::Sub`` text)."""
    return partition_arn("logs", "log-group:/aws/codebuild/" + project_name)


def add_build_log_group(template: Template, p, project_name: str, key) -> LogGroup:
    """The build's log group, KMS-encrypted and retained (the key policy admits it by ARN)."""
    return template.add_resource(
        LogGroup(
            "BuildLogGroup",
            LogGroupName=Sub("/aws/codebuild/" + project_name),
            KmsKeyId=GetAtt(key, "Arn"),
            RetentionInDays=LOG_RETENTION_DAYS,
            Tags=project_tags(p),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )


def add_codebuild_project(
    template: Template,
    p,
    title: str,
    name: str,
    description: str,
    role,
    key,
    log_group,
    variables: dict,
    source: cb.Source,
    timeout_minutes: int,
) -> cb.Project:
    """A CodeBuild project run by the pipeline (``name`` a Fn::Sub text): KMS-encrypted, logging to ``log_group``."""
    return template.add_resource(
        cb.Project(
            title,
            Name=Sub(name),
            Description=description,
            ServiceRole=GetAtt(role, "Arn"),
            EncryptionKey=GetAtt(key, "Arn"),
            Source=source,
            Artifacts=cb.Artifacts(Type="CODEPIPELINE"),
            Environment=cb.Environment(
                Type="LINUX_CONTAINER",
                ComputeType="BUILD_GENERAL1_SMALL",
                Image=BUILD_IMAGE,
                EnvironmentVariables=[
                    cb.EnvironmentVariable(Name=k, Type="PLAINTEXT", Value=v) for k, v in variables.items()
                ],
            ),
            LogsConfig=cb.LogsConfig(CloudWatchLogs=cb.CloudWatchLogs(Status="ENABLED", GroupName=Ref(log_group))),
            TimeoutInMinutes=timeout_minutes,
            QueuedTimeoutInMinutes=60,
            Tags=project_tags(p),
        )
    )


def add_build(template: Template, p: ProjectParameters, names: Names, bucket, key) -> cb.Project:
    log_group = add_build_log_group(template, p, BUILD_PROJECT_NAME, key)
    role = add_build_role(template, p, names, bucket, key, log_group)
    variables = {
        "MODEL_PACKAGE_GROUP_NAME": names.group,
        "TARGET_ENV_NAME": Ref(p.env.name),
        "PROJECT_NAME": Ref(p.project_name),
        "PROJECT_ID": Ref(p.project_id),
        "STAGING_INSTANCE_TYPE": Ref(p.staging_instance_type),
        "PROD_INSTANCE_TYPE": Ref(p.prod_instance_type),
    }
    return add_codebuild_project(
        template,
        p,
        "ResolveModelBuild",
        BUILD_PROJECT_NAME,
        "Resolves the latest approved model package and writes the stack-set parameters",
        role,
        key,
        log_group,
        variables,
        cb.Source(Type="CODEPIPELINE", BuildSpec=buildspec()),
        timeout_minutes=15,
    )


# --- Pipeline --------------------------------------------------------------------------


def pipeline_action(name: str, category: str, provider: str, configuration: dict, inputs=(), outputs=()) -> Actions:
    action = Actions(
        Name=name,
        ActionTypeId=ActionTypeId(Category=category, Owner="AWS", Provider=provider, Version="1"),
        Configuration=configuration,
        RunOrder=1,
    )
    if inputs:
        action.InputArtifacts = [InputArtifacts(Name=n) for n in inputs]
    if outputs:
        action.OutputArtifacts = [OutputArtifacts(Name=n) for n in outputs]
    return action


def encrypted_artifact_store(bucket, key) -> ArtifactStore:
    """The pipeline's artifact store: the project's bucket, encrypted with its key."""
    return ArtifactStore(
        Type="S3", Location=Ref(bucket), EncryptionKey=EncryptionKey(Type="KMS", Id=GetAtt(key, "Arn"))
    )


def s3_source_stage(action: str, bucket, source_key: Parameter, artifact: str = SOURCE_ARTIFACT) -> Stages:
    """The Source stage: one object of the project's bucket, the pipeline started by an event, not polling."""
    return Stages(
        Name="Source",
        Actions=[
            pipeline_action(
                action,
                "Source",
                "S3",
                {"S3Bucket": Ref(bucket), "S3ObjectKey": Ref(source_key), "PollForSourceChanges": "false"},
                outputs=[artifact],
            )
        ],
    )


def pipeline_stages(p: ProjectParameters, names: Names, bucket, build: cb.Project) -> list[Stages]:
    """Source, Build, DeployStaging, ApproveProduction, DeployProduction, in this order."""
    operation = {
        "FailureTolerancePercentage": Ref(p.failure_tolerance),
        "MaxConcurrentPercentage": Ref(p.max_concurrent),
    }
    self_managed_only = {
        "AdministrationRoleArn": If(SELF_MANAGED, names.admin_role_arn, NoValue),
        "ExecutionRoleName": If(SELF_MANAGED, Ref(p.execution_role_name), NoValue),
    }
    return [
        s3_source_stage("ModelDeployTemplate", bucket, p.source_key),
        Stages(
            Name="Build",
            Actions=[
                pipeline_action(
                    "ResolveApprovedModel",
                    "Build",
                    "CodeBuild",
                    {"ProjectName": Ref(build)},
                    inputs=[SOURCE_ARTIFACT],
                    outputs=[BUILD_ARTIFACT],
                )
            ],
        ),
        Stages(
            Name="DeployStaging",
            Actions=[
                pipeline_action(
                    "StackSetToStaging",
                    "Deploy",
                    "CloudFormationStackSet",
                    {
                        "StackSetName": names.stack_set,
                        "Description": Sub(
                            "Model endpoints of SageMaker project ${SageMakerProjectName} (${SageMakerProjectId})"
                        ),
                        "TemplatePath": f"{BUILD_ARTIFACT}::{TEMPLATE_FILE}",
                        "Parameters": f"{BUILD_ARTIFACT}::{STAGING_PARAMETERS_FILE}",
                        "PermissionModel": Ref(p.permission_model),
                        "DeploymentTargets": Ref(p.staging_targets),
                        "Regions": names.regions,
                        **self_managed_only,
                        **operation,
                    },
                    inputs=[BUILD_ARTIFACT],
                )
            ],
        ),
        Stages(
            Name="ApproveProduction",
            Actions=[
                pipeline_action(
                    "ApproveProductionDeployment",
                    "Approval",
                    "Manual",
                    {
                        "CustomData": Sub(
                            "Approve to deploy the model tested in staging to production (stack set ${StackSet})",
                            StackSet=names.stack_set,
                        ),
                        "NotificationArn": If(HAS_APPROVAL_TOPIC, Ref(p.approval_topic_arn), NoValue),
                    },
                )
            ],
        ),
        Stages(
            Name="DeployProduction",
            Actions=[
                pipeline_action(
                    "StackInstancesToProduction",
                    "Deploy",
                    "CloudFormationStackInstances",
                    {
                        "StackSetName": names.stack_set,
                        "DeploymentTargets": Ref(p.prod_targets),
                        "Regions": names.regions,
                        "ParameterOverrides": f"{BUILD_ARTIFACT}::{PROD_OVERRIDES_FILE}",
                        **operation,
                    },
                    inputs=[BUILD_ARTIFACT],
                )
            ],
        ),
    ]


def add_pipeline(template: Template, p: ProjectParameters, names: Names, bucket, key, build: cb.Project) -> Pipeline:
    role = add_pipeline_role(template, p, names, bucket, key, build)
    return add_codepipeline(
        template,
        p,
        "DeploymentPipeline",
        NAME_PREFIX + "-deploy",
        role,
        bucket,
        key,
        pipeline_stages(p, names, bucket, build),
    )


def _add_service_role(
    template: Template, p, title: str, service: str, description: str, policy_name: str, statements
) -> Role:
    """A role of the project that only ``service`` (of this account) assumes, with ``statements`` inline."""
    return template.add_resource(
        Role(
            title,
            Description=description,
            AssumeRolePolicyDocument=service_trust(service, source_account=Ref("AWS::AccountId")),
            Policies=[InlinePolicy(PolicyName=policy_name, PolicyDocument=document(*statements))],
            Tags=project_tags(p),
        )
    )


def add_codebuild_role(
    template: Template, p, bucket, key, log_group: LogGroup, description: str, policy_name: str, statements
) -> Role:
    """The ``BuildRole`` of a project's CodeBuild project: its artifacts, its own log group, and ``statements``."""
    allowed = artifact_statements(bucket, key) + [write_logs_statement(log_group), *statements]
    return _add_service_role(template, p, "BuildRole", "codebuild.amazonaws.com", description, policy_name, allowed)


def add_codepipeline_role(
    template: Template, p, bucket, key, build: cb.Project, description: str, policy_name: str, statements=()
) -> Role:
    """The ``PipelineRole`` of a project's pipeline: its artifacts, start ``build``, and ``statements``."""
    allowed = artifact_statements(bucket, key) + [
        allow("RunBuild", [codebuild.StartBuild, codebuild.BatchGetBuilds], [GetAtt(build, "Arn")]),
        *statements,
    ]
    return _add_service_role(
        template, p, "PipelineRole", "codepipeline.amazonaws.com", description, policy_name, allowed
    )


def add_codepipeline(template: Template, p, title: str, name: str, role: Role, bucket, key, stages) -> Pipeline:
    """A project's CodePipeline (V2) named ``name`` (a ``Sub`` pattern), its artifacts in ``bucket`` under ``key``."""
    return template.add_resource(
        Pipeline(
            title,
            Name=Sub(name),
            PipelineType="V2",
            # A newer run overtakes an older one (in the deployment pipeline: one waiting at the approval).
            ExecutionMode="SUPERSEDED",
            RoleArn=GetAtt(role, "Arn"),
            ArtifactStore=encrypted_artifact_store(bucket, key),
            Stages=stages,
            Tags=project_tags(p),
        )
    )


def add_pipeline_outputs(template: Template, pipeline: Pipeline, bucket, uri_title: str, uri_description: str) -> None:
    """Outputs of a project: its pipeline, its artifacts bucket, and where to upload the pipeline's source."""
    template.add_output(Output("PipelineName", Value=Ref(pipeline)))
    template.add_output(Output("ArtifactsBucketName", Value=Ref(bucket)))
    template.add_output(
        Output(
            uri_title, Description=uri_description, Value=Sub("s3://${Bucket}/${SourceObjectKey}", Bucket=Ref(bucket))
        )
    )


def add_approval_trigger(template: Template, p: ProjectParameters, names: Names, pipeline: Pipeline) -> Rule:
    """The EventBridge rule: an Approved model package of the project's group starts the pipeline."""
    return add_pipeline_trigger(
        template,
        p,
        pipeline,
        role_title="ApprovalTriggerRole",
        rule_title="ModelApprovedRule",
        purpose="starts the deployment pipeline when a model package of the project's group is approved",
        policy_name="StartDeploymentPipeline",
        event_pattern={
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [names.group], "ModelApprovalStatus": ["Approved"]},
        },
    )


def add_not_in_china_rule(template: Template) -> None:
    """Refuse the China partition before any resource is made: its CodePipeline has no StackSet actions."""
    template.add_rule(
        "StackSetActionsExistInThisPartition",
        {
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("AWS::Partition"), "aws-cn")),
                    "AssertDescription": (
                        "CodePipeline's CloudFormationStackSet and CloudFormationStackInstances actions do not "
                        "exist in the China regions: this project's pipeline cannot deploy there"
                    ),
                }
            ]
        },
    )


def build_mlops_multi_account_project_template() -> Template:
    """SageMaker project: an approved model package deploys to staging, then (approved) to production."""
    template = Template(
        Description="SageMaker MLOps project: model package approval starts a pipeline that deploys the model to the "
        "staging accounts as a StackSet, waits for manual approval, then deploys it to the production accounts"
    )
    p = add_project_parameters(template)
    add_conditions(template, p)
    add_not_in_china_rule(template)
    names = derive_names(p)
    key, bucket = add_artifact_storage(template, p, build_log_group_arn(BUILD_PROJECT_NAME))
    build = add_build(template, p, names, bucket, key)
    pipeline = add_pipeline(template, p, names, bucket, key, build)
    add_approval_trigger(template, p, names, pipeline)

    add_pipeline_outputs(
        template,
        pipeline,
        bucket,
        "SourceObjectUri",
        f"Upload a zip with {TEMPLATE_FILE} at its root here (the pipeline's source)",
    )
    template.add_output(Output("StackSetName", Value=names.stack_set))
    template.add_output(Output("ModelPackageGroupName", Value=names.group))
    return template
