"""The model-deploy template: properties of the rendered dict, its conditions and rules
evaluated for concrete parameter sets, and a deployment on the local emulator."""

from __future__ import annotations

import itertools
import json

import boto3
import pytest
from moto import mock_aws
from troposphere import AWSObject

from generator import model_deploy
from generator.render import render_yaml
from tests.template_props import as_list, resources, statements, template_fixtures

REGION = "us-east-1"
MODEL_PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:111111111111:model-package/churn/3"
IMAGE_URI = "111111111111.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
MODEL_DATA_URL = "s3://models-bucket/churn/model.tar.gz"


template, rendered = template_fixtures(model_deploy.build_model_deploy_template)


# --- A small evaluator of conditions and rules, for concrete parameter values ------------


def defaults(rendered: dict) -> dict:
    return {name: str(p.get("Default", "")) for name, p in rendered["Parameters"].items()}


def evaluate(expr, values: dict, conditions: dict):
    """Evaluate a condition/rule expression (Fn::Equals/Not/And/Or, Condition, Ref)."""
    if isinstance(expr, dict):
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return values[arg]
        if fn == "Condition":
            return evaluate(conditions[arg], values, conditions)
        if fn == "Fn::Equals":
            left, right = (evaluate(a, values, conditions) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not evaluate(arg[0], values, conditions)
        if fn == "Fn::And":
            return all(evaluate(a, values, conditions) for a in arg)
        if fn == "Fn::Or":
            return any(evaluate(a, values, conditions) for a in arg)
        raise AssertionError(f"unexpected function {fn}")
    return expr


def condition(rendered: dict, name: str, **overrides) -> bool:
    values = {**defaults(rendered), **overrides}
    return evaluate({"Condition": name}, values, rendered["Conditions"])


def failed_rules(rendered: dict, **overrides) -> list[str]:
    """Descriptions of the rule assertions that fail for these parameter values."""
    values = {**defaults(rendered), **overrides}
    failed = []
    for rule in rendered["Rules"].values():
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], values, rendered["Conditions"]):
                failed.append(assertion["AssertDescription"])
    return failed


def branches(value):
    """Every concrete value an ``Fn::If`` tree can take (both branches, recursively)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    return [value]


def getatt(logical_id: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [logical_id, attribute]}


def the_one(rendered: dict, type_: str) -> tuple[str, dict]:
    found = resources(rendered, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def kms_bucket(rendered: dict) -> tuple[str, dict]:
    """The one bucket encrypted with a KMS key (the others are access-log destinations)."""
    found = {
        lid: b
        for lid, b in resources(rendered, "AWS::S3::Bucket").items()
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    }
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))


def assert_buckets_private_retained_tls_only_and_logged(rendered: dict) -> None:
    """Every bucket: versioned, public access blocked, retained, TLS-only policy. Every KMS
    bucket logs to an SSE-S3 log bucket whose policy admits log delivery from it alone."""
    buckets = resources(rendered, "AWS::S3::Bucket")
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in resources(rendered, "AWS::S3::BucketPolicy").values()}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert (
            set(props["PublicAccessBlockConfiguration"].values()) == {True}
            and len(props["PublicAccessBlockConfiguration"]) == 4
        )
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain", logical_id
        assert bucket.get("Condition") == policies[logical_id].get("Condition"), logical_id
        policy_statements = policies[logical_id]["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in policy_statements
        ), f"{logical_id}: no TLS-only deny"
        algorithm = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        if algorithm == "AES256":
            continue  # a log destination: S3 delivers access logs to SSE-S3 buckets only
        assert algorithm == "aws:kms", logical_id
        destination = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
        log_bucket = buckets[destination]
        assert log_bucket.get("Condition") == bucket.get("Condition")
        assert "LoggingConfiguration" not in log_bucket["Properties"]
        (delivery,) = [
            s for s in policies[destination]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
        ]
        assert delivery["Principal"] == {"Service": ["logging.s3.amazonaws.com"]} and delivery["Action"] == [
            "s3:PutObject"
        ]
        assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == [getatt(logical_id, "Arn")]
        assert delivery["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# --- Model ------------------------------------------------------------------------------


def test_every_model_runs_in_the_network_stacks_private_subnets(rendered):
    params = rendered["Parameters"]
    assert params["SubnetIds"]["Type"] == "AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>"
    assert params["WorkloadSecurityGroupId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::SecurityGroup::Id>"
    assert params["SubnetIds"]["Default"] == "/mlops/staging/" + model_deploy.SUBNET_IDS_SSM_SUFFIX
    assert params["WorkloadSecurityGroupId"]["Default"] == "/mlops/staging/" + model_deploy.SECURITY_GROUP_SSM_SUFFIX
    models = resources(rendered, "AWS::SageMaker::Model")
    assert models
    for logical_id, model in models.items():
        vpc = model["Properties"]["VpcConfig"]
        assert vpc == {"Subnets": {"Ref": "SubnetIds"}, "SecurityGroupIds": [{"Ref": "WorkloadSecurityGroupId"}]}, (
            logical_id
        )


def test_network_isolation_follows_its_parameter_and_defaults_on(rendered):
    _, model = the_one(rendered, "AWS::SageMaker::Model")
    isolation = model["Properties"]["EnableNetworkIsolation"]
    name, when_true, when_false = isolation["Fn::If"]
    assert (when_true, when_false) == (True, False)
    assert condition(rendered, name) is True
    assert condition(rendered, name, EnableNetworkIsolation="false") is False


def test_model_source_is_the_package_or_the_image_never_both(rendered):
    _, model = the_one(rendered, "AWS::SageMaker::Model")
    name, package_container, image_container = model["Properties"]["PrimaryContainer"]["Fn::If"]
    assert package_container == {"ModelPackageName": {"Ref": "ModelPackageArn"}}
    assert "ModelPackageName" not in image_container
    assert condition(rendered, name, ModelPackageArn=MODEL_PACKAGE_ARN) is True
    assert condition(rendered, name, ImageUri=IMAGE_URI) is False


@pytest.mark.parametrize(
    "values, ok",
    [
        ({"ModelPackageArn": MODEL_PACKAGE_ARN}, True),
        ({"ImageUri": IMAGE_URI}, True),
        ({"ImageUri": IMAGE_URI, "ModelDataUrl": MODEL_DATA_URL}, True),
        ({}, False),
        ({"ModelPackageArn": MODEL_PACKAGE_ARN, "ImageUri": IMAGE_URI}, False),
        ({"ModelPackageArn": MODEL_PACKAGE_ARN, "ModelDataUrl": MODEL_DATA_URL}, False),
        ({"ModelPackageArn": MODEL_PACKAGE_ARN, "SageMakerProjectName": "churn"}, False),
        ({"ModelPackageArn": MODEL_PACKAGE_ARN, "SageMakerProjectName": "churn", "SageMakerProjectId": "p-1"}, True),
    ],
)
def test_rules_reject_contradictory_model_sources_and_half_projects(rendered, values, ok):
    assert (failed_rules(rendered, **values) == []) is ok


def test_execution_role_defaults_to_the_target_account_roles_stacks_role(rendered):
    _, model = the_one(rendered, "AWS::SageMaker::Model")
    name, derived, given = model["Properties"]["ExecutionRoleArn"]["Fn::If"]
    assert condition(rendered, name) is True
    assert given == {"Ref": "ModelExecutionRoleArn"}
    assert derived == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + model_deploy.MODEL_EXECUTION_ROLE_NAME
    }


def test_model_and_endpoint_config_have_no_physical_names(rendered):
    """CloudFormation cannot replace a custom-named resource: a new model version would collide."""
    for type_, name_property in (
        ("AWS::SageMaker::Model", "ModelName"),
        ("AWS::SageMaker::EndpointConfig", "EndpointConfigName"),
    ):
        for logical_id, resource in resources(rendered, type_).items():
            assert name_property not in resource["Properties"], logical_id


# --- Endpoint config and endpoint -------------------------------------------------------


def test_every_endpoint_config_encrypts_its_volume_with_the_given_or_created_key(rendered):
    key_id, _ = the_one(rendered, "AWS::KMS::Key")
    configs = resources(rendered, "AWS::SageMaker::EndpointConfig")
    assert configs
    for logical_id, config in configs.items():
        kms = config["Properties"]["KmsKeyId"]
        assert sorted(map(json.dumps, branches(kms))) == sorted(
            map(json.dumps, [getatt(key_id, "Arn"), {"Ref": "KmsKeyArn"}])
        ), logical_id
        name = kms["Fn::If"][0]
        assert condition(rendered, name) is True
        assert (
            condition(
                rendered,
                name,
                KmsKeyArn="arn:aws:kms:us-east-1:111111111111:key/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            )
            is False
        )


def test_the_key_is_rotated_and_retained(rendered):
    for logical_id, key in resources(rendered, "AWS::KMS::Key").items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id
        assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain", logical_id


def test_endpoint_serves_the_config_which_serves_the_model(rendered):
    model_id, _ = the_one(rendered, "AWS::SageMaker::Model")
    config_id, config = the_one(rendered, "AWS::SageMaker::EndpointConfig")
    _, endpoint = the_one(rendered, "AWS::SageMaker::Endpoint")
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ModelName"] == getatt(model_id, "ModelName")
    assert variant["VariantName"] == model_deploy.VARIANT_NAME
    assert variant["InstanceType"] == {"Ref": "InstanceType"}
    assert variant["InitialInstanceCount"] == {"Ref": "InitialInstanceCount"}
    assert endpoint["Properties"]["EndpointConfigName"] == getatt(config_id, "EndpointConfigName")


def test_data_capture_is_optional_encrypted_and_lands_in_the_capture_bucket(rendered):
    _, config = the_one(rendered, "AWS::SageMaker::EndpointConfig")
    name, capture, absent = config["Properties"]["DataCaptureConfig"]["Fn::If"]
    assert absent == {"Ref": "AWS::NoValue"}
    assert condition(rendered, name) is False
    assert condition(rendered, name, EnableDataCapture="true") is True
    assert capture["KmsKeyId"] == config["Properties"]["KmsKeyId"]
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    bucket_id, bucket = kms_bucket(rendered)
    assert bucket["Condition"] == name
    assert capture["DestinationS3Uri"]["Fn::Sub"][1]["Bucket"] == {"Ref": bucket_id}
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == config["Properties"]["KmsKeyId"]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["DeletionPolicy"] == "Retain"


def test_buckets_are_private_retained_tls_only_and_access_logged(rendered):
    assert_buckets_private_retained_tls_only_and_logged(rendered)
    assert len(resources(rendered, "AWS::S3::Bucket")) == 2


# --- Autoscaling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_type, switch, expected",
    [
        ("staging", "default", False),
        ("prod", "default", True),
        ("staging", "enabled", True),
        ("prod", "enabled", True),
        ("staging", "disabled", False),
        ("prod", "disabled", False),
    ],
)
def test_autoscaling_is_off_in_staging_on_in_prod_unless_told(rendered, env_type, switch, expected):
    for logical_id in ("EndpointScalableTarget", "EndpointInvocationsScalingPolicy"):
        name = rendered["Resources"][logical_id]["Condition"]
        assert condition(rendered, name, EnvType=env_type, AutoScaling=switch) is expected, logical_id


def test_scalable_target_is_the_endpoints_variant_within_bounds(rendered):
    endpoint_id, _ = the_one(rendered, "AWS::SageMaker::Endpoint")
    target_id, target = the_one(rendered, "AWS::ApplicationAutoScaling::ScalableTarget")
    props = target["Properties"]
    assert props["ServiceNamespace"] == "sagemaker"
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert props["ResourceId"] == {
        "Fn::Join": ["/", ["endpoint", getatt(endpoint_id, "EndpointName"), "variant", model_deploy.VARIANT_NAME]]
    }
    assert (props["MinCapacity"], props["MaxCapacity"]) == ({"Ref": "MinInstanceCount"}, {"Ref": "MaxInstanceCount"})
    assert "RoleARN" not in props, "the service-linked role, not a role of ours"
    _, policy = the_one(rendered, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["Condition"] == target["Condition"]
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == {"Ref": "TargetInvocationsPerInstance"}


# --- Alarms -----------------------------------------------------------------------------


def test_alarms_watch_5xx_errors_and_latency_of_this_endpoints_variant(rendered):
    endpoint_id, _ = the_one(rendered, "AWS::SageMaker::Endpoint")
    alarms = resources(rendered, "AWS::CloudWatch::Alarm")
    assert {a["Properties"]["MetricName"] for a in alarms.values()} == {"Invocation5XXErrors", "ModelLatency"}
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["Namespace"] == "AWS/SageMaker", logical_id
        dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        assert dimensions == {
            "EndpointName": getatt(endpoint_id, "EndpointName"),
            "VariantName": model_deploy.VARIANT_NAME,
        }, logical_id
        assert isinstance(props["Threshold"], dict) and "Ref" in props["Threshold"], "threshold by parameter"
        # The deployment role may manage alarms named <EnvName>-* only.
        assert props["AlarmName"]["Fn::Sub"][0].startswith("${EnvName}-"), logical_id
        assert branches(props["AlarmActions"]) == [[{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]


# --- Tags and policies ------------------------------------------------------------------


def _taggable_logical_ids(template) -> list[str]:
    return [r.title for r in template.resources.values() if isinstance(r, AWSObject) and "Tags" in r.props]


def test_every_taggable_resource_carries_stage_environment_and_project_tags(template, rendered):
    taggable = _taggable_logical_ids(template)
    assert len(taggable) >= 7
    for logical_id in taggable:
        tags = rendered["Resources"][logical_id]["Properties"].get("Tags")
        assert tags is not None, f"{logical_id} has no Tags"
        name, with_project, without_project = tags["Fn::If"]
        assert condition(rendered, name, SageMakerProjectName="churn", SageMakerProjectId="p-1") is True
        assert condition(rendered, name) is False
        for tag_list, project in ((with_project, True), (without_project, False)):
            keys = {t["Key"]: t["Value"] for t in tag_list}
            assert keys["sagemaker:deployment-stage"] == {"Ref": "EnvType"}, logical_id
            assert keys["sagemaker:environment-name"] == {"Ref": "EnvName"}, logical_id
            assert keys["sagemaker:environment-type"] == {"Ref": "EnvType"}, logical_id
            assert ("sagemaker:project-name" in keys and "sagemaker:project-id" in keys) is project, logical_id


def test_no_allow_of_wildcard_actions_in_any_policy(rendered):
    found = list(statements(rendered))
    assert found
    for logical_id, path, statement in found:
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id} {path}: {action}"


def test_key_policy_names_the_execution_role_only_with_data_capture(rendered):
    _, key = the_one(rendered, "AWS::KMS::Key")
    name, with_capture, without_capture = key["Properties"]["KeyPolicy"]["Fn::If"]
    assert condition(rendered, name, EnableDataCapture="true") is True
    sids = lambda policy: {s["Sid"] for s in policy["Statement"]}  # noqa: E731
    assert sids(with_capture) - sids(without_capture) == {"ModelExecutionRoleWritesCapturedData"}


def test_rendered_yaml_has_no_hard_coded_partition(template):
    assert "arn:aws:" not in render_yaml(template)


def test_lint_clean_through_the_generator_command(tmp_path):
    from generator.__main__ import main

    assert main(["--out", str(tmp_path), "--jobs", "1", "--region", REGION, "model-deploy"]) == 0


# --- On the local emulator --------------------------------------------------------------


@pytest.fixture
def emulator(monkeypatch):
    """moto in-process, its CloudFormation KMS handler given what its KMS backend expects.

    moto 5.2.5 passes an AWS::KMS::Key's tags as CloudFormation writes them (Key/Value),
    where its backend reads TagKey/TagValue and fails the stack; and it stores the key
    policy as a dict, where DescribeKey expects JSON text. AWS does neither.
    """
    from moto.kms import models as kms_models

    original = kms_models.Key.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, name, cloudformation_json, *args, **kwargs):
        properties = dict(cloudformation_json["Properties"])
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        return original(cls, name, {**cloudformation_json, "Properties": properties}, *args, **kwargs)

    monkeypatch.setattr(kms_models.Key, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def _network(env_name: str, env_type: str) -> tuple[list[str], str]:
    """What the target-network stack would publish: subnets and the workload SG, in SSM."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
    sg = ec2.create_security_group(GroupName=f"{env_name}-{env_type}-workload", Description="workload", VpcId=vpc)[
        "GroupId"
    ]
    prefix = f"/{env_name}/{env_type}/"
    ssm.put_parameter(Name=prefix + model_deploy.SUBNET_IDS_SSM_SUFFIX, Type="StringList", Value=",".join(subnets))
    ssm.put_parameter(Name=prefix + model_deploy.SECURITY_GROUP_SSM_SUFFIX, Type="String", Value=sg)
    return subnets, sg


def _execution_role(iam, env_name: str) -> str:
    """The ModelExecutionRole the target-account-roles stack creates (``<EnvName>-model-execution``),
    which the template names when ModelExecutionRoleArn is empty: S3 refuses a bucket policy naming
    a role that does not exist ("Invalid principal in policy")."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"{env_name}-model-execution"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _create(stack_name: str, template, **parameters) -> dict:
    _execution_role(boto3.client("iam", region_name=REGION), parameters.get("EnvName", "mlops"))
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=render_yaml(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_deploys_a_private_encrypted_endpoint_from_a_model_package(emulator, template):
    # moto resolves an SSM-typed parameter's default even when a value is passed (AWS does
    # not): publish the staging network too, and check that the prod one is used.
    staging_subnets, _ = _network("mlops", "staging")
    subnets, sg = _network("mlops", "prod")
    assert set(subnets).isdisjoint(staging_subnets)
    outputs = _create(
        "churn-prod",
        template,
        EnvType="prod",
        ModelPackageArn=MODEL_PACKAGE_ARN,
        EnableDataCapture="true",
        SubnetIds="/mlops/prod/" + model_deploy.SUBNET_IDS_SSM_SUFFIX,
        WorkloadSecurityGroupId="/mlops/prod/" + model_deploy.SECURITY_GROUP_SSM_SUFFIX,
        SageMakerProjectName="churn",
        SageMakerProjectId="p-abc123",
    )
    sm = boto3.client("sagemaker", region_name=REGION)
    endpoint = sm.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": [sg]}, "subnets and SG resolved from SSM"
    assert model["PrimaryContainer"] == {"ModelPackageName": MODEL_PACKAGE_ARN}
    assert model["ExecutionRoleArn"].endswith(":role/mlops-model-execution")
    key_arn = outputs["EndpointKeyArn"]
    assert config["KmsKeyId"] == key_arn
    assert boto3.client("kms", region_name=REGION).describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"] == "Enabled"
    capture = config["DataCaptureConfig"]
    assert capture["KmsKeyId"] == key_arn and capture["DestinationS3Uri"] == outputs["DataCaptureS3Uri"]
    bucket = outputs["DataCaptureS3Uri"].removeprefix("s3://").split("/")[0]
    encryption = boto3.client("s3", region_name=REGION).get_bucket_encryption(Bucket=bucket)
    assert (
        encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
            "KMSMasterKeyID"
        ]
        == key_arn
    )
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags["sagemaker:deployment-stage"] == "prod"
    assert tags["sagemaker:project-name"] == "churn" and tags["sagemaker:project-id"] == "p-abc123"


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_deploys_from_an_image_with_a_given_key_and_no_capture(emulator, template):
    _network("mlops", "staging")
    key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    outputs = _create("churn-staging", template, ImageUri=IMAGE_URI, ModelDataUrl=MODEL_DATA_URL, KmsKeyArn=key_arn)
    assert "DataCaptureS3Uri" not in outputs
    assert outputs["EndpointKeyArn"] == key_arn
    sm = boto3.client("sagemaker", region_name=REGION)
    (endpoint,) = sm.list_endpoints()["Endpoints"]
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint["EndpointName"])["EndpointConfigName"]
    )
    assert config["KmsKeyId"] == key_arn
    assert not config.get("DataCaptureConfig")
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"] == {"Image": IMAGE_URI, "ModelDataUrl": MODEL_DATA_URL}
    assert len(boto3.client("kms", region_name=REGION).list_keys()["Keys"]) == 1, "no key created when one is given"
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == [], "no capture bucket without capture"
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags["sagemaker:deployment-stage"] == "staging" and "sagemaker:project-name" not in tags


def test_parameter_defaults_pass_their_own_patterns(rendered):
    import re

    for name, parameter in rendered["Parameters"].items():
        if "AllowedPattern" in parameter and "Default" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], str(parameter["Default"])), name


def test_condition_names_all_resolve(rendered):
    used = set()

    def walk(value):
        if isinstance(value, dict):
            if "Fn::If" in value:
                used.add(value["Fn::If"][0])
            if "Condition" in value and isinstance(value["Condition"], str):
                used.add(value["Condition"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(rendered["Resources"])
    walk(rendered["Outputs"])
    assert used <= set(rendered["Conditions"])
    # Every combination of the switches evaluates without error.
    for env_type, capture, scaling in itertools.product(
        ("staging", "prod"), ("true", "false"), ("default", "enabled", "disabled")
    ):
        for name in rendered["Conditions"]:
            condition(rendered, name, EnvType=env_type, EnableDataCapture=capture, AutoScaling=scaling)


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_deploys_in_a_staging_account_of_the_local_aws_server(local_aws):
    """The same template, in a member account of the seeded Organization, on the local AWS
    server the demo uses (its own moto patches, no test-local workaround)."""
    account = local_aws.accounts_in("staging")[0]
    ec2, ssm, cfn, sm = (local_aws.client(s, account) for s in ("ec2", "ssm", "cloudformation", "sagemaker"))
    env_name = "mdtest"
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
    sg = ec2.create_security_group(GroupName=f"{env_name}-workload", Description="workload", VpcId=vpc)["GroupId"]
    prefix = f"/{env_name}/staging/"
    ssm.put_parameter(
        Name=prefix + model_deploy.SUBNET_IDS_SSM_SUFFIX, Type="StringList", Value=",".join(subnets), Overwrite=True
    )
    ssm.put_parameter(Name=prefix + model_deploy.SECURITY_GROUP_SSM_SUFFIX, Type="String", Value=sg, Overwrite=True)
    # moto also resolves the defaults (the mlops names) of SSM-typed parameters: publish them too.
    ssm.put_parameter(
        Name="/mlops/staging/" + model_deploy.SUBNET_IDS_SSM_SUFFIX,
        Type="StringList",
        Value=",".join(subnets),
        Overwrite=True,
    )
    ssm.put_parameter(
        Name="/mlops/staging/" + model_deploy.SECURITY_GROUP_SSM_SUFFIX, Type="String", Value=sg, Overwrite=True
    )
    _execution_role(local_aws.client("iam", account), env_name)
    stack_name = "model-deploy-local-test"
    parameters = {
        "EnvName": env_name,
        "ModelPackageArn": MODEL_PACKAGE_ARN,
        "EnableDataCapture": "true",
        "EndpointName": "model-deploy-local-test",
        "SubnetIds": prefix + model_deploy.SUBNET_IDS_SSM_SUFFIX,
        "WorkloadSecurityGroupId": prefix + model_deploy.SECURITY_GROUP_SSM_SUFFIX,
    }
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=render_yaml(model_deploy.build_model_deploy_template()),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    }
    endpoint = sm.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["KmsKeyId"] == outputs["EndpointKeyArn"]
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": [sg]}
    assert model["ExecutionRoleArn"] == f"arn:aws:iam::{account}:role/{env_name}-model-execution"
