"""Publish the templates to AWS Service Catalog: ``python -m deploy publish --catalog FILE [--json] [--dry-run]``.

Reads the catalog file, reads what exists, plans, and (unless ``--dry-run``) applies the
plan: bucket, content-addressed template uploads, portfolio, products, versions, launch
constraints, principals, shares. A second run with unchanged templates makes no write
call. Exit 0 done (or nothing to do), 1 an AWS call failed, 2 invalid input (nothing
was changed). With ``--json`` the result document goes to stdout; people read stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from deploy.catalog.aws import CatalogPublisher, ExecutionResult, PublishFailed
from deploy.catalog.model import Catalog, load_catalog
from deploy.catalog.plan import (
    AcceptShare,
    Action,
    CreateLaunchConstraint,
    CreateProduct,
    CreateShare,
    LiveState,
    Op,
    Plan,
    UpdateLaunchConstraint,
    UpdateShare,
    UploadTemplate,
    iam_requirements,
    plan_publish,
    summarize,
)
from deploy.common.awssetup import explain
from deploy.common.clients import CallCounter, Clients, chosen_region, new_session
from deploy.common.errors import EXIT_FAILED, EXIT_OK, InputError, RolloutError

_SYMBOLS = {
    "create": "+",
    "upload": "+",
    "associate": "+",
    "accept": "+",
    "enable": "+",
    "put": "~",
    "update": "~",
    "activate": "~",
    "deactivate": "-",
    "delete": "-",
    "disassociate": "-",
    "rename": "~",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="publish templates as Service Catalog products (portfolio, versions, shares)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--catalog", required=True, metavar="FILE", help="the catalog file (see examples/catalog.yaml)")
    parser.add_argument(
        "--root",
        default=None,
        metavar="DIR",
        help="folder the catalog's template paths are relative to (default: the current folder, the repository root)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as a JSON document on stdout")
    parser.add_argument(
        "--dry-run", action="store_true", help="read and plan only: list what would change, write nothing"
    )
    parser.set_defaults(handler=run_publish)


def _symbol(op: Op) -> str:
    return _SYMBOLS.get(op.value.split("_", 1)[0], "~")


def _detail(action: Action) -> str:
    """The one fact a reader wants next to an action: which version, which key, which role."""
    if isinstance(action, CreateProduct):
        return f" (version {action.version})"
    if isinstance(action, UploadTemplate):
        return f" -> s3://{action.bucket}/{action.key}"
    if isinstance(action, (CreateLaunchConstraint, UpdateLaunchConstraint)):
        return f" (role {next(iter(action.parameters.values()))})"
    if isinstance(action, (CreateShare, UpdateShare)) and action.share_principals:
        return " (sharing principals)"
    if isinstance(action, AcceptShare):
        return f" (as role {action.role})"
    return ""


def _versions(catalog: Catalog, state: LiveState, result: ExecutionResult | None) -> list[dict]:
    out = []
    for product in catalog.products:
        live = state.products.get(product.name)
        product_id = (result.product_ids.get(product.name) if result else None) or (live.id if live else None)
        version_id = result.version_ids.get(product.name) if result else None
        if version_id is None and live:
            version_id = next(
                (
                    a.id
                    for a in sorted(live.artifacts, key=lambda a: a.created, reverse=True)
                    if a.short_hash == product.short_hash
                ),
                None,
            )
        out.append(
            {
                "name": product.name,
                "id": product_id,
                "template": product.template,
                "sha256": product.sha256,
                "version": product.version_name,
                "version_id": version_id,
                "sagemaker_project": product.sagemaker_project,
            }
        )
    return out


def _document(
    catalog: Catalog,
    identity,
    state: LiveState,
    plan: Plan,
    counter: CallCounter,
    dry_run: bool,
    result: ExecutionResult | None,
) -> dict:
    portfolio_id = (result.portfolio_id if result else None) or (state.portfolio.id if state.portfolio else None)
    changes = result.done if result else [a.to_dict() for a in plan.actions]
    return {
        "command": "publish",
        "catalog": catalog.source,
        "dry_run": dry_run,
        "account": identity.account,
        "region": identity.region,
        "bucket": state.bucket_name,
        "portfolio": {"name": catalog.portfolio_name, "id": portfolio_id},
        "products": _versions(catalog, state, result),
        "changed": bool(changes),
        "changes": changes,
        "summary": summarize(plan),
        "notes": plan.notes,
        "failed": result.failed if result else None,
        "calls": {"reads": counter.reads, "writes": counter.writes},
    }


def _print_plan(catalog: Catalog, identity, state: LiveState, plan: Plan, dry_run: bool) -> None:
    where = f"account {identity.account}, {identity.region}"
    portfolio = f"{catalog.portfolio_name!r}" + (f" ({state.portfolio.id})" if state.portfolio else " (new)")
    print(f"publish: portfolio {portfolio} in {where}, {len(catalog.products)} product(s)", file=sys.stderr)
    if not plan.actions:
        print("  up to date: every template is published as it is; nothing to change", file=sys.stderr)
    for action in plan.actions:
        print(
            f"  {_symbol(action.op)} {action.op.value.replace('_', ' ')}: {action.target}{_detail(action)}",
            file=sys.stderr,
        )
    for note in plan.notes:
        print(f"  = {note['product']} {note['version']}: {note['note']}", file=sys.stderr)
    if dry_run and plan.actions:
        print(f"dry run: {len(plan.actions)} change(s) planned, none made", file=sys.stderr)


def run_publish(args) -> int:
    catalog = load_catalog(args.catalog, root=args.root)  # InputError: exit 2 before any call
    for note in catalog.deprecations:
        print(f"note: {note}", file=sys.stderr)
    counter = CallCounter()
    if catalog.region and chosen_region() and chosen_region() != catalog.region:
        raise InputError(
            f"--region {chosen_region()} conflicts with the catalog's region {catalog.region}",
            source=catalog.source,
            key="region",
        )
    clients = Clients(session=new_session(catalog.region), counter=counter)
    try:
        publisher = CatalogPublisher(clients, catalog.region)
        identity = publisher.identity()
        catalog = publisher.resolve_targets(catalog)
        state = publisher.read_state(catalog, identity)
        # Launch roles and IAM principals must exist before the constraint / association is made:
        # checked here, and plan_publish refuses (exit 2) before any write when one is missing.
        state = replace(
            state,
            iam_existing=publisher.existing_iam(iam_requirements(catalog, identity)),
            # bucket.kms_key_id must let the publisher upload and Service Catalog read the templates:
            # plan_publish checks its key policy, and refuses (exit 2) before any write.
            template_key=publisher.read_template_key(catalog, identity),
        )
    except (ClientError, BotoCoreError) as error:
        raise explain(error) or RolloutError(f"reading the current state failed: {error}") from None
    plan = plan_publish(catalog, state, identity)  # InputError (self-share): exit 2, no write yet
    _print_plan(catalog, identity, state, plan, args.dry_run)
    if args.dry_run or not plan.actions:
        if args.json:
            print(
                json.dumps(
                    _document(catalog, identity, state, plan, counter, args.dry_run, None),
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
        return EXIT_OK
    try:
        result = publisher.execute(plan, state)
        status = EXIT_OK
    except PublishFailed as error:
        result = error.result
        print(f"error: {error}", file=sys.stderr)
        print(
            f"  {len(result.done)} of {len(plan.actions)} change(s) were made; re-run the same command to finish",
            file=sys.stderr,
        )
        status = EXIT_FAILED
    if status == EXIT_OK:
        print(f"published: {len(result.done)} change(s) made ({counter.writes} write call(s))", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                _document(catalog, identity, state, plan, counter, False, result), indent=2, sort_keys=True, default=str
            )
        )
    return status
