"""SageMaker MLOps project template: model building in the development account.

The companion of ``mlops_project`` (deployment): data scientists upload their seed code
(a zip with ``buildspec.yml`` at its root, which upserts and starts a SageMaker Pipeline
that trains, evaluates and registers into the model package group) to the project's
artifacts bucket; S3 tells EventBridge, which starts a pipeline:

  Source (S3: the seed code) -> Build (CodeBuild runs the seed code's buildspec)

The build may manage and run SageMaker pipelines named ``sagemaker-<project id>-*`` and
pass the environment's pipeline execution role to SageMaker, nothing else.

Where the pipeline's code lives: the build runs outside the VPC (CodeBuild's own network,
so the seed code can install its packages without opening the VPC to the internet) and the
pipeline's steps run in it, reaching S3 only through the environment's gateway endpoint.
``pipeline.upsert()`` uploads the step code to the artifacts bucket under
``pipeline-code/`` (the ``PIPELINE_CODE_PREFIX`` the build is given); the bucket is named
``sagemaker-<project id>-artifacts-<account>`` so the environment's endpoint policy can admit
reads of that prefix in advance, and its bucket and key policies let the pipeline execution
role, and no other role of the environment, read (decrypt) it.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import iam, kms, sagemaker
from awacs.aws import Allow, Condition, Principal, Statement, StringEquals, StringLike
from troposphere import Equals, GetAtt, If, Not, Output, Parameter, Ref, Sub, Template
from troposphere import codebuild as cb
from troposphere.codepipeline import Pipeline, Stages
from troposphere.events import Rule
from troposphere.iam import Role
from troposphere.s3 import EventBridgeConfiguration, NotificationConfiguration

from generator.mlops_project import (
    ENVIRONMENT_GROUP_NAME,
    ProjectIdentity,
    add_artifact_storage,
    add_build_log_group,
    add_codebuild_project,
    add_codebuild_role,
    add_codepipeline,
    add_codepipeline_role,
    add_pipeline_outputs,
    add_pipeline_trigger,
    add_project_identity,
    add_source_key,
    build_log_group_arn,
    pipeline_action,
    s3_source_stage,
)
from generator.parameters import partition_arn
from generator.policies import allow
from generator.storage import PIPELINE_CODE_ACTIONS, PIPELINE_CODE_PREFIX, PROJECT_ARTIFACTS_BUCKET

SOURCE_ARTIFACT = "SeedCode"
# Names from the project id: ids are lower case, like the names in SageMaker pipeline ARNs
# (a project name may have capitals, which an IAM resource pattern would then miss).
NAME_PREFIX = "sagemaker-${SageMakerProjectId}"
BUILD_PROJECT_NAME = NAME_PREFIX + "-model-build"
SAGEMAKER_PIPELINE_NAME = NAME_PREFIX + "-training"
HAS_GROUP_NAME = "HasModelPackageGroupName"


@dataclass(frozen=True)
class BuildProjectParameters(ProjectIdentity):
    pipeline_role_arn: Parameter
    source_key: Parameter


def add_parameters(template: Template) -> BuildProjectParameters:
    identity = add_project_identity(template, "the training pipeline registers into")
    env = identity.env
    return BuildProjectParameters(
        **vars(identity),
        pipeline_role_arn=template.add_parameter(
            Parameter(
                "PipelineExecutionRoleArn",
                Type="AWS::SSM::Parameter::Value<String>",
                Description="SSM parameter holding the environment's SageMaker pipeline execution role ARN",
                Default=f"/{env.name.Default}/{env.type.Default}/iam/pipeline-execution-role-arn",
            )
        ),
        source_key=add_source_key(
            template,
            "Key, in the artifacts bucket, of the seed code zip (buildspec.yml at its root)",
            "model-build/seed-code.zip",
        ),
    )


def pipeline_role_reads_code(p: BuildProjectParameters, bucket) -> Statement:
    """Artifacts bucket policy: the pipeline execution role (its steps) reads the uploaded pipeline code."""
    return Statement(
        Sid="PipelineExecutionRoleReadsPipelineCode",
        Effect=Allow,
        Principal=Principal("AWS", [Ref(p.pipeline_role_arn)]),
        Action=list(PIPELINE_CODE_ACTIONS),
        Resource=[Sub("${BucketArn}/" + PIPELINE_CODE_PREFIX + "*", BucketArn=GetAtt(bucket, "Arn"))],
    )


def pipeline_role_decrypts_code(p: BuildProjectParameters) -> Statement:
    """Artifacts key policy: the pipeline execution role decrypts, through S3, objects of the artifacts bucket.

    The bucket is named by its ARN from the name pattern, not by ``GetAtt``: the bucket's
    encryption names the key, so the key policy may not name the bucket resource (a cycle).
    """
    return Statement(
        Sid="PipelineExecutionRoleDecryptsThroughS3",
        Effect=Allow,
        Principal=Principal("AWS", [Ref(p.pipeline_role_arn)]),
        Action=[kms.Decrypt],
        Resource=["*"],
        Condition=Condition(
            [
                StringEquals({"kms:ViaService": Sub("s3.${AWS::Region}.${AWS::URLSuffix}")}),
                # The bucket's ARN with its S3 bucket key, an object's ARN without it.
                StringLike(
                    {
                        "kms:EncryptionContext:aws:s3:arn": [
                            partition_arn("s3", PROJECT_ARTIFACTS_BUCKET + suffix, region="", account="")
                            for suffix in ("", "/*")
                        ]
                    }
                ),
            ]
        ),
    )


def add_build_role(template: Template, p: BuildProjectParameters, bucket, key, log_group) -> Role:
    pipelines = partition_arn("sagemaker", "pipeline/" + NAME_PREFIX + "-*")
    statements = [
        allow(
            "ManageProjectPipelines",
            [
                sagemaker.CreatePipeline,
                sagemaker.UpdatePipeline,
                sagemaker.DescribePipeline,
                sagemaker.StartPipelineExecution,
                sagemaker.ListPipelineExecutions,
                sagemaker.AddTags,
                sagemaker.ListTags,
            ],
            [pipelines],
        ),
        allow(
            "FollowProjectPipelineExecutions",
            [sagemaker.DescribePipelineExecution, sagemaker.ListPipelineExecutionSteps],
            [partition_arn("sagemaker", "pipeline/" + NAME_PREFIX + "-*/execution/*")],
        ),
        allow(
            "PassPipelineExecutionRoleToSageMaker",
            [iam.PassRole],
            [Ref(p.pipeline_role_arn)],
            Condition(StringEquals({"iam:PassedToService": "sagemaker.amazonaws.com"})),
        ),
    ]
    return add_codebuild_role(
        template,
        p,
        bucket,
        key,
        log_group,
        "CodeBuild: upserts and starts the project's SageMaker training pipeline",
        "RunTrainingPipeline",
        statements,
    )


def add_build(template: Template, p: BuildProjectParameters, bucket, key) -> cb.Project:
    log_group = add_build_log_group(template, p, BUILD_PROJECT_NAME, key)
    role = add_build_role(template, p, bucket, key, log_group)
    variables = {
        "SAGEMAKER_PROJECT_NAME": Ref(p.project_name),
        "SAGEMAKER_PROJECT_ID": Ref(p.project_id),
        "SAGEMAKER_PIPELINE_NAME": Sub(SAGEMAKER_PIPELINE_NAME),
        "SAGEMAKER_PIPELINE_ROLE_ARN": Ref(p.pipeline_role_arn),
        "MODEL_PACKAGE_GROUP_NAME": If(HAS_GROUP_NAME, Ref(p.group_name), Sub(ENVIRONMENT_GROUP_NAME)),
        "ARTIFACT_BUCKET": Ref(bucket),
        "ARTIFACT_KMS_KEY_ARN": GetAtt(key, "Arn"),
        # The SageMaker session's default_bucket_prefix: the only prefix the pipeline's steps can read.
        "PIPELINE_CODE_PREFIX": PIPELINE_CODE_PREFIX.rstrip("/"),
    }
    # No inline buildspec: the seed code's buildspec.yml decides how its pipeline is built.
    return add_codebuild_project(
        template,
        p,
        "ModelBuild",
        BUILD_PROJECT_NAME,
        "Runs the seed code's buildspec: upsert and start the SageMaker training pipeline",
        role,
        key,
        log_group,
        variables,
        cb.Source(Type="CODEPIPELINE"),
        timeout_minutes=60,
    )


def add_pipeline(template: Template, p: BuildProjectParameters, bucket, key, build: cb.Project) -> Pipeline:
    role = add_codepipeline_role(
        template,
        p,
        bucket,
        key,
        build,
        "CodePipeline: runs the model build pipeline of the SageMaker project",
        "BuildModel",
    )
    stages = [
        s3_source_stage("SeedCode", bucket, p.source_key, SOURCE_ARTIFACT),
        Stages(
            Name="Build",
            Actions=[
                pipeline_action(
                    "RunTrainingPipeline",
                    "Build",
                    "CodeBuild",
                    {"ProjectName": Ref(build)},
                    inputs=[SOURCE_ARTIFACT],
                )
            ],
        ),
    ]
    return add_codepipeline(template, p, "ModelBuildPipeline", NAME_PREFIX + "-model-build", role, bucket, key, stages)


def add_upload_trigger(template: Template, p: BuildProjectParameters, bucket, pipeline: Pipeline) -> Rule:
    """A new seed-code upload (S3 event through EventBridge) starts the pipeline."""
    return add_pipeline_trigger(
        template,
        p,
        pipeline,
        role_title="UploadTriggerRole",
        rule_title="SeedCodeUploadedRule",
        purpose="starts the model build pipeline when new seed code is uploaded",
        policy_name="StartModelBuildPipeline",
        event_pattern={
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [Ref(bucket)]}, "object": {"key": [Ref(p.source_key)]}},
        },
    )


def build_mlops_model_build_project_template() -> Template:
    """SageMaker project: uploading seed code builds, trains and registers a model."""
    template = Template(
        Description="SageMaker MLOps project: uploading seed code starts a pipeline whose build upserts and runs the "
        "project's SageMaker training pipeline, which registers models into the environment's registry"
    )
    p = add_parameters(template)
    template.add_condition(HAS_GROUP_NAME, Not(Equals(Ref(p.group_name), "")))
    key, bucket = add_artifact_storage(
        template,
        p,
        build_log_group_arn(BUILD_PROJECT_NAME),
        key_statements=[pipeline_role_decrypts_code(p)],
        bucket_statements=lambda bucket: [pipeline_role_reads_code(p, bucket)],
        BucketName=Sub(PROJECT_ARTIFACTS_BUCKET),
    )
    # S3 sends its object events to EventBridge, so an upload starts the pipeline without polling.
    bucket.NotificationConfiguration = NotificationConfiguration(
        EventBridgeConfiguration=EventBridgeConfiguration(EventBridgeEnabled=True)
    )
    build = add_build(template, p, bucket, key)
    pipeline = add_pipeline(template, p, bucket, key, build)
    add_upload_trigger(template, p, bucket, pipeline)

    add_pipeline_outputs(
        template,
        pipeline,
        bucket,
        "SeedCodeUri",
        "Upload the seed code zip (buildspec.yml at its root) here to build a model",
    )
    template.add_output(Output("SageMakerPipelineName", Value=Sub(SAGEMAKER_PIPELINE_NAME)))
    return template
