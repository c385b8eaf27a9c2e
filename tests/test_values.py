"""Value lookups (env, SSM, Secrets Manager): resolved, cached, secret-marked, refused clearly."""

from __future__ import annotations

import json

import boto3
import pytest
from jsonschema import Draft202012Validator
from moto import mock_aws

from deploy.common.values import Lookup, LookupFailed, LookupKind, ValueResolver, lookup_schema, parse_value

REGION = "us-east-1"


@pytest.fixture
def aws():
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def test_the_schema_takes_exactly_one_known_kind():
    validator = Draft202012Validator(lookup_schema())
    assert validator.is_valid({"env": "EXTERNAL_ID"})
    assert validator.is_valid({"ssm": "/mlops/external-id"})
    assert validator.is_valid({"secretsmanager": {"id": "mlops", "key": "external_id"}})
    assert validator.is_valid({"secretsmanager": "mlops"})
    assert not validator.is_valid({})
    assert not validator.is_valid({"env": "A", "ssm": "/b"})
    assert not validator.is_valid({"vault": "x"})
    assert not validator.is_valid({"env": "not a name"})
    assert not validator.is_valid({"secretsmanager": {"key": "k"}})


def test_parse_value_keeps_text_and_makes_lookups_hashable():
    assert parse_value("plain") == "plain"
    lookup = parse_value({"secretsmanager": {"key": "k", "id": "s"}})
    assert lookup == Lookup(LookupKind.SECRETSMANAGER, (("id", "s"), ("key", "k")))
    assert hash(lookup) == hash(parse_value({"secretsmanager": {"id": "s", "key": "k"}}))
    assert lookup.describe() == '{secretsmanager: {"id": "s", "key": "k"}}'


def test_env_is_secret_and_a_missing_variable_is_named():
    resolver = ValueResolver(lambda s: None, environ={"EXTERNAL_ID": "canary-123"})
    resolved = resolver.resolve(Lookup(LookupKind.ENV, "EXTERNAL_ID"))
    assert (resolved.value, resolved.secret) == ("canary-123", True)
    with pytest.raises(LookupFailed, match="environment variable NOPE is not set"):
        resolver.resolve(Lookup(LookupKind.ENV, "NOPE"))


def test_ssm_secure_string_is_decrypted_and_secret_a_plain_string_is_not(aws):
    aws("ssm").put_parameter(Name="/x/secret", Value="s3cr3t-canary", Type="SecureString")
    aws("ssm").put_parameter(Name="/x/plain", Value="vpce-123", Type="String")
    resolver = ValueResolver(aws)
    assert resolver.resolve(Lookup(LookupKind.SSM, "/x/secret")).__dict__ == {"value": "s3cr3t-canary", "secret": True}
    assert resolver.resolve(Lookup(LookupKind.SSM, "/x/plain")).__dict__ == {"value": "vpce-123", "secret": False}
    with pytest.raises(LookupFailed, match="SSM parameter /x/missing does not exist") as caught:
        resolver.resolve(Lookup(LookupKind.SSM, "/x/missing"))
    assert "canary" not in str(caught.value)


def test_secretsmanager_whole_string_or_one_json_key(aws):
    aws("secretsmanager").create_secret(Name="mlops", SecretString=json.dumps({"external_id": "canary-ext", "n": 3}))
    resolver = ValueResolver(aws)
    whole = resolver.resolve(parse_value({"secretsmanager": "mlops"}))
    assert whole.secret and json.loads(whole.value)["external_id"] == "canary-ext"
    assert (
        resolver.resolve(parse_value({"secretsmanager": {"id": "mlops", "key": "external_id"}})).value == "canary-ext"
    )
    assert resolver.resolve(parse_value({"secretsmanager": {"id": "mlops", "key": "n"}})).value == "3"
    with pytest.raises(LookupFailed, match="has no key 'missing' \\(its keys: external_id, n\\)") as caught:
        resolver.resolve(parse_value({"secretsmanager": {"id": "mlops", "key": "missing"}}))
    assert "canary" not in str(caught.value)
    with pytest.raises(LookupFailed, match="secret nope does not exist"):
        resolver.resolve(parse_value({"secretsmanager": "nope"}))


def test_each_lookup_is_fetched_once_per_run(aws):
    aws("ssm").put_parameter(Name="/x/p", Value="v", Type="String")
    calls = []

    def client(service):
        calls.append(service)
        return aws(service)

    resolver = ValueResolver(client)
    for _ in range(3):
        assert resolver.resolve(Lookup(LookupKind.SSM, "/x/p")).value == "v"
    assert calls == ["ssm"]


def test_access_denied_says_what_to_allow():
    from botocore.exceptions import ClientError

    class Denied:
        def get_parameter(self, **_):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter")

    with pytest.raises(LookupFailed, match="access denied reading SSM parameter /p \\(AccessDeniedException\\)"):
        ValueResolver(lambda s: Denied()).resolve(Lookup(LookupKind.SSM, "/p"))
