"""The deployer's commands: ``plan``, ``apply``, ``status``, ``drift``, ``destroy``.

``python -m deploy <command> --manifest FILE [--json] [--yes] [--adopt]``. Exit status:
0 success, 1 a rollout or check failed, 2 invalid input (nothing was changed). With
``--json`` one document goes to stdout; otherwise ``plan`` writes the human plan to stdout.
Progress and logs always go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator

from deploy.common.clients import Clients, chosen_region
from deploy.common.errors import EXIT_FAILED, EXIT_OK, InputError, RolloutError
from deploy.common.redact import REDACTOR
from deploy.stacksets.aws import StackSets
from deploy.stacksets.manifest import StackSetSpec, load_manifest
from deploy.stacksets.plan import PlanAction
from deploy.stacksets.rollout import OutcomeResult, Reporter, Rollout, blocked


def make_clients() -> Clients:
    """The clients every command uses (tests replace this to count calls)."""
    return Clients()


def _context(args) -> tuple[Rollout, StackSets]:
    manifest = load_manifest(args.manifest)
    if chosen_region() and chosen_region() != manifest.admin_region:
        raise InputError(
            f"--region {chosen_region()} conflicts with the manifest's admin_region {manifest.admin_region}",
            manifest.path,
            None,
            "admin_region",
        )
    for spec in manifest.stack_sets:
        for value in spec.masked_values():
            REDACTOR.add(value)
    adapter = StackSets(make_clients(), manifest)
    reporter = Reporter(quiet=False)
    return Rollout(adapter, reporter, adopt=getattr(args, "adopt", False)), adapter


def _emit(args, document: dict) -> None:
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True, default=str))


def _plan_documents(planned) -> list[dict]:
    return [item.plan.to_dict() for item in planned.values()]


def cmd_plan(args) -> int:
    rollout, _ = _context(args)
    planned = rollout.plan(rollout.specs(), wait=False)
    # The plan is this command's output: on stdout (`plan > plan.txt`), unless --json takes stdout.
    out = None if args.json else sys.stdout
    rollout.show(planned, out)
    stuck = blocked(planned)
    changes = sum(1 for p in planned.values() if p.plan.steps)
    summary = (
        f"plan: {changes} stack set(s) to change, {len(planned) - changes - len(stuck)} unchanged, {len(stuck)} blocked"
    )
    if out is None:
        rollout.reporter.line(summary)
    else:
        print(summary, file=out)
    _emit(
        args,
        {"command": "plan", "stack_sets": _plan_documents(planned), "exit_code": EXIT_FAILED if stuck else EXIT_OK},
    )
    return EXIT_FAILED if stuck else EXIT_OK


def cmd_apply(args) -> int:
    rollout, adapter = _context(args)
    planned = rollout.plan(rollout.specs())
    rollout.show(planned)
    stuck = blocked(planned)
    if stuck:
        raise RolloutError("; ".join(p.plan.blocked_reason or p.spec.name for p in stuck) + " (nothing was changed)")
    if not any(p.plan.steps for p in planned.values()):
        rollout.reporter.line("apply: no changes")
        _emit(
            args,
            {
                "command": "apply",
                "stack_sets": [{"name": n, "result": OutcomeResult.NO_CHANGE} for n in planned],
                "exit_code": EXIT_OK,
            },
        )
        return EXIT_OK
    if not rollout.confirm_removals(planned, args.yes, "apply"):
        rollout.reporter.line("apply: cancelled, nothing was changed")
        return EXIT_FAILED
    for item in planned.values():
        if item.plan.steps:
            adapter.check_prerequisites(item.spec)
    outcomes = rollout.run(planned)
    return _report(args, rollout, "apply", outcomes, planned)


def _report(args, rollout: Rollout, command: str, outcomes, planned) -> int:
    failed = [o for o in outcomes.values() if not o.ok]
    for outcome in failed:
        rollout.reporter.line(f"{outcome.name}: {outcome.result.value}: {outcome.message}", style="bold red")
        for failure in outcome.failures:
            rollout.reporter.line(f"  {failure}", style="red")
    code = EXIT_FAILED if failed else EXIT_OK
    rollout.reporter.line(f"{command}: {len(outcomes) - len(failed)} stack set(s) ok, {len(failed)} failed")
    _emit(
        args,
        {
            "command": command,
            "stack_sets": [{**o.to_dict(), "plan": planned[o.name].plan.to_dict()} for o in outcomes.values()],
            "exit_code": code,
        },
    )
    return code


def cmd_destroy(args) -> int:
    rollout, _ = _context(args)
    planned = rollout.plan_destroy(rollout.specs(values=False))
    rollout.show(planned)
    runnable = {name: p for name, p in planned.items() if p.plan.action is not PlanAction.BLOCKED}
    if any(p.plan.steps for p in runnable.values()):
        if not rollout.confirm_removals(runnable, args.yes, "destroy"):
            rollout.reporter.line("destroy: cancelled, nothing was changed")
            return EXIT_FAILED
    outcomes = rollout.run(planned, destroy=True)
    return _report(args, rollout, "destroy", outcomes, planned)


def _deployed(rollout: Rollout, adapter: StackSets, documents: list[dict]) -> Iterator[StackSetSpec]:
    """The manifest's stack sets that exist, one at a time; the others are reported as not deployed."""
    for spec in rollout.specs():
        if adapter.describe(spec.name, spec.call_as) is None:
            documents.append({"name": spec.name, "exists": False})
            rollout.reporter.line(f"{spec.name}: not deployed")
            continue
        yield spec


def cmd_status(args) -> int:
    """Desired against live: missing and extra instances, overrides that differ, stack-set
    changes, instances not CURRENT and instances the last drift detection found DRIFTED; exit 1
    when anything differs.

    A stack deleted out of band in its account leaves its instance CURRENT (StackInstance.Status
    speaks of the last operation only): only a drift detection (``drift``) finds it, after which
    its DriftStatus DRIFTED shows here too.
    """
    rollout, _ = _context(args)
    planned = rollout.plan(rollout.specs(), full=True, wait=False)
    documents: list[dict] = []
    bad = False
    for item in planned.values():
        spec, live, plan = item.spec, item.live, item.plan
        if not live.exists:
            documents.append({"name": spec.name, "exists": False})
            rollout.reporter.line(f"{spec.name}: not deployed")
            bad = True
            continue
        instances = live.instances or ()
        by_status = Counter(i.status for i in instances)
        by_detail = Counter(i.detailed_status or "-" for i in instances)
        problems = [i for i in instances if i.status != "CURRENT"]
        drifted = [i for i in instances if i.drift_status == "DRIFTED"]
        differences = {
            "missing": plan.add,
            "extra": plan.remove,
            "overrides": plan.override_changes,
            "stack_set": [f"{c.key}: {c.old!r} -> {c.new!r}" for c in plan.property_changes]
            + [f"parameter {c.key}" for c in plan.parameter_changes]
            + (["template"] if plan.template_diff else []),
        }
        differs = any(differences.values()) or plan.action is PlanAction.BLOCKED
        bad = bad or bool(problems) or bool(drifted) or differs
        documents.append(
            {
                "name": spec.name,
                "exists": True,
                "in_sync": not differs and not problems and not drifted,
                "instances": len(instances),
                "by_status": dict(by_status),
                "by_detailed_status": dict(by_detail),
                "differences": differences,
                "blocked_reason": plan.blocked_reason,
                "not_current": [
                    {
                        "account": i.account,
                        "region": i.region,
                        "status": i.status,
                        "detailed_status": i.detailed_status,
                        "reason": i.status_reason,
                    }
                    for i in problems
                ],
                # As found by the last drift detection (``drift``): changed or deleted out of band.
                "drifted": [{"account": i.account, "region": i.region} for i in drifted],
            }
        )
        summary = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "no instances"
        detail = ", ".join(f"{k} {v}" for k, v in sorted(by_detail.items()))
        rollout.reporter.line(
            f"{spec.name}: {len(instances)} instance(s): {summary}" + (f" [{detail}]" if instances else "")
        )
        for label, items in differences.items():
            for entry in items[:50]:
                rollout.reporter.line(f"  differs ({label}): {entry}", style="yellow")
        if plan.blocked_reason:
            rollout.reporter.line(f"  BLOCKED: {plan.blocked_reason}", style="yellow")
        for inst in drifted:
            rollout.reporter.line(
                f"  {inst.account}/{inst.region}: DRIFTED at the last drift detection (changed or deleted out of band; "
                "`drift` shows what)",
                style="yellow",
            )
        for inst in problems:
            rollout.reporter.line(
                (
                    f"  {inst.account}/{inst.region}: {inst.status} "
                    f"{inst.detailed_status or ''} {inst.status_reason or ''}"
                ).rstrip(),
                style="yellow",
            )
    code = EXIT_FAILED if bad else EXIT_OK
    _emit(args, {"command": "status", "stack_sets": documents, "exit_code": code})
    return code


# DriftDetectionStatus (API reference, StackSetDriftDetectionDetails): FAILED "exceeded the
# specified failure tolerance", PARTIAL_SUCCESS "completed without exceeding the failure
# tolerance" (some instances were not checked): neither proves the stack set is in sync.
_INCOMPLETE_DETECTION = {"FAILED", "PARTIAL_SUCCESS", "STOPPED", "IN_PROGRESS"}


def cmd_drift(args) -> int:
    rollout, adapter = _context(args)
    documents: list[dict] = []
    drifted_any = False
    for spec in _deployed(rollout, adapter, documents):
        rollout.reporter.line(f"{spec.name}: detecting drift")
        op, drifted = adapter.detect_drift(spec)
        details = op.get("StackSetDriftDetectionDetails") or {}
        incomplete = op.get("Status") != "SUCCEEDED" or details.get("DriftDetectionStatus") in _INCOMPLETE_DETECTION
        drifted_any = drifted_any or bool(drifted) or details.get("DriftStatus") == "DRIFTED" or incomplete
        documents.append(
            {
                "name": spec.name,
                "exists": True,
                "operation": op.get("OperationId"),
                "status": op.get("Status"),
                "drift_status": details.get("DriftStatus"),
                "detection_status": details.get("DriftDetectionStatus"),
                "failed_instances": details.get("FailedStackInstancesCount"),
                "drifted_instances": drifted,
            }
        )
        rollout.reporter.line(
            f"{spec.name}: {details.get('DriftStatus', op.get('Status'))}, {len(drifted)} drifted instance(s)"
        )
        if incomplete:
            rollout.reporter.line(
                f"  drift detection {op.get('OperationId')} ended {op.get('Status')} / "
                f"{details.get('DriftDetectionStatus')}: {details.get('FailedStackInstancesCount', '?')} instance(s) "
                "not checked, so the stack set is not known to be in sync",
                style="yellow",
            )
        for inst in drifted:
            rollout.reporter.line(f"  {inst['account']}/{inst['region']}", style="yellow")
            for res in inst["resources"]:
                rollout.reporter.line(f"    {res['logical_id']} ({res['type']}): {res['status']}")
                for diff in res["differences"]:
                    rollout.reporter.line(
                        f"      {diff['path']}: expected {diff['expected']!r}, actual {diff['actual']!r}"
                    )
    code = EXIT_FAILED if drifted_any else EXIT_OK
    _emit(args, {"command": "drift", "stack_sets": documents, "exit_code": code})
    return code


def register(subparsers) -> None:
    """Add the deployer's commands to the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--manifest", "-m", required=True, metavar="FILE", help="the deployment manifest (YAML)")
    common.add_argument("--json", action="store_true", help="print one machine-readable document on stdout")
    confirm = argparse.ArgumentParser(add_help=False)
    confirm.add_argument(
        "--yes", "-y", action="store_true", help="do not ask before removing instances or stack sets (CI)"
    )

    commands = [
        ("plan", cmd_plan, "show what apply would change, per stack set and instance", [common]),
        (
            "apply",
            cmd_apply,
            "create/update stack sets and their instances; remove untargeted instances",
            [common, confirm],
        ),
        (
            "status",
            cmd_status,
            "desired against live per stack set (missing, extra, overrides, not CURRENT); exit 1 when any differs",
            [common],
        ),
        ("drift", cmd_drift, "run drift detection and report drifted instances and resources", [common]),
        ("destroy", cmd_destroy, "delete the manifest's stack sets that this tool created", [common, confirm]),
    ]
    for name, handler, text, parents in commands:
        parser = subparsers.add_parser(name, help=text, description=text, parents=parents)
        if name in ("plan", "apply"):
            parser.add_argument(
                "--adopt",
                action="store_true",
                help="take over a same-named stack set that lacks this tool's ownership tag",
            )
        parser.set_defaults(handler=handler)
