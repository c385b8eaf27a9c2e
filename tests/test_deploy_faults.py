"""Faults the deployer must survive (issue 10): other operations, lost responses, throttling,
failed instances, IAM propagation lag, interruption.

Paths the local AWS cannot produce (operations that stay RUNNING, paged failure results)
use botocore's Stubber on the real API shapes; the rest runs the real CLI on the local AWS.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.httpsession import URLLib3Session
from botocore.stub import ANY, Stubber

from deploy.common.clients import CallCounter, Clients
from deploy.stacksets import commands
from deploy.stacksets.aws import InstanceFailure, OperationOutcome, PollPolicy, StackSets
from deploy.stacksets.manifest import CallAs, Manifest
from deploy.stacksets.plan import LiveInstance, LiveStackSet, Step, plan_stack_set
from deploy.stacksets.rollout import Planned, Reporter, Rollout
from tests.test_deploy_e2e import instances, run, self_managed, unique, write_manifest
from tests.test_plan import A, live_of, spec

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


class StubbedClients(Clients):
    """Clients whose CloudFormation client is stubbed (no network)."""

    def __init__(self):
        super().__init__(counter=CallCounter())
        import boto3

        self.session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
        self.cfn = self.client("cloudformation", "us-east-1")
        self.stubber = Stubber(self.cfn)


def adapter_for(stack_set, clients: Clients, sleeps: list[float]) -> StackSets:
    manifest = Manifest(
        path="m.yaml", admin_region="us-east-1", admin_account_id=None, template_bucket=None, stack_sets=(stack_set,)
    )
    return StackSets(clients, manifest, poll=PollPolicy(initial=2.0, cap=8.0, sleep=sleeps.append))


def op(operation_id: str, status: str, failed: int = 0) -> dict:
    return {
        "StackSetOperation": {
            "OperationId": operation_id,
            "Status": status,
            "Action": "CREATE",
            "StatusDetails": {"FailedStackInstancesCount": failed},
            "CreationTimestamp": NOW,
        }
    }


def test_a_foreign_operation_in_progress_is_waited_for_then_the_same_request_goes_again():
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    step = plan_stack_set(
        s,
        LiveStackSet(
            name="s",
            exists=True,
            tags=(("sagemaker-stackset-deploy:managed-by", "sagemaker-stackset-deploy"),),
            instances=(),
        ),
    ).steps[-1]
    assert step.kind == "create_instances"
    stub = clients.stubber
    expected = {
        "StackSetName": "s",
        "Accounts": [A],
        "Regions": ["us-east-1"],
        "OperationPreferences": ANY,
        "OperationId": step.operation_id,
        "CallAs": "SELF",
    }
    stub.add_client_error(
        "create_stack_instances",
        "OperationInProgressException",
        "Another Operation on StackSet s is in progress",
        expected_params=expected,
    )
    stub.add_response(
        "list_stack_set_operations",
        {"Summaries": [{"OperationId": "theirs", "Status": "RUNNING", "CreationTimestamp": NOW}]},
        {"StackSetName": "s", "CallAs": "SELF", "MaxResults": 100},
    )
    stub.add_response(
        "describe_stack_set_operation",
        op("theirs", "RUNNING"),
        {"StackSetName": "s", "OperationId": "theirs", "CallAs": "SELF"},
    )
    stub.add_response(
        "describe_stack_set_operation",
        op("theirs", "RUNNING"),
        {"StackSetName": "s", "OperationId": "theirs", "CallAs": "SELF"},
    )
    stub.add_response(
        "describe_stack_set_operation",
        op("theirs", "SUCCEEDED"),
        {"StackSetName": "s", "OperationId": "theirs", "CallAs": "SELF"},
    )
    stub.add_response("create_stack_instances", {"OperationId": step.operation_id}, expected)  # the same id again
    stub.add_response(
        "describe_stack_set_operation",
        op(step.operation_id, "SUCCEEDED"),
        {"StackSetName": "s", "OperationId": step.operation_id, "CallAs": "SELF"},
    )
    waits = []
    with stub:
        outcome = adapter.execute(s, step, on_wait=lambda name, op_id: waits.append(op_id))
        stub.assert_no_pending_responses()
    assert outcome.ok and outcome.operation_id == step.operation_id
    assert waits == ["theirs"]
    # capped exponential backoff with jitter: each delay within [d/2, d], d = 2, 4
    assert len(sleeps) == 2 and 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0


def test_polling_backoff_is_capped_and_jittered():
    policy = PollPolicy(initial=1.0, cap=8.0)
    delays = policy.delays()
    values = [next(delays) for _ in range(10)]
    nominal = [1, 2, 4, 8, 8, 8, 8, 8, 8, 8]
    assert all(n / 2 <= v <= n for v, n in zip(values, nominal, strict=True))
    assert len(set(values)) > 1


def test_every_failed_account_and_region_is_reported_from_all_pages():
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    stub = clients.stubber
    first = [
        {"Account": f"{i:012d}", "Region": "eu-west-1", "Status": "FAILED", "StatusReason": f"reason {i}"}
        for i in range(100)
    ]
    second = [
        {
            "Account": "000000000100",
            "Region": "us-east-1",
            "Status": "CANCELLED",
            "StatusReason": "cancelled: tolerance exceeded",
        },
        {"Account": "000000000101", "Region": "us-east-1", "Status": "SUCCEEDED"},
    ]
    stub.add_response(
        "list_stack_set_operation_results",
        {"Summaries": first, "NextToken": "t"},
        {"StackSetName": "s", "OperationId": "o", "CallAs": "SELF"},
    )
    stub.add_response(
        "list_stack_set_operation_results",
        {"Summaries": second},
        {"StackSetName": "s", "OperationId": "o", "CallAs": "SELF", "NextToken": "t"},
    )
    with stub:
        outcome = adapter.outcome(s, "o", op("o", "FAILED", failed=100)["StackSetOperation"])
    assert not outcome.ok and len(outcome.failures) == 101
    assert outcome.failures[0] == InstanceFailure("000000000000", "eu-west-1", "FAILED", "reason 0")
    assert outcome.failures[-1].status == "CANCELLED"


def test_succeeded_within_tolerance_still_reports_failed_instances():
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    clients.stubber.add_response(
        "list_stack_set_operation_results",
        {"Summaries": [{"Account": A, "Region": "us-east-1", "Status": "FAILED", "StatusReason": "boom"}]},
        {"StackSetName": "s", "OperationId": "o", "CallAs": "SELF"},
    )
    with clients.stubber:
        outcome = adapter.outcome(s, "o", op("o", "SUCCEEDED", failed=1)["StackSetOperation"])
    assert not outcome.ok and outcome.failures == [InstanceFailure(A, "us-east-1", "FAILED", "boom")]


def test_an_interrupted_runs_operation_is_picked_up_before_planning():
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    stub = clients.stubber
    described = {
        "StackSet": {
            "StackSetName": "s",
            "Status": "ACTIVE",
            "PermissionModel": "SELF_MANAGED",
            "Tags": [],
            "TemplateBody": "x",
        }
    }
    ours = "ssd-0123456789abcdef0123-1o1-n0123456789abcdef"
    stub.add_response("describe_stack_set", described, {"StackSetName": "s", "CallAs": "SELF"})
    stub.add_response(
        "list_stack_set_operations",
        {"Summaries": [{"OperationId": ours, "Status": "RUNNING", "CreationTimestamp": NOW}]},
        {"StackSetName": "s", "CallAs": "SELF", "MaxResults": 100},
    )
    stub.add_response(
        "describe_stack_set_operation",
        op(ours, "RUNNING"),
        {"StackSetName": "s", "OperationId": ours, "CallAs": "SELF"},
    )
    stub.add_response(
        "describe_stack_set_operation",
        op(ours, "SUCCEEDED"),
        {"StackSetName": "s", "OperationId": ours, "CallAs": "SELF"},
    )
    stub.add_response(
        "list_stack_set_operations",
        {"Summaries": [{"OperationId": ours, "Status": "SUCCEEDED", "CreationTimestamp": NOW}]},
        {"StackSetName": "s", "CallAs": "SELF", "MaxResults": 100},
    )
    stub.add_response(
        "list_stack_instances",
        {"Summaries": [{"Account": A, "Region": "us-east-1", "Status": "CURRENT", "LastOperationId": ours}]},
        {"StackSetName": "s", "CallAs": "SELF"},
    )
    with stub:
        live = adapter.read(s)
        stub.assert_no_pending_responses()
    assert live.last_operation.operation_id == ours and live.last_operation.status == "SUCCEEDED"
    assert [(i.account, i.region) for i in live.instances] == [(A, "us-east-1")]


class FakeAdapter:
    """Executes steps from a script of outcomes; re-reads return ``live``."""

    def __init__(self, outcomes, live):
        self.outcomes = list(outcomes)
        self.live = live
        self.executed: list[Step] = []
        self.sleeps: list[float] = []
        self.poll = PollPolicy(sleep=self.sleeps.append)
        import threading

        self.stop = threading.Event()

    def execute(self, spec_, step, on_wait=None):
        self.executed.append(step)
        return self.outcomes.pop(0)

    def read(self, spec_, full=False, on_wait=None, wait=True):
        return self.live


IAM_REASON = (
    "Account 111111111111 should have 'AWSCloudFormationStackSetExecutionRole' role "
    "with trust relationship to Role 'AWSCloudFormationStackSetAdministrationRole'."
)


def _iam_rollout(outcomes):
    s = spec(accounts=(A,), regions=("us-east-1",))
    plan = plan_stack_set(s, live_of(s, []))
    assert [step.kind for step in plan.steps] == ["create_instances"]
    after = live_of(s, [LiveInstance(A, "us-east-1", status="OUTDATED", status_reason=IAM_REASON)])
    fake = FakeAdapter(outcomes, after)
    rollout = Rollout(fake, Reporter(quiet=True), iam_retry_delays=(5.0, 10.0))
    return rollout, fake, Planned(s, after, plan)


def test_iam_propagation_failures_are_retried_within_bounds():
    failed = OperationOutcome("op1", "FAILED", [InstanceFailure(A, "us-east-1", "FAILED", IAM_REASON)])
    rollout, fake, item = _iam_rollout([failed, OperationOutcome("op2", "SUCCEEDED")])
    outcome = rollout._run_one(item, destroy=False)
    assert outcome.ok, outcome
    assert [s.kind for s in fake.executed] == [
        "create_instances",
        "update_instances",
    ]  # the re-run of the failed instance
    assert fake.sleeps == [5.0]


def test_iam_propagation_that_never_ends_fails_after_the_bounded_retries():
    failed = OperationOutcome("op", "FAILED", [InstanceFailure(A, "us-east-1", "FAILED", IAM_REASON)])
    rollout, fake, item = _iam_rollout([failed] * 3)
    outcome = rollout._run_one(item, destroy=False)
    assert outcome.result == "failed" and outcome.failures[0].reason == IAM_REASON
    assert fake.sleeps == [5.0, 10.0] and len(fake.executed) == 3


def test_other_failures_are_not_retried():
    failed = OperationOutcome(
        "op",
        "FAILED",
        [InstanceFailure(A, "us-east-1", "FAILED", "Resource handler returned message: Invalid request")],
    )
    rollout, fake, item = _iam_rollout([failed])
    outcome = rollout._run_one(item, destroy=False)
    assert outcome.result == "failed" and fake.sleeps == [] and len(fake.executed) == 1


# ---------------------------------------------------------------- on the local AWS


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


THROTTLE = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>1</RequestId></ErrorResponse>"
)


def _clients_with(counter, handler):
    def make():
        made = Clients(counter=counter)
        original = made.client

        def client(service, region=None):
            c = original(service, region)
            if not getattr(c, "_faulty", False):
                c.meta.events.register_first(f"before-send.{c.meta.service_model.endpoint_prefix}", handler)
                c._faulty = True
            return c

        made.client = client
        return made

    return make


def test_throttling_on_every_call_converges_to_the_same_result(local_aws, workdir, capsys, monkeypatch):
    name = unique("throttled")
    dev, stg = local_aws.account_id("ml-development"), local_aws.account_id("ml-staging")
    counter, injected = CallCounter(), []

    def throttle_first_attempt(request, **_):
        # The first attempt of every CloudFormation request is throttled: the retry succeeds.
        if "cloudformation" in request.url or request.headers.get("X-Amz-Target") is None:
            key = (request.body if isinstance(request.body, (bytes, str)) else b"", request.url)
            if key not in injected_keys:
                injected_keys.add(key)
                injected.append(key)
                return AWSResponse(request.url, 400, {}, _Raw(THROTTLE))
        return None

    injected_keys: set = set()
    monkeypatch.setattr(commands, "make_clients", _clients_with(counter, throttle_first_attempt))
    manifest = write_manifest(workdir, [self_managed(name, [dev, stg], ["us-east-1", "eu-west-1"])])
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert len(injected) >= 5
    assert instances(local_aws, name) == {(a, r) for a in (dev, stg) for r in ("us-east-1", "eu-west-1")}
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    counter.calls.clear()
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0 and counter.writes == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_a_lost_response_is_retried_with_the_same_operation_id_and_runs_once(local_aws, workdir, capsys, monkeypatch):
    name = unique("lost")
    dev = local_aws.account_id("ml-development")
    counter, lost = CallCounter(), []

    def deliver_then_drop(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        if "Action=CreateStackInstances" in body and not lost:
            URLLib3Session().send(request)  # the request reaches the service...
            lost.append(body)
            raise ConnectionClosedError(endpoint_url=request.url)  # ...and the answer is lost
        return None

    monkeypatch.setattr(commands, "make_clients", _clients_with(counter, deliver_then_drop))
    manifest = write_manifest(workdir, [self_managed(name, [dev], ["us-east-1", "eu-west-1"])])
    code, doc, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert lost
    operations = local_aws.client("cloudformation").list_stack_set_operations(StackSetName=name)["Summaries"]
    assert [o["Action"] for o in operations] == ["CREATE"]  # one operation, not two
    assert instances(local_aws, name) == {(dev, "us-east-1"), (dev, "eu-west-1")}
    monkeypatch.setattr(commands, "make_clients", lambda: Clients())
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


KILL_SCRIPT = textwrap.dedent(
    """\
    import os, signal, sys
    from deploy.stacksets import commands
    from deploy.common.clients import Clients
    from deploy.cli import main

    SIG = getattr(signal, sys.argv[1])

    def make():
        made = Clients()
        original = made.client
        def client(service, region=None):
            c = original(service, region)
            def after(http_response, parsed, model, **_):
                if model.name == "CreateStackInstances":
                    os.kill(os.getpid(), SIG)
            if not getattr(c, "_hooked", False):
                c.meta.events.register("after-call.cloudformation.CreateStackInstances", after)
                c._hooked = True
            return c
        made.client = client
        return made

    commands.make_clients = make
    sys.exit(main(["apply", "--manifest", sys.argv[2], "--yes"]))
    """
)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_an_apply_killed_mid_rollout_is_finished_by_the_next_one(local_aws, workdir, capsys, sig):
    first, second = unique("killed-a"), unique("killed-b")
    dev = local_aws.account_id("ml-development")
    manifest = write_manifest(
        workdir,
        [self_managed(first, [dev], ["us-east-1"]), self_managed(second, [dev], ["us-east-1"], depends_on=[first])],
    )
    script = workdir / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, str(script), sig, manifest], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == (-signal.SIGKILL if sig == "SIGKILL" else 130), proc.stderr
    cfn = local_aws.client("cloudformation")
    assert instances(local_aws, first) == {(dev, "us-east-1")}
    with pytest.raises(cfn.exceptions.StackSetNotFoundException):
        cfn.describe_stack_set(StackSetName=second)

    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    results = {item["name"]: item["result"] for item in doc["stack_sets"]}
    assert results == {first: "no-change", second: "succeeded"}
    assert instances(local_aws, second) == {(dev, "us-east-1")}
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_operations_listed_oldest_first_over_several_pages_force_a_full_read():
    """The no-op shortcut trusts the newest operation only when the page is newest-first."""
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    old = {
        "OperationId": "ssd-0123456789abcdef0123-1o1-n0123456789abcdef",
        "Status": "SUCCEEDED",
        "CreationTimestamp": NOW,
    }
    newer = {"OperationId": "theirs", "Status": "SUCCEEDED", "CreationTimestamp": NOW + datetime.timedelta(hours=1)}
    params = {"StackSetName": "s", "CallAs": "SELF", "MaxResults": 100}
    clients.stubber.add_response("list_stack_set_operations", {"Summaries": [newer, old], "NextToken": "n"}, params)
    clients.stubber.add_response("list_stack_set_operations", {"Summaries": [old, newer], "NextToken": "n"}, params)
    from deploy.stacksets.aws import _latest

    with clients.stubber:
        assert _latest(adapter.operations("s", CallAs.SELF)).operation_id == "theirs"
        assert _latest(adapter.operations("s", CallAs.SELF)).status == "UNKNOWN"


def test_drift_reports_drifted_instances_and_their_resources():
    s = spec(accounts=(A,), regions=("us-east-1",))
    clients, sleeps = StubbedClients(), []
    adapter = adapter_for(s, clients, sleeps)
    stub = clients.stubber
    stub.add_response(
        "detect_stack_set_drift",
        {"OperationId": "d1"},
        {"StackSetName": "s", "OperationId": ANY, "CallAs": "SELF", "OperationPreferences": ANY},
    )
    drift_op = op("d1", "SUCCEEDED")
    drift_op["StackSetOperation"]["StackSetDriftDetectionDetails"] = {
        "DriftStatus": "DRIFTED",
        "DriftedStackInstancesCount": 1,
    }
    stub.add_response(
        "describe_stack_set_operation", drift_op, {"StackSetName": "s", "OperationId": "d1", "CallAs": "SELF"}
    )
    stub.add_response(
        "list_stack_instances",
        {
            "Summaries": [
                {"Account": A, "Region": "us-east-1", "Status": "CURRENT", "DriftStatus": "DRIFTED"},
                {"Account": "222222222222", "Region": "us-east-1", "Status": "CURRENT", "DriftStatus": "IN_SYNC"},
            ]
        },
        {"StackSetName": "s", "CallAs": "SELF"},
    )
    resource = {
        "StackId": "arn:aws:cloudformation:us-east-1:111111111111:stack/x/1",
        "LogicalResourceId": "Marker",
        "ResourceType": "AWS::SSM::Parameter",
        "StackResourceDriftStatus": "MODIFIED",
        "Timestamp": NOW,
        "PropertyDifferences": [
            {
                "PropertyPath": "/Value",
                "ExpectedValue": "small",
                "ActualValue": "changed",
                "DifferenceType": "NOT_EQUAL",
            }
        ],
    }
    base = {
        "StackSetName": "s",
        "StackInstanceAccount": A,
        "StackInstanceRegion": "us-east-1",
        "OperationId": "d1",
        "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"],
        "CallAs": "SELF",
    }
    stub.add_response("list_stack_instance_resource_drifts", {"Summaries": [resource], "NextToken": "p2"}, base)
    stub.add_response(
        "list_stack_instance_resource_drifts",
        {
            "Summaries": [
                {
                    **resource,
                    "LogicalResourceId": "Other",
                    "StackResourceDriftStatus": "DELETED",
                    "PropertyDifferences": [],
                }
            ]
        },
        {**base, "NextToken": "p2"},
    )
    with stub:
        operation, drifted = adapter.detect_drift(s)
        stub.assert_no_pending_responses()
    assert operation["StackSetDriftDetectionDetails"]["DriftStatus"] == "DRIFTED"
    (instance,) = drifted
    assert (instance["account"], instance["region"]) == (A, "us-east-1")
    assert [(r["logical_id"], r["status"]) for r in instance["resources"]] == [
        ("Marker", "MODIFIED"),
        ("Other", "DELETED"),
    ]
    assert instance["resources"][0]["differences"] == [
        {"path": "/Value", "expected": "small", "actual": "changed", "type": "NOT_EQUAL"}
    ]


def test_an_override_delta_read_needs_the_whole_operation_history():
    """Issue 15: with only our own operations listed, an override change reads just the instances
    the rules name; when ListStackSetOperations has more pages (older operations unseen), every
    instance is listed instead."""
    from deploy.common.ownership import OWNER_TAG_KEY, OWNER_TAG_VALUE
    from deploy.stacksets.manifest import Override
    from deploy.stacksets.plan import CONFIG_TAG, MANIFEST_TAG, config_hash

    before = spec(accounts=(A,), regions=("us-east-1",))
    after = spec(
        accounts=(A,), regions=("us-east-1",), overrides=(Override((A,), (), ("us-east-1",), (("Size", "large"),)),)
    )
    ours = plan_stack_set(before, live_of(before, [])).steps[-1].operation_id
    tags = [
        {"Key": OWNER_TAG_KEY, "Value": OWNER_TAG_VALUE},
        {"Key": CONFIG_TAG, "Value": config_hash(after)},
        {"Key": MANIFEST_TAG, "Value": "m"},
    ]
    described = {"StackSet": {"StackSetName": "s", "Status": "ACTIVE", "PermissionModel": "SELF_MANAGED", "Tags": tags}}
    summary = {
        "OperationId": ours,
        "Status": "SUCCEEDED",
        "Action": "CREATE",
        "CreationTimestamp": NOW,
        "EndTimestamp": NOW,
    }
    summary["StatusDetails"] = {"FailedStackInstancesCount": 0}
    listed = {"StackSetName": "s", "CallAs": "SELF", "MaxResults": 100}
    instance = {"Account": A, "Region": "us-east-1", "Status": "CURRENT", "LastOperationId": ours}

    for more_pages in (False, True):
        clients = StubbedClients()
        adapter = adapter_for(after, clients, [])
        adapter.manifest = dataclasses.replace(adapter.manifest, id="m")
        stub = clients.stubber
        stub.add_response("describe_stack_set", described, {"StackSetName": "s", "CallAs": "SELF"})
        stub.add_response(
            "list_stack_set_operations", {"Summaries": [summary], **({"NextToken": "n"} if more_pages else {})}, listed
        )
        if more_pages:
            stub.add_response(
                "list_stack_instances", {"Summaries": [instance]}, {"StackSetName": "s", "CallAs": "SELF"}
            )
        stub.add_response(
            "describe_stack_instance",
            {"StackInstance": instance},
            {"StackSetName": "s", "StackInstanceAccount": A, "StackInstanceRegion": "us-east-1", "CallAs": "SELF"},
        )
        with stub:
            live = adapter.read(after)
            stub.assert_no_pending_responses()
        assert live.instances_partial is not more_pages
        assert [(i.account, i.region) for i in live.instances] == [(A, "us-east-1")]
