"""The local AWS's StackSet patches, through boto3 against the server (the API's shapes).

Each test states the AWS behaviour the deployer relies on and that moto 5.2.5 lacks.
"""

from __future__ import annotations

import json
import uuid

import botocore.exceptions
import pytest
import yaml

from tests.moto_stack import ssm_parameter_template

TEMPLATE = ssm_parameter_template(
    {"Prefix": {"Type": "String"}, "Env": {"Type": "String"}, "Colour": {"Type": "String", "Default": "blue"}},
    name={"Fn::Sub": "/${Prefix}/value"},
    value={"Fn::Sub": "${Env}-${Colour}"},
)


def _template(version: str | None = None) -> str:
    body = json.loads(json.dumps(TEMPLATE))
    if version:
        body["Resources"]["Value"]["Properties"]["Value"] = {"Fn::Sub": "${Env}-${Colour}-" + version}
    return yaml.safe_dump(body)


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _params(**values) -> list[dict]:
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def _ssm_value(local_aws, account: str, prefix: str, region: str | None = None) -> str | None:
    client = local_aws.client("ssm", account=account, region=region)
    try:
        return client.get_parameter(Name=f"/{prefix}/value")["Parameter"]["Value"]
    except client.exceptions.ParameterNotFound:
        return None


@pytest.fixture
def cfn(local_aws):
    return local_aws.client("cloudformation")


def _service_managed(cfn, name, prefix, **extra):
    cfn.create_stack_set(
        StackSetName=name,
        TemplateBody=_template(),
        PermissionModel="SERVICE_MANAGED",
        # Colour is overridden per instance: AWS overrides only parameters the stack set has.
        Parameters=_params(Prefix=prefix, Env="base", Colour="blue"),
        **extra,
    )


def _operation(cfn, name, operation_id):
    return cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)["StackSetOperation"]


def test_parameter_overrides_are_stored_merged_and_returned(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    staging = local_aws.ou_id("staging")
    op = cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [staging]},
        Regions=["us-east-1"],
        ParameterOverrides=_params(Colour="red"),
    )["OperationId"]
    assert _operation(cfn, name, op)["Status"] == "SUCCEEDED"
    account = local_aws.account_id("ml-staging")
    instance = cfn.describe_stack_instance(
        StackSetName=name, StackInstanceAccount=account, StackInstanceRegion="us-east-1"
    )["StackInstance"]
    assert instance["ParameterOverrides"] == _params(Colour="red")
    assert (
        instance["OrganizationalUnitId"] == staging
        and instance["Status"] == "CURRENT"
        and instance["LastOperationId"] == op
    )
    # the stack got the stack set's parameters with the override on top
    assert _ssm_value(local_aws, account, prefix) == "base-red"
    summary = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    assert [(s["Account"], s["OrganizationalUnitId"], s["StackInstanceStatus"]["DetailedStatus"]) for s in summary] == [
        (account, staging, "SUCCEEDED")
    ]
    # the instance's stack is visible in its account, named as AWS names it
    stacks = local_aws.client("cloudformation", account=account).describe_stacks()["Stacks"]
    assert any(stack["StackName"].startswith(f"StackSet-{name}-") for stack in stacks)

    # UpdateStackInstances without ParameterOverrides keeps them
    cfn.update_stack_instances(
        StackSetName=name, DeploymentTargets={"OrganizationalUnitIds": [staging]}, Regions=["us-east-1"]
    )
    assert cfn.describe_stack_instance(
        StackSetName=name, StackInstanceAccount=account, StackInstanceRegion="us-east-1"
    )["StackInstance"]["ParameterOverrides"] == _params(Colour="red")
    # a new value replaces the override and reaches the resource
    cfn.update_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [staging]},
        Regions=["us-east-1"],
        ParameterOverrides=_params(Colour="green"),
    )
    assert _ssm_value(local_aws, account, prefix) == "base-green"
    # an empty list reverts every override to the stack set's value
    cfn.update_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [staging]},
        Regions=["us-east-1"],
        ParameterOverrides=[],
    )
    instance = cfn.describe_stack_instance(
        StackSetName=name, StackInstanceAccount=account, StackInstanceRegion="us-east-1"
    )["StackInstance"]
    assert instance.get("ParameterOverrides", []) == []
    assert _ssm_value(local_aws, account, prefix) == "base-blue"


def test_update_stack_set_updates_the_resources_of_existing_instances(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    production = local_aws.ou_id("production")
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [production]},
        Regions=["us-east-1"],
        ParameterOverrides=_params(Colour="red"),
    )
    accounts = local_aws.accounts_in("production")
    assert len(accounts) == 2
    op = cfn.update_stack_set(
        StackSetName=name, TemplateBody=_template("v2"), Parameters=_params(Prefix=prefix, Env="prod", Colour="blue")
    )["OperationId"]
    assert _operation(cfn, name, op)["Status"] == "SUCCEEDED"
    assert [_ssm_value(local_aws, account, prefix) for account in accounts] == ["prod-red-v2", "prod-red-v2"]
    assert cfn.describe_stack_set(StackSetName=name)["StackSet"]["Parameters"] == _params(
        Prefix=prefix, Env="prod", Colour="blue"
    )

    # an update aimed at one account: that one is updated, the others are OUTDATED
    op = cfn.update_stack_set(
        StackSetName=name,
        TemplateBody=_template("v3"),
        UsePreviousTemplate=False,
        Parameters=[
            {"ParameterKey": "Prefix", "UsePreviousValue": True},
            {"ParameterKey": "Env", "UsePreviousValue": True},
            {"ParameterKey": "Colour", "UsePreviousValue": True},
        ],
        DeploymentTargets={
            "OrganizationalUnitIds": [production],
            "Accounts": [accounts[0]],
            "AccountFilterType": "INTERSECTION",
        },
        Regions=["us-east-1"],
    )["OperationId"]
    statuses = {s["Account"]: s["Status"] for s in cfn.list_stack_instances(StackSetName=name)["Summaries"]}
    assert statuses == {accounts[0]: "CURRENT", accounts[1]: "OUTDATED"}
    assert [_ssm_value(local_aws, account, prefix) for account in accounts] == ["prod-red-v3", "prod-red-v2"]
    results = cfn.list_stack_set_operation_results(StackSetName=name, OperationId=op)["Summaries"]
    assert [(r["Account"], r["Status"]) for r in results] == [(accounts[0], "SUCCEEDED")]


def test_ou_targets_expand_recursively_filter_and_skip_the_management_account(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    root = local_aws.state["root_id"]
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={
            "OrganizationalUnitIds": [root],
            "Accounts": [local_aws.account_id("ml-staging")],
            "AccountFilterType": "DIFFERENCE",
        },
        Regions=["us-east-1"],
    )
    pages = cfn.get_paginator("list_stack_instances").paginate(StackSetName=name)
    deployed = {summary["Account"] for page in pages for summary in page["Summaries"]}
    # Every account of the Organization as it is now (other tests on this shared local AWS create and
    # move accounts), the management account excluded.
    organizations = local_aws.client("organizations")
    members = {
        account["Id"]
        for page in organizations.get_paginator("list_accounts").paginate()
        for account in page["Accounts"]
        if account["Id"] != local_aws.management_account_id
    }
    assert deployed == members - {local_aws.account_id("ml-staging")}
    assert local_aws.management_account_id not in deployed
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cfn.create_stack_instances(
            StackSetName=name,
            DeploymentTargets={"OrganizationalUnitIds": [root], "AccountFilterType": "UNION"},
            Regions=["us-east-1"],
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_delete_stack_instances_honours_ou_targets_and_retain_stacks(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    staging, production = local_aws.ou_id("staging"), local_aws.ou_id("production")
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [staging, production]},
        Regions=["us-east-1", "eu-west-1"],
    )
    assert len(cfn.list_stack_instances(StackSetName=name)["Summaries"]) == 6
    assert sorted(cfn.describe_stack_set(StackSetName=name)["StackSet"]["OrganizationalUnitIds"]) == sorted(
        [staging, production]
    )
    op = cfn.delete_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [production]},
        Regions=["us-east-1", "eu-west-1"],
        RetainStacks=False,
    )["OperationId"]
    left = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    assert {(s["Account"], s["Region"]) for s in left} == {
        (local_aws.account_id("ml-staging"), r) for r in ("us-east-1", "eu-west-1")
    }
    assert _ssm_value(local_aws, local_aws.accounts_in("production")[0], prefix) is None
    assert _operation(cfn, name, op)["RetainStacks"] is False
    assert cfn.describe_stack_set(StackSetName=name)["StackSet"]["OrganizationalUnitIds"] == [staging]

    cfn.delete_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [staging]},
        Regions=["us-east-1", "eu-west-1"],
        RetainStacks=True,
    )
    assert cfn.list_stack_instances(StackSetName=name)["Summaries"] == []
    assert _ssm_value(local_aws, local_aws.account_id("ml-staging"), prefix) == "base-blue"  # the stack was kept
    cfn.delete_stack_set(StackSetName=name)


def test_managed_execution_auto_deployment_and_capabilities_are_kept(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(
        cfn,
        name,
        prefix,
        ManagedExecution={"Active": True},
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack_set = cfn.describe_stack_set(StackSetName=name)["StackSet"]
    assert stack_set["ManagedExecution"] == {"Active": True}
    assert stack_set["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stack_set["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert "OrganizationalUnitIds" not in stack_set or stack_set["OrganizationalUnitIds"] == []
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("development")]},
        Regions=["us-east-1", "us-west-2"],
    )
    targets = cfn.list_stack_set_auto_deployment_targets(StackSetName=name)["Summaries"]
    assert targets == [{"OrganizationalUnitId": local_aws.ou_id("development"), "Regions": ["us-east-1", "us-west-2"]}]
    cfn.update_stack_set(StackSetName=name, UsePreviousTemplate=True, ManagedExecution={"Active": False})
    stack_set = cfn.describe_stack_set(StackSetName=name)["StackSet"]
    assert stack_set["ManagedExecution"] == {"Active": False} and stack_set["Regions"] == ["us-east-1", "us-west-2"]
    summary = next(s for s in cfn.list_stack_sets()["Summaries"] if s["StackSetName"] == name)
    assert summary["ManagedExecution"] == {"Active": False} and summary["PermissionModel"] == "SERVICE_MANAGED"


def test_detect_stack_set_drift_succeeds_with_instances_in_sync(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("production")]},
        Regions=["us-east-1"],
    )
    assert (
        cfn.describe_stack_set(StackSetName=name)["StackSet"]["StackSetDriftDetectionDetails"]["DriftStatus"]
        == "NOT_CHECKED"
    )
    op = cfn.detect_stack_set_drift(StackSetName=name)["OperationId"]
    operation = _operation(cfn, name, op)
    assert operation["Action"] == "DETECT_DRIFT" and operation["Status"] == "SUCCEEDED"
    details = cfn.describe_stack_set(StackSetName=name)["StackSet"]["StackSetDriftDetectionDetails"]
    assert details["DriftStatus"] == "IN_SYNC" and details["DriftDetectionStatus"] == "COMPLETED"
    assert (
        details["TotalStackInstancesCount"] == details["InSyncStackInstancesCount"] == 2
        and details["DriftedStackInstancesCount"] == 0
    )
    listed = next(s for s in cfn.list_stack_sets()["Summaries"] if s["StackSetName"] == name)
    assert listed["DriftStatus"] == "IN_SYNC" and "LastDriftCheckTimestamp" in listed
    summaries = cfn.list_stack_instances(StackSetName=name, Filters=[{"Name": "DRIFT_STATUS", "Values": "IN_SYNC"}])[
        "Summaries"
    ]
    assert len(summaries) == 2 and all("LastDriftCheckTimestamp" in s for s in summaries)


def test_organizations_access_activate_describe_and_required(local_aws, cfn):
    assert cfn.describe_organizations_access()["Status"] == "ENABLED"  # seeded as trusted access
    name = _name()
    _service_managed(cfn, name, _name("p"))
    try:
        cfn.deactivate_organizations_access()
        assert cfn.describe_organizations_access()["Status"] == "DISABLED"
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            cfn.create_stack_instances(
                StackSetName=name,
                DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
                Regions=["us-east-1"],
            )
        assert "organizations access" in caught.value.response["Error"]["Message"]
    finally:
        cfn.activate_organizations_access()
    assert cfn.describe_organizations_access()["Status"] == "ENABLED"
    enabled = local_aws.client("organizations").list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    assert "member.org.stacksets.cloudformation.amazonaws.com" in {item["ServicePrincipal"] for item in enabled}


def test_a_resource_error_is_a_failed_instance_of_a_failed_operation(local_aws, cfn):
    """A named IAM role in two regions of one account: AWS fails the second instance, not the call."""
    name, role = _name(), _name("role")
    body = yaml.safe_dump(
        {
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "RoleName": role,
                        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                    },
                }
            }
        }
    )
    cfn.create_stack_set(
        StackSetName=name, TemplateBody=body, PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    op = cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("development")]},
        Regions=["us-east-1", "eu-west-1"],
    )["OperationId"]
    operation = _operation(cfn, name, op)
    assert operation["Status"] == "FAILED" and "1 of 2" in operation["StatusReason"]
    results = {
        r["Region"]: r for r in cfn.list_stack_set_operation_results(StackSetName=name, OperationId=op)["Summaries"]
    }
    assert results["us-east-1"]["Status"] == "SUCCEEDED"
    assert results["eu-west-1"]["Status"] == "FAILED" and role in results["eu-west-1"]["StatusReason"]
    failed = cfn.list_stack_instances(StackSetName=name, Filters=[{"Name": "DETAILED_STATUS", "Values": "FAILED"}])[
        "Summaries"
    ]
    assert [(s["Region"], s["Status"]) for s in failed] == [("eu-west-1", "OUTDATED")]
    # with a tolerance of one failure the same outcome is a SUCCEEDED operation
    op = cfn.update_stack_set(
        StackSetName=name, UsePreviousTemplate=True, OperationPreferences={"FailureToleranceCount": 1}
    )["OperationId"]
    assert _operation(cfn, name, op)["Status"] == "SUCCEEDED"


def test_operation_id_is_a_client_token(local_aws, cfn):
    name, prefix = _name(), _name("p")
    _service_managed(cfn, name, prefix)
    request = {
        "StackSetName": name,
        "DeploymentTargets": {"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
        "Regions": ["us-east-1"],
        "OperationId": str(uuid.uuid4()),
    }
    first = cfn.create_stack_instances(**request)["OperationId"]
    again = cfn.create_stack_instances(**request)["OperationId"]
    assert first == again == request["OperationId"]
    assert len(cfn.list_stack_set_operations(StackSetName=name)["Summaries"]) == 1
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cfn.create_stack_instances(**{**request, "Regions": ["eu-west-1"]})
    assert caught.value.response["Error"]["Code"] == "OperationIdAlreadyExistsException"


def test_operations_can_run_for_a_while_and_then_block_others(local_aws, cfn):
    """Opt-in: an operation stays RUNNING for N polls; meanwhile AWS refuses a second one
    unless ManagedExecution is active."""
    name, managed, prefix = _name(), _name(), _name("p")
    _service_managed(cfn, name, prefix)
    _service_managed(cfn, managed, prefix + "m", ManagedExecution={"Active": True})
    targets = {"DeploymentTargets": {"OrganizationalUnitIds": [local_aws.ou_id("staging")]}, "Regions": ["us-east-1"]}
    assert local_aws.control("stacksets", operation_polls=2)["operation_polls"] == 2
    try:
        op = cfn.create_stack_instances(StackSetName=name, **targets)["OperationId"]
        assert cfn.list_stack_set_operations(StackSetName=name)["Summaries"][0]["Status"] == "RUNNING"
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            cfn.update_stack_set(StackSetName=name, UsePreviousTemplate=True)
        assert caught.value.response["Error"]["Code"] == "OperationInProgressException"
        with pytest.raises(botocore.exceptions.ClientError):
            cfn.delete_stack_set(StackSetName=name)
        assert [_operation(cfn, name, op)["Status"] for _ in range(3)] == ["RUNNING", "SUCCEEDED", "SUCCEEDED"]
        assert "EndTimestamp" in _operation(cfn, name, op)
        cfn.update_stack_set(StackSetName=name, UsePreviousTemplate=True)  # free again

        cfn.create_stack_instances(StackSetName=managed, **targets)
        cfn.update_stack_set(StackSetName=managed, UsePreviousTemplate=True)  # queued, not refused
    finally:
        local_aws.control("stacksets", operation_polls=0)


def test_list_stack_instances_pages_like_aws(local_aws, cfn):
    name, prefix = _name(), _name("p")
    cfn.create_stack_set(StackSetName=name, TemplateBody=_template(), Parameters=_params(Prefix=prefix, Env="e"))
    accounts = [f"{n:012d}" for n in range(500000000000, 500000000130)]
    cfn.create_stack_instances(StackSetName=name, Accounts=accounts, Regions=["us-east-1"])
    first = cfn.list_stack_instances(StackSetName=name)
    assert len(first["Summaries"]) == 100 and "NextToken" in first
    pages = list(
        cfn.get_paginator("list_stack_instances").paginate(StackSetName=name, PaginationConfig={"PageSize": 50})
    )
    assert [len(page["Summaries"]) for page in pages] == [50, 50, 30]
    assert sorted(s["Account"] for page in pages for s in page["Summaries"]) == accounts
    only = cfn.list_stack_instances(
        StackSetName=name, StackInstanceAccount=accounts[7], StackInstanceRegion="us-east-1"
    )["Summaries"]
    assert [s["Account"] for s in only] == [accounts[7]]
    # a SELF_MANAGED instance's stack carries AWS's name too. The made-up account has no
    # OrganizationAccountAccessRole to assume (the local STS refuses, as AWS would): read it as
    # that account through moto's account header instead.
    member = local_aws.client("cloudformation")
    member.meta.events.register(
        "before-sign.cloudformation.DescribeStacks",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", accounts[7]),
    )
    stacks = member.describe_stacks()["Stacks"]
    assert [stack["StackId"] for stack in stacks if stack["StackName"].startswith(f"StackSet-{name}-")] == [
        only[0]["StackId"]
    ]


def test_auto_deployment_follows_accounts_between_ous(local_aws, cfn):
    """An account moved into a target OU gets the instances; moved out, it loses them."""
    name, kept, prefix = _name(), _name(), _name("p")
    _service_managed(cfn, name, prefix, AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
    cfn.create_stack_set(
        StackSetName=kept,
        TemplateBody=_template(),
        PermissionModel="SERVICE_MANAGED",
        Parameters=_params(Prefix=prefix + "k", Env="base"),
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": True},
    )
    staging = local_aws.ou_id("staging")
    for stack_set in (name, kept):
        cfn.create_stack_instances(
            StackSetName=stack_set,
            DeploymentTargets={"OrganizationalUnitIds": [staging]},
            Regions=["us-east-1", "eu-west-1"],
        )
    org = local_aws.client("organizations")
    try:
        newcomer = org.create_account(AccountName="newcomer", Email="newcomer@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        assert newcomer not in {
            s["Account"] for s in cfn.list_stack_instances(StackSetName=name)["Summaries"]
        }  # created at the root
        org.move_account(AccountId=newcomer, SourceParentId=local_aws.state["root_id"], DestinationParentId=staging)
        added = [
            (s["Region"], s["OrganizationalUnitId"])
            for s in cfn.list_stack_instances(StackSetName=name, StackInstanceAccount=newcomer)["Summaries"]
        ]
        assert sorted(added) == [("eu-west-1", staging), ("us-east-1", staging)]
        assert _ssm_value(local_aws, newcomer, prefix) == "base-blue"
        org.move_account(AccountId=newcomer, SourceParentId=staging, DestinationParentId=local_aws.ou_id("development"))
        assert cfn.list_stack_instances(StackSetName=name, StackInstanceAccount=newcomer)["Summaries"] == []
        assert _ssm_value(local_aws, newcomer, prefix) is None  # stacks removed with the instances
        assert cfn.list_stack_instances(StackSetName=kept, StackInstanceAccount=newcomer)["Summaries"] == []
        assert _ssm_value(local_aws, newcomer, prefix + "k") == "base-blue"  # RetainStacksOnAccountRemoval
        actions = [op["Action"] for op in cfn.list_stack_set_operations(StackSetName=name)["Summaries"]]
        assert actions == ["DELETE", "CREATE", "CREATE"]  # newest first, as AWS lists them
    finally:
        local_aws.reset()  # the shared Organization goes back to the seeded one


def test_generated_iam_names_fit_iam_limits(local_aws, cfn):
    name = _name("a-rather-long-stack-set-name")
    body = yaml.safe_dump(
        {
            "Resources": {
                "ARoleWithAFairlyLongLogicalId": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
                }
            }
        }
    )
    cfn.create_stack_set(
        StackSetName=name, TemplateBody=body, PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_IAM"]
    )
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("development")]},
        Regions=["us-east-1"],
    )
    stack_id = cfn.list_stack_instances(StackSetName=name)["Summaries"][0]["StackId"]
    role = local_aws.client("cloudformation", account="ml-development").describe_stack_resource(
        StackName=stack_id, LogicalResourceId="ARoleWithAFairlyLongLogicalId"
    )
    role_name = role["StackResourceDetail"]["PhysicalResourceId"]
    assert len(role_name) <= 64 and role_name.startswith("StackSet-a-rather") and "-ARoleWith" in role_name, role_name


def test_a_missing_ssm_parameter_fails_with_the_aws_message(local_aws):
    body = {
        "Parameters": {
            "Subnets": {
                "Type": "AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>",
                "Default": "/absent/subnet-ids",
            }
        },
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    }
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        local_aws.client("cloudformation").create_stack(StackName=_name("ssm"), TemplateBody=json.dumps(body))
    assert (
        caught.value.response["Error"]["Message"]
        == "Unable to fetch parameters [/absent/subnet-ids] from parameter store for this account."
    )


# ---------------------------------------------------------------- SageMaker


def test_cloudformation_honours_sagemaker_physical_names(local_aws):
    name = _name("ep")
    body = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ModelName": name,
                    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
                    "PrimaryContainer": {"Image": "img"},
                },
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "EndpointConfigName": name,
                    "ProductionVariants": [
                        {
                            "VariantName": "main",
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                        }
                    ],
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": name,
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                },
            },
        }
    }
    local_aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))
    sagemaker = local_aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointConfigName"] == name and endpoint["EndpointStatus"] == "InService"
    assert sagemaker.describe_model(ModelName=name)["ModelName"] == name


def test_cloudformation_creates_model_package_groups_with_their_policy(local_aws):
    name = _name("registry")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Org",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "sagemaker:DescribeModelPackageGroup",
                "Resource": "*",
            }
        ],
    }
    body = {
        "Resources": {
            "Group": {
                "Type": "AWS::SageMaker::ModelPackageGroup",
                "Properties": {"ModelPackageGroupName": name, "ModelPackageGroupPolicy": policy},
            }
        },
        "Outputs": {
            "Arn": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]}},
            "Ref": {"Value": {"Ref": "Group"}},
        },
    }
    cfn = local_aws.client("cloudformation", account="ml-development")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))
    sagemaker = local_aws.client("sagemaker", account="ml-development")
    arn = sagemaker.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}
    assert outputs == {"Arn": arn, "Ref": arn}
    assert json.loads(sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"]) == policy
    cfn.delete_stack(StackName=name)
    with pytest.raises(botocore.exceptions.ClientError):
        sagemaker.describe_model_package_group(ModelPackageGroupName=name)


def test_model_package_group_policy_round_trip_and_errors(local_aws):
    sagemaker = local_aws.client("sagemaker")
    name = _name("group")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)
    assert (
        caught.value.response["Error"]["Code"] == "ValidationException"
        and "Cannot find Model Package Group" in caught.value.response["Error"]["Message"]
    )
    arn = sagemaker.create_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)
    assert caught.value.response["Error"]["Message"] == f"Cannot find resource policy for: {arn}"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                    "Action": "sagemaker:DescribeModelPackageGroup",
                    "Resource": arn,
                }
            ],
        }
    )
    assert (
        sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy=policy)[
            "ModelPackageGroupArn"
        ]
        == arn
    )
    assert sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"] == policy
    with pytest.raises(botocore.exceptions.ClientError):
        sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy="not json")
    sagemaker.delete_model_package_group_policy(ModelPackageGroupName=name)
    with pytest.raises(botocore.exceptions.ClientError):
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)


def test_invoke_endpoint_checks_the_callers_account(local_aws):
    """An endpoint of one account is not found from another, as in AWS."""
    name = _name("ep")
    sagemaker = local_aws.client("sagemaker", account="ml-production-1")
    sagemaker.create_model(
        ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/x", PrimaryContainer={"Image": "img"}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "main", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert (
        local_aws.client("sagemaker-runtime", account="ml-production-1")
        .invoke_endpoint(EndpointName=name, Body=b"{}")["Body"]
        .read()
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        local_aws.client("sagemaker-runtime", account="ml-production-2").invoke_endpoint(EndpointName=name, Body=b"{}")
    assert (
        caught.value.response["Error"]["Message"]
        == f"Endpoint {name} of account {local_aws.account_id('ml-production-2')} not found."
    )


# ---------------------------------------------------------------- the patch set


def test_every_patch_module_is_applied_by_the_server(local_aws):
    import pkgutil
    import urllib.request

    import localaws.patches as patches

    modules = sorted(info.name for info in pkgutil.iter_modules(patches.__path__) if not info.name.startswith("_"))
    with urllib.request.urlopen(f"{local_aws.endpoint_url}/_local/health") as response:
        health = json.loads(response.read())
    assert health["patches"] == modules and "stacksets" in modules and "sagemaker" in modules


def test_control_endpoint_rejects_unknown_patches_and_bad_values(local_aws):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as caught:
        local_aws.control("no-such-patch", x=1)
    assert caught.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as caught:
        local_aws.control("stacksets", operation_polls=-1)
    assert caught.value.code == 400
    assert local_aws.control("stacksets")["operation_polls"] == 0
