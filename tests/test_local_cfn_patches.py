"""The moto patches that let the environment templates deploy locally, each on a minimal template."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from tests.moto_stack import REGION, create_stack
from tests.test_local_fidelity_cfn import DOMAIN_PROPERTIES


def _body(resources: dict, outputs: dict | None = None, parameters: dict | None = None) -> str:
    return json.dumps({"Parameters": parameters or {}, "Resources": resources, "Outputs": outputs or {}})


def test_unimplemented_types_resolve_as_placeholders():
    body = _body(
        {
            # The properties the registry schema requires (the local AWS refuses a domain without them, as AWS does).
            "Domain": {"Type": "AWS::SageMaker::Domain", "Properties": DOMAIN_PROPERTIES},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::GetAtt": ["Domain", "DomainId"]}}},
        },
        {
            "DomainId": {"Value": {"Fn::GetAtt": ["Domain", "DomainId"]}},
            "DomainArn": {"Value": {"Fn::GetAtt": ["Domain", "DomainArn"]}},
            "DomainRef": {"Value": {"Ref": "Domain"}},
            "Url": {"Value": {"Fn::Sub": "${Domain.Url}"}},  # a declared attribute, through Sub
        },
    )
    with mock_aws():
        stack = create_stack(body)
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = stack["OutputValues"]
        assert outputs["DomainId"] == outputs["DomainRef"] and outputs["DomainId"]
        assert outputs["DomainArn"].startswith(f"arn:aws:sagemaker:{REGION}:")
        assert {r["LogicalResourceId"] for r in stack["Resources"]} == {"Domain", "Topic"}
        topics = boto3.client("sns", region_name=REGION).list_topics()["Topics"]
        assert topics[0]["TopicArn"].endswith(":" + outputs["DomainId"])
        boto3.client("cloudformation", region_name=REGION).delete_stack(StackName="stack")


def test_list_parameter_defaults_are_lists():
    body = _body(
        {
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/second", "Type": "String", "Value": {"Fn::Select": [1, {"Ref": "Names"}]}},
            }
        },
        parameters={"Names": {"Type": "CommaDelimitedList", "Default": "alpha,beta"}},
    )
    with mock_aws():
        assert create_stack(body)["StackStatus"] == "CREATE_COMPLETE"
        assert boto3.client("ssm", region_name=REGION).get_parameter(Name="/second")["Parameter"]["Value"] == "beta"


def test_tagged_keys_and_ssm_parameters_are_created_tagged():
    body = _body(
        {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
                    "Tags": [{"Key": "team", "Value": "a"}],
                },
            },
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/tagged", "Type": "String", "Value": {"Ref": "Key"}, "Tags": {"team": "a"}},
            },
        }
    )
    with mock_aws():
        assert create_stack(body)["StackStatus"] == "CREATE_COMPLETE"
        ssm = boto3.client("ssm", region_name=REGION)
        key_id = ssm.get_parameter(Name="/tagged")["Parameter"]["Value"]
        assert boto3.client("kms", region_name=REGION).list_resource_tags(KeyId=key_id)["Tags"] == [
            {"TagKey": "team", "TagValue": "a"}
        ]
        assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/tagged")["TagList"] == [
            {"Key": "team", "Value": "a"}
        ]
