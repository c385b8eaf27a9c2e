"""The one private-network builder, checked as properties of both templates that use it."""

from __future__ import annotations

import json
import sys

import pytest
from troposphere import AWSObject, Template

from generator.environment import build_environment_template
from generator.network import add_private_network, endpoint_specs
from generator.parameters import add_environment
from generator.target_network import build_target_network_template
from tests.policy_eval import Resolver
from tests.template_props import resources

BUILDERS = {"environment": build_environment_template, "target-network": build_target_network_template}
EXISTING = {
    "ExistingVpcId": "vpc-0123456789abcdef0",
    "ExistingPrivateSubnetIds": "subnet-a,subnet-b",
    "ExistingRouteTableIds": "rtb-a,rtb-b",
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def template(request) -> dict:
    return BUILDERS[request.param]().to_dict()


def _ingress_rules(template):
    """(group logical id or expression, rule) of every ingress rule, inline or standalone."""
    for logical_id, group in resources(template, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            yield logical_id, rule
    for rule in resources(template, "AWS::EC2::SecurityGroupIngress").values():
        yield rule["Properties"]["GroupId"]["Fn::GetAtt"][0], rule["Properties"]


def test_no_security_group_admits_the_internet(template):
    for _, rule in _ingress_rules(template):
        assert rule.get("CidrIp") not in ("0.0.0.0/0",) and rule.get("CidrIpv6") != "::/0", rule
        assert "SourceSecurityGroupId" in rule, rule  # every ingress names a group, never a CIDR


def test_workload_group_admits_only_itself_and_endpoints_only_https_from_workloads(template):
    rules = list(_ingress_rules(template))
    workload = [r for g, r in rules if g == "WorkloadSecurityGroup"]
    endpoints = [r for g, r in rules if g == "EndpointSecurityGroup"]
    assert len(rules) == len(workload) + len(endpoints)
    assert all(
        r["SourceSecurityGroupId"] == {"Fn::GetAtt": ["WorkloadSecurityGroup", "GroupId"]} for r in workload + endpoints
    )
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in endpoints] == [("tcp", 443, 443)]


def test_every_interface_endpoint_is_private_dns_in_the_private_subnets_behind_the_endpoint_sg(template):
    interface = {
        k: v
        for k, v in resources(template, "AWS::EC2::VPCEndpoint").items()
        if v["Properties"]["VpcEndpointType"] == "Interface"
    }
    assert interface
    subnets = {
        "Fn::If": [
            "CreateVpc",
            [{"Ref": s} for s in sorted(resources(template, "AWS::EC2::Subnet")) if s.startswith("Private")],
            {"Ref": "ExistingPrivateSubnetIds"},
        ]
    }
    for logical_id, endpoint in interface.items():
        props = endpoint["Properties"]
        assert props["PrivateDnsEnabled"] is True, logical_id
        assert props["SecurityGroupIds"] == [{"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]}], logical_id
        assert props["SubnetIds"] == subnets, logical_id
        service = Resolver(template).resolve(props["ServiceName"])
        assert service.startswith(("com.amazonaws.us-east-1.", "aws.sagemaker.us-east-1.")), service


def test_s3_gateway_endpoint_on_every_private_route_table_with_a_policy(template):
    (gateway,) = [
        v
        for v in resources(template, "AWS::EC2::VPCEndpoint").values()
        if v["Properties"]["VpcEndpointType"] == "Gateway"
    ]
    props = gateway["Properties"]
    tables = [{"Ref": r} for r in sorted(resources(template, "AWS::EC2::RouteTable")) if r.startswith("Private")]
    assert props["RouteTableIds"] == {"Fn::If": ["CreateVpc", tables, {"Ref": "ExistingRouteTableIds"}]}
    assert props["PolicyDocument"]["Statement"]
    assert '"s3:*"' not in json.dumps(props["PolicyDocument"])


def test_internet_free_by_default_nat_only_behind_its_condition(template):
    internet = ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::VPCGatewayAttachment")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in internet or (resource["Type"] == "AWS::EC2::Route"):
            assert resource.get("Condition") == "CreateNatGateway", logical_id
    assert Resolver(template).condition("CreateNatGateway") is False
    assert Resolver(template, {"EnableNatGateway": "true"}).condition("CreateNatGateway") is True
    assert Resolver(template, {"EnableNatGateway": "true", **EXISTING}).condition("CreateNatGateway") is False
    for subnet in resources(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_existing_vpc_replaces_every_created_network_resource(template):
    created = {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::RouteTable", "AWS::EC2::SubnetRouteTableAssociation"}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in created:
            assert resource.get("Condition") in ("CreateVpc", "CreateNatGateway"), logical_id
    resolver = Resolver(template, EXISTING)
    assert resolver.condition("CreateVpc") is False
    for logical_id, resource in template["Resources"].items():
        if "VpcId" in resource.get("Properties", {}) and not resource.get("Condition"):
            assert resolver.resolve(resource["Properties"]["VpcId"]) == EXISTING["ExistingVpcId"], logical_id
    assert set(template["Rules"]) == {"ExistingNetworkIsComplete", "ExistingSubnetsNeedTheirVpc"}


def test_flow_logs_of_all_traffic_to_an_encrypted_retained_log_group(template):
    (flow_log,) = resources(template, "AWS::EC2::FlowLog").values()
    props = flow_log["Properties"]
    assert props["TrafficType"] == "ALL" and props["ResourceType"] == "VPC"
    group = template["Resources"][props["LogGroupName"]["Ref"]]
    key = template["Resources"][group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert group["DeletionPolicy"] == "Retain"
    assert Resolver(template, EXISTING).resolve(props["ResourceId"]) == EXISTING["ExistingVpcId"]


def test_every_taggable_resource_carries_the_environment_tags(template):
    taggable = {
        cls.resource_type
        for name, module in list(sys.modules.items())
        if name.startswith("troposphere.")
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, AWSObject)
        and "Tags" in cls.props
        and hasattr(cls, "resource_type")
    }
    assert "AWS::EC2::VPCEndpoint" in taggable
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in taggable:
            continue
        tags = resource["Properties"].get("Tags")
        assert tags, logical_id
        keys = set(tags) if isinstance(tags, dict) else {t["Key"] for t in tags}
        assert {"sagemaker:environment-name", "sagemaker:environment-type"} <= keys, logical_id


def test_no_partition_literal(template):
    assert "arn:aws:" not in json.dumps(template)


def test_az_count_is_structure():
    for count in (2, 3):
        template = Template()
        env = add_environment(template)
        network = add_private_network(template, env, az_count=count, interface_endpoints=endpoint_specs(("Kms", "kms")))
        subnets = resources(template.to_dict(), "AWS::EC2::Subnet")
        private = sorted(k for k in subnets if k.startswith("Private"))
        assert len(private) == count == len(network.created_subnets)
        assert [subnets[s]["Properties"]["AvailabilityZone"]["Fn::Select"][0] for s in private] == list(range(count))
        assert len(template.parameters["PrivateSubnetCidrs"].Default.split(",")) == count
    with pytest.raises(ValueError):
        add_private_network(Template(), env, az_count=1, interface_endpoints=())


def test_every_parameter_is_in_one_form_group(template):
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    listed = [name for group in groups for name in group["Parameters"]]
    assert sorted(listed) == sorted(template["Parameters"])


@pytest.mark.parametrize(
    "builder,count",
    [(build_environment_template, 3), (build_target_network_template, 2)],
    ids=["environment-3", "target-network-2"],
)
def test_the_other_az_count_is_lint_clean_too(builder, count):
    from generator.lint import lint_text
    from generator.render import render_yaml

    assert lint_text(render_yaml(builder(az_count=count)), f"{builder.__name__}-{count}.yaml", ("us-east-1",)) == []
