"""Model-deploy template: a private SageMaker endpoint in a staging or production account.

The model comes from the development account's registry (a model package ARN) or from an
image URI plus model data URL; it runs in the target account's private subnets (from the
target-network stack's SSM parameters), its volume encrypted with a customer managed key.
Optional: data capture to an encrypted bucket, autoscaling on invocations per instance.
Always: alarms on 5xx errors and model latency.

Why no ``ModelName`` / ``EndpointConfigName``: a new model version changes properties of
the model and the endpoint config that CloudFormation can only apply by replacement, and
CloudFormation cannot replace a resource with a custom physical name (the new one would
collide with the old one, which still exists until cleanup). Generated names let it
create the new model and config, switch the endpoint to them in place, then delete the
old ones. The endpoint itself keeps a stable name: switching its config is an in-place
update, and consumers (the endpoint-invoke role) need to know the name in advance.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import s3
from awacs.aws import Allow, Principal, Statement
from troposphere import (
    And,
    AWSProperty,
    Equals,
    GetAtt,
    If,
    Join,
    Not,
    NoValue,
    Or,
    Output,
    Parameter,
    Ref,
    Sub,
    Template,
)
from troposphere.applicationautoscaling import (
    PredefinedMetricSpecification,
    ScalableTarget,
    ScalingPolicy,
    TargetTrackingScalingPolicyConfiguration,
)
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.sagemaker import (
    CaptureOption,
    ContainerDefinition,
    Endpoint,
    EndpointConfig,
    Model,
    ProductionVariant,
    VpcConfig,
)
from troposphere.validators import boolean, double, integer

from generator.buckets import (
    add_access_logs_bucket,
    add_access_logs_policy,
    add_encrypted_bucket,
    objects_arn,
)
from generator.keys import KEY_DATA_ACTIONS, add_key, key_policy
from generator.parameters import Environment, add_environment, iam_role_arn, string_parameter

VARIANT_NAME = "AllTraffic"
DATA_CAPTURE_PREFIX = "datacapture"
# Role name of the target-account-roles template's ModelExecutionRole (cross_account.py).
MODEL_EXECUTION_ROLE_NAME = "${EnvName}-model-execution"
# SSM parameter names the target-network stack publishes, under ``/<EnvName>/<EnvType>/``.
SUBNET_IDS_SSM_SUFFIX = "network/private-subnet-ids"
SECURITY_GROUP_SSM_SUFFIX = "network/workload-security-group-id"
# Target-tracking cooldowns (seconds): scale out fast, scale in slowly so that a short lull
# does not drop capacity that the next burst needs (instances take minutes to start).
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 600

# Condition names (referenced by name in CloudFormation, so defined once here).
USE_MODEL_PACKAGE = "UseModelPackage"
HAS_IMAGE_URI = "HasImageUri"
HAS_MODEL_DATA_URL = "HasModelDataUrl"
DERIVE_EXECUTION_ROLE = "DeriveModelExecutionRoleArn"
ISOLATE_NETWORK = "IsolateModelNetwork"
CREATE_KEY = "CreateEndpointKey"
CAPTURE_DATA = "CaptureData"
SCALE_AUTOMATICALLY = "ScaleAutomatically"
HAS_ENDPOINT_NAME = "HasEndpointName"
HAS_PROJECT = "HasProject"
HAS_ALARM_TOPIC = "HasAlarmTopic"


class EndpointDataCaptureConfig(AWSProperty):
    """``AWS::SageMaker::EndpointConfig.DataCaptureConfig``.

    troposphere 4.11 binds EndpointConfig's DataCaptureConfig to the transform job's shape
    (no CaptureOptions or sampling percentage); this is the endpoint config's own shape.
    """

    props = {
        "CaptureContentTypeHeader": (dict, False),
        "CaptureOptions": ([CaptureOption], True),
        "DestinationS3Uri": (str, True),
        "EnableCapture": (boolean, False),
        "InitialSamplingPercentage": (integer, True),
        "KmsKeyId": (str, False),
    }


@dataclass(frozen=True)
class DeployParameters:
    """The template's parameters, by concern."""

    env: Environment
    model_package_arn: Parameter
    image_uri: Parameter
    model_data_url: Parameter
    execution_role_arn: Parameter
    network_isolation: Parameter
    endpoint_name: Parameter
    instance_type: Parameter
    instance_count: Parameter
    kms_key_arn: Parameter
    subnet_ids: Parameter
    security_group_id: Parameter
    data_capture: Parameter
    sampling_percentage: Parameter
    autoscaling: Parameter
    min_instances: Parameter
    max_instances: Parameter
    target_invocations: Parameter
    errors_threshold: Parameter
    latency_threshold: Parameter
    alarm_topic_arn: Parameter
    project_name: Parameter
    project_id: Parameter


def _string(
    template: Template, title: str, description: str, pattern: str, constraint: str, default: str | None = ""
) -> Parameter:
    return string_parameter(template, title, description, pattern, constraint, default)


def _number(template: Template, title: str, description: str, default: int, minimum: int, maximum: int) -> Parameter:
    return template.add_parameter(
        Parameter(title, Type="Number", Description=description, Default=default, MinValue=minimum, MaxValue=maximum)
    )


def _switch(template: Template, title: str, description: str, default: str, values=("true", "false")) -> Parameter:
    return template.add_parameter(
        Parameter(title, Type="String", Description=description, AllowedValues=list(values), Default=default)
    )


def add_deploy_parameters(template: Template) -> DeployParameters:
    """Every parameter of the model-deploy template."""
    env = add_environment(template, types=("staging", "prod"), default_type="staging")
    default_prefix = f"/{env.name.Default}/{env.type.Default}/"
    return DeployParameters(
        env=env,
        model_package_arn=_string(
            template,
            "ModelPackageArn",
            (
                "ARN of an approved model package version in the "
                "development account's registry; leave empty to use ImageUri"
            ),
            r"^(arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-z0-9](-*[a-z0-9]){0,62}(/\d+)?)?$",
            (
                "empty or a model package ARN "
                "(arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            ),
        ),
        image_uri=_string(
            template,
            "ImageUri",
            "Inference image in ECR (when ModelPackageArn is empty)",
            r"^(\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9]+([._/-][a-z0-9]+)*(:[\w.-]{1,128}|@sha256:[a-f0-9]{64}))?$",
            "empty or an ECR image URI with a tag or digest",
        ),
        model_data_url=_string(
            template,
            "ModelDataUrl",
            "S3 URL of the model artifacts (model.tar.gz) for ImageUri; optional",
            r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+)?$",
            "empty or an s3:// URL",
        ),
        execution_role_arn=_string(
            template,
            "ModelExecutionRoleArn",
            "ARN of the model's execution role; empty: the ModelExecutionRole of the target-account-roles stack "
            "(<EnvName>-model-execution in this account)",
            r"^(arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512})?$",
            "empty or an IAM role ARN",
        ),
        network_isolation=_switch(
            template,
            "EnableNetworkIsolation",
            "Run the model container with no network access at all (it still reads its artifacts through the VPC)",
            "true",
        ),
        endpoint_name=_string(
            template,
            "EndpointName",
            "Endpoint name; empty: <SageMakerProjectName>-<EnvType> for a project, else <EnvName>-<EnvType>-endpoint",
            r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$",
            "empty or up to 63 letters, digits and hyphens",
        ),
        instance_type=_string(
            template,
            "InstanceType",
            "Instance type of the endpoint (KmsKeyId is not supported on instance types with local NVMe storage)",
            r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
            "an ml.* instance type such as ml.m5.large",
            default="ml.m5.large",
        ),
        instance_count=_number(template, "InitialInstanceCount", "Instances the endpoint starts with", 1, 1, 100),
        kms_key_arn=_string(
            template,
            "KmsKeyArn",
            "KMS key ARN for the endpoint's storage volume and captured data; empty: create a customer managed key",
            r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-[a-f0-9]{32}|[a-f0-9-]{36}))?$",
            "empty or a KMS key ARN (not an alias)",
        ),
        subnet_ids=template.add_parameter(
            Parameter(
                "SubnetIds",
                Type="AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>",
                Description=f"SSM parameter holding the private subnet ids (published by the target-network stack "
                f"as /<EnvName>/<EnvType>/{SUBNET_IDS_SSM_SUFFIX})",
                Default=default_prefix + SUBNET_IDS_SSM_SUFFIX,
            )
        ),
        security_group_id=template.add_parameter(
            Parameter(
                "WorkloadSecurityGroupId",
                Type="AWS::SSM::Parameter::Value<AWS::EC2::SecurityGroup::Id>",
                Description=f"SSM parameter holding the workload security group id (published by the target-network "
                f"stack as /<EnvName>/<EnvType>/{SECURITY_GROUP_SSM_SUFFIX})",
                Default=default_prefix + SECURITY_GROUP_SSM_SUFFIX,
            )
        ),
        data_capture=_switch(
            template, "EnableDataCapture", "Capture requests and responses to an encrypted bucket", "false"
        ),
        sampling_percentage=_number(
            template, "DataCaptureSamplingPercentage", "Percentage of requests captured", 20, 1, 100
        ),
        autoscaling=_switch(
            template,
            "AutoScaling",
            "Target-tracking autoscaling: 'default' scales in prod and not in staging",
            "default",
            values=("default", "enabled", "disabled"),
        ),
        min_instances=_number(template, "MinInstanceCount", "Autoscaling lower bound", 1, 1, 100),
        max_instances=_number(
            template, "MaxInstanceCount", "Autoscaling upper bound (at least MinInstanceCount)", 4, 1, 100
        ),
        target_invocations=_number(
            template,
            "TargetInvocationsPerInstance",
            "Autoscaling target: invocations per instance per minute",
            1000,
            1,
            1000000,
        ),
        errors_threshold=_number(
            template,
            "Invocation5XXErrorsThreshold",
            "Alarm when 5xx errors per minute reach this, 3 minutes of 5",
            1,
            1,
            1000000,
        ),
        latency_threshold=_number(
            template,
            "ModelLatencyThresholdMicroseconds",
            "Alarm when the average model latency (microseconds) exceeds this, 3 minutes of 5",
            500000,
            1000,
            60000000,
        ),
        alarm_topic_arn=_string(
            template,
            "AlarmTopicArn",
            "SNS topic notified by the alarms; optional",
            r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256})?$",
            "empty or an SNS topic ARN",
        ),
        project_name=_string(
            template,
            "SageMakerProjectName",
            "SageMaker project that deploys this endpoint, tagged when given",
            r"^([a-zA-Z](-*[a-zA-Z0-9]){0,31})?$",
            "empty or a SageMaker project name",
        ),
        project_id=_string(
            template,
            "SageMakerProjectId",
            "Id of that SageMaker project, tagged when given",
            r"^([a-zA-Z0-9-]{1,64})?$",
            "empty or a SageMaker project id",
        ),
    )


def add_conditions(template: Template, p: DeployParameters) -> None:
    """The template's conditions and the rules that reject contradictory parameters."""
    template.add_condition(USE_MODEL_PACKAGE, Not(Equals(Ref(p.model_package_arn), "")))
    template.add_condition(HAS_IMAGE_URI, Not(Equals(Ref(p.image_uri), "")))
    template.add_condition(HAS_MODEL_DATA_URL, Not(Equals(Ref(p.model_data_url), "")))
    template.add_condition(DERIVE_EXECUTION_ROLE, Equals(Ref(p.execution_role_arn), ""))
    template.add_condition(ISOLATE_NETWORK, Equals(Ref(p.network_isolation), "true"))
    template.add_condition(CREATE_KEY, Equals(Ref(p.kms_key_arn), ""))
    template.add_condition(CAPTURE_DATA, Equals(Ref(p.data_capture), "true"))
    template.add_condition(
        SCALE_AUTOMATICALLY,
        Or(
            Equals(Ref(p.autoscaling), "enabled"),
            And(Equals(Ref(p.autoscaling), "default"), Equals(Ref(p.env.type), "prod")),
        ),
    )
    template.add_condition(HAS_ENDPOINT_NAME, Not(Equals(Ref(p.endpoint_name), "")))
    template.add_condition(HAS_PROJECT, And(Not(Equals(Ref(p.project_name), "")), Not(Equals(Ref(p.project_id), ""))))
    template.add_condition(HAS_ALARM_TOPIC, Not(Equals(Ref(p.alarm_topic_arn), "")))

    package, image, data = (Ref(p.model_package_arn), Ref(p.image_uri), Ref(p.model_data_url))
    no_name, no_id = Equals(Ref(p.project_name), ""), Equals(Ref(p.project_id), "")
    template.add_rule(
        "ExactlyOneModelSource",
        {
            "Assertions": [
                {
                    "Assert": {"Fn::Or": [{"Fn::Not": [Equals(package, "")]}, {"Fn::Not": [Equals(image, "")]}]},
                    "AssertDescription": (
                        "Give ModelPackageArn, or ImageUri (with ModelDataUrl if the image needs artifacts)"
                    ),
                },
                {
                    "Assert": {"Fn::Or": [Equals(package, ""), Equals(image, "")]},
                    "AssertDescription": (
                        "Give ModelPackageArn or ImageUri, not both: a model package names its own image"
                    ),
                },
                {
                    "Assert": {"Fn::Or": [Equals(data, ""), {"Fn::Not": [Equals(image, "")]}]},
                    "AssertDescription": "ModelDataUrl goes with ImageUri; a model package names its own artifacts",
                },
            ]
        },
    )
    template.add_rule(
        "ProjectNameAndIdTogether",
        {
            "Assertions": [
                {
                    "Assert": {
                        "Fn::Or": [
                            {"Fn::And": [no_name, no_id]},
                            {"Fn::And": [{"Fn::Not": [no_name]}, {"Fn::Not": [no_id]}]},
                        ]
                    },
                    "AssertDescription": "Give SageMakerProjectName and SageMakerProjectId together, or neither",
                }
            ]
        },
    )


def resource_tags(p: DeployParameters) -> If:
    """Environment tags, the deployment stage, and the SageMaker project's name and id when given.

    One ``If`` over two whole tag lists rather than ``If`` items inside one list: the
    rules make the project's name and id come together, and the local emulator keeps
    ``AWS::NoValue`` list items as nulls where AWS drops them.
    """
    stage = {"sagemaker:deployment-stage": Ref(p.env.type)}
    project = {"sagemaker:project-name": Ref(p.project_name), "sagemaker:project-id": Ref(p.project_id)}
    return If(HAS_PROJECT, p.env.tags(**stage, **project), p.env.tags(**stage))


def add_endpoint_key(template: Template, p: DeployParameters, execution_role_arn) -> object:
    """The key of the endpoint's volume and captured data: given, or created here. Returns its ARN."""
    capture_writer = Statement(
        Sid="ModelExecutionRoleWritesCapturedData",
        Effect=Allow,
        Principal=Principal("AWS", [execution_role_arn]),
        Action=list(KEY_DATA_ACTIONS),
        Resource=["*"],
    )
    # The execution role is named in the key policy only when it writes captured data, so
    # that the key of an endpoint without capture depends on no other stack's role.
    key = add_key(
        template,
        "EndpointKey",
        "Encrypts a SageMaker endpoint's storage volume and its captured data",
        resource_tags(p),
        policy=If(CAPTURE_DATA, key_policy(capture_writer), key_policy()),
        condition=CREATE_KEY,
    )
    return If(CREATE_KEY, GetAtt(key, "Arn"), Ref(p.kms_key_arn))


def add_model(template: Template, p: DeployParameters, execution_role_arn) -> Model:
    """The SageMaker model, in the private subnets, from a model package or an image."""
    container = If(
        USE_MODEL_PACKAGE,
        ContainerDefinition(ModelPackageName=Ref(p.model_package_arn)),
        # The rule ExactlyOneModelSource makes ImageUri non-empty on this branch; the inner
        # If states it as a condition too, which cfn-lint (blind to rules) can follow.
        ContainerDefinition(
            Image=If(HAS_IMAGE_URI, Ref(p.image_uri), NoValue),
            ModelDataUrl=If(HAS_MODEL_DATA_URL, Ref(p.model_data_url), NoValue),
        ),
    )
    return template.add_resource(
        Model(
            "Model",
            ExecutionRoleArn=execution_role_arn,
            PrimaryContainer=container,
            EnableNetworkIsolation=If(ISOLATE_NETWORK, True, False),
            VpcConfig=VpcConfig(Subnets=Ref(p.subnet_ids), SecurityGroupIds=[Ref(p.security_group_id)]),
            Tags=resource_tags(p),
            Metadata={
                "checkov": {
                    "skip": [
                        {
                            "id": "CKV_AWS_370",
                            "comment": "Network isolation is on by default "
                            "(EnableNetworkIsolation=true); the parameter lets a "
                            "container that must call AWS APIs at run time turn "
                            "it off, still in private subnets without internet",
                        }
                    ]
                }
            },
        )
    )


def add_data_capture_bucket(template: Template, p: DeployParameters, key_arn, execution_role_arn):
    """The encrypted bucket captured requests land in (only with data capture on)."""

    def capture_writer(bucket):
        # SageMaker writes captured data with the model's execution role.
        return [
            Statement(
                Sid="ModelExecutionRoleWritesCapturedData",
                Effect=Allow,
                Principal=Principal("AWS", [execution_role_arn]),
                Action=[s3.PutObject],
                Resource=[objects_arn(bucket, f"{DATA_CAPTURE_PREFIX}/")],
            )
        ]

    logs = add_access_logs_bucket(template, "DataCaptureAccessLogsBucket", resource_tags(p), condition=CAPTURE_DATA)
    bucket, _ = add_encrypted_bucket(
        template,
        "DataCaptureBucket",
        key_arn,
        resource_tags(p),
        extra_statements=capture_writer,
        condition=CAPTURE_DATA,
        access_logs=logs,
    )
    add_access_logs_policy(template, logs, [bucket], condition=CAPTURE_DATA)
    return bucket


def capture_uri(bucket) -> Sub:
    """Where captured data lands: ``s3://<bucket>/<prefix>``."""
    return Sub("s3://${Bucket}/" + DATA_CAPTURE_PREFIX, Bucket=Ref(bucket))


def add_endpoint(template: Template, p: DeployParameters, model: Model, key_arn, capture_bucket) -> Endpoint:
    """The endpoint config (volume key, optional data capture) and the endpoint."""
    capture = EndpointDataCaptureConfig(
        EnableCapture=True,
        InitialSamplingPercentage=Ref(p.sampling_percentage),
        DestinationS3Uri=capture_uri(capture_bucket),
        KmsKeyId=key_arn,
        CaptureOptions=[CaptureOption(CaptureMode="Input"), CaptureOption(CaptureMode="Output")],
    )
    config = template.add_resource(
        EndpointConfig(
            "EndpointConfig",
            KmsKeyId=key_arn,
            ProductionVariants=[
                ProductionVariant(
                    VariantName=VARIANT_NAME,
                    ModelName=GetAtt(model, "ModelName"),
                    InstanceType=Ref(p.instance_type),
                    InitialInstanceCount=Ref(p.instance_count),
                    InitialVariantWeight=double(1.0),
                )
            ],
            DataCaptureConfig=If(CAPTURE_DATA, capture, NoValue),
            Tags=resource_tags(p),
        )
    )
    name = If(
        HAS_ENDPOINT_NAME,
        Ref(p.endpoint_name),
        If(HAS_PROJECT, Sub("${SageMakerProjectName}-${EnvType}"), Sub("${EnvName}-${EnvType}-endpoint")),
    )
    return template.add_resource(
        Endpoint(
            "Endpoint",
            EndpointName=name,
            EndpointConfigName=GetAtt(config, "EndpointConfigName"),
            Tags=resource_tags(p),
        )
    )


def add_autoscaling(template: Template, p: DeployParameters, endpoint: Endpoint) -> ScalingPolicy:
    """Target tracking on invocations per instance, within the bounds given (Condition-gated).

    No RoleARN: Application Auto Scaling uses its SageMaker service-linked role. Changing
    the instance type of an autoscaled variant fails in SageMaker; disable autoscaling for
    that one update (AutoScaling=disabled), then enable it again.
    """
    target = template.add_resource(
        ScalableTarget(
            "EndpointScalableTarget",
            Condition=SCALE_AUTOMATICALLY,
            ServiceNamespace="sagemaker",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            ResourceId=Join("/", ["endpoint", GetAtt(endpoint, "EndpointName"), "variant", VARIANT_NAME]),
            MinCapacity=Ref(p.min_instances),
            MaxCapacity=Ref(p.max_instances),
            Tags=resource_tags(p),
        )
    )
    return template.add_resource(
        ScalingPolicy(
            "EndpointInvocationsScalingPolicy",
            Condition=SCALE_AUTOMATICALLY,
            PolicyName=Sub("${EndpointName}-invocations-per-instance", EndpointName=GetAtt(endpoint, "EndpointName")),
            PolicyType="TargetTrackingScaling",
            ScalingTargetId=Ref(target),
            TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
                TargetValue=Ref(p.target_invocations),
                PredefinedMetricSpecification=PredefinedMetricSpecification(
                    PredefinedMetricType="SageMakerVariantInvocationsPerInstance"
                ),
                ScaleOutCooldown=SCALE_OUT_COOLDOWN,
                ScaleInCooldown=SCALE_IN_COOLDOWN,
            ),
        )
    )


def add_alarms(template: Template, p: DeployParameters, endpoint: Endpoint) -> list[Alarm]:
    """Alarms on the variant's 5xx errors and model latency.

    Named ``<EnvName>-<endpoint>-...``: the target-account deployment role may manage
    alarms under the ``<EnvName>-`` prefix only.
    """
    endpoint_name = GetAtt(endpoint, "EndpointName")
    dimensions = [
        MetricDimension(Name="EndpointName", Value=endpoint_name),
        MetricDimension(Name="VariantName", Value=VARIANT_NAME),
    ]
    actions = If(HAS_ALARM_TOPIC, [Ref(p.alarm_topic_arn)], NoValue)
    specs = (
        (
            "Invocation5XXErrorsAlarm",
            "invocation-5xx-errors",
            "Invocation5XXErrors",
            "Sum",
            p.errors_threshold,
            "GreaterThanOrEqualToThreshold",
            "The endpoint's model returned 5xx errors",
        ),
        (
            "ModelLatencyAlarm",
            "model-latency",
            "ModelLatency",
            "Average",
            p.latency_threshold,
            "GreaterThanThreshold",
            "The endpoint's model latency is above the threshold",
        ),
    )
    alarms = []
    for title, suffix, metric, statistic, threshold, operator, description in specs:
        alarms.append(
            template.add_resource(
                Alarm(
                    title,
                    AlarmName=Sub("${EnvName}-${Endpoint}-" + suffix, Endpoint=endpoint_name),
                    AlarmDescription=description,
                    Namespace="AWS/SageMaker",
                    MetricName=metric,
                    Dimensions=dimensions,
                    Statistic=statistic,
                    Period=60,
                    EvaluationPeriods=5,
                    DatapointsToAlarm=3,
                    Threshold=Ref(threshold),
                    ComparisonOperator=operator,
                    TreatMissingData="notBreaching",
                    AlarmActions=actions,
                    OKActions=actions,
                    Tags=resource_tags(p),
                )
            )
        )
    return alarms


def add_interface(template: Template, p: DeployParameters) -> None:
    """Parameter groups for the console and Service Catalog."""
    groups = (
        ("Environment", (p.env.name, p.env.type, p.project_name, p.project_id)),
        ("Model", (p.model_package_arn, p.image_uri, p.model_data_url, p.execution_role_arn, p.network_isolation)),
        (
            "Endpoint",
            (p.endpoint_name, p.instance_type, p.instance_count, p.kms_key_arn, p.subnet_ids, p.security_group_id),
        ),
        ("Data capture", (p.data_capture, p.sampling_percentage)),
        ("Autoscaling", (p.autoscaling, p.min_instances, p.max_instances, p.target_invocations)),
        ("Alarms", (p.errors_threshold, p.latency_threshold, p.alarm_topic_arn)),
    )
    template.set_metadata(
        {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {"Label": {"default": label}, "Parameters": [param.title for param in params]}
                    for label, params in groups
                ]
            }
        }
    )


def build_model_deploy_template() -> Template:
    """A private, encrypted, monitored SageMaker endpoint in a staging or production account."""
    template = Template(
        Description="Model deploy: a SageMaker model from the development account's registry, served from a private, "
        "KMS-encrypted endpoint with alarms, optional data capture and autoscaling"
    )
    p = add_deploy_parameters(template)
    add_conditions(template, p)
    add_interface(template, p)

    execution_role_arn = If(
        DERIVE_EXECUTION_ROLE, iam_role_arn("${AWS::AccountId}", MODEL_EXECUTION_ROLE_NAME), Ref(p.execution_role_arn)
    )
    key_arn = add_endpoint_key(template, p, execution_role_arn)
    model = add_model(template, p, execution_role_arn)
    capture_bucket = add_data_capture_bucket(template, p, key_arn, execution_role_arn)
    endpoint = add_endpoint(template, p, model, key_arn, capture_bucket)
    add_autoscaling(template, p, endpoint)
    add_alarms(template, p, endpoint)

    template.add_output(
        Output("EndpointName", Value=GetAtt(endpoint, "EndpointName"), Description="Name of the endpoint")
    )
    template.add_output(
        Output("EndpointArn", Value=Ref(endpoint), Description="ARN of the endpoint (for the endpoint-invoke role)")
    )
    template.add_output(Output("ModelName", Value=GetAtt(model, "ModelName")))
    template.add_output(
        Output("EndpointKeyArn", Value=key_arn, Description="KMS key of the endpoint's volume and captured data")
    )
    template.add_output(Output("DataCaptureS3Uri", Condition=CAPTURE_DATA, Value=capture_uri(capture_bucket)))
    return template
