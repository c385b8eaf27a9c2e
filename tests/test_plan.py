"""The pure planner: desired vs live on plain data, no AWS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deploy.stacksets.manifest import (
    AccountFilter,
    CallAs,
    Override,
    PermissionModel,
    StackSetSpec,
    TemplateInfo,
    TemplateParameter,
)
from deploy.stacksets.plan import (
    CONFIG_TAG,
    OWNER_TAG_KEY,
    OWNER_TAG_VALUE,
    LastOperation,
    LiveInstance,
    LiveStackSet,
    config_hash,
    describe,
    fingerprint,
    last_apply_matches,
    overrides_known_empty,
    parse_operation_id,
    plan_destroy,
    plan_stack_set,
    retained_dependents,
)

BODY = (
    "Parameters:\n"
    "  Size: {Type: String, Default: small}\n"
    "  Secret: {Type: String, NoEcho: true, Default: s}\n"
    "Resources:\n"
    "  M: {Type: AWS::SSM::Parameter}\n"
)
TEMPLATE = TemplateInfo(
    path="t.yaml",
    body=BODY,
    parameters={
        "Size": TemplateParameter("Size", default="small"),
        "Secret": TemplateParameter("Secret", default="s", no_echo=True),
    },
    capabilities=(),
)
A, B, C = "111111111111", "222222222222", "333333333333"
OU1, OU2 = "ou-abcd-11111111", "ou-abcd-22222222"


def spec(**extra) -> StackSetSpec:
    values = dict(
        name="s",
        template=TEMPLATE,
        description="d",
        permission_model=PermissionModel.SELF_MANAGED,
        call_as=CallAs.SELF,
        auto_deployment=False,
        retain_stacks_on_account_removal=False,
        retain_stacks=False,
        administration_role_arn=None,
        execution_role_name=None,
        organizational_units=(),
        accounts=(A, B),
        account_filter=AccountFilter.NONE,
        regions=("us-east-1", "eu-west-1"),
        parameters=(("Size", "small"),),
        overrides=(),
        operation_preferences=(),
        depends_on=(),
        tags=(("team", "ml"),),
        capabilities=(),
    )
    values.update(extra)
    return StackSetSpec(**values)


def sm(**extra) -> StackSetSpec:
    values = dict(
        permission_model=PermissionModel.SERVICE_MANAGED,
        auto_deployment=True,
        organizational_units=(OU1, OU2),
        accounts=(),
    )
    values.update(extra)
    return spec(**values)


def live_of(s: StackSetSpec, instances=(), **extra) -> LiveStackSet:
    """A live stack set exactly as ``s`` would leave it."""
    values = dict(
        name=s.name,
        exists=True,
        tags=tuple(sorted({**dict(s.tags), OWNER_TAG_KEY: OWNER_TAG_VALUE, CONFIG_TAG: config_hash(s)}.items())),
        template_body=s.template.body,
        parameters=tuple(sorted((k, "****" if k == "Secret" else v) for k, v in s.parameters)),
        description=s.description,
        capabilities=s.capabilities,
        permission_model=s.permission_model,
        auto_deployment=(s.auto_deployment, s.retain_stacks_on_account_removal) if s.service_managed else None,
        instances=None if instances is None else tuple(instances),
    )
    values.update(extra)
    return LiveStackSet(**values)


def inst(account, region, ou=None, status="CURRENT", overrides=()) -> LiveInstance:
    return LiveInstance(account=account, region=region, ou=ou, status=status, overrides=overrides)


def kinds(plan):
    return [step.kind for step in plan.steps]


def test_create_groups_instances_by_regions_and_overrides():
    s = spec(accounts=(A, B, C), overrides=(Override((C,), (), ("eu-west-1",), (("Size", "large"),)),))
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    assert plan.action == "create"
    assert kinds(plan) == ["create_stack_set", "create_instances", "create_instances", "create_instances"]
    groups = {(step.accounts, step.regions, step.overrides) for step in plan.steps[1:]}
    assert groups == {
        ((A, B), ("eu-west-1", "us-east-1"), None),
        ((C,), ("us-east-1",), None),
        ((C,), ("eu-west-1",), (("Size", "large"),)),
    }


def test_unchanged_live_state_plans_nothing():
    s = spec()
    live = live_of(s, [inst(a, r) for a in (A, B) for r in s.regions])
    plan = plan_stack_set(s, live)
    assert plan.action == "no-change" and plan.steps == [] and plan.writes == 0


def test_instances_not_read_means_no_change_and_is_said():
    s = spec()
    plan = plan_stack_set(s, live_of(s, instances=None))
    assert plan.action == "no-change" and not plan.instances_read
    assert "instances not listed" in describe(plan, s)[0]


def test_defaults_masked_values_and_formatting_are_not_changes():
    s = spec()
    live = live_of(
        s,
        [inst(a, r) for a in (A, B) for r in s.regions],
        template_body=BODY + "\n\n",
        parameters=(("Secret", "****"), ("Size", "small")),
    )
    assert plan_stack_set(s, live).steps == []
    # Size left out of the live parameters: its default is what the stacks got
    live = replace(live, parameters=())
    s_default = replace(s, parameters=())
    live = replace(live, tags=tuple(sorted({**dict(live.tags), CONFIG_TAG: config_hash(s_default)}.items())))
    assert plan_stack_set(s_default, live).steps == []


def test_no_echo_change_is_detected_through_the_config_hash_and_masked():
    old = spec()
    new = spec(parameters=(("Secret", "rotated"), ("Size", "small")))
    live = live_of(old, [inst(a, r) for a in (A, B) for r in old.regions])
    plan = plan_stack_set(new, live)
    assert kinds(plan) == ["update_stack_set"]
    text = "\n".join(describe(plan, new))
    assert "rotated" not in text and "Secret" in text and "****" in text


def test_config_hash_seals_no_echo_values_so_the_tag_cannot_be_checked_against_guesses():
    s = spec()
    secret = s.effective_parameters()["Secret"]
    tag = config_hash(s)
    assert tag != config_hash(spec(parameters=(("Secret", secret + "x"), ("Size", "small"))))
    # the value enters only through a salted KDF: hashing the plain value does not give the tag
    from deploy.stacksets import plan as plan_module

    plain = dict(s.effective_parameters())
    sealed = plan_module._hashable_parameters(s)
    assert sealed["Secret"].startswith("kdf:") and secret not in sealed["Secret"]
    assert {k: v for k, v in sealed.items() if k != "Secret"} == {k: v for k, v in plain.items() if k != "Secret"}
    # the salt is the stack set's name: one secret gives different seals in different stack sets
    assert plan_module._sealed("one", "Secret", secret) != plan_module._sealed("two", "Secret", secret)


def test_parameter_template_and_property_diffs_are_readable():
    old = spec()
    new = spec(
        parameters=(("Size", "large"),),
        description="new",
        tags=(("team", "platform"),),
        template=replace(TEMPLATE, body=BODY.replace("M:", "N:")),
    )
    plan = plan_stack_set(new, live_of(old, [inst(a, r) for a in (A, B) for r in old.regions]))
    assert [c.key for c in plan.parameter_changes] == ["Size"]
    assert {c.key for c in plan.property_changes} == {"description", "tags"}
    assert "-  M: {Type: AWS::SSM::Parameter}" in plan.template_diff and "+  N:" in plan.template_diff
    assert kinds(plan) == ["update_stack_set"]


def test_removed_account_and_region_deleted_first_and_grouped():
    s = spec(accounts=(A,), regions=("us-east-1",))
    live = live_of(s, [inst(a, r) for a in (A, B) for r in ("us-east-1", "eu-west-1")])
    plan = plan_stack_set(s, live)
    assert kinds(plan) == ["delete_instances", "delete_instances"]
    groups = {(step.accounts, step.regions) for step in plan.steps}
    assert groups == {((A,), ("eu-west-1",)), ((B,), ("eu-west-1", "us-east-1"))}
    assert plan.removes and len(plan.remove) == 3


def test_override_change_and_rerun_of_not_current():
    s = spec(overrides=(Override((A,), (), ("us-east-1",), (("Size", "large"),)),))
    live = live_of(
        s,
        [
            inst(A, "us-east-1"),
            inst(A, "eu-west-1", status="OUTDATED"),
            inst(B, "us-east-1", overrides=(("Size", "x"),)),
            inst(B, "eu-west-1"),
        ],
    )
    plan = plan_stack_set(s, live)
    assert kinds(plan) == ["update_instances", "update_instances", "update_instances"]
    by_overrides = {(step.accounts, step.regions, step.overrides) for step in plan.steps}
    assert by_overrides == {
        ((A,), ("us-east-1",), (("Size", "large"),)),  # override added
        ((A,), ("eu-west-1",), ()),  # re-run
        ((B,), ("us-east-1",), ()),  # stray override removed
    }
    assert len(plan.rerun) == 1 and len(plan.override_changes) == 2


def test_service_managed_keeps_ous_and_deletes_by_ou():
    s = sm()
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    (create,) = [step for step in plan.steps if step.kind == "create_instances"]
    assert create.organizational_units == (OU1, OU2) and create.accounts == () and create.account_filter == "NONE"
    assert create.regions == ("eu-west-1", "us-east-1")

    narrowed = replace(s, organizational_units=(OU1,), regions=("us-east-1",))
    live = live_of(s, [inst(A, r, OU1) for r in s.regions] + [inst(B, r, OU2) for r in s.regions])
    plan = plan_stack_set(narrowed, live)
    assert kinds(plan) == ["delete_instances", "delete_instances"]  # targets are not stack-set-level: no update
    deletes = {
        (step.organizational_units, step.regions, step.account_filter)
        for step in plan.steps
        if step.kind == "delete_instances"
    }
    assert deletes == {((OU1,), ("eu-west-1",), "NONE"), ((OU2,), ("eu-west-1", "us-east-1"), "NONE")}


def test_service_managed_empty_ou_known_to_cloudformation_is_not_recreated():
    s = sm()
    live = live_of(s, [inst(A, r, OU1) for r in s.regions], organizational_unit_ids=(OU1, OU2))
    assert plan_stack_set(s, live).steps == []
    live = replace(live, organizational_unit_ids=None)
    plan = plan_stack_set(s, live)
    assert [(step.kind, step.organizational_units) for step in plan.steps] == [("create_instances", (OU2,))]


def test_service_managed_filters():
    inter = sm(accounts=(A,), account_filter=AccountFilter.INTERSECTION)
    live = live_of(
        inter,
        [inst(A, r, OU1) for r in inter.regions] + [inst(B, "us-east-1", OU1)],
        organizational_unit_ids=(OU1, OU2),
    )
    plan = plan_stack_set(inter, live)
    (delete,) = plan.steps
    assert (delete.kind, delete.accounts, delete.organizational_units, delete.account_filter) == (
        "delete_instances",
        (B,),
        (OU1,),
        "INTERSECTION",
    )

    diff = sm(accounts=(B,), account_filter=AccountFilter.DIFFERENCE)
    plan = plan_stack_set(diff, LiveStackSet(name="s", exists=False))
    (create,) = [step for step in plan.steps if step.kind == "create_instances"]
    assert create.accounts == (B,) and create.account_filter == "DIFFERENCE"

    union = sm(accounts=(C,), account_filter=AccountFilter.UNION)
    plan = plan_stack_set(union, LiveStackSet(name="s", exists=False), account_parents={C: "ou-abcd-33333333"})
    creates = [
        (step.organizational_units, step.accounts, step.account_filter)
        for step in plan.steps
        if step.kind == "create_instances"
    ]
    assert creates == [((OU1, OU2), (), "NONE"), (("ou-abcd-33333333",), (C,), "INTERSECTION")]


def test_service_managed_override_updates_whole_ou_when_possible():
    rule = Override((), (OU1,), ("us-east-1",), (("Size", "large"),))
    s = sm(overrides=(rule,))
    live = live_of(s, [inst(a, r, OU1) for a in (A, B) for r in s.regions] + [inst(C, r, OU2) for r in s.regions])
    plan = plan_stack_set(s, live)
    (update,) = plan.steps
    assert (update.kind, update.organizational_units, update.accounts, update.regions, update.overrides) == (
        "update_instances",
        (OU1,),
        (),
        ("us-east-1",),
        (("Size", "large"),),
    )
    one = sm(overrides=(Override((A,), (), ("us-east-1",), (("Size", "large"),)),))
    (update,) = plan_stack_set(one, live).steps
    assert (update.organizational_units, update.accounts, update.account_filter) == ((OU1,), (A,), "INTERSECTION")


def test_more_than_50_ous_are_chunked():
    ous = tuple(f"ou-abcd-{i:08d}" for i in range(120))
    plan = plan_stack_set(sm(organizational_units=ous), LiveStackSet(name="s", exists=False))
    creates = [step for step in plan.steps if step.kind == "create_instances"]
    assert [len(step.organizational_units) for step in creates] == [50, 50, 20]


def test_operation_ids_are_deterministic_and_mark_the_last_step():
    s = spec()
    first = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    again = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    assert [step.operation_id for step in first.steps] == [step.operation_id for step in again.steps]
    last = first.steps[-1].operation_id
    assert len(last) <= 128 and parse_operation_id(last)[1:3] == (1, 1)
    other_base = plan_stack_set(s, LiveStackSet(name="s", exists=False, last_operation=LastOperation("x", "SUCCEEDED")))
    assert other_base.steps[-1].operation_id != last  # a revert to an old state never reuses an old id

    fp = fingerprint(s)
    assert last_apply_matches(LastOperation(last, "SUCCEEDED"), fp)
    assert not last_apply_matches(LastOperation(last, "FAILED"), fp)
    assert not last_apply_matches(LastOperation(last, "SUCCEEDED", failed_count=1), fp)
    assert not last_apply_matches(LastOperation(last, "SUCCEEDED"), fingerprint(spec(accounts=(A,))))
    assert not last_apply_matches(LastOperation("someone-elses-op", "SUCCEEDED"), fp)
    two = plan_stack_set(
        spec(accounts=(A, B, C), overrides=(Override((C,), (), ("eu-west-1",), (("Size", "l"),)),)),
        LiveStackSet(name="s", exists=False),
    )
    ids = [parse_operation_id(step.operation_id) for step in two.steps if step.kind != "create_stack_set"]
    assert [(i[1], i[2]) for i in ids] == [(1, 3), (2, 3), (3, 3)]
    assert not last_apply_matches(
        LastOperation(two.steps[1].operation_id, "SUCCEEDED"), fingerprint(spec(accounts=(A, B, C)))
    )
    # ids say whether the operation may have left overrides: those instances get their overrides read
    assert [i[3] for i in ids] == [True, False, False]
    assert overrides_known_empty(LiveInstance(A, "us-east-1", last_operation_id=first.steps[-1].operation_id))
    assert not overrides_known_empty(LiveInstance(A, "us-east-1", last_operation_id=None))


def test_ownership_guard_adopt_and_permission_model():
    s = spec()
    foreign = live_of(s, [inst(a, r) for a in (A, B) for r in s.regions], tags=(("team", "ml"),))
    plan = plan_stack_set(s, foreign)
    assert plan.action == "blocked" and plan.steps == [] and "--adopt" in plan.blocked_reason
    adopted = plan_stack_set(s, foreign, adopt=True)
    assert kinds(adopted) == ["update_stack_set"] and adopted.action == "update"
    other_model = live_of(s, permission_model=PermissionModel.SERVICE_MANAGED)
    assert plan_stack_set(s, other_model).action == "blocked"


def test_destroy_plan_groups_and_respects_ownership():
    s = sm()
    live = live_of(s, [inst(A, r, OU1) for r in s.regions] + [inst(B, "us-east-1", OU2)])
    plan = plan_destroy(s, live)
    assert kinds(plan) == ["delete_instances", "delete_instances", "delete_stack_set"]
    assert {(step.organizational_units, step.regions) for step in plan.steps[:2]} == {
        ((OU1,), ("eu-west-1", "us-east-1")),
        ((OU2,), ("us-east-1",)),
    }
    foreign = replace(live, tags=())
    assert plan_destroy(s, foreign).action == "blocked" and plan_destroy(s, foreign).steps == []
    assert plan_destroy(s, LiveStackSet(name="s", exists=False)).action == "absent"


# INOPERABLE instances are not re-run but removed with RetainStacks (issue 15):
# see tests/test_stacksets_issue15.py::test_inoperable_instances_are_removed_with_retain_stacks.
@pytest.mark.parametrize("status", ["OUTDATED"])
def test_not_current_instances_are_rerun(status):
    s = spec(accounts=(A,), regions=("us-east-1",))
    plan = plan_stack_set(s, live_of(s, [inst(A, "us-east-1", status=status)]))
    assert kinds(plan) == ["update_instances"] and status in plan.rerun[0]


def test_a_round_with_a_follow_up_never_claims_to_be_the_last():
    """Account-level overrides of instances created through an OU need a second round; an
    interrupted first round must not look like a finished apply to the next run."""
    s = sm(overrides=(Override((A,), (), ("us-east-1",), (("Size", "large"),)),))
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    assert plan.needs_followup
    ids = [parse_operation_id(step.operation_id) for step in plan.steps if step.is_operation]
    assert all(index < total for _, index, total, _ in ids)
    assert not last_apply_matches(LastOperation(plan.steps[-1].operation_id, "SUCCEEDED"), fingerprint(s))


def test_strict_mode_without_tolerance_is_called_out():
    strict = spec(operation_preferences=(("ConcurrencyMode", "STRICT_FAILURE_TOLERANCE"), ("MaxConcurrentCount", 10)))
    plan = plan_stack_set(strict, LiveStackSet(name="s", exists=False))
    assert any("one account at a time" in note for note in plan.notes)
    soft = spec(operation_preferences=(("ConcurrencyMode", "SOFT_FAILURE_TOLERANCE"), ("FailureToleranceCount", 0)))
    assert not plan_stack_set(soft, LiveStackSet(name="s", exists=False)).notes


def test_running_operations_seen_by_plan_are_noted():
    s = spec()
    live = live_of(s, [inst(a, r) for a in (A, B) for r in s.regions], running_operations=("theirs",))
    plan = plan_stack_set(s, live)
    assert plan.steps == [] and any("theirs" in note and "still running" in note for note in plan.notes)


def test_with_ou_membership_exactly_the_missing_accounts_are_added():
    s = sm()
    members = ((OU1, (A, B)), (OU2, (C,)))
    # OU1 half deployed (a narrower filter before), OU2 not at all, one region
    live = live_of(s, [inst(A, r, OU1) for r in s.regions], organizational_unit_ids=(OU1,), ou_accounts=members)
    plan = plan_stack_set(s, live)
    creates = {(step.organizational_units, step.accounts, step.account_filter, step.regions) for step in plan.steps}
    assert creates == {
        ((OU2,), (), "NONE", ("eu-west-1", "us-east-1")),  # a whole OU: one call through the OU
        ((OU1,), (B,), "INTERSECTION", ("eu-west-1", "us-east-1")),  # only the missing account
    }
    assert not plan.needs_followup
    # an empty OU adds nothing, every run
    empty = live_of(s, [inst(a, r, OU1) for a in (A, B) for r in s.regions], ou_accounts=((OU1, (A, B)), (OU2, ())))
    assert plan_stack_set(s, empty).steps == []


def test_with_ou_membership_account_overrides_go_with_the_create():
    s = sm(organizational_units=(OU1,), overrides=(Override((B,), (), ("us-east-1",), (("Size", "large"),)),))
    live = live_of(s, [], ou_accounts=((OU1, (A, B)),))
    plan = plan_stack_set(s, live)
    by_overrides = {(step.accounts, step.regions, step.overrides) for step in plan.steps}
    # eu-west-1: the whole OU, one set of values; us-east-1: account by account, each with its own
    assert by_overrides == {
        ((), ("eu-west-1",), None),
        ((A,), ("us-east-1",), None),
        ((B,), ("us-east-1",), (("Size", "large"),)),
    }
    assert [step.account_filter for step in plan.steps].count("INTERSECTION") == 2 and not plan.needs_followup


def test_with_ou_membership_filters_choose_the_accounts():
    members = ((OU1, (A, B)),)
    diff = sm(
        organizational_units=(OU1,), regions=("us-east-1",), accounts=(B,), account_filter=AccountFilter.DIFFERENCE
    )
    (step,) = plan_stack_set(diff, live_of(diff, [], ou_accounts=members)).steps
    assert (step.organizational_units, step.accounts, step.account_filter) == ((OU1,), (B,), "DIFFERENCE")  # = A only
    union = sm(organizational_units=(OU1,), regions=("us-east-1",), accounts=(C,), account_filter=AccountFilter.UNION)
    steps = plan_stack_set(
        union,
        live_of(union, [inst(A, "us-east-1", OU1), inst(B, "us-east-1", OU1)], ou_accounts=members),
        account_parents={C: OU2},
    ).steps
    assert [(st.organizational_units, st.accounts, st.account_filter) for st in steps] == [
        ((OU2,), (C,), "INTERSECTION")
    ]


def test_destroy_names_the_retained_stack_sets_that_depend_on_a_deleted_one():
    boundary = spec(name="boundary")
    network = spec(name="network", retain_stacks=True)
    environment = spec(name="environment", retain_stacks=True, depends_on=("boundary", "network"))
    roles = spec(name="roles", depends_on=("boundary",))  # not retained: deleted before the boundary
    assert retained_dependents([boundary, network, environment, roles]) == {"boundary": ["environment"]}
    assert retained_dependents([replace(boundary, retain_stacks=True), network, environment, roles]) == {}
