"""The deployer end to end: the real CLI (``deploy.cli.main``) against the local AWS.

Every test uses stack set names of its own (the server is shared by the session) and
counts API calls with ``deploy.common.clients.CallCounter`` through ``deploy.stacksets.commands.make_clients``.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from pathlib import Path

import pytest

from deploy.cli import main
from deploy.common.clients import CallCounter, Clients
from deploy.stacksets import commands
from deploy.stacksets.plan import OWNER_TAG_KEY
from tests.conftest import MARKER_TEMPLATE

TEMPLATE = MARKER_TEMPLATE


@pytest.fixture
def counter(monkeypatch) -> CallCounter:
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    return counter


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_manifest(workdir: Path, stack_sets: list[dict], name: str = "manifest.yaml") -> str:
    import yaml

    path = workdir / name
    path.write_text(yaml.safe_dump({"admin_region": "us-east-1", "stack_sets": stack_sets}, sort_keys=False))
    return str(path)


def run(argv: list[str], capsys) -> tuple[int, dict | None, str]:
    code = main(argv)
    captured = capsys.readouterr()
    doc = json.loads(captured.out) if "--json" in argv and captured.out.strip() else None
    return code, doc, captured.err


def instances(local_aws, name: str) -> set[tuple[str, str]]:
    cfn = local_aws.client("cloudformation")
    summaries = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    return {(s["Account"], s["Region"]) for s in summaries}


def self_managed(name: str, accounts: list[str], regions: list[str], **extra) -> dict:
    """A self-managed stack set item; EnvName is the (unique) name, so SSM names never collide."""
    parameters = {"EnvName": name, **extra.pop("parameters", {})}
    return {
        "name": name,
        "template": "templates/marker.yaml",
        "permission_model": "self_managed",
        "targets": {"accounts": accounts},
        "regions": regions,
        "parameters": parameters,
        **extra,
    }


def test_self_managed_create_noop_update_add_remove(local_aws, workdir, counter, capsys):
    name = unique("selfm")
    dev = local_aws.account_id("ml-development")
    stg = local_aws.account_id("ml-staging")
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1"], parameters={"Size": "small"})])

    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(dev, "us-east-1")}
    tags = {
        t["Key"]: t["Value"]
        for t in local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["Tags"]
    }
    assert tags[OWNER_TAG_KEY] == "sagemaker-stackset-deploy"

    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert counter.writes == 0, counter.write_calls()

    # add an account and a region
    manifest = write_manifest(
        workdir, [self_managed(name, [dev, stg], ["us-east-1", "eu-west-1"], parameters={"Size": "small"})]
    )
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(a, r) for a in (dev, stg) for r in ("us-east-1", "eu-west-1")}

    # remove the account: refused without --yes and no terminal, then done with --yes
    manifest = write_manifest(
        workdir, [self_managed(name, [dev], ["us-east-1", "eu-west-1"], parameters={"Size": "small"})]
    )
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 2 and "--yes" in err
    assert counter.writes == 0
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(dev, "us-east-1"), (dev, "eu-west-1")}

    # a parameter update
    manifest = write_manifest(
        workdir, [self_managed(name, [dev], ["us-east-1", "eu-west-1"], parameters={"Size": "large"})]
    )
    code, doc, err = run(["plan", "--manifest", manifest, "--json"], capsys)
    assert code == 0
    (planned,) = doc["stack_sets"]
    assert planned["action"] == "update"
    assert planned["parameter_changes"] == [{"key": "Size", "old": "small", "new": "large"}]
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    params = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in params}["Size"] == "large"

    # destroy
    code, doc, err = run(["destroy", "--manifest", manifest, "--yes", "--json"], capsys)
    assert code == 0, err
    cfn = local_aws.client("cloudformation")
    with pytest.raises(cfn.exceptions.StackSetNotFoundException):
        cfn.describe_stack_set(StackSetName=name)


def service_managed(name: str, ous: list[str], regions: list[str], **extra) -> dict:
    parameters = {"EnvName": name, **extra.pop("parameters", {})}
    return {
        "name": name,
        "template": "templates/marker.yaml",
        "targets": {"organizational_units": ous},
        "regions": regions,
        "parameters": parameters,
        **extra,
    }


def overrides_of(local_aws, name: str, account: str, region: str) -> dict[str, str]:
    data = local_aws.client("cloudformation").describe_stack_instance(
        StackSetName=name, StackInstanceAccount=account, StackInstanceRegion=region
    )["StackInstance"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in data.get("ParameterOverrides", [])}


def test_service_managed_ou_paths_auto_deployment_and_overrides(local_aws, workdir, counter, capsys):
    name = unique("orgwide")
    staging = local_aws.accounts_in("staging")
    production = local_aws.accounts_in("production")
    p1 = production[0]
    item = service_managed(
        name,
        ["ou:/staging", "ou:/production"],
        ["us-east-1", "eu-west-1"],
        auto_deployment=True,
        overrides=[{"accounts": [p1], "regions": ["eu-west-1"], "parameters": {"Size": "large"}}],
    )
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(a, r) for a in staging + production for r in ("us-east-1", "eu-west-1")}
    described = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]
    assert described["AutoDeployment"]["Enabled"] is True
    assert described["ManagedExecution"]["Active"] is True
    assert set(described["OrganizationalUnitIds"]) == {local_aws.ou_id("staging"), local_aws.ou_id("production")}
    # OU targets stay OUs: one CreateStackInstances for both OUs and both regions
    assert counter.calls["cloudformation.CreateStackInstances"] == 1
    assert overrides_of(local_aws, name, p1, "eu-west-1") == {"Size": "large"}
    assert overrides_of(local_aws, name, p1, "us-east-1") == {}

    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0 and counter.writes == 0, counter.write_calls()
    cfn_reads = sum(n for key, n in counter.calls.items() if key.startswith("cloudformation."))
    assert cfn_reads <= 5, counter.calls  # issue 9: an unchanged stack set costs at most 5 reads
    assert doc["stack_sets"][0]["result"] == "no-change"

    # the override moves to the other region: one UpdateStackInstances each way
    item["overrides"][0]["regions"] = ["us-east-1"]
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["plan", "--manifest", manifest, "--json"], capsys)
    assert code == 0 and len(doc["stack_sets"][0]["instances"]["override_change"]) == 2
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert overrides_of(local_aws, name, p1, "us-east-1") == {"Size": "large"}
    assert overrides_of(local_aws, name, p1, "eu-west-1") == {}

    # dropping an OU removes its instances through the OU (after confirmation)
    item["targets"]["organizational_units"] = ["ou:/staging"]
    item.pop("overrides")
    manifest = write_manifest(workdir, [item])
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--yes", "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(a, r) for a in staging for r in ("us-east-1", "eu-west-1")}
    assert counter.calls["cloudformation.DeleteStackInstances"] == 1

    code, doc, err = run(["status", "--manifest", manifest, "--json"], capsys)
    assert code == 0 and doc["stack_sets"][0]["by_status"] == {"CURRENT": 2 * len(staging)}
    code, doc, err = run(["drift", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert doc["stack_sets"][0]["drifted_instances"] == []

    code, doc, err = run(["destroy", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    code, doc, err = run(["status", "--manifest", manifest, "--json"], capsys)
    assert code == 1 and doc["stack_sets"][0]["exists"] is False


def test_dependencies_run_in_order_and_independent_ones_together(local_aws, workdir, counter, capsys, monkeypatch):
    first, second, other = unique("base"), unique("dependent"), unique("other")
    dev = local_aws.account_id("ml-development")
    calls: list[tuple[str, str]] = []

    def record(model, params, **_):
        if model.name in ("CreateStackSet", "CreateStackInstances", "DescribeStackSetOperation", "DeleteStackSet"):
            calls.append((model.name, params.get("StackSetName")))

    def clients():
        made = Clients(counter=counter)
        original = made.client

        def client(service, region=None):
            c = original(service, region)
            if service == "cloudformation" and not getattr(c, "_recorded", False):
                c.meta.events.register("before-parameter-build.cloudformation.*", record)
                c._recorded = True
            return c

        made.client = client
        return made

    monkeypatch.setattr(commands, "make_clients", clients)
    manifest = write_manifest(
        workdir,
        [
            self_managed(second, [dev], ["us-east-1"], depends_on=[first]),
            self_managed(first, [dev], ["us-east-1"]),
            self_managed(other, [dev], ["eu-west-1"]),
        ],
    )
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    last_wait_of_first = max(i for i, call in enumerate(calls) if call == ("DescribeStackSetOperation", first))
    assert calls.index(("CreateStackSet", second)) > last_wait_of_first

    # destroy goes the other way: the dependent first
    code, doc, err = run(["destroy", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert calls.index(("DeleteStackSet", second)) < calls.index(("DeleteStackSet", first))


def test_ownership_guard_and_adopt(local_aws, workdir, counter, capsys):
    name = unique("foreign")
    dev = local_aws.account_id("ml-development")
    local_aws.client("cloudformation").create_stack_set(
        StackSetName=name, TemplateBody=TEMPLATE, PermissionModel="SELF_MANAGED"
    )
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1"])])

    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 1 and "--adopt" in err and counter.writes == 0
    code, doc, err = run(["destroy", "--manifest", manifest, "--yes"], capsys)
    assert code == 1 and "ownership tag" in err and counter.writes == 0
    assert local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["StackSetName"] == name

    code, doc, err = run(["apply", "--manifest", manifest, "--adopt", "--json"], capsys)
    assert code == 0, err
    tags = {
        t["Key"]: t["Value"]
        for t in local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["Tags"]
    }
    assert tags[OWNER_TAG_KEY] == "sagemaker-stackset-deploy"
    assert instances(local_aws, name) == {(dev, "us-east-1")}
    code, doc, err = run(["destroy", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err


def test_zero_targets_ask_before_removing_everything(local_aws, workdir, counter, capsys):
    name = unique("zero")
    dev, stg = local_aws.account_id("ml-development"), local_aws.account_id("ml-staging")
    manifest = write_manifest(workdir, [self_managed(name, [dev, stg], ["us-east-1"])])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    manifest = write_manifest(workdir, [self_managed(name, [], ["us-east-1"])])
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 2 and "NO account" in err and "--yes" in err and counter.writes == 0
    assert len(instances(local_aws, name)) == 2
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0 and instances(local_aws, name) == set()
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


NAMED_ROLE_TEMPLATE = textwrap.dedent(
    """\
    Parameters:
      RoleName: {Type: String}
    Resources:
      Role:
        Type: AWS::IAM::Role
        Properties:
          RoleName: !Ref RoleName
          AssumeRolePolicyDocument:
            Version: '2012-10-17'
            Statement:
              - Effect: Allow
                Principal: {Service: sagemaker.amazonaws.com}
                Action: sts:AssumeRole
    """
)


def test_failed_instances_are_reported_and_a_fixed_manifest_converges(local_aws, workdir, counter, capsys):
    """A named IAM role in two regions of one account collides in the second: exit 1 with the reason."""
    name = unique("collide")
    dev = local_aws.account_id("ml-development")
    (workdir / "templates" / "role.yaml").write_text(NAMED_ROLE_TEMPLATE)
    item = self_managed(name, [dev], ["us-east-1", "eu-west-1"], template="templates/role.yaml")
    item["parameters"] = {"RoleName": name}
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 1
    (result,) = doc["stack_sets"]
    assert result["result"] == "failed" and result["failures"], result
    assert all(f["account"] == dev and f["reason"] for f in result["failures"])
    assert dev in err and "failed" in err.lower()
    assert (
        "CAPABILITY_NAMED_IAM"
        in local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["Capabilities"]
    )

    code, doc, err = run(["status", "--manifest", manifest, "--json"], capsys)
    assert code == 1 and doc["stack_sets"][0]["not_current"]

    # the fix: one region only (the one that worked); the failed instance is removed
    failed_regions = {f["region"] for f in result["failures"]}
    assert len(failed_regions) == 1
    item["regions"] = sorted({"us-east-1", "eu-west-1"} - failed_regions)
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(dev, item["regions"][0])}
    code, doc, err = run(["status", "--manifest", manifest, "--json"], capsys)
    assert code == 0 and doc["stack_sets"][0]["by_status"] == {"CURRENT": 1}
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_large_template_goes_through_an_encrypted_versioned_bucket(local_aws, workdir, counter, capsys):
    name = unique("large")
    dev = local_aws.account_id("ml-development")
    padding = "x" * 60_000
    (workdir / "templates" / "large.yaml").write_text(TEMPLATE + f"Metadata:\n  Padding: {padding}\n")
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1"], template="templates/large.yaml")])
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert counter.calls["s3.PutObject"] == 1
    s3 = local_aws.client("s3")
    bucket = f"sagemaker-stackset-deploy-{local_aws.management_account_id}-us-east-1"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    body = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["TemplateBody"]
    assert padding in body
    counter.calls.clear()
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0 and counter.writes == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


BAD_MANIFESTS = {
    "unknown key": ({"regionz": ["us-east-1"]}, "did you mean 'regions'"),
    "bad account": ({"targets": {"accounts": ["12345"]}}, "12-digit"),
    "unknown region": ({"regions": ["us-east-7"]}, "unknown region"),
    "missing template": ({"template": "templates/nope.yaml"}, "does not exist"),
    "parameter typo": ({"parameters": {"Sise": "large"}}, "did you mean 'Size'"),
    "OU path not in the Organization": (
        {"permission_model": "service_managed", "targets": {"organizational_units": ["ou:/nowhere"]}},
        "no OU named 'nowhere'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_invalid_manifests_exit_2_with_zero_writes(local_aws, workdir, counter, capsys, case):
    name = unique("bad")
    change, words = BAD_MANIFESTS[case]
    item = self_managed(name, [local_aws.account_id("ml-development")], ["us-east-1"])
    item.update(change)
    manifest = write_manifest(workdir, [item])
    for command in (["plan"], ["apply", "--yes"], ["destroy", "--yes"]):
        code, doc, err = run([*command, "--manifest", manifest, "--json"], capsys)
        assert code == 2, (command, err)
        assert counter.writes == 0
        assert doc["error"] == "invalid_input" and manifest in err and f"stack set '{name}'" in err and words in err


def test_credentials_for_another_account_or_none_exit_2(local_aws, workdir, counter, capsys, monkeypatch):
    item = self_managed(unique("creds"), [local_aws.account_id("ml-development")], ["us-east-1"])
    path = Path(write_manifest(workdir, [item]))
    import yaml

    data = yaml.safe_load(path.read_text())
    data["admin_account_id"] = "999999999999"
    path.write_text(yaml.safe_dump(data))
    code, doc, err = run(["apply", "--manifest", str(path), "--yes"], capsys)
    assert code == 2 and "999999999999" in err and "admin_account_id" in err and counter.writes == 0

    data.pop("admin_account_id")
    path.write_text(yaml.safe_dump(data))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, doc, err = run(["apply", "--manifest", str(path), "--yes"], capsys)
    assert code == 2 and "credentials" in err and counter.writes == 0


def test_accounts_by_name_resolve_through_organizations(local_aws, workdir, counter, capsys):
    name = unique("byname")
    manifest = write_manifest(workdir, [self_managed(name, ["account:ml-staging"], ["us-east-1"])])
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(local_aws.account_id("ml-staging"), "us-east-1")}
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0
    counter.calls.clear()
    manifest = write_manifest(workdir, [self_managed(name, ["account:nobody"], ["us-east-1"])])
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 2 and "account:nobody" in err and f"stack set '{name}'" in err and counter.writes == 0


RETAINED_TEMPLATE = (
    "Parameters: {BucketName: {Type: String}}\n"
    "Resources:\n"
    "  Data: {Type: 'AWS::S3::Bucket', DeletionPolicy: Retain, UpdateReplacePolicy: Retain,"
    " Properties: {BucketName: !Ref BucketName}}\n"
)


def test_removing_an_instance_keeps_its_data(local_aws, workdir, counter, capsys):
    """Buckets carry DeletionPolicy Retain: deleting the stack instance leaves the bucket and its objects."""
    name = unique("retain")
    staging = local_aws.account_id("ml-staging")
    (workdir / "templates" / "retained.yaml").write_text(RETAINED_TEMPLATE)
    item = self_managed(name, [staging], ["us-east-1"], template="templates/retained.yaml")
    item["parameters"] = {"BucketName": name}
    manifest = write_manifest(workdir, [item])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    s3 = local_aws.client("s3", account="ml-staging")
    s3.head_bucket(Bucket=name)  # empty: only the policy keeps it (a non-empty one would fail to delete anyway)

    item["targets"]["accounts"] = []
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == set()
    s3.head_bucket(Bucket=name)
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_every_bucket_and_key_of_the_templates_is_retained():
    """What a rollout can remove never takes data with it: all templates, all buckets and keys."""
    from deploy.common.config import parse_yaml as parse_template_text

    root = Path(__file__).resolve().parents[1] / "templates"
    checked = 0
    for path in sorted(root.glob("*.yaml")):
        for logical_id, resource in (parse_template_text(path.read_text()).get("Resources") or {}).items():
            if resource.get("Type") in ("AWS::S3::Bucket", "AWS::KMS::Key"):
                checked += 1
                assert resource.get("DeletionPolicy") == "Retain" and resource.get("UpdateReplacePolicy") == "Retain", (
                    f"{path.name}: {logical_id}"
                )
    assert checked > 0


def test_the_cli_in_process_on_moto(workdir, capsys, monkeypatch):
    """The same CLI with moto in-process (``mock_aws`` plus the local server's patches)."""
    import boto3
    from moto import mock_aws

    from localaws.patches import apply_all

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    apply_all()
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        ou = org.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        account = org.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        org.enable_aws_service_access(ServicePrincipal="member.org.stacksets.cloudformation.amazonaws.com")
        boto3.client("iam").create_role(
            RoleName="AWSCloudFormationStackSetAdministrationRole", AssumeRolePolicyDocument="{}"
        )

        manifest = write_manifest(
            workdir,
            [
                service_managed("inproc-org", ["ou:/workloads"], ["us-east-1"]),
                self_managed("inproc-self", [account], ["us-east-1", "eu-west-1"]),
            ],
        )
        code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
        assert code == 0, err
        cfn = boto3.client("cloudformation")
        for name, expected in (
            ("inproc-org", {(account, "us-east-1")}),
            ("inproc-self", {(account, "us-east-1"), (account, "eu-west-1")}),
        ):
            assert {
                (s["Account"], s["Region"]) for s in cfn.list_stack_instances(StackSetName=name)["Summaries"]
            } == expected
        counter.calls.clear()
        assert run(["apply", "--manifest", manifest], capsys)[0] == 0 and counter.writes == 0
        assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0
        for name in ("inproc-org", "inproc-self"):
            with pytest.raises(cfn.exceptions.StackSetNotFoundException):
                cfn.describe_stack_set(StackSetName=name)


def test_account_filters_narrow_and_widen_ou_targets(local_aws, workdir, counter, capsys):
    name = unique("filters")
    p1, p2 = local_aws.accounts_in("production")
    staging = local_aws.account_id("ml-staging")
    item = service_managed(name, ["ou:/production"], ["us-east-1"])

    item["targets"].update(accounts=[p2], account_filter="difference")
    manifest = write_manifest(workdir, [item])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    assert instances(local_aws, name) == {(p1, "us-east-1")}

    item["targets"].update(accounts=[p2], account_filter="intersection")
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(p2, "us-east-1")}

    item["targets"].update(accounts=[staging], account_filter="union")
    manifest = write_manifest(workdir, [item])
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(p1, "us-east-1"), (p2, "us-east-1"), (staging, "us-east-1")}
    counter.calls.clear()
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0 and counter.writes == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_destroy_notes_a_deleted_stack_set_that_retained_ones_depend_on(local_aws, workdir, capsys):
    dev = local_aws.account_id("ml-development")
    base, kept = unique("base"), unique("kept")
    items = [
        self_managed(base, [dev], ["us-east-1"]),
        self_managed(kept, [dev], ["us-east-1"], retain_stacks=True, depends_on=[base]),
    ]
    manifest = write_manifest(workdir, items)
    code, _, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    code, doc, err = run(["destroy", "--manifest", manifest, "--yes", "--json"], capsys)
    assert code == 0, err
    notes = {item["name"]: item["plan"]["notes"] for item in doc["stack_sets"]}
    assert any(f"{kept} depend(s) on {base}" in note and "retain_stacks" in note for note in notes[base])
    assert not any("depend(s) on" in note for note in notes[kept])
