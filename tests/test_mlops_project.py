"""The MLOps multi-account project template: pipeline shape, trigger, storage, least
privilege of its roles, and the build script run for real against a stand-in ``aws``."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest
import yaml
from troposphere import AWSObject

from generator import mlops_project, model_deploy
from generator.render import render_yaml
from tests.template_props import as_list, resources, statements, template_fixtures
from tests.test_model_deploy import assert_buckets_private_retained_tls_only_and_logged, kms_bucket

STAGES = [
    ("Source", "Source", "S3"),
    ("Build", "Build", "CodeBuild"),
    ("DeployStaging", "Deploy", "CloudFormationStackSet"),
    ("ApproveProduction", "Approval", "Manual"),
    ("DeployProduction", "Deploy", "CloudFormationStackInstances"),
]


template, rendered = template_fixtures(mlops_project.build_mlops_multi_account_project_template)


def the_one(rendered: dict, type_: str) -> tuple[str, dict]:
    found = resources(rendered, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def getatt(logical_id: str, attribute: str = "Arn") -> dict:
    return {"Fn::GetAtt": [logical_id, attribute]}


def actions(rendered: dict) -> dict[str, dict]:
    _, pipeline = the_one(rendered, "AWS::CodePipeline::Pipeline")
    return {stage["Name"]: stage["Actions"][0] for stage in pipeline["Properties"]["Stages"]}


# --- Parameters -------------------------------------------------------------------------


def test_takes_the_parameters_sagemaker_projects_pass(rendered):
    params = rendered["Parameters"]
    for name in ("SageMakerProjectName", "SageMakerProjectId"):
        assert params[name]["Type"] == "String" and "Default" not in params[name], name
    for name in ("StagingDeploymentTargets", "ProductionDeploymentTargets"):
        assert "Default" not in params[name], f"{name} must be given"


@pytest.mark.parametrize(
    "value, ok",
    [
        ("111111111111", True),
        ("111111111111,222222222222", True),
        ("ou-ab12-abcd1234", True),
        ("r-ab12,ou-ab12-abcd1234", True),
        ("111111111111, 222222222222", False),
        ("11111111111", False),
        ("", False),
    ],
)
def test_deployment_targets_accept_accounts_and_ous_only(rendered, value, ok):
    import re

    pattern = rendered["Parameters"]["StagingDeploymentTargets"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


# --- Pipeline ---------------------------------------------------------------------------


def test_stages_and_action_types_in_order(rendered):
    _, pipeline = the_one(rendered, "AWS::CodePipeline::Pipeline")
    stages = pipeline["Properties"]["Stages"]
    assert [len(stage["Actions"]) for stage in stages] == [1] * len(STAGES)
    found = [
        (s["Name"], s["Actions"][0]["ActionTypeId"]["Category"], s["Actions"][0]["ActionTypeId"]["Provider"])
        for s in stages
    ]
    assert found == STAGES
    for stage in stages:
        assert stage["Actions"][0]["ActionTypeId"]["Owner"] == "AWS"


def test_source_is_the_encrypted_artifacts_bucket_and_does_not_poll(rendered):
    bucket_id, _ = kms_bucket(rendered)
    source = actions(rendered)["Source"]["Configuration"]
    assert source["S3Bucket"] == {"Ref": bucket_id}
    assert source["S3ObjectKey"] == {"Ref": "SourceObjectKey"}
    assert source["PollForSourceChanges"] == "false", "approval events start the pipeline, not polling"


def test_artifacts_flow_from_source_through_build_to_both_deploys(rendered):
    a = actions(rendered)
    (source_out,) = [o["Name"] for o in a["Source"]["OutputArtifacts"]]
    assert [i["Name"] for i in a["Build"]["InputArtifacts"]] == [source_out]
    (build_out,) = [o["Name"] for o in a["Build"]["OutputArtifacts"]]
    build_id, build = the_one(rendered, "AWS::CodeBuild::Project")
    assert a["Build"]["Configuration"]["ProjectName"] == {"Ref": build_id}
    produced = set(yaml.safe_load(build["Properties"]["Source"]["BuildSpec"])["artifacts"]["files"])
    staging, prod = a["DeployStaging"]["Configuration"], a["DeployProduction"]["Configuration"]
    for reference in (staging["TemplatePath"], staging["Parameters"], prod["ParameterOverrides"]):
        artifact, _, path = reference.partition("::")
        assert artifact == build_out and path in produced, reference
    for name in ("DeployStaging", "DeployProduction"):
        assert [i["Name"] for i in a[name]["InputArtifacts"]] == [build_out]


def test_staging_stack_set_and_production_instances_target_the_same_stack_set(rendered):
    a = actions(rendered)
    staging, prod = a["DeployStaging"]["Configuration"], a["DeployProduction"]["Configuration"]
    assert staging["StackSetName"] == prod["StackSetName"]
    assert staging["DeploymentTargets"] == {"Ref": "StagingDeploymentTargets"}
    assert prod["DeploymentTargets"] == {"Ref": "ProductionDeploymentTargets"}
    assert staging["Regions"] == prod["Regions"]
    assert staging["PermissionModel"] == {"Ref": "PermissionModel"}
    for key in ("AdministrationRoleArn", "ExecutionRoleName"):
        condition, _, absent = staging[key]["Fn::If"]
        assert condition == mlops_project.SELF_MANAGED and absent == {"Ref": "AWS::NoValue"}, key
    assert rendered["Conditions"][mlops_project.SELF_MANAGED] == {
        "Fn::Equals": [{"Ref": "PermissionModel"}, "SELF_MANAGED"]
    }


def test_artifact_store_is_kms_encrypted_with_the_projects_key(rendered):
    key_id, key = the_one(rendered, "AWS::KMS::Key")
    bucket_id, _ = kms_bucket(rendered)
    _, pipeline = the_one(rendered, "AWS::CodePipeline::Pipeline")
    store = pipeline["Properties"]["ArtifactStore"]
    assert store == {
        "Type": "S3",
        "Location": {"Ref": bucket_id},
        "EncryptionKey": {"Type": "KMS", "Id": getatt(key_id)},
    }
    assert key["Properties"]["EnableKeyRotation"] is True
    _, build = the_one(rendered, "AWS::CodeBuild::Project")
    assert build["Properties"]["EncryptionKey"] == getatt(key_id)
    _, log_group = the_one(rendered, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["KmsKeyId"] == getatt(key_id)


def test_artifacts_bucket_is_encrypted_with_the_projects_key(rendered):
    key_id, _ = the_one(rendered, "AWS::KMS::Key")
    _, bucket = kms_bucket(rendered)
    default = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": getatt(key_id)}


def test_buckets_are_private_retained_tls_only_and_access_logged(rendered, build_project):
    assert_buckets_private_retained_tls_only_and_logged(rendered)
    assert_buckets_private_retained_tls_only_and_logged(build_project)


# --- Trigger ----------------------------------------------------------------------------


def test_approval_of_a_package_of_the_projects_group_starts_the_pipeline(rendered):
    pipeline_id, _ = the_one(rendered, "AWS::CodePipeline::Pipeline")
    _, rule = the_one(rendered, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"]["ModelApprovalStatus"] == ["Approved"]
    (group,) = pattern["detail"]["ModelPackageGroupName"]
    condition, given, environment_group = group["Fn::If"]
    assert (given, environment_group) == (
        {"Ref": "ModelPackageGroupName"},
        {"Fn::Sub": mlops_project.ENVIRONMENT_GROUP_NAME},
    )
    assert rendered["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageGroupName"}, ""]}]}
    (target,) = rule["Properties"]["Targets"]
    text, variables = target["Arn"]["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:codepipeline:${AWS::Region}:${AWS::AccountId}:${Pipeline}"
    assert variables == {"Pipeline": {"Ref": pipeline_id}}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    (statement,) = rendered["Resources"][role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["codepipeline:StartPipelineExecution"]
    assert statement["Resource"] == [target["Arn"]], "the trigger may start this pipeline only"


def test_default_group_is_the_environments_shared_registry_group():
    model_registry = pytest.importorskip("generator.model_registry")
    assert model_registry.group_name().to_dict() == {"Fn::Sub": mlops_project.ENVIRONMENT_GROUP_NAME}


# --- Roles ------------------------------------------------------------------------------


def test_no_wildcard_actions_in_any_allow(rendered):
    found = list(statements(rendered))
    assert len(found) > 10
    for logical_id, path, statement in found:
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id} {path}: {action}"
            assert "NotAction" not in statement


def test_star_resources_only_where_aws_offers_no_resource_level_permissions(rendered):
    for logical_id, path, statement in statements(rendered):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        if path == "KeyPolicy":
            continue  # "*" in a key policy means this key
        assert as_list(statement["Action"]) in (["sagemaker:ListModelPackages"], ["cloudformation:CreateStackSet"]), (
            f"{logical_id}: {statement}"
        )
        if statement["Action"] == ["cloudformation:CreateStackSet"]:
            assert statement["Condition"] == {
                "ArnEqualsIfExists": {
                    "cloudformation:RoleArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${StackSetAdministrationRoleName}"
                    }
                }
            }


def test_pass_role_only_for_the_administration_role_and_only_to_cloudformation(rendered):
    passing = [(lid, s) for lid, _, s in statements(rendered) if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    logical_id, statement = passing[0]
    assert logical_id == "PipelineRole"
    assert statement["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${StackSetAdministrationRoleName}"}
    ]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


def test_each_role_is_trusted_by_its_one_service_for_this_account_only(rendered):
    expected = {
        "PipelineRole": "codepipeline.amazonaws.com",
        "BuildRole": "codebuild.amazonaws.com",
        "ApprovalTriggerRole": "events.amazonaws.com",
    }
    roles = resources(rendered, "AWS::IAM::Role")
    assert set(roles) == set(expected)
    for logical_id, role in roles.items():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": [expected[logical_id]]}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_pipeline_may_drive_only_the_projects_stack_set_and_the_model_deploy_types(rendered):
    (statement,) = [s for lid, _, s in statements(rendered) if s.get("Sid") == "DeployProjectStackSet"]
    assert all(a.startswith("cloudformation:") for a in statement["Action"])
    assert (
        "cloudformation:UpdateStackSet" in statement["Action"]
        and "cloudformation:CreateStackInstances" in statement["Action"]
    )
    assert "cloudformation:DeleteStackSet" not in statement["Action"]
    texts = [r["Fn::Sub"][0] if isinstance(r["Fn::Sub"], list) else r["Fn::Sub"] for r in statement["Resource"]]
    assert any(t.endswith(":stackset/${StackSet}:*") for t in texts)
    assert any(t.endswith(":stackset-target/${StackSet}:*") for t in texts)
    deploy_types = {r["Type"] for r in model_deploy.build_model_deploy_template().to_dict()["Resources"].values()}
    granted = {t.rsplit("type/resource/", 1)[1] for t in texts if "type/resource/" in t}
    assert granted == {t.replace("::", "-") for t in deploy_types}


def test_build_reads_only_the_projects_model_packages(rendered):
    (statement,) = [s for lid, _, s in statements(rendered) if s.get("Sid") == "DescribeProjectModelPackages"]
    texts = [r["Fn::Sub"][0] for r in statement["Resource"]]
    assert texts == [
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/${Group}/*",
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package-group/${Group}",
    ]


def test_every_taggable_resource_carries_project_and_environment_tags(template, rendered):
    taggable = [r.title for r in template.resources.values() if isinstance(r, AWSObject) and "Tags" in r.props]
    assert len(taggable) >= 8
    for logical_id in taggable:
        tags = {t["Key"]: t["Value"] for t in rendered["Resources"][logical_id]["Properties"]["Tags"]}
        assert tags["sagemaker:project-name"] == {"Ref": "SageMakerProjectName"}, logical_id
        assert tags["sagemaker:project-id"] == {"Ref": "SageMakerProjectId"}, logical_id
        assert tags["sagemaker:environment-name"] == {"Ref": "EnvName"}, logical_id


def test_rendered_yaml_has_no_hard_coded_partition(template):
    assert "arn:aws:" not in render_yaml(template)


def test_lint_clean_through_the_generator_command(tmp_path):
    from generator.__main__ import main

    assert main(["--out", str(tmp_path), "--jobs", "1", "--region", "us-east-1", "mlops-multi-account-project"]) == 0


# --- The build script, run --------------------------------------------------------------


def _run_build(tmp_path, listed_arn: str, with_template: bool = True):
    """Run the buildspec's script in ``tmp_path`` with an ``aws`` that lists ``listed_arn``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_aws = bin_dir / "aws"
    fake_aws.write_text(f'#!/bin/bash\necho "$@" > "{tmp_path}/aws-args"\necho "{listed_arn}"\n')
    fake_aws.chmod(fake_aws.stat().st_mode | stat.S_IEXEC)
    work = tmp_path / "src"
    work.mkdir()
    if with_template:
        (work / mlops_project.TEMPLATE_FILE).write_text("Resources: {}\n")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MODEL_PACKAGE_GROUP_NAME": "churn",
        "TARGET_ENV_NAME": "mlops",
        "PROJECT_NAME": "churn",
        "PROJECT_ID": "p-abc123",
        "STAGING_INSTANCE_TYPE": "ml.m5.large",
        "PROD_INSTANCE_TYPE": "ml.c5.xlarge",
    }
    (script,) = yaml.safe_load(mlops_project.buildspec())["phases"]["build"]["commands"]
    result = subprocess.run(
        [shutil.which("bash"), "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    return result, work


def _as_dict(path) -> dict:
    return {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(path.read_text())}


def test_build_writes_stack_set_parameters_for_the_latest_approved_package(tmp_path):
    arn = "arn:aws:sagemaker:us-east-1:111111111111:model-package/churn/7"
    result, work = _run_build(tmp_path, arn)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "aws-args").read_text().split()
    assert args[:2] == ["sagemaker", "list-model-packages"]
    for flag, value in (
        ("--model-package-group-name", "churn"),
        ("--model-approval-status", "Approved"),
        ("--sort-order", "Descending"),
    ):
        assert args[args.index(flag) + 1] == value
    staging = _as_dict(work / mlops_project.STAGING_PARAMETERS_FILE)
    assert staging == {
        "EnvName": "mlops",
        "EnvType": "staging",
        "InstanceType": "ml.m5.large",
        "ModelPackageArn": arn,
        "SageMakerProjectName": "churn",
        "SageMakerProjectId": "p-abc123",
        "SubnetIds": "/mlops/staging/" + model_deploy.SUBNET_IDS_SSM_SUFFIX,
        "WorkloadSecurityGroupId": "/mlops/staging/" + model_deploy.SECURITY_GROUP_SSM_SUFFIX,
    }
    prod = _as_dict(work / mlops_project.PROD_OVERRIDES_FILE)
    assert prod == {
        "EnvType": "prod",
        "InstanceType": "ml.c5.xlarge",
        "SubnetIds": "/mlops/prod/" + model_deploy.SUBNET_IDS_SSM_SUFFIX,
        "WorkloadSecurityGroupId": "/mlops/prod/" + model_deploy.SECURITY_GROUP_SSM_SUFFIX,
    }
    # Every key the build writes is a parameter of the model-deploy template.
    known = set(model_deploy.build_model_deploy_template().to_dict()["Parameters"])
    assert set(staging) | set(prod) <= known


def test_build_fails_without_an_approved_package(tmp_path):
    result, work = _run_build(tmp_path, "None")
    assert result.returncode != 0
    assert "no approved model package in group churn" in result.stderr
    assert not (work / mlops_project.STAGING_PARAMETERS_FILE).exists()


def test_build_fails_when_the_source_has_no_template(tmp_path):
    result, work = _run_build(
        tmp_path, "arn:aws:sagemaker:us-east-1:111111111111:model-package/churn/7", with_template=False
    )
    assert result.returncode != 0 and mlops_project.TEMPLATE_FILE in result.stderr
    assert not (tmp_path / "aws-args").exists(), "nothing resolved before the source is checked"


# --- The model-build project ------------------------------------------------------------


@pytest.fixture(scope="module")
def build_project():
    from generator import model_build_project

    return model_build_project.build_mlops_model_build_project_template().to_dict()


def test_model_build_pipeline_is_source_then_build_started_by_seed_code_uploads(build_project):
    pipeline_id, pipeline = the_one(build_project, "AWS::CodePipeline::Pipeline")
    stages = pipeline["Properties"]["Stages"]
    assert [(s["Name"], s["Actions"][0]["ActionTypeId"]["Provider"]) for s in stages] == [
        ("Source", "S3"),
        ("Build", "CodeBuild"),
    ]
    bucket_id, bucket = kms_bucket(build_project)
    source = stages[0]["Actions"][0]["Configuration"]
    assert source["S3Bucket"] == {"Ref": bucket_id} and source["PollForSourceChanges"] == "false"
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    _, rule = the_one(build_project, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"] == {
        "bucket": {"name": [{"Ref": bucket_id}]},
        "object": {"key": [{"Ref": "SourceObjectKey"}]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::Sub"][1] == {"Pipeline": {"Ref": pipeline_id}}


def test_model_build_may_run_only_the_projects_sagemaker_pipelines(build_project):
    found = list(statements(build_project))
    for logical_id, path, statement in found:
        if statement["Effect"] == "Allow":
            assert all("*" not in a for a in as_list(statement["Action"])), f"{logical_id}: {statement['Action']}"
            if path != "KeyPolicy":  # "*" in a key policy means this key
                assert "*" not in as_list(statement.get("Resource", [])), f"{logical_id}: {statement}"
    sagemaker_statements = [s for _, _, s in found if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))]
    assert sagemaker_statements
    for statement in sagemaker_statements:
        for resource in statement["Resource"]:
            assert ":pipeline/sagemaker-${SageMakerProjectId}-" in resource["Fn::Sub"], resource
    (passing,) = [s for _, _, s in found if "iam:PassRole" in as_list(s["Action"])]
    assert passing["Resource"] == [{"Ref": "PipelineExecutionRoleArn"}]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert build_project["Parameters"]["PipelineExecutionRoleArn"]["Type"] == "AWS::SSM::Parameter::Value<String>"


def test_model_build_registers_into_the_environments_group_by_default(build_project):
    _, build = the_one(build_project, "AWS::CodeBuild::Project")
    variables = {v["Name"]: v["Value"] for v in build["Properties"]["Environment"]["EnvironmentVariables"]}
    _, given, default = variables["MODEL_PACKAGE_GROUP_NAME"]["Fn::If"]
    assert (given, default) == ({"Ref": "ModelPackageGroupName"}, {"Fn::Sub": mlops_project.ENVIRONMENT_GROUP_NAME})
    assert variables["SAGEMAKER_PIPELINE_ROLE_ARN"] == {"Ref": "PipelineExecutionRoleArn"}
    assert "BuildSpec" not in build["Properties"]["Source"], "the seed code's own buildspec runs"


def test_model_build_pipeline_code_is_readable_by_the_pipeline_execution_role_only(build_project):
    """Seed flow 6 (walked in tests/test_seed_flows.py): outside the build role, only the pipeline
    execution role gets anything from the artifacts bucket and key, read/decrypt of the code only."""
    bucket_id, bucket = kms_bucket(build_project)
    assert bucket["Properties"]["BucketName"] == {
        "Fn::Sub": "sagemaker-${SageMakerProjectId}-artifacts-${AWS::AccountId}"
    }
    policy = build_project["Resources"][f"{bucket_id}Policy"]["Properties"]["PolicyDocument"]
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "PipelineExecutionRoleReadsPipelineCode",
            "Effect": "Allow",
            "Principal": {"AWS": [{"Ref": "PipelineExecutionRoleArn"}]},
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": [
                {"Fn::Sub": ["${BucketArn}/pipeline-code/*", {"BucketArn": {"Fn::GetAtt": [bucket_id, "Arn"]}}]}
            ],
        }
    ]
    key_policy = build_project["Resources"]["ArtifactsKey"]["Properties"]["KeyPolicy"]
    (decrypt,) = [
        s for s in key_policy["Statement"] if s.get("Principal") == {"AWS": [{"Ref": "PipelineExecutionRoleArn"}]}
    ]
    assert decrypt["Action"] == ["kms:Decrypt"]
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.${AWS::URLSuffix}"}
    }


def test_model_build_lint_clean_through_the_generator_command(tmp_path):
    from generator.__main__ import main

    assert main(["--out", str(tmp_path), "--jobs", "1", "--region", "us-east-1", "mlops-model-build-project"]) == 0


def test_artifacts_key_names_the_logs_principal_of_the_partition(rendered):
    """The build logs' service principal follows the partition's domain (amazonaws.com.cn in China)."""
    policy = rendered["Resources"]["ArtifactsKey"]["Properties"]["KeyPolicy"]
    (logs,) = [s for s in policy["Statement"] if s.get("Sid") == "CloudWatchLogsEncryptsBuildLogs"]
    assert logs["Principal"]["Service"] == [{"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}]
    services = json.dumps([s.get("Principal") for s in policy["Statement"]])
    assert "amazonaws.com" not in services
