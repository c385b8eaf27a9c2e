"""The target-account network: the environment's network builder with a serving composition."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from generator.render import render_yaml
from generator.target_network import TARGET_INTERFACE_ENDPOINTS, build_target_network_template
from tests.moto_stack import REGION, create_stack
from tests.policy_eval import ACCOUNT, Request, Resolver, evaluate
from tests.template_props import WORKLOAD_ENDPOINT_SERVICES, resources

DEV_BUCKET = "mlops-dev-modelsbucket-1a2b3c"


@pytest.fixture(scope="module")
def template() -> dict:
    return build_target_network_template().to_dict()


def test_endpoints_are_exactly_what_a_sagemaker_endpoint_needs():
    assert {spec.service for spec in TARGET_INTERFACE_ENDPOINTS} == {"sagemaker.runtime", *WORKLOAD_ENDPOINT_SERVICES}


def test_three_azs_by_default_for_serving(template):
    private = [s for s in resources(template, "AWS::EC2::Subnet") if s.startswith("Private")]
    assert len(private) == 3


def test_environment_types_are_the_serving_stages(template):
    assert template["Parameters"]["EnvType"]["AllowedValues"] == ["staging", "prod"]


def gateway_policy(template, **parameters):
    return Resolver(template, {"DevelopmentModelsBucketName": DEV_BUCKET, **parameters}).resolve(
        template["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"]
    )


def test_gateway_admits_the_development_models_prefix_read_only(template):
    policy = gateway_policy(template)
    reader = {"principal_arn": f"arn:aws:iam::{ACCOUNT}:role/mlops-model-execution", "principal_account": ACCOUNT}
    model = f"arn:aws:s3:::{DEV_BUCKET}/models/churn/model.tar.gz"
    assert (
        evaluate(policy, Request("s3:GetObject", model, **reader, context={"s3:ResourceAccount": "999988887777"}))
        == "Allow"
    )
    assert (
        evaluate(policy, Request("s3:PutObject", model, **reader, context={"s3:ResourceAccount": "999988887777"}))
        == "ImplicitDeny"
    )
    outside_prefix = f"arn:aws:s3:::{DEV_BUCKET}/data/train.csv"
    assert (
        evaluate(
            policy, Request("s3:GetObject", outside_prefix, **reader, context={"s3:ResourceAccount": "999988887777"})
        )
        == "ImplicitDeny"
    )
    listing = Request(
        "s3:ListBucket",
        f"arn:aws:s3:::{DEV_BUCKET}",
        **reader,
        context={"s3:prefix": "models/churn/", "s3:ResourceAccount": "999988887777"},
    )
    assert evaluate(policy, listing) == "Allow"


def test_gateway_admits_this_accounts_buckets_and_image_layers_only(template):
    policy = gateway_policy(template)
    caller = {"principal_arn": f"arn:aws:iam::{ACCOUNT}:role/x", "principal_account": ACCOUNT}
    own = Request("s3:PutObject", "arn:aws:s3:::data-capture/x", **caller, context={"s3:ResourceAccount": ACCOUNT})
    assert evaluate(policy, own) == "Allow"
    foreign = Request(
        "s3:GetObject", "arn:aws:s3:::exfil-bucket/x", **caller, context={"s3:ResourceAccount": "999999999999"}
    )
    assert evaluate(policy, foreign) == "ImplicitDeny"
    layer = Request(
        "s3:GetObject",
        f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/sha",
        **caller,
        context={"s3:ResourceAccount": "000000000000"},
    )
    assert evaluate(policy, layer) == "Allow"


def test_subnets_sg_and_endpoint_ids_are_published(template):
    outputs = template["Outputs"]
    for name in ("VpcId", "PrivateSubnetIds", "WorkloadSecurityGroupId", "S3EndpointId", "KmsEndpointId"):
        assert "Export" in outputs[name], name
    resolver = Resolver(template, {"DevelopmentModelsBucketName": DEV_BUCKET, "EnvName": "team-a", "EnvType": "prod"})
    names = {
        resolver.resolve(p["Properties"]["Name"]): p["Properties"]["Type"]
        for p in resources(template, "AWS::SSM::Parameter").values()
    }
    assert names["/team-a/prod/network/private-subnet-ids"] == "StringList"
    assert names["/team-a/prod/network/workload-security-group-id"] == "String"
    assert names["/team-a/prod/network/s3-endpoint-id"] == "String"
    assert names["/team-a/prod/network/kms-endpoint-id"] == "String"


def test_deploys_on_the_local_emulator():
    with mock_aws():
        stack = create_stack(
            render_yaml(build_target_network_template()), {"DevelopmentModelsBucketName": DEV_BUCKET, "EnvType": "prod"}
        )
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        assert {r["ResourceStatus"] for r in stack["Resources"]} == {"CREATE_COMPLETE"}
        ssm = boto3.client("ssm", region_name=REGION)
        subnets = ssm.get_parameter(Name="/mlops/prod/network/private-subnet-ids")["Parameter"]["Value"].split(",")
        assert len(subnets) == 3 and all(s.startswith("subnet-") for s in subnets)
        ec2 = boto3.client("ec2", region_name=REGION)
        azs = {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
        assert len(azs) == 3
        endpoints = ec2.describe_vpc_endpoints(
            VpcEndpointIds=[stack["OutputValues"]["KmsEndpointId"], stack["OutputValues"]["S3EndpointId"]]
        )
        assert {e["VpcEndpointType"] for e in endpoints["VpcEndpoints"]} == {"Interface", "Gateway"}


def test_deploys_into_an_existing_vpc_on_the_local_emulator():
    def existing_network(session):
        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
                "SubnetId"
            ]
            for i, z in enumerate("ab")
        ]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        return {"ExistingVpcId": vpc, "ExistingPrivateSubnetIds": ",".join(subnets), "ExistingRouteTableIds": table}

    with mock_aws():
        stack = create_stack(
            render_yaml(build_target_network_template()),
            {"DevelopmentModelsBucketName": DEV_BUCKET},
            before=existing_network,
        )
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        types = {r["ResourceType"] for r in stack["Resources"]}
        assert "AWS::EC2::VPC" not in types and "AWS::EC2::Subnet" not in types
        vpcs = boto3.client("ec2", region_name=REGION).describe_vpcs(
            Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}]
        )["Vpcs"]
        assert stack["OutputValues"]["VpcId"] == vpcs[0]["VpcId"]
