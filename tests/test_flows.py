"""The cross-account flows (invoke, share-model-group) through the CLI against the local AWS,
and their error paths on botocore's Stubber with the real API shapes."""

from __future__ import annotations

import io
import json
import uuid

import boto3
import botocore.exceptions
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from deploy.cli import main
from deploy.common.clients import CallCounter, Clients
from deploy.common.errors import RolloutError
from deploy.flows import aws, policies
from deploy.flows import cli as flows_cli
from tests.policy_eval import Request, evaluate

SECRET = "s3cr3t-external-id-for-tests"


def _act_as(monkeypatch, local_aws, account: str) -> None:
    """Point the environment's credentials at a member account (its OrganizationAccountAccessRole)."""
    credentials = local_aws.session(account).get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)


def _endpoint(local_aws, account: str) -> str:
    sagemaker = local_aws.client("sagemaker", account=account)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    role = f"arn:aws:iam::{local_aws.account_id(account)}:role/mlops-model-execution"
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "main", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


def _invoke_role(local_aws, account: str, name: str, trusted: str | None = None) -> None:
    """The endpoint-invoke role in ``account``, trusting ``trusted`` (default: the caller's management account)
    with the ExternalId, as templates/endpoint-invoke-role.yaml does: the local STS evaluates that trust as AWS does."""
    iam = local_aws.client("iam", account)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{trusted or local_aws.management_account_id}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": SECRET}},
            }
        ],
    }
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))


def test_invoke_assumes_the_role_and_calls_the_endpoint(local_aws, monkeypatch, tmp_path, capsysbinary):
    endpoint = _endpoint(local_aws, "ml-production-1")
    _invoke_role(local_aws, "ml-production-1", "mlops-prod-endpoint-invoke")
    body = tmp_path / "request.json"
    body.write_text('{"features": [1, 2, 3]}')
    monkeypatch.setenv("CONSUMER_EXTERNAL_ID", SECRET)
    account = local_aws.account_id("ml-production-1")
    code = main(
        [
            "invoke",
            "--endpoint",
            endpoint,
            "--account",
            account,
            "--role-name",
            "mlops-prod-endpoint-invoke",
            "--external-id-env",
            "CONSUMER_EXTERNAL_ID",
            "--body",
            str(body),
        ]
    )
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    assert out.strip() == b"body"  # moto's canned answer: there is no model behind the endpoint
    assert f"invoked {endpoint} in account {account}".encode() in err and b"InService" not in err
    assert SECRET.encode() not in out + err


@pytest.fixture
def assumed_calls(monkeypatch):
    """The API calls invoke makes with the assumed role's credentials."""
    counter = CallCounter()
    original = aws.assumed_clients

    def counted(credentials, region):
        clients = original(credentials, region)
        clients.counter = counter
        return clients

    monkeypatch.setattr(aws, "assumed_clients", counted)
    return counter


@pytest.mark.parametrize("check", [False, True])
def test_invoke_describes_the_endpoint_only_when_asked(local_aws, monkeypatch, tmp_path, capsys, assumed_calls, check):
    """The endpoint-invoke role may only invoke: an unasked DescribeEndpoint is an AccessDenied in CloudTrail."""
    endpoint = _endpoint(local_aws, "ml-production-1")
    _invoke_role(local_aws, "ml-production-1", "mlops-prod-endpoint-invoke")
    body = tmp_path / "request.json"
    body.write_text("{}")
    role_arn = f"arn:aws:iam::{local_aws.account_id('ml-production-1')}:role/mlops-prod-endpoint-invoke"
    argv = ["invoke", "--endpoint", endpoint, "--role-arn", role_arn, "--external-id", SECRET, "--body", str(body)]
    assert main(argv + (["--check-endpoint"] if check else [])) == 0
    err = capsys.readouterr().err
    expected = {"sagemaker-runtime.InvokeEndpoint": 1} | ({"sagemaker.DescribeEndpoint": 1} if check else {})
    assert dict(assumed_calls.calls) == expected
    assert ("endpoint InService" in err) is check


def test_invoke_uses_the_profile_given(local_aws, monkeypatch, tmp_path, capsys):
    """--profile wins over the credentials in the environment (the management account's here)."""
    endpoint = _endpoint(local_aws, "ml-production-2")
    account = local_aws.account_id("ml-production-2")
    consumer = local_aws.account_id("ml-development")
    name = f"invoke-from-dev-{uuid.uuid4().hex[:6]}"
    _invoke_role(local_aws, "ml-production-2", name, trusted=consumer)
    credentials = local_aws.session("ml-development").get_credentials()
    config = tmp_path / "credentials"
    config.write_text(
        "[consumer]\n"
        f"aws_access_key_id = {credentials.access_key}\n"
        f"aws_secret_access_key = {credentials.secret_key}\n"
        f"aws_session_token = {credentials.token}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config))
    body = tmp_path / "request.json"
    body.write_text("{}")
    argv = ["invoke", "--endpoint", endpoint, "--account", account, "--role-name", name, "--external-id", SECRET]
    assert main([*argv, "--body", str(body)]) == 1  # the environment's (management) credentials: not trusted
    assert "access denied assuming" in capsys.readouterr().err
    assert main([*argv, "--body", str(body), "--profile", "consumer"]) == 0
    assert f"invoked {endpoint} in account {account}" in capsys.readouterr().err


def test_invoke_reads_the_body_from_stdin_and_writes_output(local_aws, monkeypatch, tmp_path, capsys):
    endpoint = _endpoint(local_aws, "ml-production-2")
    _invoke_role(local_aws, "ml-production-2", "mlops-prod-endpoint-invoke")
    monkeypatch.setenv(flows_cli.DEFAULT_EXTERNAL_ID_ENV, SECRET)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"1,2,3\n")))
    output = tmp_path / "answer"
    role_arn = f"arn:aws:iam::{local_aws.account_id('ml-production-2')}:role/mlops-prod-endpoint-invoke"
    assert (
        main(
            [
                "invoke",
                "--endpoint",
                endpoint,
                "--role-arn",
                role_arn,
                "--content-type",
                "text/csv",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    assert output.read_bytes() == b"body"
    assert SECRET not in capsys.readouterr().err


def test_invoke_a_missing_endpoint_is_a_clear_error(local_aws, monkeypatch, tmp_path, capsys):
    body = tmp_path / "request.json"
    body.write_text("{}")
    account = local_aws.account_id("ml-staging")
    _invoke_role(local_aws, "ml-staging", "r")
    code = main(
        [
            "invoke",
            "--endpoint",
            "no-such-endpoint",
            "--account",
            account,
            "--role-name",
            "r",
            "--external-id",
            SECRET,
            "--body",
            str(body),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"endpoint no-such-endpoint does not exist in account {account}, region us-east-1" in err
    assert SECRET not in err


def test_the_local_aws_answers_invoke_endpoint_on_a_missing_endpoint_as_aws_does(local_aws):
    runtime = local_aws.client("sagemaker-runtime", account="ml-staging")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="absent", Body=b"{}", ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert (
        "absent" in caught.value.response["Error"]["Message"]
        and "not found" in caught.value.response["Error"]["Message"]
    )


@pytest.mark.parametrize(
    "argv, key",
    [
        (["--role-arn", "not-an-arn"], "--role-arn"),
        (["--account", "12345", "--role-name", "r"], "--account"),
        (["--account", "123456789012"], "--role-name"),
    ],
)
def test_invoke_bad_input_exits_2_before_any_call(argv, key, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(flows_cli.DEFAULT_EXTERNAL_ID_ENV, SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: any call would fail differently
    assert main(["invoke", "--endpoint", "e", *argv, "--body", str(tmp_path)]) == 2
    assert key in capsys.readouterr().err


def test_invoke_without_an_external_id_exits_2(monkeypatch, capsys):
    monkeypatch.delenv(flows_cli.DEFAULT_EXTERNAL_ID_ENV, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["invoke", "--endpoint", "e", "--role-arn", "arn:aws:iam::123456789012:role/r", "--body", "-"]) == 2
    assert flows_cli.DEFAULT_EXTERNAL_ID_ENV in capsys.readouterr().err


def _stubbed(service: str):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    return client, Stubber(client)


ROLE = "arn:aws:iam::210987654321:role/mlops-prod-endpoint-invoke"


@pytest.mark.parametrize(
    "code, expected",
    [
        ("AccessDenied", "the role must trust your account, and the ExternalId must be the one"),
        ("ExpiredToken", "credentials have expired"),
        ("InvalidClientTokenId", "credentials are not valid"),
    ],
)
def test_assume_role_errors_say_what_to_do(code, expected):
    sts, stub = _stubbed("sts")
    stub.add_client_error(
        "assume_role",
        service_error_code=code,
        service_message=f"denied for ExternalId {SECRET}",
        http_status_code=403,
        expected_params={"RoleArn": ROLE, "RoleSessionName": "sess", "ExternalId": SECRET},
    )
    with stub, pytest.raises(RolloutError) as caught:
        aws.assume_invoke_role(sts, ROLE, SECRET, "sess")
    assert expected in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "code, message, expected",
    [
        ("AccessDeniedException", "not authorized", "does not allow it"),
        ("ExpiredTokenException", "expired", "session expired"),
        (
            "ValidationError",
            "Endpoint churn of account 210987654321 not found.",
            "does not exist in account 210987654321",
        ),
        ("ModelError", "Received server error (500) from model", "the model behind churn answered an error"),
    ],
)
def test_invoke_endpoint_errors_say_what_to_do(code, message, expected):
    runtime, stub = _stubbed("sagemaker-runtime")
    stub.add_client_error("invoke_endpoint", service_error_code=code, service_message=message, http_status_code=400)
    with stub, pytest.raises(RolloutError) as caught:
        aws.invoke_endpoint(runtime, "churn", b"{}", "application/json", None, "210987654321", "us-east-1")
    assert expected in str(caught.value)


def test_invoke_endpoint_returns_the_body():
    runtime, stub = _stubbed("sagemaker-runtime")
    stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(b'{"score": 0.9}'), 14), "ContentType": "application/json"},
        {"EndpointName": "churn", "Body": b"{}", "ContentType": "application/json", "Accept": "application/json"},
    )
    with stub:
        result = aws.invoke_endpoint(
            runtime, "churn", b"{}", "application/json", "application/json", "210987654321", "us-east-1"
        )
    assert result.body == b'{"score": 0.9}' and result.content_type == "application/json"


def test_check_endpoint_tolerates_a_role_that_may_only_invoke_and_rejects_a_failed_endpoint():
    sagemaker, stub = _stubbed("sagemaker")
    stub.add_client_error("describe_endpoint", service_error_code="AccessDeniedException", http_status_code=400)
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "churn",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:210987654321:endpoint/churn",
            "EndpointStatus": "Failed",
            "FailureReason": "image not found",
            "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01T00:00:00Z",
        },
    )
    with stub:
        assert aws.check_endpoint(sagemaker, "churn", "210987654321", "us-east-1") is None
        with pytest.raises(RolloutError, match="is Failed: image not found"):
            aws.check_endpoint(sagemaker, "churn", "210987654321", "us-east-1")


# ------------------------------------------------------------------ share-model-group

STAGING_ROOT, PROD_ROOT = "arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"
OTHER = {
    "Sid": "KeepMe",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::b/other/*",
}


def test_merge_policy_keeps_other_statements_and_unions_principals_sorted():
    first = policies.merge_policy(
        {"Version": "2012-10-17", "Statement": OTHER}, policies.ecr_statements([PROD_ROOT, STAGING_ROOT], "churn")
    )
    assert first["Statement"][0] == OTHER and len(first["Statement"]) == 2
    assert first["Statement"][1]["Principal"] == {"AWS": [STAGING_ROOT, PROD_ROOT]}  # sorted on the first write
    second = policies.merge_policy(first, policies.ecr_statements([PROD_ROOT, STAGING_ROOT, PROD_ROOT], "churn"))
    assert second == first and policies.policy_diff("x", first, second) == ""


def test_a_policy_given_back_in_another_spelling_is_no_change():
    ours = policies.merge_policy(None, policies.ecr_statements([STAGING_ROOT], "churn"))
    # S3 and others give back a one-item list as a string, and lists in their own order.
    spelled = json.loads(json.dumps(ours))
    statement = spelled["Statement"][0]
    statement["Principal"] = {"AWS": STAGING_ROOT}
    statement["Action"] = list(reversed(statement["Action"]))
    assert policies.same_policy(ours, spelled)
    assert (
        policies.policy_diff(
            "x", spelled, policies.merge_policy(spelled, policies.ecr_statements([STAGING_ROOT], "churn"))
        )
        == ""
    )


def test_removing_accounts_takes_their_principals_out_and_drops_emptied_statements():
    shared = policies.merge_policy(
        {"Version": "2012-10-17", "Statement": [OTHER]},
        policies.bucket_statements("aws", "b", "models/churn", [STAGING_ROOT, PROD_ROOT], "churn"),
    )
    role = "arn:aws:iam::333333333333:role/mlops-model-execution"
    shared["Statement"][1]["Principal"]["AWS"].append(role)  # a role of the account, added by hand
    no_prod = policies.merge_policy(
        shared, policies.bucket_statements("aws", "b", "models/churn", [], "churn"), ["333333333333"]
    )
    assert [s["Principal"]["AWS"] for s in no_prod["Statement"][1:]] == [[STAGING_ROOT], [STAGING_ROOT]]
    nobody = policies.merge_policy(
        no_prod, policies.bucket_statements("aws", "b", "models/churn", [], "churn"), ["222222222222"]
    )
    assert nobody["Statement"] == [OTHER]
    assert policies.merge_policy(None, policies.ecr_statements([], "churn"), ["222222222222"]) == {
        "Version": "2012-10-17",
        "Statement": [],
    }


def test_the_s3_service_name_of_kms_via_service_follows_the_partition():
    assert policies.s3_via_service("us-east-1", aws.dns_suffix("aws")) == "s3.us-east-1.amazonaws.com"
    assert policies.s3_via_service("cn-north-1", aws.dns_suffix("aws-cn")) == "s3.cn-north-1.amazonaws.com.cn"
    assert aws.dns_suffix("aws-us-gov") == "amazonaws.com"


@pytest.mark.parametrize("bucket_key", [False, True])
def test_the_key_statement_lets_a_target_decrypt_the_prefix_only_through_s3(bucket_key):
    statement = policies.key_statements(
        "aws", "s3.us-east-1.amazonaws.com", "models-b", "models/churn/", [STAGING_ROOT], "churn", bucket_key
    )
    document = {"Version": "2012-10-17", "Statement": statement}
    role = "arn:aws:iam::222222222222:role/mlops-model-execution"

    def decrypt(context: dict, principal_account: str = "222222222222") -> str:
        return evaluate(
            document,
            Request("kms:Decrypt", principal_arn=role, principal_account=principal_account, context=context),
        )

    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    model = {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::models-b/models/churn/v1/model.tar.gz"}
    bucket = {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::models-b"}
    other = {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::models-b/data/raw.csv"}
    assert decrypt(via_s3 | model) == "Allow"
    assert decrypt(model) == "ImplicitDeny"  # called directly, not through S3
    assert decrypt({"kms:ViaService": "sagemaker.us-east-1.amazonaws.com"} | model) == "ImplicitDeny"
    assert decrypt(via_s3 | other) == "ImplicitDeny"
    assert decrypt(via_s3 | model, principal_account="444444444444") == "ImplicitDeny"
    # With an S3 Bucket Key S3 asks with the bucket ARN as context: admitted only then.
    assert decrypt(via_s3 | bucket) == ("Allow" if bucket_key else "ImplicitDeny")
    assert statement[0]["Action"] == ["kms:Decrypt"] and "kms:CreateGrant" not in json.dumps(statement)


def _aws_s3_key_arn(local_aws, account: str) -> str:
    return local_aws.client("kms", account=account).describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]


def _dev_resources(local_aws, name, *, encryption: str = "kms", bucket_key: bool = True):
    """A group, a repository and a bucket (``encryption``: kms with a customer key, s3, aws-managed[-arn|-default]) in
    ml-development; other statements name principals that exist (the management account)."""
    dev = "ml-development"
    existing = f"arn:aws:iam::{local_aws.management_account_id}:root"
    sagemaker = local_aws.client("sagemaker", account=dev)
    sagemaker.create_model_package_group(ModelPackageGroupName=name)
    group_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ExistingReader",
                "Effect": "Allow",
                "Principal": {"AWS": existing},
                "Action": "sagemaker:DescribeModelPackageGroup",
                "Resource": f"arn:aws:sagemaker:us-east-1:{local_aws.account_id(dev)}:model-package-group/{name}",
            }
        ],
    }
    sagemaker.put_model_package_group_policy(ModelPackageGroupName=name, ResourcePolicy=json.dumps(group_policy))
    ecr = local_aws.client("ecr", account=dev)
    ecr.create_repository(repositoryName=name)
    s3 = local_aws.client("s3", account=dev)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [OTHER | {"Principal": {"AWS": existing}, "Resource": f"arn:aws:s3:::{name}/other/*"}],
            }
        ),
    )
    key = local_aws.client("kms", account=dev).create_key()["KeyMetadata"]["KeyId"]
    default = {
        "kms": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "aws-managed": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"},
        "aws-managed-default": {"SSEAlgorithm": "aws:kms"},  # no key named: S3 uses aws/s3
        "s3": {"SSEAlgorithm": "AES256"},
    }.get(encryption) or {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": _aws_s3_key_arn(local_aws, dev)}
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bucket_key}]
        },
    )
    return key


@pytest.fixture
def check_principals(local_aws):
    """S3 refuses bucket policies naming principals that do not exist (as AWS does): the local AWS's
    default, asserted here so these tests never run with the check off."""
    assert local_aws.control("s3_bucket_policies") == {"check_principals": True}


@pytest.fixture
def counted(monkeypatch):
    """The API calls share-model-group makes (its clients, counted)."""
    counter = CallCounter()
    monkeypatch.setattr(flows_cli, "Clients", lambda session: Clients(session, counter=counter))
    return counter


def _share_argv(name: str, *accounts: str, extra=()) -> list[str]:
    return [
        "share-model-group",
        "--model-package-group",
        name,
        "--target-account",
        ",".join(accounts),
        "--ecr-repository",
        name,
        "--bucket",
        name,
        "--prefix",
        "models/churn",
        *extra,
    ]


def _policies(local_aws, name: str, key: str) -> dict:
    dev = "ml-development"
    sagemaker, ecr, s3, kms = (local_aws.client(s, account=dev) for s in ("sagemaker", "ecr", "s3", "kms"))
    try:
        repository = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        repository = None
    return {
        "group": json.loads(sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"]),
        "repository": repository,
        "bucket": json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]),
        "key": json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]),
    }


def _principals_of(policy: dict | None, suffix: str) -> list[str]:
    statements = [s for s in (policy or {"Statement": []})["Statement"] if s.get("Sid", "").endswith(suffix)]
    return statements[0]["Principal"]["AWS"] if statements else []


def test_share_model_group_shows_the_diff_then_applies_and_a_second_run_writes_nothing(
    local_aws, monkeypatch, capsys, check_principals, counted
):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name)
    staging, prod = local_aws.account_id("ml-staging"), local_aws.account_id("ml-production-1")
    staging_root, prod_root = f"arn:aws:iam::{staging}:root", f"arn:aws:iam::{prod}:root"
    _act_as(monkeypatch, local_aws, "ml-development")
    before = _policies(local_aws, name, key)
    argv = _share_argv(name, prod, staging)  # given unsorted

    assert main(argv) == 0  # dry run
    out = capsys.readouterr().out
    assert "dry run: 4 change(s)" in out and f"+++ model package group {name} policy (after)" in out
    assert "kms:EncryptionContext:aws:s3:arn" in out and "S3 Bucket Key" in out
    assert _policies(local_aws, name, key) == before and counted.writes == 0

    assert main(argv + ["--yes"]) == 0
    assert "applied: KMS key" in capsys.readouterr().out
    after = _policies(local_aws, name, key)
    assert after["group"]["Statement"][0]["Sid"] == "ExistingReader" and len(after["group"]["Statement"]) == 3
    versions = next(s for s in after["group"]["Statement"] if s["Sid"].endswith("Versions"))
    assert versions["Resource"].endswith(f":model-package/{name}/*")
    assert "sagemaker:UpdateModelPackage" not in versions["Action"]
    assert after["bucket"]["Statement"][0]["Sid"] == "KeepMe"
    read = next(s for s in after["bucket"]["Statement"] if s["Sid"].endswith("ArtifactsRead"))
    assert read["Resource"] == f"arn:aws:s3:::{name}/models/churn/*"
    for policy, suffix in [
        (after["group"], "Describe"),
        (after["repository"], "ImagePull"),
        (after["bucket"], "ArtifactsRead"),
        (after["key"], "ArtifactsDecrypt"),
    ]:
        assert _principals_of(policy, suffix) == sorted([staging_root, prod_root]), suffix
    decrypt = next(s for s in after["key"]["Statement"] if s.get("Sid", "").endswith("ArtifactsDecrypt"))
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/models/churn/*"]
        },
    }
    assert after["key"]["Statement"][0] == before["key"]["Statement"][0]  # the key's own statements kept
    assert local_aws.client("kms", account="ml-development").list_grants(KeyId=key)["Grants"] == []

    writes = counted.writes
    assert main(argv + ["--yes"]) == 0  # the same request again
    out = capsys.readouterr().out
    assert "nothing to change" in out and "applied" not in out
    assert counted.writes == writes  # no Put* call at all
    assert main(_share_argv(name, staging, prod) + ["--yes"]) == 0  # another order: the same
    assert "nothing to change" in capsys.readouterr().out and counted.writes == writes


def test_remove_account_takes_the_account_out_of_every_statement(local_aws, monkeypatch, capsys, check_principals):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name, bucket_key=False)
    staging, prod = local_aws.account_id("ml-staging"), local_aws.account_id("ml-production-1")
    _act_as(monkeypatch, local_aws, "ml-development")
    before = _policies(local_aws, name, key)
    assert main(_share_argv(name, staging, prod) + ["--yes"]) == 0
    decrypt = next(
        s for s in _policies(local_aws, name, key)["key"]["Statement"] if s.get("Sid", "").endswith("Decrypt")
    )
    assert decrypt["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": [f"arn:aws:s3:::{name}/models/churn/*"]
    }
    capsys.readouterr()

    remove = [a if a != "--target-account" else "--remove-account" for a in _share_argv(name, prod)]
    assert main(remove) == 0 and "dry run" in capsys.readouterr().out
    assert main(remove + ["--yes"]) == 0
    after = _policies(local_aws, name, key)
    for policy, suffix in [
        (after["group"], "Versions"),
        (after["repository"], "ImagePull"),
        (after["bucket"], "ArtifactsList"),
        (after["key"], "ArtifactsDecrypt"),
    ]:
        assert _principals_of(policy, suffix) == [f"arn:aws:iam::{staging}:root"], suffix
    capsys.readouterr()
    assert main(remove + ["--yes"]) == 0 and "nothing to change" in capsys.readouterr().out

    unshare = [a if a != "--target-account" else "--unshare" for a in _share_argv(name, staging)]
    assert main(unshare + ["--yes"]) == 0
    gone = _policies(local_aws, name, key)
    assert gone["group"] == before["group"] and gone["bucket"]["Statement"] == before["bucket"]["Statement"]
    assert gone["key"] == before["key"] and gone["repository"] is None  # its policy deleted: no statement left


def test_an_sse_s3_bucket_needs_no_key_change(local_aws, monkeypatch, capsys, check_principals):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name, encryption="s3")
    _act_as(monkeypatch, local_aws, "ml-development")
    staging = local_aws.account_id("ml-staging")
    assert main(_share_argv(name, staging, extra=["--kms-key", key, "--yes"])) == 2
    assert (
        "SSE-S3" in capsys.readouterr().err
        and _principals_of(_policies(local_aws, name, key)["group"], "Describe") == []
    )
    assert main(_share_argv(name, staging, extra=["--yes"])) == 0
    out = capsys.readouterr().out
    assert "readers need no KMS permission" in out and "KMS key" not in out.replace("no KMS permission", "")
    assert "ArtifactsDecrypt" not in json.dumps(_policies(local_aws, name, key)["key"])


@pytest.mark.parametrize(
    "case, expected",
    [
        ("aws-managed", "AWS managed key aws/s3"),
        ("aws-managed-arn", "AWS managed key aws/s3"),
        ("aws-managed-default", "AWS managed key aws/s3"),
        ("not-the-bucket-key", "is not the key of bucket"),
    ],
)
def test_share_model_group_refuses_keys_it_cannot_share_before_any_write(
    local_aws, monkeypatch, capsys, case, expected
):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name, encryption="kms" if case == "not-the-bucket-key" else case)
    other = local_aws.client("kms", account="ml-development").create_key()["KeyMetadata"]["KeyId"]
    _act_as(monkeypatch, local_aws, "ml-development")
    before = _policies(local_aws, name, key)
    extra = ["--kms-key", other] if case == "not-the-bucket-key" else []
    assert main(_share_argv(name, local_aws.account_id("ml-staging"), extra=[*extra, "--yes"])) == 2
    assert expected in capsys.readouterr().err
    assert _policies(local_aws, name, key) == before


def test_the_local_aws_keeps_aws_managed_keys_as_aws_does(local_aws):
    """KMS Developer Guide: "you can only change the key policy for a customer managed key"."""
    kms = local_aws.client("kms", account="ml-development")
    metadata = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert metadata["KeyManager"] == "AWS"
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDeniedException.*AWS managed key"):
        kms.put_key_policy(KeyId=metadata["Arn"], PolicyName="default", Policy=policy)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDeniedException.*AWS managed key"):
        kms.create_grant(KeyId="alias/aws/s3", GranteePrincipal=STAGING_ROOT, Operations=["Decrypt"])
    assert kms.describe_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])["KeyMetadata"]["KeyManager"] == "CUSTOMER"


def test_grants_of_earlier_versions_are_reported_and_revoked_when_asked(local_aws, monkeypatch, capsys):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name)
    staging = local_aws.account_id("ml-staging")
    kms = local_aws.client("kms", account="ml-development")
    kms.create_grant(
        KeyId=key,
        GranteePrincipal=f"arn:aws:iam::{staging}:root",
        Operations=["Decrypt", "DescribeKey"],
        Name=policies.legacy_grant_name(name),
    )
    _act_as(monkeypatch, local_aws, "ml-development")
    assert main(_share_argv(name, staging, extra=["--yes"])) == 0
    out = capsys.readouterr().out
    assert f"grant(s) named share-model-group-{name}" in out and "--revoke-old-grants" in out
    assert len(kms.list_grants(KeyId=key)["Grants"]) == 1  # reported, not touched

    assert main(_share_argv(name, staging, extra=["--revoke-old-grants"])) == 0
    assert f"revoke grant share-model-group-{name}" in capsys.readouterr().out
    assert main(_share_argv(name, staging, extra=["--revoke-old-grants", "--yes"])) == 0
    assert kms.list_grants(KeyId=key)["Grants"] == []


STACK_TEMPLATE = {
    "Resources": {
        "ModelPackageGroup": {
            "Type": "AWS::SageMaker::ModelPackageGroup",
            "Properties": {"ModelPackageGroupName": "X"},
        },
        "ModelImageRepository": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "X"}},
        "ModelsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "X"}},
    }
}


@pytest.mark.parametrize("owned", ["ModelPackageGroup", "ModelImageRepository", "ModelsBucket"])
def test_share_model_group_refuses_what_a_stack_created(local_aws, monkeypatch, capsys, owned):
    """The template owns those policies (ModelPackageGroupPolicy, RepositoryPolicyText, BucketPolicy)."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    dev = "ml-development"
    key = local_aws.client("kms", account=dev).create_key()["KeyMetadata"]["KeyId"]
    stack = f"env-{name}"
    resources = {
        "Resources": {owned: json.loads(json.dumps(STACK_TEMPLATE["Resources"][owned]).replace('"X"', f'"{name}"'))}
    }
    local_aws.client("cloudformation", account=dev).create_stack(StackName=stack, TemplateBody=json.dumps(resources))
    sagemaker, ecr, s3 = (local_aws.client(s, account=dev) for s in ("sagemaker", "ecr", "s3"))
    if owned != "ModelPackageGroup":
        sagemaker.create_model_package_group(ModelPackageGroupName=name)
    if owned != "ModelImageRepository":
        ecr.create_repository(repositoryName=name)
    if owned != "ModelsBucket":
        s3.create_bucket(Bucket=name)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
        },
    )
    _act_as(monkeypatch, local_aws, dev)
    assert main(_share_argv(name, local_aws.account_id("ml-staging"), extra=["--yes"])) == 2
    err = capsys.readouterr().err
    assert f"belongs to CloudFormation stack {stack} (resource {owned})" in err and "TargetAccountIds" in err
    with pytest.raises(botocore.exceptions.ClientError):
        sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)
    with pytest.raises(ecr.exceptions.RepositoryPolicyNotFoundException):
        ecr.get_repository_policy(repositoryName=name)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=name)


def test_a_bucket_named_like_a_stack_created_repository_is_not_taken_for_it(local_aws, monkeypatch, capsys):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    _dev_resources(local_aws, name, encryption="s3")
    local_aws.client("ecr", account="ml-development").delete_repository(repositoryName=name)
    template = {"Resources": {"Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": name}}}}
    local_aws.client("cloudformation", account="ml-development").create_stack(
        StackName=f"images-{name}", TemplateBody=json.dumps(template)
    )
    _act_as(monkeypatch, local_aws, "ml-development")
    argv = ["share-model-group", "--model-package-group", name, "--target-account", local_aws.account_id("ml-staging")]
    argv += ["--bucket", name, "--prefix", "models/churn"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "dry run" in capsys.readouterr().out


def test_the_ownership_check_needs_describe_stack_resources():
    cloudformation, stub = _stubbed("cloudformation")
    stub.add_client_error(
        "describe_stack_resources",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params={"PhysicalResourceId": "repo"},
    )

    class _Clients:
        def client(self, service, region=None):
            return cloudformation

    with stub, pytest.raises(RolloutError, match="cloudformation:DescribeStackResources is denied"):
        aws.refuse_stack_owned(
            _Clients(), "us-east-1", "repo", "AWS::ECR::Repository", "ECR repository repo policy", "--ecr-repository"
        )


def test_the_local_aws_finds_the_stack_of_a_physical_resource_id_as_aws_does(local_aws):
    cloudformation = local_aws.client("cloudformation", account="ml-development")
    name = f"owned-{uuid.uuid4().hex[:8]}"
    template = {"Resources": {"Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": name}}}}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    found = cloudformation.describe_stack_resources(PhysicalResourceId=name)["StackResources"]
    assert [(r["StackName"], r["LogicalResourceId"]) for r in found] == [(name, "Repo")]
    with pytest.raises(botocore.exceptions.ClientError, match="Stack for nobody-owns-this does not exist"):
        cloudformation.describe_stack_resources(PhysicalResourceId="nobody-owns-this")
    with pytest.raises(botocore.exceptions.ClientError, match="not both"):
        cloudformation.describe_stack_resources(StackName=name, PhysicalResourceId=name)


@pytest.mark.parametrize(
    "extra, key",
    [
        (["--ecr-repository", "absent-repo"], "--ecr-repository"),
        (["--bucket", "absent-bucket-xyz", "--prefix", "p"], "--bucket"),
        (["--bucket", "b"], "--prefix"),
        (["--kms-key", "k"], "--kms-key"),
    ],
)
def test_share_model_group_bad_input_exits_2_with_no_write(local_aws, monkeypatch, capsys, extra, key):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    _dev_resources(local_aws, name)
    _act_as(monkeypatch, local_aws, "ml-development")
    assert (
        main(
            [
                "share-model-group",
                "--model-package-group",
                name,
                "--target-account",
                local_aws.account_id("ml-staging"),
                *extra,
                "--yes",
            ]
        )
        == 2
    )
    assert key in capsys.readouterr().err
    policy = json.loads(
        local_aws.client("sagemaker", account="ml-development").get_model_package_group_policy(
            ModelPackageGroupName=name
        )["ResourcePolicy"]
    )
    assert len(policy["Statement"]) == 1  # nothing written


def test_share_model_group_rejects_bad_accounts_and_missing_groups(local_aws, monkeypatch, capsys):
    _act_as(monkeypatch, local_aws, "ml-development")
    staging = local_aws.account_id("ml-staging")
    assert main(["share-model-group", "--model-package-group", "absent"]) == 2
    assert "--remove-account" in capsys.readouterr().err
    assert main(["share-model-group", "--model-package-group", "absent", "--target-account", "123"]) == 2
    assert "--target-account" in capsys.readouterr().err
    assert main(["share-model-group", "--model-package-group", "absent", "--remove-account", "123"]) == 2
    assert "--remove-account" in capsys.readouterr().err
    argv = ["share-model-group", "--model-package-group", "absent", "--target-account", staging]
    assert main([*argv, "--remove-account", staging]) == 2
    assert "named both" in capsys.readouterr().err
    assert (
        main(
            [
                "share-model-group",
                "--model-package-group",
                "absent",
                "--target-account",
                local_aws.account_id("ml-development"),
            ]
        )
        == 2
    )
    assert "owns the model" in capsys.readouterr().err
    assert main(["share-model-group", "--model-package-group", "absent-group", "--target-account", staging]) == 2
    assert "absent-group" in capsys.readouterr().err
