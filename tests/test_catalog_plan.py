"""The catalog file and the publish plan: pure functions, no AWS and no emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy.catalog.model import OWNER_TAG_KEY, OWNER_TAG_VALUE, STUDIO_VISIBILITY_TAG, VersionPolicy, load_catalog
from deploy.catalog.plan import (
    ArtifactState,
    BucketState,
    ConstraintState,
    Identity,
    LiveState,
    PortfolioState,
    ProductState,
    ShareState,
    plan_publish,
    recipient_principals,
    retain_versions,
)
from deploy.common.errors import EXIT_INVALID, InputError

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = Identity(account="123456789012", partition="aws", region="us-east-1")
TEMPLATE = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n"


def _catalog_doc(**overrides) -> dict:
    doc = {
        "version": 1,
        "portfolio": {"name": "ML platform", "provider": "Platform team", "description": "d", "tags": {"team": "ml"}},
        "launch_role": {"name": "LaunchRole"},
        "principals": [{"role": "DataScientist"}, {"role_pattern": "*-mlops-engineer"}],
        "versions": {"keep_active": 2},
        "products": [
            {"name": "environment", "template": "environment.yaml", "owner": "Platform"},
            {"name": "project", "template": "project.yaml", "owner": "Platform", "sagemaker_project": True},
        ],
        "shares": {
            "accounts": ["111111111111"],
            "organizational_units": ["ou-ab12-cd34ef56"],
            "share_principals": True,
            "accept_role": "AcceptRole",
        },
    }
    doc.update(overrides)
    return doc


def _write(tmp_path: Path, doc: dict, templates: dict[str, str] | None = None) -> Path:
    for name, body in (
        templates or {"environment.yaml": TEMPLATE, "project.yaml": TEMPLATE + "  Queue:\n    Type: AWS::SQS::Queue\n"}
    ).items():
        (tmp_path / name).write_text(body)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _load(tmp_path: Path, doc: dict | None = None, templates=None):
    return load_catalog(_write(tmp_path, doc or _catalog_doc(), templates), root=tmp_path)


def _published(catalog, *, accepted=True, extra_artifacts=None) -> LiveState:
    """The live state right after ``catalog`` was published (what the adapter would read)."""
    products, constraints = {}, []
    for index, spec in enumerate(catalog.products):
        product_id = f"prod-{index}"
        artifacts = tuple((extra_artifacts or {}).get(spec.name, ())) + (
            ArtifactState(id=f"pa-{index}", name=spec.version_name, created="2026-01-02T00:00:00"),
        )
        products[spec.name] = ProductState(
            id=product_id,
            name=spec.name,
            fields=spec.fields(),
            tags=spec.desired_tags(),
            artifacts=artifacts,
            in_portfolio=True,
        )
        constraints.append(
            ConstraintState(
                id=f"cons-{index}", product_id=product_id, type="LAUNCH", parameters=spec.launch_role.parameters()
            )
        )
    shares = catalog.shares
    flags = dict(share_principals=shares.share_principals, share_tag_options=shares.share_tag_options)
    return LiveState(
        bucket_name="bucket",
        bucket=BucketState(
            exists=True,
            encrypted=True,
            versioned=True,
            public_access_blocked=True,
            keys=frozenset(catalog.s3_key(p) for p in catalog.products),
        ),
        portfolio=PortfolioState(
            id="port-1",
            name=catalog.portfolio_name,
            description=catalog.portfolio_description,
            provider=catalog.provider,
            tags=catalog.desired_portfolio_tags(),
        ),
        products=products,
        constraints=tuple(constraints),
        principals=frozenset(p.resolve("aws", IDENTITY.account) for p in catalog.principals),
        account_shares={
            a: ShareState(accepted=accepted, share_tag_options=shares.share_tag_options) for a in shares.accounts
        },
        node_shares={("ORGANIZATIONAL_UNIT", ou): ShareState(**flags) for ou in shares.organizational_units},
        organizations_access="ENABLED",
        recipient_principals={
            a: frozenset(recipient_principals(catalog, IDENTITY, a))
            for a in shares.accounts
            if accepted and shares.accept_role
        },
    )


def _ops(plan) -> list[tuple[str, str]]:
    return [(a.op, a.target) for a in plan.actions]


# --- loading and validation ---------------------------------------------------------------


def test_the_example_catalog_is_valid_and_names_registered_templates():
    from generator.registry import TEMPLATES

    doc = yaml.safe_load((ROOT / "examples" / "catalog.yaml").read_text())
    from deploy.catalog.model import validate_document

    validate_document(doc, "examples/catalog.yaml")
    names = {p["template"] for p in doc["products"]}
    assert {
        "templates/environment.yaml",
        "templates/target-account-roles.yaml",
        "templates/model-deploy.yaml",
        "templates/mlops-multi-account-project.yaml",
    } <= names
    assert {Path(t).stem for t in names if (ROOT / t).exists()} <= set(TEMPLATES)
    projects = [p for p in doc["products"] if p.get("sagemaker_project")]
    assert [p["name"] for p in projects] == ["mlops-model-build-project", "mlops-multi-account-project"]


def test_load_hashes_template_bytes_and_builds_content_addressed_keys(tmp_path):
    catalog = _load(tmp_path)
    env, project = catalog.products
    assert len(env.sha256) == 64 and env.sha256 != project.sha256
    assert catalog.s3_key(env) == f"servicecatalog/templates/{env.sha256}.yaml"
    assert env.version_name == env.sha256[:12]
    assert project.desired_tags()[STUDIO_VISIBILITY_TAG] == "true"
    assert STUDIO_VISIBILITY_TAG not in env.desired_tags()
    assert env.launch_role.parameters() == {"LocalRoleName": "LaunchRole"}
    assert env.versions == VersionPolicy(keep_active=2, keep=None)


def test_same_bytes_give_the_same_key_whatever_the_file(tmp_path):
    catalog = _load(tmp_path, templates={"environment.yaml": TEMPLATE, "project.yaml": TEMPLATE})
    assert catalog.s3_key(catalog.products[0]) == catalog.s3_key(catalog.products[1])


def test_version_label_prefixes_the_short_hash(tmp_path):
    doc = _catalog_doc()
    doc["products"][0]["version_label"] = "1.2"
    catalog = _load(tmp_path, doc)
    assert catalog.products[0].version_name == f"1.2-{catalog.products[0].sha256[:12]}"


def test_cloudformation_short_form_tags_are_accepted(tmp_path):
    body = (
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
        "    Properties:\n      TopicName: !Sub '${AWS::StackName}-t'\n"
    )
    catalog = _load(tmp_path, templates={"environment.yaml": body, "project.yaml": TEMPLATE})
    assert catalog.products[0].body == body.encode()


@pytest.mark.parametrize(
    "mutate, where, key, words",
    [
        (lambda d: d["portfolio"].update(colour="red"), "portfolio", "portfolio.colour", "unknown key 'colour'"),
        (
            lambda d: d["products"][1].update(templat="x"),
            "product 'project'",
            "products[1].templat",
            "allowed keys here",
        ),
        (
            lambda d: d["products"][0].pop("owner"),
            "product 'environment'",
            "products[0].owner",
            "missing required key 'owner'",
        ),
        (lambda d: d["shares"].update(accounts=["12345"]), "shares", "shares.accounts[0]", "12-digit account id"),
        (
            lambda d: d["shares"].update(organizational_units=["ou-bad"]),
            "shares",
            "shares.organizational_units[0]",
            "OU id",
        ),
        (
            lambda d: d.update(launch_role={"name": "A", "arn": "arn:aws:iam::123456789012:role/B"}),
            "launch_role",
            "launch_role",
            "exactly one of",
        ),
        (
            lambda d: d["principals"].append({"arn": "not-an-arn"}),
            "principals",
            "principals[2].arn",
            "IAM role, user or group ARN",
        ),
        (
            lambda d: d["products"][0].update(tags={"aws:reserved": "x"}),
            "product 'environment'",
            "products[0].tags",
            "tag key",
        ),
        (lambda d: d["versions"].update(keep_active=0), "versions", "versions.keep_active", "minimum"),
        (
            lambda d: d["products"][0].update(sagemaker_project="yes"),
            "product 'environment'",
            "products[0].sagemaker_project",
            "boolean",
        ),
        (lambda d: d.update(region="Mars-1"), "region", "region", "region name"),
        (
            lambda d: d["products"][1].update(name="environment"),
            "product 'environment'",
            "products[1].name",
            "duplicate product name",
        ),
        (lambda d: d["products"][0].update(template="missing.yaml"), "product 'environment'", "template", "not found"),
        (
            lambda d: d.update(versions={"keep_active": 3, "keep": 2}),
            "versions",
            "versions.keep",
            "at least keep_active",
        ),
        (
            lambda d: d["principals"].append({"role": "DataScientist"}),
            "principals",
            "principals[2].role",
            "duplicate principal",
        ),
        (lambda d: d["shares"].pop("accounts"), "shares", "shares.accept_role", "only used for account shares"),
        (lambda d: d.pop("products"), None, "products", "missing required key 'products'"),
    ],
)
def test_invalid_catalogs_name_file_item_and_key(tmp_path, mutate, where, key, words):
    doc = _catalog_doc()
    mutate(doc)
    with pytest.raises(InputError) as caught:
        _load(tmp_path, doc)
    error = caught.value
    assert error.exit_code == EXIT_INVALID
    assert error.source.endswith("catalog.yaml")
    assert error.where == where
    assert error.key == key
    assert words in error.message


def test_every_schema_violation_is_listed(tmp_path):
    doc = _catalog_doc()
    doc["portfolio"]["colour"] = "red"
    doc["shares"]["accounts"] = ["1"]
    with pytest.raises(InputError) as caught:
        _load(tmp_path, doc)
    assert "and 1 more" in caught.value.message and "shares.accounts[0]" in caught.value.message


def test_a_template_that_is_not_cloudformation_is_refused(tmp_path):
    with pytest.raises(InputError, match="no 'Resources' mapping"):
        _load(tmp_path, templates={"environment.yaml": "just: text\n", "project.yaml": TEMPLATE})


def test_malformed_yaml_reports_line_and_column(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("portfolio:\n  name: [unclosed\n")
    with pytest.raises(InputError) as caught:
        load_catalog(path, root=tmp_path)
    assert caught.value.where.startswith("line ")


@pytest.mark.parametrize(
    "accounts, ous, notes",
    [
        (["222222222222", "account:ml-staging"], ["ou-ab12-cd34ef56", "ou:/workloads/staging"], []),
        (
            ["ml-staging"],
            ["/workloads/staging"],
            [
                "shares.accounts[0]: 'ml-staging' is deprecated, write 'account:ml-staging'",
                "shares.organizational_units[0]: '/workloads/staging' is deprecated, write 'ou:/workloads/staging'",
            ],
        ),
    ],
)
def test_share_references_use_the_common_grammar_and_old_forms_are_rewritten(tmp_path, accounts, ous, notes):
    doc = _catalog_doc()
    doc["shares"].update(accounts=accounts, organizational_units=ous)
    catalog = _load(tmp_path, doc)
    expected_accounts = tuple(a if a[0].isdigit() or ":" in a else f"account:{a}" for a in accounts)
    assert catalog.shares.accounts == expected_accounts
    assert catalog.shares.organizational_units == tuple(o if not o.startswith("/") else f"ou:{o}" for o in ous)
    assert catalog.deprecations == tuple(f"{tmp_path / 'catalog.yaml'}: {note}" for note in notes)


@pytest.mark.parametrize("root", ["r-ab12", "ou:/"])
def test_the_root_is_refused_as_an_ou_share(tmp_path, root):
    doc = _catalog_doc()
    doc["shares"]["organizational_units"] = [root]
    with pytest.raises(InputError) as caught:
        _load(tmp_path, doc)
    assert caught.value.key == "shares.organizational_units[0]" and "organization: true" in caught.value.message


# --- the plan -----------------------------------------------------------------------------------


def test_first_publish_plans_everything_in_dependency_order(tmp_path):
    catalog = _load(tmp_path)
    plan = plan_publish(catalog, LiveState(bucket_name="bucket"), IDENTITY)
    ops = [a.op for a in plan.actions]
    assert ops[:4] == ["create_bucket", "put_bucket_encryption", "put_bucket_versioning", "put_public_access_block"]
    assert ops.count("upload_template") == 2 and ops.count("create_product") == 2 and "create_version" not in ops
    assert (
        ops.index("create_portfolio")
        < ops.index("create_product")
        < ops.index("associate_product")
        < ops.index("create_launch_constraint")
    )
    assert (
        ops.index("enable_organizations_access")
        < [i for i, a in enumerate(plan.actions) if a.op == "create_share" and "node_type" in a.params][0]
    )
    create_share = [a for a in plan.actions if a.op == "create_share" and a.params.get("account")][0]
    assert ops.index("accept_share") > plan.actions.index(create_share)
    principals = {a.params["arn"]: a.params["type"] for a in plan.actions if a.op == "associate_principal"}
    assert principals == {
        "arn:aws:iam::123456789012:role/DataScientist": "IAM",
        "arn:aws:iam:::role/*-mlops-engineer": "IAM_PATTERN",
    }
    project = [a for a in plan.actions if a.op == "create_product" and a.target == "project"][0]
    assert (
        project.params["tags"][STUDIO_VISIBILITY_TAG] == "true"
        and project.params["tags"][OWNER_TAG_KEY] == OWNER_TAG_VALUE
    )
    assert (
        project.params["key"] == catalog.s3_key(catalog.products[1])
        and project.params["version"] == catalog.products[1].version_name
    )


def test_republishing_unchanged_templates_plans_nothing(tmp_path):
    catalog = _load(tmp_path)
    plan = plan_publish(catalog, _published(catalog), IDENTITY)
    assert plan.actions == [] and plan.notes == []


def test_a_changed_template_adds_one_version_to_that_product_only(tmp_path):
    before = _load(tmp_path)
    state = _published(before)
    (tmp_path / "project.yaml").write_text(TEMPLATE + "  Other:\n    Type: AWS::SQS::Queue\n")
    after = load_catalog(tmp_path / "catalog.yaml", root=tmp_path)
    plan = plan_publish(after, state, IDENTITY)
    assert _ops(plan) == [
        ("upload_template", "project.yaml"),
        ("create_version", f"project {after.products[1].version_name}"),
    ]
    assert plan.actions[1].params["version"] == after.products[1].sha256[:12]


def test_keep_last_n_active_deactivates_the_oldest(tmp_path):
    catalog = _load(tmp_path)  # keep_active 2
    old = [ArtifactState(id=f"pa-old{i}", name=f"{i:012x}", created=f"2025-0{i}-01T00:00:00") for i in range(1, 4)]
    state = _published(catalog, extra_artifacts={"environment": old})
    plan = plan_publish(catalog, state, IDENTITY)
    # current (pa-0) + newest old (pa-old3) stay active; pa-old2 and pa-old1 go inactive; nothing deleted.
    assert [(a.op, a.params["version_id"]) for a in plan.actions] == [
        ("deactivate_version", "pa-old2"),
        ("deactivate_version", "pa-old1"),
    ]


def test_a_new_version_counts_towards_the_active_ones(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog)
    old_artifact = state.products["environment"].artifacts[0]
    (tmp_path / "environment.yaml").write_text(TEMPLATE + "  B:\n    Type: AWS::SQS::Queue\n")
    changed = load_catalog(tmp_path / "catalog.yaml", root=tmp_path)
    plan = plan_publish(changed, state, IDENTITY)
    assert [a.op for a in plan.actions] == ["upload_template", "create_version"]  # 2 active allowed: new + previous
    previous = ArtifactState(id="pa-prev", name="0" * 12, created="2025-01-01T00:00:00")
    state2 = _published(catalog, extra_artifacts={"environment": [previous]})
    plan2 = plan_publish(changed, state2, IDENTITY)
    assert [(a.op, a.params.get("version_id")) for a in plan2.actions][-1] == ("deactivate_version", "pa-prev")
    assert old_artifact.id == "pa-0"


def test_retention_deletes_past_keep_but_never_a_version_in_use():
    artifacts = [ArtifactState(id=f"pa-{i}", name=f"{i:012x}", created=f"2025-01-{i + 1:02d}") for i in range(6)]
    deactivate, delete, kept = retain_versions(
        artifacts, "pa-5", VersionPolicy(keep_active=2, keep=3), in_use=frozenset({"pa-0"})
    )
    assert [a.id for a in delete] == ["pa-2", "pa-1"]
    assert [a.id for a in kept] == ["pa-0"]
    assert {a.id for a in deactivate} == {"pa-3", "pa-0"}


def test_retention_never_touches_the_current_version_even_if_oldest():
    artifacts = [ArtifactState(id=f"pa-{i}", name=f"{i:012x}", created=f"2025-01-{i + 1:02d}") for i in range(4)]
    deactivate, delete, kept = retain_versions(
        artifacts, "pa-0", VersionPolicy(keep_active=1, keep=1), in_use=frozenset()
    )
    assert "pa-0" not in {a.id for a in deactivate + delete}
    assert {a.id for a in delete} == {"pa-1", "pa-2", "pa-3"}


def test_in_use_versions_past_keep_are_reported_not_deleted(tmp_path):
    doc = _catalog_doc(versions={"keep_active": 1, "keep": 1})
    catalog = _load(tmp_path, doc)
    old = ArtifactState(id="pa-used", name="a" * 12, created="2025-01-01T00:00:00", active=False)
    state = _published(catalog, extra_artifacts={"environment": [old]})
    state = LiveState(**{**state.__dict__, "in_use": frozenset({"pa-used"})})
    plan = plan_publish(catalog, state, IDENTITY)
    assert not any(a.op == "delete_version" for a in plan.actions)
    assert plan.notes == [
        {
            "product": "environment",
            "version": "a" * 12,
            "note": "older than 'keep' but used by a provisioned product: kept (inactive)",
        }
    ]


def test_reverting_to_an_older_inactive_version_reactivates_it(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog)
    env = catalog.products[0]
    newer = ArtifactState(id="pa-newer", name="f" * 12, created="2026-06-01T00:00:00")
    old_current = ArtifactState(id="pa-0", name=env.version_name, created="2026-01-02T00:00:00", active=False)
    products = dict(state.products)
    products["environment"] = ProductState(
        **{**state.products["environment"].__dict__, "artifacts": (old_current, newer)}
    )
    plan = plan_publish(catalog, LiveState(**{**state.__dict__, "products": products}), IDENTITY)
    # The newer version holds the content rolled back from: it is deactivated, so the
    # reactivated one is the newest users can launch (issue 20, defect 6).
    assert [(a.op, a.params["version_id"]) for a in plan.actions] == [
        ("activate_version", "pa-0"),
        ("deactivate_version", "pa-newer"),
    ]


def test_product_attribute_and_studio_tag_drift_is_updated(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog)
    products = dict(state.products)
    env = products["environment"]
    products["environment"] = ProductState(
        **{
            **env.__dict__,
            "fields": {**env.fields, "Owner": "someone else"},
            "tags": {**env.tags, STUDIO_VISIBILITY_TAG: "true", "extra": "kept"},
        }
    )
    plan = plan_publish(catalog, LiveState(**{**state.__dict__, "products": products}), IDENTITY)
    assert len(plan.actions) == 1
    update = plan.actions[0]
    assert update.op == "update_product" and update.params["fields"] == {"Owner": "Platform"}
    assert update.params["remove_tags"] == [STUDIO_VISIBILITY_TAG]  # user tags ("extra") are left alone


def test_launch_role_change_updates_the_constraint(tmp_path):
    catalog = _load(tmp_path, _catalog_doc(launch_role={"arn": "arn:aws:iam::123456789012:role/Other"}))
    state = _published(_load(tmp_path))
    plan = plan_publish(catalog, state, IDENTITY)
    assert [(a.op, a.params["constraint_id"], a.params["parameters"]) for a in plan.actions] == [
        ("update_launch_constraint", "cons-0", {"RoleArn": "arn:aws:iam::123456789012:role/Other"}),
        ("update_launch_constraint", "cons-1", {"RoleArn": "arn:aws:iam::123456789012:role/Other"}),
    ]


def test_principals_and_shares_converge_both_ways(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog, accepted=False)
    state = LiveState(
        **{
            **state.__dict__,
            "principals": state.principals | {("arn:aws:iam::123456789012:role/Old", "IAM")},
            "account_shares": {**state.account_shares, "222222222222": ShareState()},
            "node_shares": {("ORGANIZATIONAL_UNIT", "ou-ab12-cd34ef56"): ShareState(share_principals=False)},
        }
    )
    plan = plan_publish(catalog, state, IDENTITY)
    assert _ops(plan) == [
        ("accept_share", "account 111111111111"),
        ("associate_recipient_principal", "arn:aws:iam::111111111111:role/DataScientist in 111111111111"),
        ("associate_recipient_principal", "arn:aws:iam:::role/*-mlops-engineer in 111111111111"),
        ("update_share", "organizational_unit ou-ab12-cd34ef56"),
        ("disassociate_principal", "arn:aws:iam::123456789012:role/Old"),
        ("delete_share", "account 222222222222"),
    ]


def test_account_shares_never_share_principals_but_org_shares_do(tmp_path):
    catalog = _load(tmp_path)  # share_principals: true
    plan = plan_publish(catalog, LiveState(bucket_name="b"), IDENTITY)
    shares = {a.target: a.params["share_principals"] for a in plan.actions if a.op == "create_share"}
    assert shares == {"account 111111111111": False, "organizational_unit ou-ab12-cd34ef56": True}
    recipient = [a.params for a in plan.actions if a.op == "associate_recipient_principal"]
    assert [(p["arn"], p["type"], p["role"]) for p in recipient] == [
        ("arn:aws:iam::111111111111:role/DataScientist", "IAM", "AcceptRole"),
        ("arn:aws:iam:::role/*-mlops-engineer", "IAM_PATTERN", "AcceptRole"),
    ]


def test_sharing_with_the_publishing_account_is_invalid_input(tmp_path):
    catalog = _load(tmp_path, _catalog_doc(shares={"accounts": ["123456789012"]}))
    with pytest.raises(InputError) as caught:
        plan_publish(catalog, LiveState(bucket_name="b"), IDENTITY)
    assert caught.value.key == "shares.accounts[0]"


def test_products_dropped_from_the_catalog_leave_the_portfolio_only_if_ours(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog)
    ours = ProductState(id="prod-old", name="retired", tags={OWNER_TAG_KEY: OWNER_TAG_VALUE}, in_portfolio=True)
    theirs = ProductState(id="prod-foreign", name="someone-elses", tags={}, in_portfolio=True)
    state = LiveState(
        **{
            **state.__dict__,
            "foreign_products": (ours, theirs),
            "constraints": state.constraints + (ConstraintState(id="cons-old", product_id="prod-old", type="LAUNCH"),),
        }
    )
    plan = plan_publish(catalog, state, IDENTITY)
    assert _ops(plan) == [("delete_constraint", "retired LAUNCH"), ("disassociate_product", "retired -x- ML platform")]


def test_an_adopted_portfolio_gets_the_ownership_tag_and_missing_bucket_settings(tmp_path):
    catalog = _load(tmp_path)
    state = _published(catalog)
    state = LiveState(
        **{
            **state.__dict__,
            "portfolio": PortfolioState(
                id="port-1", name="ML platform", description="d", provider="Platform team", tags={"team": "ml"}
            ),
            "bucket": BucketState(
                exists=True, encrypted=False, versioned=True, public_access_blocked=False, keys=state.bucket.keys
            ),
        }
    )
    plan = plan_publish(catalog, state, IDENTITY)
    assert _ops(plan) == [
        ("put_bucket_encryption", "bucket"),
        ("put_public_access_block", "bucket"),
        ("update_portfolio", "ML platform"),
    ]
    assert plan.actions[-1].params == {"add_tags": {OWNER_TAG_KEY: OWNER_TAG_VALUE}}
