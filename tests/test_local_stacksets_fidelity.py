"""The local AWS refuses or fails what AWS refuses or fails (issue 15), asserted directly with
boto3, independent of the deployer. Each test names the rule's source (see the patch comments)."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import MARKER_TEMPLATE

NAMED_ROLE = """\
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub 'fidelity-${AWS::Region}-%s'
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: 'sts:AssumeRole'}]
"""


def _name() -> str:
    return f"fid-{uuid.uuid4().hex[:8]}"


def _create(cfn, name: str, **extra) -> None:
    cfn.create_stack_set(
        StackSetName=name,
        TemplateBody=extra.pop("TemplateBody", MARKER_TEMPLATE),
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment=extra.pop("AutoDeployment", {"Enabled": True, "RetainStacksOnAccountRemoval": False}),
        Parameters=extra.pop("Parameters", [{"ParameterKey": "EnvName", "ParameterValue": name}]),
        **extra,
    )


def _deploy(cfn, name: str, ou: str) -> str:
    targets = {"OrganizationalUnitIds": [ou]}
    return cfn.create_stack_instances(StackSetName=name, DeploymentTargets=targets, Regions=["us-east-1"])[
        "OperationId"
    ]


def _code(caught) -> str:
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def cfn(local_aws):
    return local_aws.client("cloudformation")


def test_override_of_a_parameter_the_stack_set_lacks_is_refused(local_aws, cfn):
    """API reference, UpdateStackInstances.ParameterOverrides: only parameters specified in the StackSet."""
    name = _name()
    _create(cfn, name)
    with pytest.raises(ClientError) as caught:
        cfn.create_stack_instances(
            StackSetName=name,
            DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
            Regions=["us-east-1"],
            ParameterOverrides=[{"ParameterKey": "Size", "ParameterValue": "large"}],
        )
    assert _code(caught) == "ValidationError" and "Size" in str(caught.value)


def test_retain_stacks_on_account_removal_without_auto_deployment_is_refused(cfn):
    """API reference, AutoDeployment.RetainStacksOnAccountRemoval: "Specify only if Enabled is set to True." """
    with pytest.raises(ClientError) as caught:
        _create(cfn, _name(), AutoDeployment={"Enabled": False, "RetainStacksOnAccountRemoval": False})
    assert _code(caught) == "ValidationError"
    _create(cfn, _name(), AutoDeployment={"Enabled": False})  # alone it is accepted


def test_named_iam_without_the_capability_fails_the_instances(local_aws, cfn):
    """rain#455: CreateStackSet succeeds, the instances fail "Requires capabilities : [CAPABILITY_NAMED_IAM]"."""
    name = _name()
    _create(cfn, name, TemplateBody=NAMED_ROLE % name, Parameters=[])
    op = cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
        Regions=["us-east-1"],
    )["OperationId"]
    assert (
        cfn.describe_stack_set_operation(StackSetName=name, OperationId=op)["StackSetOperation"]["Status"] == "FAILED"
    )
    results = cfn.list_stack_set_operation_results(StackSetName=name, OperationId=op)["Summaries"]
    assert {r["StatusReason"] for r in results} == {"Requires capabilities : [CAPABILITY_NAMED_IAM]"}


def test_delegated_admin_call_as_is_refused_from_the_management_account_and_for_self_managed(cfn):
    """API reference, CreateStackSet.CallAs (registered delegated admin; SERVICE_MANAGED only);
    cdk-stacksets#265 for the message."""
    with pytest.raises(ClientError) as caught:
        _create(cfn, _name(), CallAs="DELEGATED_ADMIN")
    assert "Account used is not a delegated administrator" in str(caught.value)
    with pytest.raises(ClientError) as caught:
        cfn.create_stack_set(
            StackSetName=_name(), TemplateBody=MARKER_TEMPLATE, PermissionModel="SELF_MANAGED", CallAs="DELEGATED_ADMIN"
        )
    assert _code(caught) == "ValidationError"


def test_accounts_with_ous_need_an_account_filter_on_create(local_aws, cfn):
    """API reference, DeploymentTargets: AccountFilterType required on create with both; UNION is the default."""
    name = _name()
    _create(cfn, name)
    targets = {"OrganizationalUnitIds": [local_aws.ou_id("staging")], "Accounts": [local_aws.account_id("ml-staging")]}
    with pytest.raises(ClientError) as caught:
        cfn.create_stack_instances(StackSetName=name, DeploymentTargets=targets, Regions=["us-east-1"])
    assert "AccountFilterType should be specified" in str(caught.value)


def test_operations_list_eventually_and_queue_under_managed_execution(local_aws, cfn):
    """ListStackSetOperations is eventually consistent, DescribeStackSetOperation strongly; QUEUED
    under ManagedExecution (ManagedExecution.Active)."""
    name = _name()
    _create(cfn, name, ManagedExecution={"Active": True})
    targets = {"DeploymentTargets": {"OrganizationalUnitIds": [local_aws.ou_id("staging")]}, "Regions": ["us-east-1"]}
    local_aws.control("stacksets", list_lag=1, operation_polls=2)
    try:
        first = cfn.create_stack_instances(StackSetName=name, **targets)["OperationId"]
        second = cfn.update_stack_instances(StackSetName=name, **targets)["OperationId"]
        listed = [o["OperationId"] for o in cfn.list_stack_set_operations(StackSetName=name)["Summaries"]]
        assert first not in listed and second not in listed  # not visible yet
        describe = cfn.describe_stack_set_operation
        assert describe(StackSetName=name, OperationId=second)["StackSetOperation"]["Status"] == "QUEUED"
        assert describe(StackSetName=name, OperationId=first)["StackSetOperation"]["Status"] == "RUNNING"
        listed = [o["OperationId"] for o in cfn.list_stack_set_operations(StackSetName=name)["Summaries"]]
        assert listed == [second, first]
    finally:
        local_aws.control("stacksets", list_lag=0, operation_polls=0)


def test_list_operations_reports_failed_instance_counts(local_aws, cfn):
    """botocore StackSetOperationSummary.StatusDetails.FailedStackInstancesCount."""
    name = _name()
    _create(cfn, name, TemplateBody=NAMED_ROLE % name, Parameters=[])
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
        Regions=["us-east-1"],
    )
    (summary,) = cfn.list_stack_set_operations(StackSetName=name)["Summaries"]
    assert summary["StatusDetails"]["FailedStackInstancesCount"] == 1


def test_drift_reports_changed_resources_and_failed_detections(local_aws, cfn):
    """StackSetDriftDetectionDetails: DRIFTED / PARTIAL_SUCCESS / FAILED, not always IN_SYNC."""
    name = _name()
    staging = local_aws.account_id("ml-staging")
    _create(cfn, name)
    cfn.create_stack_instances(
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
        Regions=["us-east-1"],
    )
    local_aws.client("ssm", staging).put_parameter(
        Name=f"/{name}/marker-us-east-1-small", Value="x", Type="String", Overwrite=True
    )
    op = cfn.detect_stack_set_drift(StackSetName=name)["OperationId"]
    details = cfn.describe_stack_set_operation(StackSetName=name, OperationId=op)["StackSetOperation"]
    assert details["StackSetDriftDetectionDetails"]["DriftStatus"] == "DRIFTED"
    local_aws.control("stacksets", drift_fail_accounts=staging)
    try:
        op = cfn.detect_stack_set_drift(StackSetName=name)["OperationId"]
    finally:
        local_aws.control("stacksets", drift_fail_accounts="none")
    operation = cfn.describe_stack_set_operation(StackSetName=name, OperationId=op)["StackSetOperation"]
    assert operation["Status"] == "FAILED"
    assert operation["StackSetDriftDetectionDetails"]["DriftDetectionStatus"] == "FAILED"


def test_organizations_accounts_carry_state_not_the_retired_status(local_aws):
    """botocore Account.Status: "will be retired on September 9, 2026" — use State."""
    accounts = local_aws.client("organizations").list_accounts()["Accounts"]
    assert accounts and all("Status" not in a and a["State"] == "ACTIVE" for a in accounts)


def _arn(cfn, name: str) -> str:
    return cfn.describe_stack_set(StackSetName=name)["StackSet"]["StackSetARN"]


def test_auto_deployment_depends_on_takes_existing_service_managed_stack_set_arns_without_cycles(local_aws, cfn):
    """API reference, AutoDeployment.DependsOn: "A list of StackSet ARNs that this StackSet depends on
    for auto-deployment operations" (existing, this account and Region, service-managed, no cycle:
    stricter where AWS documents nothing); the DevOps blog: up to 10 per StackSet."""
    base, other = _name(), _name()
    _create(cfn, base)
    base_arn = _arn(cfn, base)
    self_managed = _name()
    cfn.create_stack_set(
        StackSetName=self_managed,
        TemplateBody=MARKER_TEMPLATE,
        PermissionModel="SELF_MANAGED",
        Parameters=[{"ParameterKey": "EnvName", "ParameterValue": "x"}],
    )
    missing = base_arn.replace(f"stackset/{base}:", "stackset/nosuchset:")
    foreign_account = base_arn.replace(f":{local_aws.management_account_id}:", ":999999999999:")
    other_region = base_arn.replace(":us-east-1:", ":eu-west-1:")
    refusals = {
        "not an ARN": [base],
        "missing": [missing],
        "other account": [foreign_account],
        "other region": [other_region],
        "self-managed": [_arn(cfn, self_managed)],
        "twice": [base_arn, base_arn],
    }
    for label, depends_on in refusals.items():
        with pytest.raises(ClientError) as caught:
            _create(
                cfn,
                other,
                AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False, "DependsOn": depends_on},
            )
        assert _code(caught) == "ValidationError", label
        assert "DependsOn" in str(caught.value), label
    with pytest.raises(ClientError):
        cfn.describe_stack_set(StackSetName=other)  # nothing was created
    _create(
        cfn, other, AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False, "DependsOn": [base_arn]}
    )
    auto = cfn.describe_stack_set(StackSetName=other)["StackSet"]["AutoDeployment"]
    assert auto["DependsOn"] == [base_arn]
    # base -> other -> base would be a cycle; base -> base depends on itself.
    for depends_on in ([_arn(cfn, other)], [base_arn]):
        with pytest.raises(ClientError) as caught:
            cfn.update_stack_set(
                StackSetName=base,
                UsePreviousTemplate=True,
                Parameters=[{"ParameterKey": "EnvName", "UsePreviousValue": True}],
                AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False, "DependsOn": depends_on},
            )
        assert _code(caught) == "ValidationError"
    assert "DependsOn" not in cfn.describe_stack_set(StackSetName=base)["StackSet"]["AutoDeployment"]
    with pytest.raises(ClientError) as caught:  # still named by other's DependsOn (stricter: undocumented)
        cfn.delete_stack_set(StackSetName=base)
    assert _code(caught) == "ValidationError" and other in str(caught.value)
    cfn.delete_stack_set(StackSetName=other)
    cfn.delete_stack_set(StackSetName=base)


def test_stale_requests_retried_after_a_later_operation_and_on_demand(local_aws, cfn):
    """botocore StaleRequestException: "Another operation has been performed on this StackSet since
    the specified operation was performed." A retried OperationId after a later operation is stale;
    ``stale_requests=N`` makes the next N requests meet someone else's operation."""
    name = _name()
    _create(cfn, name)
    targets = {"DeploymentTargets": {"OrganizationalUnitIds": [local_aws.ou_id("staging")]}, "Regions": ["us-east-1"]}
    cfn.create_stack_instances(StackSetName=name, OperationId="first", **targets)
    assert cfn.create_stack_instances(StackSetName=name, OperationId="first", **targets)["OperationId"] == "first"
    cfn.update_stack_instances(StackSetName=name, OperationId="second", **targets)
    with pytest.raises(ClientError) as caught:
        cfn.create_stack_instances(StackSetName=name, OperationId="first", **targets)
    assert _code(caught) == "StaleRequestException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    assert local_aws.control("stacksets", stale_requests=1)["stale_requests"] == 1
    try:
        override = [{"ParameterKey": "EnvName", "ParameterValue": "changed"}]
        with pytest.raises(ClientError) as caught:
            cfn.update_stack_instances(StackSetName=name, OperationId="third", ParameterOverrides=override, **targets)
        assert _code(caught) == "StaleRequestException"
        listed = cfn.list_stack_set_operations(StackSetName=name)["Summaries"]
        assert len(listed) == 3 and listed[0]["OperationId"] not in ("first", "second", "third")
        account = local_aws.account_id("ml-staging")
        instance = cfn.describe_stack_instance(
            StackSetName=name, StackInstanceAccount=account, StackInstanceRegion="us-east-1"
        )["StackInstance"]
        assert not instance.get("ParameterOverrides")  # the refused request changed nothing
        cfn.update_stack_instances(StackSetName=name, OperationId="third", ParameterOverrides=override, **targets)
    finally:
        local_aws.control("stacksets", stale_requests=0)


def test_a_stack_deleted_out_of_band_stays_current_until_drift_detection_finds_it(local_aws, cfn):
    """StackInstance.Status speaks of the last operation ("CURRENT: The stack is currently up to
    date with the StackSet"): a stack deleted in its account changes no instance status. Drift
    detection finds it: the instance DRIFTED, its resources DELETED (AWS documents nothing for
    this case; stricter than IN_SYNC)."""
    name = _name()
    staging = local_aws.account_id("ml-staging")
    _create(cfn, name)
    _deploy(cfn, name, local_aws.ou_id("staging"))
    (summary,) = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    member = local_aws.client("cloudformation", staging)
    member.delete_stack(StackName=summary["StackId"])
    (summary,) = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    assert summary["Status"] == "CURRENT"
    op = cfn.detect_stack_set_drift(StackSetName=name)["OperationId"]
    details = cfn.describe_stack_set_operation(StackSetName=name, OperationId=op)["StackSetOperation"]
    assert details["StackSetDriftDetectionDetails"]["DriftStatus"] == "DRIFTED"
    (summary,) = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    assert summary["DriftStatus"] == "DRIFTED"
    drifts = cfn.list_stack_instance_resource_drifts(
        StackSetName=name, StackInstanceAccount=staging, StackInstanceRegion="us-east-1", OperationId=op
    )["Summaries"]
    assert drifts and {d["StackResourceDriftStatus"] for d in drifts} == {"DELETED"}


def test_an_instance_stack_that_fails_to_create_is_deleted(local_aws, cfn):
    """botocore, CreateStack OnFailure: when a StackSet deploys a stack instance that fails to create,
    "the CreateStack call overrides the default setting and sets the value of OnFailure to DELETE"."""
    name, account = _name(), local_aws.account_id("ml-staging")
    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/marker", "Type": "String", "Value": "x"},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "DependsOn": "Marker",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "ec2.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "PermissionsBoundary": f"arn:aws:iam::{account}:policy/{name}-absent",
                },
            },
        }
    }
    _create(cfn, name, TemplateBody=json.dumps(template), Parameters=[], Capabilities=["CAPABILITY_IAM"])
    _deploy(cfn, name, local_aws.ou_id("staging"))
    (summary,) = cfn.list_stack_set_operations(StackSetName=name)["Summaries"]
    assert summary["StatusDetails"]["FailedStackInstancesCount"] == 1
    member = local_aws.client("cloudformation", account)
    assert not [s for s in member.describe_stacks()["Stacks"] if s["StackName"].startswith(f"StackSet-{name}-")]
    pages = member.get_paginator("list_stacks").paginate()
    statuses = {s["StackStatus"] for page in pages for s in page["StackSummaries"] if name in s["StackName"]}
    assert statuses == {"DELETE_COMPLETE"}
    with pytest.raises(ClientError) as gone:
        local_aws.client("ssm", account).get_parameter(Name=f"/{name}/marker")
    assert _code(gone) == "ParameterNotFound"
