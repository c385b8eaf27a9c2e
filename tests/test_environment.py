"""Properties of the environment template, stated over every resource of a type, and the
logic of its key, bucket and guardrail policies evaluated for sample requests."""

from __future__ import annotations

import json

import pytest

from generator.environment import ENVIRONMENT_INTERFACE_ENDPOINTS, build_environment_template
from generator.identity import VOLUME_ACTIONS, VPC_ACTIONS
from tests.policy_eval import ACCOUNT, PARTITION, REGION, Request, Resolver, deciding_statements, evaluate
from tests.template_props import WORKLOAD_ENDPOINT_SERVICES, resources

TARGETS = "222222222222,333333333333"
READER = "arn:aws:iam::222222222222:role/mlops-model-execution"
OUTSIDER = "arn:aws:iam::444444444444:role/mlops-model-execution"
SCIENTIST = f"arn:aws:iam::{ACCOUNT}:role/DataScientistRole"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/cloudformation-deployer"
KEY_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/key-administrator"


@pytest.fixture(scope="module")
def template() -> dict:
    return build_environment_template().to_dict()


def resolved(template, logical_id, path, **parameters):
    """A resource property with intrinsics resolved for ``parameters``."""
    value = template["Resources"][logical_id]["Properties"][path]
    return Resolver(template, parameters).resolve(value)


def me(principal_arn, **kw) -> dict:
    return {"principal_arn": principal_arn, "principal_account": principal_arn.split(":")[4], **kw}


# --- keys -------------------------------------------------------------------------------


def test_four_customer_managed_keys_with_rotation_alias_and_retain(template):
    keys = resources(template, "AWS::KMS::Key")
    environment_keys = {k for k in keys if k != "FlowLogKey"}
    assert environment_keys == {"DataKey", "ModelsKey", "EbsKey", "StudioEfsKey"}
    for logical_id, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id
        assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain", logical_id
    aliased = {a["Properties"]["TargetKeyId"]["Ref"] for a in resources(template, "AWS::KMS::Alias").values()}
    assert aliased == set(keys)


def test_only_the_account_root_administers_keys(template):
    for logical_id in resources(template, "AWS::KMS::Key"):
        policy = resolved(template, logical_id, "KeyPolicy", TargetAccountIds=TARGETS)
        for statement in policy["Statement"]:
            assert "kms:*" not in statement["Action"], logical_id
            if statement["Effect"] == "Allow" and "kms:PutKeyPolicy" in statement["Action"]:
                assert statement["Principal"] == {"AWS": [f"arn:{PARTITION}:iam::{ACCOUNT}:root"]}, logical_id


ADMIN_ACTIONS = [
    "kms:PutKeyPolicy",
    "kms:DescribeKey",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:TagResource",
    "kms:CreateGrant",
]


@pytest.mark.parametrize("key", ["DataKey", "ModelsKey", "EbsKey", "StudioEfsKey"])
@pytest.mark.parametrize("action", ADMIN_ACTIONS)
@pytest.mark.parametrize("principal", [DEPLOYER, KEY_ADMIN])
def test_key_policy_never_locks_out_cloudformation_or_key_administrators(template, key, action, principal):
    # From anywhere (no VPC endpoint), as CloudFormation and console administrators call.
    policy = resolved(template, key, "KeyPolicy")
    assert evaluate(policy, Request(action, **me(principal))) == "Allow"


@pytest.mark.parametrize("key", ["DataKey", "ModelsKey", "EbsKey", "StudioEfsKey"])
@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom"])
def test_key_data_operations_of_this_account_only_through_the_kms_endpoint(template, key, action):
    policy = resolved(template, key, "KeyPolicy")
    outside = Request(action, **me(SCIENTIST))
    assert evaluate(policy, outside) == "Deny", deciding_statements(policy, outside)
    other_endpoint = Request(action, **me(SCIENTIST), context={"aws:SourceVpce": "vpce-elsewhere"})
    assert evaluate(policy, other_endpoint) == "Deny"
    inside = Request(action, **me(SCIENTIST), context={"aws:SourceVpce": "vpce-kmsendpoint"})
    assert evaluate(policy, inside) == "Allow"
    # The deny binds administrators too: data operations are not what they need the key for.
    assert evaluate(policy, Request(action, **me(KEY_ADMIN))) == "Deny"


@pytest.mark.parametrize("key", ["DataKey", "ModelsKey", "EbsKey", "StudioEfsKey"])
def test_aws_services_acting_for_a_caller_are_not_denied(template, key):
    policy = resolved(template, key, "KeyPolicy")
    via_s3 = Request(
        "kms:Decrypt",
        **me(SCIENTIST),
        context={"aws:ViaAWSService": "true", "kms:ViaService": "s3.us-east-1.amazonaws.com"},
    )
    assert evaluate(policy, via_s3) == "Allow"
    linked_role = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.amazonaws.com/AWSServiceRoleForAmazonSageMaker"
    )
    assert evaluate(policy, Request("kms:Decrypt", **me(linked_role))) != "Deny"


def test_model_readers_decrypt_the_models_key_through_s3_only(template):
    policy = resolved(template, "ModelsKey", "KeyPolicy", TargetAccountIds=TARGETS)
    through_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:ViaAWSService": "true"}
    assert evaluate(policy, Request("kms:Decrypt", **me(READER), context=through_s3)) == "Allow"
    assert evaluate(policy, Request("kms:Decrypt", **me(READER))) == "ImplicitDeny"
    assert evaluate(policy, Request("kms:Encrypt", **me(READER), context=through_s3)) == "ImplicitDeny"
    assert evaluate(policy, Request("kms:Decrypt", **me(OUTSIDER), context=through_s3)) == "ImplicitDeny"
    other_role = "arn:aws:iam::222222222222:role/anything-else"
    assert evaluate(policy, Request("kms:Decrypt", **me(other_role), context=through_s3)) == "ImplicitDeny"
    data_key = resolved(template, "DataKey", "KeyPolicy", TargetAccountIds=TARGETS)
    assert evaluate(data_key, Request("kms:Decrypt", **me(READER), context=through_s3)) == "ImplicitDeny"


def test_model_readers_direct_kms_calls_only_through_their_listed_endpoints(template):
    policy = resolved(
        template, "ModelsKey", "KeyPolicy", TargetAccountIds=TARGETS, TargetKmsEndpointIds="vpce-t1,vpce-t2"
    )
    assert evaluate(policy, Request("kms:Decrypt", **me(READER), context={"aws:SourceVpce": "vpce-t2"})) == "Allow"
    assert (
        evaluate(policy, Request("kms:Decrypt", **me(READER), context={"aws:SourceVpce": "vpce-other"}))
        == "ImplicitDeny"
    )


def test_organization_scope_replaces_the_account_list(template):
    policy = resolved(template, "ModelsKey", "KeyPolicy", TargetAccountIds=TARGETS, OrganizationId="o-abcdefghij")
    through_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:ViaAWSService": "true"}
    in_org = Request("kms:Decrypt", **me(OUTSIDER), context={**through_s3, "aws:PrincipalOrgID": "o-abcdefghij"})
    assert evaluate(policy, in_org) == "Allow"
    assert evaluate(policy, Request("kms:Decrypt", **me(READER), context=through_s3)) == "ImplicitDeny"


def test_no_sharing_statements_without_targets(template):
    policy = resolved(template, "ModelsKey", "KeyPolicy")
    assert not [s for s in policy["Statement"] if "Reader" in s["Sid"]]


# --- buckets ----------------------------------------------------------------------------


def bucket_policy(template, bucket, **parameters):
    for logical_id, policy in resources(template, "AWS::S3::BucketPolicy").items():
        if policy["Properties"]["Bucket"] == {"Ref": bucket}:
            return resolved(template, logical_id, "PolicyDocument", **parameters)
    raise AssertionError(f"no policy for {bucket}")


def objects(template, bucket, key="x"):
    return f"arn:{PARTITION}:s3:::{Resolver(template).ref(bucket)}/{key}"


def test_every_bucket_is_private_versioned_retained_and_has_a_policy(template):
    buckets = resources(template, "AWS::S3::Bucket")
    assert set(buckets) == {"DataBucket", "ModelsBucket", "AccessLogsBucket"}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain", logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert (
            set(props["PublicAccessBlockConfiguration"].values()) == {True}
            and len(props["PublicAccessBlockConfiguration"]) == 4
        )
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        bucket_policy(template, logical_id)


def test_models_bucket_name_is_known_in_advance_or_given(template):
    name = template["Resources"]["ModelsBucket"]["Properties"]["BucketName"]
    assert Resolver(template, {"EnvName": "team-a"}).resolve(name) == f"team-a-dev-models-{ACCOUNT}"
    assert Resolver(template, {"ModelsBucketName": "my-models"}).resolve(name) == "my-models"
    assert "BucketName" not in template["Resources"]["DataBucket"]["Properties"]


def test_environment_buckets_use_their_cmk_with_bucket_keys_and_log_access(template):
    for logical_id, key in (("DataBucket", "DataKey"), ("ModelsBucket", "ModelsKey")):
        props = template["Resources"][logical_id]["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["BucketKeyEnabled"] is True
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]},
        }
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}


@pytest.mark.parametrize("bucket", ["DataBucket", "ModelsBucket", "AccessLogsBucket"])
def test_every_bucket_denies_insecure_transport(template, bucket):
    policy = bucket_policy(template, bucket, TargetAccountIds=TARGETS)
    request = Request(
        "s3:GetObject",
        objects(template, bucket),
        **me(SCIENTIST),
        context={"aws:SecureTransport": "false", "aws:SourceVpce": "vpce-s3gatewayendpoint"},
    )
    assert evaluate(policy, request) == "Deny"


@pytest.mark.parametrize("bucket", ["DataBucket", "ModelsBucket", "AccessLogsBucket"])
@pytest.mark.parametrize("action", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"])
def test_every_bucket_denies_data_access_outside_the_s3_endpoint(template, bucket, action):
    policy = bucket_policy(template, bucket, TargetAccountIds=TARGETS)
    outside = Request(action, objects(template, bucket), **me(SCIENTIST))
    assert evaluate(policy, outside) == "Deny", deciding_statements(policy, outside)
    inside = Request(
        action, objects(template, bucket), **me(SCIENTIST), context={"aws:SourceVpce": "vpce-s3gatewayendpoint"}
    )
    assert evaluate(policy, inside) != "Deny"


@pytest.mark.parametrize("bucket", ["DataBucket", "ModelsBucket", "AccessLogsBucket"])
@pytest.mark.parametrize(
    "action", ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutEncryptionConfiguration", "s3:PutBucketVersioning"]
)
def test_bucket_policies_never_lock_out_cloudformation(template, bucket, action):
    policy = bucket_policy(template, bucket, TargetAccountIds=TARGETS)
    arn = f"arn:{PARTITION}:s3:::{Resolver(template).ref(bucket)}"
    assert evaluate(policy, Request(action, arn, **me(DEPLOYER))) != "Deny"


def test_models_bucket_admits_readers_on_the_prefix_only(template):
    policy = bucket_policy(template, "ModelsBucket", TargetAccountIds=TARGETS)
    model = objects(template, "ModelsBucket", "models/churn/model.tar.gz")
    # Through their own account's endpoint: not ours, and not listed (no TargetS3EndpointIds given).
    assert (
        evaluate(policy, Request("s3:GetObject", model, **me(READER), context={"aws:SourceVpce": "vpce-theirs"}))
        == "Allow"
    )
    assert (
        evaluate(policy, Request("s3:GetObject", objects(template, "ModelsBucket", "data/secret.csv"), **me(READER)))
        == "ImplicitDeny"
    )
    assert evaluate(policy, Request("s3:PutObject", model, **me(READER))) == "ImplicitDeny"
    assert evaluate(policy, Request("s3:GetObject", model, **me(OUTSIDER))) == "ImplicitDeny"
    bucket_arn = f"arn:{PARTITION}:s3:::{Resolver(template).ref('ModelsBucket')}"
    assert (
        evaluate(policy, Request("s3:ListBucket", bucket_arn, **me(READER), context={"s3:prefix": "models/churn/"}))
        == "Allow"
    )
    assert (
        evaluate(policy, Request("s3:ListBucket", bucket_arn, **me(READER), context={"s3:prefix": "data/"}))
        == "ImplicitDeny"
    )
    data = bucket_policy(template, "DataBucket", TargetAccountIds=TARGETS)
    assert evaluate(data, Request("s3:GetObject", objects(template, "DataBucket", "models/x"), **me(READER))) == "Deny"


def test_a_local_role_named_like_a_reader_gains_nothing(template):
    policy = bucket_policy(template, "ModelsBucket", TargetAccountIds=TARGETS)
    impostor = f"arn:aws:iam::{ACCOUNT}:role/mlops-model-execution"
    assert (
        evaluate(policy, Request("s3:GetObject", objects(template, "ModelsBucket", "models/m"), **me(impostor)))
        == "Deny"
    )


def test_listed_reader_endpoints_are_enforced(template):
    policy = bucket_policy(template, "ModelsBucket", TargetAccountIds=TARGETS, TargetS3EndpointIds="vpce-t1,vpce-t2")
    model = objects(template, "ModelsBucket", "models/m")
    assert (
        evaluate(policy, Request("s3:GetObject", model, **me(READER), context={"aws:SourceVpce": "vpce-t1"})) == "Allow"
    )
    assert (
        evaluate(policy, Request("s3:GetObject", model, **me(READER), context={"aws:SourceVpce": "vpce-other"}))
        == "Deny"
    )
    assert evaluate(policy, Request("s3:GetObject", model, **me(READER))) == "Deny"


def test_uploads_with_another_kms_key_are_denied(template):
    for bucket in ("DataBucket", "ModelsBucket"):
        policy = bucket_policy(template, bucket)
        inside = {"aws:SourceVpce": "vpce-s3gatewayendpoint"}
        other_key = {
            **inside,
            "s3:x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/other",
        }
        assert (
            evaluate(policy, Request("s3:PutObject", objects(template, bucket), **me(SCIENTIST), context=other_key))
            == "Deny"
        )
        assert (
            evaluate(policy, Request("s3:PutObject", objects(template, bucket), **me(SCIENTIST), context=inside))
            != "Deny"
        )


def test_access_log_delivery_is_admitted(template):
    policy = bucket_policy(template, "AccessLogsBucket")
    delivery = Request(
        "s3:PutObject",
        objects(template, "AccessLogsBucket", "data/log"),
        service="logging.s3.amazonaws.com",
        context={"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:s3:::{Resolver(template).ref('DataBucket')}"},
    )
    assert evaluate(policy, delivery) == "Allow"
    foreign = Request(
        "s3:PutObject",
        objects(template, "AccessLogsBucket"),
        service="logging.s3.amazonaws.com",
        context={"aws:SourceAccount": "999999999999", "aws:SourceArn": "arn:aws:s3:::theirs"},
    )
    assert evaluate(policy, foreign) == "ImplicitDeny"


def test_s3_gateway_endpoint_admits_only_environment_and_aws_owned_buckets(template):
    policy = resolved(template, "S3GatewayEndpoint", "PolicyDocument")
    allowed = {r for s in policy["Statement"] for r in s["Resource"]}
    names = {Resolver(template).ref(b) for b in ("DataBucket", "ModelsBucket")}
    expected_owned = {f"prod-{REGION}-starport-layer-bucket", f"jumpstart-cache-prod-{REGION}"}
    projects = {f"sagemaker-*-artifacts-{ACCOUNT}"}  # the model-build projects' code, read only (test_seed_flows)
    assert {r.split(":::")[1].split("/")[0] for r in allowed} == names | expected_owned | projects
    assert all(not a.endswith(":*") for s in policy["Statement"] for a in s["Action"])
    assert (
        evaluate(
            policy,
            Request(
                "s3:GetObject",
                "arn:aws:s3:::someone-elses-bucket/x",
                principal_arn=SCIENTIST,
                principal_account=ACCOUNT,
            ),
        )
        == "ImplicitDeny"
    )


# --- Studio -----------------------------------------------------------------------------


def test_studio_domain_is_vpc_only_with_workload_sg_private_subnets_and_efs_key(template):
    (domain,) = resources(template, "AWS::SageMaker::Domain").values()
    props = domain["Properties"]
    assert props["AppNetworkAccessType"] == "VpcOnly"
    assert props["KmsKeyId"] == {"Fn::GetAtt": ["StudioEfsKey", "Arn"]}
    assert props["DefaultUserSettings"]["SecurityGroups"] == [{"Fn::GetAtt": ["WorkloadSecurityGroup", "GroupId"]}]
    assert props["SubnetIds"]["Fn::If"][1] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    assert props["DefaultUserSettings"]["ExecutionRole"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert props["DefaultSpaceSettings"]["SecurityGroups"] == props["DefaultUserSettings"]["SecurityGroups"]


def test_example_user_profile_only_when_named(template):
    (profile,) = resources(template, "AWS::SageMaker::UserProfile").values()
    condition = profile["Condition"]
    assert Resolver(template).condition(condition) is False
    assert Resolver(template, {"StudioUserProfileName": "alice"}).condition(condition) is True
    assert Resolver(template, {"StudioUserProfileName": "alice", "StudioAuthMode": "SSO"}).condition(condition) is False


# --- IAM --------------------------------------------------------------------------------


def guardrails(template):
    return template["Resources"]["SageMakerGuardrailsPolicy"]


def test_guardrails_attach_to_every_role(template):
    roles = set(resources(template, "AWS::IAM::Role")) - {"FlowLogRole"}
    assert (
        {r["Ref"] for r in guardrails(template)["Properties"]["Roles"]}
        == roles
        == {"DataScientistRole", "MlopsEngineerRole", "SageMakerExecutionRole", "PipelineExecutionRole"}
    )


GOOD_JOB = {
    "sagemaker:VpcSubnets": ["PrivateSubnet1-id", "PrivateSubnet2-id"],
    "sagemaker:VpcSecurityGroupIds": ["sg-workloadsecuritygroup"],
    "sagemaker:VolumeKmsKey": "arn:aws:kms:us-east-1:111122223333:key/EbsKey",
    "sagemaker:DirectInternetAccess": "Disabled",
    "sagemaker:RootAccess": "Disabled",
}


@pytest.mark.parametrize("action", sorted({str(a.JSONrepr()) for a in VPC_ACTIONS}))
def test_guardrails_deny_sagemaker_resources_outside_the_vpc(template, action):
    document = Resolver(template).resolve(guardrails(template)["Properties"]["PolicyDocument"])
    scientist = me(SCIENTIST)
    assert evaluate(document, Request(action, **scientist, context=GOOD_JOB)) == "ImplicitDeny"  # not denied
    for missing in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds"):
        context = {k: v for k, v in GOOD_JOB.items() if k != missing}
        assert evaluate(document, Request(action, **scientist, context=context)) == "Deny", missing
    foreign_subnet = {**GOOD_JOB, "sagemaker:VpcSubnets": ["PrivateSubnet1-id", "subnet-elsewhere"]}
    assert evaluate(document, Request(action, **scientist, context=foreign_subnet)) == "Deny"
    foreign_sg = {**GOOD_JOB, "sagemaker:VpcSecurityGroupIds": ["sg-open"]}
    assert evaluate(document, Request(action, **scientist, context=foreign_sg)) == "Deny"


@pytest.mark.parametrize("action", sorted({str(a.JSONrepr()) for a in VOLUME_ACTIONS}))
def test_guardrails_deny_volumes_without_a_kms_key(template, action):
    document = Resolver(template).resolve(guardrails(template)["Properties"]["PolicyDocument"])
    context = {k: v for k, v in GOOD_JOB.items() if k != "sagemaker:VolumeKmsKey"}
    assert evaluate(document, Request(action, **me(SCIENTIST), context=context)) == "Deny"


def test_guardrails_in_an_existing_vpc_name_its_subnets(template):
    document = Resolver(
        template, {"ExistingVpcId": "vpc-0123456789abcdef0", "ExistingPrivateSubnetIds": "subnet-a,subnet-b"}
    ).resolve(guardrails(template)["Properties"]["PolicyDocument"])
    ok = {**GOOD_JOB, "sagemaker:VpcSubnets": ["subnet-b"]}
    assert evaluate(document, Request("sagemaker:CreateTrainingJob", **me(SCIENTIST), context=ok)) == "ImplicitDeny"
    created = {**GOOD_JOB, "sagemaker:VpcSubnets": ["PrivateSubnet1-id"]}
    assert evaluate(document, Request("sagemaker:CreateTrainingJob", **me(SCIENTIST), context=created)) == "Deny"


def test_persona_roles_trust_only_this_account(template):
    for logical_id in ("DataScientistRole", "MlopsEngineerRole"):
        trust = resolved(template, logical_id, "AssumeRolePolicyDocument")
        principals = [s["Principal"] for s in trust["Statement"]]
        assert principals == [{"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}]
    for logical_id in ("SageMakerExecutionRole", "PipelineExecutionRole"):
        trust = resolved(template, logical_id, "AssumeRolePolicyDocument")
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_role_policies_are_least_privilege(template):
    for logical_id, policy in resources(template, "AWS::IAM::ManagedPolicy").items():
        for statement in Resolver(template).resolve(policy["Properties"]["PolicyDocument"])["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for action in statement["Action"]:
                assert action != "*" and not action.endswith(":*"), (logical_id, statement["Sid"])
            if "iam:PassRole" in statement["Action"]:
                assert (
                    "*" not in statement["Resource"] and statement["Condition"]["StringEquals"]["iam:PassedToService"]
                )
            if "*" in statement["Resource"]:
                # Only actions without resource-level permissions may name "*".
                assert all(
                    a.split(":")[1].startswith(
                        (
                            "List",
                            "Describe",
                            "Get",
                            "Search",
                            "PutMetricData",
                            "ProvisionProduct",
                            "TerminateProvisioned",
                            "UpdateProvisioned",
                        )
                    )
                    for a in statement["Action"]
                ), statement


# --- registry ---------------------------------------------------------------------------


def test_model_package_group_shared_with_target_accounts_or_organization(template):
    group = template["Resources"]["ModelPackageGroup"]
    assert Resolver(template).resolve(group["Properties"]).get("ModelPackageGroupPolicy") is None
    by_accounts = resolved(template, "ModelPackageGroup", "ModelPackageGroupPolicy", TargetAccountIds=TARGETS)
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-dev-models/3"
    deployer = "arn:aws:iam::333333333333:role/mlops-model-deployment"
    for action in ("sagemaker:DescribeModelPackage", "sagemaker:CreateModel"):
        assert evaluate(by_accounts, Request(action, package, **me(deployer))) == "Allow"
    assert evaluate(by_accounts, Request("sagemaker:DeleteModelPackage", package, **me(deployer))) == "ImplicitDeny"
    assert evaluate(by_accounts, Request("sagemaker:DescribeModelPackage", package, **me(OUTSIDER))) == "ImplicitDeny"
    by_org = resolved(template, "ModelPackageGroup", "ModelPackageGroupPolicy", OrganizationId="o-abcdefghij")
    member = Request(
        "sagemaker:DescribeModelPackage", package, **me(OUTSIDER), context={"aws:PrincipalOrgID": "o-abcdefghij"}
    )
    assert evaluate(by_org, member) == "Allow"
    assert evaluate(by_org, Request("sagemaker:DescribeModelPackage", package, **me(OUTSIDER))) == "ImplicitDeny"


def test_image_repository_pull_only_for_targets(template):
    repository = template["Resources"]["ModelImageRepository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE" and repository["ImageScanningConfiguration"] == {
        "ScanOnPush": True
    }
    assert repository["EncryptionConfiguration"]["KmsKey"] == {"Fn::GetAtt": ["ModelsKey", "Arn"]}
    policy = resolved(template, "ModelImageRepository", "RepositoryPolicyText", TargetAccountIds=TARGETS)
    assert evaluate(policy, Request("ecr:BatchGetImage", **me(READER))) == "Allow"
    assert evaluate(policy, Request("ecr:PutImage", **me(READER))) == "ImplicitDeny"
    assert evaluate(policy, Request("ecr:BatchGetImage", **me(OUTSIDER))) == "ImplicitDeny"


# --- outputs ----------------------------------------------------------------------------

REQUIRED_OUTPUTS = {
    "VpcId",
    "PrivateSubnetIds",
    "WorkloadSecurityGroupId",
    "EndpointSecurityGroupId",
    "S3EndpointId",
    "KmsEndpointId",
    "DataKeyArn",
    "ModelsKeyArn",
    "EbsKeyArn",
    "StudioEfsKeyArn",
    "DataBucketName",
    "ModelsBucketName",
    "ModelPackageGroupArn",
    "ModelImageRepositoryName",
    "StudioDomainId",
    "SageMakerExecutionRoleArn",
}


def test_outputs_are_exported_and_published_as_ssm_parameters(template):
    outputs = template["Outputs"]
    assert REQUIRED_OUTPUTS <= set(outputs)
    parameters = resources(template, "AWS::SSM::Parameter")
    resolver = Resolver(template, {"EnvName": "team-a", "EnvType": "dev"})
    exports = [resolver.resolve(o["Export"]["Name"]) for o in outputs.values()]
    assert len(set(exports)) == len(exports) and all(e.startswith("team-a-dev-") for e in exports)
    for name, output in outputs.items():
        parameter = parameters[f"{name}Parameter"]["Properties"]
        assert parameter["Value"] == output["Value"], name
        assert resolver.resolve(parameter["Name"]).startswith("/team-a/dev/"), name


def test_interface_endpoints_cover_the_issue_list():
    services = {spec.service for spec in ENVIRONMENT_INTERFACE_ENDPOINTS}
    assert {
        "sagemaker.api",
        "sagemaker.runtime",
        "sagemaker.featurestore-runtime",
        "notebook",
        "studio",
        *WORKLOAD_ENDPOINT_SERVICES,
        "ssm",
        "servicecatalog",
        "cloudformation",
        "codepipeline",
        "codebuild",
    } <= services


def test_three_az_build_option():
    template = build_environment_template(az_count=3).to_dict()
    assert len(resources(template, "AWS::EC2::Subnet")) == 4  # three private, one public (NAT)
    with pytest.raises(ValueError):
        build_environment_template(az_count=4)


# --- the local emulator -----------------------------------------------------------------


def test_deploys_on_the_local_emulator_with_sharing_and_nat():
    from moto import mock_aws

    from generator.render import render_yaml
    from tests.moto_stack import create_stack

    def target_accounts(session) -> dict:
        # S3 refuses a bucket policy naming an account that does not exist ("Invalid principal in
        # policy"): the targets are member accounts of an Organization, created here.
        organizations = session.client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        ids = [
            organizations.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"][
                "AccountId"
            ]
            for name in ("staging", "production")
        ]
        return {"TargetAccountIds": ",".join(ids)}

    with mock_aws():
        stack = create_stack(
            render_yaml(build_environment_template()),
            {"EnableNatGateway": "true", "StudioUserProfileName": "alice"},
            before=target_accounts,
        )
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        assert {r["ResourceStatus"] for r in stack["Resources"]} == {"CREATE_COMPLETE"}
        types = {r["ResourceType"] for r in stack["Resources"]}
        assert {"AWS::EC2::NatGateway", "AWS::SageMaker::UserProfile", "AWS::KMS::Key", "AWS::S3::Bucket"} <= types
        outputs = stack["OutputValues"]
        assert REQUIRED_OUTPUTS <= set(outputs)
        import boto3

        account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
        assert outputs["ModelsBucketName"] == f"mlops-dev-models-{account}"  # known before the stack exists

        s3 = boto3.client("s3", region_name="us-east-1")
        encryption = str(
            s3.get_bucket_encryption(Bucket=outputs["ModelsBucketName"])["ServerSideEncryptionConfiguration"]
        )
        assert "aws:kms" in encryption and outputs["ModelsKeyArn"] in encryption
        kms = boto3.client("kms", region_name="us-east-1")
        assert kms.get_key_rotation_status(KeyId=outputs["DataKeyArn"])["KeyRotationEnabled"] is True
        ssm = boto3.client("ssm", region_name="us-east-1")
        assert (
            ssm.get_parameter(Name="/mlops/dev/s3/models-bucket-name")["Parameter"]["Value"]
            == outputs["ModelsBucketName"]
        )


def test_policies_fit_their_size_limits_with_room(template):
    """Managed policies 6,144 characters, key policies 32 KB, bucket policies 20 KB (a margin for real ARNs)."""
    limits = {"AWS::IAM::ManagedPolicy": 5000, "AWS::KMS::Key": 28000, "AWS::S3::BucketPolicy": 18000}
    resolver = Resolver(
        template,
        {
            "TargetAccountIds": TARGETS,
            "TargetS3EndpointIds": "vpce-0123456789abcdef0",
            "TargetKmsEndpointIds": "vpce-0123456789abcdef0",
        },
    )
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in limits:
            prop = "KeyPolicy" if resource["Type"] == "AWS::KMS::Key" else "PolicyDocument"
            size = len(json.dumps(resolver.resolve(resource["Properties"][prop]), separators=(",", ":")))
            assert size < limits[resource["Type"]], (logical_id, size)
