"""The deployer end to end: the real CLI (``deploy.cli.main``) against the local AWS.

Every test uses stack set names of its own (the server is shared by the session) and
counts API calls with ``deploy.clients.CallCounter`` through ``deploy.commands.make_clients``.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from deploy import commands
from deploy.cli import main
from deploy.clients import CallCounter, Clients
from deploy.plan import OWNER_TAG

TEMPLATE = textwrap.dedent(
    """\
    AWSTemplateFormatVersion: '2010-09-09'
    Description: A test template with one SSM parameter
    Parameters:
      EnvName:
        Type: String
        Default: mlops
      Size:
        Type: String
        AllowedValues: [small, large]
        Default: small
      Secret:
        Type: String
        NoEcho: true
        Default: hidden
    Resources:
      Marker:
        Type: AWS::SSM::Parameter
        Properties:
          Name: !Sub '/${EnvName}/marker-${AWS::Region}-${Size}'
          Type: String
          Value: !Ref Size
    """
)


@pytest.fixture
def counter(monkeypatch) -> CallCounter:
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    return counter


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "marker.yaml").write_text(TEMPLATE)
    return tmp_path


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
    return {
        "name": name,
        "template": "templates/marker.yaml",
        "permission_model": "self_managed",
        "targets": {"accounts": accounts},
        "regions": regions,
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
    tags = {t["Key"]: t["Value"] for t in local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["Tags"]}
    assert tags[OWNER_TAG] == "sagemaker-stackset-deploy"

    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert counter.writes == 0, counter.write_calls()

    # add an account and a region
    manifest = write_manifest(workdir, [self_managed(name, [dev, stg], ["us-east-1", "eu-west-1"], parameters={"Size": "small"})])
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(a, r) for a in (dev, stg) for r in ("us-east-1", "eu-west-1")}

    # remove the account: refused without --yes and no terminal, then done with --yes
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1", "eu-west-1"], parameters={"Size": "small"})])
    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 2 and "--yes" in err
    assert counter.writes == 0
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(dev, "us-east-1"), (dev, "eu-west-1")}

    # a parameter update
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1", "eu-west-1"], parameters={"Size": "large"})])
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
    with pytest.raises(Exception):
        local_aws.client("cloudformation").describe_stack_set(StackSetName=name)
