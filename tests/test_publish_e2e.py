"""``python -m deploy publish`` end to end: the real command line against the local AWS."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from deploy.catalog.model import STUDIO_VISIBILITY_TAG

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (
    "AWSTemplateFormatVersion: '2010-09-09'\nDescription: {name}\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
)


def publish(catalog: Path, *args: str, root: Path | None = None) -> tuple[int, dict | None, str]:
    """Run the command line as a user would; return (exit status, JSON document, stderr)."""
    command = [sys.executable, "-m", "deploy", "publish", "--catalog", str(catalog), "--json", *args]
    if root:
        command += ["--root", str(root)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    document = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, document, done.stderr


@pytest.fixture
def workspace(local_aws, tmp_path):
    """A catalog of three products (one a SageMaker project) shared with an OU and an account."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "environment": f"environment-{suffix}",
        "roles": f"target-account-roles-{suffix}",
        "project": f"mlops-project-{suffix}",
    }
    for key, name in names.items():
        (tmp_path / f"{key}.yaml").write_text(TEMPLATE.format(name=name))
    doc = {
        "version": 1,
        "bucket": {"name": f"catalog-e2e-{suffix}"},
        "portfolio": {"name": f"ML platform {suffix}", "provider": "Platform team", "description": "e2e"},
        "launch_role": {"name": "AmazonSageMakerServiceCatalogProductsLaunchRole"},
        "principals": [{"role": "OrganizationAccountAccessRole"}, {"role_pattern": "*-data-scientist"}],
        "versions": {"keep_active": 2},
        "products": [
            {"name": names["environment"], "template": "environment.yaml", "owner": "Platform team"},
            {"name": names["roles"], "template": "roles.yaml", "owner": "Platform team"},
            {"name": names["project"], "template": "project.yaml", "owner": "Platform team", "sagemaker_project": True},
        ],
        "shares": {
            "organizational_units": ["ou:/development"],  # by path and by name: resolved through Organizations
            "accounts": ["account:ml-staging"],
            "share_principals": True,
            "accept_role": "OrganizationAccountAccessRole",
        },
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # The launch role and the 'role:' principal must exist in the publishing account before
    # publishing (as on AWS, where the management account has neither unless someone creates them).
    iam = local_aws.client("iam")
    for role in ("AmazonSageMakerServiceCatalogProductsLaunchRole", "OrganizationAccountAccessRole"):
        try:
            iam.get_role(RoleName=role)
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    return path, doc, names


def _portfolio_id(sc, name: str) -> str:
    matches = [
        p["Id"]
        for p in sc.get_paginator("list_portfolios").paginate().search("PortfolioDetails[]")
        if p["DisplayName"] == name
    ]
    assert len(matches) == 1
    return matches[0]


def _products(sc, portfolio_id: str) -> dict[str, str]:
    views = (
        sc.get_paginator("search_products_as_admin")
        .paginate(PortfolioId=portfolio_id)
        .search("ProductViewDetails[].ProductViewSummary")
    )
    return {v["Name"]: v["ProductId"] for v in views}


def _versions(sc, product_id: str) -> list[dict]:
    return sc.list_provisioning_artifacts(ProductId=product_id)["ProvisioningArtifactDetails"]


def _principals(sc, portfolio_id: str) -> set[tuple[str, str]]:
    return {
        (p["PrincipalARN"], p["PrincipalType"])
        for p in sc.list_principals_for_portfolio(PortfolioId=portfolio_id)["Principals"]
    }


def test_first_publish_creates_everything_and_the_second_writes_nothing(local_aws, workspace):
    path, doc, names = workspace
    status, first, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    assert first["changed"] and first["calls"]["writes"] == len(first["changes"]) > 0
    sc = local_aws.client("servicecatalog")
    portfolio_id = _portfolio_id(sc, doc["portfolio"]["name"])
    assert first["portfolio"]["id"] == portfolio_id
    products = _products(sc, portfolio_id)
    assert set(products) == set(names.values())
    reported = {p["name"]: p for p in first["products"]}
    for name, product_id in products.items():
        versions = _versions(sc, product_id)
        assert [v["Name"] for v in versions] == [reported[name]["version"]] == [reported[name]["sha256"][:12]]
        assert reported[name]["version_id"] == versions[0]["Id"] and reported[name]["id"] == product_id
        tags = {t["Key"]: t["Value"] for t in sc.describe_product_as_admin(Id=product_id)["Tags"]}
        assert (tags.get(STUDIO_VISIBILITY_TAG) == "true") == (name == names["project"])
    constraints = list(
        sc.get_paginator("list_constraints_for_portfolio")
        .paginate(PortfolioId=portfolio_id)
        .search("ConstraintDetails[]")
    )
    assert sorted(c["ProductId"] for c in constraints if c["Type"] == "LAUNCH") == sorted(products.values())
    assert {
        json.loads(sc.describe_constraint(Id=c["ConstraintId"])["ConstraintParameters"])["LocalRoleName"]
        for c in constraints
    } == {"AmazonSageMakerServiceCatalogProductsLaunchRole"}
    assert _principals(sc, portfolio_id) == {
        (f"arn:aws:iam::{local_aws.management_account_id}:role/OrganizationAccountAccessRole", "IAM"),
        ("arn:aws:iam:::role/*-data-scientist", "IAM_PATTERN"),
    }
    account_shares = sc.describe_portfolio_shares(PortfolioId=portfolio_id, Type="ACCOUNT")["PortfolioShareDetails"]
    staging = local_aws.account_id("ml-staging")
    assert [(s["PrincipalId"], s["Accepted"], s["SharePrincipals"]) for s in account_shares] == [(staging, True, False)]
    ou_shares = sc.describe_portfolio_shares(PortfolioId=portfolio_id, Type="ORGANIZATIONAL_UNIT")[
        "PortfolioShareDetails"
    ]
    assert [(s["PrincipalId"], s["SharePrincipals"]) for s in ou_shares] == [(local_aws.ou_id("development"), True)]
    recipient = local_aws.client("servicecatalog", account="ml-staging")
    assert portfolio_id in [p["Id"] for p in recipient.list_accepted_portfolio_shares()["PortfolioDetails"]]
    # The account share carries no principals: the recipient's own were associated there.
    assert _principals(recipient, portfolio_id) == {
        (f"arn:aws:iam::{staging}:role/OrganizationAccountAccessRole", "IAM"),
        ("arn:aws:iam:::role/*-data-scientist", "IAM_PATTERN"),
    }
    s3 = local_aws.client("s3")
    bucket = doc["bucket"]["name"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    for product in first["products"]:
        body = s3.get_object(Bucket=bucket, Key=f"servicecatalog/templates/{product['sha256']}.yaml")["Body"].read()
        assert (
            body
            == (
                path.parent / doc["products"][[p["name"] for p in doc["products"]].index(product["name"])]["template"]
            ).read_bytes()
        )

    status, second, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    assert second["calls"]["writes"] == 0 and second["changes"] == [] and not second["changed"]
    assert second["calls"]["reads"] > 0
    assert "up to date" in stderr
    assert {p["name"]: p["version_id"] for p in second["products"]} == {
        p["name"]: p["version_id"] for p in first["products"]
    }


def test_changing_one_template_adds_exactly_one_version_to_exactly_that_product(local_aws, workspace):
    path, doc, names = workspace
    assert publish(path, root=path.parent)[0] == 0
    sc = local_aws.client("servicecatalog")
    products = _products(sc, _portfolio_id(sc, doc["portfolio"]["name"]))
    before = {name: [v["Id"] for v in _versions(sc, pid)] for name, pid in products.items()}
    (path.parent / "project.yaml").write_text(TEMPLATE.format(name="changed") + "  Queue:\n    Type: AWS::SQS::Queue\n")

    status, dry, stderr = publish(path, "--dry-run", root=path.parent)
    assert status == 0 and dry["dry_run"] and dry["calls"]["writes"] == 0
    assert [c["action"] for c in dry["changes"]] == ["upload_template", "create_version"]
    assert {name: [v["Id"] for v in _versions(sc, pid)] for name, pid in products.items()} == before

    status, result, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    assert result["calls"]["writes"] == 2 and [c["action"] for c in result["changes"]] == [
        "upload_template",
        "create_version",
    ]
    after = {name: [v["Id"] for v in _versions(sc, pid)] for name, pid in products.items()}
    for name in products:
        if name == names["project"]:
            assert after[name][: len(before[name])] == before[name] and len(after[name]) == len(before[name]) + 1
        else:
            assert after[name] == before[name]
    new = _versions(sc, products[names["project"]])[-1]
    assert (
        new["Name"] == next(p["sha256"][:12] for p in result["products"] if p["name"] == names["project"])
        and new["Active"]
    )
    assert publish(path, root=path.parent)[1]["calls"]["writes"] == 0


def test_old_versions_are_retired_but_one_in_use_is_kept(local_aws, workspace):
    path, doc, names = workspace
    doc["products"] = [p for p in doc["products"] if p["name"] == names["roles"]]
    doc["products"][0]["versions"] = {"keep_active": 1, "keep": 1}
    # Versions are deleted only when every account that can launch them was scanned (issue 20):
    # the account share is read through accept_role; an OU share could not be.
    doc["shares"].pop("organizational_units")
    path.write_text(yaml.safe_dump(doc))
    template = path.parent / "roles.yaml"
    assert publish(path, root=path.parent)[0] == 0
    sc = local_aws.client("servicecatalog")
    product_id = _products(sc, _portfolio_id(sc, doc["portfolio"]["name"]))[names["roles"]]
    first = _versions(sc, product_id)[0]["Id"]
    sc.provision_product(
        ProductId=product_id,
        ProvisioningArtifactId=first,
        ProvisionedProductName=f"in-use-{uuid.uuid4().hex[:6]}",
        ProvisionToken="t",
    )
    template.write_text(TEMPLATE.format(name="second"))
    status, second, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    assert [n["note"] for n in second["notes"]] == [
        "older than 'keep' but used by a provisioned product: kept (inactive)"
    ]
    template.write_text(TEMPLATE.format(name="third"))
    status, third, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    versions = {v["Id"]: v for v in _versions(sc, product_id)}
    current = next(p["version_id"] for p in third["products"])
    assert set(versions) == {first, current}  # the second version was deleted, the used first one kept
    assert versions[first]["Active"] is False and versions[current]["Active"] is True


def _server_snapshot(local_aws) -> tuple:
    sc, s3 = local_aws.client("servicecatalog"), local_aws.client("s3")
    portfolios = sorted(p["Id"] for p in sc.get_paginator("list_portfolios").paginate().search("PortfolioDetails[]"))
    products = sorted(
        v["ProductViewSummary"]["ProductId"]
        for v in sc.get_paginator("search_products_as_admin").paginate().search("ProductViewDetails[]")
    )
    buckets = sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))
    return portfolios, products, buckets


def publish_in_process(
    catalog: Path, *args: str, root: Path | None = None, monkeypatch=None, capsys=None
) -> tuple[int, dict | None, list]:
    """The same command line in this process, keeping the CallCounters it creates."""
    from deploy import cli
    from deploy.catalog import command as publish_cli
    from deploy.common.clients import CallCounter

    counters: list[CallCounter] = []

    def counting() -> CallCounter:
        counters.append(CallCounter())
        return counters[-1]

    monkeypatch.setattr(publish_cli, "CallCounter", counting)
    argv = ["publish", "--catalog", str(catalog), "--json", *args] + (["--root", str(root)] if root else [])
    status = cli.main(argv)
    out = capsys.readouterr().out
    return status, (json.loads(out) if out.strip() else None), counters


INVALID = [
    (lambda doc, aws: doc["products"][0].update(owner=7), "products[0].owner"),
    (
        lambda doc, aws: doc["shares"].update(organizational_units=["ou-zzzz-zzzzzzzz"]),
        "shares.organizational_units[0]",
    ),
    (
        lambda doc, aws: doc["shares"].update(organizational_units=["ou:/development/missing"]),
        "shares.organizational_units[0]",
    ),
    (lambda doc, aws: doc["shares"].update(accounts=["account:no-such-account"]), "shares.accounts[0]"),
    (lambda doc, aws: doc["shares"].update(accounts=["no-such-account"]), "shares.accounts[0]"),  # deprecated form
    (lambda doc, aws: doc["shares"].update(accounts=[aws.management_account_id]), "shares.accounts[0]"),
    (lambda doc, aws: doc["products"][1].update(template="missing.yaml"), "template"),
]


def test_deprecated_share_forms_give_the_same_plan_and_one_note_each(local_aws, workspace):
    path, doc, _ = workspace
    status, current, stderr = publish(path, "--dry-run", root=path.parent)
    assert status == 0, stderr
    assert "deprecated" not in stderr
    doc["shares"].update(organizational_units=["/development"], accounts=["ml-staging"])
    path.write_text(yaml.safe_dump(doc))
    status, deprecated, stderr = publish(path, "--dry-run", root=path.parent)
    assert status == 0, stderr
    assert [line for line in stderr.splitlines() if "deprecated" in line] == [
        f"note: {path}: shares.accounts[0]: 'ml-staging' is deprecated, write 'account:ml-staging'",
        f"note: {path}: shares.organizational_units[0]: '/development' is deprecated, write 'ou:/development'",
    ]
    assert deprecated["changes"] == current["changes"] and deprecated["summary"] == current["summary"]


def test_invalid_catalog_exits_2_through_the_command_line_and_writes_nothing(local_aws, workspace):
    path, doc, _ = workspace
    doc["shares"]["organizational_units"] = ["/development/missing"]
    path.write_text(yaml.safe_dump(doc))
    before = _server_snapshot(local_aws)
    status, document, stderr = publish(path, root=path.parent)
    assert status == 2, stderr
    assert (
        document["error"] == "invalid_input"
        and document["key"] == "shares.organizational_units[0]"
        and document["file"] == str(path)
    )
    assert "/development/missing" in stderr
    assert _server_snapshot(local_aws) == before


@pytest.mark.parametrize("mutate, key", INVALID)
def test_invalid_catalog_exits_2_with_zero_write_calls(local_aws, workspace, mutate, key, monkeypatch, capsys):
    path, doc, _ = workspace
    mutate(doc, local_aws)
    path.write_text(yaml.safe_dump(doc))
    before = _server_snapshot(local_aws)
    status, document, counters = publish_in_process(path, root=path.parent, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 2
    assert document["error"] == "invalid_input" and document["key"] == key and document["file"] == str(path)
    assert all(counter.writes == 0 for counter in counters)
    assert _server_snapshot(local_aws) == before


def test_the_example_catalog_publishes_against_the_seeded_organization(local_aws):
    catalog = yaml.safe_load((ROOT / "examples" / "catalog.yaml").read_text())
    missing = [p["template"] for p in catalog["products"] if not (ROOT / p["template"]).exists()]
    assert not missing, f"the example catalog names templates the generator does not emit: {missing}"
    # Without its launch role in the publishing account, publish refuses before any write (exit 2)...
    iam = local_aws.client("iam")
    try:
        iam.get_role(RoleName="mlops-servicecatalog-launch")
    except iam.exceptions.NoSuchEntityException:
        status, _, stderr = publish(ROOT / "examples" / "catalog.yaml", "--dry-run")
        assert status == 2 and "role/mlops-servicecatalog-launch" in stderr
        # ... so deploy it there first (after the boundary it carries), as examples/manifest.yaml and the demo do.
        local_aws.deploy_permissions_boundary()
        local_aws.client("cloudformation").create_stack(
            StackName="servicecatalog-launch-role",
            TemplateBody=(ROOT / "templates" / "servicecatalog-launch-role.yaml").read_text(),
            Parameters=[{"ParameterKey": "EnvName", "ParameterValue": "mlops"}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    status, dry, stderr = publish(ROOT / "examples" / "catalog.yaml", "--dry-run")
    assert status == 0, stderr  # the example's OU path and account name resolve in the seeded org
    assert dry["calls"]["writes"] == 0
    status, result, stderr = publish(ROOT / "examples" / "catalog.yaml")
    assert status == 0, stderr
    assert publish(ROOT / "examples" / "catalog.yaml")[1]["calls"]["writes"] == 0
    project = next(p for p in result["products"] if p["sagemaker_project"])
    tags = {
        t["Key"]: t["Value"]
        for t in local_aws.client("servicecatalog").describe_product_as_admin(Id=project["id"])["Tags"]
    }
    assert tags[STUDIO_VISIBILITY_TAG] == "true"
