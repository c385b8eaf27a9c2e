"""Publisher defects of issue 20, each on plain data or stubbed clients (no emulator)."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from botocore.stub import Stubber

from deploy.catalog.aws import CatalogPublisher, PublishFailed
from deploy.catalog.model import load_catalog
from deploy.catalog.plan import (
    ArtifactState,
    BucketState,
    ConstraintState,
    CreateProduct,
    CreateShare,
    Identity,
    LiveState,
    Plan,
    PortfolioState,
    ProductState,
    ShareKind,
    ShareState,
    ShareTarget,
    iam_requirements,
    plan_publish,
)
from deploy.common.clients import CallCounter, Clients
from deploy.common.errors import InputError

ACCOUNT = "123456789012"
IDENTITY = Identity(account=ACCOUNT, partition="aws", region="us-east-1")
TEMPLATE = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"


def _catalog(tmp_path, **extra):
    import yaml

    (tmp_path / "t.yaml").write_text(TEMPLATE)
    doc = {
        "portfolio": {"name": "ML", "provider": "Platform"},
        "launch_role": {"name": "LaunchRole"},
        "principals": [{"role": "Publisher"}, {"role_pattern": "*-ds"}],
        "products": [{"name": "p", "template": "t.yaml", "owner": "o"}],
        **extra,
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_catalog(path, root=tmp_path)


def _published(catalog, *, artifacts=None, constraints=None, **state) -> LiveState:
    spec = catalog.products[0]
    product = ProductState(
        id="prod-1",
        name=spec.name,
        fields=spec.fields(),
        tags=spec.desired_tags(),
        artifacts=tuple(artifacts or (ArtifactState("pa-1", spec.version_name, "2026-01-01"),)),
        in_portfolio=True,
    )
    launch = [ConstraintState("cons-1", "prod-1", "LAUNCH", spec.launch_role.parameters())] if spec.launch_role else []
    return LiveState(
        bucket_name="b",
        bucket=BucketState(True, True, None, True, True, frozenset({catalog.s3_key(spec)})),
        portfolio=PortfolioState(
            "port-1", catalog.portfolio_name, "", catalog.provider, catalog.desired_portfolio_tags()
        ),
        products={spec.name: product},
        constraints=tuple(launch if constraints is None else constraints),
        principals=frozenset(p.resolve("aws", ACCOUNT) for p in catalog.principals),
        **state,
    )


def _ops(plan: Plan) -> list[tuple[str, str]]:
    return [(a.op.value, a.target) for a in plan.actions]


# --- defects 1 and 2: launch roles and principals must exist in the publishing account ----


def test_missing_launch_role_and_principal_are_invalid_input_naming_both(tmp_path):
    catalog = _catalog(tmp_path)
    required = {r.arn for r in iam_requirements(catalog, IDENTITY)}
    assert required == {f"arn:aws:iam::{ACCOUNT}:role/LaunchRole", f"arn:aws:iam::{ACCOUNT}:role/Publisher"}
    state = replace(_published(catalog), iam_existing=frozenset())
    with pytest.raises(InputError) as raised:
        plan_publish(catalog, state, IDENTITY)
    assert "role/LaunchRole" in str(raised.value) and "role/Publisher" in str(raised.value)
    assert raised.value.exit_code == 2
    # With both present the same state plans nothing.
    assert plan_publish(catalog, replace(state, iam_existing=frozenset(required)), IDENTITY).actions == []


def test_patterns_and_other_accounts_principals_are_not_required_here(tmp_path):
    catalog = _catalog(tmp_path, principals=[{"role_pattern": "*-ds"}, {"arn": "arn:aws:iam::111111111111:role/X"}])
    assert [r.arn for r in iam_requirements(catalog, IDENTITY)] == [f"arn:aws:iam::{ACCOUNT}:role/LaunchRole"]


# --- defect 6: rolling back, and a version deprecated out of band --------------------------


def test_a_current_version_deprecated_out_of_band_is_made_default_again(tmp_path):
    catalog = _catalog(tmp_path)
    spec = catalog.products[0]
    state = _published(
        catalog, artifacts=[ArtifactState("pa-1", spec.version_name, "2026-01-01", guidance="DEPRECATED")]
    )
    assert _ops(plan_publish(catalog, state, IDENTITY)) == [("activate_version", f"p {spec.version_name}")]


# --- defect 7 ---------------------------------------------------------------------------


def test_more_than_ten_role_patterns_are_refused_on_loading(tmp_path):
    with pytest.raises(InputError) as raised:
        _catalog(tmp_path, principals=[{"role_pattern": f"*-p{i}"} for i in range(11)])
    assert "principals[10].role_pattern" in str(raised.value) and "at most 10" in str(raised.value)
    assert len(_catalog(tmp_path, principals=[{"role_pattern": f"*-p{i}"} for i in range(10)]).principals) == 10


def test_removing_launch_role_deletes_the_constraint(tmp_path):
    catalog = _catalog(tmp_path)
    state = _published(catalog)
    without = (
        _catalog(tmp_path, launch_role=None)
        if False
        else replace(catalog, products=tuple(replace(p, launch_role=None) for p in catalog.products))
    )
    assert _ops(plan_publish(without, state, IDENTITY)) == [("delete_constraint", "p LAUNCH")]


def test_principals_dropped_from_the_catalog_leave_recipient_accounts(tmp_path):
    catalog = _catalog(tmp_path, shares={"accounts": ["111111111111"], "accept_role": "Accept"})
    stale = ("arn:aws:iam:::role/*-old", "IAM_PATTERN")
    state = _published(
        catalog,
        account_shares={"111111111111": ShareState()},
        recipient_principals={
            "111111111111": frozenset(
                {
                    ("arn:aws:iam:::role/*-ds", "IAM_PATTERN"),
                    ("arn:aws:iam::111111111111:role/Publisher", "IAM"),
                    stale,
                }
            )
        },
    )
    assert _ops(plan_publish(catalog, state, IDENTITY)) == [
        ("disassociate_recipient_principal", "arn:aws:iam:::role/*-old in 111111111111")
    ]


def test_member_accounts_are_shared_as_organization_nodes_and_read_back(tmp_path):
    catalog = _catalog(tmp_path, shares={"member_accounts": ["222222222222"], "share_principals": True})
    state = _published(catalog, organizations_access="ENABLED")
    plan = plan_publish(catalog, state, IDENTITY)
    assert [a for a in plan.actions if isinstance(a, CreateShare)] == [
        CreateShare(share=ShareTarget(ShareKind.ORGANIZATION_MEMBER_ACCOUNT, "222222222222"), share_principals=True)
    ]
    shared = replace(state, node_shares={("ORGANIZATION_MEMBER_ACCOUNT", "222222222222"): ShareState(True)})
    assert plan_publish(catalog, shared, IDENTITY).actions == []
    # Dropped from the catalog: the member account share is deleted.
    dropped = replace(catalog, shares=replace(catalog.shares, member_accounts=()))
    assert _ops(plan_publish(dropped, shared, IDENTITY)) == [
        ("delete_share", "organization_member_account 222222222222")
    ]


def test_a_changed_kms_key_re_encrypts_the_bucket_and_reuploads(tmp_path):
    catalog = _catalog(tmp_path, bucket={"kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/new"})
    spec = catalog.products[0]
    state = _published(catalog)
    state = replace(
        state, bucket=replace(state.bucket, kms_key_id="arn:aws:kms:us-east-1:123456789012:key/old", keys=frozenset())
    )
    assert _ops(plan_publish(catalog, state, IDENTITY)) == [
        ("put_bucket_encryption", "b"),
        ("upload_template", spec.template),
    ]
    same = replace(state, bucket=replace(state.bucket, kms_key_id="new", keys=frozenset({catalog.s3_key(spec)})))
    assert plan_publish(catalog, same, IDENTITY).actions == []


def test_a_changed_version_label_renames_the_current_version(tmp_path):
    catalog = _catalog(tmp_path)
    spec = catalog.products[0]
    labelled = replace(catalog, products=(replace(spec, version_label="2.0"),))
    plan = plan_publish(labelled, _published(catalog), IDENTITY)
    assert [(a.op.value, a.params.get("new_name")) for a in plan.actions] == [
        ("rename_version", f"2.0-{spec.short_hash}")
    ]


def test_versions_are_deleted_only_when_every_launching_account_was_scanned(tmp_path):
    catalog = _catalog(tmp_path, versions={"keep_active": 1, "keep": 1})
    spec = catalog.products[0]
    old = ArtifactState("pa-0", "a" * 12, "2025-01-01", active=False)
    current = ArtifactState("pa-1", spec.version_name, "2026-01-01")
    complete = _published(catalog, artifacts=[old, current])
    assert _ops(plan_publish(catalog, complete, IDENTITY)) == [("delete_version", "p " + "a" * 12)]
    partial = replace(complete, in_use_complete=False)
    plan = plan_publish(catalog, partial, IDENTITY)
    assert plan.actions == [] and "not deleted" in plan.notes[0]["note"]


# --- defects 3 and 4 through stubbed clients ---------------------------------------------


@pytest.fixture
def publisher(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    clients = Clients(session=session, counter=CallCounter())
    publisher = CatalogPublisher(clients, "us-east-1")
    publisher.sleep = lambda seconds: None
    stub = Stubber(publisher.sc)
    stub.activate()
    yield publisher, stub
    stub.assert_no_pending_responses()
    stub.deactivate()


def test_an_organization_share_is_waited_for_and_its_errors_fail_the_publish(publisher):
    publisher, stub = publisher
    share = CreateShare(share=ShareTarget(ShareKind.ORGANIZATIONAL_UNIT, "ou-ab12-cd34ef56"), share_principals=True)
    stub.add_response("create_portfolio_share", {"PortfolioShareToken": "share-1"}, None)
    stub.add_response("describe_portfolio_share_status", {"Status": "IN_PROGRESS"}, {"PortfolioShareToken": "share-1"})
    stub.add_response(
        "describe_portfolio_share_status",
        {
            "Status": "COMPLETED_WITH_ERRORS",
            "ShareDetails": {"ShareErrors": [{"Accounts": ["333333333333"], "Message": "boom", "Error": "x"}]},
        },
        {"PortfolioShareToken": "share-1"},
    )
    state = LiveState(bucket_name="b", portfolio=PortfolioState("port-1", "ML"))
    with pytest.raises(PublishFailed) as raised:
        publisher.execute(Plan(actions=[share], notes=[]), state)
    assert "COMPLETED_WITH_ERRORS" in str(raised.value) or "CompletedWithErrors" in str(raised.value)
    assert raised.value.result.done == []


def test_create_product_retries_send_the_same_token_and_other_content_another(publisher):
    publisher, stub = publisher
    tokens: list[str] = []
    publisher.sc.meta.events.register(
        "provide-client-params.servicecatalog.CreateProduct",
        lambda params, **_: tokens.append(params["IdempotencyToken"]),
    )
    for sha in ("a" * 64, "a" * 64, "b" * 64):
        stub.add_response(
            "create_product", {"ProductViewDetail": {"ProductViewSummary": {"ProductId": "prod-1"}}}, None
        )
        action = CreateProduct(
            product="p", version="v", description="d", bucket="b", key=f"k/{sha}", sha256=sha, fields={"Owner": "o"}
        )
        publisher.execute(Plan(actions=[action], notes=[]), LiveState(bucket_name="b"))
    # A retry of the same creation (the product not yet visible to SearchProductsAsAdmin) gets
    # the same token, so Service Catalog answers with the product it made; new content, a new one.
    assert len(tokens) == 3 and tokens[0] == tokens[1] != tokens[2]
