"""The local AWS refuses or fails what AWS does (issue 20): CloudFormation templates checked
against the registry schemas, bucket policies applied to the local S3, model package group
policies validated as IAM documents with SageMaker's size limit. Called with boto3 directly,
on the local server (``local_aws``) or on moto in-process with the same patches."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws
from moto.cloudformation.models import Stack

from localaws.patches.cloudformation_placeholders import validate_template
from tests.moto_stack import REGION, create_stack

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
DOMAIN_PROPERTIES = {
    "DomainName": "d",
    "AuthMode": "IAM",
    "DefaultUserSettings": {"ExecutionRole": "arn:aws:iam::123456789012:role/studio"},
}


def _body(resources: dict, outputs: dict | None = None) -> str:
    return json.dumps({"Resources": resources, "Outputs": outputs or {}})


def _refusal(body: str, before=None) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create_stack(body, before=before)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    return caught.value.response["Error"]["Message"]


def _statement(bucket_arn, **changes) -> dict:
    objects = f"{bucket_arn}/*" if isinstance(bucket_arn, str) else {"Fn::Sub": ["${Arn}/*", {"Arn": bucket_arn}]}
    statement = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, objects],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    statement.update(changes)
    return {key: value for key, value in statement.items() if value is not None}


def _bucket_policy_template(statement: dict | None = None, bucket: dict | str | None = None, document=None) -> str:
    arn = {"Fn::GetAtt": ["Bucket", "Arn"]}
    return _body(
        {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": bucket or {"Ref": "Bucket"},
                    "PolicyDocument": document
                    or {"Version": "2012-10-17", "Statement": [statement or _statement(arn)]},
                },
            },
        },
        {"BucketName": {"Value": {"Ref": "Bucket"}}, "PolicyRef": {"Value": {"Ref": "Policy"}}},
    )


# --- templates checked against the registry schemas -------------------------------------


def test_misspelt_resource_type_is_refused_with_cloudformations_message():
    body = _body({"Domain": {"Type": "AWS::SageMaker::Domian", "Properties": DOMAIN_PROPERTIES}})
    with mock_aws():
        assert _refusal(body) == "Template format error: Unrecognized resource types: [AWS::SageMaker::Domian]"
        stacks = boto3.client("cloudformation", region_name=REGION).list_stacks()["StackSummaries"]
        assert stacks == []  # AWS creates no stack for a template it refuses


def test_getatt_of_an_attribute_the_schema_does_not_declare_is_refused():
    domain = {"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": DOMAIN_PROPERTIES}}
    with mock_aws():
        message = _refusal(_body(domain, {"Id": {"Value": {"Fn::GetAtt": ["Domain", "DomainIdentifier"]}}}))
        assert (
            message == "Template error: resource Domain does not support attribute type DomainIdentifier in Fn::GetAtt"
        )
    with mock_aws():  # in Fn::Sub too, and for the types moto implements
        sub = {"Fn::Sub": "${Domain.Name}"}
        assert "attribute type Name in Fn::GetAtt" in _refusal(_body(domain, {"Name": {"Value": sub}}))
    with mock_aws():
        topic = {"Topic": {"Type": "AWS::SNS::Topic"}}
        assert "resource Topic does not support attribute type Url" in _refusal(
            _body(topic, {"Url": {"Value": {"Fn::GetAtt": ["Topic", "Url"]}}})
        )


def test_placeholder_without_a_required_property_fails():
    properties = {key: value for key, value in DOMAIN_PROPERTIES.items() if key != "AuthMode"}
    with mock_aws():
        message = _refusal(_body({"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": properties}}))
    assert message == (
        "Properties validation failed for resource Domain with message: #: required key [AuthMode] not found"
    )


def test_a_property_the_schema_does_not_declare_is_refused_at_any_depth():
    """A misspelt property is refused with the registry validator's message, for placeholders and for
    the types moto implements, nested in a closed object too; a value given by Ref is not checked."""
    with mock_aws():
        domain = {**DOMAIN_PROPERTIES, "DomianName": "d"}
        message = _refusal(_body({"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": domain}}))
        assert message == (
            "Properties validation failed for resource Domain with message: "
            "#: extraneous key [DomianName] is not permitted"
        )
    with mock_aws():
        settings = {**DOMAIN_PROPERTIES, "DefaultUserSettings": {"ExecutionRole": "arn:aws:iam::1:role/r", "Sg": ["x"]}}
        message = _refusal(_body({"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": settings}}))
        assert "#/DefaultUserSettings: extraneous key [Sg] is not permitted" in message
    with mock_aws():
        bucket = {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketNmae": "b"}}}
        assert "#: extraneous key [BucketNmae] is not permitted" in _refusal(_body(bucket))
    with mock_aws():  # plain strings outside a string enum are refused; a Ref is resolved later, not here
        bad = {**DOMAIN_PROPERTIES, "AuthMode": "Iam"}
        message = _refusal(_body({"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": bad}}))
        assert "#/AuthMode: failed validation constraint for keyword [enum]" in message
        by_ref = {**DOMAIN_PROPERTIES, "AuthMode": {"Ref": "AWS::NoValue"}, "VpcId": {"Fn::If": ["C", "a", "b"]}}
        validate_template({"Resources": {"Domain": {"Type": "AWS::SageMaker::Domain", "Properties": by_ref}}}, REGION)


def test_update_to_an_unrecognised_type_is_refused_and_leaves_the_stack():
    with mock_aws():
        create_stack(_body({"Topic": {"Type": "AWS::SNS::Topic"}}))
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            cloudformation.update_stack(StackName="stack", TemplateBody=_body({"Topic": {"Type": "AWS::SNS::Topik"}}))
        assert "Unrecognized resource types: [AWS::SNS::Topik]" in caught.value.response["Error"]["Message"]
        assert cloudformation.describe_stacks(StackName="stack")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.yaml")), ids=lambda path: path.name)
def test_every_template_passes_the_schema_checks(path):
    validate_template(Stack.parse_template(path.read_text()), REGION)


# --- bucket policies on the local S3 ------------------------------------------------------


def test_bucket_policy_is_applied_to_the_local_s3_and_removed_with_the_resource():
    with mock_aws():
        stack = create_stack(_bucket_policy_template())
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        bucket = stack["OutputValues"]["BucketName"]
        assert stack["OutputValues"]["PolicyRef"] == bucket
        s3 = boto3.client("s3", region_name=REGION)
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        template = json.loads(_bucket_policy_template())
        del template["Resources"]["Policy"], template["Outputs"]["PolicyRef"]
        cloudformation.update_stack(StackName="stack", TemplateBody=json.dumps(template))
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            s3.get_bucket_policy(Bucket=bucket)
        assert caught.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_bucket_policy_on_a_bucket_that_does_not_exist_fails():
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        statement = _statement(f"arn:aws:s3:::{missing}")
        message = _refusal(_bucket_policy_template(statement, bucket=missing))
    assert message.startswith("Resource Policy failed: Resource handler returned message: ")
    assert '"The specified bucket does not exist (Service: S3, Status Code: 404)"' in message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Resource": "*"}, "Policy has invalid resource"),
        ({"Resource": "arn:aws:s3:::another-bucket/*"}, "Policy has invalid resource"),
        ({"Effect": None}, "Missing required field Effect"),
        ({"Effect": "Maybe"}, "Invalid effect: Effect must be Allow or Deny"),
        ({"Principal": None}, "Missing required field Principal"),
        ({"Principal": {"AWS": "not-an-account"}}, "Invalid principal in policy"),
        ({"Action": "GetObject"}, "Invalid action"),
    ],
)
def test_malformed_bucket_policy_fails(change, reason):
    with mock_aws():
        message = _refusal(_bucket_policy_template(_statement({"Fn::GetAtt": ["Bucket", "Arn"]}, **change)))
    assert f'"{reason} (Service: S3, Status Code: 400)"' in message


def test_bucket_policy_document_must_be_a_policy():
    with mock_aws():
        assert "Policies must be valid JSON and the first byte must be '{'" in _refusal(
            _bucket_policy_template(document="[not json")
        )
    with mock_aws():
        statement = _statement({"Fn::GetAtt": ["Bucket", "Arn"]})
        document = {"Version": "2014-01-01", "Statement": [statement]}
        assert "The policy must contain a valid version string" in _refusal(_bucket_policy_template(document=document))


# --- SageMaker model package group policies -----------------------------------------------


def _group_policy(arn: str, **changes) -> dict:
    statement = {
        "Sid": "Read",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"],
        "Resource": arn,
    }
    statement.update(changes)
    return {"Version": "2012-10-17", "Statement": [{k: v for k, v in statement.items() if v is not None}]}


def _put_refusal(sagemaker, name: str, policy: str) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy=policy)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return caught.value.response["Error"]["Message"]


def test_model_package_group_policy_is_validated_as_an_iam_document(local_aws):
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    sagemaker = local_aws.client("sagemaker", account="ml-development")
    arn = sagemaker.create_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    no_effect = _group_policy(arn, Effect=None)
    assert (
        _put_refusal(sagemaker, name, json.dumps(no_effect)) == "Invalid policy provided: Missing required field Effect"
    )
    unknown_version = dict(_group_policy(arn), Version="2020-01-01")
    assert _put_refusal(sagemaker, name, json.dumps(unknown_version)) == (
        "Invalid policy provided: The policy must contain a valid version string"
    )
    no_principal = _group_policy(arn, Principal=None)
    assert "Missing required field Principal" in _put_refusal(sagemaker, name, json.dumps(no_principal))
    twice = _group_policy(arn, Principal={"AWS": ["111111111111", "111111111111"]})
    assert _put_refusal(sagemaker, name, json.dumps(twice)) == "Invalid policy provided: Duplicate principal"
    assert _put_refusal(sagemaker, name, "not json") == "Invalid policy provided: The policy is not valid JSON"
    valid = json.dumps(_group_policy(arn))
    sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy=valid)
    assert sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"] == valid


def test_model_package_group_policy_over_20480_characters_is_refused(local_aws):
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    sagemaker = local_aws.client("sagemaker", account="ml-development")
    arn = sagemaker.create_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    policy = _group_policy(arn)
    policy["Statement"][0]["Sid"] = "Read"
    padding = 20480 - len(json.dumps(policy))
    policy["Statement"][0]["Sid"] = "Read" + "x" * padding  # exactly 20480: accepted
    sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy=json.dumps(policy))
    policy["Statement"][0]["Sid"] += "x"
    assert _put_refusal(sagemaker, name, json.dumps(policy)).endswith(
        "Member must have length less than or equal to 20480"
    )


def _group_template(policy) -> str:
    properties = {"ModelPackageGroupName": "models", "ModelPackageGroupPolicy": policy}
    return _body({"Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": properties}})


def test_model_package_group_policy_is_validated_on_the_cloudformation_path():
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package-group/models"
    with mock_aws():
        message = _refusal(_group_template(_group_policy(arn, Effect=None)))
        assert message.startswith("Resource Group failed: Resource handler returned message: ")
        assert '"Invalid policy provided: Missing required field Effect (Service: SageMaker' in message
    with mock_aws():
        large = _group_policy(arn, Sid="x" * 20480)
        assert "Member must have length less than or equal to 20480" in _refusal(_group_template(large))
    with mock_aws():
        assert create_stack(_group_template(_group_policy(arn)))["StackStatus"] == "CREATE_COMPLETE"
        policy = boto3.client("sagemaker", region_name=REGION).get_model_package_group_policy(
            ModelPackageGroupName="models"
        )["ResourcePolicy"]
        assert json.loads(policy) == _group_policy(arn)


def test_refused_bucket_policy_through_the_local_server(local_aws):
    """Through the local server: the refusal reaches the caller as AWS's ValidationError."""
    cloudformation = local_aws.client("cloudformation", account="ml-development")
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    bad = _statement({"Fn::GetAtt": ["Bucket", "Arn"]}, Resource="*")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cloudformation.create_stack(StackName=name, TemplateBody=_bucket_policy_template(bad))
    assert '"Policy has invalid resource (Service: S3, Status Code: 400)"' in caught.value.response["Error"]["Message"]


def test_a_stack_whose_creation_fails_is_rolled_back_and_stays_describable(local_aws):
    """AWS rolls a failed creation back: the resources created are deleted, the stack is
    ROLLBACK_COMPLETE without outputs, and DescribeStacks of the account keeps working
    (moto left it CREATE_IN_PROGRESS and answered HTTP 500 to every later DescribeStacks)."""
    account = local_aws.account_id("ml-development")
    cloudformation, ssm = local_aws.client("cloudformation", account), local_aws.client("ssm", account)
    name, parameter = f"rollback-{uuid.uuid4().hex[:8]}", f"/rollback/{uuid.uuid4().hex[:8]}"
    missing = f"arn:aws:iam::{account}:policy/absent-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    body = _body(
        {
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": parameter, "Type": "String", "Value": "x"},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "DependsOn": "Parameter",
                "Properties": {"AssumeRolePolicyDocument": trust, "PermissionsBoundary": missing},
            },
        },
        {"RoleName": {"Value": {"Ref": "Role"}}},
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cloudformation.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert missing in caught.value.response["Error"]["Message"]
    stacks = {s["StackName"]: s for s in cloudformation.describe_stacks()["Stacks"]}  # no HTTP 500
    assert stacks[name]["StackStatus"] == "ROLLBACK_COMPLETE" and "Outputs" not in stacks[name]
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        ssm.get_parameter(Name=parameter)
    assert gone.value.response["Error"]["Code"] == "ParameterNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as again:
        cloudformation.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert again.value.response["Error"]["Code"] == "AlreadyExistsException"
    cloudformation.delete_stack(StackName=name)
