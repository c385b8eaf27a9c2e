"""A ``targets`` list: entries with their own regions and exclude_accounts (issue 17).

The manifest's checks, the exact steps of the pure plan for both permission models, and
one run of each on the local AWS, re-applied with zero writes.
"""

from __future__ import annotations

from deploy.stacksets.manifest import AccountFilter, Override, PermissionModel, TargetEntry, load_manifest
from deploy.stacksets.plan import LiveStackSet, StepKind, fingerprint, plan_stack_set
from tests import test_deploy_e2e
from tests.test_deploy_e2e import instances, run, self_managed, service_managed, unique, write_manifest
from tests.test_manifest import base_stack_set, error_of, write
from tests.test_plan import OU1, OU2, A, B, C, inst, live_of, sm, spec

counter = test_deploy_e2e.counter  # the fixture counting API calls, shared with the other end-to-end tests
EAST, WEST = "us-east-1", "eu-west-1"
BOTH = (WEST, EAST)  # the order steps carry regions in (sorted)


def steps_of(plan) -> list[tuple]:
    return [(s.kind, s.organizational_units, s.accounts, s.account_filter, s.regions) for s in plan.steps]


# --------------------------------------------------------------------------- manifest


def test_a_targets_list_loads_with_entry_regions_exclusions_and_references(tmp_path):
    item = base_stack_set(
        regions=[EAST, WEST],
        targets=[
            {"organizational_units": ["ou:/production"], "exclude_accounts": ["account:ml-prod-2"]},
            {"organizational_units": ["ou-abcd-12345678"], "regions": [WEST]},
        ],
    )
    manifest = load_manifest(write(tmp_path, stack_sets=[item]))
    (loaded,) = manifest.stack_sets
    assert loaded.target_entries == (
        TargetEntry(("ou:/production",), ("account:ml-prod-2",), AccountFilter.DIFFERENCE, (EAST, WEST)),
        TargetEntry(("ou-abcd-12345678",), (), AccountFilter.NONE, (WEST,)),
    )
    # the stack set's own fields hold the union; regions stay every region used
    assert loaded.organizational_units == ("ou-abcd-12345678", "ou:/production")
    assert loaded.regions == (EAST, WEST) and loaded.account_filter is AccountFilter.NONE
    assert loaded.auto_deployment is False  # an exclusion is a filter, which auto-deployment ignores
    assert set(manifest.references) == {
        ("roles", "targets[0].organizational_units", "ou:/production"),
        ("roles", "targets[0].exclude_accounts", "account:ml-prod-2"),
        ("roles", "targets[1].organizational_units", "ou-abcd-12345678"),
    }


def test_a_self_managed_exclusion_removes_the_account_from_its_entry(tmp_path):
    item = base_stack_set(
        permission_model="self_managed",
        regions=[EAST, WEST],
        targets=[
            {"accounts": [A, B, C], "exclude_accounts": [B], "regions": [EAST]},
            {"accounts": [B], "regions": [WEST]},
        ],
    )
    (loaded,) = load_manifest(write(tmp_path, stack_sets=[item])).stack_sets
    assert loaded.permission_model is PermissionModel.SELF_MANAGED
    assert [(e.accounts, e.regions) for e in loaded.target_entries] == [((A, C), (EAST,)), ((B,), (WEST,))]
    assert loaded.accounts == (A, B, C)


def test_the_single_mapping_keeps_no_entries(tmp_path):
    (loaded,) = load_manifest(write(tmp_path)).stack_sets
    assert loaded.target_entries == () and len(loaded.entries()) == 1


def test_bad_target_entries_name_the_stack_set_and_the_entry_key(tmp_path):
    cases = [
        (
            base_stack_set(targets=[{"organizational_units": ["ou-abcd-12345678"], "regions": [WEST]}]),
            "targets[0].regions",
            "eu-west-1 are not among the stack set's regions",
        ),
        (
            base_stack_set(
                permission_model="self_managed",
                targets=[{"accounts": [A]}, {"accounts": [B], "exclude_accounts": [C]}],
            ),
            "targets[1].exclude_accounts",
            f"{C} to exclude are not among this entry's accounts",
        ),
        (
            base_stack_set(
                targets=[
                    {
                        "organizational_units": ["ou-abcd-12345678"],
                        "accounts": [A],
                        "account_filter": "intersection",
                        "exclude_accounts": [B],
                    }
                ]
            ),
            "targets[0].exclude_accounts",
            "not both",
        ),
        (
            base_stack_set(
                auto_deployment=True, targets=[{"organizational_units": ["ou-abcd-12345678"], "exclude_accounts": [A]}]
            ),
            "auto_deployment",
            "ignores account filters",
        ),
        (
            base_stack_set(targets=[{"accounts": [A]}]),
            "targets[0].organizational_units",
            "targets organizational_units",
        ),
        (base_stack_set(targets=[]), "targets", "should be non-empty"),
        (
            base_stack_set(targets=[{"organizational_units": ["ou-abcd-12345678"], "region": [EAST]}]),
            "targets[0].region",
            "unknown key",
        ),
    ]
    for item, key, words in cases:
        error = error_of(tmp_path, stack_sets=[item])
        assert (error.where, error.key) == ("stack set 'roles'", key), error
        assert words in error.message, error.message


# --------------------------------------------------------------------------- plan: self-managed

SELF_ENTRIES = (
    TargetEntry((), (A,), AccountFilter.NONE, (EAST, WEST)),
    TargetEntry((), (B, C), AccountFilter.NONE, (EAST,)),
)


def self_entries(**extra):
    return spec(**{"accounts": (A, B, C), "regions": (EAST, WEST), "target_entries": SELF_ENTRIES, **extra})


def test_self_managed_entries_create_one_call_per_region_set():
    s = self_entries()
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    assert steps_of(plan) == [
        (StepKind.CREATE_STACK_SET, (), (), None, ()),
        (StepKind.CREATE_INSTANCES, (), (A,), None, BOTH),
        (StepKind.CREATE_INSTANCES, (), (B, C), None, (EAST,)),
    ]
    assert sorted(plan.add) == sorted([f"{A}/{EAST}", f"{A}/{WEST}", f"{B}/{EAST}", f"{C}/{EAST}"])


def test_self_managed_instance_outside_its_entry_regions_is_removed_and_the_rest_is_a_no_op():
    s = self_entries()
    wanted = [inst(A, EAST), inst(A, WEST), inst(B, EAST), inst(C, EAST)]
    assert plan_stack_set(s, live_of(s, wanted)).steps == []
    plan = plan_stack_set(s, live_of(s, [*wanted, inst(B, WEST)]))
    assert steps_of(plan) == [(StepKind.DELETE_INSTANCES, (), (B,), None, (WEST,))]
    assert plan.remove == [f"{B}/{WEST}"]


def test_self_managed_duplicates_across_entries_are_their_union():
    entries = (TargetEntry((), (A,), AccountFilter.NONE, (EAST,)), TargetEntry((), (A,), AccountFilter.NONE, (WEST,)))
    s = spec(accounts=(A,), target_entries=entries)
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False))
    assert steps_of(plan)[1:] == [(StepKind.CREATE_INSTANCES, (), (A,), None, BOTH)]


def test_entries_and_their_regions_enter_the_fingerprint():
    legacy = spec(accounts=(A, B, C), regions=(EAST, WEST))
    listed = self_entries()
    assert fingerprint(legacy) != fingerprint(listed)
    moved = (SELF_ENTRIES[0], TargetEntry((), (B, C), AccountFilter.NONE, (WEST,)))
    assert fingerprint(listed) != fingerprint(self_entries(target_entries=moved))


# --------------------------------------------------------------------------- plan: service-managed

MEMBERS = ((OU1, (A, B)), (OU2, (C,)))
SM_ENTRIES = (
    TargetEntry((OU1,), (B,), AccountFilter.DIFFERENCE, (EAST, WEST)),  # OU1 but B, both regions
    TargetEntry((OU2,), (), AccountFilter.NONE, (EAST,)),  # OU2 in us-east-1 only
)


def sm_entries(**extra):
    return sm(auto_deployment=False, regions=(EAST, WEST), accounts=(B,), target_entries=SM_ENTRIES, **extra)


def test_service_managed_entries_create_through_their_ous_with_difference():
    s = sm_entries()
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False, ou_accounts=MEMBERS))
    assert steps_of(plan) == [
        (StepKind.CREATE_STACK_SET, (), (), None, ()),
        (StepKind.CREATE_INSTANCES, (OU1,), (B,), AccountFilter.DIFFERENCE, BOTH),
        (StepKind.CREATE_INSTANCES, (OU2,), (), AccountFilter.NONE, (EAST,)),
    ]


def test_service_managed_excluded_and_out_of_region_instances_are_removed_then_nothing():
    s = sm_entries()
    wanted = [inst(A, EAST, OU1), inst(A, WEST, OU1), inst(C, EAST, OU2)]
    assert plan_stack_set(s, live_of(s, wanted, ou_accounts=MEMBERS)).steps == []
    stray = [inst(B, EAST, OU1), inst(C, WEST, OU2)]
    plan = plan_stack_set(s, live_of(s, [*wanted, *stray], ou_accounts=MEMBERS))
    assert steps_of(plan) == [
        (StepKind.DELETE_INSTANCES, (OU2,), (), AccountFilter.NONE, (WEST,)),  # nothing of OU2 stays there
        (StepKind.DELETE_INSTANCES, (OU1,), (B,), AccountFilter.INTERSECTION, (EAST,)),  # A stays in OU1
    ]


def test_service_managed_overlapping_entries_add_each_instance_once():
    entries = (
        TargetEntry((OU1,), (), AccountFilter.NONE, (EAST,)),
        TargetEntry((OU1,), (A,), AccountFilter.DIFFERENCE, (EAST, WEST)),
    )
    s = sm(
        auto_deployment=False, organizational_units=(OU1,), accounts=(A,), regions=(EAST, WEST), target_entries=entries
    )
    plan = plan_stack_set(s, LiveStackSet(name="s", exists=False, ou_accounts=((OU1, (A, B)),)))
    assert steps_of(plan)[1:] == [
        (StepKind.CREATE_INSTANCES, (OU1,), (), AccountFilter.NONE, (EAST,)),
        (StepKind.CREATE_INSTANCES, (OU1,), (A,), AccountFilter.DIFFERENCE, (WEST,)),
    ]


def test_service_managed_override_change_of_an_entry_goes_account_by_account():
    s = sm_entries(overrides=(Override((), (OU1,), (WEST,), (("Size", "large"),)),))
    live = live_of(s, [inst(A, EAST, OU1), inst(A, WEST, OU1), inst(C, EAST, OU2)], ou_accounts=MEMBERS)
    plan = plan_stack_set(s, live)
    assert steps_of(plan) == [(StepKind.UPDATE_INSTANCES, (OU1,), (A,), AccountFilter.INTERSECTION, (WEST,))]
    assert plan.steps[0].overrides == (("Size", "large"),)


# --------------------------------------------------------------------------- local AWS


def test_target_entries_on_the_local_aws(local_aws, workdir, counter, capsys):
    dev, stg = local_aws.account_id("ml-development"), local_aws.account_id("ml-staging")
    p1, p2 = local_aws.accounts_in("production")
    staging = local_aws.accounts_in("staging")
    own, org = unique("entries-self"), unique("entries-org")
    mine = self_managed(own, [], [EAST, WEST])
    mine["targets"] = [{"accounts": [dev]}, {"accounts": [stg], "regions": [EAST]}]
    theirs = service_managed(org, [], [EAST, WEST])
    theirs["targets"] = [
        {"organizational_units": ["ou:/production"], "exclude_accounts": [p2], "regions": [EAST]},
        {"organizational_units": ["ou:/staging"], "regions": [WEST]},
    ]
    manifest = write_manifest(workdir, [mine, theirs])

    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0, err
    assert instances(local_aws, own) == {(dev, EAST), (dev, WEST), (stg, EAST)}
    assert instances(local_aws, org) == {(p1, EAST)} | {(a, WEST) for a in staging}
    # one call per entry and region set: dev in both regions, stg in one; each OU entry once
    assert counter.calls["cloudformation.CreateStackInstances"] == 4

    counter.calls.clear()
    code, doc, err = run(["apply", "--manifest", manifest, "--json"], capsys)
    assert code == 0 and counter.writes == 0, counter.write_calls()
    assert [s["result"] for s in doc["stack_sets"]] == ["no-change", "no-change"]

    # an instance in a region its entry no longer lists is removed like any untargeted one
    mine["targets"][0]["regions"] = [EAST]
    manifest = write_manifest(workdir, [mine, theirs])
    code, doc, err = run(["apply", "--manifest", manifest, "--yes"], capsys)
    assert code == 0, err
    assert instances(local_aws, own) == {(dev, EAST), (stg, EAST)}
    counter.calls.clear()
    assert run(["apply", "--manifest", manifest], capsys)[0] == 0 and counter.writes == 0

    assert run(["destroy", "--manifest", manifest, "--yes"], capsys)[0] == 0
