"""The local AWS resolves an SSM-typed parameter's default only when no value is passed."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from localaws.patches import cloudformation_ssm_defaults
from tests.moto_stack import ssm_parameter_template

TEMPLATE = json.dumps(
    ssm_parameter_template(
        {"SubnetId": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/env/staging/subnet-id"}},
        name={"Fn::Sub": "/copy/${AWS::StackName}"},
        value={"Ref": "SubnetId"},
        logical_id="Param",
    )
    | {"Outputs": {"Resolved": {"Value": {"Ref": "SubnetId"}}}}
)


@pytest.fixture
def aws():
    with mock_aws():
        cloudformation_ssm_defaults.apply()
        yield boto3.client("cloudformation", region_name="us-east-1"), boto3.client("ssm", region_name="us-east-1")


def _resolved(cfn, name):
    outputs = cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}["Resolved"]


def test_a_passed_ssm_name_is_resolved_and_the_missing_default_is_not(aws):
    cfn, ssm = aws
    ssm.put_parameter(Name="/env/prod/subnet-id", Type="String", Value="subnet-prod")
    cfn.create_stack(
        StackName="prod",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "SubnetId", "ParameterValue": "/env/prod/subnet-id"}],
    )
    assert _resolved(cfn, "prod") == "subnet-prod"


def test_the_default_is_still_resolved_when_nothing_is_passed(aws):
    cfn, ssm = aws
    ssm.put_parameter(Name="/env/staging/subnet-id", Type="String", Value="subnet-staging")
    cfn.create_stack(StackName="staging", TemplateBody=TEMPLATE)
    assert _resolved(cfn, "staging") == "subnet-staging"


def test_apply_is_idempotent():
    from moto.cloudformation import parsing

    cloudformation_ssm_defaults.apply()
    first = parsing.ResourceMap.load_parameters
    cloudformation_ssm_defaults.apply()
    assert parsing.ResourceMap.load_parameters is first
