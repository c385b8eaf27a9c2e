"""The catalog's KMS key (bucket.kms_key_id) checked before any write: pure, no AWS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deploy.catalog.key_access import Caller, key_policy_problem
from deploy.catalog.plan import LiveState, TemplateKeyState, plan_publish
from deploy.common.errors import EXIT_INVALID, InputError
from tests.test_catalog_plan import IDENTITY, _catalog_doc, _load, _published

ACCOUNT = IDENTITY.account
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Publisher/ci-run"
CALLER = Caller(SESSION, ACCOUNT, "us-east-1", "o-abcdefghij")
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(principal, actions="kms:*", **extra) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*", **extra}


@pytest.mark.parametrize(
    "statement",
    [
        _allow({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        _allow({"AWS": ACCOUNT}, ["kms:Decrypt", "kms:GenerateDataKey*"]),
        _allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/deploy/Publisher"}, "kms:De*"),  # a role path: by name
        _allow("*", "kms:Decrypt", Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}),
        _allow({"AWS": "*"}, "*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}),
        _allow({"AWS": "*"}, "kms:*", Condition={"StringEqualsIfExists": {"kms:CallerAccount": ACCOUNT}}),
    ],
)
def test_key_policies_that_let_the_caller_decrypt(statement):
    assert key_policy_problem(_policy(statement), "kms:Decrypt", CALLER) is None


@pytest.mark.parametrize(
    "statements, words",
    [
        ([_allow({"AWS": "arn:aws:iam::999999999999:root"})], "no statement allows kms:Decrypt"),
        ([_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"})], "no statement allows"),
        ([_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "kms:Encrypt")], "no statement allows"),
        ([_allow({"Service": "servicecatalog.amazonaws.com"})], "no statement allows"),
        (
            [_allow("*", "kms:Decrypt", Condition={"StringEquals": {"kms:CallerAccount": "999999999999"}})],
            "no statement allows",
        ),
        ([_allow("*", "kms:Decrypt", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})], "no statement"),
        (
            [_allow({"AWS": ACCOUNT}), {**_allow({"AWS": SESSION.replace("ci-run", "x")}), "Effect": "Deny"}],
            None,  # a Deny for another principal does not apply
        ),
        (
            [_allow({"AWS": ACCOUNT}), {**_allow("*", "kms:Decrypt"), "Effect": "Deny", "Sid": "NoDecrypt"}],
            "statement NoDecrypt denies kms:Decrypt",
        ),
        (
            [
                _allow({"AWS": ACCOUNT}),
                {
                    **_allow("*", "kms:*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
                    "Effect": "Deny",
                    "Sid": "TlsOnly",
                },
            ],
            "statement TlsOnly is a Deny with the condition operator Bool",
        ),
        ([{**_allow({"AWS": ACCOUNT}), "NotAction": "kms:Encrypt"}], "no statement allows"),
    ],
)
def test_key_policies_that_do_not(statements, words):
    problem = key_policy_problem(_policy(*statements), "kms:Decrypt", CALLER)
    assert problem is None if words is None else words in problem


def _catalog(tmp_path, kms_key_id=KEY_ARN):
    return _load(tmp_path, _catalog_doc(bucket={"kms_key_id": kms_key_id} if kms_key_id else {}))


def _state(catalog, policy=None, **key) -> LiveState:
    fields = {"arn": KEY_ARN, "manager": "CUSTOMER", "state": "Enabled", "policy": policy, **key}
    return LiveState(bucket_name="b", template_key=TemplateKeyState(KEY_ARN, **fields))


IDENTITY_WITH_ARN = replace(IDENTITY, arn=SESSION)


def test_a_first_publish_needs_generate_data_key_and_decrypt(tmp_path):
    catalog = _catalog(tmp_path)
    other_account = _policy(_allow({"AWS": "arn:aws:iam::999999999999:root"}))
    with pytest.raises(InputError) as caught:
        plan_publish(catalog, _state(catalog, other_account), IDENTITY_WITH_ARN)
    error = caught.value
    assert error.exit_code == EXIT_INVALID and error.key == "bucket.kms_key_id"
    assert KEY_ARN in error.message and "kms:GenerateDataKey, kms:Decrypt" in error.message
    assert SESSION in error.message
    uploads_only = _policy(_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Publisher"}, "kms:GenerateDataKey"))
    with pytest.raises(InputError, match="no statement allows kms:Decrypt"):
        plan_publish(catalog, _state(catalog, uploads_only), IDENTITY_WITH_ARN)
    both = _policy(_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Publisher"}, ["kms:GenerateDataKey", "kms:Decrypt"]))
    assert plan_publish(catalog, _state(catalog, both), IDENTITY_WITH_ARN).actions


def test_nothing_to_upload_or_create_checks_nothing(tmp_path):
    catalog = _catalog(tmp_path)
    published = _published(catalog)
    state = replace(
        published,
        bucket=replace(published.bucket, kms_key_id=KEY_ARN),
        template_key=_state(catalog).template_key,  # no policy: it allows nothing
    )
    assert not plan_publish(catalog, state, IDENTITY_WITH_ARN).actions


@pytest.mark.parametrize(
    "key, words",
    [
        ({"unreadable": "the publisher may not read its key policy (kms:GetKeyPolicy)"}, "kms:GetKeyPolicy"),
        ({"state": "PendingDeletion"}, "it is PendingDeletion"),
        ({"manager": "AWS", "arn": KEY_ARN.replace(ACCOUNT, "999999999999")}, "AWS managed key serves only"),
    ],
)
def test_keys_the_publisher_cannot_check_or_use_are_refused(tmp_path, key, words):
    catalog = _catalog(tmp_path)
    with pytest.raises(InputError) as caught:
        plan_publish(catalog, _state(catalog, _policy(_allow("*")), **key), IDENTITY_WITH_ARN)
    assert words in caught.value.message and caught.value.key == "bucket.kms_key_id"


def test_an_aws_managed_key_of_the_account_and_no_key_are_accepted(tmp_path):
    catalog = _catalog(tmp_path)
    assert plan_publish(catalog, _state(catalog, manager="AWS"), IDENTITY_WITH_ARN).actions
    without = _catalog(tmp_path, None)
    assert plan_publish(without, LiveState(bucket_name="b"), IDENTITY_WITH_ARN).actions
