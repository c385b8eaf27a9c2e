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
from deploy.common.errors import RolloutError
from deploy.flows import aws, policies
from deploy.flows import cli as flows_cli

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


def _invoke_role(local_aws, account: str, name: str) -> None:
    """The endpoint-invoke role in ``account``, trusting the caller's (management) account with the ExternalId,
    as templates/endpoint-invoke-role.yaml does: the local STS evaluates that trust as AWS does."""
    iam = local_aws.client("iam", account)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{local_aws.management_account_id}:root"},
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
    assert f"invoked {endpoint} in account {account}".encode() in err and b"InService" in err
    assert SECRET.encode() not in out + err


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

OTHER = {
    "Sid": "KeepMe",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::b/other/*",
}


def test_merge_policy_keeps_other_statements_and_unions_principals():
    first = policies.merge_policy(
        {"Version": "2012-10-17", "Statement": OTHER},
        policies.ecr_statements(["arn:aws:iam::222222222222:root"], "churn"),
    )
    assert first["Statement"][0] == OTHER and len(first["Statement"]) == 2
    second = policies.merge_policy(first, policies.ecr_statements(["arn:aws:iam::333333333333:root"], "churn"))
    assert second["Statement"][0] == OTHER and len(second["Statement"]) == 2
    assert second["Statement"][1]["Principal"] == {
        "AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]
    }
    assert policies.merge_policy(second, policies.ecr_statements(["arn:aws:iam::333333333333:root"], "churn")) == second
    assert policies.policy_diff("x", second, second) == ""


def _dev_resources(local_aws, name):
    dev = "ml-development"
    sagemaker = local_aws.client("sagemaker", account=dev)
    sagemaker.create_model_package_group(ModelPackageGroupName=name)
    group_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ExistingReader",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
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
            {"Version": "2012-10-17", "Statement": [OTHER | {"Resource": f"arn:aws:s3:::{name}/other/*"}]}
        ),
    )
    key = local_aws.client("kms", account=dev).create_key()["KeyMetadata"]["KeyId"]
    return key


def test_share_model_group_shows_the_diff_then_applies_merging(local_aws, monkeypatch, capsys):
    name = f"churn-{uuid.uuid4().hex[:8]}"
    key = _dev_resources(local_aws, name)
    staging, prod = local_aws.account_id("ml-staging"), local_aws.account_id("ml-production-1")
    _act_as(monkeypatch, local_aws, "ml-development")
    argv = [
        "share-model-group",
        "--model-package-group",
        name,
        "--target-account",
        staging,
        "--ecr-repository",
        name,
        "--bucket",
        name,
        "--prefix",
        "models/churn",
        "--kms-key",
        key,
    ]

    assert main(argv) == 0  # dry run
    out = capsys.readouterr().out
    assert (
        "dry run" in out
        and f"+++ model package group {name} policy (after)" in out
        and f"arn:aws:iam::{staging}:root" in out
    )
    assert f"grant Decrypt, DescribeKey to arn:aws:iam::{staging}:root" in out
    dev = "ml-development"
    sagemaker, ecr, s3, kms = (local_aws.client(s, account=dev) for s in ("sagemaker", "ecr", "s3", "kms"))
    assert (
        len(
            json.loads(sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"])[
                "Statement"
            ]
        )
        == 1
    )
    with pytest.raises(ecr.exceptions.RepositoryPolicyNotFoundException):
        ecr.get_repository_policy(repositoryName=name)
    assert kms.list_grants(KeyId=key)["Grants"] == []

    assert main(argv + ["--yes"]) == 0
    group_policy = json.loads(sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"])
    assert [s["Sid"] for s in group_policy["Statement"]][0] == "ExistingReader" and len(group_policy["Statement"]) == 3
    versions = next(s for s in group_policy["Statement"] if s["Sid"].endswith("Versions"))
    assert (
        versions["Resource"].endswith(f":model-package/{name}/*")
        and "sagemaker:UpdateModelPackage" not in versions["Action"]
    )
    bucket_policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    assert bucket_policy["Statement"][0]["Sid"] == "KeepMe"
    read = next(s for s in bucket_policy["Statement"] if s["Sid"].endswith("ArtifactsRead"))
    assert read["Resource"] == f"arn:aws:s3:::{name}/models/churn/*"
    assert json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])["Statement"][0]["Principal"] == {
        "AWS": [f"arn:aws:iam::{staging}:root"]
    }
    assert [(g["GranteePrincipal"], sorted(g["Operations"])) for g in kms.list_grants(KeyId=key)["Grants"]] == [
        (f"arn:aws:iam::{staging}:root", ["Decrypt", "DescribeKey"])
    ]
    capsys.readouterr()

    assert main(argv + ["--yes"]) == 0  # idempotent
    assert "nothing to change" in capsys.readouterr().out

    assert (
        main(argv[:4] + [f"{staging},{prod}"] + argv[5:] + ["--yes"]) == 0
    )  # a second account joins the same statements
    principals = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])["Statement"][0]["Principal"][
        "AWS"
    ]
    assert principals == sorted([f"arn:aws:iam::{staging}:root", f"arn:aws:iam::{prod}:root"])
    assert len(kms.list_grants(KeyId=key)["Grants"]) == 2


@pytest.mark.parametrize(
    "extra, key",
    [
        (["--ecr-repository", "absent-repo"], "--ecr-repository"),
        (["--bucket", "absent-bucket-xyz", "--prefix", "p"], "--bucket"),
        (["--bucket", "b"], "--prefix"),
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
    assert main(["share-model-group", "--model-package-group", "absent", "--target-account", "123"]) == 2
    assert "--target-account" in capsys.readouterr().err
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
    assert (
        main(
            [
                "share-model-group",
                "--model-package-group",
                "absent-group",
                "--target-account",
                local_aws.account_id("ml-staging"),
            ]
        )
        == 2
    )
    assert "absent-group" in capsys.readouterr().err
