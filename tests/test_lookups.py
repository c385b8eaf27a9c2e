"""Lookups in the manifest, end to end on the local AWS: account names, OU members, another
stack set's outputs (known after apply until it exists), joins; failures are input errors
before any write, naming the stack set and the key."""

from __future__ import annotations

import pytest

from deploy.common.clients import CallCounter, Clients
from deploy.stacksets import commands
from tests.test_deploy_e2e import run, unique, write_manifest

PRODUCER = """\
Parameters:
  EnvName: {Type: String}
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties: {Name: !Sub '/${EnvName}/producer-${AWS::Region}', Type: String, Value: !Sub 'in-${AWS::AccountId}'}
Outputs:
  MarkerName: {Value: !Ref Marker}
"""
CONSUMER = """\
Parameters:
  EnvName: {Type: String}
  Reads: {Type: String}
  Owner: {Type: String, AllowedPattern: '^\\d{12}$'}
  Readers: {Type: CommaDelimitedList}
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties: {Name: !Sub '/${EnvName}/consumer-${AWS::Region}', Type: String, Value: !Ref Reads}
"""


@pytest.fixture
def calls(monkeypatch) -> CallCounter:
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    return counter


def stack_sets(workdir, local_aws, producer: str, consumer: str, **consumer_parameters) -> str:
    (workdir / "templates" / "producer.yaml").write_text(PRODUCER)
    (workdir / "templates" / "consumer.yaml").write_text(CONSUMER)
    staging = local_aws.account_id("ml-staging")
    parameters = {
        "EnvName": consumer,
        "Reads": {"join": ["read:", {"output": {"stack_set": producer, "key": "MarkerName", "account": staging}}]},
        "Owner": {"account": "ml-development"},
        "Readers": {"accounts": ["ou:/production", "account:ml-staging"]},
        **consumer_parameters,
    }
    items = [
        {
            "name": producer,
            "template": "templates/producer.yaml",
            "permission_model": "self_managed",
            "targets": {"accounts": [staging]},
            "regions": ["us-east-1"],
            "parameters": {"EnvName": producer},
        },
        {
            "name": consumer,
            "template": "templates/consumer.yaml",
            "permission_model": "self_managed",
            "targets": {"accounts": [local_aws.account_id("ml-development")]},
            "regions": ["us-east-1"],
            "parameters": parameters,
        },
    ]
    return write_manifest(workdir, list(reversed(items)))  # the consumer first: order comes from the lookup


def test_a_manifest_of_lookups_plans_applies_and_reapplies_with_no_write(local_aws, workdir, capsys, calls):
    producer, consumer = unique("producer"), unique("consumer")
    path = stack_sets(workdir, local_aws, producer, consumer)
    code, doc, err = run(["plan", "--json", "--manifest", path], capsys)
    assert code == 0, err
    planned = {s["name"]: s for s in doc["stack_sets"]}
    changes = {c["key"]: c["new"] for c in planned[consumer]["parameter_changes"]}
    assert changes["Reads"] == "(known after apply)"
    assert changes["Owner"] == local_aws.account_id("ml-development")
    production = sorted(local_aws.account_id(n) for n in ("ml-production-1", "ml-production-2"))
    assert changes["Readers"] == ",".join(sorted([*production, local_aws.account_id("ml-staging")]))

    code, _, err = run(["apply", "--manifest", path], capsys)
    assert code == 0, err
    assert err.index(f"{producer}: succeeded") < err.index(f"{consumer}: values known after apply resolved (Reads)")
    described = local_aws.client("cloudformation").describe_stack_set(StackSetName=consumer)["StackSet"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert values["Reads"] == f"read:/{producer}/producer-us-east-1"

    calls.calls.clear()
    code, _, err = run(["apply", "--manifest", path], capsys)
    assert code == 0 and "no changes" in err, err
    assert calls.writes == 0
    assert run(["destroy", "--yes", "--manifest", path], capsys)[0] == 0


@pytest.mark.parametrize(
    "parameters, key, words",
    [
        ({"Owner": {"account": "nobody-by-that-name"}}, "parameters.Owner", "no active account of that name"),
        ({"Readers": {"accounts": ["ou:/nowhere"]}}, "parameters.Readers", "no OU named 'nowhere'"),
        (
            {"Reads": {"output": {"stack_set": "PRODUCER", "key": "NoSuchOutput"}}},
            "parameters.Reads",
            "has no output 'NoSuchOutput' (its outputs: MarkerName)",
        ),
    ],
)
def test_a_lookup_that_cannot_be_resolved_is_an_input_error_before_any_write(
    local_aws, workdir, capsys, calls, parameters, key, words
):
    producer, consumer = unique("producer"), unique("consumer")
    base = stack_sets(workdir, local_aws, producer, consumer)
    assert run(["apply", "--manifest", base], capsys)[0] == 0
    parameters = {k: _named(v, producer) for k, v in parameters.items()}
    path = stack_sets(workdir, local_aws, producer, consumer, **parameters)
    calls.calls.clear()
    code, doc, err = run(["apply", "--json", "--manifest", path], capsys)
    assert code == 2 and doc["error"] == "invalid_input", err
    assert f"stack set '{consumer}'" in err and key in err and words in err
    assert calls.writes == 0
    assert run(["destroy", "--yes", "--manifest", base], capsys)[0] == 0


def test_a_reader_role_that_cannot_be_assumed_is_an_input_error(local_aws, workdir, capsys, calls):
    producer, consumer = unique("producer"), unique("consumer")
    path = stack_sets(workdir, local_aws, producer, consumer)
    assert run(["apply", "--manifest", path], capsys)[0] == 0
    text = open(path).read()
    with open(path, "w") as handle:
        handle.write("output_reader_role: NoSuchReaderRole\n" + text)
    calls.calls.clear()
    code, _, err = run(["plan", "--manifest", path], capsys)
    assert code == 2 and "cannot assume NoSuchReaderRole" in err and "parameters.Reads" in err, err
    assert calls.writes == 0
    with open(path, "w") as handle:
        handle.write(text)
    assert run(["destroy", "--yes", "--manifest", path], capsys)[0] == 0


def test_an_output_of_a_stack_set_outside_the_manifest_that_does_not_exist_fails_apply(local_aws, workdir, capsys):
    producer, consumer = unique("producer"), unique("consumer")
    path = stack_sets(workdir, local_aws, producer, consumer)
    import yaml

    data = yaml.safe_load(open(path))
    data["stack_sets"] = [s for s in data["stack_sets"] if s["name"] == consumer]
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    code, _, err = run(["plan", "--manifest", path], capsys)
    assert code == 0 and "(known after apply)" in err
    code, _, err = run(["apply", "--manifest", path], capsys)
    assert code != 0 and f"stack set {producer} does not exist yet" in err


def test_a_stack_set_cannot_read_its_own_outputs(workdir, local_aws, capsys):
    name = unique("selfread")
    path = stack_sets(workdir, local_aws, "other", name, Reads={"output": {"stack_set": name, "key": "K"}})
    code, _, err = run(["plan", "--manifest", path], capsys)
    assert code == 2 and "cannot look up its own outputs" in err


def _named(value, producer):
    if isinstance(value, dict) and "output" in value:
        return {"output": {**value["output"], "stack_set": producer}}
    return value
