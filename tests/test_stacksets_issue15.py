"""Issue 15: StackSets as AWS documents them. Plan-level checks on plain data, adapter
checks with botocore's Stubber, and the real CLI against the (now as strict) local AWS."""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from deploy.common.errors import InputError
from deploy.stacksets.aws import OperationOutcome, StaleRequest
from deploy.stacksets.manifest import AccountFilter, Override, load_manifest
from deploy.stacksets.plan import (
    MANIFEST_TAG,
    LastOperation,
    StepKind,
    auto_deployment_dependencies,
    expand_child_ou_overrides,
    fingerprint,
    last_apply_matches,
    override_carriers,
    override_delta_possible,
    plan_destroy,
    plan_stack_set,
    target_problems,
)
from deploy.stacksets.rollout import Planned, Reporter, Rollout
from tests.test_deploy_e2e import counter, instances, overrides_of, run, service_managed, unique, write_manifest
from tests.test_deploy_faults import FakeAdapter, StubbedClients, adapter_for, op
from tests.test_plan import OU1, OU2, A, B, C, inst, kinds, live_of, sm, spec

__all__ = ["counter"]  # the fixture, imported for the end-to-end tests below

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


# --------------------------------------------------------------------------- manifest


def _manifest(workdir, item: dict, **top):
    import yaml

    path = workdir / "m.yaml"
    path.write_text(yaml.safe_dump({"admin_region": "us-east-1", **top, "stack_sets": [item]}))
    return path


def _item(**extra):
    return {
        "name": "s",
        "template": "templates/marker.yaml",
        "regions": ["us-east-1"],
        "targets": {"organizational_units": ["ou-abcd-11111111"]},
        **extra,
    }


def test_auto_deployment_with_account_filters_is_refused_and_off_by_default(workdir):
    filtered = {"organizational_units": ["ou-abcd-11111111"], "accounts": [A], "account_filter": "union"}
    with pytest.raises(InputError) as caught:
        load_manifest(_manifest(workdir, _item(targets=filtered, auto_deployment=True)))
    assert caught.value.key == "auto_deployment" and "account filters" in str(caught.value)
    assert load_manifest(_manifest(workdir, _item(targets=filtered))).stack_sets[0].auto_deployment is False
    assert load_manifest(_manifest(workdir, _item())).stack_sets[0].auto_deployment is True


def test_retain_on_removal_without_auto_deployment_and_delegated_admin_self_managed_are_refused(workdir):
    with pytest.raises(InputError) as caught:
        load_manifest(_manifest(workdir, _item(auto_deployment=False, retain_stacks_on_account_removal=False)))
    assert caught.value.key == "retain_stacks_on_account_removal"
    self_item = _item(permission_model="self_managed", targets={"accounts": [A]}, call_as="delegated_admin")
    with pytest.raises(InputError) as caught:
        load_manifest(_manifest(workdir, self_item))
    assert caught.value.key == "call_as"


def test_auto_deployment_depends_on_names_only_service_managed_stack_sets(workdir):
    """AutoDeployment.DependsOn takes service-managed StackSets only (the local AWS refuses a
    self-managed one): a self-managed dependency is ordered by the rollout, left out of DependsOn."""
    import yaml

    path = workdir / "m.yaml"
    items = [
        _item(name="net"),
        {**_item(name="roles"), "permission_model": "self_managed", "targets": {"accounts": [A]}},
        _item(name="app", depends_on=["net", "roles"]),
    ]
    path.write_text(yaml.safe_dump({"admin_region": "us-east-1", "stack_sets": items}))
    app = {s.name: s for s in load_manifest(path).stack_sets}["app"]
    assert app.depends_on == ("net", "roles") and auto_deployment_dependencies(app) == ("net",)


def test_manifest_id_is_declared_or_the_file_stem(workdir):
    assert load_manifest(_manifest(workdir, _item(), id="platform")).id == "platform"
    assert load_manifest(_manifest(workdir, _item())).id == "m"


# --------------------------------------------------------------------------- plan


def test_overridden_keys_become_stack_set_parameters_with_their_default():
    s = sm(parameters=(), overrides=(Override((), (OU2,), ("us-east-1",), (("Size", "large"),)),))
    assert s.stack_set_parameters() == (("Size", "small"),)
    # a live stack set created without it gets it (AWS overrides only parameters it has)
    live = live_of(s, [], parameters=())
    plan = plan_stack_set(s, live)
    assert [c.key for c in plan.parameter_changes] == ["Size"] and "update_stack_set" in kinds(plan)


def test_difference_filter_keeps_excluded_accounts_out_of_ou_wide_updates():
    s = sm(
        organizational_units=(OU1,),
        accounts=(C,),
        account_filter=AccountFilter.DIFFERENCE,
        auto_deployment=False,
        regions=("us-east-1",),
        overrides=(Override((), (OU1,), ("us-east-1",), (("Size", "large"),)),),
    )
    live = live_of(s, [inst(A, "us-east-1", OU1), inst(B, "us-east-1", OU1)], ou_accounts=((OU1, (A, B, C)),))
    plan = plan_stack_set(s, live)
    (step,) = plan.steps
    assert step.kind == "update_instances" and step.organizational_units == (OU1,)
    assert step.account_filter is AccountFilter.DIFFERENCE and step.accounts == (C,)


def test_instances_of_accounts_that_left_their_ou_are_deleted_through_their_current_ou():
    s = sm(organizational_units=(OU1,), auto_deployment=False, regions=("us-east-1",))
    live = live_of(
        s,
        [inst(A, "us-east-1", OU1), inst(B, "us-east-1", OU1)],
        moved_accounts=((B, OU2),),
        ou_accounts=((OU1, (A,)),),
    )
    destroy = plan_destroy(s, live)
    deletes = [step for step in destroy.steps if step.kind == "delete_instances"]
    assert any(step.organizational_units == (OU2,) and step.accounts == (B,) for step in deletes)
    assert any(step.organizational_units == (OU1,) and step.account_filter is AccountFilter.NONE for step in deletes)
    # apply: B is no longer targeted, and is removed through OU2 as well
    plan = plan_stack_set(s, live)
    (step,) = plan.steps
    assert step.kind == "delete_instances" and step.organizational_units == (OU2,) and step.accounts == (B,)
    assert step.account_filter is AccountFilter.INTERSECTION


def test_inoperable_instances_are_removed_with_retain_stacks():
    s = spec(accounts=(A,), regions=("us-east-1",))
    plan = plan_stack_set(s, live_of(s, [inst(A, "us-east-1", status="INOPERABLE")]))
    (step,) = plan.steps
    assert step.kind == "delete_instances" and step.retain_stacks is True and step.accounts == (A,)
    assert not plan.rerun and any("RetainStacks" in note for note in plan.notes)


def test_overrides_of_a_child_ou_apply_to_its_accounts():
    child = "ou-abcd-33333333"
    s = sm(overrides=(Override((), (child,), ("us-east-1",), (("Size", "large"),)),))
    expanded = expand_child_ou_overrides(s, {child: frozenset({B})})
    assert expanded.overrides == (Override((B,), (), ("us-east-1",), (("Size", "large"),)),)
    live = live_of(expanded, [inst(A, "us-east-1", OU1), inst(B, "us-east-1", OU1)])
    plan = plan_stack_set(expanded, live)
    assert plan.override_changes == ["222222222222/us-east-1: {} -> {Size=large}"]
    # an empty child OU matches nothing (not every target)
    assert expand_child_ou_overrides(s, {child: frozenset()}).overrides == ()


def test_management_account_in_service_managed_targets_is_a_problem():
    s = sm(accounts=(A,), account_filter=AccountFilter.UNION, auto_deployment=False)
    assert [key for key, _ in target_problems(s, A)] == ["targets.accounts"]
    assert target_problems(s, B) == []


def test_membership_enters_the_fingerprint_only_when_auto_deployment_cannot_follow_it():
    off = sm(auto_deployment=False)
    assert fingerprint(off, ((OU1, (A,)),)) != fingerprint(off, ((OU1, (A, B)),))
    on = sm()
    assert fingerprint(on, ((OU1, (A,)),)) == fingerprint(on, ((OU1, (A, B)),)) == fingerprint(on)


def test_an_operation_overlapping_ours_defeats_the_fast_path():
    s = spec()
    plan = plan_stack_set(s, live_of(s, []))
    ours = LastOperation(plan.steps[-1].operation_id, "SUCCEEDED", created=T0, ended=T0)
    fp = fingerprint(s)
    assert last_apply_matches(ours, fp, [ours])
    earlier_but_later_ending = LastOperation(
        "someone", "SUCCEEDED", created=T0 - datetime.timedelta(seconds=5), ended=T0 + datetime.timedelta(seconds=5)
    )
    assert not last_apply_matches(ours, fp, [ours, earlier_but_later_ending])
    queued = LastOperation("queued", "QUEUED", created=T0 - datetime.timedelta(seconds=1))
    assert not last_apply_matches(ours, fp, [ours, queued])


def test_a_stack_set_of_another_manifest_is_refused_without_adopt():
    s = spec()
    live = live_of(s, [], tags=(*live_of(s, []).tags, (MANIFEST_TAG, "other")))
    plan = plan_stack_set(s, live, manifest_id="mine")
    assert plan.action == "blocked" and "other" in plan.blocked_reason and not plan.steps
    adopted = plan_stack_set(s, live, adopt=True, manifest_id="mine")
    assert kinds(adopted)[0] == "update_stack_set"
    assert plan_destroy(s, live, manifest_id="mine").action == "blocked"


# --------------------------------------------------------------------------- adapter (stubbed)


def test_operation_not_found_right_after_a_write_is_pending_not_a_traceback():
    clients = StubbedClients()
    sleeps: list[float] = []
    adapter = adapter_for(spec(), clients, sleeps)
    stub = clients.stubber
    stub.add_client_error(
        "describe_stack_set_operation",
        "OperationNotFoundException",
        "The specified ID refers to an operation that doesn't exist.",
        404,
    )
    stub.add_response("describe_stack_set_operation", op("op-1", "SUCCEEDED"))
    with stub:
        final = adapter.wait("s", "op-1", spec().call_as)
    assert final["Status"] == "SUCCEEDED" and len(sleeps) == 1


def test_a_stale_request_re_plans_instead_of_failing():
    s = spec(accounts=(A,), regions=("us-east-1",))
    plan = plan_stack_set(s, live_of(s, []))

    class StaleOnce(FakeAdapter):
        def execute(self, spec_, step, on_wait=None):
            if not self.executed:
                self.executed.append(step)
                raise StaleRequest("s: another operation changed the stack set")
            return super().execute(spec_, step, on_wait)

    after = live_of(s, [])
    fake = StaleOnce([OperationOutcome("op2", "SUCCEEDED")], after)
    outcome = Rollout(fake, Reporter(quiet=True))._run_one(Planned(s, after, plan), destroy=False)
    assert outcome.ok and len(fake.executed) == 2


# --------------------------------------------------------------------------- end to end


def test_disabled_auto_deployment_union_on_a_new_stack_set_and_destroy_after_a_move(local_aws, workdir, capsys):
    """Defects 1, 4, 6: {Enabled: false} alone, UNION accounts deployed on creation, destroy
    reaching an account that left its OU."""
    name = unique("union")
    org = local_aws.client("organizations")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=unique("ou"))["OrganizationalUnit"]["Id"]
    other = org.create_organizational_unit(ParentId=root, Name=unique("ou"))["OrganizationalUnit"]["Id"]
    member = org.create_account(AccountName=unique("m"), Email=f"{unique('m')}@example.com")["CreateAccountStatus"]
    account = member["AccountId"]
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    staging = local_aws.account_id("ml-staging")
    item = service_managed(name, [ou], ["us-east-1"])
    item["targets"].update(accounts=[staging], account_filter="union")
    manifest = write_manifest(workdir, [item])
    code, _, err = run(["apply", "--manifest", manifest], capsys)
    assert code == 0, err
    assert instances(local_aws, name) == {(account, "us-east-1"), (staging, "us-east-1")}
    auto = local_aws.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["AutoDeployment"]
    assert auto == {"Enabled": False}

    org.move_account(AccountId=account, SourceParentId=ou, DestinationParentId=other)
    code, _, err = run(["destroy", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    with pytest.raises(ClientError):
        local_aws.client("cloudformation").describe_stack_set(StackSetName=name)


def test_joining_accounts_and_auto_deployed_overrides_are_seen_and_fixed(local_aws, workdir, capsys):
    """Defects 8 and 10: an account joining an OU with auto-deployment off is planned, not
    "no change"; one auto-deployed into an OU with overrides gets them from apply; status
    exits 1 until then; DependsOn carries depends_on."""
    org = local_aws.client("organizations")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=unique("ou"))["OrganizationalUnit"]["Id"]
    base, off, auto = unique("base"), unique("off"), unique("auto")
    items = [
        service_managed(base, [ou], ["us-east-1"]),
        service_managed(off, [ou], ["us-east-1"], auto_deployment=False),
        service_managed(
            auto,
            [ou],
            ["us-east-1"],
            depends_on=[base],
            overrides=[{"organizational_units": [ou], "parameters": {"Size": "large"}}],
        ),
    ]
    manifest = write_manifest(workdir, items)
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    cfn = local_aws.client("cloudformation")
    depends = cfn.describe_stack_set(StackSetName=auto)["StackSet"]["AutoDeployment"].get("DependsOn", [])
    assert [arn.split(":stackset/")[1].split(":")[0] for arn in depends] == [base]
    assert run(["status", "--manifest", manifest], capsys)[0] == 0

    new = org.create_account(AccountName=unique("n"), Email=f"{unique('n')}@example.com")["CreateAccountStatus"]
    org.move_account(AccountId=new["AccountId"], SourceParentId=root, DestinationParentId=ou)
    assert overrides_of(local_aws, auto, new["AccountId"], "us-east-1") == {}  # AWS: the stack set's defaults
    code, doc, _ = run(["plan", "--manifest", manifest, "--json"], capsys)
    by_name = {d["name"]: d for d in doc["stack_sets"]}
    assert by_name[off]["instances"]["add"] and by_name[off]["steps"]
    assert by_name[auto]["instances"]["override_change"]
    code, doc, _ = run(["status", "--manifest", manifest, "--json"], capsys)
    assert code == 1
    assert {d["name"] for d in doc["stack_sets"] if not d["in_sync"]} == {off, auto}
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    assert (new["AccountId"], "us-east-1") in instances(local_aws, off)
    assert overrides_of(local_aws, auto, new["AccountId"], "us-east-1") == {"Size": "large"}
    assert run(["status", "--manifest", manifest], capsys)[0] == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_drift_exits_1_on_drifted_and_on_failed_detections(local_aws, workdir, capsys):
    """Defect 11: DRIFTED instances and FAILED / PARTIAL_SUCCESS detections are not success."""
    name = unique("drift")
    staging = local_aws.account_id("ml-staging")
    manifest = write_manifest(workdir, [service_managed(name, ["ou:/staging"], ["us-east-1"])])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    assert run(["drift", "--manifest", manifest], capsys)[0] == 0
    local_aws.control("stacksets", drift_fail_accounts=staging)
    try:
        code, doc, _ = run(["drift", "--manifest", manifest, "--json"], capsys)
    finally:
        local_aws.control("stacksets", drift_fail_accounts="none")
    assert code == 1 and doc["stack_sets"][0]["detection_status"] in ("FAILED", "PARTIAL_SUCCESS")
    ssm = local_aws.client("ssm", staging)
    ssm.put_parameter(Name=f"/{name}/marker-us-east-1-small", Value="changed", Type="String", Overwrite=True)
    code, doc, _ = run(["drift", "--manifest", manifest, "--json"], capsys)
    assert code == 1
    (drifted,) = doc["stack_sets"][0]["drifted_instances"]
    assert drifted["resources"][0]["differences"][0]["actual"] == "changed"
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_a_second_manifest_reusing_a_name_is_refused_without_adopt(local_aws, workdir, capsys):
    name = unique("owned")
    first = write_manifest(workdir, [service_managed(name, ["ou:/staging"], ["us-east-1"])], name="first.yaml")
    second = write_manifest(workdir, [service_managed(name, ["ou:/production"], ["us-east-1"])], name="second.yaml")
    assert run(["apply", "--manifest", first], capsys)[0] == 0
    before = instances(local_aws, name)
    code, _, err = run(["apply", "--manifest", second, "--yes"], capsys)
    assert code == 1 and "belongs to manifest 'first'" in err
    assert instances(local_aws, name) == before
    assert run(["destroy", "--manifest", second, "--yes"], capsys)[0] == 1
    assert run(["destroy", "--manifest", first, "--yes"], capsys)[0] == 0


def test_eventually_consistent_operation_lists_and_queued_operations_still_converge(local_aws, workdir, capsys):
    """Opt-in realism: ListStackSetOperations lags, operations run for a while and queue."""
    name = unique("lag")
    item = service_managed(name, ["ou:/staging"], ["us-east-1"])
    manifest = write_manifest(workdir, [item])
    local_aws.control("stacksets", list_lag=2, operation_polls=1)
    try:
        assert run(["apply", "--manifest", manifest], capsys)[0] == 0
        item["parameters"]["Size"] = "large"
        manifest = write_manifest(workdir, [item])
        assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    finally:
        local_aws.control("stacksets", list_lag=0, operation_polls=0)
    assert run(["status", "--manifest", manifest], capsys)[0] == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


def test_a_stale_request_from_the_local_aws_is_re_planned_end_to_end(local_aws, workdir, capsys):
    """StaleRequestException (someone else's operation landed just before ours, opt-in
    ``stale_requests``): apply reads the stack set again, re-plans and converges."""
    name = unique("stale")
    staging = local_aws.account_id("ml-staging")
    item = service_managed(name, ["ou:/staging"], ["us-east-1"])
    manifest = write_manifest(workdir, [item])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    item["overrides"] = [{"accounts": [staging], "parameters": {"Size": "large"}}]
    manifest = write_manifest(workdir, [item])
    local_aws.control("stacksets", stale_requests=1)
    try:
        code, _, err = run(["apply", "--manifest", manifest], capsys)
    finally:
        settings = local_aws.control("stacksets", stale_requests=0)
    assert code == 0, err
    assert "another operation changed the stack set" in err and "re-planning" in err
    assert settings["stale_requests"] == 0  # the one stale answer was used
    assert overrides_of(local_aws, name, staging, "us-east-1") == {"Size": "large"}
    assert run(["status", "--manifest", manifest], capsys)[0] == 0
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0


# --------------------------------------------------------------------------- override delta (cost)


def _applied(s, instances=()):
    """The last operation of an apply of ``s`` onto a new stack set, as ListStackSetOperations lists it."""
    plan = plan_stack_set(s, live_of(s, list(instances)) if instances else live_of(s, []))
    return LastOperation(
        plan.steps[-1].operation_id, "SUCCEEDED", action="CREATE", failed_count=0, created=T0, ended=T0
    )


def test_an_override_only_change_is_planned_from_the_operations_not_a_full_read():
    before = sm(auto_deployment=True)
    after = sm(auto_deployment=True, overrides=(Override((A,), (), ("us-east-1",), (("Size", "large"),)),))
    last = _applied(before)
    assert override_delta_possible(after, last, [last], None)
    assert override_carriers([last]) == []  # it set no overrides: no instance carries any
    # Anything else falls back to the full read: another desired shape, someone else's or a
    # failed operation, an OU-wide override rule.
    assert not override_delta_possible(replace(after, regions=("us-east-1",)), last, [last], None)
    foreign = LastOperation("someone", "SUCCEEDED", created=T0, ended=T0)
    assert not override_delta_possible(after, last, [last, foreign], None)
    failed = LastOperation(last.operation_id, "SUCCEEDED", failed_count=1, created=T0, ended=T0)
    assert not override_delta_possible(after, failed, [failed], None)
    ou_wide = sm(overrides=(Override((), (OU1,), ("us-east-1",), (("Size", "large"),)),))
    assert not override_delta_possible(ou_wide, last, [last], None)

    partial = live_of(after, [inst(A, "us-east-1", OU1)], instances_partial=True)
    plan = plan_stack_set(after, partial)
    (step,) = plan.steps
    assert step.kind is StepKind.UPDATE_INSTANCES and step.accounts == (A,)
    assert step.organizational_units == (OU1,) and step.account_filter is AccountFilter.INTERSECTION
    assert step.overrides == (("Size", "large"),) and not plan.remove and not plan.add
    # The update that set them is a carrier for the next change.
    assert override_carriers([LastOperation(step.operation_id, "SUCCEEDED", action="UPDATE")]) == [step.operation_id]


def test_an_override_change_at_scale_reads_no_instance_list_nor_ou_members(local_aws, workdir, counter, capsys):
    """Issue 15 cost: one override change for one account reads the instances the rules name and
    those our override-setting operations last touched, not every instance and OU member; a
    foreign operation sends it back to the full read."""
    name = unique("delta")
    staging = local_aws.account_id("ml-staging")
    # Size is a stack set parameter from the start: overriding it changes no stack set setting.
    item = service_managed(name, ["ou:/staging", "ou:/production"], ["us-east-1"], parameters={"Size": "small"})
    assert run(["apply", "--manifest", write_manifest(workdir, [item])], capsys)[0] == 0

    def apply_with(size):
        if size is None:
            item.pop("overrides", None)
        else:
            item["overrides"] = [{"accounts": [staging], "parameters": {"Size": size}}]
        counter.calls.clear()
        code, _, err = run(["apply", "--manifest", write_manifest(workdir, [item])], capsys)
        assert code == 0, err
        return dict(counter.calls)

    calls = apply_with("large")
    assert calls.get("cloudformation.ListStackInstances", 0) == 0, calls
    assert calls.get("organizations.ListAccountsForParent", 0) == 0, calls
    assert calls["cloudformation.UpdateStackInstances"] == 1
    assert overrides_of(local_aws, name, staging, "us-east-1") == {"Size": "large"}
    calls = apply_with("small")  # the instance carries our earlier override: found by its LastOperationId
    assert calls.get("cloudformation.ListStackInstances", 0) == 1, calls
    assert calls.get("organizations.ListAccountsForParent", 0) == 0, calls
    assert overrides_of(local_aws, name, staging, "us-east-1") == {"Size": "small"}
    calls = apply_with(None)  # removed from the manifest: found the same way, reverted
    assert overrides_of(local_aws, name, staging, "us-east-1") == {}
    assert run(["status", "--manifest", write_manifest(workdir, [item])], capsys)[0] == 0

    cfn = local_aws.client("cloudformation")
    cfn.update_stack_instances(  # someone else's operation: nothing can be assumed any more
        StackSetName=name,
        DeploymentTargets={"OrganizationalUnitIds": [local_aws.ou_id("staging")]},
        Regions=["us-east-1"],
    )
    calls = apply_with("large")
    assert calls.get("organizations.ListAccountsForParent", 0) > 0, calls
    assert overrides_of(local_aws, name, staging, "us-east-1") == {"Size": "large"}
    assert run(["destroy", "--manifest", write_manifest(workdir, [item]), "--yes"], capsys)[0] == 0


def test_a_stack_deleted_out_of_band_is_found_by_drift_then_flagged_by_status(local_aws, workdir, capsys):
    """Issue 15, defect 8: AWS keeps such an instance CURRENT, so neither the fast path nor a full
    read sees it; drift detection does (exit 1), and status flags it from then on (exit 1)."""
    name = unique("oob")
    staging = local_aws.account_id("ml-staging")
    manifest = write_manifest(workdir, [service_managed(name, ["ou:/staging"], ["us-east-1"])])
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0
    cfn = local_aws.client("cloudformation")
    (summary,) = cfn.list_stack_instances(StackSetName=name)["Summaries"]
    local_aws.client("cloudformation", staging).delete_stack(StackName=summary["StackId"])
    assert run(["status", "--manifest", manifest], capsys)[0] == 0  # nothing AWS reports shows it yet
    assert run(["drift", "--manifest", manifest], capsys)[0] == 1
    code, doc, _ = run(["status", "--manifest", manifest, "--json"], capsys)
    (entry,) = doc["stack_sets"]
    assert code == 1 and not entry["in_sync"]
    assert entry["drifted"] == [{"account": staging, "region": "us-east-1"}]
    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0
