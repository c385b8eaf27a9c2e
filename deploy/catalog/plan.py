"""The pure plan that publishes a catalog to Service Catalog.

Three parts: the live state (frozen dataclasses filled by :mod:`deploy.catalog.aws`), the
actions (one frozen dataclass per kind, such as ``CreateBucket`` or ``CreateVersion``, each
holding exactly what its executor step needs; ``Op`` names the kinds, ``to_dict()`` is what
``--json`` and ``--dry-run`` show), and ``plan_publish``, which compares the desired catalog
(:mod:`deploy.catalog.model`) with the live state and returns the actions in execution
order: bucket, portfolio, products and versions, principals and shares, housekeeping of old
versions, removals. Nothing here talks to AWS: the plan is a function of plain data,
unit-testable without any client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from deploy.catalog.key_access import Caller, key_policy_problem
from deploy.catalog.model import (
    SHORT_HASH_RE,
    STUDIO_VISIBILITY_TAG,
    Catalog,
    PrincipalKind,
    PrincipalType,
    ProductSpec,
    StrEnum,
    VersionPolicy,
)
from deploy.common.buckets import HARDENING, Hardening
from deploy.common.errors import InputError
from deploy.common.ownership import LEGACY_OWNER_TAG_KEYS, owned

# --- live state, as read by deploy.catalog.aws ---------------------------------------------


@dataclass(frozen=True)
class Identity:
    account: str
    partition: str
    region: str
    arn: str = ""  # the caller (GetCallerIdentity), whose requests S3 checks against the catalog's KMS key


@dataclass(frozen=True)
class TemplateKeyState:
    """The catalog's ``bucket.kms_key_id`` as KMS describes it (read only when it is set)."""

    key_id: str  # as written in the catalog
    arn: str | None = None
    manager: str | None = None  # CUSTOMER, or AWS for an AWS managed key
    state: str | None = None  # KeyState: Enabled, Disabled, PendingDeletion...
    policy: dict | None = None  # the "default" key policy, parsed
    unreadable: str | None = None  # why the key or its policy could not be read


@dataclass(frozen=True)
class BucketState:
    exists: bool = False
    encrypted: bool = False  # SSE-KMS by default
    kms_key_id: str | None = None  # the default encryption's key (None: the aws/s3 key)
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


class ShareKind(StrEnum):
    """Whom a portfolio share is with (Service Catalog's share and organization node types)."""

    ACCOUNT = "ACCOUNT"
    ORGANIZATION = "ORGANIZATION"
    ORGANIZATIONAL_UNIT = "ORGANIZATIONAL_UNIT"
    # An account of the caller's Organization shared as an organization node (OrganizationNode
    # type ACCOUNT; DescribePortfolioShares lists it as ORGANIZATION_MEMBER_ACCOUNT): imported
    # automatically, principals shared like an OU share, no acceptance role needed.
    ORGANIZATION_MEMBER_ACCOUNT = "ORGANIZATION_MEMBER_ACCOUNT"


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
    principals: frozenset[tuple[str, str]] = frozenset()  # {(arn, type)}
    account_shares: dict[str, ShareState] = field(default_factory=dict)  # account id -> ShareState
    node_shares: dict[tuple[str, str], ShareState] = field(default_factory=dict)  # (ShareKind, value) -> ShareState
    organization_id: str | None = None
    organizations_access: str | None = None  # ENABLED / DISABLED / None (not read)
    in_use: frozenset = frozenset()  # provisioning artifact ids used by provisioned products
    # Whether ``in_use`` covers every account that can launch from the portfolio: the publishing
    # account and each account share read through accept_role. Organization shares (OUs, the
    # organization, member accounts) cannot be scanned from here, so versions are then never deleted.
    in_use_complete: bool = True
    recipient_principals: dict = field(default_factory=dict)  # account -> {(arn, type)} on the imported portfolio
    # The ARNs among iam_requirements() that exist in the publishing account (None: not checked).
    iam_existing: frozenset[str] | None = None
    template_key: TemplateKeyState | None = None  # read when the catalog sets bucket.kms_key_id


# --- the plan ---------------------------------------------------------------------------


class Op(StrEnum):
    """Every kind of action the plan can hold, named as in ``--json`` and the ``--dry-run`` listing."""

    CREATE_BUCKET = "create_bucket"
    PUT_BUCKET_ENCRYPTION = "put_bucket_encryption"
    PUT_BUCKET_VERSIONING = "put_bucket_versioning"
    PUT_PUBLIC_ACCESS_BLOCK = "put_public_access_block"
    UPLOAD_TEMPLATE = "upload_template"
    CREATE_PORTFOLIO = "create_portfolio"
    UPDATE_PORTFOLIO = "update_portfolio"
    CREATE_PRODUCT = "create_product"
    UPDATE_PRODUCT = "update_product"
    CREATE_VERSION = "create_version"
    ACTIVATE_VERSION = "activate_version"
    RENAME_VERSION = "rename_version"
    DEACTIVATE_VERSION = "deactivate_version"
    DELETE_VERSION = "delete_version"
    ASSOCIATE_PRODUCT = "associate_product"
    CREATE_LAUNCH_CONSTRAINT = "create_launch_constraint"
    UPDATE_LAUNCH_CONSTRAINT = "update_launch_constraint"
    DELETE_CONSTRAINT = "delete_constraint"
    DISASSOCIATE_PRODUCT = "disassociate_product"
    ASSOCIATE_PRINCIPAL = "associate_principal"
    DISASSOCIATE_PRINCIPAL = "disassociate_principal"
    ENABLE_ORGANIZATIONS_ACCESS = "enable_organizations_access"
    CREATE_SHARE = "create_share"
    UPDATE_SHARE = "update_share"
    DELETE_SHARE = "delete_share"
    ACCEPT_SHARE = "accept_share"
    ASSOCIATE_RECIPIENT_PRINCIPAL = "associate_recipient_principal"
    DISASSOCIATE_RECIPIENT_PRINCIPAL = "disassociate_recipient_principal"


# A field with this metadata is the executor's alone: not listed in ``params`` / ``to_dict()``.
_INTERNAL = {"param": False}


@dataclass(frozen=True)
class Action:
    """One change. Each kind is a subclass carrying exactly the data its executor step needs;
    ``op`` names the kind, ``target`` what it acts on, ``params`` the data shown to people."""

    op: ClassVar[Op]
    writes: ClassVar[bool] = True  # every kind so far makes one write call

    @property
    def target(self) -> str:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        """The public fields (internal ones and unset ``None`` ones left out)."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self) if f.metadata.get("param", True))
        return {name: value for name, value in values if value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.op.value, "target": self.target, **self.params}


@dataclass(frozen=True)
class _BucketAction(Action):
    bucket: str = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return self.bucket


@dataclass(frozen=True)
class CreateBucket(_BucketAction):
    op = Op.CREATE_BUCKET


@dataclass(frozen=True)
class PutBucketEncryption(_BucketAction):
    op = Op.PUT_BUCKET_ENCRYPTION
    kms_key_id: str | None = field(default=None, metadata=_INTERNAL)  # None: the aws/s3 key

    @property
    def params(self) -> dict[str, Any]:
        return {"kms_key_id": self.kms_key_id or "aws/s3"}


@dataclass(frozen=True)
class PutBucketVersioning(_BucketAction):
    op = Op.PUT_BUCKET_VERSIONING


@dataclass(frozen=True)
class PutPublicAccessBlock(_BucketAction):
    op = Op.PUT_PUBLIC_ACCESS_BLOCK


@dataclass(frozen=True)
class UploadTemplate(Action):
    op = Op.UPLOAD_TEMPLATE
    template: str = field(metadata=_INTERNAL)  # as written in the catalog
    bucket: str
    key: str
    path: str
    sha256: str
    body: bytes = field(repr=False, metadata=_INTERNAL)
    kms_key_id: str | None = field(default=None, metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return self.template


@dataclass(frozen=True)
class CreatePortfolio(Action):
    op = Op.CREATE_PORTFOLIO
    name: str = field(metadata=_INTERNAL)
    provider: str
    description: str
    tags: dict[str, str]

    @property
    def target(self) -> str:
        return self.name


@dataclass(frozen=True)
class UpdatePortfolio(Action):
    """Only the attributes that differ; ``None`` leaves one as it is."""

    op = Op.UPDATE_PORTFOLIO
    name: str = field(metadata=_INTERNAL)
    provider: str | None = None
    description: str | None = None
    add_tags: dict[str, str] | None = None

    @property
    def target(self) -> str:
        return self.name


@dataclass(frozen=True)
class _ProductAction(Action):
    product: str

    @property
    def target(self) -> str:
        return self.product


@dataclass(frozen=True)
class _NewVersionAction(_ProductAction):
    """A version (provisioning artifact) to create from the uploaded template."""

    version: str
    description: str
    bucket: str
    key: str
    sha256: str

    @property
    def target(self) -> str:
        return f"{self.product} {self.version}"


@dataclass(frozen=True)
class CreateVersion(_NewVersionAction):
    op = Op.CREATE_VERSION


@dataclass(frozen=True)
class CreateProduct(_NewVersionAction):
    """A new product with its first version."""

    op = Op.CREATE_PRODUCT
    fields: dict[str, str] = field(default_factory=dict)  # UpdateProduct names -> values
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.product


@dataclass(frozen=True)
class UpdateProduct(_ProductAction):
    """Only what differs; ``None`` leaves it as it is."""

    op = Op.UPDATE_PRODUCT
    fields: dict[str, str] | None = None
    add_tags: dict[str, str] | None = None
    remove_tags: list[str] | None = None


@dataclass(frozen=True)
class _VersionAction(_ProductAction):
    version_id: str
    version: str

    @property
    def target(self) -> str:
        return f"{self.product} {self.version}"


@dataclass(frozen=True)
class ActivateVersion(_VersionAction):
    """Active again, with guidance DEFAULT (a version deprecated out of band is current again)."""

    op = Op.ACTIVATE_VERSION


@dataclass(frozen=True)
class RenameVersion(_VersionAction):
    """The current version's name follows the catalog's ``version_label`` (same content, new label)."""

    op = Op.RENAME_VERSION
    new_name: str


@dataclass(frozen=True)
class DeactivateVersion(_VersionAction):
    op = Op.DEACTIVATE_VERSION


@dataclass(frozen=True)
class DeleteVersion(_VersionAction):
    op = Op.DELETE_VERSION


@dataclass(frozen=True)
class AssociateProduct(_ProductAction):
    op = Op.ASSOCIATE_PRODUCT
    portfolio: str = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return f"{self.product} -> {self.portfolio}"


@dataclass(frozen=True)
class CreateLaunchConstraint(_ProductAction):
    op = Op.CREATE_LAUNCH_CONSTRAINT
    parameters: dict[str, str]


@dataclass(frozen=True)
class UpdateLaunchConstraint(_ProductAction):
    op = Op.UPDATE_LAUNCH_CONSTRAINT
    constraint_id: str
    parameters: dict[str, str]


@dataclass(frozen=True)
class DeleteConstraint(Action):
    op = Op.DELETE_CONSTRAINT
    product: str = field(metadata=_INTERNAL)
    constraint_type: str = field(metadata=_INTERNAL)
    constraint_id: str

    @property
    def target(self) -> str:
        return f"{self.product} {self.constraint_type}"


@dataclass(frozen=True)
class DisassociateProduct(Action):
    op = Op.DISASSOCIATE_PRODUCT
    product_id: str
    product: str
    portfolio: str = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return f"{self.product} -x- {self.portfolio}"


@dataclass(frozen=True)
class _PrincipalAction(Action):
    arn: str
    type: str  # a PrincipalType, or what Service Catalog reports for one read live

    @property
    def target(self) -> str:
        return self.arn


@dataclass(frozen=True)
class AssociatePrincipal(_PrincipalAction):
    op = Op.ASSOCIATE_PRINCIPAL


@dataclass(frozen=True)
class DisassociatePrincipal(_PrincipalAction):
    op = Op.DISASSOCIATE_PRINCIPAL


@dataclass(frozen=True)
class EnableOrganizationsAccess(Action):
    op = Op.ENABLE_ORGANIZATIONS_ACCESS

    @property
    def target(self) -> str:
        return "Service Catalog organization sharing"


@dataclass(frozen=True)
class ShareTarget:
    """Whom a portfolio is shared with: an account, an OU or the organization."""

    kind: ShareKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.lower()} {self.value}"

    def params(self) -> dict[str, str]:
        if self.kind == ShareKind.ACCOUNT:
            return {"account": self.value}
        return {"node_type": self.kind, "node": self.value}


@dataclass(frozen=True)
class _ShareAction(Action):
    share: ShareTarget = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return str(self.share)

    @property
    def params(self) -> dict[str, Any]:
        return {**self.share.params(), **super().params}


@dataclass(frozen=True)
class _ShareSettingsAction(_ShareAction):
    share_principals: bool = False
    share_tag_options: bool = False


@dataclass(frozen=True)
class CreateShare(_ShareSettingsAction):
    op = Op.CREATE_SHARE


@dataclass(frozen=True)
class UpdateShare(_ShareSettingsAction):
    op = Op.UPDATE_SHARE


@dataclass(frozen=True)
class DeleteShare(_ShareAction):
    op = Op.DELETE_SHARE


@dataclass(frozen=True)
class AcceptShare(Action):
    """Accept an account share in the recipient account, as its role ``role``."""

    op = Op.ACCEPT_SHARE
    account: str
    role: str
    partition: str = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return f"account {self.account}"


@dataclass(frozen=True)
class _RecipientPrincipalAction(Action):
    account: str
    role: str
    arn: str
    type: str  # a PrincipalType, or what Service Catalog reports for one read live
    partition: str = field(metadata=_INTERNAL)

    @property
    def target(self) -> str:
        return f"{self.arn} in {self.account}"


@dataclass(frozen=True)
class AssociateRecipientPrincipal(_RecipientPrincipalAction):
    """Associate a principal with the imported portfolio, in the recipient account."""

    op = Op.ASSOCIATE_RECIPIENT_PRINCIPAL


@dataclass(frozen=True)
class DisassociateRecipientPrincipal(_RecipientPrincipalAction):
    """Remove a principal the catalog no longer lists from the imported portfolio, in the recipient account."""

    op = Op.DISASSOCIATE_RECIPIENT_PRINCIPAL


def check_against_identity(catalog: Catalog, identity: Identity) -> None:
    """Input checks that need the caller's account: never share a portfolio with its own account."""
    if identity.account in catalog.shares.member_accounts:
        index = catalog.shares.member_accounts.index(identity.account)
        raise InputError(
            f"{identity.account} is the publishing account itself; a portfolio cannot be shared with its own account",
            source=catalog.source,
            where="shares",
            key=f"shares.member_accounts[{index}]",
        )
    if identity.account in catalog.shares.accounts:
        index = catalog.shares.accounts.index(identity.account)
        raise InputError(
            f"{identity.account} is the publishing account itself; a portfolio cannot be shared with its own account",
            source=catalog.source,
            where="shares",
            key=f"shares.accounts[{index}]",
        )


@dataclass(frozen=True)
class IamRequirement:
    """An IAM role, user or group of the publishing account that publishing needs to exist."""

    arn: str
    where: str
    key: str
    why: str


def iam_requirements(catalog: Catalog, identity: Identity) -> list[IamRequirement]:
    """What must exist in the publishing account before the first write.

    Launch constraints (CreateConstraint, LAUNCH): "The given role name must exist in the
    account used to create the launch constraint and the account of the user who launches a
    product with this launch constraint." IAM principals (AssociatePrincipalWithPortfolio):
    "the PrincipalARN must already exist in the recipient account before it can be associated."
    Principals and roles of other accounts are checked there, not here.
    """
    out: list[IamRequirement] = []
    seen: set[str] = set()
    for product in catalog.products:
        role = product.launch_role
        if role is None:
            continue
        arn = role.arn or f"arn:{identity.partition}:iam::{identity.account}:role/{role.name}"
        if arn.split(":")[4] == identity.account and arn not in seen:
            seen.add(arn)
            out.append(IamRequirement(arn, f"product '{product.name}'", "launch_role", "launch constraint role"))
    for index, principal in enumerate(catalog.principals):
        if principal.kind == PrincipalKind.ROLE_PATTERN:
            continue  # "You can associate multiple IAM_PATTERNs even if the account has no principal with that name."
        arn, _ = principal.resolve(identity.partition, identity.account)
        if arn.split(":")[4] == identity.account and arn not in seen:
            seen.add(arn)
            out.append(IamRequirement(arn, "principals", f"principals[{index}].{principal.kind}", "IAM principal"))
    return out


def check_iam_requirements(catalog: Catalog, identity: Identity, existing: frozenset[str]) -> None:
    """InputError (exit 2, before any write) naming every required role or principal that does not exist."""
    missing = [r for r in iam_requirements(catalog, identity) if r.arn not in existing]
    if not missing:
        return
    listed = "; ".join(f"{r.why} {r.arn} ({r.where}, {r.key})" for r in missing)
    raise InputError(
        f"{len(missing)} IAM role(s) or principal(s) do not exist in the publishing account {identity.account}: "
        f"{listed}. Create them first (the launch role: deploy templates/servicecatalog-launch-role.yaml to this "
        "account, see examples/manifest.yaml), or change the catalog",
        source=catalog.source,
        where=missing[0].where,
        key=missing[0].key,
    )


def idempotency_token(*parts: str) -> str:
    """A Service Catalog IdempotencyToken derived from what is created: a retried request
    (after a timeout, or when SearchProductsAsAdmin does not list the product yet) sends the
    same token and gets the same resource back instead of a duplicate."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"sm-{digest[:60]}"  # pattern [a-zA-Z0-9][a-zA-Z0-9_-]*, at most 128


def default_bucket_name(identity: Identity) -> str:
    return f"sm-catalog-templates-{identity.account}-{identity.region}"


def retain_versions(
    artifacts: Iterable[ArtifactState], current_id: str | None, policy: VersionPolicy, in_use: frozenset[str]
) -> tuple[list[ArtifactState], list[ArtifactState], list[ArtifactState]]:
    """Which versions to deactivate, delete, and keep although too old because they are in use.

    The current version (``current_id``; None when it is about to be created) counts first,
    then the others newest first: the first ``keep_active`` stay active, versions past
    ``keep`` are deleted unless a provisioned product uses them. Versions created after the
    current one hold content the catalog rolled back from: they are deactivated wherever
    they rank, so the current version is the newest one users can launch.
    """
    artifacts = list(artifacts)
    others = sorted((a for a in artifacts if a.id != current_id), key=lambda a: (a.created, a.id), reverse=True)
    current: list[ArtifactState | None] = [None] if current_id is None else [a for a in artifacts if a.id == current_id]
    newest_allowed = (current[0].created, current[0].id) if current and current[0] is not None else None
    ranked = current + others
    deactivate: list[ArtifactState] = []
    delete: list[ArtifactState] = []
    kept_in_use: list[ArtifactState] = []
    for position, artifact in enumerate(ranked):
        if artifact is None:
            continue
        superseded = newest_allowed is not None and (artifact.created, artifact.id) > newest_allowed
        if policy.keep is not None and position >= policy.keep:
            (kept_in_use if artifact.id in in_use else delete).append(artifact)
            if artifact.id in in_use and artifact.active:
                deactivate.append(artifact)
        elif (position >= policy.keep_active or superseded) and artifact.active:
            deactivate.append(artifact)
    return deactivate, delete, kept_in_use


def _tag_changes(
    desired: dict[str, str], live: dict[str, str], managed_keys: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    add = {k: v for k, v in desired.items() if live.get(k) != v}
    remove = sorted(k for k in managed_keys if k in live and k not in desired)
    return add, remove


def same_kms_key(live: str | None, wanted: str | None) -> bool:
    """Whether the bucket's default key is the catalog's (None, "aws/s3" and "alias/aws/s3": the AWS managed key).

    A key named by alias and read back as an ARN compares by its last part only when both are ids.
    """
    managed = {None, "", "aws/s3", "alias/aws/s3"}
    if live in managed or wanted in managed:
        return live in managed and wanted in managed
    assert live is not None and wanted is not None
    return live == wanted or live.rsplit("/", 1)[-1] == wanted.rsplit("/", 1)[-1]


def _plan_bucket(catalog: Catalog, state: LiveState) -> list[Action]:
    bucket, name = state.bucket, state.bucket_name
    actions: list[Action] = []
    if not bucket.exists:
        actions.append(CreateBucket(name))
    missing = {
        Hardening.ENCRYPTION: not bucket.encrypted or not same_kms_key(bucket.kms_key_id, catalog.kms_key_id),
        Hardening.VERSIONING: not bucket.versioned,
        Hardening.PUBLIC_ACCESS_BLOCK: not bucket.public_access_blocked,
    }
    hardening: dict[Hardening, Action] = {
        Hardening.ENCRYPTION: PutBucketEncryption(name, catalog.kms_key_id),
        Hardening.VERSIONING: PutBucketVersioning(name),
        Hardening.PUBLIC_ACCESS_BLOCK: PutPublicAccessBlock(name),
    }
    actions += [hardening[setting] for setting in HARDENING if missing[setting]]
    uploaded: set[str] = set()
    for product in catalog.products:
        key = catalog.s3_key(product)
        if key not in bucket.keys and key not in uploaded:
            uploaded.add(key)
            actions.append(
                UploadTemplate(
                    template=product.template,
                    bucket=name,
                    key=key,
                    path=str(product.path),
                    sha256=product.sha256,
                    body=product.body,
                    kms_key_id=catalog.kms_key_id,
                )
            )
    return actions


def _plan_portfolio(catalog: Catalog, state: LiveState) -> list[Action]:
    desired_tags = catalog.desired_portfolio_tags()
    if state.portfolio is None:
        return [
            CreatePortfolio(
                name=catalog.portfolio_name,
                provider=catalog.provider,
                description=catalog.portfolio_description,
                tags=desired_tags,
            )
        ]
    live = state.portfolio
    add, _ = _tag_changes(desired_tags, live.tags)
    update = UpdatePortfolio(
        name=catalog.portfolio_name,
        provider=catalog.provider if live.provider != catalog.provider else None,
        description=catalog.portfolio_description
        if (live.description or "") != catalog.portfolio_description
        else None,
        add_tags=add or None,
    )
    return [update] if update.params else []


def _version_source(catalog: Catalog, product: ProductSpec, bucket: str) -> dict[str, str]:
    """What a new version is made of: its name and the uploaded template it loads."""
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
    artifacts: tuple[ArtifactState, ...] = ()
    current_id: str | None = None
    if live is None:
        now.append(
            CreateProduct(
                **_version_source(catalog, product, state.bucket_name),
                fields=product.fields(),
                tags=product.desired_tags(),
            )
        )
    else:
        changed_fields = {k: v for k, v in product.fields().items() if (live.fields.get(k) or "") != v}
        add, remove = _tag_changes(
            product.desired_tags(), live.tags, managed_keys=(STUDIO_VISIBILITY_TAG, *LEGACY_OWNER_TAG_KEYS)
        )
        if changed_fields or add or remove:
            now.append(
                UpdateProduct(
                    product=product.name,
                    fields=changed_fields or None,
                    add_tags=add or None,
                    remove_tags=remove or None,
                )
            )
        artifacts = live.artifacts
        matching = sorted(
            (a for a in artifacts if a.short_hash == product.short_hash), key=lambda a: (a.created, a.id), reverse=True
        )
        if matching:
            current = matching[0]
            current_id = current.id
            # Guidance DEPRECATED: "Users ... cannot launch new provisioned products using a
            # deprecated version" (set out of band, say): the current content is launchable again.
            if not current.active or current.guidance != "DEFAULT":
                now.append(ActivateVersion(product=product.name, version_id=current.id, version=current.name))
            if current.name != product.version_name:
                now.append(
                    RenameVersion(
                        product=product.name,
                        version_id=current.id,
                        version=current.name,
                        new_name=product.version_name,
                    )
                )
        else:
            now.append(CreateVersion(**_version_source(catalog, product, state.bucket_name)))
    deactivate, delete, kept = retain_versions(artifacts, current_id, product.versions, state.in_use)
    later += [DeactivateVersion(product=product.name, version_id=a.id, version=a.name) for a in deactivate]
    if state.in_use_complete:
        later += [DeleteVersion(product=product.name, version_id=a.id, version=a.name) for a in delete]
    else:
        # AWS documents no refusal to delete a version a provisioned product uses, and the
        # accounts of organization shares cannot be scanned from here: delete nothing.
        later += [DeactivateVersion(product=product.name, version_id=a.id, version=a.name) for a in delete if a.active]
        for artifact in delete:
            notes.append(
                {
                    "product": product.name,
                    "version": artifact.name,
                    "note": "older than 'keep' but not deleted: the portfolio is shared with accounts whose "
                    "provisioned products cannot be read (organization shares)",
                }
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
        now.append(AssociateProduct(product=product.name, portfolio=catalog.portfolio_name))
    existing = [c for c in state.constraints if c.type == "LAUNCH" and live is not None and c.product_id == live.id]
    if product.launch_role:
        wanted = product.launch_role.parameters()
        if not existing:
            now.append(CreateLaunchConstraint(product=product.name, parameters=wanted))
        elif existing[0].parameters != wanted:
            now.append(UpdateLaunchConstraint(product=product.name, constraint_id=existing[0].id, parameters=wanted))
    else:
        # launch_role removed from the catalog: the product launches with the user's own rights again.
        now += [DeleteConstraint(product=product.name, constraint_type=c.type, constraint_id=c.id) for c in existing]
    return now, later, notes


def recipient_principals(catalog: Catalog, identity: Identity, account: str) -> set[tuple[str, PrincipalType]]:
    """The catalog's principals as they apply in recipient ``account`` of an account share."""
    out = set()
    for principal in catalog.principals:
        if principal.kind != PrincipalKind.ARN:
            out.add(principal.resolve(identity.partition, account))
        elif principal.value.split(":")[4] == account:
            out.add((principal.value, PrincipalType.IAM))
    return out


def _desired_principals(catalog: Catalog, identity: Identity) -> set[tuple[str, PrincipalType]]:
    return {p.resolve(identity.partition, identity.account) for p in catalog.principals}


def _desired_nodes(catalog: Catalog, state: LiveState) -> set[ShareTarget]:
    """The organization nodes (OUs, the organization) the catalog shares with."""
    nodes = {ShareTarget(ShareKind.ORGANIZATIONAL_UNIT, ou) for ou in catalog.shares.organizational_units}
    nodes |= {ShareTarget(ShareKind.ORGANIZATION_MEMBER_ACCOUNT, a) for a in catalog.shares.member_accounts}
    if catalog.shares.organization:
        nodes.add(ShareTarget(ShareKind.ORGANIZATION, state.organization_id or "<organization id>"))
    return nodes


def _plan_access(catalog: Catalog, state: LiveState, identity: Identity) -> list[Action]:
    actions: list[Action] = []
    for arn, kind in sorted(_desired_principals(catalog, identity) - set(state.principals)):
        actions.append(AssociatePrincipal(arn=arn, type=kind))
    shares = catalog.shares
    nodes = _desired_nodes(catalog, state)
    if nodes and state.organizations_access != "ENABLED":
        actions.append(EnableOrganizationsAccess())
    for account in shares.accounts:
        live = state.account_shares.get(account)
        # Principal sharing exists for organization shares only: an account share carries
        # none, and the recipient's principals are associated in the recipient account.
        flags = {"share_principals": False, "share_tag_options": shares.share_tag_options}
        target = ShareTarget(ShareKind.ACCOUNT, account)
        if live is None:
            actions.append(CreateShare(share=target, **flags))
        elif (live.share_principals, live.share_tag_options) != (False, shares.share_tag_options):
            actions.append(UpdateShare(share=target, **flags))
        if not shares.accept_role:
            continue
        if live is None or not live.accepted:
            actions.append(AcceptShare(account=account, role=shares.accept_role, partition=identity.partition))
        have = state.recipient_principals.get(account, frozenset())
        desired = recipient_principals(catalog, identity, account)
        for arn, kind in sorted(desired - have):
            actions.append(
                AssociateRecipientPrincipal(
                    account=account, role=shares.accept_role, arn=arn, type=kind, partition=identity.partition
                )
            )
        for arn, kind in sorted(set(have) - desired):
            actions.append(
                DisassociateRecipientPrincipal(
                    account=account, role=shares.accept_role, arn=arn, type=kind, partition=identity.partition
                )
            )
    wanted = (shares.share_principals, shares.share_tag_options)
    for node in sorted(nodes, key=lambda n: (n.kind, n.value)):
        live = state.node_shares.get((node.kind, node.value))
        flags = {"share_principals": shares.share_principals, "share_tag_options": shares.share_tag_options}
        if live is None:
            actions.append(CreateShare(share=node, **flags))
        elif (live.share_principals, live.share_tag_options) != wanted:
            actions.append(UpdateShare(share=node, **flags))
    return actions


def _plan_removals(catalog: Catalog, state: LiveState, identity: Identity) -> list[Action]:
    """What the catalog no longer lists: principals, shares, and products this tool put in the portfolio."""
    actions: list[Action] = []
    for arn, kind in sorted(set(state.principals) - _desired_principals(catalog, identity)):
        actions.append(DisassociatePrincipal(arn=arn, type=kind))
    for account in sorted(set(state.account_shares) - set(catalog.shares.accounts)):
        actions.append(DeleteShare(share=ShareTarget(ShareKind.ACCOUNT, account)))
    wanted_nodes = {(n.kind, n.value) for n in _desired_nodes(catalog, state)}
    for kind, value in sorted(set(state.node_shares) - wanted_nodes):
        actions.append(DeleteShare(share=ShareTarget(ShareKind(kind), value)))
    for product in state.foreign_products:
        if not owned(product.tags):
            continue  # not ours: never touched
        for constraint in state.constraints:
            if constraint.product_id == product.id:
                actions.append(
                    DeleteConstraint(product=product.name, constraint_type=constraint.type, constraint_id=constraint.id)
                )
        actions.append(
            DisassociateProduct(product_id=product.id, product=product.name, portfolio=catalog.portfolio_name)
        )
    return actions


@dataclass
class Plan:
    actions: list[Action]
    notes: list[dict]

    @property
    def writes(self) -> list[Action]:
        return [a for a in self.actions if a.writes]


def plan_publish(catalog: Catalog, state: LiveState, identity: Identity) -> Plan:
    """Actions turning ``state`` into ``catalog``, in execution order; empty when nothing changed."""
    check_against_identity(catalog, identity)
    if state.iam_existing is not None:
        check_iam_requirements(catalog, identity, state.iam_existing)
    actions = _plan_bucket(catalog, state) + _plan_portfolio(catalog, state)
    housekeeping: list[Action] = []
    notes: list[dict] = []
    for product in catalog.products:
        now, later, product_notes = _plan_product(catalog, state, product)
        actions += now
        housekeeping += later
        notes += product_notes
    actions += _plan_access(catalog, state, identity)
    actions += housekeeping
    actions += _plan_removals(catalog, state, identity)
    check_template_key(catalog, identity, state, actions)
    return Plan(actions=actions, notes=notes)


def check_template_key(catalog: Catalog, identity: Identity, state: LiveState, actions: list[Action]) -> None:
    """InputError (exit 2, before any write) when the catalog's KMS key would refuse what the plan needs:
    kms:GenerateDataKey to upload a template, kms:Decrypt for Service Catalog to read one (see
    :mod:`deploy.catalog.key_access`). Without ``bucket.kms_key_id`` the aws/s3 key serves any
    principal of the account through S3."""
    needed = []
    if any(isinstance(a, UploadTemplate) for a in actions):
        needed.append("kms:GenerateDataKey")
    if any(isinstance(a, (CreateProduct, CreateVersion)) for a in actions):
        needed.append("kms:Decrypt")
    key = state.template_key
    if not catalog.kms_key_id or not needed or key is None:
        return
    what = f"the templates' KMS key {key.arn or key.key_id}"
    if key.unreadable:
        problems = [key.unreadable]
    elif key.state != "Enabled":
        problems = [f"it is {key.state}, so S3 cannot use it"]
    elif key.manager == "AWS":
        owner = (key.arn or "").split(":")[4:5]
        problems = [] if owner == [identity.account] else ["an AWS managed key serves only its own account"]
    else:
        caller = Caller(identity.arn, identity.account, identity.region, state.organization_id)
        problems = [p for action in needed if (p := key_policy_problem(key.policy, action, caller))]
    if problems:
        raise InputError(
            f"{what} does not allow what publishing needs ({', '.join(needed)}: S3 uploads the templates "
            "and Service Catalog reads them with the publisher's credentials): "
            f"{'; '.join(problems)}. Grant {', '.join(needed)} to {identity.arn or identity.account} "
            "in the key policy, or leave bucket.kms_key_id out (the aws/s3 key)",
            source=catalog.source,
            key="bucket.kms_key_id",
        )


def summarize(plan: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in plan.actions:
        counts[action.op.value] = counts.get(action.op.value, 0) + 1
    return dict(sorted(counts.items()))
