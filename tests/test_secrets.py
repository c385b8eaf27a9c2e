"""Secrets: values from secret sources and NoEcho values never appear in any output, tag or
description; missing sources are clear input errors before any write."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from deploy.cli import main
from deploy.common.clients import CallCounter, Clients
from deploy.common.redact import REDACTOR
from deploy.stacksets import commands
from tests.test_deploy_e2e import run, unique, write_manifest

TEMPLATE = """\
Parameters:
  EnvName: {Type: String}
  Secret: {Type: String, NoEcho: true, MinLength: 8}
  Token: {Type: String, MinLength: 8}
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/${EnvName}/secret-marker-${AWS::Region}'
      Type: String
      Value: !Sub 'token-length-ok-${EnvName}'
"""


@pytest.fixture
def calls(monkeypatch) -> CallCounter:
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    return counter


@pytest.fixture(autouse=True)
def fresh_redactor():
    REDACTOR.clear()
    yield
    REDACTOR.clear()


def secret_item(workdir, name: str, accounts: list[str], parameters: dict, **extra) -> dict:
    """A self-managed stack set of the secret-taking template (written into ``workdir``)."""
    (workdir / "templates" / "secret.yaml").write_text(TEMPLATE)
    return {
        "name": name,
        "template": "templates/secret.yaml",
        "permission_model": "self_managed",
        "targets": {"accounts": accounts},
        "regions": ["us-east-1"],
        "parameters": {"EnvName": name, **parameters},
        **extra,
    }


def canary(label: str) -> str:
    return f"canary-{label}-{uuid.uuid4().hex[:12]}"


def test_no_command_prints_a_secret(local_aws, workdir, capsys, monkeypatch, calls):
    name = unique("secrets")
    dev, stg = local_aws.account_id("ml-development"), local_aws.account_id("ml-staging")
    from_env, from_ssm, in_override, in_override_2 = canary("env"), canary("ssm"), canary("ovr"), canary("ovr2")
    monkeypatch.setenv("SM_CANARY_SECRET", from_env)
    local_aws.client("ssm").put_parameter(Name=f"/{name}/token", Value=from_ssm, Type="SecureString")

    def manifest(override_value: str) -> str:
        item = secret_item(
            workdir,
            name,
            [dev, stg],
            {"Secret": {"env": "SM_CANARY_SECRET"}, "Token": {"ssm": f"/{name}/token"}},
            overrides=[{"accounts": [stg], "parameters": {"Secret": override_value}}],
        )
        return write_manifest(workdir, [item])

    outputs = []
    path = manifest(in_override)
    for argv in (["plan", "--json"], ["plan"], ["apply", "--json"], ["status", "--json"], ["status"], ["drift"]):
        code = main([*argv, "--manifest", path])
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]  # stdout (the plan, JSON) and stderr alike
        assert code == 0, captured.err
    path = manifest(in_override_2)  # an override change of a NoEcho value: shown as changed, never printed
    for argv in (["plan", "--json"], ["plan"], ["apply"]):
        code = main([*argv, "--manifest", path])
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
        assert code == 0, captured.err
    captured_json = []
    for argv in (["plan", "--json"], ["destroy", "--yes", "--json"]):
        code, doc, err = run([*argv, "--manifest", path], capsys)
        outputs.append(err)
        captured_json.append(json.dumps(doc))
        assert code == 0, err

    everything = "\n".join(outputs + captured_json)
    assert "****" in everything
    for secret in (from_env, from_ssm, in_override, in_override_2):
        assert secret not in everything


def test_a_secret_never_reaches_tags_or_descriptions(local_aws, workdir, capsys, monkeypatch, calls):
    name = unique("tagged")
    secret = canary("tag")
    monkeypatch.setenv("SM_CANARY_SECRET", secret)
    item = secret_item(
        workdir,
        name,
        [local_aws.account_id("ml-development")],
        {"Secret": {"env": "SM_CANARY_SECRET"}, "Token": {"env": "SM_CANARY_SECRET"}},
    )
    code, _, err = run(["apply", "--manifest", write_manifest(workdir, [item])], capsys)
    assert code == 0, err
    described = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]
    assert secret not in json.dumps({"tags": described.get("Tags"), "description": described.get("Description")})
    assert run(["destroy", "--yes", "--manifest", write_manifest(workdir, [item])], capsys)[0] == 0


@pytest.mark.parametrize(
    "value, words",
    [
        ({"env": "SM_NOT_SET_ANYWHERE"}, "environment variable SM_NOT_SET_ANYWHERE is not set"),
        ({"ssm": "/nowhere/at/all"}, "SSM parameter /nowhere/at/all does not exist"),
        ({"secretsmanager": {"id": "nowhere", "key": "k"}}, "secret nowhere does not exist"),
    ],
)
def test_a_missing_source_is_an_input_error_before_any_write(local_aws, workdir, capsys, calls, value, words):
    name = unique("missing")
    item = secret_item(
        workdir, name, [local_aws.account_id("ml-development")], {"Secret": "long-enough-secret", "Token": value}
    )
    for argv in (["plan"], ["apply", "--yes"]):
        code, doc, err = run([*argv, "--json", "--manifest", write_manifest(workdir, [item])], capsys)
        assert code == 2 and doc["error"] == "invalid_input", err
        assert words in err and f"stack set '{name}'" in err and "parameters.Token" in err
    assert calls.writes == 0


def test_a_looked_up_value_is_checked_like_a_written_one_without_showing_it(
    local_aws, workdir, capsys, monkeypatch, calls
):
    monkeypatch.setenv("SM_SHORT", "short")
    name = unique("short")
    item = secret_item(
        workdir,
        name,
        [local_aws.account_id("ml-development")],
        {"Secret": "long-enough-secret", "Token": {"env": "SM_SHORT"}},
    )
    code, _, err = run(["plan", "--manifest", write_manifest(workdir, [item])], capsys)
    assert code == 2 and "MinLength" in err and "short" not in err.replace("shorter", "")
    assert calls.writes == 0


def test_the_plan_masks_by_structure_without_the_output_net():
    """The plan's own outputs hide NoEcho and secret values, before any redaction."""
    from deploy.stacksets.manifest import Override
    from deploy.stacksets.plan import LiveStackSet, describe, fingerprint, plan_stack_set
    from tests.test_plan import A, B, live_of, spec

    secret, token = canary("noecho"), canary("token")
    desired = spec(
        parameters=(("Secret", secret), ("Size", token)),
        overrides=(
            Override(accounts=(B,), organizational_units=(), regions=("us-east-1",), parameters=(("Secret", token),)),
        ),
        secret_parameters=frozenset({"Size"}),
    )
    assert desired.masked_parameters() == {"Secret", "Size"}
    created = plan_stack_set(desired, LiveStackSet(name="s", exists=False))
    changed = plan_stack_set(desired, live_of(spec(), instances=()))
    for plan in (created, changed):
        text = json.dumps(plan.to_dict()) + "\n".join(describe(plan, desired))
        assert secret not in text and token not in text and "****" in text
    # Sealed, yet a changed secret override is still a change.
    other = replace(desired, overrides=(replace(desired.overrides[0], parameters=(("Secret", secret),)),))
    assert fingerprint(other) != fingerprint(desired) and A in desired.accounts


def test_the_output_net_masks_registered_values_and_keeps_the_binary_stream():
    import io

    from deploy.common.redact import MIN_LENGTH, RedactingStream, Redactor

    redactor = Redactor()
    redactor.add("s3cr3t-value")
    redactor.add("x" * (MIN_LENGTH - 1))  # too short to mask as a substring: structure only
    target = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stream = RedactingStream(target, redactor)
    stream.write("AccessDenied for s3cr3t-value and xxx\n")
    stream.flush()  # as with sys.stdout: text is flushed before bytes go to the buffer
    stream.buffer.write(b"raw")
    stream.flush()
    target.buffer.seek(0)
    assert target.buffer.read() == b"AccessDenied for **** and xxx\nraw"
