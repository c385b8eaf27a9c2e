"""Properties of the cross-account role templates, and their deployment on the emulator."""

from __future__ import annotations

import boto3
from moto import mock_aws

from generator import cross_account
from generator.render import render_yaml
from localaws.patches import apply_all
from tests.template_props import as_list, resources

ADMIN = cross_account.build_stackset_administration_role_template().to_dict()
EXECUTION = cross_account.build_stackset_execution_role_template().to_dict()
TARGET = cross_account.build_target_account_roles_template().to_dict()
INVOKE = cross_account.build_endpoint_invoke_role_template().to_dict()
CONSUMER = cross_account.build_endpoint_consumer_policy_template().to_dict()


def _role(template, logical_id):
    return template["Resources"][logical_id]["Properties"]


def _statements(role_props):
    return [s for p in role_props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _rights(template, logical_id):
    """Every statement of a role: its inline policies and the managed policies of the template it attaches."""
    role = _role(template, logical_id)
    attached = [ref["Ref"] for ref in role.get("ManagedPolicyArns", []) if isinstance(ref, dict) and "Ref" in ref]
    managed = [s for ref in attached for s in _role(template, ref)["PolicyDocument"]["Statement"]]
    # a statement under Fn::If counts with each branch that is one (AWS::NoValue is none)
    return [
        branch
        for s in _statements(role) + managed
        for branch in (s["Fn::If"][1:] if "Fn::If" in s else [s])
        if "Effect" in branch
    ]


def _actions(statements):
    return {a for s in statements for a in as_list(s["Action"])}


def test_administration_role_trusts_cloudformation_of_its_own_account_and_assumes_only_execution_role():
    role = _role(ADMIN, "StackSetAdministrationRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["cloudformation.amazonaws.com"]}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    (statement,) = _statements(role)
    assert statement["Action"] == ["sts:AssumeRole"]
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${ExecutionRoleName}"}]


def test_execution_role_trusts_only_the_administration_role_and_is_primary_region_only():
    resource = EXECUTION["Resources"]["StackSetExecutionRole"]
    assert resource["Condition"] == "IsPrimaryRegion"
    (trust,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    admin, pipeline_admin = trust["Principal"]["AWS"]
    assert admin == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AdministratorAccountId}:role/${AdministrationRoleName}"}
    assert pipeline_admin["Fn::If"][0] == "HasPipelineAdministrator"
    assert pipeline_admin["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == {"Ref": "OrganizationId"}
    rights = _rights(EXECUTION, "StackSetExecutionRole")
    assert resource["Properties"]["ManagedPolicyArns"], "the generated rights are attached managed policies"
    for statement in rights:
        if statement["Effect"] == "Allow" and any(a.startswith("iam:") for a in statement["Action"]):
            for arn in statement["Resource"]:
                # the only unscoped IAM rights are the List calls IAM cannot scope, kept to this account
                if arn == "*":
                    assert all(a.startswith("iam:List") for a in statement["Action"]), statement
                    assert statement["Condition"]["StringEqualsIfExists"]["aws:ResourceAccount"]
                else:
                    assert "${AWS::AccountId}" in arn["Fn::Sub"], "IAM rights limited to this account"
    (pass_role,) = [s for s in rights if s["Effect"] == "Allow" and "iam:PassRole" in s["Action"]]
    assert {r["Fn::Sub"].rsplit(":", 1)[1] for r in pass_role["Resource"]} == {
        "role/StackSet-*",
        "role/${PassRoleNamePrefix}*",
    }


def test_stack_set_roles_may_not_create_sagemaker_compute_outside_a_vpc():
    for template, logical_id in ((EXECUTION, "StackSetExecutionRole"), (TARGET, "ModelDeploymentRole")):
        denies = [
            s for s in _rights(template, logical_id) if s["Effect"] == "Deny" and "Null" in s.get("Condition", {})
        ]
        keys = {k for s in denies for k, v in s["Condition"]["Null"].items() if v == "true"}
        assert keys == {"sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds"}
        assert all("sagemaker:CreateModel" in s["Action"] for s in denies)


def test_model_execution_role_reads_only_the_development_accounts_model_sources():
    role = _role(TARGET, "ModelExecutionRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    statements = {s["Sid"]: s for s in _statements(role)}
    read = statements["ReadModelArtifactsThroughVpcEndpoint"]
    (arn,) = read["Resource"]
    assert arn["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Name}/${ModelPrefix}*"
    bucket = arn["Fn::Sub"][1]["Name"]["Fn::If"]
    assert bucket[0] == "HasModelBucketName" and bucket[1] == {"Ref": "ModelBucketName"}
    assert bucket[2] == {"Fn::Sub": "${EnvName}-${DevelopmentEnvType}-models-${DevelopmentAccountId}"}
    # resolved in the role (primary region only), not as an SSM-typed parameter in every region
    assert read["Condition"]["StringEquals"]["aws:SourceVpce"] == {"Fn::Sub": "{{resolve:ssm:${S3VpcEndpointId}}}"}
    decrypt = statements["DecryptModelArtifacts"]
    assert decrypt["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:kms:*:${DevelopmentAccountId}:key/*"}]
    alias = decrypt["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"]
    assert alias["Fn::Sub"][0] == "alias/${Name}"
    assert set(decrypt["Action"]) == {"kms:Decrypt", "kms:DescribeKey"}
    pull = statements["PullInferenceImage"]
    assert "${DevelopmentAccountId}" in pull["Resource"][0]["Fn::Sub"][0]
    assert "ecr:PutImage" not in _actions(statements.values())
    services = {a.split(":")[0] for a in _actions(statements.values())}
    assert services == {"s3", "kms", "ecr", "sagemaker", "ec2", "logs", "cloudwatch"}
    writes = {a for a in _actions(statements.values()) if a.split(":")[0] in {"s3", "kms", "sagemaker"}}
    assert all(a.split(":")[1].startswith(("Get", "List", "Describe", "Decrypt")) for a in writes), writes
    # the only "*" resources are actions without resource-level permissions
    for statement in statements.values():
        if "*" in statement["Resource"]:
            assert all(a.split(":")[0] in {"ecr", "ec2", "cloudwatch"} for a in as_list(statement["Action"]))
            assert all(
                ":Get" in a or ":Describe" in a or "NetworkInterface" in a or ":PutMetricData" in a
                for a in as_list(statement["Action"])
            )


def test_deployment_role_may_pass_exactly_the_model_execution_role_to_sagemaker():
    passes = [s for s in _rights(TARGET, "ModelDeploymentRole") if "iam:PassRole" in s["Action"]]
    assert len(passes) == 1
    (statement,) = passes
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["ModelExecutionRole", "Arn"]}]
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"


def test_every_named_role_of_multi_region_templates_is_created_in_the_primary_region_only():
    for template in (EXECUTION, TARGET, INVOKE):
        roles = resources(template, "AWS::IAM::Role")
        assert roles
        for logical_id, role in roles.items():
            assert role.get("Condition") == "IsPrimaryRegion", logical_id
        placeholder = template["Resources"]["SecondaryRegionPlaceholder"]
        assert placeholder["Condition"] == "IsSecondaryRegion"


def test_invoke_role_requires_the_external_id_and_invokes_only_the_named_endpoints():
    external_id = INVOKE["Parameters"]["ExternalId"]
    assert external_id["NoEcho"] is True and external_id["MinLength"] >= 16
    role = _role(INVOKE, "EndpointInvokeRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"]["AWS"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::${ConsumerAccountId}:root"}]
    assert trust["Condition"]["StringEquals"]["sts:ExternalId"] == {"Ref": "ExternalId"}
    (statement,) = _statements(role)
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == {"Ref": "EndpointArns"}


def test_consumer_policy_allows_assume_role_on_that_role_only_and_group_is_optional():
    policy = CONSUMER["Resources"]["AssumeEndpointInvokeRolePolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["sts:AssumeRole"] and statement["Resource"] == [{"Ref": "EndpointInvokeRoleArn"}]
    assert CONSUMER["Resources"]["EndpointConsumerGroup"]["Condition"] == "CreateGroup"


TARGET_PARAMETERS = {
    "EnvName": "mlops",
    "DevelopmentAccountId": "111111111111",
    "ModelPackageGroupName": "churn",
    "S3VpcEndpointId": "/mlops/staging/network/s3-endpoint-id",
    "PrimaryRegion": "us-east-1",
}


@mock_aws
def test_target_roles_deploy_in_two_regions_of_one_account_without_name_collision():
    apply_all()  # the patches the local server runs (localaws/patches)
    body = render_yaml(cross_account.build_target_account_roles_template())
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in TARGET_PARAMETERS.items()]
    # The target network publishes its endpoint only in the primary region: the secondary
    # region's stack must not need it.
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/mlops/staging/network/s3-endpoint-id", Type="String", Value="vpce-0123456789abcdef0"
    )
    for region in ("us-east-1", "eu-west-1"):
        cfn = boto3.client("cloudformation", region_name=region)
        cfn.create_stack(
            StackName="target-roles", TemplateBody=body, Parameters=params, Capabilities=["CAPABILITY_NAMED_IAM"]
        )
        assert cfn.describe_stacks(StackName="target-roles")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    names = [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]]
    assert names.count("mlops-model-execution") == 1 and names.count("mlops-model-deployment") == 1
    iam = boto3.client("iam")
    # The deployment role's rights are the stacks' managed policies, attached through its
    # ManagedPolicyArns: one set, primary region only.
    local = iam.list_policies(Scope="Local")["Policies"]
    assert len(local) == 2, [p["PolicyName"] for p in local]
    attached = iam.list_attached_role_policies(RoleName="mlops-model-deployment")["AttachedPolicies"]
    assert {p["PolicyArn"] for p in attached} == {p["Arn"] for p in local}
    documents = [iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"]) for p in local]
    # moto returns the documents as text; the resolved PassRole resource must name the one role
    document = str([d["PolicyVersion"]["Document"] for d in documents])
    assert "iam:PassRole" in document and document.count("role/mlops-model-execution") == 1
    reads = str(
        boto3.client("iam").get_role_policy(
            RoleName="mlops-model-execution", PolicyName="ReadDevelopmentAccountModels"
        )["PolicyDocument"]
    )
    # defaults follow the environment template's names; CloudFormation resolves the dynamic
    # reference to the endpoint id (the local AWS leaves it as written)
    assert "mlops-dev-models-111111111111/models/*" in reads and "alias/mlops-dev-models" in reads
    assert "model-package-group/churn" in reads
    assert "{{resolve:ssm:/mlops/staging/network/s3-endpoint-id}}" in reads


@mock_aws
def test_invoke_role_deploys_with_the_external_id_in_its_trust_policy():
    body = render_yaml(cross_account.build_endpoint_invoke_role_template())
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    secret = "a-very-long-shared-secret-123"
    params = {
        "ConsumerAccountId": "222222222222",
        "ExternalId": secret,
        "EndpointArns": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn-prod",
    }
    cfn.create_stack(
        StackName="invoke",
        TemplateBody=body,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    stack = cfn.describe_stacks(StackName="invoke")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    role = boto3.client("iam").get_role(RoleName="mlops-prod-endpoint-invoke")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == secret
