"""The Service Catalog adapter on botocore's Stubber: every request is checked against the
real API model (names, types, required members) and every response shape too, so the
adapter's calls are right for AWS itself, not only for the emulator."""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from deploy.catalog.aws import CatalogPublisher, PublishFailed
from deploy.catalog.model import OWNER_TAG_KEY, OWNER_TAG_VALUE, STUDIO_VISIBILITY_TAG, load_catalog
from deploy.catalog.plan import plan_publish
from deploy.common.clients import CallCounter, Clients

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TEMPLATE = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
OU = "ou-ab12-cd34ef56"
BUCKET = f"sm-catalog-templates-{ACCOUNT}-{REGION}"
WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "project.yaml").write_text(TEMPLATE)
    doc = {
        "region": REGION,
        "portfolio": {"name": "ML", "provider": "Platform"},
        "launch_role": {"name": "LaunchRole"},
        "principals": [{"role_pattern": "*-data-scientist"}],
        "products": [
            {
                "name": "project",
                "template": "project.yaml",
                "owner": "Platform",
                "sagemaker_project": True,
                "versions": {"keep_active": 1, "keep": 2},
            }
        ],
        "shares": {"accounts": ["111111111111"], "organizational_units": [OU], "share_principals": True},
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_catalog(path, root=tmp_path)


@pytest.fixture
def stubbed(monkeypatch):
    """A publisher whose sts, s3, organizations and servicecatalog clients are stubbed."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    counter = CallCounter()
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name=REGION)
    clients = Clients(session=session, counter=counter)
    stubs = {name: Stubber(clients.client(name, REGION)) for name in ("sts", "s3", "organizations", "servicecatalog")}
    for stub in stubs.values():
        stub.activate()
    yield CatalogPublisher(clients, REGION), stubs, counter
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def _read_identity_and_targets(stubs):
    stubs["sts"].add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/me", "UserId": "AROA:me"},
        {},
    )
    stubs["organizations"].add_response(
        "describe_organizational_unit",
        {"OrganizationalUnit": {"Id": OU, "Name": "development"}},
        {"OrganizationalUnitId": OU},
    )


def _read(publisher, catalog):
    """What ``publish`` does before planning: identity, share targets, live state."""
    identity = publisher.identity()
    catalog = publisher.resolve_targets(catalog)
    return identity, catalog, publisher.read_state(catalog, identity)


def _empty_account_reads(stubs, organizations_access):
    """Reads of an account with no bucket, portfolio or product yet."""
    sc = stubs["servicecatalog"]
    stubs["s3"].add_client_error(
        "head_bucket", service_error_code="404", http_status_code=404, expected_params={"Bucket": BUCKET}
    )
    sc.add_response("list_portfolios", {"PortfolioDetails": []}, {})
    sc.add_response("search_products_as_admin", {"ProductViewDetails": []}, {})
    sc.add_response("get_aws_organizations_access_status", {"AccessStatus": organizations_access}, {})


def test_first_publish_reads_then_writes_with_the_real_request_shapes(stubbed, catalog):
    publisher, stubs, counter = stubbed
    sc, s3 = stubs["servicecatalog"], stubs["s3"]
    product = catalog.products[0]
    key = catalog.s3_key(product)
    _read_identity_and_targets(stubs)
    _empty_account_reads(stubs, "DISABLED")

    identity, catalog, state = _read(publisher, catalog)
    plan = plan_publish(catalog, state, identity)
    assert counter.writes == 0

    s3.add_response(
        "create_bucket", {}, {"Bucket": BUCKET, "CreateBucketConfiguration": {"LocationConstraint": REGION}}
    )
    s3.add_response(
        "put_bucket_encryption",
        {},
        {
            "Bucket": BUCKET,
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]
            },
        },
    )
    s3.add_response("put_bucket_versioning", {}, {"Bucket": BUCKET, "VersioningConfiguration": {"Status": "Enabled"}})
    s3.add_response(
        "put_public_access_block",
        {},
        {
            "Bucket": BUCKET,
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    s3.add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": key,
            "Body": TEMPLATE.encode(),
            "ContentType": "application/x-yaml",
            "Metadata": {"sha256": product.sha256},
            "ServerSideEncryption": "aws:kms",
        },
    )
    sc.add_response(
        "create_portfolio",
        {"PortfolioDetail": {"Id": "port-1", "DisplayName": "ML", "ProviderName": "Platform"}},
        {
            "DisplayName": "ML",
            "ProviderName": "Platform",
            "Description": "",
            "Tags": [{"Key": OWNER_TAG_KEY, "Value": OWNER_TAG_VALUE}],
            "IdempotencyToken": ANY,
        },
    )
    url = f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{key}"
    sc.add_response(
        "create_product",
        {
            "ProductViewDetail": {"ProductViewSummary": {"Id": "prodview-1", "ProductId": "prod-1", "Name": "project"}},
            "ProvisioningArtifactDetail": {"Id": "pa-1", "Name": product.version_name},
        },
        {
            "Name": "project",
            "Owner": "Platform",
            "ProductType": "CLOUD_FORMATION_TEMPLATE",
            "Tags": [{"Key": OWNER_TAG_KEY, "Value": OWNER_TAG_VALUE}, {"Key": STUDIO_VISIBILITY_TAG, "Value": "true"}],
            "ProvisioningArtifactParameters": {
                "Name": product.version_name,
                "Description": product.version_description,
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "Info": {"LoadTemplateFromURL": url},
            },
            "IdempotencyToken": ANY,
        },
    )
    sc.add_response("associate_product_with_portfolio", {}, {"ProductId": "prod-1", "PortfolioId": "port-1"})
    sc.add_response(
        "create_constraint",
        {"ConstraintDetail": {"ConstraintId": "cons-1", "Type": "LAUNCH"}},
        {
            "PortfolioId": "port-1",
            "ProductId": "prod-1",
            "Type": "LAUNCH",
            "Parameters": json.dumps({"LocalRoleName": "LaunchRole"}),
            "Description": ANY,
            "IdempotencyToken": ANY,
        },
    )
    sc.add_response(
        "associate_principal_with_portfolio",
        {},
        {
            "PortfolioId": "port-1",
            "PrincipalARN": "arn:aws:iam:::role/*-data-scientist",
            "PrincipalType": "IAM_PATTERN",
        },
    )
    sc.add_response("enable_aws_organizations_access", {}, {})
    sc.add_response("get_aws_organizations_access_status", {"AccessStatus": "ENABLED"}, {})
    sc.add_response(
        "create_portfolio_share",
        {},
        {"PortfolioId": "port-1", "AccountId": "111111111111", "SharePrincipals": False, "ShareTagOptions": False},
    )
    sc.add_response(
        "create_portfolio_share",
        {"PortfolioShareToken": "share-1"},
        {
            "PortfolioId": "port-1",
            "OrganizationNode": {"Type": "ORGANIZATIONAL_UNIT", "Value": OU},
            "SharePrincipals": True,
            "ShareTagOptions": False,
        },
    )
    sc.add_response("describe_portfolio_share_status", {"Status": "COMPLETED"}, {"PortfolioShareToken": "share-1"})

    result = publisher.execute(plan, state)
    assert (
        result.portfolio_id == "port-1"
        and result.product_ids == {"project": "prod-1"}
        and result.version_ids == {"project": "pa-1"}
    )
    assert [d["action"] for d in result.done][-1] == "create_share" and result.done[-1]["share_token"] == "share-1"
    assert counter.writes == len(plan.actions) == 13


def _steady_state_reads(stubs, catalog, *, artifacts, shares_accepted=True, in_use=()):
    product = catalog.products[0]
    sc, s3 = stubs["servicecatalog"], stubs["s3"]
    s3.add_response("head_bucket", {}, {"Bucket": BUCKET})
    s3.add_response(
        "get_bucket_encryption",
        {
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            }
        },
        {"Bucket": BUCKET},
    )
    s3.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": BUCKET})
    s3.add_response(
        "get_public_access_block",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            }
        },
        {"Bucket": BUCKET},
    )
    s3.add_response("head_object", {}, {"Bucket": BUCKET, "Key": catalog.s3_key(product)})
    # Portfolios and products come over two pages each: the paginators must follow them.
    sc.add_response(
        "list_portfolios", {"PortfolioDetails": [{"Id": "port-0", "DisplayName": "Other"}], "NextPageToken": "p2"}, {}
    )
    sc.add_response(
        "list_portfolios", {"PortfolioDetails": [{"Id": "port-1", "DisplayName": "ML"}]}, {"PageToken": "p2"}
    )
    sc.add_response(
        "describe_portfolio",
        {
            "PortfolioDetail": {"Id": "port-1", "DisplayName": "ML", "ProviderName": "Platform", "Description": ""},
            "Tags": [{"Key": OWNER_TAG_KEY, "Value": OWNER_TAG_VALUE}],
        },
        {"Id": "port-1"},
    )
    summary = {"Id": "prodview-1", "ProductId": "prod-1", "Name": "project", "Owner": "Platform"}
    sc.add_response(
        "search_products_as_admin",
        {
            "ProductViewDetails": [{"ProductViewSummary": {"Id": "pv-9", "ProductId": "prod-9", "Name": "unrelated"}}],
            "NextPageToken": "s2",
        },
        {},
    )
    sc.add_response(
        "search_products_as_admin", {"ProductViewDetails": [{"ProductViewSummary": summary}]}, {"PageToken": "s2"}
    )
    sc.add_response(
        "search_products_as_admin", {"ProductViewDetails": [{"ProductViewSummary": summary}]}, {"PortfolioId": "port-1"}
    )
    sc.add_response(
        "describe_product_as_admin",
        {
            "ProductViewDetail": {"ProductViewSummary": summary},
            "Tags": [{"Key": OWNER_TAG_KEY, "Value": OWNER_TAG_VALUE}, {"Key": STUDIO_VISIBILITY_TAG, "Value": "true"}],
        },
        {"Id": "prod-1"},
    )
    sc.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": artifacts}, {"ProductId": "prod-1"})
    sc.add_response(
        "list_constraints_for_portfolio",
        {
            "ConstraintDetails": [
                {"ConstraintId": "cons-1", "Type": "LAUNCH", "ProductId": "prod-1", "PortfolioId": "port-1"}
            ]
        },
        {"PortfolioId": "port-1"},
    )
    sc.add_response(
        "describe_constraint",
        {
            "ConstraintDetail": {"ConstraintId": "cons-1", "Type": "LAUNCH"},
            "ConstraintParameters": '{"LocalRoleName": "LaunchRole"}',
            "Status": "AVAILABLE",
        },
        {"Id": "cons-1"},
    )
    sc.add_response(
        "list_principals_for_portfolio",
        {"Principals": [{"PrincipalARN": "arn:aws:iam:::role/*-data-scientist", "PrincipalType": "IAM_PATTERN"}]},
        {"PortfolioId": "port-1"},
    )
    # DescribePortfolioShares has no botocore paginator: the adapter follows PageToken itself.
    sc.add_response(
        "describe_portfolio_shares",
        {"PortfolioShareDetails": [], "NextPageToken": "t2"},
        {"PortfolioId": "port-1", "Type": "ACCOUNT"},
    )
    sc.add_response(
        "describe_portfolio_shares",
        {
            "PortfolioShareDetails": [
                {
                    "PrincipalId": "111111111111",
                    "Type": "ACCOUNT",
                    "Accepted": shares_accepted,
                    "SharePrincipals": False,
                    "ShareTagOptions": False,
                }
            ]
        },
        {"PortfolioId": "port-1", "Type": "ACCOUNT", "PageToken": "t2"},
    )
    sc.add_response(
        "describe_portfolio_shares", {"PortfolioShareDetails": []}, {"PortfolioId": "port-1", "Type": "ORGANIZATION"}
    )
    sc.add_response(
        "describe_portfolio_shares",
        {
            "PortfolioShareDetails": [
                {
                    "PrincipalId": OU,
                    "Type": "ORGANIZATIONAL_UNIT",
                    "Accepted": True,
                    "SharePrincipals": True,
                    "ShareTagOptions": False,
                }
            ]
        },
        {"PortfolioId": "port-1", "Type": "ORGANIZATIONAL_UNIT"},
    )
    sc.add_response(
        "describe_portfolio_shares",
        {"PortfolioShareDetails": []},
        {"PortfolioId": "port-1", "Type": "ORGANIZATION_MEMBER_ACCOUNT"},
    )
    sc.add_response("get_aws_organizations_access_status", {"AccessStatus": "ENABLED"}, {})
    sc.add_response(
        "scan_provisioned_products",
        {
            "ProvisionedProducts": [
                {"Id": f"pp-{i}", "ProductId": "prod-1", "ProvisioningArtifactId": pa} for i, pa in enumerate(in_use)
            ]
        },
        {"AccessLevelFilter": {"Key": "Account", "Value": "self"}},
    )


def test_unchanged_catalog_reads_every_page_and_plans_nothing(stubbed, catalog):
    publisher, stubs, counter = stubbed
    product = catalog.products[0]
    _read_identity_and_targets(stubs)
    _steady_state_reads(
        stubs,
        catalog,
        artifacts=[
            {"Id": "pa-1", "Name": product.version_name, "CreatedTime": WHEN, "Active": True, "Guidance": "DEFAULT"}
        ],
    )
    identity, catalog, state = _read(publisher, catalog)
    assert state.portfolio.id == "port-1" and state.products["project"].id == "prod-1"
    assert state.account_shares["111111111111"].accepted
    plan = plan_publish(catalog, state, identity)
    assert plan.actions == []
    assert counter.writes == 0 and counter.reads == 25  # one per page


def test_versions_past_keep_are_not_deleted_while_other_accounts_cannot_be_scanned(stubbed, catalog):
    # ScanProvisionedProducts sees the publishing account only, and AWS documents no refusal to
    # delete a version in use: with an OU share (and an account share without accept_role) the
    # accounts that may use pa-1 cannot be read, so it is deactivated and reported, never deleted.
    publisher, stubs, counter = stubbed
    sc = stubs["servicecatalog"]
    old = [{"Id": f"pa-{i}", "Name": f"{i:012x}", "CreatedTime": WHEN.replace(month=i), "Active": True} for i in (1, 2)]
    _read_identity_and_targets(stubs)
    _steady_state_reads(stubs, catalog, artifacts=old, in_use=["pa-9"])
    identity, catalog, state = _read(publisher, catalog)
    assert not state.in_use_complete
    plan = plan_publish(catalog, state, identity)
    assert [(a.op, a.params.get("version_id")) for a in plan.actions] == [
        ("create_version", None),
        ("deactivate_version", "pa-2"),
        ("deactivate_version", "pa-1"),
    ]
    assert [n["version"] for n in plan.notes] == [f"{1:012x}"] and "not deleted" in plan.notes[0]["note"]

    product = catalog.products[0]
    sc.add_response(
        "create_provisioning_artifact",
        {
            "ProvisioningArtifactDetail": {"Id": "pa-3", "Name": product.version_name, "Active": True},
            "Status": "AVAILABLE",
        },
        {
            "ProductId": "prod-1",
            "Parameters": {
                "Name": product.version_name,
                "Description": product.version_description,
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "Info": {"LoadTemplateFromURL": ANY},
            },
            "IdempotencyToken": ANY,
        },
    )
    for pa in ("pa-2", "pa-1"):
        sc.add_response(
            "update_provisioning_artifact", {}, {"ProductId": "prod-1", "ProvisioningArtifactId": pa, "Active": False}
        )
    result = publisher.execute(plan, state)
    assert (
        result.version_ids == {"project": "pa-3"}
        and counter.write_calls().get("servicecatalog.DeleteProvisioningArtifact") is None
    )


def test_pending_account_share_is_accepted_through_the_recipient_role(stubbed, catalog, monkeypatch):
    publisher, stubs, counter = stubbed
    _read_identity_and_targets(stubs)
    product = catalog.products[0]
    _steady_state_reads(
        stubs,
        catalog,
        artifacts=[{"Id": "pa-1", "Name": product.version_name, "CreatedTime": WHEN, "Active": True}],
        shares_accepted=False,
    )
    identity, catalog, state = _read(publisher, catalog)
    from dataclasses import replace

    catalog = replace(catalog, shares=replace(catalog.shares, accept_role="AcceptRole"))
    plan = plan_publish(catalog, state, identity)
    assert [(a.op, a.target) for a in plan.actions] == [
        ("accept_share", "account 111111111111"),
        ("associate_recipient_principal", "arn:aws:iam:::role/*-data-scientist in 111111111111"),
    ]

    stubs["sts"].add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "AKIARECIPIENT0000000",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": WHEN,
            }
        },
        {"RoleArn": "arn:aws:iam::111111111111:role/AcceptRole", "RoleSessionName": "sm-deploy-accept-portfolio-share"},
    )
    recipient_calls = []
    original_client = Clients.client

    def recipient_client(self, service, region=None):
        client = original_client(self, service, region)
        if self.session.get_credentials().access_key == "AKIARECIPIENT0000000":
            stub = Stubber(client)
            stub.add_response("accept_portfolio_share", {}, {"PortfolioId": "port-1", "PortfolioShareType": "IMPORTED"})
            stub.add_response(
                "associate_principal_with_portfolio",
                {},
                {
                    "PortfolioId": "port-1",
                    "PrincipalARN": "arn:aws:iam:::role/*-data-scientist",
                    "PrincipalType": "IAM_PATTERN",
                },
            )
            stub.activate()
            recipient_calls.append(stub)
        return client

    monkeypatch.setattr(Clients, "client", recipient_client)
    publisher.execute(plan, state)
    assert len(recipient_calls) == 1
    recipient_calls[0].assert_no_pending_responses()
    assert (
        counter.calls["servicecatalog.AcceptPortfolioShare"] == 1 and counter.calls["sts.AssumeRole"] == 1
    )  # one session per recipient


def test_a_failed_call_stops_and_reports_what_was_done(stubbed, catalog):
    publisher, stubs, counter = stubbed
    s3 = stubs["s3"]
    _read_identity_and_targets(stubs)
    _empty_account_reads(stubs, "ENABLED")
    identity, catalog, state = _read(publisher, catalog)
    plan = plan_publish(catalog, state, identity)
    s3.add_client_error(
        "create_bucket", service_error_code="AccessDenied", service_message="no s3:CreateBucket", http_status_code=403
    )
    with pytest.raises(PublishFailed) as caught:
        publisher.execute(plan, state)
    assert caught.value.result.done == []
    assert (
        caught.value.result.failed["action"] == "create_bucket"
        and caught.value.result.failed["error"] == "AccessDenied"
    )
    assert caught.value.exit_code == 1


def test_unknown_ou_is_invalid_input_before_any_write(stubbed, catalog):
    publisher, stubs, counter = stubbed
    stubs["organizations"].add_client_error(
        "describe_organizational_unit", service_error_code="OrganizationalUnitNotFoundException", http_status_code=400
    )
    from deploy.common.errors import InputError

    with pytest.raises(InputError) as caught:
        catalog = publisher.resolve_targets(catalog)
    assert caught.value.key == "shares.organizational_units[0]" and counter.writes == 0


def test_account_names_and_ou_paths_resolve_through_organizations(stubbed, catalog):
    from dataclasses import replace

    publisher, stubs, counter = stubbed
    org = stubs["organizations"]
    catalog = replace(
        catalog,
        shares=replace(
            catalog.shares,
            accounts=("account:ml-staging", "222222222222"),
            organizational_units=("ou:/workloads/staging", OU),
        ),
    )
    _stub_org_lookups(org)
    resolved = publisher.resolve_targets(catalog)
    assert resolved.shares.accounts == ("111111111111", "222222222222")
    assert resolved.shares.organizational_units == ("ou-ab12-22222222", OU)
    assert counter.writes == 0


def _stub_org_lookups(org):
    """Organizations answers for account:ml-staging and ou:/workloads/staging, then OU's check."""
    org.add_response("list_accounts", {"Accounts": [{"Id": "333333333333", "Name": "ml-dev"}], "NextToken": "a2"}, {})
    org.add_response("list_accounts", {"Accounts": [{"Id": "111111111111", "Name": "ml-staging"}]}, {"NextToken": "a2"})
    org.add_response("list_roots", {"Roots": [{"Id": "r-ab12"}]}, {})
    org.add_response(
        "list_organizational_units_for_parent",
        {"OrganizationalUnits": [{"Id": "ou-ab12-00000001", "Name": "sandbox"}], "NextToken": "o2"},
        {"ParentId": "r-ab12"},
    )
    org.add_response(
        "list_organizational_units_for_parent",
        {"OrganizationalUnits": [{"Id": "ou-ab12-11111111", "Name": "workloads"}]},
        {"ParentId": "r-ab12", "NextToken": "o2"},
    )
    org.add_response(
        "list_organizational_units_for_parent",
        {"OrganizationalUnits": [{"Id": "ou-ab12-22222222", "Name": "staging"}]},
        {"ParentId": "ou-ab12-11111111"},
    )
    org.add_response("describe_organizational_unit", {"OrganizationalUnit": {"Id": OU}}, {"OrganizationalUnitId": OU})


def test_deprecated_bare_names_and_paths_resolve_to_the_same_ids(stubbed, tmp_path):
    publisher, stubs, counter = stubbed
    (tmp_path / "project.yaml").write_text(TEMPLATE)
    doc = {
        "portfolio": {"name": "ML", "provider": "Platform"},
        "products": [{"name": "project", "template": "project.yaml", "owner": "Platform"}],
        "shares": {"accounts": ["ml-staging", "222222222222"], "organizational_units": ["/workloads/staging", OU]},
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    catalog = load_catalog(path, root=tmp_path)
    assert catalog.shares.accounts == ("account:ml-staging", "222222222222")
    assert catalog.shares.organizational_units == ("ou:/workloads/staging", OU)
    assert catalog.deprecations == (
        f"{path}: shares.accounts[0]: 'ml-staging' is deprecated, write 'account:ml-staging'",
        f"{path}: shares.organizational_units[0]: '/workloads/staging' is deprecated, write 'ou:/workloads/staging'",
    )
    _stub_org_lookups(stubs["organizations"])
    resolved = publisher.resolve_targets(catalog)
    assert resolved.shares.accounts == ("111111111111", "222222222222")
    assert resolved.shares.organizational_units == ("ou-ab12-22222222", OU)
    assert counter.writes == 0


@pytest.mark.parametrize(
    "accounts, ous, key",
    [(("account:nobody",), (), "shares.accounts[0]"), ((), ("ou:/missing",), "shares.organizational_units[0]")],
)
def test_unknown_account_name_or_ou_path_is_invalid_input(stubbed, catalog, accounts, ous, key):
    from dataclasses import replace

    from deploy.common.errors import InputError

    publisher, stubs, counter = stubbed
    org = stubs["organizations"]
    catalog = replace(catalog, shares=replace(catalog.shares, accounts=accounts, organizational_units=ous))
    if accounts:
        org.add_response("list_accounts", {"Accounts": [{"Id": "111111111111", "Name": "ml-staging"}]}, {})
    else:
        org.add_response("list_roots", {"Roots": [{"Id": "r-ab12"}]}, {})
        org.add_response("list_organizational_units_for_parent", {"OrganizationalUnits": []}, {"ParentId": "r-ab12"})
    with pytest.raises(InputError) as caught:
        publisher.resolve_targets(catalog)
    assert caught.value.key == key and counter.writes == 0
