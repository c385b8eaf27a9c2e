"""IAM on the local AWS refuses what does not exist, and CloudFormation roles carry their managed policies
(boto3 against the server; ``localaws/patches/iam.py``)."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def account(local_aws) -> str:
    return local_aws.account_id("ml-staging")


@pytest.fixture
def iam(local_aws, account):
    return local_aws.client("iam", account)


def _policy(iam) -> str:
    return iam.create_policy(PolicyName=_name("boundary"), PolicyDocument=json.dumps(DOCUMENT))["Policy"]["Arn"]


def _error(call) -> dict:
    with pytest.raises(ClientError) as raised:
        call()
    return {**raised.value.response["Error"], "Status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def test_create_role_refuses_a_boundary_that_does_not_exist_and_creates_nothing(iam, account):
    missing = f"arn:aws:iam::{account}:policy/mlops-permissions-boundary-{uuid.uuid4().hex[:6]}"
    name = _name("role")
    error = _error(lambda: iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, PermissionsBoundary=missing))
    assert (error["Code"], error["Status"]) == ("NoSuchEntity", 404)
    assert error["Message"] == f"Scope ARN: {missing} does not exist or is not attachable."
    assert _error(lambda: iam.get_role(RoleName=name))["Code"] == "NoSuchEntity"


def test_create_role_takes_an_existing_customer_or_aws_managed_boundary(iam, account):
    for boundary in (_policy(iam), "arn:aws:iam::aws:policy/PowerUserAccess"):
        name = _name("role")
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, PermissionsBoundary=boundary)
        assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    made_up = "arn:aws:iam::aws:policy/NoSuchAwsManagedPolicyAtAll"
    error = _error(
        lambda: iam.create_role(RoleName=_name("role"), AssumeRolePolicyDocument=TRUST, PermissionsBoundary=made_up)
    )
    assert error["Code"] == "NoSuchEntity"


def test_put_role_permissions_boundary_refuses_a_missing_policy_and_keeps_the_boundary(iam, account):
    boundary = _policy(iam)
    name = _name("role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, PermissionsBoundary=boundary)
    missing = f"arn:aws:iam::{account}:policy/gone"
    error = _error(lambda: iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=missing))
    assert (error["Code"], error["Status"]) == ("NoSuchEntity", 404)
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary


def test_create_user_refuses_a_boundary_that_does_not_exist(iam, account):
    name = _name("user")
    missing = f"arn:aws:iam::{account}:policy/gone"
    error = _error(lambda: iam.create_user(UserName=name, PermissionsBoundary=missing))
    assert error["Code"] == "NoSuchEntity"
    assert _error(lambda: iam.get_user(UserName=name))["Code"] == "NoSuchEntity"


def test_a_role_holds_at_most_ten_managed_policies(iam):
    name = _name("role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    for _ in range(10):
        iam.attach_role_policy(RoleName=name, PolicyArn=_policy(iam))
    error = _error(lambda: iam.attach_role_policy(RoleName=name, PolicyArn=_policy(iam)))
    assert (error["Code"], error["Message"]) == ("LimitExceeded", "Cannot exceed quota for PoliciesPerRole: 10")


# --- AWS::IAM::Role --------------------------------------------------------------------


def _template(boundary=None, managed=("Rights",), inline="s3:ListAllMyBuckets") -> str:
    role = {
        "AssumeRolePolicyDocument": json.loads(TRUST),
        "ManagedPolicyArns": [{"Ref": m} if m == "Rights" else m for m in managed],
        "Policies": [
            {
                "PolicyName": "Inline",
                "PolicyDocument": {**DOCUMENT, "Statement": [{**DOCUMENT["Statement"][0], "Action": inline}]},
            }
        ],
    }
    if boundary:
        role["PermissionsBoundary"] = boundary
    return json.dumps(
        {
            "Resources": {
                "Rights": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": DOCUMENT}},
                "Role": {"Type": "AWS::IAM::Role", "Properties": role},
            },
            "Outputs": {"RoleName": {"Value": {"Ref": "Role"}}, "Rights": {"Value": {"Ref": "Rights"}}},
        }
    )


def _outputs(cloudformation, stack: str) -> dict:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _attached(iam, role: str) -> set[str]:
    return {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}


def test_cloudformation_role_attaches_updates_and_detaches_its_managed_policies(local_aws, account, iam):
    cloudformation = local_aws.client("cloudformation", account)
    stack = _name("roles")
    boundary = _policy(iam)
    aws_managed = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    cloudformation.create_stack(
        StackName=stack, TemplateBody=_template(boundary, ("Rights", aws_managed)), Capabilities=["CAPABILITY_IAM"]
    )
    outputs = _outputs(cloudformation, stack)
    role = outputs["RoleName"]
    assert _attached(iam, role) == {outputs["Rights"], aws_managed}
    assert iam.get_role(RoleName=role)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary

    other_boundary = _policy(iam)
    cloudformation.update_stack(
        StackName=stack,
        TemplateBody=_template(other_boundary, ("Rights",), inline="s3:GetObject"),
        Capabilities=["CAPABILITY_IAM"],
    )
    assert _attached(iam, role) == {outputs["Rights"]}
    assert iam.get_role(RoleName=role)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == other_boundary
    inline = iam.get_role_policy(RoleName=role, PolicyName="Inline")["PolicyDocument"]
    assert inline["Statement"][0]["Action"] == "s3:GetObject"

    cloudformation.delete_stack(StackName=stack)
    assert _error(lambda: iam.get_role(RoleName=role))["Code"] == "NoSuchEntity"


@pytest.mark.parametrize("missing_property", ["PermissionsBoundary", "ManagedPolicyArns"])
def test_cloudformation_role_fails_on_a_policy_that_does_not_exist_and_no_role_is_left(
    local_aws, account, iam, missing_property
):
    cloudformation = local_aws.client("cloudformation", account)
    missing = f"arn:aws:iam::{account}:policy/{_name('absent')}"
    body = _template(missing) if missing_property == "PermissionsBoundary" else _template(None, ("Rights", missing))
    before = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    error = _error(
        lambda: cloudformation.create_stack(
            StackName=_name("roles"), TemplateBody=body, Capabilities=["CAPABILITY_IAM"]
        )
    )
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("Resource Role failed: Resource handler returned message: ")
    assert missing in error["Message"] and "does not exist or is not attachable." in error["Message"]
    assert {r["RoleName"] for r in iam.list_roles()["Roles"]} == before


def test_delete_policy_refuses_a_policy_still_attached(iam):
    name, arn = _name("role"), _policy(iam)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    error = _error(lambda: iam.delete_policy(PolicyArn=arn))
    assert (error["Code"], error["Status"]) == ("DeleteConflict", 409)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


def test_delete_policy_refuses_a_policy_that_is_a_roles_permissions_boundary(iam):
    name, arn = _name("role"), _policy(iam)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, PermissionsBoundary=arn)
    error = _error(lambda: iam.delete_policy(PolicyArn=arn))
    assert (error["Code"], error["Status"]) == ("DeleteConflict", 409)
    iam.delete_role_permissions_boundary(RoleName=name)
    iam.delete_policy(PolicyArn=arn)
    assert _error(lambda: iam.get_policy(PolicyArn=arn))["Code"] == "NoSuchEntity"


def _policy_template(action: str, roles: list[str]) -> str:
    document = {**DOCUMENT, "Statement": [{**DOCUMENT["Statement"][0], "Action": action}]}
    return json.dumps(
        {
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": json.loads(TRUST)}},
                "Rights": {
                    "Type": "AWS::IAM::ManagedPolicy",
                    "Properties": {"PolicyDocument": document, "Roles": [{"Ref": r} for r in roles]},
                },
            },
            "Outputs": {"RoleName": {"Value": {"Ref": "Role"}}, "Rights": {"Value": {"Ref": "Rights"}}},
        }
    )


def test_cloudformation_managed_policy_is_updated_and_deleted_with_its_stack(local_aws, account, iam):
    cloudformation = local_aws.client("cloudformation", account)
    stack = _name("policies")
    cloudformation.create_stack(StackName=stack, TemplateBody=_policy_template("s3:ListAllMyBuckets", ["Role"]))
    outputs = _outputs(cloudformation, stack)
    role, arn = outputs["RoleName"], outputs["Rights"]
    assert _attached(iam, role) == {arn}

    cloudformation.update_stack(StackName=stack, TemplateBody=_policy_template("s3:GetObject", []))
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"][0]["Action"] == "s3:GetObject" and policy["DefaultVersionId"] == "v2"
    assert _attached(iam, role) == set()

    cloudformation.update_stack(StackName=stack, TemplateBody=_policy_template("s3:GetObject", ["Role"]))
    cloudformation.delete_stack(StackName=stack)
    assert _error(lambda: iam.get_policy(PolicyArn=arn))["Code"] == "NoSuchEntity"
    assert _error(lambda: iam.get_role(RoleName=role))["Code"] == "NoSuchEntity"
