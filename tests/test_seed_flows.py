"""The seed flows walked end to end through every policy AWS consults (SCP-free).

Development account ``DEV`` holds the environment (bucket, key, registry, repository);
staging account ``STAGING`` holds the target network and the target-account roles. Each
request goes through the caller's identity policies, its permissions boundary, the
resource's policy, the VPC endpoint's policy and, for KMS, the key policy
(``tests.policy_eval.decide``).
"""

from __future__ import annotations

import pytest

from generator.registry import TEMPLATES
from tests.policy_eval import REGION, Request, Resolver, Walk, decide

DEV, STAGING = "111111111111", "222222222222"
S3_ENDPOINT = "vpce-0staging0s3"
GROUP = "mlops-dev-models"
DLC = f"arn:aws:ecr:{REGION}:763104351884:repository/pytorch-inference"  # an AWS Deep Learning Container
BUILT_IN = f"arn:aws:ecr:{REGION}:683313688378:repository/sagemaker-xgboost"  # a built-in algorithm's image
# AWS's public image repositories admit every account to pull (a stand-in for their policy).
AWS_IMAGE_POLICY = {
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]
}


def _resolved(name: str, account: str, parameters: dict | None = None, ssm: dict | None = None):
    template = TEMPLATES[name]().to_dict()
    return template, Resolver(template, parameters, account=account, ssm=ssm)


ENV, ENV_R = _resolved("environment", DEV, {"TargetAccountIds": STAGING, "TargetS3EndpointIds": S3_ENDPOINT})
BUCKET = ENV_R.ref("ModelsBucket")  # the test resolver's name of the development models bucket
ROLES, ROLES_R = _resolved(
    "target-account-roles",
    STAGING,
    {"DevelopmentAccountId": DEV, "ModelBucketName": BUCKET},
    ssm={"/mlops/staging/network/s3-endpoint-id": S3_ENDPOINT},
)
NETWORK, NETWORK_R = _resolved("target-network", STAGING, {"DevelopmentModelsBucketName": BUCKET})


def _boundary(account: str) -> dict:
    template, resolver = _resolved("permissions-boundary", account)
    return resolver.resolve(template["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"])


def _identity(template: dict, resolver: Resolver, role: str) -> list[dict]:
    """The role's inline policies, the managed policies naming it, and those in its ManagedPolicyArns."""
    properties = template["Resources"][role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    attached = {ref["Ref"] for ref in properties.get("ManagedPolicyArns", []) if isinstance(ref, dict) and "Ref" in ref}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        if logical_id in attached or {"Ref": role} in resource["Properties"].get("Roles", []):
            documents.append(resource["Properties"]["PolicyDocument"])
    return [resolver.resolve(d) for d in documents]


def _role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def _assert_allowed(walk: Walk, request: Request):
    allowed, why = decide(walk, request)
    assert allowed, f"{request.action} on {request.resource}: {why}"


DEPLOYMENT = Walk(identity=_identity(ROLES, ROLES_R, "ModelDeploymentRole"), boundary=_boundary(STAGING))
EXECUTION = Walk(identity=_identity(ROLES, ROLES_R, "ModelExecutionRole"), boundary=_boundary(STAGING))


# A model in the VPC (the guardrails deny CreateModel without it).
IN_VPC = {"sagemaker:VpcSubnets": ["subnet-0a"], "sagemaker:VpcSecurityGroupIds": ["sg-0a"]}


def _staging(role: str, action: str, resource: str, **context) -> Request:
    return Request(action, resource, principal_arn=_role_arn(STAGING, role), principal_account=STAGING, context=context)


@pytest.mark.parametrize(
    "action", ["sagemaker:CreateModel", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"]
)
def test_model_deploy_role_creates_a_model_from_the_development_model_package(action):
    group = ENV_R.resolve(ENV["Resources"]["ModelPackageGroup"]["Properties"]["ModelPackageGroupPolicy"])
    walk = Walk(DEPLOYMENT.identity, DEPLOYMENT.boundary, resource=group, resource_account=DEV)
    kind = "model-package-group/" if action.endswith("Group") else "model-package/"
    package = f"arn:aws:sagemaker:{REGION}:{DEV}:{kind}{GROUP}" + ("" if action.endswith("Group") else "/3")
    _assert_allowed(walk, _staging("mlops-model-deployment", action, package, **IN_VPC))


@pytest.mark.parametrize("action", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
def test_staging_endpoint_pulls_the_development_image_and_an_aws_deep_learning_container(action):
    repository = ENV_R.resolve(ENV["Resources"]["ModelImageRepository"]["Properties"]["RepositoryPolicyText"])
    own = f"arn:aws:ecr:{REGION}:{DEV}:repository/mlops-dev-model-images"
    for arn, policy, account in ((own, repository, DEV), (DLC, AWS_IMAGE_POLICY, "763104351884")):
        walk = Walk(EXECUTION.identity, EXECUTION.boundary, resource=policy, resource_account=account)
        _assert_allowed(walk, _staging("mlops-model-execution", action, arn))


def test_staging_endpoint_reads_the_model_artifact_through_its_s3_endpoint_with_the_development_key():
    bucket_policy = ENV_R.resolve(ENV["Resources"]["ModelsBucketPolicy"]["Properties"]["PolicyDocument"])
    endpoint_policy = NETWORK_R.resolve(NETWORK["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"])
    artifact = f"arn:aws:s3:::{BUCKET}/models/churn/model.tar.gz"
    read = _staging("mlops-model-execution", "s3:GetObject", artifact, **{"aws:SourceVpce": S3_ENDPOINT})
    walk = Walk(EXECUTION.identity, EXECUTION.boundary, bucket_policy, DEV, endpoint=endpoint_policy)
    _assert_allowed(walk, read)
    key_policy = ENV_R.resolve(ENV["Resources"]["ModelsKey"]["Properties"]["KeyPolicy"])
    decrypt = _staging(
        "mlops-model-execution",
        "kms:Decrypt",
        f"arn:aws:kms:{REGION}:{DEV}:key/ModelsKey",
        **{
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:CallerAccount": STAGING,
            "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}",
            "kms:ResourceAliases": ["alias/mlops-dev-models"],
            "aws:ViaAWSService": "true",
        },
    )
    _assert_allowed(Walk(EXECUTION.identity, EXECUTION.boundary, key_policy, DEV, key=True), decrypt)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        (
            "application-autoscaling:RegisterScalableTarget",
            f"arn:aws:application-autoscaling:{REGION}:{STAGING}:scalable-target/0123",
        ),
        (
            "application-autoscaling:PutScalingPolicy",
            f"arn:aws:application-autoscaling:{REGION}:{STAGING}:scalable-target/0123",
        ),
        # what Application Auto Scaling checks of the caller on the target
        (
            "sagemaker:UpdateEndpointWeightsAndCapacities",
            f"arn:aws:sagemaker:{REGION}:{STAGING}:endpoint/mlops-staging-churn",
        ),
        ("sagemaker:DescribeEndpoint", f"arn:aws:sagemaker:{REGION}:{STAGING}:endpoint/mlops-staging-churn"),
        (
            "sagemaker:DescribeEndpointConfig",
            f"arn:aws:sagemaker:{REGION}:{STAGING}:endpoint-config/mlops-staging-churn-1",
        ),
        # target tracking's own alarms
        ("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{REGION}:{STAGING}:alarm:TargetTracking-endpoint/x"),
    ],
)
def test_model_deploy_role_registers_the_endpoints_scalable_target(action, resource):
    _assert_allowed(DEPLOYMENT, _staging("mlops-model-deployment", action, resource))


# --- Studio, in the development account: apps run as the domain's execution role ---------

STUDIO = Walk(identity=_identity(ENV, ENV_R, "SageMakerExecutionRole"), boundary=_boundary(DEV))


def _studio(action: str, resource: str) -> Request:
    return Request(
        action, resource, principal_arn=ENV_R.get_att("SageMakerExecutionRole", "Arn"), principal_account=DEV
    )


STUDIO_REQUESTS = [
    ("sagemaker:CreateProject", f"arn:aws:sagemaker:{REGION}:{DEV}:project/churn"),
    ("sagemaker:DescribeProject", f"arn:aws:sagemaker:{REGION}:{DEV}:project/churn"),
    ("servicecatalog:SearchProducts", "*"),
    ("servicecatalog:DescribeProduct", f"arn:aws:catalog:{REGION}:{DEV}:product/prod-abc"),
    ("servicecatalog:ProvisionProduct", f"arn:aws:catalog:{REGION}:999999999999:product/prod-abc"),
    ("servicecatalog:DescribeRecord", "*"),
    ("sagemaker:CreatePipeline", f"arn:aws:sagemaker:{REGION}:{DEV}:pipeline/churn-build"),
    ("sagemaker:StartPipelineExecution", f"arn:aws:sagemaker:{REGION}:{DEV}:pipeline/churn-build"),
    ("sagemaker:CreateModelPackage", f"arn:aws:sagemaker:{REGION}:{DEV}:model-package/{GROUP}/1"),
    ("sagemaker:UpdateModelPackage", f"arn:aws:sagemaker:{REGION}:{DEV}:model-package/{GROUP}/1"),
    ("sagemaker:DescribeModelPackageGroup", f"arn:aws:sagemaker:{REGION}:{DEV}:model-package-group/{GROUP}"),
    ("ecr:BatchGetImage", BUILT_IN),
]


@pytest.mark.parametrize(("action", "resource"), STUDIO_REQUESTS)
def test_studio_user_creates_a_project_and_runs_its_flow_as_the_execution_role(action, resource):
    walk = STUDIO
    if action.startswith("ecr:"):
        walk = Walk(STUDIO.identity, STUDIO.boundary, AWS_IMAGE_POLICY, "683313688378")
    _assert_allowed(walk, _studio(action, resource))


def test_studio_execution_role_describes_its_domain_and_user_profile():
    domains = [k for k, v in ENV["Resources"].items() if v["Type"] == "AWS::SageMaker::Domain"]
    (domain,) = domains
    domain_id = ENV_R.get_att(domain, "DomainId")
    _assert_allowed(STUDIO, _studio("sagemaker:DescribeDomain", f"arn:aws:sagemaker:{REGION}:{DEV}:domain/{domain_id}"))
    profile = f"arn:aws:sagemaker:{REGION}:{DEV}:user-profile/{domain_id}/alice"
    _assert_allowed(STUDIO, _studio("sagemaker:DescribeUserProfile", profile))


def test_studio_execution_role_may_not_approve_packages_of_another_group():
    other = f"arn:aws:sagemaker:{REGION}:{DEV}:model-package/other-models/1"
    assert not decide(STUDIO, _studio("sagemaker:UpdateModelPackage", other))[0]


# --- Seed flow 6: the model-build project's build uploads the pipeline code, its steps read it ---

PROJECT_ID = "p-0a1b2c3d4e5f"
BUILD, BUILD_R = _resolved(
    "mlops-model-build-project",
    DEV,
    {"SageMakerProjectName": "churn", "SageMakerProjectId": PROJECT_ID},
    ssm=None,
)
# The build project's PipelineExecutionRoleArn (an SSM-typed parameter) is the environment's role.
BUILD_R.parameters["PipelineExecutionRoleArn"] = ENV_R.get_att("PipelineExecutionRole", "Arn")
ARTIFACTS = BUILD_R.ref("ArtifactsBucket")
DEV_S3_ENDPOINT = ENV_R.ref("S3GatewayEndpoint")


def test_model_build_project_names_its_artifacts_bucket_the_way_the_environment_endpoint_expects():
    name = BUILD_R.resolve(BUILD["Resources"]["ArtifactsBucket"]["Properties"].get("BucketName"))
    assert name == f"sagemaker-{PROJECT_ID}-artifacts-{DEV}"


def test_build_uploads_the_pipeline_code_that_the_pipeline_steps_read_through_the_s3_endpoint():
    """Seed flow 6: CodeBuild (outside the VPC) writes the code ``pipeline.upsert()`` uploads; the
    steps, running as the pipeline execution role in the VPC, read that same object through the
    environment's S3 gateway endpoint and decrypt it with the artifacts key."""
    bucket_name = f"sagemaker-{PROJECT_ID}-artifacts-{DEV}"
    resolver = Resolver(BUILD, BUILD_R.parameters, account=DEV)
    resolver.ref = lambda name, _ref=resolver.ref: bucket_name if name == "ArtifactsBucket" else _ref(name)
    bucket_policy = resolver.resolve(BUILD["Resources"]["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"])
    key_policy = resolver.resolve(BUILD["Resources"]["ArtifactsKey"]["Properties"]["KeyPolicy"])
    variables = {
        v["Name"]: resolver.resolve(v["Value"])
        for v in BUILD["Resources"]["ModelBuild"]["Properties"]["Environment"]["EnvironmentVariables"]
    }
    assert variables["ARTIFACT_BUCKET"] == bucket_name
    # Where the SDK puts it: <default_bucket>/<default_bucket_prefix>/<pipeline name>/code/<hash>/<file>.
    code = f"arn:aws:s3:::{bucket_name}/pipeline-code/sagemaker-{PROJECT_ID}-training/code/a/preprocess.py"
    key_arn = f"arn:aws:kms:{REGION}:{DEV}:key/ArtifactsKey"
    via_s3 = {
        "kms:ViaService": f"s3.{REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket_name}",
        "aws:ViaAWSService": "true",
    }

    build_role = _role_arn(DEV, "BuildRole")
    builder = Walk(_identity(BUILD, resolver, "BuildRole"), _boundary(DEV), bucket_policy, DEV)
    _assert_allowed(builder, Request("s3:PutObject", code, principal_arn=build_role, principal_account=DEV))
    builder_key = Walk(builder.identity, builder.boundary, key_policy, DEV, key=True)
    _assert_allowed(
        builder_key,
        Request("kms:GenerateDataKey", key_arn, principal_arn=build_role, principal_account=DEV, context=via_s3),
    )

    pipeline_role = ENV_R.get_att("PipelineExecutionRole", "Arn")
    endpoint_policy = ENV_R.resolve(ENV["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"])
    step = Walk(
        _identity(ENV, ENV_R, "PipelineExecutionRole"), _boundary(DEV), bucket_policy, DEV, endpoint=endpoint_policy
    )
    read = Request(
        "s3:GetObject",
        code,
        principal_arn=pipeline_role,
        principal_account=DEV,
        context={"aws:SourceVpce": DEV_S3_ENDPOINT, "aws:ResourceAccount": DEV},
    )
    _assert_allowed(step, read)
    step_key = Walk(step.identity, step.boundary, key_policy, DEV, key=True)
    _assert_allowed(
        step_key, Request("kms:Decrypt", key_arn, principal_arn=pipeline_role, principal_account=DEV, context=via_s3)
    )
    # The build is told the prefix to give the SageMaker session (default_bucket_prefix).
    assert variables.get("PIPELINE_CODE_PREFIX") == "pipeline-code"


def test_pipeline_steps_read_only_the_code_prefix_of_a_project_bucket_of_this_account():
    endpoint_policy = ENV_R.resolve(ENV["Resources"]["S3GatewayEndpoint"]["Properties"]["PolicyDocument"])
    step = Walk(_identity(ENV, ENV_R, "PipelineExecutionRole"), _boundary(DEV), endpoint=endpoint_policy)
    pipeline_role = ENV_R.get_att("PipelineExecutionRole", "Arn")
    bucket = f"sagemaker-{PROJECT_ID}-artifacts-{DEV}"
    for resource, owner in (
        (f"arn:aws:s3:::{bucket}/model-build/seed-code.zip", DEV),  # outside the code prefix
        (f"arn:aws:s3:::{bucket}/pipeline-code/x.py", "999999999999"),  # a squatter's bucket of that name
    ):
        request = Request(
            "s3:GetObject",
            resource,
            principal_arn=pipeline_role,
            principal_account=DEV,
            context={"aws:SourceVpce": DEV_S3_ENDPOINT, "aws:ResourceAccount": owner},
        )
        assert not decide(step, request)[0], resource
