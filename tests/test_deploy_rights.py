"""The deploying roles may do what CloudFormation's handlers call for their templates, and no more.

The needed permissions are computed here from the registry schemas cfn-lint ships (every
handler of every resource type of the templates each role deploys), independently of
``generator.deploy_rights``; each is evaluated against the role's rendered policies.
"""

from __future__ import annotations

import json
from importlib import resources as package_data

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from generator.registry import TEMPLATES
from tests.policy_eval import ACCOUNT, PARTITION, Request, Resolver, evaluate

IAM_REFERENCE = json.loads((package_data.files("cfnlint") / "data" / "AdditionalSpecs" / "Policies.json").read_text())
# (template, role resource, policy title prefix, templates it deploys, product prefix)
ROLES = {
    "execution": ("stackset-execution-role", "StackSetExecutionRole", "mlops-", "StackSet-"),
    "launch": ("servicecatalog-launch-role", "ServiceCatalogLaunchRole", "mlops-", "SC-"),
    "model-deployment": ("target-account-roles", "ModelDeploymentRole", "mlops-model-", "StackSet-"),
}
DEPLOYS = {
    "execution": (
        "environment",
        "target-network",
        "target-account-roles",
        "model-deploy",
        "endpoint-invoke-role",
        "endpoint-consumer-policy",
        "servicecatalog-launch-role",
    ),
    "launch": (
        "environment",
        "target-account-roles",
        "model-deploy",
        "mlops-model-build-project",
        "mlops-multi-account-project",
    ),
    "model-deployment": ("model-deploy",),
}
BOUNDARY = f"arn:{PARTITION}:iam::{ACCOUNT}:policy/mlops-permissions-boundary"
ALIASES = {"efs": "elasticfilesystem"}


def _needed(kind: str) -> set[str]:
    types = {r["Type"] for name in DEPLOYS[kind] for r in TEMPLATES[name]().to_dict()["Resources"].values()}
    needed = set()
    for resource_type in types:
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema.get("handlers", {})
        for handler in ("create", "read", "update", "delete", "list"):
            for permission in handlers.get(handler, {}).get("permissions", []):
                service, name = permission.split(":", 1)
                service = ALIASES.get(service, service)
                # An API name that is no IAM action (s3:PutBucketReplication) no policy can grant.
                if name.lower() in IAM_REFERENCE.get(service, {}).get("Actions", {}):
                    needed.add(f"{service}:{name}")
    return needed


def _policies(kind: str) -> dict:
    template_name, role, _, _ = ROLES[kind]
    template = TEMPLATES[template_name]().to_dict()
    resolver = Resolver(template, {"DevelopmentAccountId": "444455556666"} if kind == "model-deployment" else {})
    statements = []
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and name.startswith(f"{role}Rights"):
            statements += resolver.resolve(resource["Properties"]["PolicyDocument"])["Statement"]
    return {"Statement": statements}


def _resource(action: str, prefix: str, stack: str) -> str:
    service, name = action.split(":", 1)
    kinds = IAM_REFERENCE[service]["Actions"][name.lower()].get("Resources", [])
    if not kinds:
        return "*"
    kind = kinds[0]
    if action == "iam:CreateServiceLinkedRole":
        return f"arn:{PARTITION}:iam::{ACCOUNT}:role/aws-service-role/sagemaker.amazonaws.com/Thing"
    if action == "iam:PassRole" and stack == "StackSet-" and prefix == "mlops-model-":
        return f"arn:{PARTITION}:iam::{ACCOUNT}:role/ModelExecutionRole"  # the one role it may pass
    if service == "iam":
        return f"arn:{PARTITION}:iam::{ACCOUNT}:{kind}/{prefix}thing"
    if service == "s3":
        return f"arn:{PARTITION}:s3:::{stack.lower()}thing" + ("/key" if kind == "object" else "")
    known = {k.lower(): v for k, v in IAM_REFERENCE[service]["Resources"].items()}
    if kind.lower() not in known:
        return "*"
    fmt = known[kind.lower()]["ARNFormats"][0]
    arn = fmt.replace("${Partition}", PARTITION).replace("${Region}", "us-east-1").replace("${Account}", ACCOUNT)
    return arn.replace(".*", "thing").replace("${", "x{")


@pytest.mark.parametrize("kind", sorted(ROLES))
def test_every_handler_permission_is_allowed(kind):
    document = _policies(kind)
    _, _, prefix, stack = ROLES[kind]
    context = {
        "iam:PermissionsBoundary": BOUNDARY,
        "iam:PolicyARN": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/mlops-x",
        # The templates' models run in the VPC: the preventive denies see these keys.
        "sagemaker:VpcSubnets": "subnet-1",
        "sagemaker:VpcSecurityGroupIds": "sg-1",
        # The only role the templates pass goes to SageMaker (AWS::SageMaker::Model, ::Domain, ...).
        "iam:PassedToService": "sagemaker.amazonaws.com",
    }
    forbidden = {"iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"}
    missing = sorted(
        action
        for action in _needed(kind) - forbidden
        if evaluate(document, Request(action, _resource(action, prefix, stack), context=context)) != "Allow"
    )
    assert not missing, f"{kind} role misses {len(missing)} handler permissions: {missing}"


@pytest.mark.parametrize("kind", sorted(ROLES))
def test_no_escalation(kind):
    document = _policies(kind)
    _, role, prefix, _ = ROLES[kind]
    product_role = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{prefix}thing"
    own_name = {"execution": "AWSCloudFormationStackSetExecutionRole", "launch": "mlops-servicecatalog-launch"}
    own = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{own_name.get(kind, 'mlops-model-deployment')}"
    admin = f"arn:{PARTITION}:iam::aws:policy/AdministratorAccess"
    refused = [
        Request("iam:CreateRole", product_role),  # no boundary
        Request("iam:CreateRole", product_role, context={"iam:PermissionsBoundary": admin}),
        Request("iam:DeleteRolePermissionsBoundary", product_role, context={"iam:PermissionsBoundary": BOUNDARY}),
        Request("iam:PutRolePolicy", own, context={"iam:PermissionsBoundary": BOUNDARY}),
        Request("iam:UpdateAssumeRolePolicy", own),
        Request(
            "iam:AttachRolePolicy", product_role, context={"iam:PermissionsBoundary": BOUNDARY, "iam:PolicyARN": admin}
        ),
        Request("iam:CreatePolicyVersion", BOUNDARY),
        Request(
            "iam:CreateRole",
            f"arn:{PARTITION}:iam::{ACCOUNT}:role/other",
            context={"iam:PermissionsBoundary": BOUNDARY},
        ),
        Request("s3:PutBucketPolicy", f"arn:{PARTITION}:s3:::someone-elses-bucket"),
    ]
    allowed = [r for r in refused if evaluate(document, r) == "Allow"]
    assert not allowed, [(r.action, r.resource) for r in allowed]


def test_every_role_carries_the_product_boundary():
    for name, builder in TEMPLATES.items():
        for title, resource in builder().to_dict()["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                boundary = resource["Properties"].get("PermissionsBoundary", {}).get("Fn::Sub", "")
                assert boundary.startswith("arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/"), (name, title)
                assert boundary.endswith("permissions-boundary"), (name, title)


def test_the_boundary_stops_escalation():
    template = TEMPLATES["permissions-boundary"]().to_dict()
    document = Resolver(template).resolve(template["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"])
    assert evaluate(document, Request("iam:CreatePolicyVersion", BOUNDARY)) == "Deny"
    assert evaluate(document, Request("iam:DeleteRolePermissionsBoundary", "*")) == "Deny"
    assert evaluate(document, Request("iam:CreateRole", f"arn:{PARTITION}:iam::{ACCOUNT}:role/mlops-x")) == "Deny"
    assert evaluate(document, Request("sagemaker:CreateModel", "*")) == "Allow"


def test_the_boundary_admits_every_product_action_and_no_permissions_management_of_the_named_services():
    """Services outside the boundary's few whole ones are named action by action: a role may not manage
    Identity Center permission sets, portfolio shares or other services' resource policies, even when its
    own policies would let it; every action a product role or handler needs is still admitted."""
    from generator.boundary import product_actions
    from generator.deploy_rights import is_iam_action

    template = TEMPLATES["permissions-boundary"]().to_dict()
    document = Resolver(template).resolve(template["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"])
    outside = [
        "sso:CreatePermissionSet",
        "sso:AttachManagedPolicyToPermissionSet",
        "servicecatalog:CreatePortfolioShare",
        "sns:AddPermission",
        "ssm:PutResourcePolicy",
        "codebuild:PutResourcePolicy",
        "elasticfilesystem:PutFileSystemPolicy",
        "vpc-lattice:PutAuthPolicy",
    ]
    assert [a for a in outside if evaluate(document, Request(a, "*")) != "ImplicitDeny"] == []
    named = [
        a for a in product_actions() if not a.startswith(("iam:", "lambda:")) and "*" not in a and is_iam_action(a)
    ]
    assert [a for a in named if evaluate(document, Request(a, "*")) != "Allow"] == []
