"""Resource-level changes of a stack set update, against the registry schemas cfn-lint ships."""

from __future__ import annotations

import copy

from deploy.stacksets.resource_changes import CONDITIONAL, ChangeAction, resource_changes

BASE = {
    "Parameters": {
        "EnvName": {"Type": "String", "Default": "mlops"},
        "InstanceType": {"Type": "String", "Default": "ml.m5.large"},
        "KeyAlias": {"Type": "String", "Default": "alias/a"},
        "EnableCapture": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"]},
    },
    "Conditions": {"Capture": {"Fn::Equals": [{"Ref": "EnableCapture"}, "true"]}},
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"EnableKeyRotation": True},
        },
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "${EnvName}-data"}}},
        "CaptureBucket": {"Type": "AWS::S3::Bucket", "Condition": "Capture"},
        "EndpointConfig": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "KmsKeyId": {"Ref": "Key"},
                "ProductionVariants": [
                    {
                        "VariantName": "main",
                        "ModelName": "m",
                        "InitialInstanceCount": 1,
                        "InstanceType": {"Ref": "InstanceType"},
                    }
                ],
            },
        },
        "Endpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointConfigName": {"Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]},
                "Tags": [{"Key": "env", "Value": {"Ref": "EnvName"}}],
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "alarms"}},
    },
}


def changes(old=BASE, old_params=None, new=BASE, new_params=None):
    return {c.logical_id: c for c in resource_changes(old, old_params or {}, new, new_params or {})}


def test_the_same_template_and_values_change_nothing():
    assert changes() == {}


def test_added_and_removed_resources():
    new = copy.deepcopy(BASE)
    new["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
    del new["Resources"]["Topic"]
    found = changes(new=new)
    assert found["Queue"].action is ChangeAction.ADD and found["Queue"].type == "AWS::SQS::Queue"
    assert found["Topic"].action is ChangeAction.REMOVE and not found["Topic"].data_loss
    assert set(found) == {"Queue", "Topic"}


def test_an_updatable_property_modifies_without_replacement():
    new = copy.deepcopy(BASE)
    new["Resources"]["Topic"]["Properties"]["DisplayName"] = "alerts"
    (change,) = changes(new=new).values()
    assert (change.action, change.replacement, change.properties) == (ChangeAction.MODIFY, False, ("DisplayName",))


def test_a_parameter_change_marks_only_the_resources_that_use_it_and_create_only_means_replace():
    found = changes(new_params={"InstanceType": "ml.m5.xlarge"})
    # ProductionVariants is create-only for AWS::SageMaker::EndpointConfig: a new config.
    assert found["EndpointConfig"].replacement is True
    assert found["EndpointConfig"].properties == ("ProductionVariants[0].InstanceType",)
    # The endpoint refers to the replaced config's name: updated in place, at deploy time.
    assert found["Endpoint"].action is ChangeAction.MODIFY and found["Endpoint"].replacement is False
    assert found["Endpoint"].properties == ("EndpointConfigName",)
    assert set(found) == {"EndpointConfig", "Endpoint"}


def test_a_parameter_used_through_sub_replaces_a_bucket_and_that_is_data_loss():
    found = changes(new_params={"EnvName": "other"})
    assert found["Bucket"].replacement is True and found["Bucket"].data_loss
    assert found["Bucket"].properties == ("BucketName",)
    assert found["Endpoint"].replacement is False and found["Endpoint"].properties == ("Tags[0].Value",)
    assert "Topic" not in found and "Key" not in found


def test_the_old_value_is_the_default_when_none_was_given():
    assert changes(old_params={}, new_params={"InstanceType": "ml.m5.large"}) == {}


def test_a_condition_switched_by_a_parameter_adds_or_removes():
    assert changes(new_params={"EnableCapture": "true"})["CaptureBucket"].action is ChangeAction.ADD
    removed = changes(old_params={"EnableCapture": "true"})["CaptureBucket"]
    assert removed.action is ChangeAction.REMOVE and removed.data_loss  # a bucket without DeletionPolicy Retain


def test_retain_policies_mean_no_data_loss():
    old, new = copy.deepcopy(BASE), copy.deepcopy(BASE)
    old["Resources"]["Bucket"]["DeletionPolicy"] = "Retain"
    del new["Resources"]["Bucket"]
    assert not changes(old=old, new=new)["Bucket"].data_loss
    new = copy.deepcopy(BASE)
    new["Resources"]["Bucket"]["UpdateReplacePolicy"] = "Retain"
    found = changes(new=new, new_params={"EnvName": "x"})
    assert found["Bucket"].replacement is True and not found["Bucket"].data_loss


def test_a_value_known_only_at_deploy_time_makes_replacement_conditional():
    template = copy.deepcopy(BASE)
    template["Parameters"]["Flag"] = {"Type": "String"}  # no default, not given: unknown here
    template["Conditions"]["Big"] = {"Fn::Equals": [{"Ref": "Flag"}, "yes"]}
    new = copy.deepcopy(template)
    new["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"][0]["InstanceType"] = {
        "Fn::If": ["Big", "ml.m5.4xlarge", {"Ref": "InstanceType"}]
    }
    found = changes(old=template, new=new)
    assert found["EndpointConfig"].replacement == CONDITIONAL


def test_a_changed_type_replaces():
    new = copy.deepcopy(BASE)
    new["Resources"]["Topic"] = {"Type": "AWS::SQS::Queue"}
    change = changes(new=new)["Topic"]
    assert (change.action, change.replacement, change.type) == (ChangeAction.MODIFY, True, "AWS::SQS::Queue")


def test_json_and_line_shapes():
    change = changes(new_params={"InstanceType": "ml.m5.xlarge"})["EndpointConfig"]
    assert change.to_dict() == {
        "logical_id": "EndpointConfig",
        "type": "AWS::SageMaker::EndpointConfig",
        "action": "modify",
        "replacement": True,
        "properties": ["ProductionVariants[0].InstanceType"],
        "data_loss": False,
    }
    assert change.describe(3).startswith("~ EndpointConfig (replace) in 3 instances")


# --------------------------------------------------------------------------- in the plan

BUCKET_TEMPLATE = (
    "Parameters: {EnvName: {Type: String}, Suffix: {Type: String, Default: a}}\n"
    "Resources:\n"
    "  Data: {Type: 'AWS::S3::Bucket', Properties: {BucketName: !Sub '${EnvName}-data-${Suffix}-${AWS::AccountId}'}}\n"
)


def test_the_plan_shows_resource_changes_and_asks_before_data_loss(local_aws, workdir, capsys):
    from tests.test_deploy_e2e import run, self_managed, unique, write_manifest

    (workdir / "templates" / "bucket.yaml").write_text(BUCKET_TEMPLATE)
    name = unique("rc")
    dev = local_aws.account_id("ml-development")

    def manifest(suffix: str) -> str:
        item = self_managed(name, [dev], ["us-east-1"], parameters={"Suffix": suffix})
        return write_manifest(workdir, [{**item, "template": "templates/bucket.yaml"}])

    code, _, err = run(["apply", "--manifest", manifest("a")], capsys)
    assert code == 0, err
    path = manifest("b")
    code, doc, err = run(["plan", "--json", "--manifest", path], capsys)
    assert code == 0, err
    (stack_set,) = doc["stack_sets"]
    assert stack_set["resource_changes"] == [
        {
            "logical_id": "Data",
            "type": "AWS::S3::Bucket",
            "action": "modify",
            "replacement": True,
            "properties": ["BucketName"],
            "data_loss": True,
        }
    ]
    assert stack_set["instance_count"] == 1
    assert "~ Data (replace, DATA LOSS) in 1 instance [AWS::S3::Bucket: BucketName]" in err
    code, _, err = run(["apply", "--manifest", path], capsys)  # no terminal, no --yes: refused, nothing changed
    assert code == 2 and "DATA LOSS" in err and "--yes" in err
    described = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}["Suffix"] == "a"
    assert run(["apply", "--yes", "--manifest", path], capsys)[0] == 0
    assert run(["destroy", "--yes", "--manifest", path], capsys)[0] == 0
