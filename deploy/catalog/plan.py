"""The pure plan that publishes a catalog to Service Catalog.

``plan_publish`` compares the desired catalog (:mod:`deploy.catalog.model`) with the live
state read by :mod:`deploy.catalog.aws` and returns the list of actions to take. Nothing
here talks to AWS: the plan is a function of plain data, unit-testable without any client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deploy.catalog.model import (
    ACCOUNT_ID_PATTERN,
    OU_ID_PATTERN,
    SHORT_HASH_RE,
    STUDIO_VISIBILITY_TAG,
    Catalog,
    ProductSpec,
    VersionPolicy,
)
from deploy.common.errors import InputError
from deploy.common.ownership import LEGACY_OWNER_TAG_KEYS, owned

# --- live state, as read by deploy.catalog.aws ---------------------------------------------


@dataclass(frozen=True)
class Identity:
    account: str
    partition: str
    region: str


@dataclass(frozen=True)
class BucketState:
    exists: bool = False
    encrypted: bool = False  # SSE-KMS by default
    versioned: bool = False
    public_access_blocked: bool = False
    keys: frozenset = frozenset()  # the content-addressed keys the catalog needs that exist


@dataclass(frozen=True)
class ArtifactState:
    id: str
    name: str
    created: str  # ISO 8601, sortable
    active: bool = True
    guidance: str = "DEFAULT"

    @property
    def short_hash(self) -> str | None:
        match = SHORT_HASH_RE.search(self.name)
        return match.group(1) if match else None


@dataclass(frozen=True)
class ProductState:
    id: str
    name: str
    fields: dict = field(default_factory=dict)  # UpdateProduct names -> values
    tags: dict = field(default_factory=dict)
    artifacts: tuple[ArtifactState, ...] = ()
    in_portfolio: bool = False


@dataclass(frozen=True)
class ConstraintState:
    id: str
    product_id: str
    type: str
    parameters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ShareState:
    share_principals: bool = False
    share_tag_options: bool = False
    accepted: bool = True


@dataclass(frozen=True)
class PortfolioState:
    id: str
    name: str
    description: str = ""
    provider: str = ""
    tags: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LiveState:
    bucket_name: str
    bucket: BucketState = BucketState()
    portfolio: PortfolioState | None = None
    products: dict = field(default_factory=dict)  # catalog name -> ProductState
    foreign_products: tuple[ProductState, ...] = ()  # in the portfolio, not in the catalog
    constraints: tuple[ConstraintState, ...] = ()
    principals: frozenset = frozenset()  # {(arn, type)}
    account_shares: dict = field(default_factory=dict)  # account id -> ShareState
    node_shares: dict = field(default_factory=dict)  # (type, value) -> ShareState
    organization_id: str | None = None
    organizations_access: str | None = None  # ENABLED / DISABLED / None (not read)
    in_use: frozenset = frozenset()  # provisioning artifact ids used by provisioned products
    recipient_principals: dict = field(default_factory=dict)  # account -> {(arn, type)} on the imported portfolio


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One change: ``op`` names the executor step, ``target`` what it acts on, ``params`` its data."""

    op: str
    target: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"action": self.op, "target": self.target, **{k: v for k, v in self.params.items() if k != "body"}}


WRITE_OPS = frozenset(
    {
        "create_bucket",
        "put_bucket_encryption",
        "put_bucket_versioning",
        "put_public_access_block",
        "upload_template",
        "create_portfolio",
        "update_portfolio",
        "create_product",
        "update_product",
        "create_version",
        "activate_version",
        "deactivate_version",
        "delete_version",
        "associate_product",
        "create_launch_constraint",
        "update_launch_constraint",
        "delete_constraint",
        "disassociate_product",
        "associate_principal",
        "disassociate_principal",
        "enable_organizations_access",
        "create_share",
        "update_share",
        "delete_share",
        "accept_share",
        "associate_recipient_principal",
    }
)


def is_account_id(value: str) -> bool:
    return re.fullmatch(ACCOUNT_ID_PATTERN, value) is not None


def is_ou_id(value: str) -> bool:
    return re.fullmatch(OU_ID_PATTERN, value) is not None


def check_against_identity(catalog: Catalog, identity: Identity) -> None:
    """Input checks that need the caller's account: never share a portfolio with its own account."""
    if identity.account in catalog.shares.accounts:
        index = catalog.shares.accounts.index(identity.account)
        raise InputError(
            f"{identity.account} is the publishing account itself; a portfolio cannot be shared with its own account",
            source=catalog.source,
            where="shares",
            key=f"shares.accounts[{index}]",
        )


def default_bucket_name(identity: Identity) -> str:
    return f"sm-catalog-templates-{identity.account}-{identity.region}"


def retain_versions(
    artifacts, current_id: str | None, policy: VersionPolicy, in_use: frozenset
) -> tuple[list, list, list]:
    """Which versions to deactivate, delete, and keep although too old because they are in use.

    The current version (``current_id``; None when it is about to be created) counts first,
    then the others newest first: the first ``keep_active`` stay active, versions past
    ``keep`` are deleted unless a provisioned product uses them.
    """
    others = sorted((a for a in artifacts if a.id != current_id), key=lambda a: (a.created, a.id), reverse=True)
    ranked = ([None] if current_id is None else [a for a in artifacts if a.id == current_id]) + others
    deactivate, delete, kept_in_use = [], [], []
    for position, artifact in enumerate(ranked):
        if artifact is None:
            continue
        if policy.keep is not None and position >= policy.keep:
            (kept_in_use if artifact.id in in_use else delete).append(artifact)
            if artifact.id in in_use and artifact.active:
                deactivate.append(artifact)
        elif position >= policy.keep_active and artifact.active:
            deactivate.append(artifact)
    return deactivate, delete, kept_in_use


def _tag_changes(desired: dict, live: dict, managed_keys=()) -> tuple[dict, list]:
    add = {k: v for k, v in desired.items() if live.get(k) != v}
    remove = sorted(k for k in managed_keys if k in live and k not in desired)
    return add, remove


def _plan_bucket(catalog: Catalog, state: LiveState) -> list[Action]:
    bucket, name = state.bucket, state.bucket_name
    actions = []
    if not bucket.exists:
        actions.append(Action("create_bucket", name))
    if not bucket.encrypted:
        actions.append(Action("put_bucket_encryption", name, {"kms_key_id": catalog.kms_key_id or "aws/s3"}))
    if not bucket.versioned:
        actions.append(Action("put_bucket_versioning", name))
    if not bucket.public_access_blocked:
        actions.append(Action("put_public_access_block", name))
    for product in catalog.products:
        key = catalog.s3_key(product)
        if key not in bucket.keys and all(a.params.get("key") != key for a in actions):
            actions.append(
                Action(
                    "upload_template",
                    product.template,
                    {"bucket": name, "key": key, "path": str(product.path), "sha256": product.sha256},
                )
            )
    return actions


def _plan_portfolio(catalog: Catalog, state: LiveState) -> list[Action]:
    desired_tags = catalog.desired_portfolio_tags()
    if state.portfolio is None:
        return [
            Action(
                "create_portfolio",
                catalog.portfolio_name,
                {"provider": catalog.provider, "description": catalog.portfolio_description, "tags": desired_tags},
            )
        ]
    live = state.portfolio
    changes: dict[str, Any] = {}
    if live.provider != catalog.provider:
        changes["provider"] = catalog.provider
    if (live.description or "") != catalog.portfolio_description:
        changes["description"] = catalog.portfolio_description
    add, _ = _tag_changes(desired_tags, live.tags)
    if add:
        changes["add_tags"] = add
    return [Action("update_portfolio", catalog.portfolio_name, changes)] if changes else []


def _version_params(catalog: Catalog, product: ProductSpec, bucket: str) -> dict:
    return {
        "product": product.name,
        "version": product.version_name,
        "description": product.version_description,
        "bucket": bucket,
        "key": catalog.s3_key(product),
        "sha256": product.sha256,
    }


def _plan_product(
    catalog: Catalog, state: LiveState, product: ProductSpec
) -> tuple[list[Action], list[Action], list[dict]]:
    """(changes to make now, old-version housekeeping to do last, notes) for one product."""
    live: ProductState | None = state.products.get(product.name)
    now: list[Action] = []
    later: list[Action] = []
    notes: list[dict] = []
    if live is None:
        now.append(
            Action(
                "create_product",
                product.name,
                {
                    **_version_params(catalog, product, state.bucket_name),
                    "fields": product.fields(),
                    "tags": product.desired_tags(),
                },
            )
        )
        current_id = None
        artifacts: tuple = ()
    else:
        changes: dict[str, Any] = {}
        fields = {k: v for k, v in product.fields().items() if (live.fields.get(k) or "") != v}
        if fields:
            changes["fields"] = fields
        add, remove = _tag_changes(
            product.desired_tags(), live.tags, managed_keys=(STUDIO_VISIBILITY_TAG, *LEGACY_OWNER_TAG_KEYS)
        )
        if add:
            changes["add_tags"] = add
        if remove:
            changes["remove_tags"] = remove
        if changes:
            now.append(Action("update_product", product.name, {"product": product.name, **changes}))
        artifacts = live.artifacts
        matching = sorted(
            (a for a in artifacts if a.short_hash == product.short_hash), key=lambda a: (a.created, a.id), reverse=True
        )
        if matching:
            current = matching[0]
            current_id = current.id
            if not current.active:
                now.append(
                    Action(
                        "activate_version",
                        f"{product.name} {current.name}",
                        {"product": product.name, "version_id": current.id, "version": current.name},
                    )
                )
        else:
            current_id = None
            now.append(
                Action(
                    "create_version",
                    f"{product.name} {product.version_name}",
                    _version_params(catalog, product, state.bucket_name),
                )
            )
    deactivate, delete, kept = retain_versions(artifacts, current_id, product.versions, state.in_use)
    for artifact in deactivate:
        later.append(
            Action(
                "deactivate_version",
                f"{product.name} {artifact.name}",
                {"product": product.name, "version_id": artifact.id, "version": artifact.name},
            )
        )
    for artifact in delete:
        later.append(
            Action(
                "delete_version",
                f"{product.name} {artifact.name}",
                {"product": product.name, "version_id": artifact.id, "version": artifact.name},
            )
        )
    for artifact in kept:
        notes.append(
            {
                "product": product.name,
                "version": artifact.name,
                "note": "older than 'keep' but used by a provisioned product: kept (inactive)",
            }
        )
    if live is None or not live.in_portfolio:
        now.append(
            Action("associate_product", f"{product.name} -> {catalog.portfolio_name}", {"product": product.name})
        )
    if product.launch_role:
        wanted = product.launch_role.parameters()
        existing = [c for c in state.constraints if c.type == "LAUNCH" and live is not None and c.product_id == live.id]
        if not existing:
            now.append(
                Action("create_launch_constraint", product.name, {"product": product.name, "parameters": wanted})
            )
        elif existing[0].parameters != wanted:
            now.append(
                Action(
                    "update_launch_constraint",
                    product.name,
                    {"product": product.name, "constraint_id": existing[0].id, "parameters": wanted},
                )
            )
    return now, later, notes


def recipient_principals(catalog: Catalog, identity: Identity, account: str) -> set[tuple[str, str]]:
    """The catalog's principals as they apply in recipient ``account`` of an account share."""
    out = set()
    for principal in catalog.principals:
        if principal.kind != "arn":
            out.add(principal.resolve(identity.partition, account))
        elif principal.value.split(":")[4] == account:
            out.add((principal.value, "IAM"))
    return out


def _plan_access(catalog: Catalog, state: LiveState, identity: Identity) -> list[Action]:
    actions = []
    desired = {p.resolve(identity.partition, identity.account) for p in catalog.principals}
    for arn, kind in sorted(desired - set(state.principals)):
        actions.append(Action("associate_principal", arn, {"arn": arn, "type": kind}))
    shares = catalog.shares
    flags = ShareState(share_principals=shares.share_principals, share_tag_options=shares.share_tag_options)
    nodes = {("ORGANIZATIONAL_UNIT", ou) for ou in shares.organizational_units}
    if shares.organization:
        nodes.add(("ORGANIZATION", state.organization_id or "<organization id>"))
    if nodes and state.organizations_access != "ENABLED":
        actions.append(Action("enable_organizations_access", "Service Catalog organization sharing"))
    for account in shares.accounts:
        live = state.account_shares.get(account)
        # Principal sharing exists for organization shares only: an account share carries
        # none, and the recipient's principals are associated in the recipient account.
        params = {"account": account, "share_principals": False, "share_tag_options": shares.share_tag_options}
        if live is None:
            actions.append(Action("create_share", f"account {account}", params))
        elif (live.share_principals, live.share_tag_options) != (False, shares.share_tag_options):
            actions.append(Action("update_share", f"account {account}", params))
        if not shares.accept_role:
            continue
        if live is None or not live.accepted:
            actions.append(
                Action("accept_share", f"account {account}", {"account": account, "role": shares.accept_role})
            )
        have = state.recipient_principals.get(account, frozenset())
        for arn, kind in sorted(recipient_principals(catalog, identity, account) - have):
            actions.append(
                Action(
                    "associate_recipient_principal",
                    f"{arn} in {account}",
                    {"account": account, "role": shares.accept_role, "arn": arn, "type": kind},
                )
            )
    for node_type, value in sorted(nodes):
        live = state.node_shares.get((node_type, value))
        node = {
            "node_type": node_type,
            "node": value,
            "share_principals": flags.share_principals,
            "share_tag_options": flags.share_tag_options,
        }
        if live is None:
            actions.append(Action("create_share", f"{node_type.lower()} {value}", node))
        elif (live.share_principals, live.share_tag_options) != (flags.share_principals, flags.share_tag_options):
            actions.append(Action("update_share", f"{node_type.lower()} {value}", node))
    return actions


def _plan_removals(catalog: Catalog, state: LiveState, identity: Identity) -> list[Action]:
    """What the catalog no longer lists: principals, shares, and products this tool put in the portfolio."""
    actions = []
    desired = {p.resolve(identity.partition, identity.account) for p in catalog.principals}
    for arn, kind in sorted(set(state.principals) - desired):
        actions.append(Action("disassociate_principal", arn, {"arn": arn, "type": kind}))
    for account in sorted(set(state.account_shares) - set(catalog.shares.accounts)):
        actions.append(Action("delete_share", f"account {account}", {"account": account}))
    wanted_nodes = {("ORGANIZATIONAL_UNIT", ou) for ou in catalog.shares.organizational_units}
    if catalog.shares.organization:
        wanted_nodes.add(("ORGANIZATION", state.organization_id or "<organization id>"))
    for node_type, value in sorted(set(state.node_shares) - wanted_nodes):
        actions.append(Action("delete_share", f"{node_type.lower()} {value}", {"node_type": node_type, "node": value}))
    for product in state.foreign_products:
        if not owned(product.tags):
            continue  # not ours: never touched
        for constraint in state.constraints:
            if constraint.product_id == product.id:
                actions.append(
                    Action("delete_constraint", f"{product.name} {constraint.type}", {"constraint_id": constraint.id})
                )
        actions.append(
            Action(
                "disassociate_product",
                f"{product.name} -x- {catalog.portfolio_name}",
                {"product_id": product.id, "product": product.name},
            )
        )
    return actions


@dataclass
class Plan:
    actions: list[Action]
    notes: list[dict]

    @property
    def writes(self) -> list[Action]:
        return [a for a in self.actions if a.op in WRITE_OPS]


def plan_publish(catalog: Catalog, state: LiveState, identity: Identity) -> Plan:
    """Actions turning ``state`` into ``catalog``, in execution order; empty when nothing changed."""
    check_against_identity(catalog, identity)
    actions = _plan_bucket(catalog, state) + _plan_portfolio(catalog, state)
    housekeeping, notes = [], []
    for product in catalog.products:
        now, later, product_notes = _plan_product(catalog, state, product)
        actions += now
        housekeeping += later
        notes += product_notes
    actions += _plan_access(catalog, state, identity)
    actions += housekeeping
    actions += _plan_removals(catalog, state, identity)
    return Plan(actions=actions, notes=notes)


def summarize(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in plan.actions:
        counts[action.op] = counts.get(action.op, 0) + 1
    return dict(sorted(counts.items()))
