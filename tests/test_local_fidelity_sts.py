"""STS AssumeRole on the local AWS evaluates the trust policy, as AWS does (boto3 against the server)."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError


def _role(local_aws, account: str, statement: dict) -> str:
    name = f"trust-{uuid.uuid4().hex[:8]}"
    iam = local_aws.client("iam", account)
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]


def _assume(local_aws, caller: str | None, role_arn: str, **kwargs):
    sts = local_aws.client("sts", caller)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName=kwargs.pop("session", "fidelity"), **kwargs)


def _denied(call) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def test_external_id_must_match_the_trust_condition(local_aws):
    staging, development = local_aws.account_id("ml-staging"), local_aws.account_id("ml-development")
    arn = _role(
        local_aws,
        staging,
        {
            "Principal": {"AWS": f"arn:aws:iam::{development}:root"},
            "Condition": {"StringEquals": {"sts:ExternalId": "right-one"}},
        },
    )
    assert _assume(local_aws, development, arn, ExternalId="right-one")["Credentials"]["AccessKeyId"]
    for kwargs in ({"ExternalId": "wrong-one"}, {}):
        error = _denied(lambda kwargs=kwargs: _assume(local_aws, development, arn, **kwargs))
        assert error.response["Error"]["Code"] == "AccessDenied"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert f"is not authorized to perform: sts:AssumeRole on resource: {arn}" in error.response["Error"]["Message"]


def test_an_account_not_named_as_principal_is_refused(local_aws):
    staging, development = local_aws.account_id("ml-staging"), local_aws.account_id("ml-development")
    arn = _role(local_aws, staging, {"Principal": {"AWS": f"arn:aws:iam::{development}:root"}})
    production = local_aws.account_id("ml-production-1")
    assert _denied(lambda: _assume(local_aws, production, arn)).response["Error"]["Code"] == "AccessDenied"


def test_a_role_that_does_not_exist_is_refused_like_a_denied_one(local_aws):
    missing = f"arn:aws:iam::{local_aws.account_id('ml-staging')}:role/does-not-exist"
    error = _denied(lambda: _assume(local_aws, None, missing))
    assert error.response["Error"]["Code"] == "AccessDenied" and missing in error.response["Error"]["Message"]


def test_service_principals_and_source_account_conditions_never_admit_an_iam_caller(local_aws):
    staging = local_aws.account_id("ml-staging")
    service_only = _role(
        local_aws,
        staging,
        {
            "Principal": {"Service": "servicecatalog.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": staging}},
        },
    )
    assert _denied(lambda: _assume(local_aws, staging, service_only)).response["Error"]["Code"] == "AccessDenied"
    source_account = _role(
        local_aws,
        staging,
        {
            "Principal": {"AWS": f"arn:aws:iam::{staging}:root"},
            "Condition": {"StringEquals": {"aws:SourceAccount": staging}},
        },
    )
    assert _denied(lambda: _assume(local_aws, staging, source_account)).response["Error"]["Code"] == "AccessDenied"


def test_principal_org_id_is_the_callers_organization(local_aws):
    staging = local_aws.account_id("ml-staging")
    org = local_aws.state["organization_id"]
    inside = _role(
        local_aws, staging, {"Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}}}
    )
    assert _assume(local_aws, local_aws.account_id("ml-development"), inside)["Credentials"]
    other = _role(
        local_aws,
        staging,
        {"Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-someoneelse"}}},
    )
    assert _denied(lambda: _assume(local_aws, None, other)).response["Error"]["Code"] == "AccessDenied"


def test_a_condition_the_evaluator_does_not_understand_refuses(local_aws):
    staging = local_aws.account_id("ml-staging")
    arn = _role(
        local_aws,
        staging,
        {"Principal": {"AWS": "*"}, "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}},
    )
    assert _denied(lambda: _assume(local_aws, None, arn)).response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize("session", ["has space", "has/slash", "a" * 65])
def test_an_invalid_session_name_is_a_validation_error(local_aws, session):
    arn = f"arn:aws:iam::{local_aws.account_id('ml-staging')}:role/OrganizationAccountAccessRole"
    error = _denied(lambda: _assume(local_aws, None, arn, session=session))
    assert error.response["Error"]["Code"] == "ValidationError"
    assert _assume(local_aws, None, arn, session="ok-session")["Credentials"]
