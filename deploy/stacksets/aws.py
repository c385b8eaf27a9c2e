"""The one adapter between the deployer and AWS for stack sets.

Every CloudFormation, Organizations, S3, IAM and STS call of the deployer is made here,
through ``deploy.common.clients`` (botocore's adaptive retries, call counting), with
``CallAs`` on every stack set call and botocore paginators for every list. Reading
returns the plain ``LiveStackSet`` data the pure planner consumes; writing executes one
plan ``Step`` and waits for its operation.

Cost at scale: when the stack set's latest operation is the successful last step of an
apply of exactly the desired state (its deterministic OperationId says so) and nothing
else ran since, the instances are not listed: an unchanged stack set costs two reads.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from botocore.exceptions import BotoCoreError, ClientError

from deploy.common.awssetup import explain
from deploy.common.buckets import NOT_FOUND_CODES, BucketHardening, Hardening, ensure_bucket
from deploy.common.clients import Clients
from deploy.common.errors import InputError, RolloutError, error_code
from deploy.common.ownership import OWNER_TAG_KEY, OWNER_TAG_VALUE
from deploy.common.refs import OrganizationsResolver, UnresolvedReference, is_ou_path
from deploy.common.values import ValueResolver
from deploy.stacksets.manifest import AccountFilter, CallAs, Manifest, PermissionModel, StackSetSpec
from deploy.stacksets.outputs import StackSetOutputs
from deploy.stacksets.plan import (
    CONFIG_TAG,
    MANIFEST_TAG,
    LastOperation,
    LiveInstance,
    LiveStackSet,
    Step,
    StepKind,
    auto_deployment_dependencies,
    config_hash,
    desired_overrides,
    expand_child_ou_overrides,
    fingerprint,
    known_overrides_digest,
    last_apply_matches,
    membership_matters,
    override_carriers,
    override_delta_possible,
    override_scope,
    overrides_digest,
    overrides_known_empty,
    target_problems,
)

INLINE_TEMPLATE_LIMIT = 51_200
STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
DEFAULT_ADMIN_ROLE = "AWSCloudFormationStackSetAdministrationRole"
FINAL_STATUSES = {"SUCCEEDED", "FAILED", "STOPPED"}
RUNNING_STATUSES = {"RUNNING", "QUEUED", "STOPPING"}
# Reasons CloudFormation gives when a role created moments ago is not yet assumable.
IAM_PROPAGATION_RE = re.compile(
    r"sts:AssumeRole|AssumeRole|trust relationship|cannot be assumed",
    re.IGNORECASE,
)

# CloudFormation reads templates with its own credentials: SSE-S3, not a KMS key it may not use.
_TEMPLATE_BUCKET_HARDENING = (Hardening.PUBLIC_ACCESS_BLOCK, Hardening.ENCRYPTION, Hardening.VERSIONING)


# An override delta read describes the instances the override rules name one by one (and checks
# their accounts' parents): past this many, listing every instance (100 a page) is cheaper.
OVERRIDE_DELTA_MAX_INSTANCES = 200

# DescribeStackSetOperation right after the write that started the operation: AWS documents it
# as strongly consistent, yet the Terraform provider treats OperationNotFoundException there as
# "not visible yet" and keeps polling; so do we, a bounded number of times.
OPERATION_NOT_FOUND_POLLS = 5


class StaleRequest(RolloutError):
    """StaleRequestException: "Another operation has been performed on this StackSet since the
    specified operation was performed." The plan is out of date: read again and re-plan."""


@dataclass(frozen=True)
class InstanceFailure:
    account: str
    region: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}: {self.status}: {self.reason}"


@dataclass
class OperationOutcome:
    operation_id: str
    status: str
    failures: list[InstanceFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED" and not self.failures

    @property
    def iam_propagation_only(self) -> bool:
        return bool(self.failures) and all(IAM_PROPAGATION_RE.search(f.reason or "") for f in self.failures)


@dataclass
class PollPolicy:
    """Capped exponential backoff with jitter for DescribeStackSetOperation."""

    initial: float = 1.0
    cap: float = 30.0
    timeout: float = 6 * 3600.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def delays(self):
        delay = self.initial
        while True:
            # "Equal jitter": never less than half the nominal delay, never more.
            yield delay / 2 + self.rng.uniform(0, delay / 2)
            delay = min(self.cap, delay * 2)


class StackSets:
    """Stack set reads and writes for one manifest's admin region."""

    def __init__(
        self, clients: Clients, manifest: Manifest, poll: PollPolicy | None = None, stop: threading.Event | None = None
    ):
        self.clients = clients
        self.manifest = manifest
        self.region = manifest.admin_region
        self.poll = poll or PollPolicy()
        self.stop = stop or threading.Event()
        self.resolver = OrganizationsResolver(self.org)
        # Lookups ({ssm: ...}, {secretsmanager: ...}) read in the administrator account and region.
        call_as = {spec.name: spec.call_as.value for spec in manifest.stack_sets}
        outputs = StackSetOutputs(
            clients, self.region, manifest.output_reader_role, call_as=lambda name: call_as.get(name, "SELF")
        )
        self.values = ValueResolver(
            lambda service: self.clients.client(service, self.region), organizations=self.resolver, outputs=outputs
        )
        self._lock = threading.Lock()
        self._account_id: str | None = None
        self._checked: dict[str, str | None] = {}
        self._template_urls: dict[str, str] = {}
        # Stack sets whose last ListStackSetOperations answer had more pages (the history is incomplete).
        self._more_operations: set[str] = set()

    # ------------------------------------------------------------------ clients

    @property
    def cfn(self):
        return self.clients.client("cloudformation", self.region)

    @property
    def org(self):
        return self.clients.client("organizations", self.region)

    # ------------------------------------------------------------------ identity and OUs

    def caller_account(self) -> str:
        """The account of the credentials; InputError when there are none or they are for another account."""
        if self._account_id is None:
            try:
                identity = self.clients.client("sts", self.region).get_caller_identity()
            except (BotoCoreError, ClientError) as error:  # the first call: set-up problems show here
                raise explain(error) or InputError(
                    f"the AWS credentials were refused: {error}", self.manifest.path
                ) from None
            self._account_id = identity["Account"]
        expected = self.manifest.admin_account_id
        if expected and self._account_id != expected:
            raise InputError(
                f"the credentials are for account {self._account_id}, the manifest is for {expected}: "
                "switch profile or fix admin_account_id",
                self.manifest.path,
                None,
                "admin_account_id",
            )
        return self._account_id

    def _location(self, ref: str) -> tuple[str, str]:
        """(where, key) of the first use of ``ref`` in the manifest, for an error about it."""
        stack_set, key, _ = next(r for r in self.manifest.references if r[2] == ref)
        return f"stack set '{stack_set}'", key

    def resolve_references(self) -> dict[str, str]:
        """OU paths and account names of the manifest -> ids (InputError naming the reference)."""
        refs = sorted(self.manifest.ou_paths()) + sorted(self.manifest.account_names())
        try:
            return self.resolver.resolve(refs)
        except UnresolvedReference as error:
            problem = f"OU path '{error.ref}': {error.problem}" if is_ou_path(error.ref) else str(error)
            raise InputError(problem, self.manifest.path, *self._location(error.ref)) from None
        except ClientError as error:
            ref = refs[0]
            kind = "OU path " if is_ou_path(ref) else ""
            raise InputError(
                f"cannot resolve {kind}'{ref}' through Organizations: {error}", self.manifest.path, *self._location(ref)
            ) from None

    def prepare(self, spec: StackSetSpec) -> StackSetSpec:
        """Checks and expansions that need Organizations, before planning (service-managed only).

        The management account among the targets is an InputError; an override naming an OU
        below a target OU becomes an account-level rule over that OU's current accounts, and
        one naming an OU outside every target is an InputError.
        """
        if not spec.service_managed:
            return spec
        where = f"stack set '{spec.name}'"
        for key, problem in target_problems(spec, self._management_account() if spec.accounts else None):
            raise InputError(problem, self.manifest.path, where, key)
        children = sorted(
            {ou for rule in spec.overrides for ou in rule.organizational_units} - set(spec.organizational_units)
        )
        if not children:
            return spec
        for ou in children:
            if not self._below_targets(ou, set(spec.organizational_units)):
                raise InputError(
                    f"override OU {ou} is neither a target OU nor below one: it would match no instance",
                    self.manifest.path,
                    where,
                    "overrides",
                )
        return expand_child_ou_overrides(spec, {ou: self.resolver.accounts_under(ou) for ou in children})

    def _below_targets(self, ou: str, targets: set[str]) -> bool:
        """Whether ``ou`` lies under one of ``targets`` (ListParents up to the root)."""
        current = ou
        for _ in range(6):  # Organizations nests OUs at most five levels below the root
            try:
                parents = self.org.list_parents(ChildId=current)["Parents"]
            except ClientError:
                return False
            if not parents:
                return False
            current = parents[0]["Id"]
            if current in targets:
                return True
            if parents[0].get("Type") == "ROOT":
                return False
        return False

    def account_parents(self, accounts) -> dict[str, str]:
        """Direct parent OU (or root) of each account: one ListParents call each."""
        parents = {}
        for account in accounts:
            try:
                found = self.org.list_parents(ChildId=account)["Parents"]
            except ClientError:
                continue
            if found:
                parents[account] = found[0]["Id"]
        return parents

    # ------------------------------------------------------------------ reading

    def describe(self, name: str, call_as: CallAs) -> dict | None:
        try:
            return self.cfn.describe_stack_set(StackSetName=name, CallAs=call_as.value)["StackSet"]
        except ClientError as error:
            if error_code(error) in ("StackSetNotFoundException",) or "not found" in str(error).lower():
                return None
            raise

    def operations(self, name: str, call_as: CallAs) -> list[dict]:
        """The most recent page of the stack set's operations (newest first on AWS).

        When more pages exist and this one is not newest-first, the latest operation is
        unknown: the result then carries a marker that makes the reader list instances.
        """
        page = self.cfn.list_stack_set_operations(StackSetName=name, CallAs=call_as.value, MaxResults=100)
        summaries = page.get("Summaries", [])
        with self._lock:
            (self._more_operations.add if page.get("NextToken") else self._more_operations.discard)(name)
        latest = _latest(summaries)
        if page.get("NextToken") and latest is not None and latest.operation_id != summaries[0]["OperationId"]:
            summaries = summaries + [
                {
                    "OperationId": "order-unknown",
                    "Status": "UNKNOWN",
                    "CreationTimestamp": max(s["CreationTimestamp"] for s in summaries),
                }
            ]
        return summaries

    def wait_for_running(self, name: str, call_as: CallAs, operations: list[dict], on_wait=None) -> bool:
        """Wait for every running or queued operation (ours from an interrupted run, or anyone's)."""
        waited = False
        for summary in operations:
            if summary.get("Status") in RUNNING_STATUSES:
                if on_wait:
                    on_wait(name, summary["OperationId"])
                self.wait(name, summary["OperationId"], call_as)
                waited = True
        return waited

    def read(self, spec: StackSetSpec, full: bool = False, on_wait=None, wait: bool = True) -> LiveStackSet:
        """Live state of ``spec``'s stack set; instances are skipped when provably unchanged.

        Operations still running (ours from an interrupted run, or anyone's) are waited
        for first, unless ``wait`` is false (``plan``): then they are reported instead.
        """
        described = self.describe(spec.name, spec.call_as)
        if described is None:
            # Membership is part of the fingerprint when it matters: read it for a new stack set
            # too, so the ids of this first apply already record it.
            members = self.ou_members(spec) if membership_matters(spec) else None
            return LiveStackSet(name=spec.name, exists=False, ou_accounts=members)
        ops = self.operations(spec.name, spec.call_as)
        running = tuple(o["OperationId"] for o in ops if o.get("Status") in RUNNING_STATUSES)
        if running and wait and self.wait_for_running(spec.name, spec.call_as, ops, on_wait):
            ops = self.operations(spec.name, spec.call_as)
            running = ()
        last = _latest(ops)
        others = tuple(_operation(o) for o in ops if o.get("OperationId") != "order-unknown")
        tags = tuple(sorted((t["Key"], t["Value"]) for t in described.get("Tags", [])))
        auto = described.get("AutoDeployment")
        live = LiveStackSet(
            name=spec.name,
            exists=True,
            tags=tags,
            template_body=described.get("TemplateBody"),
            parameters=tuple(
                sorted((p["ParameterKey"], p.get("ParameterValue", "")) for p in described.get("Parameters", []))
            ),
            description=described.get("Description"),
            capabilities=tuple(sorted(described.get("Capabilities", []))),
            permission_model=PermissionModel(described.get("PermissionModel") or PermissionModel.SELF_MANAGED),
            auto_deployment=(bool(auto.get("Enabled")), bool(auto.get("RetainStacksOnAccountRemoval")))
            if auto
            else None,
            administration_role_arn=described.get("AdministrationRoleARN"),
            execution_role_name=described.get("ExecutionRoleName"),
            organizational_unit_ids=tuple(described["OrganizationalUnitIds"])
            if "OrganizationalUnitIds" in described
            else None,
            last_operation=last,
            running_operations=running,
            operations=others,
            depends_on=tuple(_stack_set_name(arn) for arn in auto["DependsOn"])
            if auto and "DependsOn" in auto
            else (() if auto else None),
        )
        # Fast path: with auto-deployment on and no filter, AWS records every membership change
        # as an operation; otherwise the targets' accounts (pages of ListAccountsForParent)
        # enter the fingerprint, so an account joining or leaving is seen without listing instances.
        members = self.ou_members(spec) if membership_matters(spec) else None
        settled = (
            not full
            and not running
            and live.owned
            and dict(tags).get(CONFIG_TAG) == config_hash(spec)
            and dict(tags).get(MANIFEST_TAG) == self.manifest.id
        )
        if settled and last_apply_matches(last, fingerprint(spec, members), others):
            return replace(live, ou_accounts=members)
        if settled and spec.name not in self._more_operations and override_delta_possible(spec, last, others, members):
            delta = self._override_delta(spec, others, members)
            if delta is not None:
                return replace(live, instances=tuple(delta), instances_partial=True, ou_accounts=members)
        instances = self.list_instances(spec.name, spec.call_as)
        moved: dict[str, str] = {}
        if live.permission_model is PermissionModel.SERVICE_MANAGED:
            instances = self._attribute_ous(spec, live, instances)
            if members is None:
                members = self.ou_members(spec)
            moved = self._moved_accounts(instances)
        instances = self._read_overrides(spec, instances)
        return replace(
            live, instances=tuple(instances), ou_accounts=members, moved_accounts=tuple(sorted(moved.items()))
        )

    def _override_delta(self, spec: StackSetSpec, operations, members) -> list[LiveInstance] | None:
        """The instances whose overrides may differ from the manifest, when only overrides changed
        since our last apply (``override_delta_possible``); None when they cannot be told apart
        cheaply (then the caller reads everything).

        They are the instances an override rule names (DescribeStackInstance, one call each: the
        rules name accounts, so their number follows the manifest, not the fleet) and those whose
        LastOperationId is one of our operations that set or kept overrides (ListStackInstances
        filtered on LAST_OPERATION_ID). Every other instance was last touched by an operation of
        ours that set none, so it has none, and none is wanted for it.
        """
        found: dict[tuple[str, str], LiveInstance] = {}
        for operation_id in override_carriers(operations):
            for inst in self.list_instances(spec.name, spec.call_as, last_operation_id=operation_id):
                found[(inst.account, inst.region)] = inst
        found_list = self._read_overrides(spec, list(found.values()))
        found = {(i.account, i.region): i for i in found_list}
        named = sorted(
            {
                (account, region)
                for rule in spec.overrides
                for account in rule.accounts
                for region in rule.regions
                if region in spec.regions
            }
            - set(found)
        )
        if len(found) + len(named) > OVERRIDE_DELTA_MAX_INSTANCES:
            return None  # one call or more per instance: past this many, the full read costs less
        for account, region in named:
            inst = self.describe_instance(spec, account, region)
            if inst is None:
                return None  # not an instance: the full read says why (a missing one, a target change)
            found[(account, region)] = inst
        if spec.service_managed:
            if any(i.ou is None for i in found.values()):
                return None
            # An update through an OU reaches the accounts in it now: each account must still be
            # under the OU its instance records (auto-deployment off: a move is no operation).
            parents = self.account_parents(sorted({i.account for i in found.values()}))
            for inst in found.values():
                parent = parents.get(inst.account)
                if parent is None or (parent != inst.ou and not self._below_targets(parent, {inst.ou})):
                    return None
        return sorted(found.values(), key=lambda i: (i.account, i.region))

    def describe_instance(self, spec: StackSetSpec, account: str, region: str) -> LiveInstance | None:
        """One instance with its overrides (DescribeStackInstance), or None when there is none."""
        try:
            data = self.cfn.describe_stack_instance(
                StackSetName=spec.name,
                StackInstanceAccount=account,
                StackInstanceRegion=region,
                CallAs=spec.call_as.value,
            )["StackInstance"]
        except ClientError as error:
            if error_code(error) == "StackInstanceNotFoundException":
                return None
            raise
        return _live_instance(data, overrides=_overrides_of(data))

    def _moved_accounts(self, instances: list[LiveInstance]) -> dict[str, str]:
        """Current parent of each account no longer under the OU its instance was deployed through."""
        stray = sorted({i.account for i in instances if i.ou and i.account not in self.resolver.accounts_under(i.ou)})
        return self.account_parents(stray)

    def ou_members(self, spec: StackSetSpec) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Accounts of each target OU, child OUs included, the management account excluded
        (service-managed stack sets never deploy there). Read only when instances are read."""
        management = self._management_account()
        return tuple(
            (ou, tuple(sorted(self.resolver.accounts_under(ou) - {management})))
            for ou in sorted(spec.organizational_units)
        )

    def _management_account(self) -> str | None:
        with self._lock:
            if "management" in self._checked:
                return self._checked["management"]
        try:
            management = self.org.describe_organization()["Organization"].get("MasterAccountId")
        except ClientError:
            management = None
        with self._lock:
            self._checked["management"] = management
        return management

    def list_instances(self, name: str, call_as: CallAs, last_operation_id: str | None = None) -> list[LiveInstance]:
        """Every instance, or those whose LastOperationId is ``last_operation_id``."""
        out = []
        filters = {"Filters": [{"Name": "LAST_OPERATION_ID", "Values": last_operation_id}]} if last_operation_id else {}
        paginator = self.cfn.get_paginator("list_stack_instances")
        for page in paginator.paginate(StackSetName=name, CallAs=call_as.value, **filters):
            out.extend(_live_instance(summary) for summary in page.get("Summaries", []))
        return out

    def _attribute_ous(
        self, spec: StackSetSpec, live: LiveStackSet, instances: list[LiveInstance]
    ) -> list[LiveInstance]:
        """Fill the OU of instances CloudFormation did not report one for (the emulator)."""
        unknown = sorted({i.account for i in instances if i.ou is None})
        if not unknown:
            return instances
        owner: dict[str, str] = {}
        for ou in sorted(set(spec.organizational_units) | set(live.organizational_unit_ids or ())):
            for account in self.resolver.accounts_under(ou):
                owner.setdefault(account, ou)
        rest = [a for a in unknown if a not in owner]
        owner.update(self.account_parents(rest))
        return [i if i.ou is not None else replace(i, ou=owner.get(i.account)) for i in instances]

    def _read_overrides(self, spec: StackSetSpec, instances: list[LiveInstance]) -> list[LiveInstance]:
        """Read ParameterOverrides of the instances whose overrides may matter (one call each)."""
        known: dict[tuple[str, str], LiveInstance] = {}
        needed = []
        for inst in instances:
            digest = known_overrides_digest(inst)
            if digest is not None:
                # Our last operation on it set exactly the overrides of that digest: when they are
                # the desired ones, they are known without a DescribeStackInstance.
                wanted = desired_overrides(spec, inst.account, inst.region, inst.ou)
                if overrides_digest(wanted, spec) == digest:
                    known[(inst.account, inst.region)] = replace(inst, overrides=wanted)
                    continue
                needed.append(inst)
            elif override_scope(spec, inst) or not overrides_known_empty(inst):
                needed.append(inst)
        instances = [known.get((i.account, i.region), i) for i in instances]
        if not needed:
            return instances

        def describe(inst: LiveInstance) -> LiveInstance:
            data = self.cfn.describe_stack_instance(
                StackSetName=spec.name,
                StackInstanceAccount=inst.account,
                StackInstanceRegion=inst.region,
                CallAs=spec.call_as.value,
            )["StackInstance"]
            return replace(inst, overrides=_overrides_of(data), ou=inst.ou or data.get("OrganizationalUnitId"))

        with ThreadPoolExecutor(max_workers=8) as pool:
            read = {(i.account, i.region): i for i in pool.map(describe, needed)}
        return [read.get((i.account, i.region), i) for i in instances]

    # ------------------------------------------------------------------ prerequisites

    def check_prerequisites(self, spec: StackSetSpec) -> None:
        """Trusted access (service-managed) or the administration role (self-managed), before any write."""
        key = "trusted-access" if spec.service_managed else f"admin-role:{spec.administration_role_arn or ''}"
        with self._lock:
            if key in self._checked:
                problem = self._checked[key]
                if problem:
                    raise RolloutError(problem)
                return
        problem = self._trusted_access_problem(spec) if spec.service_managed else self._admin_role_problem(spec)
        with self._lock:
            self._checked[key] = problem
        if problem:
            raise RolloutError(problem)

    def _trusted_access_problem(self, spec: StackSetSpec) -> str | None:
        if spec.call_as is CallAs.DELEGATED_ADMIN:
            return None  # only the management account can list service access
        try:
            principals: set[str] = set()
            for page in self.org.get_paginator("list_aws_service_access_for_organization").paginate():
                principals.update(p["ServicePrincipal"] for p in page.get("EnabledServicePrincipals", []))
        except ClientError as error:
            if error_code(error) == "AWSOrganizationsNotInUseException":
                return f"stack set '{spec.name}' is service_managed but this account is not in an AWS Organization"
            if error_code(error) == "AccessDeniedException":
                return None  # cannot tell; CloudFormation will say so itself
            raise
        if STACKSETS_PRINCIPAL not in principals:
            return (
                f"stack set '{spec.name}' is service_managed but trusted access for CloudFormation StackSets is not "
                "enabled in the Organization: in the management account run "
                "`aws cloudformation activate-organizations-access` (or enable it in the StackSets console), "
                "then re-run"
            )
        return None

    def _admin_role_problem(self, spec: StackSetSpec) -> str | None:
        arn = spec.administration_role_arn
        name = arn.split("/")[-1] if arn else DEFAULT_ADMIN_ROLE
        if arn and arn.split(":")[4] != self.caller_account():
            return None  # a role of another account: only CloudFormation can check it
        try:
            self.clients.client("iam", self.region).get_role(RoleName=name)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return (
                    f"stack set '{spec.name}' is self_managed but the administration role '{name}' does not exist in "
                    f"account {self.caller_account()}: deploy templates/stackset-administration-role.yaml there "
                    "(and stackset-execution-role.yaml in every target account), then re-run"
                )
            if error_code(error) in ("AccessDenied", "AccessDeniedException"):
                return None
            raise
        return None

    # ------------------------------------------------------------------ templates

    def template_source(self, spec: StackSetSpec) -> dict:
        """``TemplateBody``, or ``TemplateURL`` after an upload when the body is over the inline limit."""
        if spec.template.size <= INLINE_TEMPLATE_LIMIT:
            return {"TemplateBody": spec.template.body}
        with self._lock:
            cached = self._template_urls.get(spec.template.sha256)
        if cached:
            return {"TemplateURL": cached}
        url = self._upload_template(spec)
        with self._lock:
            self._template_urls[spec.template.sha256] = url
        return {"TemplateURL": url}

    def template_bucket(self) -> str:
        return self.manifest.template_bucket or f"sagemaker-stackset-deploy-{self.caller_account()}-{self.region}"

    def _upload_template(self, spec: StackSetSpec) -> str:
        s3 = self.clients.client("s3", self.region)
        bucket = self.template_bucket()
        # The default name is predictable: S3 refuses every request below (403) when the
        # bucket belongs to another account, so nobody else's bucket can serve our templates.
        owner = {"ExpectedBucketOwner": self.caller_account()}
        self._ensure_bucket(s3, bucket)
        key = f"templates/{spec.name}/{spec.template.sha256}.yaml"
        try:
            s3.head_object(Bucket=bucket, Key=key, **owner)
        except ClientError as error:
            if error_code(error) not in NOT_FOUND_CODES:
                raise
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=spec.template.body.encode("utf-8"),
                ContentType="text/yaml",
                ServerSideEncryption="AES256",
                **owner,
            )
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"https://{bucket}.s3.{self.region}.{suffix}/{key}"

    def _ensure_bucket(self, s3, bucket: str) -> None:
        with self._lock:
            if self._checked.get(f"bucket:{bucket}") == "ok":
                return
        hardening = BucketHardening(sse_algorithm="AES256", expected_owner=self.caller_account())
        try:
            ensure_bucket(s3, bucket, self.region, hardening, settings=_TEMPLATE_BUCKET_HARDENING)
        except ClientError as error:
            raise RolloutError(f"template bucket '{bucket}' is not usable: {error}") from None
        with self._lock:
            self._checked[f"bucket:{bucket}"] = "ok"

    # ------------------------------------------------------------------ writing

    def _tags(self, spec: StackSetSpec) -> list[dict]:
        tags = dict(spec.tags)
        tags[OWNER_TAG_KEY] = OWNER_TAG_VALUE
        tags[CONFIG_TAG] = config_hash(spec)
        tags[MANIFEST_TAG] = self.manifest.id
        return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]

    def _preferences(self, spec: StackSetSpec, regions) -> dict:
        prefs = dict(spec.operation_preferences)
        if "RegionOrder" in prefs:
            prefs["RegionOrder"] = [r for r in prefs["RegionOrder"] if r in regions]
            if not prefs["RegionOrder"]:
                prefs.pop("RegionOrder")
        return prefs

    def _targets(self, spec: StackSetSpec, step: Step) -> dict:
        if spec.service_managed:
            targets: dict = {"OrganizationalUnitIds": list(step.organizational_units)}
            if step.accounts:
                targets["Accounts"] = list(step.accounts)
            if step.account_filter and (step.accounts or step.account_filter is AccountFilter.NONE):
                targets["AccountFilterType"] = step.account_filter.value
            return {"DeploymentTargets": targets}
        return {"Accounts": list(step.accounts)}

    def _stack_set_arguments(self, spec: StackSetSpec) -> dict:
        args = {
            "StackSetName": spec.name,
            "Description": spec.description,
            # Every overridden key too: AWS overrides only "parameter values that are specified in the StackSet".
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in spec.stack_set_parameters()],
            "Capabilities": list(spec.capabilities),
            "Tags": self._tags(spec),
            "PermissionModel": spec.permission_model.value,
            "CallAs": spec.call_as.value,
            "ManagedExecution": {"Active": True},
            **self.template_source(spec),
        }
        if spec.service_managed:
            # API reference, AutoDeployment.RetainStacksOnAccountRemoval: "Specify only if Enabled is
            # set to True." (the Terraform provider was refused otherwise, issue #19015).
            auto: dict = {"Enabled": spec.auto_deployment}
            if spec.auto_deployment:
                auto["RetainStacksOnAccountRemoval"] = spec.retain_stacks_on_account_removal
                dependencies = auto_deployment_dependencies(spec)
                if dependencies:
                    auto["DependsOn"] = [self.stack_set_arn(name, spec) for name in dependencies]
            args["AutoDeployment"] = auto
        else:
            if spec.administration_role_arn:
                args["AdministrationRoleARN"] = spec.administration_role_arn
            if spec.execution_role_name:
                args["ExecutionRoleName"] = spec.execution_role_name
        return args

    def stack_set_arn(self, name: str, spec: StackSetSpec) -> str:
        """The ARN of stack set ``name`` (a dependency: created before ``spec`` by the rollout order)."""
        described = self.describe(name, spec.call_as)
        if described is None or not described.get("StackSetARN"):
            raise RolloutError(f"{spec.name}: depends_on stack set '{name}' does not exist (yet)")
        return described["StackSetARN"]

    def execute(self, spec: StackSetSpec, step: Step, on_wait=None) -> OperationOutcome:
        """Run one step and wait for its operation; OperationInProgress waits for the other operation first."""
        if step.kind is StepKind.CREATE_STACK_SET:
            args = {**self._stack_set_arguments(spec), "ClientRequestToken": step.operation_id}
            try:
                self.cfn.create_stack_set(**args)
            except ClientError as error:
                if error_code(error) != "NameAlreadyExistsException":
                    raise RolloutError(f"{spec.name}: CreateStackSet failed: {error}") from None
                described = self.describe(spec.name, spec.call_as)
                owned = described and any(
                    t["Key"] == OWNER_TAG_KEY and t["Value"] == OWNER_TAG_VALUE for t in described.get("Tags", [])
                )
                if not owned:
                    raise RolloutError(
                        f"{spec.name}: a stack set of that name appeared meanwhile and is not ours"
                    ) from None
            return OperationOutcome(step.operation_id, "SUCCEEDED")
        if step.kind is StepKind.DELETE_STACK_SET:
            self._retrying_in_progress(
                spec, lambda: self.cfn.delete_stack_set(StackSetName=spec.name, CallAs=spec.call_as.value), on_wait
            )
            return OperationOutcome(step.operation_id, "SUCCEEDED")

        common = {"StackSetName": spec.name, "CallAs": spec.call_as.value, "OperationId": step.operation_id}
        if step.kind is StepKind.UPDATE_STACK_SET:
            args = {
                **self._stack_set_arguments(spec),
                **common,
                "OperationPreferences": self._preferences(spec, spec.regions),
            }
            call = lambda: self.cfn.update_stack_set(**args)  # noqa: E731
        else:
            args = {
                **common,
                **self._targets(spec, step),
                "Regions": list(step.regions),
                "OperationPreferences": self._preferences(spec, step.regions),
            }
            if step.kind is StepKind.CREATE_INSTANCES:
                if step.overrides:
                    args["ParameterOverrides"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in step.overrides]
                call = lambda: self.cfn.create_stack_instances(**args)  # noqa: E731
            elif step.kind is StepKind.UPDATE_INSTANCES:
                # An explicit list: keys left out go back to the stack set's value.
                args["ParameterOverrides"] = [
                    {"ParameterKey": k, "ParameterValue": v} for k, v in (step.overrides or ())
                ]
                call = lambda: self.cfn.update_stack_instances(**args)  # noqa: E731
            elif step.kind is StepKind.DELETE_INSTANCES:
                args["RetainStacks"] = spec.retain_stacks if step.retain_stacks is None else step.retain_stacks
                call = lambda: self.cfn.delete_stack_instances(**args)  # noqa: E731
            else:
                raise ValueError(step.kind.value)
        response = self._retrying_in_progress(spec, call, on_wait, own_id=step.operation_id)
        # The emulator ignores client tokens of instance calls: follow the id it answers with.
        operation_id = (response or {}).get("OperationId") or step.operation_id
        final = self.wait(spec.name, operation_id, spec.call_as)
        return self.outcome(spec, operation_id, final)

    def _retrying_in_progress(
        self, spec: StackSetSpec, call, on_wait=None, own_id: str | None = None, attempts: int = 30
    ):
        for _ in range(attempts):
            try:
                return call()
            except ClientError as error:
                code = error_code(error)
                if code == "OperationIdAlreadyExistsException" and own_id:
                    return {"OperationId": own_id}  # our own request went through before: wait for it, never redo it
                if code == "StaleRequestException":
                    raise StaleRequest(
                        f"{spec.name}: another operation changed the stack set since this step was planned ({error})"
                    ) from None
                if code != "OperationInProgressException":
                    raise RolloutError(f"{spec.name}: {error}") from None
                ops = self.operations(spec.name, spec.call_as)
                if not self.wait_for_running(spec.name, spec.call_as, ops, on_wait):
                    self._sleep(self.poll.initial)
        raise RolloutError(f"{spec.name}: other operations kept the stack set busy; re-run later")

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(0):
            raise KeyboardInterrupt
        self.poll.sleep(seconds)

    def wait(self, name: str, operation_id: str, call_as: CallAs) -> dict:
        """Poll DescribeStackSetOperation until the operation ends (backoff with jitter, bounded)."""
        started = self.poll.clock()
        delays = self.poll.delays()
        not_found = 0
        while True:
            try:
                op = self.cfn.describe_stack_set_operation(
                    StackSetName=name, OperationId=operation_id, CallAs=call_as.value
                )["StackSetOperation"]
            except ClientError as error:
                if error_code(error) != "OperationNotFoundException":
                    raise RolloutError(f"{name}: cannot follow operation {operation_id}: {error}") from None
                not_found += 1
                if not_found > OPERATION_NOT_FOUND_POLLS:
                    raise RolloutError(
                        f"{name}: operation {operation_id} is still not visible after {not_found} reads "
                        "(OperationNotFoundException); re-run to pick it up"
                    ) from None
                self._sleep(next(delays))
                continue
            if op.get("Status") in FINAL_STATUSES:
                return op
            if self.poll.clock() - started > self.poll.timeout:
                raise RolloutError(
                    f"{name}: operation {operation_id} still {op.get('Status')} after {self.poll.timeout:.0f}s; "
                    "re-run to pick it up"
                )
            self._sleep(next(delays))

    def outcome(self, spec: StackSetSpec, operation_id: str, op: dict) -> OperationOutcome:
        status = op.get("Status", "UNKNOWN")
        failed = (op.get("StatusDetails") or {}).get("FailedStackInstancesCount")
        outcome = OperationOutcome(operation_id, status)
        if status != "SUCCEEDED" or (failed or 0) > 0:
            outcome.failures = self.failures(spec.name, operation_id, spec.call_as)
            if not outcome.failures and status != "SUCCEEDED":
                reason = op.get("StatusReason") or f"operation {status}"
                outcome.failures = [InstanceFailure("-", "-", status, reason)]
        return outcome

    def failures(self, name: str, operation_id: str, call_as: CallAs) -> list[InstanceFailure]:
        """Every failed or cancelled account/region of an operation, with CloudFormation's reason (all pages)."""
        out = []
        paginator = self.cfn.get_paginator("list_stack_set_operation_results")
        for page in paginator.paginate(StackSetName=name, OperationId=operation_id, CallAs=call_as.value):
            for result in page.get("Summaries", []):
                if result.get("Status") in ("FAILED", "CANCELLED"):
                    out.append(
                        InstanceFailure(
                            result.get("Account", "?"),
                            result.get("Region", "?"),
                            result["Status"],
                            result.get("StatusReason", ""),
                        )
                    )
        return out

    # ------------------------------------------------------------------ drift

    def detect_drift(self, spec: StackSetSpec) -> tuple[dict, list[dict]]:
        """Run DetectStackSetDrift, wait, and return (operation, drifted instances with their resources)."""
        op_id = f"ssd-drift-{uuid.uuid4().hex[:24]}"
        response = self._retrying_in_progress(
            spec,
            lambda: self.cfn.detect_stack_set_drift(
                StackSetName=spec.name,
                OperationId=op_id,
                CallAs=spec.call_as.value,
                OperationPreferences=self._preferences(spec, spec.regions),
            ),
            own_id=op_id,
        )
        op_id = (response or {}).get("OperationId") or op_id
        op = self.wait(spec.name, op_id, spec.call_as)
        drifted = []
        for inst in self.list_instances(spec.name, spec.call_as):
            if inst.drift_status in ("DRIFTED",):
                resources = []
                token = None
                while True:  # no botocore paginator for this operation
                    kwargs = {
                        "StackSetName": spec.name,
                        "StackInstanceAccount": inst.account,
                        "StackInstanceRegion": inst.region,
                        "OperationId": op_id,
                        "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"],
                        "CallAs": spec.call_as.value,
                    }
                    if token:
                        kwargs["NextToken"] = token
                    page = self.cfn.list_stack_instance_resource_drifts(**kwargs)
                    for r in page.get("Summaries", []):
                        resources.append(
                            {
                                "logical_id": r.get("LogicalResourceId"),
                                "type": r.get("ResourceType"),
                                "status": r.get("StackResourceDriftStatus"),
                                "differences": [
                                    {
                                        "path": d.get("PropertyPath"),
                                        "expected": d.get("ExpectedValue"),
                                        "actual": d.get("ActualValue"),
                                        "type": d.get("DifferenceType"),
                                    }
                                    for d in r.get("PropertyDifferences", [])
                                ],
                            }
                        )
                    token = page.get("NextToken")
                    if not token:
                        break
                drifted.append({"account": inst.account, "region": inst.region, "resources": resources})
        return op, drifted


def _live_instance(data: dict, overrides: tuple[tuple[str, str], ...] | None = None) -> LiveInstance:
    """A stack instance as DescribeStackInstance or a ListStackInstances summary returns it
    (summaries carry no overrides: None, not read)."""
    return LiveInstance(
        account=data["Account"],
        region=data["Region"],
        ou=data.get("OrganizationalUnitId"),
        status=data.get("Status", "CURRENT"),
        detailed_status=(data.get("StackInstanceStatus") or {}).get("DetailedStatus"),
        status_reason=data.get("StatusReason"),
        overrides=overrides,
        last_operation_id=data.get("LastOperationId"),
        drift_status=data.get("DriftStatus"),
    )


def _overrides_of(instance: dict) -> tuple[tuple[str, str], ...]:
    """A DescribeStackInstance answer's ParameterOverrides as sorted (key, value) pairs."""
    raw = instance.get("ParameterOverrides") or []
    return tuple(
        sorted(
            (p["ParameterKey"], p.get("ParameterValue", "")) for p in raw if isinstance(p, dict) and "ParameterKey" in p
        )
    )


def _stack_set_name(arn: str) -> str:
    """``arn:...:stackset/NAME:UUID`` -> NAME."""
    return arn.split(":stackset/", 1)[-1].split(":", 1)[0]


def _operation(summary: dict) -> LastOperation:
    return LastOperation(
        operation_id=summary["OperationId"],
        status=summary.get("Status", ""),
        action=summary.get("Action"),
        failed_count=(summary.get("StatusDetails") or {}).get("FailedStackInstancesCount"),
        created=summary.get("CreationTimestamp"),
        ended=summary.get("EndTimestamp"),
    )


def _latest(operations: list[dict]) -> LastOperation | None:
    if not operations:
        return None
    latest = max(
        reversed(operations), key=lambda o: o["CreationTimestamp"]
    )  # on a tie the last listed wins: the order marker, when present
    return _operation(latest)
