"""The local server's Service Catalog patch (localaws/patches/servicecatalog.py),
exercised through boto3 against the running local AWS, as the API reference describes."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

URL = ""  # set by the autouse fixture below: a template in the local S3 (Service Catalog fetches it)
TEMPLATE = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"


@pytest.fixture(autouse=True)
def template_url(local_aws, monkeypatch):
    """A valid template in the management account's local S3; its URL is what the products load."""
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="sc-patch-templates")
    s3.put_object(Bucket="sc-patch-templates", Key="template.yaml", Body=TEMPLATE.encode())
    url = f"{local_aws.endpoint_url}/sc-patch-templates/template.yaml"
    monkeypatch.setitem(globals(), "URL", url)
    return url


def _role(local_aws, account: str | None, name: str) -> str:
    """Create role ``name`` in ``account`` (if missing): IAM principals must exist to be associated."""
    iam = local_aws.client("iam", account)
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _error(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def sc(local_aws):
    return local_aws.client("servicecatalog")


@pytest.fixture
def portfolio(sc):
    return sc.create_portfolio(
        DisplayName=f"p-{uuid.uuid4().hex[:8]}", ProviderName="tests", IdempotencyToken=uuid.uuid4().hex
    )["PortfolioDetail"]["Id"]


def _share_detail(principal_id: str, share_type: str, accepted: bool) -> dict:
    """A PortfolioShareDetail as DescribePortfolioShares returns it for a share of tag options only."""
    return {
        "PrincipalId": principal_id,
        "Type": share_type,
        "Accepted": accepted,
        "ShareTagOptions": True,
        "SharePrincipals": False,
    }


def _product(sc, name=None, version="v1", tags=()):
    response = sc.create_product(
        Name=name or f"prod-{uuid.uuid4().hex[:8]}",
        Owner="tests",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        Tags=list(tags),
        ProvisioningArtifactParameters={
            "Name": version,
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "Info": {"LoadTemplateFromURL": URL},
        },
        IdempotencyToken=uuid.uuid4().hex,
    )
    return response["ProductViewDetail"]["ProductViewSummary"]["ProductId"], response["ProvisioningArtifactDetail"]


def test_the_server_reports_the_patch_applied(local_aws):
    import urllib.request

    with urllib.request.urlopen(f"{local_aws.endpoint_url}/_local/health", timeout=10) as response:
        assert "servicecatalog" in json.load(response)["patches"]


def test_create_product_keeps_its_first_version_and_versions_have_a_lifecycle(sc):
    product_id, first = _product(sc)
    assert first["Name"] == "v1" and first["Active"] is True and first["Id"].startswith("pa-")
    second = sc.create_provisioning_artifact(
        ProductId=product_id,
        Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": URL}, "Type": "CLOUD_FORMATION_TEMPLATE"},
        IdempotencyToken="t",
    )["ProvisioningArtifactDetail"]
    listed = sc.list_provisioning_artifacts(ProductId=product_id)["ProvisioningArtifactDetails"]
    assert [a["Name"] for a in listed] == ["v1", "v2"]
    sc.update_provisioning_artifact(
        ProductId=product_id, ProvisioningArtifactId=first["Id"], Active=False, Guidance="DEPRECATED"
    )
    described = sc.describe_provisioning_artifact(ProductId=product_id, ProvisioningArtifactId=first["Id"])
    assert (
        described["ProvisioningArtifactDetail"]["Active"] is False
        and described["ProvisioningArtifactDetail"]["Guidance"] == "DEPRECATED"
    )
    assert described["Info"] == {"LoadTemplateFromURL": URL}
    assert (
        sc.describe_provisioning_artifact(
            ProductName=sc.describe_product_as_admin(Id=product_id)["ProductViewDetail"]["ProductViewSummary"]["Name"],
            ProvisioningArtifactName="v2",
        )["ProvisioningArtifactDetail"]["Id"]
        == second["Id"]
    )
    sc.delete_provisioning_artifact(ProductId=product_id, ProvisioningArtifactId=first["Id"])
    # A product keeps at least one version.
    assert (
        _error(lambda: sc.delete_provisioning_artifact(ProductId=product_id, ProvisioningArtifactId=second["Id"]))
        == "InvalidParametersException"
    )
    assert (
        _error(lambda: sc.describe_provisioning_artifact(ProductId=product_id, ProvisioningArtifactId=first["Id"]))
        == "ResourceNotFoundException"
    )
    assert (
        _error(
            lambda: sc.create_provisioning_artifact(
                ProductId=product_id, Parameters={"Name": "bad", "Info": {}}, IdempotencyToken="u"
            )
        )
        == "InvalidParametersException"
    )


def test_a_version_used_by_a_provisioned_product_can_be_deleted_as_aws_documents_no_refusal(sc, portfolio):
    product_id, first = _product(sc)
    sc.create_provisioning_artifact(
        ProductId=product_id, Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": URL}}, IdempotencyToken="t"
    )
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    record = sc.provision_product(
        ProductId=product_id,
        ProvisioningArtifactId=first["Id"],
        ProvisionedProductName=f"pp-{uuid.uuid4().hex[:6]}",
        ProvisionToken="x",
    )["RecordDetail"]
    assert record["Status"] == "SUCCEEDED"
    scanned = sc.get_paginator("scan_provisioned_products").paginate(
        AccessLevelFilter={"Key": "Account", "Value": "self"}
    )
    assert {"ProductId": product_id, "ProvisioningArtifactId": first["Id"]}.items() <= next(
        p for p in scanned.search("ProvisionedProducts[]") if p["ProductId"] == product_id
    ).items()
    # DeleteProvisioningArtifact documents refusing the last version only (issue 20: the in-use
    # refusal was invented); the publisher must not rely on one.
    sc.delete_provisioning_artifact(ProductId=product_id, ProvisioningArtifactId=first["Id"])


def test_products_join_portfolios_and_searches_page(sc, portfolio):
    prefix = f"paged-{uuid.uuid4().hex[:6]}"
    ids = [_product(sc, name=f"{prefix}-{i}")[0] for i in range(5)]
    for product_id in ids[:3]:
        sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    pages = list(
        sc.get_paginator("search_products_as_admin").paginate(PortfolioId=portfolio, PaginationConfig={"PageSize": 2})
    )
    assert len(pages) == 2
    assert sorted(d["ProductViewSummary"]["ProductId"] for page in pages for d in page["ProductViewDetails"]) == sorted(
        ids[:3]
    )
    found = sc.search_products_as_admin(Filters={"FullTextSearch": [prefix]})["ProductViewDetails"]
    assert len(found) == 5
    assert [p["Id"] for p in sc.list_portfolios_for_product(ProductId=ids[0])["PortfolioDetails"]] == [portfolio]
    sc.disassociate_product_from_portfolio(ProductId=ids[0], PortfolioId=portfolio)
    assert sc.list_portfolios_for_product(ProductId=ids[0])["PortfolioDetails"] == []
    assert (
        _error(lambda: sc.disassociate_product_from_portfolio(ProductId=ids[0], PortfolioId=portfolio))
        == "ResourceNotFoundException"
    )
    assert (
        _error(lambda: sc.associate_product_with_portfolio(ProductId="prod-missing", PortfolioId=portfolio))
        == "ResourceNotFoundException"
    )


def test_tags_and_attributes_update_on_products_and_portfolios(sc, portfolio):
    product_id, _ = _product(sc, tags=[{"Key": "keep", "Value": "1"}, {"Key": "drop", "Value": "2"}])
    sc.update_product(
        Id=product_id,
        Owner="new owner",
        AddTags=[{"Key": "sagemaker:studio-visibility", "Value": "true"}],
        RemoveTags=["drop"],
    )
    described = sc.describe_product_as_admin(Id=product_id)
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"keep": "1", "sagemaker:studio-visibility": "true"}
    assert described["ProductViewDetail"]["ProductViewSummary"]["Owner"] == "new owner"
    assert [s["Name"] for s in described["ProvisioningArtifactSummaries"]] == ["v1"]
    sc.update_portfolio(Id=portfolio, Description="updated", AddTags=[{"Key": "team", "Value": "ml"}])
    portfolio_view = sc.describe_portfolio(Id=portfolio)
    assert portfolio_view["PortfolioDetail"]["Description"] == "updated" and portfolio_view["Tags"] == [
        {"Key": "team", "Value": "ml"}
    ]


def test_launch_constraints_follow_the_api_rules(sc, portfolio, local_aws):
    _role(local_aws, None, "R"), _role(local_aws, None, "L")
    product_id, _ = _product(sc)

    def create(parameters, token):
        return sc.create_constraint(
            PortfolioId=portfolio,
            ProductId=product_id,
            Type="LAUNCH",
            Parameters=json.dumps(parameters),
            IdempotencyToken=token,
        )

    assert (
        _error(lambda: create({"LocalRoleName": "R"}, "a")) == "ResourceNotFoundException"
    )  # not in the portfolio yet
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    assert (
        _error(lambda: create({"LocalRoleName": "R", "RoleArn": "arn:aws:iam::123456789012:role/R"}, "b"))
        == "InvalidParametersException"
    )
    constraint = create({"LocalRoleName": "R"}, "c")["ConstraintDetail"]
    # The same request with the same IdempotencyToken: the same answer, nothing created twice.
    assert create({"LocalRoleName": "R"}, "c")["ConstraintDetail"]["ConstraintId"] == constraint["ConstraintId"]
    assert _error(lambda: create({"LocalRoleName": "L"}, "c")) == "InvalidParametersException"  # token reused
    assert _error(lambda: create({"LocalRoleName": "Other"}, "d")) == "DuplicateResourceException"
    listed = sc.list_constraints_for_portfolio(PortfolioId=portfolio, ProductId=product_id)["ConstraintDetails"]
    assert [(c["ConstraintId"], c["Type"], c["ProductId"]) for c in listed] == [
        (constraint["ConstraintId"], "LAUNCH", product_id)
    ]
    sc.update_constraint(
        Id=constraint["ConstraintId"], Parameters=json.dumps({"RoleArn": "arn:aws:iam::123456789012:role/L"})
    )
    assert json.loads(sc.describe_constraint(Id=constraint["ConstraintId"])["ConstraintParameters"]) == {
        "RoleArn": "arn:aws:iam::123456789012:role/L"
    }
    # A product with constraints cannot leave the portfolio.
    assert (
        _error(lambda: sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio))
        == "ResourceInUseException"
    )
    sc.delete_constraint(Id=constraint["ConstraintId"])
    sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio)


def test_principals_associate_list_and_disassociate(sc, portfolio, local_aws):
    _role(local_aws, None, "DataScientist")
    sc.associate_principal_with_portfolio(
        PortfolioId=portfolio, PrincipalARN="arn:aws:iam::123456789012:role/DataScientist", PrincipalType="IAM"
    )
    sc.associate_principal_with_portfolio(
        PortfolioId=portfolio, PrincipalARN="arn:aws:iam:::role/*-mlops", PrincipalType="IAM_PATTERN"
    )
    assert (
        _error(
            lambda: sc.associate_principal_with_portfolio(
                PortfolioId=portfolio, PrincipalARN="arn:aws:iam::123456789012:role/x*", PrincipalType="IAM_PATTERN"
            )
        )
        == "InvalidParametersException"
    )
    listed = list(
        sc.get_paginator("list_principals_for_portfolio")
        .paginate(PortfolioId=portfolio)
        .search("Principals[].PrincipalARN")
    )
    assert listed == ["arn:aws:iam::123456789012:role/DataScientist", "arn:aws:iam:::role/*-mlops"]
    sc.disassociate_principal_from_portfolio(
        PortfolioId=portfolio, PrincipalARN="arn:aws:iam::123456789012:role/DataScientist", PrincipalType="IAM"
    )
    assert [p["PrincipalType"] for p in sc.list_principals_for_portfolio(PortfolioId=portfolio)["Principals"]] == [
        "IAM_PATTERN"
    ]


def test_account_shares_are_pending_until_the_recipient_accepts(local_aws, sc, portfolio):
    staging = local_aws.account_id("ml-staging")
    # Principal sharing is for organization shares only.
    assert (
        _error(lambda: sc.create_portfolio_share(PortfolioId=portfolio, AccountId=staging, SharePrincipals=True))
        == "InvalidParametersException"
    )
    sc.create_portfolio_share(PortfolioId=portfolio, AccountId=staging, ShareTagOptions=True)
    share = sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ACCOUNT")["PortfolioShareDetails"]
    assert share == [_share_detail(staging, "ACCOUNT", accepted=False)]
    recipient = local_aws.client("servicecatalog", account="ml-staging")
    assert _error(lambda: recipient.list_principals_for_portfolio(PortfolioId=portfolio)) == "ResourceNotFoundException"
    recipient.accept_portfolio_share(PortfolioId=portfolio, PortfolioShareType="IMPORTED")
    # The recipient associates its own principals with the imported portfolio.
    _role(local_aws, "ml-staging", "DataScientist")
    recipient.associate_principal_with_portfolio(
        PortfolioId=portfolio, PrincipalARN=f"arn:aws:iam::{staging}:role/DataScientist", PrincipalType="IAM"
    )
    assert [
        p["PrincipalARN"] for p in recipient.list_principals_for_portfolio(PortfolioId=portfolio)["Principals"]
    ] == [f"arn:aws:iam::{staging}:role/DataScientist"]
    assert sc.list_principals_for_portfolio(PortfolioId=portfolio)["Principals"] == []
    assert portfolio in [
        p["Id"] for p in recipient.list_accepted_portfolio_shares(PortfolioShareType="IMPORTED")["PortfolioDetails"]
    ]
    assert (
        sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ACCOUNT")["PortfolioShareDetails"][0]["Accepted"]
        is True
    )
    other = local_aws.client("servicecatalog", account="ml-production-1")
    assert _error(lambda: other.accept_portfolio_share(PortfolioId=portfolio)) == "ResourceNotFoundException"
    sc.update_portfolio_share(PortfolioId=portfolio, AccountId=staging, ShareTagOptions=False)
    assert (
        sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ACCOUNT")["PortfolioShareDetails"][0][
            "ShareTagOptions"
        ]
        is False
    )
    sc.delete_portfolio_share(PortfolioId=portfolio, AccountId=staging)
    assert sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ACCOUNT")["PortfolioShareDetails"] == []
    assert portfolio not in [p["Id"] for p in recipient.list_accepted_portfolio_shares()["PortfolioDetails"]]


def test_organization_shares_need_organizations_access_and_are_imported(local_aws, sc, portfolio):
    ou = local_aws.ou_id("development")
    sc.disable_aws_organizations_access()
    assert sc.get_aws_organizations_access_status()["AccessStatus"] == "DISABLED"
    node = {"Type": "ORGANIZATIONAL_UNIT", "Value": ou}
    assert (
        _error(lambda: sc.create_portfolio_share(PortfolioId=portfolio, OrganizationNode=node))
        == "InvalidStateException"
    )
    sc.enable_aws_organizations_access()
    assert sc.create_portfolio_share(PortfolioId=portfolio, OrganizationNode=node, ShareTagOptions=True)[
        "PortfolioShareToken"
    ]
    shares = sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ORGANIZATIONAL_UNIT")["PortfolioShareDetails"]
    assert shares == [_share_detail(ou, "ORGANIZATIONAL_UNIT", accepted=True)]
    assert sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ACCOUNT")["PortfolioShareDetails"] == []
    sc.delete_portfolio_share(PortfolioId=portfolio, OrganizationNode=node)
    assert (
        sc.describe_portfolio_shares(PortfolioId=portfolio, Type="ORGANIZATIONAL_UNIT")["PortfolioShareDetails"] == []
    )


def test_a_portfolio_in_use_cannot_be_deleted(sc, portfolio):
    product_id, _ = _product(sc)
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    assert _error(lambda: sc.delete_portfolio(Id=portfolio)) == "ResourceInUseException"
    assert _error(lambda: sc.delete_product(Id=product_id)) == "ResourceInUseException"
    sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio)
    sc.delete_product(Id=product_id)
    sc.delete_portfolio(Id=portfolio)
    assert _error(lambda: sc.describe_portfolio(Id=portfolio)) == "ResourceNotFoundException"


# --- issue 20: the leniencies closed ------------------------------------------------------


def test_a_launch_role_or_principal_that_does_not_exist_is_refused(sc, portfolio, local_aws):
    product_id, _ = _product(sc)
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    for parameters in ({"LocalRoleName": "no-such-role"}, {"RoleArn": "arn:aws:iam::123456789012:role/no-such-role"}):
        assert (
            _error(
                lambda parameters=parameters: sc.create_constraint(
                    PortfolioId=portfolio,
                    ProductId=product_id,
                    Type="LAUNCH",
                    Parameters=json.dumps(parameters),
                    IdempotencyToken=uuid.uuid4().hex,
                )
            )
            == "InvalidParametersException"
        )
    missing = "arn:aws:iam::123456789012:role/no-such-principal"
    assert (
        _error(
            lambda: sc.associate_principal_with_portfolio(
                PortfolioId=portfolio, PrincipalARN=missing, PrincipalType="IAM"
            )
        )
        == "InvalidParametersException"
    )


def test_an_eleventh_iam_pattern_is_refused(sc, portfolio):
    for index in range(10):
        sc.associate_principal_with_portfolio(
            PortfolioId=portfolio, PrincipalARN=f"arn:aws:iam:::role/*-p{index}", PrincipalType="IAM_PATTERN"
        )
    assert (
        _error(
            lambda: sc.associate_principal_with_portfolio(
                PortfolioId=portfolio, PrincipalARN="arn:aws:iam:::role/*-p10", PrincipalType="IAM_PATTERN"
            )
        )
        == "LimitExceededException"
    )


@pytest.mark.parametrize(
    "info, name",
    [
        ({"LoadTemplateFromURL": "https://unreachable.s3.amazonaws.com/none.yaml"}, "v1"),
        ("not-a-template", "v1"),
        (None, "has space"),
    ],
)
def test_unreachable_or_invalid_templates_and_names_with_spaces_are_refused(sc, local_aws, info, name):
    if info == "not-a-template":
        local_aws.client("s3").put_object(Bucket="sc-patch-templates", Key="bad.yaml", Body=b"just: text\n")
        info = {"LoadTemplateFromURL": f"{local_aws.endpoint_url}/sc-patch-templates/bad.yaml"}
    parameters = {"Name": name, "Type": "CLOUD_FORMATION_TEMPLATE", "Info": info or {"LoadTemplateFromURL": URL}}
    with pytest.raises(ClientError) as caught:
        sc.create_product(
            Name=f"prod-{uuid.uuid4().hex[:8]}",
            Owner="tests",
            ProductType="CLOUD_FORMATION_TEMPLATE",
            ProvisioningArtifactParameters=parameters,
            IdempotencyToken=uuid.uuid4().hex,
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParametersException"
    if name == "v1":
        assert "Invalid templateBody" in caught.value.response["Error"]["Message"]


def test_organization_shares_are_asynchronous_and_nodes_must_exist(sc, portfolio, local_aws):
    sc.enable_aws_organizations_access()
    local_aws.control("servicecatalog", share_polls=2)
    try:
        node = {"Type": "ORGANIZATIONAL_UNIT", "Value": local_aws.ou_id("development")}
        token = sc.create_portfolio_share(PortfolioId=portfolio, OrganizationNode=node)["PortfolioShareToken"]
        statuses = [sc.describe_portfolio_share_status(PortfolioShareToken=token)["Status"] for _ in range(3)]
        assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
        second = sc.create_portfolio_share(
            PortfolioId=portfolio, OrganizationNode={"Type": "ACCOUNT", "Value": local_aws.account_id("ml-staging")}
        )["PortfolioShareToken"]
        # "The portfolio share cannot be updated if the CreatePortfolioShare operation is IN_PROGRESS"
        account_node = {"Type": "ACCOUNT", "Value": local_aws.account_id("ml-staging")}
        assert (
            _error(
                lambda: sc.update_portfolio_share(
                    PortfolioId=portfolio, OrganizationNode=account_node, SharePrincipals=True
                )
            )
            == "InvalidStateException"
        )
        assert second != token
    finally:
        local_aws.control("servicecatalog", share_polls=0)
    missing_ou = {"Type": "ORGANIZATIONAL_UNIT", "Value": "ou-zzzz-zzzzzzzz"}
    assert (
        _error(lambda: sc.create_portfolio_share(PortfolioId=portfolio, OrganizationNode=missing_ou))
        == "ResourceNotFoundException"
    )
    member = local_aws.client("servicecatalog", account="ml-staging")
    assert _error(lambda: member.enable_aws_organizations_access()) == "OperationNotSupportedException"
