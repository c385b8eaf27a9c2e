"""Issue 14's smaller items, on the rendered templates.

The model package group and ECR repository policies name the target accounts by their
root ARNs in every partition and carry no empty ``Condition``; the target roles resolve the
S3 endpoint id only where the role exists (the primary region); the multi-account project
refuses China; the workload security group's one wide egress rule is HTTPS, with no route
out of the private subnets unless NAT is on.
"""

from __future__ import annotations

import pytest

from generator.registry import TEMPLATES
from tests.policy_eval import Resolver
from tests.template_props import policy_documents, resources

RENDERED = {name: builder().to_dict() for name, builder in TEMPLATES.items()}
ENV = RENDERED["environment"]
TARGETS = "222222222222,333333333333"


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_no_policy_renders_an_empty_condition(name):
    # Every property, documents under Fn::If included (a resource's Condition is a string).
    empty = [
        (logical_id, path)
        for logical_id, resource in RENDERED[name]["Resources"].items()
        for path, node in _walk(resource.get("Properties", {}))
        if path and path[-1] == "Condition" and node == {}
    ]
    assert not empty, empty


SHARED = (
    ("ModelPackageGroup", "ModelPackageGroupPolicy"),
    ("ModelImageRepository", "RepositoryPolicyText"),
)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
@pytest.mark.parametrize(("resource", "prop"), SHARED)
def test_registry_policies_name_target_accounts_by_root_arn_in_each_partition(resource, prop, partition):
    resolver = Resolver(ENV, {"TargetAccountIds": TARGETS}, partition=partition)
    policy = resolver.resolve(ENV["Resources"][resource]["Properties"][prop])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {
        "AWS": [f"arn:{partition}:iam::222222222222:root", f"arn:{partition}:iam::333333333333:root"]
    }
    assert "Condition" not in statement


def test_every_account_principal_of_the_environment_is_a_root_arn():
    resolver = Resolver(ENV, {"TargetAccountIds": TARGETS})
    for logical_id, _, policy in policy_documents(ENV):
        for statement in resolver.resolve(policy).get("Statement", []):
            principal = statement.get("Principal")
            accounts = principal.get("AWS", []) if isinstance(principal, dict) else []
            for value in accounts if isinstance(accounts, list) else [accounts]:
                assert not str(value).isdigit(), (logical_id, statement.get("Sid"), value)


def test_target_roles_resolve_the_s3_endpoint_id_only_in_the_primary_region():
    roles = RENDERED["target-account-roles"]
    # An SSM-typed parameter is resolved in every region of the stack set, before conditions.
    assert not roles["Parameters"]["S3VpcEndpointId"]["Type"].startswith("AWS::SSM::")
    users = {
        logical_id
        for logical_id, resource in roles["Resources"].items()
        for _, node in _walk(resource)
        if isinstance(node, str) and "S3VpcEndpointId" in node or node == {"Ref": "S3VpcEndpointId"}
    }
    assert users == {"ModelExecutionRole"}
    assert roles["Resources"]["ModelExecutionRole"]["Condition"] == "IsPrimaryRegion"
    resolved = Resolver(roles).resolve(roles["Resources"]["ModelExecutionRole"]["Properties"]["Policies"])
    assert "{{resolve:ssm:/mlops/staging/network/s3-endpoint-id}}" in str(resolved)


def test_multi_account_project_refuses_the_china_partition():
    rules = RENDERED["mlops-multi-account-project"]["Rules"]
    (assertion,) = rules["StackSetActionsExistInThisPartition"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Partition"}, "aws-cn"]}]}


@pytest.mark.parametrize("name", ["environment", "target-network"])
def test_workload_egress_is_https_and_no_private_route_leaves_the_vpc_without_nat(name):
    template = RENDERED[name]
    workload = resources(template, "AWS::EC2::SecurityGroup")["WorkloadSecurityGroup"]
    for rule in workload["Properties"]["SecurityGroupEgress"]:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    for logical_id, route in resources(template, "AWS::EC2::Route").items():
        if route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0":
            assert route.get("Condition") == "CreateNatGateway", logical_id
