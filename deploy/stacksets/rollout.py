"""The executor: read live state, plan, confirm removals, run the plan, report.

Independent stack sets run in parallel threads, scheduled by ``graphlib.TopologicalSorter``
over ``depends_on`` (reversed for destroy): a stack set starts as soon as every stack set it
waits for is done, and is skipped when one of them did not succeed. Each stack set's steps
run in order, each one waiting for its operation. ``Outcome.result`` is an ``OutcomeResult``.
Human output (rich progress, plan, failures) goes to stderr; ``--json`` documents are
built from the returned data by ``deploy.stacksets.commands``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from enum import Enum
from graphlib import TopologicalSorter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from deploy.common.errors import InputError, RolloutError
from deploy.stacksets.aws import InstanceFailure, StackSets, StaleRequest
from deploy.stacksets.lookups import resolve_lookups, resolve_spec
from deploy.stacksets.manifest import AccountFilter, Manifest, StackSetSpec, dependency_graph, dependency_order
from deploy.stacksets.plan import (
    LiveStackSet,
    PlanAction,
    StackSetPlan,
    StepKind,
    describe,
    plan_destroy,
    plan_stack_set,
    retained_dependents,
    retained_dependents_note,
)

# Waits before re-running an operation whose failures are all "role not assumable yet":
# IAM changes reach every region within seconds to a couple of minutes.
IAM_RETRY_DELAYS = (15.0, 30.0, 60.0)
MAX_ROUNDS = 3
MAX_PARALLEL_STACK_SETS = 8


class OutcomeResult(str, Enum):
    """How a stack set's rollout ended (``str``: the JSON documents show the value)."""

    NO_CHANGE = "no-change"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    DELETED = "deleted"
    ABSENT = "absent"

    @property
    def ok(self) -> bool:
        return self in _OK_RESULTS


_OK_RESULTS = frozenset({OutcomeResult.NO_CHANGE, OutcomeResult.SUCCEEDED, OutcomeResult.DELETED, OutcomeResult.ABSENT})
# A plan without steps ends as what its action says.
_RESULT_WITHOUT_STEPS = {PlanAction.DELETE: OutcomeResult.DELETED, PlanAction.ABSENT: OutcomeResult.ABSENT}


@dataclass
class Outcome:
    """How one stack set ended."""

    name: str
    result: OutcomeResult
    operations: list[str] = field(default_factory=list)
    failures: list[InstanceFailure] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "result": self.result,
            "operations": self.operations,
            "failures": [f.__dict__ for f in self.failures],
            "message": self.message,
        }


# destroy: a stack whose deletion failed on a dependency AWS releases by itself (the network
# interfaces of VPC endpoints, SageMaker and Lambda are released minutes after their owner is
# deleted) is deleted again after these delays (about 8 minutes in all), then reported per account.
DEPENDENCY_RETRY_DELAYS = (5.0, 15.0, 30.0, 60.0, 120.0, 240.0)
_RELEASED_LATER = ("has dependencies", "dependencyviolation", "in use", "is being used", "cannot be deleted while")


def _released_later(failures) -> bool:
    """Whether every failure is a dependency that AWS releases on its own (worth a later retry)."""
    return bool(failures) and all(any(m in f.reason.lower() for m in _RELEASED_LATER) for f in failures)


# Seconds between the "still running" lines without a terminal (0: none).
HEARTBEAT_ENV = "SM_DEPLOY_PROGRESS_SECONDS"


class Reporter:
    """Progress and messages on stderr: a live rich display on a terminal, plain lines otherwise.

    Without a terminal (CI logs), every operation prints a line when it starts and ends, and
    each stack set still running prints one at least every ``heartbeat`` seconds (instances
    done out of total, time elapsed), so a log never stays silent through a 20-minute rollout.
    """

    def __init__(self, console: Console | None = None, quiet: bool = False, heartbeat: float | None = None):
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.heartbeat = heartbeat if heartbeat is not None else float(os.environ.get(HEARTBEAT_ENV, "30"))
        self._started: dict[str, float] = {}
        self._stopped = threading.Event()
        self.progress = Progress(
            TextColumn("{task.fields[name]}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet or not self.console.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self):
        self.progress.start()
        self._stopped.clear()
        if self.progress.disable and not self.quiet and self.heartbeat > 0:
            threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stopped.set()
        self.progress.stop()

    def _beat(self) -> None:
        while not self._stopped.wait(self.heartbeat):
            with self._lock:
                running = {name: task for name, task in self._tasks.items() if name in self._started}
            tasks = {task.id: task for task in self.progress.tasks}
            for name, task_id in sorted(running.items()):
                task = tasks.get(task_id)
                if task is None or task.finished:
                    continue
                elapsed = time.monotonic() - self._started[name]
                self.line(
                    f"{name}: still running: {task.description}; {task.completed:.0f}/{task.total:.0f} "
                    f"instance(s) done, {elapsed:.0f}s elapsed"
                )

    def line(self, text: str, style: str | None = None) -> None:
        if not self.quiet:
            self.console.print(text, style=style, highlight=False, markup=False, soft_wrap=True)

    def start(self, name: str, total: int) -> None:
        with self._lock:
            self._tasks[name] = self.progress.add_task("queued", name=name, total=max(total, 1))
            self._started[name] = time.monotonic()

    def step(self, name: str, text: str) -> None:
        with self._lock:
            task = self._tasks.get(name)
        if task is not None:
            self.progress.update(task, description=text)
        if not self.progress.disable:
            return
        self.line(f"{name}: {text}")

    def operation(self, name: str, kind: StepKind, operation_id: str) -> None:
        """A step starts: short on the live display, the full OperationId in plain output."""
        if self.progress.disable:
            self.step(name, f"{kind.value} {operation_id}")
        else:
            self.step(name, f"{kind.value.replace('_', ' ')} …{operation_id[-8:]}")

    def advance(self, name: str, amount: int) -> None:
        with self._lock:
            task = self._tasks.get(name)
        if task is not None:
            self.progress.advance(task, amount)

    def finish(self, name: str, text: str) -> None:
        with self._lock:
            task = self._tasks.get(name)
            self._started.pop(name, None)
        if task is not None:
            total = self.progress.tasks[[t.id for t in self.progress.tasks].index(task)].total
            self.progress.update(task, completed=total, description=text)
        self.line(f"{name}: {text}")


def resolve(manifest: Manifest, ids_by_ref: dict[str, str]) -> list[StackSetSpec]:
    """Specs with ``ou:/path`` and ``account:name`` references replaced by ids."""

    def ids(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({ids_by_ref.get(v, v) for v in values}))

    out = []
    for spec in manifest.stack_sets:
        overrides = tuple(
            replace(o, organizational_units=ids(o.organizational_units), accounts=ids(o.accounts))
            for o in spec.overrides
        )
        entries = tuple(
            replace(e, organizational_units=ids(e.organizational_units), accounts=ids(e.accounts))
            for e in spec.target_entries
        )
        out.append(
            replace(
                spec,
                organizational_units=ids(spec.organizational_units),
                accounts=ids(spec.accounts),
                overrides=overrides,
                target_entries=entries,
            )
        )
    return out


def confirm(question: str, yes: bool, how: str) -> bool:
    """``--yes`` answers yes; a terminal is asked; without a terminal the answer is refusal (exit 2)."""
    if yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise InputError(f"{question}: refusing without a terminal to confirm; {how}")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


@dataclass
class Planned:
    spec: StackSetSpec
    live: LiveStackSet
    plan: StackSetPlan
    account_parents: dict[str, str] = field(default_factory=dict)


class Rollout:
    """Plans and runs a manifest against the live stack sets."""

    def __init__(
        self, adapter: StackSets, reporter: Reporter, adopt: bool = False, iam_retry_delays=None, dependency_delays=None
    ):
        self.adapter = adapter
        self.reporter = reporter
        self.adopt = adopt
        self._unresolved: dict[str, StackSetSpec] = {}  # specs before lookups, for values known after apply
        self.iam_retry_delays = IAM_RETRY_DELAYS if iam_retry_delays is None else iam_retry_delays
        self.dependency_delays = DEPENDENCY_RETRY_DELAYS if dependency_delays is None else dependency_delays

    # ------------------------------------------------------------------ planning

    @property
    def manifest_id(self) -> str | None:
        """The id of the manifest that owns the stack sets (None: ownership per manifest not checked)."""
        manifest = getattr(self.adapter, "manifest", None)
        return manifest.id if manifest is not None else None

    def specs(self, values: bool = True) -> list[StackSetSpec]:
        """The manifest's specs with references resolved and (``values``) lookups too: ``destroy``
        needs no parameter value, so a producer already gone never blocks removing a consumer."""
        self.adapter.caller_account()  # missing or wrong credentials: exit 2 before anything else
        specs = resolve(self.adapter.manifest, self.adapter.resolve_references())
        self._unresolved = {spec.name: spec for spec in specs}
        resolved = resolve_lookups(specs, self.adapter.values, self.adapter.manifest.path) if values else specs
        return [self.adapter.prepare(spec) for spec in resolved]

    def _resolve_deferred(self, item: Planned) -> Planned:
        """A stack set planned with values known only after apply: now that what it depends on
        is deployed, resolve them, read it again and plan it anew."""
        unresolved = self._unresolved.get(item.spec.name)
        if unresolved is None:
            raise RolloutError(f"{item.spec.name}: values known only after apply, and no manifest entry to resolve")
        spec = self.adapter.prepare(
            resolve_spec(unresolved, self.adapter.values, self.adapter.manifest.path, final=True)
        )
        self.reporter.line(
            f"{spec.name}: values known after apply resolved ({', '.join(sorted(item.spec.deferred_parameters))})"
        )
        live = self.adapter.read(spec, full=True, on_wait=self._on_wait)
        plan = plan_stack_set(spec, live, item.account_parents, adopt=self.adopt, manifest_id=self.manifest_id)
        return replace(item, spec=spec, live=live, plan=plan)

    def _on_wait(self, name: str, operation_id: str) -> None:
        self.reporter.line(f"{name}: waiting for operation {operation_id} already in progress")

    def plan(self, specs: list[StackSetSpec], full: bool = False, wait: bool = True) -> dict[str, Planned]:
        """Read every stack set (in parallel) and plan it."""

        def one(spec: StackSetSpec) -> Planned:
            live = self.adapter.read(spec, full=full, on_wait=self._on_wait, wait=wait)
            parents = {}
            # UNION accounts outside the OUs are created through their parent OU: needed for a new
            # stack set as much as for one whose instances were read.
            union = [a for e in spec.entries() if e.account_filter is AccountFilter.UNION for a in e.accounts]
            if spec.service_managed and union and (live.instances is not None or not live.exists):
                parents = self.adapter.account_parents(tuple(sorted(set(union))))
            plan = plan_stack_set(spec, live, parents, adopt=self.adopt, manifest_id=self.manifest_id)
            return Planned(spec, live, plan, parents)

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_STACK_SETS, len(specs) or 1)) as pool:
            results = list(pool.map(one, specs))
        return {p.spec.name: p for p in results}

    def plan_destroy(self, specs: list[StackSetSpec]) -> dict[str, Planned]:
        def one(spec: StackSetSpec) -> Planned:
            live = self.adapter.read(spec, full=True, on_wait=self._on_wait)
            return Planned(spec, live, plan_destroy(spec, live, manifest_id=self.manifest_id))

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_STACK_SETS, len(specs) or 1)) as pool:
            results = list(pool.map(one, specs))
        for name, dependents in retained_dependents(specs).items():
            planned = next(p for p in results if p.spec.name == name)
            if planned.plan.action is PlanAction.DELETE:
                planned.plan.notes.append(retained_dependents_note(name, dependents))
        return {p.spec.name: p for p in results}

    def show(self, planned: dict[str, Planned], out=None) -> None:
        """The human plan: on ``out`` (stdout for ``plan``), else among the progress lines on stderr."""
        for item in planned.values():
            for line in describe(item.plan, item.spec):
                if out is None:
                    self.reporter.line(line)
                else:
                    print(line, file=out)

    # ------------------------------------------------------------------ confirmation

    def confirm_removals(self, planned: dict[str, Planned], yes: bool, verb: str = "apply") -> bool:
        removing = [p for p in planned.values() if p.plan.removes]
        losing = [p for p in planned.values() if p.plan.data_loss and p.plan.steps]
        if not removing:
            return self._confirm_data_loss(losing, yes, verb)
        total = sum(len(p.plan.remove) for p in removing)
        lines = []
        for p in removing:
            everything = p.live.instances is not None and len(p.plan.remove) == len(p.live.instances) and not p.plan.add
            if p.plan.action is PlanAction.DELETE:
                lines.append(
                    f"{p.spec.name}: delete the stack set and its {len(p.plan.remove)} instance(s)"
                    + (" (stacks retained)" if p.spec.retain_stacks else "")
                )
            elif everything:
                lines.append(
                    f"{p.spec.name}: the targets resolve to NO account: "
                    f"EVERY one of its {len(p.plan.remove)} instance(s) would be removed"
                )
            else:
                lines.append(
                    f"{p.spec.name}: remove {len(p.plan.remove)} instance(s)"
                    + (" (stacks retained)" if p.spec.retain_stacks else "")
                )
        for line in lines:
            self.reporter.line(line, style="bold yellow")
        return confirm(
            f"{verb} would remove {total} stack instance(s) in {len(removing)} stack set(s); continue?",
            yes,
            f"re-run with --yes to {verb} (or change the manifest)",
        ) and self._confirm_data_loss(losing, yes, verb)

    def _confirm_data_loss(self, losing: list[Planned], yes: bool, verb: str) -> bool:
        """Stateful resources removed or replaced without Retain need the same confirmation."""
        if not losing:
            return True
        for p in losing:
            for change in p.plan.data_loss:
                self.reporter.line(
                    f"{p.spec.name}: DATA LOSS: {change.describe(p.plan.instance_count)}", style="bold red"
                )
        count = sum(len(p.plan.data_loss) for p in losing)
        return confirm(
            f"{verb} would delete the data of {count} stateful resource(s) in every instance; continue?",
            yes,
            f"re-run with --yes to {verb} (or set DeletionPolicy/UpdateReplacePolicy: Retain)",
        )

    # ------------------------------------------------------------------ execution

    def run(self, planned: dict[str, Planned], destroy: bool = False) -> dict[str, Outcome]:
        """Execute every plan, respecting ``depends_on`` (reversed for destroy).

        A stack set starts as soon as graphlib reports every stack set it waits for done;
        one that waits for a stack set that did not succeed is skipped, not run.
        """
        specs = [p.spec for p in planned.values()]
        order = dependency_order(specs)
        deps = {name: set(after) for name, after in dependency_graph(specs).items()}
        if destroy:
            deps = {name: {other for other, d in deps.items() if name in d} for name in deps}
            order = list(reversed(order))
        sorter = TopologicalSorter(deps)
        sorter.prepare()
        outcomes: dict[str, Outcome] = {}
        running: dict[Future, str] = {}
        with self.reporter, ThreadPoolExecutor(max_workers=MAX_PARALLEL_STACK_SETS) as pool:
            try:
                while sorter.is_active():
                    for name in sorter.get_ready():
                        failed = sorted(d for d in deps[name] if not outcomes[d].ok)
                        if failed:
                            outcomes[name] = Outcome(
                                name, OutcomeResult.SKIPPED, message=f"not run: {', '.join(failed)} did not succeed"
                            )
                            self.reporter.finish(name, outcomes[name].message)
                        elif (outcome := _without_steps(planned[name])) is not None:
                            outcomes[name] = outcome
                        else:
                            item = planned[name]
                            self.reporter.start(name, sum(s.instance_count or 1 for s in item.plan.steps))
                            running[pool.submit(self._run_one, item, destroy)] = name
                            continue
                        sorter.done(name)
                    if not running:
                        continue  # stack sets settled without a call may have made others ready
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        try:
                            outcomes[name] = future.result()
                        except RolloutError as error:
                            outcomes[name] = Outcome(name, OutcomeResult.FAILED, message=str(error))
                        self.reporter.finish(name, _summary(outcomes[name]))
                        sorter.done(name)
            except KeyboardInterrupt:
                self.adapter.stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return {name: outcomes[name] for name in order}

    def _run_one(self, item: Planned, destroy: bool) -> Outcome:
        if item.spec.deferred_parameters and not destroy:
            item = self._resolve_deferred(item)
        spec, plan = item.spec, item.plan
        outcome = Outcome(spec.name, OutcomeResult.SUCCEEDED)
        iam_retries = 0
        stale_rounds = 0
        dependency_retries = 0
        for _round in range(MAX_ROUNDS + len(self.iam_retry_delays) + len(self.dependency_delays)):
            retry = False
            for step in plan.steps:
                started = time.monotonic()
                self.reporter.operation(spec.name, step.kind, step.operation_id)
                try:
                    result = self.adapter.execute(spec, step, on_wait=self._on_wait)
                except StaleRequest as error:
                    if destroy or stale_rounds >= MAX_ROUNDS:
                        raise
                    stale_rounds += 1
                    self.reporter.line(f"{error}: reading it again and re-planning")
                    retry = True
                    break
                outcome.operations.append(result.operation_id)
                if not result.ok:
                    if result.iam_propagation_only and iam_retries < len(self.iam_retry_delays):
                        delay = self.iam_retry_delays[iam_retries]
                        iam_retries += 1
                        self.reporter.line(
                            f"{spec.name}: roles not assumable yet (IAM propagation); retrying in {delay:.0f}s"
                        )
                        self.adapter.poll.sleep(delay)
                        retry = True
                        break
                    if (
                        destroy
                        and _released_later(result.failures)
                        and dependency_retries < len(self.dependency_delays)
                    ):
                        delay = self.dependency_delays[dependency_retries]
                        dependency_retries += 1
                        self.reporter.line(
                            f"{spec.name}: {len(result.failures)} instance(s) still have dependencies AWS releases "
                            f"on its own (network interfaces); deleting them again in {delay:.0f}s"
                        )
                        self.adapter.poll.sleep(delay)
                        live = self.adapter.read(spec, full=True, on_wait=self._on_wait)
                        plan = plan_destroy(spec, live, manifest_id=self.manifest_id, retry_inoperable=True)
                        retry = True
                        break
                    outcome.result = OutcomeResult.FAILED
                    outcome.failures = result.failures
                    outcome.message = f"{step.kind.value} {result.operation_id} ended {result.status}"
                    return outcome
                self.reporter.advance(spec.name, step.instance_count or 1)
                self.reporter.step(spec.name, f"{step.kind.value} done in {time.monotonic() - started:.0f}s")
            if destroy and not retry:
                outcome.result = OutcomeResult.DELETED
                return outcome
            if destroy:
                continue
            if not retry and not plan.needs_followup:
                return outcome
            # Re-read and re-plan: instances created through an OU now exist with their OU,
            # and failed instances are no longer CURRENT. Removals are never follow-ups.
            live = self.adapter.read(spec, full=True, on_wait=self._on_wait)
            plan = plan_stack_set(spec, live, item.account_parents, adopt=True, manifest_id=self.manifest_id)
            plan.steps = [s for s in plan.steps if s.kind is not StepKind.DELETE_INSTANCES]
            if not plan.steps:
                return outcome
        outcome.result = OutcomeResult.FAILED
        outcome.message = "did not converge after several rounds; re-run apply"
        return outcome


def _without_steps(item: Planned) -> Outcome | None:
    """The outcome of a plan that makes no call (blocked, nothing to do), or None."""
    if item.plan.action is PlanAction.BLOCKED:
        return Outcome(item.spec.name, OutcomeResult.BLOCKED, message=item.plan.blocked_reason or "")
    if not item.plan.steps:
        return Outcome(item.spec.name, _RESULT_WITHOUT_STEPS.get(item.plan.action, OutcomeResult.NO_CHANGE))
    return None


def _summary(outcome: Outcome) -> str:
    if outcome.result is OutcomeResult.FAILED:
        return f"FAILED: {outcome.message}" + (
            f" ({len(outcome.failures)} instance(s) failed)" if outcome.failures else ""
        )
    return outcome.result.value + (f": {outcome.message}" if outcome.message else "")


def blocked(planned: dict[str, Planned]) -> list[Planned]:
    return [p for p in planned.values() if p.plan.action is PlanAction.BLOCKED]
