"""The plan: desired stack sets (from the manifest) against live state, on plain data.

Nothing here talks to AWS. ``plan_stack_set`` compares one ``StackSetSpec`` (OU paths
already resolved to ids) with a ``LiveStackSet`` snapshot and returns a ``StackSetPlan``:
what changes at the stack set level (template, parameters, properties; NoEcho-aware),
what changes per instance (add, remove, override change, re-run of instances that are
not CURRENT) and the ordered API steps that get there with the fewest calls: instances
are grouped by identical (regions, overrides) and OU targets stay OUs. A ``Step``'s call
is a ``StepKind`` and a plan's overall action a ``PlanAction`` (``str`` enums, so the JSON
documents carry the same strings as before).

Every operation step gets a deterministic ``OperationId`` derived from the desired
state, the live state it was planned from and the step's content: a retried request
reuses its id (CloudFormation treats it as the same request), and the id of the last
step records a fingerprint of the desired state, which lets the next run know that
nothing changed without listing the instances (see ``last_apply_matches``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from functools import lru_cache
from typing import Any

import yaml

from deploy.common.config import parse_yaml
from deploy.common.ownership import OWNER_TAG_KEY, OWNER_TAG_VALUE, TOOL_TAG_PREFIX
from deploy.stacksets.manifest import (
    AccountFilter,
    Override,
    PermissionModel,
    StackSetSpec,
    TargetEntry,
    canonical_json,
    resolved_values,
)
from deploy.stacksets.resource_changes import ResourceChange, resource_changes

CONFIG_TAG = f"{TOOL_TAG_PREFIX}config-sha256"
# Which manifest owns the stack set (its ``id`` key, or the file's stem): a second manifest
# reusing a name is refused without --adopt instead of removing the first one's instances.
MANIFEST_TAG = f"{TOOL_TAG_PREFIX}manifest"
TOOL_TAGS = (OWNER_TAG_KEY, CONFIG_TAG, MANIFEST_TAG)
OPERATION_PREFIX = "ssd"
MAX_OUS_PER_CALL = 50
NO_ECHO_MASK = "****"

# The flag after the step numbers says what the operation did to the overrides of the
# instances it touched: ``n`` set none, ``o`` may have set some (or kept them), ``s`` set
# exactly the overrides whose digest follows (8 hex digits).
# Ids since 2026-11-27 carry, after the fingerprint, the ``shape_fingerprint`` (12 hex digits).
_OPERATION_ID_RE = re.compile(
    rf"^{OPERATION_PREFIX}-([0-9a-f]{{20}})(?:-([0-9a-f]{{12}}))?-(\d+)o(\d+)-(?:([on])|s([0-9a-f]{{8}}))[0-9a-f]{{16}}$"
)
# The ids of our drift detections (``StackSets.detect_drift``).
DRIFT_OPERATION_PREFIX = f"{OPERATION_PREFIX}-drift-"
RUNNING_STATUSES = frozenset({"RUNNING", "QUEUED", "STOPPING"})

Overrides = tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- live state


@dataclass(frozen=True)
class LiveInstance:
    """One stack instance as CloudFormation reports it."""

    account: str
    region: str
    ou: str | None = None  # the OU it was deployed through (service-managed)
    status: str = "CURRENT"  # CURRENT | OUTDATED | INOPERABLE
    detailed_status: str | None = None
    status_reason: str | None = None
    overrides: Overrides | None = None  # None: not read
    last_operation_id: str | None = None
    drift_status: str | None = None


@dataclass(frozen=True)
class LastOperation:
    operation_id: str
    status: str
    action: str | None = None
    failed_count: int | None = None
    created: Any = None  # CreationTimestamp
    ended: Any = None  # EndTimestamp (None while running or queued)


@dataclass(frozen=True)
class LiveStackSet:
    """A stack set as DescribeStackSet (and, when read, ListStackInstances) report it."""

    name: str
    exists: bool
    tags: tuple[tuple[str, str], ...] = ()
    template_body: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    capabilities: tuple[str, ...] = ()
    permission_model: PermissionModel | None = None
    auto_deployment: tuple[bool, bool] | None = None  # (enabled, retain on removal)
    administration_role_arn: str | None = None
    execution_role_name: str | None = None
    organizational_unit_ids: tuple[str, ...] | None = None
    instances: tuple[LiveInstance, ...] | None = None  # None: not read (nothing changed)
    last_operation: LastOperation | None = None
    running_operations: tuple[str, ...] = ()  # only when read without waiting (plan)
    ou_accounts: tuple[tuple[str, tuple[str, ...]], ...] | None = (
        None  # target OU -> its accounts (recursive), when read
    )
    # The other operations listed with ``last_operation`` (to prove nothing ran since it).
    operations: tuple[LastOperation, ...] = ()
    # Names of the stack sets AutoDeployment.DependsOn lists (None: not reported).
    depends_on: tuple[str, ...] | None = None
    # Current parent (OU or root) of accounts whose instance's recorded OU no longer holds them.
    moved_accounts: tuple[tuple[str, str], ...] = ()
    # ``instances`` holds only the instances whose overrides may differ: since our last apply only
    # overrides changed in the manifest and only our own operations ran (``override_delta_possible``),
    # so the other instances are as that apply left them. Only override updates are planned.
    instances_partial: bool = False

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    @property
    def owned(self) -> bool:
        return self.tag_dict.get(OWNER_TAG_KEY) == OWNER_TAG_VALUE

    @property
    def manifest_id(self) -> str | None:
        return self.tag_dict.get(MANIFEST_TAG)


# --------------------------------------------------------------------------- plan data


class StepKind(str, Enum):
    """The write call a step makes (``str``: JSON and ``describe`` show the value)."""

    CREATE_STACK_SET = "create_stack_set"
    UPDATE_STACK_SET = "update_stack_set"
    CREATE_INSTANCES = "create_instances"
    UPDATE_INSTANCES = "update_instances"
    DELETE_INSTANCES = "delete_instances"
    DELETE_STACK_SET = "delete_stack_set"

    @property
    def is_operation(self) -> bool:
        """Whether the call starts a stack set operation (with an ``OperationId`` to wait for)."""
        return self not in (StepKind.CREATE_STACK_SET, StepKind.DELETE_STACK_SET)

    @property
    def removes(self) -> bool:
        return self in (StepKind.DELETE_INSTANCES, StepKind.DELETE_STACK_SET)


class PlanAction(str, Enum):
    """What a plan does to its stack set as a whole."""

    CREATE = "create"
    UPDATE = "update"
    NO_CHANGE = "no-change"
    BLOCKED = "blocked"
    DELETE = "delete"
    ABSENT = "absent"


@dataclass(frozen=True)
class Step:
    """One write call. Instance steps carry their deployment targets and overrides."""

    kind: StepKind
    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    account_filter: AccountFilter | None = None
    regions: tuple[str, ...] = ()
    overrides: Overrides | None = None  # None: leave ParameterOverrides out
    instance_count: int = 0  # instances this step touches, as far as known (progress)
    retain_stacks: bool | None = None  # DELETE_INSTANCES: None keeps the manifest's retain_stacks
    operation_id: str = ""

    @property
    def is_operation(self) -> bool:
        return self.kind.is_operation

    def content(self) -> dict:
        data = asdict(self)
        data.pop("operation_id")
        return data


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any


@dataclass
class StackSetPlan:
    name: str
    action: PlanAction
    fingerprint: str
    steps: list[Step] = field(default_factory=list)
    property_changes: list[Change] = field(default_factory=list)
    parameter_changes: list[Change] = field(default_factory=list)
    template_diff: str = ""
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    override_changes: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocked_reason: str | None = None
    instances_read: bool = True
    needs_followup: bool = False  # account-level overrides of OU instances created now: re-plan after
    masked: frozenset[str] = frozenset()  # NoEcho and secret parameters: their values are never shown
    # What the template or parameter change does inside every instance's stack (a computed change set).
    resource_changes: list[ResourceChange] = field(default_factory=list)
    instance_count: int | None = None  # the instances an update reaches (None: not read)

    @property
    def data_loss(self) -> list[ResourceChange]:
        """Stateful resources an update would remove or replace without Retain."""
        return [c for c in self.resource_changes if c.data_loss]

    @property
    def writes(self) -> int:
        return len(self.steps)

    @property
    def removes(self) -> bool:
        return any(step.kind.removes for step in self.steps)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "action": self.action,
            "fingerprint": self.fingerprint,
            "blocked_reason": self.blocked_reason,
            "instances_read": self.instances_read,
            "property_changes": [asdict(c) for c in self.property_changes],
            "parameter_changes": [
                {"key": c.key, "old": mask(c.key, c.old, self.masked), "new": mask(c.key, c.new, self.masked)}
                for c in self.parameter_changes
            ],
            "template_diff": self.template_diff,
            "resource_changes": [c.to_dict() for c in self.resource_changes],
            "instance_count": self.instance_count,
            "instances": {
                "add": self.add,
                "remove": self.remove,
                "override_change": self.override_changes,
                "rerun": self.rerun,
            },
            "notes": self.notes,
            "steps": [_masked_step(s, self.masked) for s in self.steps],
        }


# --------------------------------------------------------------------------- hashing


def _sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _normalised_template(body: str | None) -> Any:
    if body is None:
        return None
    try:
        return parse_yaml(body)
    except Exception:  # noqa: BLE001 - an unparsable live body simply differs
        return body


# NoEcho values enter the configuration hash only through a slow, salted key derivation:
# the hash is stored in a readable tag, and everything else in it (template, other
# parameters) is readable too, so a plain hash would let anyone who can read the stack
# set test guesses of a secret (an ExternalId) offline at SHA-256 speed.
_NO_ECHO_KDF_ITERATIONS = 200_000


@lru_cache(maxsize=4096)
def _sealed(stack_set: str, name: str, value: str) -> str:
    salt = f"sagemaker-stackset-deploy:{stack_set}:{name}".encode()
    return "kdf:" + hashlib.pbkdf2_hmac("sha256", value.encode("utf-8"), salt, _NO_ECHO_KDF_ITERATIONS).hex()


def _hashable_parameters(spec: StackSetSpec) -> dict[str, Any]:
    masked = spec.masked_parameters()
    return {
        name: _sealed(spec.name, name, str(value)) if name in masked else value
        for name, value in spec.effective_parameters().items()
    }


def _hashable_overrides(spec: StackSetSpec) -> list[dict]:
    masked = spec.masked_parameters()
    return [
        {
            **asdict(o),
            "parameters": [[k, _sealed(spec.name, k, str(v)) if k in masked else v] for k, v in o.parameters],
        }
        for o in spec.overrides
    ]


def config_hash(spec: StackSetSpec) -> str:
    """Hash of everything UpdateStackSet sets (stored in a tag; NoEcho values sealed by a slow KDF)."""
    config = {
        "template": _normalised_template(spec.template.body),
        "parameters": _hashable_parameters(spec),
        "description": spec.description,
        "capabilities": sorted(spec.capabilities),
        "auto_deployment": [spec.auto_deployment, spec.retain_stacks_on_account_removal]
        if spec.service_managed
        else None,
        "administration_role_arn": spec.administration_role_arn,
        "execution_role_name": spec.execution_role_name,
        "tags": dict(spec.tags),
    }
    # Added keys enter only when used, so the hash of every other stack set stays what it was.
    if auto_deployment_dependencies(spec):
        config["auto_deployment_depends_on"] = sorted(spec.depends_on)
    if set(dict(spec.stack_set_parameters())) != set(dict(spec.parameters)):
        config["stack_set_parameters"] = sorted(dict(spec.stack_set_parameters()))
    return _sha(config)


def auto_deployment_dependencies(spec: StackSetSpec) -> tuple[str, ...]:
    """The stack sets ``AutoDeployment.DependsOn`` names: ``depends_on`` of an auto-deployed stack set.

    API reference, AutoDeployment.DependsOn: "When auto-deployment is triggered, operations will
    be sequenced to ensure all dependencies complete successfully before this StackSet's
    operation begins." Without it an account joining an OU can get model-deploy before its network.
    """
    if not (spec.service_managed and spec.auto_deployment):
        return ()
    # Self-managed dependencies never auto-deploy: the rollout orders them, DependsOn cannot name them.
    return tuple(sorted(d for d in spec.depends_on if d not in spec.unsequenced_dependencies))


def membership_matters(spec: StackSetSpec) -> bool:
    """Whether OU membership changes can leave the stack set behind without any operation.

    With auto-deployment on and no account filter, AWS itself follows accounts into and out
    of the target OUs (each move is an operation, which the fast path sees). With it off, or
    with account filters (which auto-deployment ignores, so they force it off), an account
    that joins a target OU creates no operation: membership must be read.
    A ``targets`` list always reads it: its entries' regions and exclusions are only exact
    against the accounts the OUs hold now.
    """
    return spec.service_managed and (
        not spec.auto_deployment or spec.account_filter is not AccountFilter.NONE or bool(spec.target_entries)
    )


def targeted_accounts(
    targets: StackSetSpec | TargetEntry, ou_accounts: Iterable[tuple[str, Iterable[str]]]
) -> frozenset[str]:
    """The accounts the targets (a stack set's or one entry's) resolve to, given each target OU's
    current accounts (service-managed)."""
    members: set[str] = set()
    for ou, accounts in ou_accounts:
        if ou in targets.organizational_units:
            members.update(accounts)
    chosen = set(targets.accounts)
    if targets.account_filter is AccountFilter.INTERSECTION:
        return frozenset(members & chosen)
    if targets.account_filter is AccountFilter.DIFFERENCE:
        return frozenset(members - chosen)
    if targets.account_filter is AccountFilter.UNION:
        return frozenset(members | chosen)
    return frozenset(members)


def desired_pairs(
    spec: StackSetSpec, ou_accounts: Iterable[tuple[str, Iterable[str]]] | None = None
) -> frozenset[tuple[str, str]]:
    """The (account, region) instances the targets ask for: the union over the entries.

    Service-managed targets need ``ou_accounts`` (each target OU's current accounts).
    """
    if spec.service_managed and ou_accounts is None:
        raise ValueError(f"{spec.name}: the accounts of the target OUs must be read to expand a targets list")
    members = tuple(ou_accounts or ())
    pairs: set[tuple[str, str]] = set()
    for entry in spec.entries():
        accounts = targeted_accounts(entry, members) if spec.service_managed else frozenset(entry.accounts)
        pairs.update((account, region) for account in accounts for region in entry.regions)
    return frozenset(pairs)


def fingerprint(spec: StackSetSpec, ou_accounts: Iterable[tuple[str, Iterable[str]]] | None = None) -> str:
    """Hash of the whole desired state of a stack set: configuration, targets, regions, overrides.

    When membership matters (``membership_matters``) the accounts the targets resolve to are
    part of it: an account joining a target OU then changes the fingerprint, which the fast
    path compares with the one recorded in the last operation's id.
    """
    return _sha(_desired_state(spec, ou_accounts))


def shape_fingerprint(spec: StackSetSpec, ou_accounts: Iterable[tuple[str, Iterable[str]]] | None = None) -> str:
    """12 hex digits of the desired state without the overrides: which instances exist, with
    which configuration. Recorded in operation ids: when the last apply's shape is this one,
    only overrides can differ (see ``override_delta_possible``)."""
    state = _desired_state(spec, ou_accounts)
    state.pop("overrides")
    return _sha(state)[:12]


def _desired_state(spec: StackSetSpec, ou_accounts: Iterable[tuple[str, Iterable[str]]] | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "config": config_hash(spec),
        "permission_model": spec.permission_model,
        "organizational_units": sorted(spec.organizational_units),
        "accounts": sorted(spec.accounts),
        "account_filter": spec.account_filter,
        "regions": sorted(spec.regions),
        "overrides": _hashable_overrides(spec),
    }
    if spec.target_entries:  # a targets list: its entries enter only then, so other fingerprints stay
        state["targets"] = [asdict(entry) for entry in spec.target_entries]
    if ou_accounts is not None and membership_matters(spec):
        if spec.target_entries:
            state["members"] = sorted(map(list, desired_pairs(spec, ou_accounts)))
        else:
            state["members"] = sorted(targeted_accounts(spec, ou_accounts))
    return state


def overrides_digest(overrides: Overrides | None, spec: StackSetSpec) -> str:
    """8 hex digits naming a set of override values (recorded in operation ids, which anyone who
    can list operations reads: NoEcho and secret values enter sealed, as in the fingerprint)."""
    masked = spec.masked_parameters()
    return _sha([[k, _sealed(spec.name, k, str(v)) if k in masked else v] for k, v in overrides or ()])[:8]


def operation_id(
    spec_fingerprint: str, index: int, total: int, step: Step, base: str, may_override: bool | str, shape: str = ""
) -> str:
    """Deterministic client token of a step: same plan from the same live state, same id.

    ``may_override``: False (sets no overrides), True (may set or keep some), or the
    ``overrides_digest`` of the exact overrides set on every instance the step touches.
    ``shape``: the ``shape_fingerprint`` of the desired state (left out when empty).
    """
    digest = _sha({"base": base, "step": step.content(), "index": index, "total": total, "fp": spec_fingerprint})
    flag = f"s{may_override}" if isinstance(may_override, str) else ("o" if may_override else "n")
    shape_part = f"-{shape[:12]}" if shape else ""
    return f"{OPERATION_PREFIX}-{spec_fingerprint[:20]}{shape_part}-{index}o{total}-{flag}{digest[:16]}"


def parse_operation_id(value: str | None) -> tuple[str, int, int, bool] | None:
    """(fingerprint prefix, step index, step count, may have set overrides) of one of our ids."""
    match = _OPERATION_ID_RE.match(value or "")
    if not match:
        return None
    return match.group(1), int(match.group(3)), int(match.group(4)), match.group(5) != "n"


def operation_shape(value: str | None) -> str | None:
    """The ``shape_fingerprint`` one of our ids records (None: not ours, or an id from before shapes)."""
    match = _OPERATION_ID_RE.match(value or "")
    return match.group(2) if match else None


def operation_overrides(value: str | None) -> str | None:
    """What one of our operations did to the overrides of the instances it touched: ``"n"`` set
    none, ``"o"`` may have set or kept some, else the digest of exactly those set (None: not ours)."""
    match = _OPERATION_ID_RE.match(value or "")
    if not match:
        return None
    return match.group(5) or match.group(6)


def known_overrides_digest(instance: LiveInstance) -> str | None:
    """The digest of the overrides our last operation on ``instance`` set, when it set them explicitly."""
    match = _OPERATION_ID_RE.match(instance.last_operation_id or "")
    return match.group(6) if match else None


NO_OVERRIDES_DIGEST = _sha([])[:8]  # ``overrides_digest`` of no overrides


def quiet_since(last: LastOperation, operations: Iterable[LastOperation]) -> bool:
    """Whether no other operation was running, queued, or ended after ``last`` started.

    With ManagedExecution, non-conflicting operations run concurrently: an operation created
    just before ours can still be changing instances after ours ended, so "ours is the
    newest by creation time" alone does not prove nothing ran since.
    """
    for other in operations:
        if other.operation_id == last.operation_id:
            continue
        if other.status in RUNNING_STATUSES or other.ended is None:
            return False
        if last.created is not None and other.ended > last.created:
            return False
    return True


def last_apply_matches(
    last: LastOperation | None, spec_fingerprint: str, operations: Iterable[LastOperation] = ()
) -> bool:
    """Whether the stack set's latest operation is the successful last step of an apply of this exact state.

    Anything else (someone else's operation, a failure, a stop, instance failures within
    the tolerance, a different desired state, another operation overlapping ours) means
    live state must be read in full.
    """
    if last is None or last.status != "SUCCEEDED" or (last.failed_count or 0) > 0:
        return False
    parsed = parse_operation_id(last.operation_id)
    matches = parsed is not None and parsed[0] == spec_fingerprint[:20] and parsed[1] == parsed[2]
    return matches and quiet_since(last, operations)


def overrides_known_empty(instance: LiveInstance) -> bool:
    """Our last operation on this instance set no overrides: no need to read them."""
    parsed = parse_operation_id(instance.last_operation_id)
    return parsed is not None and not parsed[3]


# --------------------------------------------------------------------------- desired state helpers


def desired_overrides(
    spec: StackSetSpec, account: str, region: str, ou: str | None, ou_level_only: bool = False
) -> Overrides:
    """Merged override values for one instance (later rules win per key)."""
    values: dict[str, str] = {}
    for rule in spec.overrides:
        if region not in rule.regions:
            continue
        if rule.accounts and (ou_level_only or account not in rule.accounts):
            continue
        if rule.organizational_units and ou not in rule.organizational_units:
            continue
        values.update(resolved_values(rule.parameters))
    return tuple(sorted(values.items()))


def override_scope(spec: StackSetSpec, instance: LiveInstance) -> bool:
    """Whether some override rule of the manifest may apply to ``instance``."""
    for rule in spec.overrides:
        if instance.region not in rule.regions:
            continue
        if rule.accounts and instance.account not in rule.accounts:
            continue
        if rule.organizational_units and instance.ou is not None and instance.ou not in rule.organizational_units:
            continue
        return True
    return False


def expand_child_ou_overrides(spec: StackSetSpec, child_accounts: dict[str, frozenset[str]]) -> StackSetSpec:
    """Overrides naming an OU below a target OU, turned into account-level rules.

    Instances are recorded under the target OU they were deployed through, so a rule naming
    a child OU would never match one; its accounts (read now) say where it applies. A part
    whose OU holds no account is dropped (an empty account list would mean every target).
    """
    rules: list[Override] = []
    for rule in spec.overrides:
        children = [ou for ou in rule.organizational_units if ou not in spec.organizational_units]
        if not children:
            rules.append(rule)
            continue
        kept = tuple(ou for ou in rule.organizational_units if ou in spec.organizational_units)
        if kept:
            rules.append(replace(rule, organizational_units=kept))
        accounts: set[str] = set().union(*(child_accounts.get(ou, frozenset()) for ou in children))
        if rule.accounts:
            accounts &= set(rule.accounts)
        if accounts:
            rules.append(replace(rule, organizational_units=(), accounts=tuple(sorted(accounts))))
    return replace(spec, overrides=tuple(rules))


def target_problems(spec: StackSetSpec, management_account: str | None) -> list[tuple[str, str]]:
    """(key, problem) of targets AWS would silently ignore (service-managed)."""
    problems = []
    if spec.service_managed and management_account and management_account in spec.accounts:
        # API reference, DeploymentTargets: "CloudFormation doesn't deploy stack instances to the
        # organization management account, even if the organization management account is in
        # your organization or in an OU in your organization."
        problems.append(
            (
                "targets.accounts",
                f"{management_account} is the Organization's management account: service-managed stack sets "
                "never deploy there (use a self_managed stack set for it)",
            )
        )
    return problems


def _instance_desired(spec: StackSetSpec, inst: LiveInstance, targeted: frozenset[str] | None = None) -> bool:
    if inst.region not in spec.regions:
        return False
    if not spec.service_managed:
        return inst.account in spec.accounts
    if targeted is not None:  # membership read: the accounts the targets resolve to now
        return inst.account in targeted
    accounts = set(spec.accounts)
    if inst.ou is None or inst.ou in spec.organizational_units:
        # An instance we cannot attribute to an OU is kept: never delete what we cannot place.
        if spec.account_filter is AccountFilter.INTERSECTION:
            return inst.account in accounts
        if spec.account_filter is AccountFilter.DIFFERENCE:
            return inst.account not in accounts
        return True
    return spec.account_filter is AccountFilter.UNION and inst.account in accounts


def _accounts_step(
    kind: StepKind,
    accounts: Iterable[str],
    regions: tuple[str, ...],
    organizational_units: tuple[str, ...] = (),
    account_filter: AccountFilter | None = None,
    overrides: Overrides | None = None,
) -> Step:
    """A step on ``accounts`` (sorted) in each of ``regions``: how many instances it touches is known."""
    targets = tuple(sorted(accounts))
    return Step(
        kind=kind,
        accounts=targets,
        organizational_units=organizational_units,
        account_filter=account_filter,
        regions=regions,
        overrides=overrides,
        instance_count=len(targets) * len(regions),
    )


def _create_filter(spec: StackSetSpec) -> tuple[tuple[str, ...], AccountFilter]:
    """Accounts and filter of an OU-wide create: INTERSECTION and DIFFERENCE carry the accounts along."""
    if spec.account_filter in (AccountFilter.INTERSECTION, AccountFilter.DIFFERENCE) and spec.accounts:
        return tuple(sorted(spec.accounts)), spec.account_filter
    return (), AccountFilter.NONE


def _chunks(items: list[str], size: int) -> Iterable[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def _label(inst: LiveInstance) -> str:
    return f"{inst.account}/{inst.region}" + (f" (via {inst.ou})" if inst.ou else "")


# --------------------------------------------------------------------------- planning


def plan_stack_set(
    spec: StackSetSpec,
    live: LiveStackSet,
    account_parents: dict[str, str] | None = None,
    adopt: bool = False,
    manifest_id: str | None = None,
) -> StackSetPlan:
    """Plan one stack set. ``account_parents`` maps union accounts to their parent OU;
    ``manifest_id`` (when given) is the manifest that must own the stack set."""
    fp = fingerprint(spec, live.ou_accounts)
    plan = StackSetPlan(name=spec.name, action=PlanAction.NO_CHANGE, fingerprint=fp, masked=spec.masked_parameters())
    for running in live.running_operations:
        plan.notes.append(f"operation {running} is still running: apply waits for it, and this plan may change")
    prefs = dict(spec.operation_preferences)
    if (
        prefs.get("ConcurrencyMode", "STRICT_FAILURE_TOLERANCE") == "STRICT_FAILURE_TOLERANCE"
        and not prefs.get("FailureTolerancePercentage")
        and not prefs.get("FailureToleranceCount")
    ):
        plan.notes.append(
            "strict_failure_tolerance with no failure tolerance deploys one account at a time per region, "
            "whatever max_concurrent says; soft_failure_tolerance keeps the concurrency"
        )
    if live.exists and not live.owned and not adopt:
        plan.action = PlanAction.BLOCKED
        plan.blocked_reason = (
            f"stack set '{spec.name}' exists but lacks the ownership tag {OWNER_TAG_KEY}={OWNER_TAG_VALUE}: "
            "it was not created by this tool; re-run with --adopt to take it over (after reviewing this plan)"
        )
    foreign = _foreign_manifest(spec, live, manifest_id) if live.exists and live.owned else None
    if foreign and not adopt:
        plan.action = PlanAction.BLOCKED
        plan.blocked_reason = foreign
    if live.exists and live.permission_model and live.permission_model != spec.permission_model:
        plan.action = PlanAction.BLOCKED
        plan.blocked_reason = (
            f"stack set '{spec.name}' is {live.permission_model.value.lower()} but the manifest says "
            f"{spec.permission_model.value.lower()}: the permission model cannot change; delete it or pick another name"
        )
        return plan

    steps: list[Step] = []
    if not live.exists:
        plan.action = PlanAction.CREATE
        plan.property_changes.append(Change("stack_set", None, "create"))
        plan.parameter_changes.extend(Change(k, None, v) for k, v in sorted(spec.parameter_dict.items()))
        steps.append(Step(kind=StepKind.CREATE_STACK_SET))
        live_instances: tuple[LiveInstance, ...] = ()
    else:
        _diff_stack_set(spec, live, plan)
        if plan.property_changes or plan.parameter_changes or plan.template_diff:
            steps.append(Step(kind=StepKind.UPDATE_STACK_SET, instance_count=len(live.instances or ())))
        if live.instances is None:  # nothing changed since our last successful apply
            plan.instances_read = False
            live_instances = ()
        else:
            live_instances = live.instances
        if live.exists and not live.owned and adopt:
            plan.notes.append("adopting: the ownership tag will be added")
            if not any(s.kind is StepKind.UPDATE_STACK_SET for s in steps):
                plan.property_changes.append(Change(f"tags.{OWNER_TAG_KEY}", None, OWNER_TAG_VALUE))
                steps.append(Step(kind=StepKind.UPDATE_STACK_SET, instance_count=len(live_instances)))
        elif manifest_id is not None and live.manifest_id != manifest_id and (adopt or live.manifest_id is None):
            if live.manifest_id is not None:
                plan.notes.append(f"adopting from manifest '{live.manifest_id}'")
            if not any(s.kind is StepKind.UPDATE_STACK_SET for s in steps):
                steps.append(Step(kind=StepKind.UPDATE_STACK_SET, instance_count=len(live_instances)))
            plan.property_changes.append(Change(f"tags.{MANIFEST_TAG}", live.manifest_id, manifest_id))

    if live.instances is not None or not live.exists:
        if live.instances_partial:
            instance_steps = _plan_override_delta(spec, live_instances, plan)
        elif spec.service_managed:
            instance_steps = _plan_service_managed(spec, live, live_instances, account_parents or {}, plan)
        else:
            instance_steps = _plan_self_managed(spec, live_instances, plan)
        deletes = [s for s in instance_steps if s.kind is StepKind.DELETE_INSTANCES]
        others = [s for s in instance_steps if s.kind is not StepKind.DELETE_INSTANCES]
        # Removals first, so the stack set update does not touch instances about to go.
        head = [s for s in steps if s.kind is StepKind.CREATE_STACK_SET]
        middle = [s for s in steps if s.kind is StepKind.UPDATE_STACK_SET]
        steps = head + deletes + middle + others

    # With a follow-up round pending, no step of this round may claim to be the last one.
    plan.steps = _assign_operation_ids(
        spec, live, steps, fp, pending=1 if plan.needs_followup else 0, shape=shape_fingerprint(spec, live.ou_accounts)
    )
    if plan.action is not PlanAction.BLOCKED and plan.action is not PlanAction.CREATE and plan.steps:
        plan.action = PlanAction.UPDATE
    if plan.action is PlanAction.BLOCKED:
        plan.steps = []
    return plan


def override_delta_possible(
    spec: StackSetSpec,
    last: LastOperation | None,
    operations: Iterable[LastOperation],
    ou_accounts: Iterable[tuple[str, Iterable[str]]] | None,
) -> bool:
    """Whether only overrides can differ between ``spec`` and the stack set, judged from its operations.

    Holds when the latest operation is the successful last step of our apply of a desired state
    of the same shape (``shape_fingerprint``: the same instances, the same configuration) and
    every operation listed is our own and succeeded: then each instance is as our operations
    left it, and only the overrides of some instances can differ. Override rules naming OUs
    (which reach every account there) and targets lists are left to the full read.
    """
    if spec.target_entries or any(rule.organizational_units for rule in spec.overrides):
        return False
    if last is None or last.status != "SUCCEEDED" or (last.failed_count or 0) > 0:
        return False
    parsed = parse_operation_id(last.operation_id)
    if parsed is None or parsed[1] != parsed[2]:
        return False
    if operation_shape(last.operation_id) != shape_fingerprint(spec, ou_accounts):
        return False
    operations = tuple(operations)
    for other in operations:
        ours = parse_operation_id(other.operation_id) is not None or other.operation_id.startswith(
            DRIFT_OPERATION_PREFIX
        )
        if not ours or other.status != "SUCCEEDED" or (other.failed_count or 0) > 0:
            return False
    return quiet_since(last, operations)


def override_carriers(operations: Iterable[LastOperation]) -> list[str]:
    """Our operations after which the instances they touched may carry overrides: those that set
    some, or kept whatever there was, and drift detections (which may become an instance's
    LastOperationId). Deletions leave no instance behind."""
    carriers = []
    for other in operations:
        if other.action == "DELETE":
            continue
        flag = operation_overrides(other.operation_id)
        if flag in ("n", NO_OVERRIDES_DIGEST):
            continue
        carriers.append(other.operation_id)
    return carriers


def _plan_override_delta(spec: StackSetSpec, instances: tuple[LiveInstance, ...], plan: StackSetPlan) -> list[Step]:
    """Override updates of the instances an override delta read found (``LiveStackSet.instances_partial``).

    Account by account (service-managed: through their OU with INTERSECTION), never through a
    whole OU: the other instances of the OU were not read.
    """
    # instances_read stays True: these instances were read (the JSON says how many in the note).
    plan.notes.append(
        f"only overrides changed since the last apply: {len(instances)} instance(s) read, not the whole stack set"
    )
    updates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for inst in instances:
        if inst.region not in spec.regions:
            continue
        wanted = desired_overrides(spec, inst.account, inst.region, inst.ou)
        if _needs_update(inst, wanted, plan):
            updates[((wanted, inst.ou or ""), inst.account)].add(inst.region)
    steps = []
    for (regions, (wanted, ou)), accounts in sorted(_group_by_regions(updates).items()):
        if spec.service_managed:
            steps.append(
                _accounts_step(
                    kind=StepKind.UPDATE_INSTANCES,
                    organizational_units=(ou,),
                    accounts=accounts,
                    account_filter=AccountFilter.INTERSECTION,
                    regions=regions,
                    overrides=wanted,
                )
            )
        else:
            steps.append(
                _accounts_step(kind=StepKind.UPDATE_INSTANCES, accounts=accounts, regions=regions, overrides=wanted)
            )
    return steps


def _template_defaults(body: str | None) -> dict[str, str]:
    """Each parameter's default in a template's text (``{}`` when there is none or it does not parse)."""
    try:
        template = parse_yaml(body or "")
    except yaml.YAMLError:
        return {}
    parameters = template.get("Parameters") if isinstance(template, dict) else None
    defaults = {}
    for name, spec in (parameters or {}).items():
        if isinstance(spec, dict) and "Default" in spec:
            default = spec["Default"]
            defaults[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
    return defaults


def _resource_changes(
    spec: StackSetSpec, live: LiveStackSet, desired: dict[str, str], live_params: dict[str, str]
) -> list[ResourceChange]:
    """The resource-level changes of the update; a hidden (NoEcho) live value is taken as unchanged."""
    try:
        old_template, new_template = parse_yaml(live.template_body or ""), parse_yaml(spec.template.body)
    except yaml.YAMLError:
        return []
    if not isinstance(old_template, dict) or not isinstance(new_template, dict):
        return []
    old = {k: (desired.get(k, v) if v == NO_ECHO_MASK else v) for k, v in live_params.items()}
    return resource_changes(old_template, old, new_template, desired)


def _diff_stack_set(spec: StackSetSpec, live: LiveStackSet, plan: StackSetPlan) -> None:
    """Fill the stack-set-level changes (template, parameters, properties) of ``plan``."""
    if _normalised_template(live.template_body) != _normalised_template(spec.template.body):
        old_lines = (live.template_body or "").rstrip("\n").splitlines()
        new_lines = spec.template.body.rstrip("\n").splitlines()
        plan.template_diff = (
            "\n".join(
                difflib.unified_diff(
                    old_lines, new_lines, fromfile=f"{spec.name} (live)", tofile=spec.template.path, lineterm="", n=2
                )
            )
            or "template changed (formatting only)"
        )

    desired = spec.effective_parameters()
    # What the stacks see now: values the stack set was given, else its live template's defaults.
    live_params = {**_template_defaults(live.template_body), **dict(live.parameters)}
    no_echo = {n for n, p in spec.template.parameters.items() if p.no_echo}
    given = dict(live.parameters)
    for name in sorted(set(desired) | set(live_params)):
        new = desired.get(name)
        old = live_params.get(name)
        if name not in given and name in spec.overridden_keys():
            old = None  # overridden per instance: the stack set itself must now be given the key
        if (
            old is None
            and name in spec.template.parameters
            and spec.template.parameters[name].default == new
            and name not in spec.overridden_keys()
        ):
            continue  # a default the stack set never received explicitly (and nobody overrides): not a change
        if name in no_echo or old == NO_ECHO_MASK:
            continue  # compared through the configuration hash below
        if old != new:
            plan.parameter_changes.append(Change(name, old, new))

    if plan.template_diff or plan.parameter_changes:
        plan.resource_changes = _resource_changes(spec, live, desired, live_params)
        plan.instance_count = len(live.instances) if live.instances is not None else None

    def prop(key: str, old: Any, new: Any) -> None:
        if old != new:
            plan.property_changes.append(Change(key, old, new))

    prop("description", live.description or "", spec.description)
    prop("capabilities", sorted(live.capabilities), sorted(spec.capabilities))
    if spec.service_managed and live.auto_deployment is not None:
        prop(
            "auto_deployment",
            list(live.auto_deployment),
            [spec.auto_deployment, spec.retain_stacks_on_account_removal and spec.auto_deployment],
        )
    if spec.service_managed and live.depends_on is not None:
        prop("auto_deployment.depends_on", sorted(live.depends_on), list(auto_deployment_dependencies(spec)))
    if not spec.service_managed:
        if spec.administration_role_arn:
            prop("administration_role_arn", live.administration_role_arn, spec.administration_role_arn)
        if spec.execution_role_name:
            prop("execution_role_name", live.execution_role_name, spec.execution_role_name)
    live_user_tags = {k: v for k, v in live.tags if k not in TOOL_TAGS}
    prop("tags", live_user_tags, dict(spec.tags))

    visible = plan.parameter_changes or plan.property_changes or plan.template_diff
    if not visible and live.tag_dict.get(CONFIG_TAG) != config_hash(spec):
        hidden = sorted(no_echo & set(desired))
        what = (
            f"NoEcho parameter(s) {', '.join(hidden)} may have changed (values are hidden)"
            if hidden
            else "configuration hash differs"
        )
        plan.parameter_changes.append(
            Change(
                ", ".join(hidden) or CONFIG_TAG,
                NO_ECHO_MASK if hidden else live.tag_dict.get(CONFIG_TAG),
                NO_ECHO_MASK if hidden else config_hash(spec),
            )
        )
        plan.notes.append(what)


def _group_by_regions(pairs: dict[tuple[Any, ...], set[str]]) -> dict[tuple[tuple[str, ...], Any], list]:
    """{(key, unit): regions} -> {(sorted regions, key): [units]} (the fewest calls)."""
    grouped: dict[tuple[tuple[str, ...], Any], list] = defaultdict(list)
    for (key, unit), regions in pairs.items():
        grouped[(tuple(sorted(regions)), key)].append(unit)
    return grouped


def _needs_update(inst: LiveInstance, wanted: Overrides, plan: StackSetPlan) -> bool:
    """Whether an existing instance needs UpdateStackInstances: its overrides change, or it is not CURRENT."""
    current = inst.overrides or ()
    if current != wanted:
        shown = plan.masked
        plan.override_changes.append(f"{inst.account}/{inst.region}: {_fmt(current, shown)} -> {_fmt(wanted, shown)}")
        return True
    if inst.status != "CURRENT":
        reason = f" ({inst.status_reason})" if inst.status_reason else ""
        plan.rerun.append(f"{inst.account}/{inst.region}: {inst.status}{reason}")
        return True
    return False


def _inoperable(instances: Iterable[LiveInstance], plan: StackSetPlan) -> list[LiveInstance]:
    """INOPERABLE instances, noted: an update cannot repair them.

    API reference, StackInstance.Status INOPERABLE: "Stacks in this state are excluded from
    further UpdateStackSet operations. You might need to perform a DeleteStackInstances
    operation, with RetainStacks set to true, to delete the stack instance, and then delete
    the stack manually."
    """
    found = [i for i in instances if i.status == "INOPERABLE"]
    for inst in found:
        plan.remove.append(_label(inst) + " (INOPERABLE: removed with RetainStacks; delete its stack by hand)")
    if found:
        plan.notes.append(
            f"{len(found)} INOPERABLE instance(s) are removed with RetainStacks=true: their stacks stay in the "
            "accounts; delete those stacks by hand, then re-run apply to deploy them again"
        )
    return found


def _plan_self_managed(spec: StackSetSpec, instances: tuple[LiveInstance, ...], plan: StackSetPlan) -> list[Step]:
    broken = _inoperable(instances, plan)
    broken_keys = {(i.account, i.region) for i in broken}
    live = {(i.account, i.region): i for i in instances if (i.account, i.region) not in broken_keys}
    desired = desired_pairs(spec)
    steps: list[Step] = []

    retained: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for inst in broken:
        retained[(None, inst.account)].add(inst.region)
    for (regions, _), accounts in sorted(_group_by_regions(retained).items()):
        steps.append(replace(_accounts_step(StepKind.DELETE_INSTANCES, accounts, regions), retain_stacks=True))

    removals: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for (account, region), inst in sorted(live.items()):
        if (account, region) not in desired:
            removals[(None, account)].add(region)
            plan.remove.append(_label(inst))
    for (regions, _), accounts in sorted(_group_by_regions(removals).items()):
        steps.append(
            _accounts_step(
                kind=StepKind.DELETE_INSTANCES,
                accounts=accounts,
                regions=regions,
            )
        )

    creates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    updates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for account, region in sorted(desired):
        if (account, region) in broken_keys:
            continue  # its retained stack would collide with a new one: re-created on a later run
        wanted = desired_overrides(spec, account, region, None)
        existing = live.get((account, region))
        if existing is None:
            creates[(wanted, account)].add(region)
            plan.add.append(f"{account}/{region}")
            continue
        if _needs_update(existing, wanted, plan):
            updates[(wanted, account)].add(region)
    for (regions, wanted), accounts in sorted(_group_by_regions(creates).items()):
        steps.append(
            _accounts_step(
                kind=StepKind.CREATE_INSTANCES,
                accounts=accounts,
                regions=regions,
                overrides=wanted or None,
            )
        )
    for (regions, wanted), accounts in sorted(_group_by_regions(updates).items()):
        steps.append(
            _accounts_step(
                kind=StepKind.UPDATE_INSTANCES,
                accounts=accounts,
                regions=regions,
                overrides=wanted,
            )
        )
    return steps


def _deletions_by_account(
    instances: Iterable[LiveInstance], moved: dict[str, str], retain_stacks: bool | None = None
) -> list[Step]:
    """DeleteStackInstances for single accounts of service-managed instances, through their OU.

    AWS resolves OU targets to the OU's current accounts (User Guide, stackinstances-delete:
    "Delete stacks from all accounts in the specified OUs"): an account that left the OU its
    instance was deployed through is reached only through the OU (or root) it is in now.
    """
    units: dict[tuple[Any, str], set[str]] = defaultdict(set)
    parent: dict[str, str] = {}
    for inst in instances:
        units[(None, inst.account)].add(inst.region)
        where = moved.get(inst.account) or inst.ou
        if where:
            parent[inst.account] = where
    steps = []
    for (regions, _), accounts in sorted(_group_by_regions(units).items()):
        ous = sorted({parent[a] for a in accounts if a in parent})
        for chunk in _chunks(ous, MAX_OUS_PER_CALL):
            step = _accounts_step(
                kind=StepKind.DELETE_INSTANCES,
                organizational_units=chunk,
                accounts=[a for a in accounts if parent.get(a) in chunk],
                account_filter=AccountFilter.INTERSECTION,
                regions=regions,
            )
            steps.append(replace(step, retain_stacks=retain_stacks))
    return steps


def _plan_service_managed(
    spec: StackSetSpec,
    live: LiveStackSet,
    instances: tuple[LiveInstance, ...],
    account_parents: dict[str, str],
    plan: StackSetPlan,
) -> list[Step]:
    steps: list[Step] = []
    moved = dict(live.moved_accounts)
    targeted = targeted_accounts(spec, live.ou_accounts) if live.ou_accounts is not None else None
    members = {ou: set(accounts) for ou, accounts in live.ou_accounts or ()}
    if spec.target_entries:  # a targets list: exactly the union of its entries' instances
        wanted_pairs = desired_pairs(spec, live.ou_accounts)

        def is_desired(inst: LiveInstance) -> bool:
            return (inst.account, inst.region) in wanted_pairs

    else:

        def is_desired(inst: LiveInstance) -> bool:
            return _instance_desired(spec, inst, targeted)

    broken = _inoperable(instances, plan)
    steps.extend(_deletions_by_account(broken, moved, retain_stacks=True))
    broken_keys = {(i.account, i.region) for i in broken}
    instances = tuple(i for i in instances if (i.account, i.region) not in broken_keys)
    by_ou_region: dict[tuple[str | None, str], list[LiveInstance]] = defaultdict(list)
    for inst in instances:
        by_ou_region[(inst.ou, inst.region)].append(inst)

    # Removals: whole (OU, region) pairs when nothing of them stays, else account by account
    # (accounts that left their instance's OU always so: the OU no longer reaches them).
    ou_wide: dict[tuple[Any, str], set[str]] = defaultdict(set)
    singles: list[LiveInstance] = []
    for (ou, region), group in sorted(by_ou_region.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        unwanted = [i for i in group if not is_desired(i)]
        if not unwanted:
            continue
        plan.remove.extend(_label(i) for i in unwanted)
        if len(unwanted) == len(group) and ou is not None and not any(i.account in moved for i in group):
            ou_wide[(None, ou)].add(region)
        else:
            singles.extend(unwanted)
    for (regions, _), ous in sorted(_group_by_regions(ou_wide).items()):
        count = sum(len(by_ou_region[(ou, r)]) for ou in ous for r in regions)
        for chunk in _chunks(sorted(ous), MAX_OUS_PER_CALL):
            steps.append(
                Step(
                    kind=StepKind.DELETE_INSTANCES,
                    organizational_units=chunk,
                    account_filter=AccountFilter.NONE,
                    regions=regions,
                    instance_count=count,
                )
            )
    steps.extend(_deletions_by_account(singles, moved))

    if spec.target_entries:
        # Entry by entry, each with its own OUs, filter and regions; an instance an earlier entry
        # already adds is not added again (duplicates across entries are their union).
        seen: set[tuple[str, str]] = set()
        for entry in spec.target_entries:
            view = replace(
                spec,
                organizational_units=entry.organizational_units,
                accounts=entry.accounts,
                account_filter=entry.account_filter,
                regions=entry.regions,
            )
            members_now = dict(live.ou_accounts or ())
            steps.extend(_additions_by_membership(view, members_now, instances, account_parents, plan, seen))
    elif live.ou_accounts is not None:
        steps.extend(_additions_by_membership(spec, dict(live.ou_accounts), instances, account_parents, plan))
    else:
        steps.extend(_additions_by_ou(spec, live, instances, by_ou_region, account_parents, plan))

    # Override changes and re-runs of existing instances.
    updates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for inst in instances:
        if not is_desired(inst):
            continue
        wanted = desired_overrides(spec, inst.account, inst.region, inst.ou)
        if _needs_update(inst, wanted, plan):
            updates[((wanted, inst.ou), inst.account)].add(inst.region)
    regrouped: dict[tuple[tuple[str, ...], Overrides], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for (regions, (wanted, ou)), accounts in _group_by_regions(updates).items():
        regrouped[(regions, wanted)][ou or ""].update(accounts)
    filter_accounts, ou_filter = _create_filter(spec)

    def whole_ou(ou: str, accounts: set[str], regions: tuple[str, ...]) -> bool:
        """An update through the whole OU (with the stack set's own filter) reaches exactly ``accounts``."""
        if not ou or ou not in spec.organizational_units or spec.target_entries:
            return False
        for region in regions:
            present = {i.account for i in by_ou_region[(ou, region)]}
            if not present <= accounts:
                return False
            if ou in members:  # every account the OU (filtered) reaches now must have an instance there
                reached = {a for a in members[ou] if targeted is None or a in targeted}
                if spec.account_filter is AccountFilter.INTERSECTION:
                    reached &= set(spec.accounts)
                elif spec.account_filter is AccountFilter.DIFFERENCE:
                    reached -= set(spec.accounts)
                if not reached <= present:
                    return False
        return True

    for (regions, wanted), per_ou in sorted(regrouped.items()):
        whole = [ou for ou, accounts in per_ou.items() if whole_ou(ou, accounts, regions)]
        partial = {ou: accounts for ou, accounts in per_ou.items() if ou not in whole}
        for chunk in _chunks(sorted(whole), MAX_OUS_PER_CALL):
            count = sum(len(by_ou_region[(ou, r)]) for ou in chunk for r in regions)
            steps.append(
                Step(
                    kind=StepKind.UPDATE_INSTANCES,
                    organizational_units=chunk,
                    # The stack set's own filter: NONE would also name the accounts a
                    # DIFFERENCE excludes (or an INTERSECTION leaves out).
                    accounts=filter_accounts,
                    account_filter=ou_filter,
                    regions=regions,
                    overrides=wanted,
                    instance_count=count,
                )
            )
        if partial:
            accounts = sorted(set().union(*partial.values()))
            ous = sorted(ou for ou in partial if ou) or sorted(spec.organizational_units)
            steps.append(
                _accounts_step(
                    kind=StepKind.UPDATE_INSTANCES,
                    organizational_units=tuple(ous)[:MAX_OUS_PER_CALL],
                    accounts=accounts,
                    account_filter=AccountFilter.INTERSECTION,
                    regions=regions,
                    overrides=wanted,
                )
            )
    return steps


def _additions_by_ou(
    spec: StackSetSpec,
    live: LiveStackSet,
    instances: tuple[LiveInstance, ...],
    by_ou_region: dict,
    account_parents: dict[str, str],
    plan: StackSetPlan,
) -> list[Step]:
    """Additions when OU membership is not known (a new stack set): by (OU, region) presence."""
    steps: list[Step] = []
    target_ous = set(spec.organizational_units)
    # (OU, region) pairs with no instance yet; an OU that CloudFormation lists as a target
    # but holds no account yet counts as present (auto-deployment covers it).
    live_ous = set(live.organizational_unit_ids or ())
    ous_with_instances = {inst.ou for inst in instances}
    creates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for ou in sorted(target_ous):
        if ou in live_ous and ou not in ous_with_instances:
            continue
        for region in spec.regions:
            if (ou, region) not in by_ou_region:
                creates[(desired_overrides(spec, "", region, ou, ou_level_only=True), ou)].add(region)
                plan.add.append(f"{ou}/{region}")
    filter_accounts, create_filter = _create_filter(spec)
    for (regions, wanted), ous in sorted(_group_by_regions(creates).items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for chunk in _chunks(sorted(ous), MAX_OUS_PER_CALL):
            steps.append(
                Step(
                    kind=StepKind.CREATE_INSTANCES,
                    organizational_units=chunk,
                    accounts=filter_accounts,
                    account_filter=create_filter,
                    regions=regions,
                    overrides=wanted or None,
                )
            )
    if creates and any(rule.accounts for rule in spec.overrides):
        plan.needs_followup = True

    live_pairs = {(i.account, i.region) for i in instances}
    created_ou_regions = {(ou, r) for (_, ou), regions in creates.items() for r in regions}
    account_creates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    if spec.account_filter is AccountFilter.INTERSECTION:
        known = {i.account: i.ou for i in instances}
        for account in spec.accounts:
            for region in spec.regions:
                if (account, region) in live_pairs:
                    continue
                if known.get(account) is not None and (known[account], region) in created_ou_regions:
                    continue
                if all((ou, region) in created_ou_regions for ou in target_ous):
                    continue
                account_creates[(None, account)].add(region)
                plan.add.append(f"{account}/{region}")
        for (regions, _), accounts in sorted(_group_by_regions(account_creates).items()):
            steps.append(
                _accounts_step(
                    kind=StepKind.CREATE_INSTANCES,
                    organizational_units=tuple(sorted(target_ous))[:MAX_OUS_PER_CALL],
                    accounts=accounts,
                    account_filter=AccountFilter.INTERSECTION,
                    regions=regions,
                )
            )
    elif spec.account_filter is AccountFilter.UNION:
        steps.extend(_union_additions(spec, instances, account_parents, plan, covered=set()))
    return steps


def _union_additions(
    spec: StackSetSpec,
    instances: tuple[LiveInstance, ...],
    account_parents: dict[str, str],
    plan: StackSetPlan,
    covered: set[str],
    seen: set[tuple[str, str]] | None = None,
) -> list[Step]:
    """UNION accounts outside the OUs: CreateStackInstances takes no UNION, so through their parent OU."""
    live_pairs = {(i.account, i.region) for i in instances} | (seen or set())
    creates: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for account in spec.accounts:
        parent = account_parents.get(account)
        if account in covered or parent in spec.organizational_units:
            continue
        for region in spec.regions:
            if (account, region) in live_pairs:
                continue
            if parent is None:
                plan.notes.append(f"account {account}: parent OU unknown, cannot add it in {region}")
                continue
            creates[(desired_overrides(spec, account, region, parent), account)].add(region)
            plan.add.append(f"{account}/{region}")
            if seen is not None:
                seen.add((account, region))
    steps = []
    for (regions, wanted), accounts in sorted(_group_by_regions(creates).items()):
        parents = tuple(sorted({account_parents[a] for a in accounts}))
        steps.append(
            _accounts_step(
                kind=StepKind.CREATE_INSTANCES,
                organizational_units=parents,
                accounts=accounts,
                account_filter=AccountFilter.INTERSECTION,
                regions=regions,
                overrides=wanted or None,
            )
        )
    return steps


def _additions_by_membership(
    spec: StackSetSpec,
    members: dict[str, tuple[str, ...]],
    instances: tuple[LiveInstance, ...],
    account_parents: dict[str, str],
    plan: StackSetPlan,
    seen: set[tuple[str, str]] | None = None,
) -> list[Step]:
    """Additions when the accounts of every target OU are known: exactly the missing instances.

    A whole (OU, region) with nothing deployed and one set of overrides goes as one OU
    call; otherwise the missing accounts go through their OU with an INTERSECTION filter,
    each with its own overrides, so no follow-up round is needed.
    """
    live_pairs = {(i.account, i.region) for i in instances}
    chosen = set(spec.accounts)

    def wanted(account: str) -> bool:
        if spec.account_filter is AccountFilter.INTERSECTION:
            return account in chosen
        if spec.account_filter is AccountFilter.DIFFERENCE:
            return account not in chosen
        return True

    seen = set() if seen is None else seen
    ou_wide: dict[tuple[Any, str], set[str]] = defaultdict(set)
    per_account: dict[tuple[Any, tuple[str, str]], set[str]] = defaultdict(set)
    covered: set[str] = set()
    for ou in sorted(spec.organizational_units):
        accounts = [a for a in members.get(ou, ()) if wanted(a)]
        covered.update(members.get(ou, ()))
        for region in spec.regions:
            missing = [a for a in accounts if (a, region) not in live_pairs and (a, region) not in seen]
            seen.update((a, region) for a in missing)
            if not missing:
                continue
            keys = {a: desired_overrides(spec, a, region, ou) for a in missing}
            if len(missing) == len(accounts) and len(set(keys.values())) == 1:
                ou_wide[(keys[missing[0]], ou)].add(region)
                plan.add.append(f"{ou}/{region} ({len(missing)} account(s))")
            else:
                for account in missing:
                    per_account[(keys[account], (ou, account))].add(region)
                    plan.add.append(f"{account}/{region} (via {ou})")
    steps: list[Step] = []
    filter_accounts, create_filter = _create_filter(spec)
    for (regions, key), ous in sorted(_group_by_regions(ou_wide).items()):
        for chunk in _chunks(sorted(ous), MAX_OUS_PER_CALL):
            count = sum(len([a for a in members.get(ou, ()) if wanted(a)]) for ou in chunk) * len(regions)
            steps.append(
                Step(
                    kind=StepKind.CREATE_INSTANCES,
                    organizational_units=chunk,
                    accounts=filter_accounts,
                    account_filter=create_filter,
                    regions=regions,
                    overrides=key or None,
                    instance_count=count,
                )
            )
    for (regions, key), units in sorted(_group_by_regions(per_account).items()):
        unit_ous = sorted({ou for ou, _ in units})
        unit_accounts = tuple(sorted({a for _, a in units}))
        for chunk in _chunks(unit_ous, MAX_OUS_PER_CALL):
            steps.append(
                _accounts_step(
                    kind=StepKind.CREATE_INSTANCES,
                    organizational_units=chunk,
                    accounts=unit_accounts,
                    account_filter=AccountFilter.INTERSECTION,
                    regions=regions,
                    overrides=key or None,
                )
            )
    if spec.account_filter is AccountFilter.UNION:
        steps.extend(_union_additions(spec, instances, account_parents, plan, covered, seen))
    return steps


def _assign_operation_ids(
    spec: StackSetSpec, live: LiveStackSet, steps: list[Step], fp: str, pending: int = 0, shape: str = ""
) -> list[Step]:
    base = live.last_operation.operation_id if live.last_operation else ""
    operations = [s for s in steps if s.is_operation]
    total = len(operations) + pending
    has_overrides = bool(spec.overrides) or any(i.overrides for i in (live.instances or ()) if i.overrides is not None)
    out = []
    index = 0
    for step in steps:
        if step.is_operation:
            index += 1
            may_override: bool | str
            if step.kind is StepKind.UPDATE_STACK_SET:
                may_override = has_overrides  # the instances keep whatever overrides they had
            elif step.kind is StepKind.UPDATE_INSTANCES or (step.kind is StepKind.CREATE_INSTANCES and step.overrides):
                # These set exactly ``step.overrides`` on every instance they touch: the id says which,
                # so the next read need not describe those instances to know their overrides.
                may_override = overrides_digest(step.overrides, spec)
            else:
                may_override = step.kind is StepKind.DELETE_INSTANCES and has_overrides
            step = replace(step, operation_id=operation_id(fp, index, total, step, base, may_override, shape))
        else:
            step = replace(step, operation_id=f"{OPERATION_PREFIX}-{fp[:20]}-{step.kind.value.replace('_', '-')}")
        out.append(step)
    return out


def _foreign_manifest(spec: StackSetSpec, live: LiveStackSet, manifest_id: str | None) -> str | None:
    """Why ``live`` belongs to another manifest (None when it does not)."""
    if manifest_id is None or live.manifest_id in (None, manifest_id):
        return None
    return (
        f"stack set '{spec.name}' belongs to manifest '{live.manifest_id}' (tag {MANIFEST_TAG}), "
        f"not to this one ('{manifest_id}'): rename it here, or re-run with --adopt to move it to this manifest"
    )


def retained_dependents(specs: Iterable[StackSetSpec]) -> dict[str, list[str]]:
    """For each stack set that ``destroy`` deletes (no ``retain_stacks``), the stack sets with
    ``retain_stacks`` that depend on it: their stacks stay, and may still use what it created
    (a role keeps its permissions boundary; IAM will not delete a policy in use)."""
    specs = list(specs)
    deleted = {spec.name for spec in specs if not spec.retain_stacks}
    out: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        if spec.retain_stacks:
            for dependency in spec.depends_on:
                if dependency in deleted:
                    out[dependency].append(spec.name)
    return {name: sorted(dependents) for name, dependents in out.items()}


def retained_dependents_note(name: str, dependents: list[str]) -> str:
    return (
        f"{', '.join(dependents)} depend(s) on {name} and keep their stacks (retain_stacks), but {name}'s "
        f"stacks are deleted: if those stacks still use what {name} created, its deletion fails or leaves them "
        f"without it; set retain_stacks on {name} too, or delete those stacks first"
    )


def plan_destroy(
    spec: StackSetSpec, live: LiveStackSet, manifest_id: str | None = None, retry_inoperable: bool = False
) -> StackSetPlan:
    """Delete every instance, then the stack set (owned stack sets only, of this manifest).

    INOPERABLE instances (a delete that failed) are removed with RetainStacks, unless
    ``retry_inoperable``: destroy retrying a delete that failed on dependencies AWS releases
    asynchronously (network interfaces of endpoints) deletes their stacks again instead."""
    plan = StackSetPlan(name=spec.name, action=PlanAction.DELETE, fingerprint="", masked=spec.masked_parameters())
    if not live.exists:
        plan.action = PlanAction.ABSENT
        return plan
    if not live.owned:
        plan.action = PlanAction.BLOCKED
        plan.blocked_reason = (
            f"stack set '{spec.name}' lacks the ownership tag {OWNER_TAG_KEY}={OWNER_TAG_VALUE}: "
            "this tool did not create it and will not delete it"
        )
        return plan
    foreign = _foreign_manifest(spec, live, manifest_id)
    if foreign:
        plan.action, plan.blocked_reason = (
            PlanAction.BLOCKED,
            foreign.replace("re-run with --adopt to move it to this manifest", "destroy it with that manifest"),
        )
        return plan
    moved = dict(live.moved_accounts)
    broken = [] if retry_inoperable else [i for i in live.instances or () if i.status == "INOPERABLE"]
    steps: list[Step] = []
    if live.permission_model is PermissionModel.SERVICE_MANAGED:
        steps.extend(_deletions_by_account([i for i in broken if i.ou or i.account in moved], moved, True))
        steps.extend(
            _deletions_by_account([i for i in live.instances or () if i.account in moved and i not in broken], moved)
        )
    else:
        for inst in broken:
            steps.append(
                replace(_accounts_step(StepKind.DELETE_INSTANCES, [inst.account], (inst.region,)), retain_stacks=True)
            )
    for inst in broken:
        plan.remove.append(_label(inst) + " (INOPERABLE: RetainStacks; delete its stack by hand)")
    instances = [i for i in live.instances or () if i not in broken and i.account not in moved]
    if live.permission_model is not PermissionModel.SERVICE_MANAGED:
        instances = [i for i in live.instances or () if i not in broken]
    plan.remove.extend(_label(i) for i in live.instances or () if i.account in moved and i not in broken)
    units: dict[tuple[Any, str], set[str]] = defaultdict(set)
    unplaced: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for inst in instances:
        plan.remove.append(_label(inst))
        if live.permission_model is PermissionModel.SERVICE_MANAGED:
            if inst.ou:
                units[(None, inst.ou)].add(inst.region)
            else:
                unplaced[(None, inst.account)].add(inst.region)
        else:
            units[(None, inst.account)].add(inst.region)
    for (regions, _), names in sorted(_group_by_regions(units).items()):
        if live.permission_model is PermissionModel.SERVICE_MANAGED:
            for chunk in _chunks(sorted(names), MAX_OUS_PER_CALL):
                steps.append(
                    Step(
                        kind=StepKind.DELETE_INSTANCES,
                        organizational_units=chunk,
                        account_filter=AccountFilter.NONE,
                        regions=regions,
                    )
                )
        else:
            steps.append(
                _accounts_step(
                    kind=StepKind.DELETE_INSTANCES,
                    accounts=names,
                    regions=regions,
                )
            )
    if unplaced:
        plan.notes.append("instances without a known OU: " + ", ".join(sorted(a for _, a in unplaced)))
        plan.action = PlanAction.BLOCKED
        plan.blocked_reason = "some instances cannot be attributed to an OU; delete them by OU first"
        return plan
    steps.append(Step(kind=StepKind.DELETE_STACK_SET))
    base = live.last_operation.operation_id if live.last_operation else ""
    fp = _sha({"destroy": spec.name, "base": base})
    plan.fingerprint = fp
    plan.steps = _assign_operation_ids(spec, live, steps, fp)
    return plan


def _fmt(overrides: Overrides, masked: frozenset[str] = frozenset()) -> str:
    return "{" + ", ".join(f"{k}={mask(k, v, masked)}" for k, v in overrides) + "}" if overrides else "{}"


def mask(key: str, value: Any, masked: frozenset[str]) -> Any:
    """``value``, or the NoEcho mask when ``key`` is a NoEcho or secret parameter (None stays None)."""
    return NO_ECHO_MASK if key in masked and value is not None else value


def _masked_step(step: Step, masked: frozenset[str]) -> dict:
    data = asdict(step)
    if step.overrides:
        data["overrides"] = [[k, mask(k, v, masked)] for k, v in step.overrides]
    return data


def shown(value: Any) -> str:
    """A value as the plan prints it: JSON for data, ``(not set)`` for nothing; never a Python repr."""
    return "(not set)" if value is None else json.dumps(value, sort_keys=True, default=str)


def describe(plan: StackSetPlan, spec: StackSetSpec | None = None) -> list[str]:
    """Human-readable lines of a plan (NoEcho values masked)."""
    masked = plan.masked | (spec.masked_parameters() if spec else frozenset())
    lines = [
        f"{plan.name}: {plan.action.value}"
        + ("" if plan.instances_read else " (unchanged since the last successful apply; instances not listed)")
    ]
    if plan.blocked_reason:
        lines.append(f"  BLOCKED: {plan.blocked_reason}")
    for change in plan.property_changes:
        lines.append(f"  ~ {change.key}: {shown(change.old)} -> {shown(change.new)}")
    for change in plan.parameter_changes:
        old, new = mask(change.key, change.old, masked), mask(change.key, change.new, masked)
        lines.append(f"  ~ parameter {change.key}: {shown(old)} -> {shown(new)}")
    if plan.resource_changes:
        lines.append(f"  ~ resources: {len(plan.resource_changes)} change(s) in every instance's stack")
        lines.extend(f"      {change.describe(plan.instance_count)}" for change in plan.resource_changes)
    if plan.template_diff:
        lines.append("  ~ template:")
        lines.extend("      " + line for line in plan.template_diff.splitlines()[:200])
    for label, items, sign in (
        ("add", plan.add, "+"),
        ("remove", plan.remove, "-"),
        ("override change", plan.override_changes, "~"),
        ("re-run (not CURRENT)", plan.rerun, "!"),
    ):
        if items:
            lines.append(f"  {sign} {label}: {len(items)} instance(s)")
            lines.extend(f"      {item}" for item in items[:50])
            if len(items) > 50:
                lines.append(f"      ... and {len(items) - 50} more")
    for note in plan.notes:
        lines.append(f"  note: {note}")
    if plan.steps:
        lines.append(f"  calls: {', '.join(step.kind.value for step in plan.steps)}")
    return lines
