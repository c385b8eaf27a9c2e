"""The custom security rules in generator/rules: each fails on a broken fragment, passes on a
correct one, and finds nothing in any generated template.

Rules are loaded the way cfn-lint's ``--append-rules generator.rules`` loads them (the
package, imported as a module), so these tests hold whether or not the generator's own lint
gate has the rules switched on.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import lint
from cfnlint.rules import RulesCollection

from generator import policy_analysis, policy_lint

ROOT = Path(__file__).resolve().parents[1]
RULES_MODULE = "generator.rules"
TEMPLATES = sorted((ROOT / "templates").glob("*.yaml"))
EXPECTED_IDS = {
    "E9101",
    "E9102",
    "E9103",
    "E9104",
    "E9105",
    "E9201",
    "E9202",
    "E9301",
    "E9302",
    "E9303",
    "E9304",
    "E9305",
    "E9401",
    "E9402",
    "E9403",
    "E9501",
    "E9901",
}


# Where a bucket fragment keeps its default encryption.
SSE_DEFAULT = (
    "Properties",
    "BucketEncryption",
    "ServerSideEncryptionConfiguration",
    0,
    "ServerSideEncryptionByDefault",
)


@pytest.fixture(scope="module")
def rules() -> RulesCollection:
    collection = RulesCollection(include_rules=["E9", "W9"])
    collection.create_from_module(RULES_MODULE)
    return collection


def findings(
    rules, resources: dict, parameters: dict | None = None, conditions: dict | None = None
) -> list[tuple[str, str]]:
    """(rule id, message) of every custom-rule finding on a template of ``resources``."""
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    if parameters:
        template["Parameters"] = parameters
    if conditions:
        template["Conditions"] = conditions
    return [(m.rule.id, m.message) for m in lint(json.dumps(template), rules=rules, regions=["us-east-1"])]


def ids(rules, resources, **kwargs) -> set[str]:
    return {rule_id for rule_id, _ in findings(rules, resources, **kwargs)}


# --- shared pieces of good fragments ----------------------------------------------------------

ROOT_ARN = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
VPC_CONFIG = {"SecurityGroupIds": [{"Ref": "Sg"}], "Subnets": [{"Ref": "SubnetA"}, {"Ref": "SubnetB"}]}


def key(**overrides) -> dict:
    properties = {
        "EnableKeyRotation": True,
        "KeyPolicy": {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT_ARN}, "Action": "kms:*", "Resource": "*"},
                {
                    "Sid": "Use",
                    "Effect": "Allow",
                    "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                },
            ],
        },
    }
    properties.update(overrides)
    return {"Type": "AWS::KMS::Key", "Properties": properties}


def bucket(**overrides) -> dict:
    properties = {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {
                    "ServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]},
                    }
                }
            ]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    properties.update(overrides)
    return {"Type": "AWS::S3::Bucket", "Properties": properties}


DENY_TLS = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [{"Fn::GetAtt": ["Bucket", "Arn"]}, {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]}],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
DENY_OUTSIDE_VPCE = {
    "Sid": "DenyOutsideVpcEndpoint",
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
    "Resource": {"Fn::Sub": "${Bucket.Arn}/*"},
    "Condition": {"StringNotEquals": {"aws:SourceVpce": {"Ref": "S3Endpoint"}}},
}


def bucket_policy(*statements) -> dict:
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "Bucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
        },
    }


def storage(bucket_resource=None, *statements) -> dict:
    return {
        "Key": key(),
        "Bucket": bucket_resource or bucket(),
        "BucketPolicy": bucket_policy(*(statements or (DENY_TLS,))),
    }


S3_ENDPOINT = {
    "Type": "AWS::EC2::VPCEndpoint",
    "Properties": {
        "VpcId": {"Ref": "Vpc"},
        "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"},
        "VpcEndpointType": "Gateway",
    },
}


def role(trust_statement=None, *policy_statements) -> dict:
    trust = trust_statement or {
        "Effect": "Allow",
        "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    properties = {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}}
    if policy_statements:
        properties["Policies"] = [
            {"PolicyName": "Inline", "PolicyDocument": {"Version": "2012-10-17", "Statement": list(policy_statements)}}
        ]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def allow(actions, resources, **extra) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def mutate(resource: dict, path: tuple, value) -> dict:
    """A deep copy of ``resource`` with the value at ``path`` replaced (or removed when ``value`` is ...)."""
    out = copy.deepcopy(resource)
    node = out
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


# --- loading --------------------------------------------------------------------------------


def test_every_rule_loads_with_its_own_id_and_description(rules):
    loaded = {rule.id: rule for rule in rules.rules.values() if rule.id[:2] in ("E9", "W9")}
    assert set(loaded) == EXPECTED_IDS
    for rule in loaded.values():
        assert rule.shortdesc and len(rule.description) > 40 and rule.source_url.startswith("https://"), rule.id


def test_cfn_lint_command_line_appends_the_rules(tmp_path):
    """What a user runs: ``cfn-lint --append-rules generator.rules`` reports a custom rule's id."""
    template = tmp_path / "key.json"
    template.write_text(
        json.dumps(
            {
                "Resources": {
                    "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": key()["Properties"]["KeyPolicy"]}}
                }
            }
        )
    )
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--append-rules", RULES_MODULE, "--format", "parseable", "--", str(template)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert "E9201" in result.stdout, result.stdout + result.stderr
    assert result.returncode != 0


# --- S3 ---------------------------------------------------------------------------------------


def test_good_storage_passes(rules):
    assert findings(rules, storage()) == []


@pytest.mark.parametrize(
    "broken, rule",
    [
        (mutate(bucket(), ("Properties", "BucketEncryption"), ...), "E9101"),
        (mutate(bucket(), SSE_DEFAULT, {"SSEAlgorithm": "AES256"}), "E9101"),
        (mutate(bucket(), SSE_DEFAULT, {"SSEAlgorithm": "aws:kms"}), "E9101"),
        (mutate(bucket(), (*SSE_DEFAULT, "KMSMasterKeyID"), "alias/aws/s3"), "E9101"),
        (mutate(bucket(), ("Properties", "PublicAccessBlockConfiguration"), ...), "E9102"),
        (mutate(bucket(), ("Properties", "PublicAccessBlockConfiguration", "RestrictPublicBuckets"), False), "E9102"),
        (mutate(bucket(), ("Properties", "VersioningConfiguration"), ...), "E9103"),
        (mutate(bucket(), ("Properties", "VersioningConfiguration", "Status"), "Suspended"), "E9103"),
    ],
    ids=[
        "no-encryption",
        "sse-s3",
        "aws-managed-default-key",
        "aws-managed-alias",
        "no-public-access-block",
        "one-public-access-setting-false",
        "no-versioning",
        "versioning-suspended",
    ],
)
def test_broken_bucket_fails(rules, broken, rule):
    assert ids(rules, storage(broken)) == {rule}


def test_server_access_log_destination_may_use_sse_s3(rules):
    """S3 delivers server access logs only to SSE-S3 buckets: the one legitimate AES256 bucket."""
    logs = bucket(
        BucketEncryption={
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        }
    )
    data = bucket(LoggingConfiguration={"DestinationBucketName": {"Ref": "Bucket"}, "LogFilePrefix": "data/"})
    resources = {**storage(logs), "DataBucket": data}
    assert "E9101" not in ids(rules, resources)
    assert "E9101" in ids(rules, storage(logs))  # the same bucket receiving no logs must use KMS
    delivery = {
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": {"Fn::Sub": "${Bucket.Arn}/*"},
    }
    assert "E9101" not in ids(rules, storage(logs, DENY_TLS, delivery))


def test_bucket_setting_that_one_condition_turns_off_fails(rules):
    conditional = mutate(
        bucket(),
        ("Properties", "VersioningConfiguration"),
        {"Fn::If": ["Cheap", {"Ref": "AWS::NoValue"}, {"Status": "Enabled"}]},
    )
    conditions = {"Cheap": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}}
    assert ids(rules, storage(conditional), conditions=conditions) == {"E9103"}


@pytest.mark.parametrize(
    "statement",
    [
        None,
        mutate(DENY_TLS, ("Effect",), "Allow"),
        mutate(DENY_TLS, ("Condition",), {"Bool": {"aws:SecureTransport": "true"}}),
        mutate(DENY_TLS, ("Action",), "s3:GetObject"),
        mutate(DENY_TLS, ("Resource",), {"Fn::GetAtt": ["Bucket", "Arn"]}),
        mutate(DENY_TLS, ("Principal",), {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}),
        mutate(
            DENY_TLS,
            ("Condition",),
            {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:PrincipalAccount": "111122223333"}},
        ),
    ],
    ids=[
        "no-policy",
        "allow-not-deny",
        "wrong-value",
        "one-action-only",
        "bucket-but-not-objects",
        "one-principal-only",
        "narrowed-by-another-condition",
    ],
)
def test_bucket_without_tls_deny_fails(rules, statement):
    resources = {"Key": key(), "Bucket": bucket()}
    if statement is not None:
        resources["BucketPolicy"] = bucket_policy(statement)
    assert ids(rules, resources) == {"E9104"}


def test_tls_deny_spelled_with_a_physical_bucket_name_passes(rules):
    named = bucket(BucketName={"Fn::Sub": "${AWS::AccountId}-models"})
    statement = mutate(
        DENY_TLS,
        ("Resource",),
        [
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::AccountId}-models"},
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::AccountId}-models/*"},
        ],
    )
    assert findings(rules, storage(named, statement)) == []


def test_environment_bucket_denying_outside_vpc_endpoint_passes(rules):
    resources = {**storage(None, DENY_TLS, DENY_OUTSIDE_VPCE), "S3Endpoint": S3_ENDPOINT}
    assert findings(rules, resources) == []


def test_environment_bucket_may_exempt_named_principals(rules):
    exempting = mutate(
        DENY_OUTSIDE_VPCE,
        ("Condition", "ArnNotLike"),
        {"aws:PrincipalArn": [{"Fn::Sub": "arn:${AWS::Partition}:iam::${Target}:role/reader"}]},
    )
    resources = {**storage(None, DENY_TLS, exempting), "S3Endpoint": S3_ENDPOINT}
    assert findings(rules, resources) == []


@pytest.mark.parametrize(
    "statements",
    [
        (DENY_TLS,),
        (DENY_TLS, mutate(DENY_OUTSIDE_VPCE, ("Action",), "s3:PutObject")),
        (DENY_TLS, mutate(DENY_OUTSIDE_VPCE, ("Condition",), {"StringNotEquals": {"aws:SourceVpce": "*"}})),
        (DENY_TLS, mutate(DENY_OUTSIDE_VPCE, ("Condition", "ArnNotLike"), {"aws:PrincipalArn": "*"})),
        (
            DENY_TLS,
            mutate(DENY_OUTSIDE_VPCE, ("Condition",), {"StringEquals": {"aws:SourceVpce": {"Ref": "S3Endpoint"}}}),
        ),
    ],
    ids=["no-vpce-deny", "writes-only", "any-endpoint", "exempts-everyone", "inverted-operator"],
)
def test_environment_bucket_without_vpc_endpoint_deny_fails(rules, statements):
    resources = {**storage(None, *statements), "S3Endpoint": S3_ENDPOINT}
    assert ids(rules, resources) == {"E9105"}


def test_bucket_outside_an_environment_template_needs_no_vpc_endpoint_deny(rules):
    assert "E9105" not in ids(rules, storage())


# --- KMS --------------------------------------------------------------------------------------


def test_good_key_passes(rules):
    assert findings(rules, {"Key": key()}) == []


def test_asymmetric_key_needs_no_rotation(rules):
    assert findings(rules, {"Key": key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", EnableKeyRotation=False)}) == []


@pytest.mark.parametrize("rotation", [..., False, "false"], ids=["absent", "false", "string-false"])
def test_key_without_rotation_fails(rules, rotation):
    assert ids(rules, {"Key": mutate(key(), ("Properties", "EnableKeyRotation"), rotation)}) == {"E9201"}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${OtherAccount}:root"}},
            "Action": "kms:*",
            "Resource": "*",
        },
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "NotAction": "kms:ScheduleKeyDeletion",
            "Resource": "*",
        },
    ],
    ids=["role", "other-account-root", "everyone-star", "service-notaction"],
)
def test_key_policy_full_control_for_non_root_fails(rules, statement):
    broken = copy.deepcopy(key())
    broken["Properties"]["KeyPolicy"]["Statement"].append(statement)
    assert ids(rules, {"Key": broken}) == {"E9202"}


# --- SageMaker --------------------------------------------------------------------------------

MODEL = {
    "Type": "AWS::SageMaker::Model",
    "Properties": {
        "ExecutionRoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "PrimaryContainer": {"Image": "image"},
        "VpcConfig": VPC_CONFIG,
    },
}
PROCESSING_JOB = {
    "Type": "AWS::SageMaker::ProcessingJob",
    "Properties": {
        "AppSpecification": {"ImageUri": "image"},
        "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "NetworkConfig": {"VpcConfig": VPC_CONFIG},
    },
}
MONITORING_JOB = {
    "Type": "AWS::SageMaker::DataQualityJobDefinition",
    "Properties": {
        "DataQualityAppSpecification": {"ImageUri": "image"},
        "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "DataQualityJobInput": {},
        "DataQualityJobOutputConfig": {"MonitoringOutputs": []},
        "JobResources": {},
        "NetworkConfig": {"VpcConfig": VPC_CONFIG},
    },
}
SCHEDULE = {
    "Type": "AWS::SageMaker::MonitoringSchedule",
    "Properties": {
        "MonitoringScheduleName": "schedule",
        "MonitoringScheduleConfig": {
            "MonitoringJobDefinition": {"NetworkConfig": {"VpcConfig": VPC_CONFIG}, "RoleArn": "role"}
        },
    },
}
TRAINING_STEP = {
    "Name": "Train",
    "Type": "Training",
    "Arguments": {"VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}},
}


def pipeline(*steps) -> dict:
    body = {"Version": "2020-12-01", "Steps": list(steps)}
    return {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {
            "PipelineName": "p",
            "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
            "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": json.dumps(body)}},
        },
    }


DOMAIN = {
    "Type": "AWS::SageMaker::Domain",
    "Properties": {
        "AuthMode": "IAM",
        "DomainName": "d",
        "VpcId": {"Ref": "Vpc"},
        "SubnetIds": [{"Ref": "SubnetA"}],
        "AppNetworkAccessType": "VpcOnly",
        "KmsKeyId": {"Ref": "Key"},
        "DefaultUserSettings": {"ExecutionRole": {"Fn::GetAtt": ["Role", "Arn"]}},
    },
}
ENDPOINT_CONFIG = {
    "Type": "AWS::SageMaker::EndpointConfig",
    "Properties": {
        "KmsKeyId": {"Ref": "Key"},
        "ProductionVariants": [
            {"ModelName": "m", "VariantName": "v", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "DestinationS3Uri": "s3://b/c",
            "KmsKeyId": {"Ref": "Key"},
            "InitialSamplingPercentage": 100,
            "CaptureOptions": [{"CaptureMode": "Input"}],
        },
    },
}
# Serverless variants cannot take a KmsKeyId (SageMaker rejects it): exempt from the volume check.
SERVERLESS_ENDPOINT_CONFIG = {
    "Type": "AWS::SageMaker::EndpointConfig",
    "Properties": {
        "ProductionVariants": [
            {"ModelName": "m", "VariantName": "v", "ServerlessConfig": {"MaxConcurrency": 1, "MemorySizeInMB": 2048}}
        ],
    },
}
NOTEBOOK = {
    "Type": "AWS::SageMaker::NotebookInstance",
    "Properties": {
        "InstanceType": "ml.t3.medium",
        "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
        "SubnetId": {"Ref": "SubnetA"},
        "SecurityGroupIds": [{"Ref": "Sg"}],
        "DirectInternetAccess": "Disabled",
        "RootAccess": "Disabled",
    },
}


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(MODEL, id="model"),
        pytest.param(PROCESSING_JOB, id="processing-job"),
        pytest.param(MONITORING_JOB, id="monitoring-job"),
        pytest.param(SCHEDULE, id="schedule"),
        pytest.param(pipeline(TRAINING_STEP), id="pipeline"),
        pytest.param(DOMAIN, id="domain"),
        pytest.param(ENDPOINT_CONFIG, id="endpoint-config"),
        pytest.param(NOTEBOOK, id="notebook"),
        pytest.param(SERVERLESS_ENDPOINT_CONFIG, id="serverless-endpoint-config"),
    ],
)
def test_good_sagemaker_resource_passes(rules, resource):
    assert findings(rules, {"Resource": resource}) == []


@pytest.mark.parametrize(
    "broken, rule",
    [
        (mutate(MODEL, ("Properties", "VpcConfig"), ...), "E9301"),
        (mutate(MODEL, ("Properties", "VpcConfig", "Subnets"), []), "E9301"),
        (mutate(PROCESSING_JOB, ("Properties", "NetworkConfig"), {"EnableNetworkIsolation": True}), "E9301"),
        (mutate(MONITORING_JOB, ("Properties", "NetworkConfig"), ...), "E9301"),
        (
            mutate(
                SCHEDULE, ("Properties", "MonitoringScheduleConfig", "MonitoringJobDefinition", "NetworkConfig"), ...
            ),
            "E9301",
        ),
        (
            pipeline(
                {
                    "Name": "Check",
                    "Type": "Condition",
                    "Arguments": {"IfSteps": [{"Name": "Prep", "Type": "Processing", "Arguments": {}}]},
                }
            ),
            "E9301",
        ),
        (mutate(DOMAIN, ("Properties", "AppNetworkAccessType"), ...), "E9302"),
        (mutate(DOMAIN, ("Properties", "AppNetworkAccessType"), "PublicInternetOnly"), "E9302"),
        (mutate(DOMAIN, ("Properties", "KmsKeyId"), ...), "E9302"),
        (mutate(ENDPOINT_CONFIG, ("Properties", "KmsKeyId"), ...), "E9303"),
        (mutate(ENDPOINT_CONFIG, ("Properties", "DataCaptureConfig", "KmsKeyId"), ...), "E9303"),
        (mutate(NOTEBOOK, ("Properties", "DirectInternetAccess"), ...), "E9304"),
        (mutate(NOTEBOOK, ("Properties", "RootAccess"), "Enabled"), "E9304"),
        (mutate(NOTEBOOK, ("Properties", "SubnetId"), ...), "E9304"),
    ],
    ids=[
        "model-no-vpc",
        "model-no-subnets",
        "processing-no-vpc",
        "monitoring-job-no-vpc",
        "schedule-no-vpc",
        "pipeline-nested-step-no-vpc",
        "domain-default-mode",
        "domain-public",
        "domain-no-key",
        "endpoint-config-no-key",
        "capture-no-key",
        "notebook-default-internet",
        "notebook-root",
        "notebook-no-subnet",
    ],
)
def test_broken_sagemaker_resource_fails(rules, broken, rule):
    assert ids(rules, {"Resource": broken}) == {rule}


TRAIN = allow(
    ["sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"],
    {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:*"},
)
DENY_NO_SUBNETS = {
    "Effect": "Deny",
    "Action": ["sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"],
    "Resource": "*",
    "Condition": {"Null": {"sagemaker:VpcSubnets": "true"}},
}
DENY_NO_SGS = {
    "Effect": "Deny",
    "Action": ["sagemaker:Create*"],
    "Resource": "*",
    "Condition": {"Null": {"sagemaker:VpcSecurityGroupIds": "true"}},
}


def managed(*statements, roles=("Role",)) -> dict:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Roles": [{"Ref": r} for r in roles],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
        },
    }


@pytest.mark.parametrize(
    "resources",
    [
        {"Role": role(None, TRAIN, DENY_NO_SUBNETS, DENY_NO_SGS)},
        {
            "Role": role(
                None,
                mutate(
                    TRAIN,
                    ("Condition",),
                    {"Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"}},
                ),
            )
        },
        {"Role": role(None, DENY_NO_SUBNETS, DENY_NO_SGS), "Policy": managed(TRAIN)},
        {
            "Role": role(),
            "Other": role(None, DENY_NO_SUBNETS),
            "Policy": managed(allow("sagemaker:DescribeTrainingJob", "*")),
        },
    ],
    ids=["denies", "conditional-allow", "allow-in-attached-managed-policy", "no-compute-actions"],
)
def test_runtime_compute_confined_to_the_vpc_passes(rules, resources):
    assert "E9305" not in ids(rules, resources)


@pytest.mark.parametrize(
    "resources",
    [
        {"Role": role(None, TRAIN)},
        {"Role": role(None, TRAIN, DENY_NO_SUBNETS)},
        {
            "Role": role(
                None,
                TRAIN,
                DENY_NO_SUBNETS,
                mutate(DENY_NO_SGS, ("Condition", "StringEquals"), {"aws:RequestedRegion": "us-east-1"}),
            )
        },
        {"Role": role(None, TRAIN), "Other": role(), "Policy": managed(DENY_NO_SUBNETS, DENY_NO_SGS, roles=("Other",))},
        {
            "Role": role(
                None, allow("sagemaker:*", {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:*:${AWS::AccountId}:*"})
            )
        },
    ],
    ids=["no-deny", "subnets-only", "deny-narrowed", "denies-attached-to-another-role", "service-wildcard"],
)
def test_runtime_compute_outside_the_vpc_fails(rules, resources):
    assert ids(rules, resources) == {"E9305"}


@pytest.mark.parametrize(
    "allowed, expected",
    [(["VpcOnly"], set()), (["VpcOnly", "PublicInternetOnly"], {"E9302"}), (None, {"E9302"})],
    ids=["only-vpc-only", "public-allowed", "unconstrained"],
)
def test_setting_through_a_parameter_must_be_safe_for_every_allowed_value(rules, allowed, expected):
    parameter = {"Type": "String", "Default": "VpcOnly"}
    if allowed:
        parameter["AllowedValues"] = allowed
    domain = mutate(DOMAIN, ("Properties", "AppNetworkAccessType"), {"Ref": "Mode"})
    assert ids(rules, {"Resource": domain}, parameters={"Mode": parameter}) == expected


# --- IAM --------------------------------------------------------------------------------------

CROSS_ACCOUNT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${ConsumerAccountId}:root"}


def trust(principal, condition=None) -> dict:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return statement


@pytest.mark.parametrize(
    "resource",
    [
        role(
            None,
            allow(["s3:GetObject"], {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}),
            allow(["ecr:GetAuthorizationToken"], "*"),
        ),
        role(trust(CROSS_ACCOUNT, {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}})),
        role(trust([CROSS_ACCOUNT], {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}})),
        role(trust(ROOT_ARN)),
        role(
            None,
            allow(
                "iam:PassRole",
                {"Fn::GetAtt": ["Other", "Arn"]},
                Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ),
        role(None, allow("iam:PassRole", {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mlops/*"})),
        role(None, allow("s3:*", {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"})),
    ],
    ids=[
        "scoped",
        "external-id",
        "org-id",
        "own-account",
        "passrole-one-role",
        "passrole-path",
        "service-star-on-scoped-resource",
    ],
)
def test_good_iam_passes(rules, resource):
    assert findings(rules, {"Role": resource}) == []


def test_trust_of_another_role_in_the_same_template_passes(rules):
    trusting = role(trust({"Fn::GetAtt": ["Other", "Arn"]}))
    assert findings(rules, {"Role": trusting, "Other": role()}) == []


@pytest.mark.parametrize(
    "resource, rule",
    [
        # Wildcards also cover iam:PassRole (E9403) and starting SageMaker jobs outside a VPC (E9305).
        (role(None, allow("*", "*")), {"E9401", "E9403", "E9305"}),
        (role(None, allow("*", {"Fn::Sub": "arn:${AWS::Partition}:s3:::b"})), {"E9401", "E9305"}),
        (role(None, allow("sagemaker:*", "*")), {"E9401", "E9305"}),
        (role(None, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), {"E9401", "E9305"}),
        (role(trust(CROSS_ACCOUNT)), "E9402"),
        (role(trust("*")), "E9402"),
        (role(trust({"Fn::Sub": "arn:${AWS::Partition}:iam::${Admin}:role/admin"})), "E9402"),
        (role(trust(CROSS_ACCOUNT, {"StringEqualsIfExists": {"sts:ExternalId": "x"}})), "E9402"),
        (role(trust(CROSS_ACCOUNT, {"StringLike": {"aws:PrincipalOrgID": "*"}})), "E9402"),
        (role(trust(CROSS_ACCOUNT, {"StringNotEquals": {"sts:ExternalId": "x"}})), "E9402"),
        (role(None, allow("iam:PassRole", "*")), "E9403"),
        (role(None, allow(["iam:Pass*"], {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"})), "E9403"),
        (
            role(
                None,
                {
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "NotResource": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/admin"},
                },
            ),
            "E9403",
        ),
    ],
    ids=[
        "star",
        "star-on-one-resource",
        "service-star-on-star",
        "notaction",
        "other-account-root",
        "everyone",
        "other-account-role",
        "if-exists",
        "wildcard-org",
        "negated",
        "passrole-star",
        "passrole-every-role",
        "passrole-notresource",
    ],
)
def test_broken_iam_fails(rules, resource, rule):
    assert ids(rules, {"Role": resource}) == (rule if isinstance(rule, set) else {rule})


def test_identity_policy_resources_are_checked_too(rules):
    managed = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [allow("iam:PassRole", "*")]}},
    }
    assert ids(rules, {"Policy": managed}) == {"E9403"}


def test_trust_pinned_in_only_one_branch_fails(rules):
    condition = {
        "Fn::If": ["Pinned", {"StringEquals": {"sts:ExternalId": "x-1234567890abcdef"}}, {"Ref": "AWS::NoValue"}]
    }
    conditions = {"Pinned": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}}
    assert ids(rules, {"Role": role(trust(CROSS_ACCOUNT, condition))}, conditions=conditions) == {"E9402"}


# --- EC2 --------------------------------------------------------------------------------------


def security_group(*ingress) -> dict:
    return {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "sg", "VpcId": {"Ref": "Vpc"}, "SecurityGroupIngress": list(ingress)},
    }


def test_ingress_from_a_parameter_whose_pattern_excludes_the_internet_passes(rules):
    ingress = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": {"Ref": "Cidr"}}
    parameters = {
        "Cidr": {
            "Type": "String",
            "Default": "10.0.0.0/16",
            "AllowedPattern": r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-8])$",
        }
    }
    assert findings(rules, {"Sg": security_group(ingress)}, parameters=parameters) == []


@pytest.mark.parametrize(
    "parameter",
    [
        {"Type": "String", "Default": "10.0.0.0/16"},
        {"Type": "String", "Default": "10.0.0.0/16", "AllowedPattern": r"^[0-9./]+$"},
        {"Type": "String", "AllowedValues": ["10.0.0.0/16", "0.0.0.0/0"], "Default": "10.0.0.0/16"},
    ],
    ids=["unconstrained", "pattern-admits-internet", "allowed-value"],
)
def test_ingress_from_a_parameter_that_admits_the_internet_fails(rules, parameter):
    ingress = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": {"Ref": "Cidr"}}
    assert ids(rules, {"Sg": security_group(ingress)}, parameters={"Cidr": parameter}) == {"E9501"}


def test_ingress_from_the_vpc_passes(rules):
    ingress = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": {"Fn::GetAtt": ["Vpc", "CidrBlock"]}}
    standalone = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Ref": "Sg"},
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Ref": "Sg"},
        },
    }
    assert findings(rules, {"Sg": security_group(ingress), "Rule": standalone}) == []


@pytest.mark.parametrize(
    "resources, parameters",
    [
        ({"Sg": security_group({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"})}, None),
        ({"Sg": security_group({"IpProtocol": "-1", "CidrIpv6": "::/0"})}, None),
        (
            {
                "Rule": {
                    "Type": "AWS::EC2::SecurityGroupIngress",
                    "Properties": {"GroupId": "sg-1", "IpProtocol": "-1", "CidrIp": "0.0.0.0/0"},
                }
            },
            None,
        ),
        (
            {"Sg": security_group({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": {"Ref": "Cidr"}})},
            {"Cidr": {"Type": "String", "Default": "0.0.0.0/0"}},
        ),
    ],
    ids=["ipv4-inline", "ipv6-inline", "standalone-ingress", "parameter-default"],
)
def test_ingress_from_the_internet_fails(rules, resources, parameters):
    assert ids(rules, resources, parameters=parameters) == {"E9501"}


# --- checkov skips -----------------------------------------------------------------------------


def skipping(*skips, tool="checkov") -> dict:
    resource = storage()
    resource["Bucket"]["Metadata"] = {tool: {"skip": list(skips)}}
    return resource


def test_justified_skips_pass(rules):
    justified = {"id": "CKV_AWS_18", "comment": "The access-log destination bucket does not log to itself (a loop)."}
    assert findings(rules, skipping(justified)) == []
    accepted = {
        "id": "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        "comment": "This role exists to write the product's bucket policies.",
    }
    assert findings(rules, skipping(accepted, tool="parliament")) == []


@pytest.mark.parametrize(
    "tool, skip",
    [
        ("checkov", {"id": "CKV_AWS_18"}),
        ("checkov", {"id": "CKV_AWS_18", "comment": "n/a"}),
        ("checkov", {"comment": "The access-log destination bucket does not log to itself."}),
        ("parliament", {"id": "RESOURCE_STAR", "comment": "needed"}),
        ("parliament", {"id": "CKV_AWS_18", "comment": "A checkov id in the parliament section."}),
    ],
    ids=["no-comment", "token-comment", "no-id", "parliament-token-comment", "parliament-wrong-id"],
)
def test_unjustified_skip_fails(rules, tool, skip):
    assert ids(rules, skipping(skip, tool=tool)) == {"E9901"}


# --- every generated template -----------------------------------------------------------------


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_generated_template_passes_every_custom_rule(rules, path):
    matches = lint(path.read_text(), rules=rules, regions=["us-east-1"])
    assert [] == [f"{path.name}:{m.linenumber} [{m.rule.id}] {m.message}" for m in matches]


# --- the policy linter's extraction (generator/policy_lint.py) ------------------------------------


LINT_VENV_PYTHON = ROOT / ".venv-lint" / "bin" / "python"


def _extracted(resources: dict, parameters: dict | None = None, conditions: dict | None = None) -> list:
    template = {"Resources": resources, "Parameters": parameters or {}, "Conditions": conditions or {}}
    return list(policy_lint.extract(Path("fragment.yaml"), template))


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_every_policy_of_a_template_is_extracted_as_literal_json(path):
    template = policy_lint.load_template(path)
    extracted = list(policy_lint.extract(path, template))
    documents = {p.path for p in extracted}
    expected = {".".join(str(s) for s in d.path) for d in policy_analysis.policy_documents(template)}
    assert len(documents) == len(expected)
    for policy in extracted:
        text = json.dumps(policy.document)
        assert "${" not in text.replace("${aws:", "").replace("${sagemaker:", ""), policy.where()
        assert '"Ref"' not in text and '"Fn::' not in text, policy.where()
        for statement in policy.document["Statement"]:
            resources = statement.get("Resource", statement.get("NotResource"))
            assert resources, f"{policy.where()}: a statement without a resource after normalisation"
            for resource in policy_analysis.as_list(resources):
                assert resource == "*" or len(resource.split(":", 5)) == 6, f"{policy.where()}: {resource}"


def test_trust_policies_get_their_implicit_resource_and_key_policies_keep_theirs():
    trust_role = role(trust(CROSS_ACCOUNT, {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}))
    extracted = {
        p.kind: p.document
        for p in _extracted(
            {"InvokeRole": trust_role, "Key": key()},
            {"ConsumerAccountId": {"Type": "String", "AllowedPattern": r"^\d{12}$"}},
        )
    }
    trust_statement = extracted["trust"]["Statement"][0]
    assert trust_statement["Resource"] == "arn:aws:iam::111111111111:role/invoke-role"
    assert trust_statement["Principal"]["AWS"] == "arn:aws:iam::222222222222:root"
    assert (
        extracted["key"]["Statement"][0]["Resource"] == "*"
    )  # "this key": RESOURCE_STAR is not reported for key policies


def test_each_condition_variant_is_extracted():
    conditional = role(
        None, {"Fn::If": ["Wide", allow("s3:GetObject", "*"), allow("s3:GetObject", {"Fn::Sub": "${Bucket.Arn}/*"})]}
    )
    resources = {"Role": conditional, "Bucket": bucket()}
    documents = [
        p.document
        for p in _extracted(resources, conditions={"Wide": {"Fn::Equals": ["a", "b"]}})
        if p.kind == "identity"
    ]
    assert sorted(d["Statement"][0]["Resource"] for d in documents) == ["*", "arn:aws:s3:::bucket/*"]


def test_parameters_become_values_of_their_shape():
    c = policy_lint.Concretizer(
        {
            "Parameters": {
                "TargetAccountId": {"Type": "String", "AllowedPattern": r"^\d{12}$"},
                "KeyArn": {
                    "Type": "String",
                    "AllowedPattern": r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]{36}$",
                },
                "TopicArn": {
                    "Type": "String",
                    "AllowedPattern": r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256})?$",
                    "Default": "",
                },
                "Prefix": {"Type": "String", "Default": "models/"},
                "Arns": {
                    "Type": "CommaDelimitedList",
                    "AllowedPattern": r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:endpoint/[a-z0-9-]+$",
                },
            }
        }
    )
    assert c.ref("TargetAccountId") == "222222222222"
    assert c.ref("KeyArn").startswith("arn:aws:kms:us-east-1:222222222222:key/")
    assert c.ref("TopicArn").startswith("arn:aws:sns:us-east-1:222222222222:")
    assert c.ref("Prefix") == "models/"
    assert c.value([{"Ref": "Arns"}]) == ["arn:aws:sagemaker:us-east-1:222222222222:endpoint/example-arns"]
    assert c.sub(["${Prefix}*-${X}", {"X": {"Ref": "AWS::Region"}}]) == "models/*-us-east-1"


def _policy_lint(tmp_path, resources: dict) -> subprocess.CompletedProcess:
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"Resources": resources}))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    command = [str(LINT_VENV_PYTHON), "-m", "generator.policy_lint", str(template)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)


needs_lint_venv = pytest.mark.skipif(
    not LINT_VENV_PYTHON.exists(), reason="needs the linters' venv (make lint creates .venv-lint)"
)


@needs_lint_venv
def test_policy_linter_sets_aside_only_documented_linter_gaps(tmp_path):
    kms_key_id = {"Fn::GetAtt": ["Key", "Arn"]}
    require_key = {
        "Sid": "RequireKey",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": {"Fn::Sub": "${Bucket.Arn}/*"},
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_id}},
    }
    documented = _policy_lint(tmp_path, {**storage(None, DENY_TLS, require_key), "Role": role()})
    assert documented.returncode == 0, documented.stderr
    assert "known linter gap" in documented.stderr
    other = mutate(require_key, ("Condition",), {"StringNotEquals": {"s3:DataAccessPointArn": kms_key_id}})
    undocumented = _policy_lint(tmp_path, {**storage(None, DENY_TLS, other), "Role": role()})
    assert undocumented.returncode == 1 and "MISMATCHED_TYPE" in undocumented.stderr


@needs_lint_venv
def test_policy_linter_fails_a_broken_policy_and_passes_a_good_one(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {"Resources": {"Role": role(None, allow("s3:GetObject", {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}))}}
        )
    )
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {
                "Resources": {
                    "Misspelt": role(None, allow(["s3:GetObjekt"], {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"})),
                    "Unscoped": role(None, allow(["s3:GetObject"], "*")),
                }
            }
        )
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    command = [str(LINT_VENV_PYTHON), "-m", "generator.policy_lint"]
    passed = subprocess.run(command + [str(good)], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert passed.returncode == 0, passed.stderr
    failed = subprocess.run(command + [str(broken)], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert failed.returncode == 1
    assert "UNKNOWN_ACTION" in failed.stderr and "of Misspelt" in failed.stderr
    assert "RESOURCE_STAR" in failed.stderr and "of Unscoped" in failed.stderr


@needs_lint_venv
def test_policy_linter_honours_a_justified_metadata_skip_on_that_resource_only(tmp_path):
    unscoped = role(None, allow(["s3:GetObject"], "*"))
    skipped = {
        **copy.deepcopy(unscoped),
        "Metadata": {
            "parliament": {
                "skip": [
                    {
                        "id": "RESOURCE_STAR",
                        "comment": "A fragment standing for a role whose resources cannot be known.",
                    }
                ]
            }
        },
    }
    result = _policy_lint(tmp_path, {"Skipped": skipped, "Other": unscoped})
    assert result.returncode == 1
    assert "of Other" in result.stderr and "of Skipped" not in result.stderr
    assert "1 skipped by a justified Metadata parliament skip" in result.stderr


def test_readme_security_section_lists_every_linter_skip():
    """A skip is allowed only with a justification in the template and a line in the README."""
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    missing = [
        f"{template} {resource} {check}"
        for template, resource, _, check, _ in policy_lint.skip_rows(TEMPLATES)
        if not any(template in line and resource in line and check in line for line in lines)
    ]
    assert not missing, (
        "README.md's security section must list these skips (python -m generator.policy_lint --skips): "
        + ", ".join(missing)
    )
