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


class FakeOrganization:
    """The Organization seen by the lookups: names, OU tree, management account."""

    def __init__(self):
        self.names = {"ml-dev": ["111111111111"], "ml-stg": ["222222222222"], "twin": ["333333333333", "444444444444"]}
        self.tree = {
            "r-root": {"111111111111", "999999999999", "ou-ab12-prod0000"},
            "ou-ab12-prod0000": {"555555555555"},
        }

    def account_id(self, ref):
        from deploy.common.refs import UnresolvedReference

        ids = self.names.get(ref.removeprefix("account:"), [])
        if len(ids) != 1:
            raise UnresolvedReference(ref, "no active account of that name" if not ids else "names two accounts")
        return ids[0]

    def ou_id(self, path):
        from deploy.common.refs import UnresolvedReference

        if path == "ou:/prod":
            return "ou-ab12-prod0000"
        if path == "ou:/":
            return "r-root"
        raise UnresolvedReference(path, "no OU named there")

    def accounts_under(self, parent):
        found = set()
        for child in self.tree.get(parent, ()):
            found |= self.accounts_under(child) if child.startswith("ou-") else {child}
        return frozenset(found)

    def management_account(self):
        return "999999999999"

    def active_accounts(self):
        return frozenset(i for ids in self.names.values() for i in ids) | {"555555555555", "999999999999"}


def test_account_lookups_resolve_names_ids_and_ous_without_the_management_account():
    resolver = ValueResolver(lambda s: None, organizations=FakeOrganization())
    assert resolver.resolve(parse_value({"account": "ml-dev"})).value == "111111111111"
    assert resolver.resolve(parse_value({"account": "account:ml-stg"})).value == "222222222222"
    assert resolver.resolve(parse_value({"account": "555555555555"})).secret is False
    accounts = resolver.resolve(parse_value({"accounts": ["ou:/", "account:ml-stg"]})).value
    assert accounts == "111111111111,222222222222,555555555555"  # sorted, management account left out
    assert resolver.resolve(parse_value({"accounts": ["ou-ab12-prod0000"]})).value == "555555555555"
    for value, words in (
        ({"account": "nobody"}, "no active account of that name"),
        ({"account": "twin"}, "names two accounts"),
        ({"account": "123456789012"}, "no active account 123456789012"),
        ({"accounts": ["ou:/nowhere"]}, "no OU named there"),
    ):
        with pytest.raises(LookupFailed, match=words):
            resolver.resolve(parse_value(value))


def test_output_lookups_pass_through_the_reader_and_join_values():
    from deploy.common.values import NotYetKnown

    seen = []

    def outputs(stack_set, key, account, region):
        seen.append((stack_set, key, account, region))
        if stack_set == "later":
            raise NotYetKnown("stack set later does not exist yet")
        return ["vpce-1", "vpce-2"]

    resolver = ValueResolver(lambda s: None, organizations=FakeOrganization(), outputs=outputs)
    lookup = parse_value({"output": {"stack_set": "net", "key": "S3EndpointId", "account": "ml-stg"}})
    assert resolver.resolve(lookup).value == "vpce-1,vpce-2"
    assert seen == [("net", "S3EndpointId", "222222222222", None)]
    with pytest.raises(NotYetKnown):
        resolver.resolve(parse_value({"output": {"stack_set": "later", "key": "K"}}))


def test_the_schema_knows_the_account_and_output_kinds():
    validator = Draft202012Validator(lookup_schema())
    assert validator.is_valid({"account": "ml-development"})
    assert validator.is_valid({"accounts": ["ou:/staging", "account:ml-dev", "123456789012", "ou-ab12-cd34ef56"]})
    assert validator.is_valid({"output": {"stack_set": "ml-target-network", "key": "S3EndpointId"}})
    assert not validator.is_valid({"accounts": []})
    assert not validator.is_valid({"accounts": ["staging"]})
    assert not validator.is_valid({"output": {"stack_set": "x"}})
    assert not validator.is_valid({"output": {"stack_set": "x", "key": "k", "acount": "a"}})
