"""The adapter between the catalog plan and AWS: the only module of ``publish`` that calls
S3, Service Catalog, Organizations and STS.

``CatalogPublisher.resolve_targets`` turns the share references (``account:NAME``,
``ou:/PATH``) into ids through :class:`deploy.common.refs.OrganizationsResolver`;
``read_state`` reads what exists (with botocore paginators wherever botocore has one) into
:class:`deploy.catalog.plan.LiveState`; ``execute`` carries out the actions of a
:class:`deploy.catalog.plan.Plan` in order, one handler per action type (dispatched on the
type by ``_apply``), and stops at the first failed call, reporting what was done. Bucket
hardening requests come from :mod:`deploy.common.buckets`. Retries are botocore's
(``deploy.common.clients.RETRY_CONFIG``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy.catalog.model import Catalog
from deploy.catalog.plan import (
    AcceptShare,
    Action,
    ActivateVersion,
    ArtifactState,
    AssociatePrincipal,
    AssociateProduct,
    AssociateRecipientPrincipal,
    BucketState,
    ConstraintState,
    CreateBucket,
    CreateLaunchConstraint,
    CreatePortfolio,
    CreateProduct,
    CreateShare,
    CreateVersion,
    DeactivateVersion,
    DeleteConstraint,
    DeleteShare,
    DeleteVersion,
    DisassociatePrincipal,
    DisassociateProduct,
    DisassociateRecipientPrincipal,
    EnableOrganizationsAccess,
    IamRequirement,
    Identity,
    LiveState,
    Plan,
    PortfolioState,
    ProductState,
    PutBucketEncryption,
    PutBucketVersioning,
    PutPublicAccessBlock,
    RenameVersion,
    ShareKind,
    ShareState,
    ShareTarget,
    TemplateKeyState,
    UpdateLaunchConstraint,
    UpdatePortfolio,
    UpdateProduct,
    UpdateShare,
    UploadTemplate,
    default_bucket_name,
    idempotency_token,
    same_kms_key,
)
from deploy.common.awssetup import explain
from deploy.common.buckets import BucketHardening, Hardening, create_bucket
from deploy.common.clients import Clients
from deploy.common.errors import InputError, RolloutError, error_code
from deploy.common.refs import OrganizationsResolver, UnresolvedReference, is_account_id, is_ou_id

_PRODUCT_FIELDS = {
    "Owner": "Owner",
    "ShortDescription": "Description",
    "Distributor": "Distributor",
    "SupportDescription": "SupportDescription",
    "SupportEmail": "SupportEmail",
    "SupportUrl": "SupportUrl",
}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _tags(items) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _created(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


@dataclass
class ExecutionResult:
    done: list[dict] = field(default_factory=list)
    failed: dict | None = None
    portfolio_id: str | None = None
    product_ids: dict = field(default_factory=dict)
    version_ids: dict = field(default_factory=dict)  # product name -> current version id


class PublishFailed(RolloutError):
    """An AWS call of the execution failed; ``result`` tells what had been done before."""

    def __init__(self, message: str, result: ExecutionResult):
        super().__init__(message)
        self.result = result


class CatalogPublisher:
    """Reads the live state of one catalog and applies plans to it, through ``clients``."""

    def __init__(self, clients: Clients, region: str | None = None):
        self.clients = clients
        self.region = region or clients.session.region_name
        self._recipients: dict = {}
        self.sleep: Callable[[float], None] = time.sleep
        self.wait_seconds = 600.0  # organization shares and Organizations access: how long to wait
        if not self.region:
            raise InputError("no AWS region: set 'region' in the catalog, or AWS_REGION / AWS_DEFAULT_REGION")

    def _client(self, service: str):
        return self.clients.client(service, self.region)

    @property
    def sc(self):
        return self._client("servicecatalog")

    @property
    def s3(self):
        return self._client("s3")

    # --- reading ---------------------------------------------------------------------------

    def identity(self) -> Identity:
        """The caller's account and partition (credentials problems are input errors: exit 2)."""
        try:
            caller = self.clients.client("sts", self.region).get_caller_identity()
        except (BotoCoreError, ClientError) as error:  # the first call: set-up problems show here
            raise explain(error) or InputError(f"the AWS credentials were refused: {error}") from None
        return Identity(
            account=caller["Account"], partition=caller["Arn"].split(":")[1], region=self.region, arn=caller["Arn"]
        )

    def resolve_targets(self, catalog: Catalog) -> Catalog:
        """The catalog with share targets as ids: ``account:NAME`` and ``ou:/PATH`` looked up in
        the Organization (:class:`deploy.common.refs.OrganizationsResolver`), OU ids checked to
        exist (InputError, exit 2, before any write)."""
        shares = catalog.shares
        if not shares.organizational_units and all(is_account_id(a) for a in shares.accounts + shares.member_accounts):
            return catalog
        org = self._client("organizations")
        keys: dict[str, str] = {}  # reference -> the key of its first use, for errors
        for section, values in (
            ("accounts", shares.accounts),
            ("member_accounts", shares.member_accounts),
            ("organizational_units", shares.organizational_units),
        ):
            for index, ref in enumerate(values):
                keys.setdefault(ref, f"shares.{section}[{index}]")

        def invalid(message: str, key: str) -> InputError:
            return InputError(message, source=catalog.source, where="shares", key=key)

        try:
            resolved = OrganizationsResolver(org).resolve(keys)
            missing = next(
                (ou for ou in shares.organizational_units if is_ou_id(ou) and not self._ou_exists(org, ou)), None
            )
        except UnresolvedReference as error:
            raise invalid(str(error), keys[error.ref]) from None
        except ClientError as error:
            if error_code(error) == "AWSOrganizationsNotInUseException":
                raise invalid(
                    "the publishing account is in no Organization: share with account ids only", "shares"
                ) from None
            raise
        if missing:
            raise invalid(f"organizational unit {missing} not found in the caller's Organization", keys[missing])
        return replace(
            catalog,
            shares=replace(
                shares,
                accounts=tuple(resolved.get(a, a) for a in shares.accounts),
                member_accounts=tuple(resolved.get(a, a) for a in shares.member_accounts),
                organizational_units=tuple(resolved.get(ou, ou) for ou in shares.organizational_units),
            ),
        )

    @staticmethod
    def _ou_exists(org, ou: str) -> bool:
        try:
            org.describe_organizational_unit(OrganizationalUnitId=ou)
        except ClientError as error:
            if error_code(error) in ("OrganizationalUnitNotFoundException", "InvalidInputException"):
                return False
            raise
        return True

    def read_state(self, catalog: Catalog, identity: Identity) -> LiveState:
        bucket_name = catalog.bucket_name or default_bucket_name(identity)
        bucket = self._read_bucket(catalog, bucket_name)
        portfolio = self._read_portfolio(catalog)
        products, foreign, constraints, principals = {}, (), (), frozenset()
        account_shares, node_shares = {}, {}
        all_products = self._search_products()
        in_portfolio = set()
        if portfolio:
            in_portfolio = {p["ProductId"] for p in self._search_products(portfolio.id)}
        for spec in catalog.products:
            matches = [p for p in all_products if p["Name"] == spec.name]
            if len(matches) > 1:
                inside = [p for p in matches if p["ProductId"] in in_portfolio]
                if len(inside) != 1:
                    ids = ", ".join(p["ProductId"] for p in matches)
                    raise RolloutError(
                        f"{len(matches)} products are named {spec.name!r} ({ids}) and not exactly one is in "
                        f"portfolio {catalog.portfolio_name!r}: delete or rename the extra ones"
                    )
                matches = inside
            if matches:
                products[spec.name] = self._read_product(matches[0]["ProductId"], in_portfolio)
        if portfolio:
            known = {p.id for p in products.values()}
            foreign = tuple(
                self._read_product(pid, in_portfolio, artifacts=False) for pid in sorted(in_portfolio - known)
            )
            constraints = self._read_constraints(portfolio.id)
            principals = frozenset(
                (p["PrincipalARN"], p["PrincipalType"])
                for p in self._paginate("list_principals_for_portfolio", "Principals", PortfolioId=portfolio.id)
            )
            account_shares, node_shares = self._read_shares(portfolio.id)
        organization_id = access = None
        if catalog.shares.organization:
            organization_id = self._client("organizations").describe_organization()["Organization"]["Id"]
        if catalog.shares.needs_organizations:
            access = self.wait_for_organizations_access()
        recipients = {}
        if portfolio and catalog.shares.accept_role:
            for account in catalog.shares.accounts:
                if account in account_shares and account_shares[account].accepted:
                    recipient = self._recipient_client(identity.partition, account, catalog.shares.accept_role)
                    pages = recipient.get_paginator("list_principals_for_portfolio").paginate(PortfolioId=portfolio.id)
                    recipients[account] = frozenset(
                        (p["PrincipalARN"], p["PrincipalType"]) for p in pages.search("Principals[]")
                    )
        in_use: frozenset = frozenset()
        in_use_complete = True
        if any(p.versions.keep is not None for p in catalog.products) and products:
            in_use, in_use_complete = self._read_in_use(catalog, identity, account_shares, node_shares)
        return LiveState(
            bucket_name=bucket_name,
            bucket=bucket,
            portfolio=portfolio,
            products=products,
            foreign_products=foreign,
            constraints=constraints,
            principals=principals,
            account_shares=account_shares,
            node_shares=node_shares,
            organization_id=organization_id,
            organizations_access=access,
            in_use=in_use,
            in_use_complete=in_use_complete,
            recipient_principals=recipients,
        )

    def _read_in_use(
        self, catalog: Catalog, identity: Identity, account_shares: dict, node_shares: dict
    ) -> tuple[frozenset, bool]:
        """The versions provisioned products use, in the publishing account and each accepted account
        share (through accept_role); complete only when no other account can launch from the portfolio.

        ScanProvisionedProducts lists the caller's account only; the accounts of organization shares
        cannot be listed from here, so with those the answer is incomplete (no version is deleted then).
        """
        scan = {"AccessLevelFilter": {"Key": "Account", "Value": "self"}}
        used = {
            p.get("ProvisioningArtifactId")
            for p in self._paginate("scan_provisioned_products", "ProvisionedProducts", **scan)
        }
        complete = not node_shares
        for account in account_shares:
            if not catalog.shares.accept_role or account not in catalog.shares.accounts:
                complete = False
                continue
            recipient = self._recipient_client(identity.partition, account, catalog.shares.accept_role)
            pages = recipient.get_paginator("scan_provisioned_products").paginate(**scan)
            used |= {p.get("ProvisioningArtifactId") for p in pages.search("ProvisionedProducts[]")}
        return frozenset(used), complete

    def existing_iam(self, requirements: list[IamRequirement]) -> frozenset[str]:
        """The ARNs among ``requirements`` that exist (GetRole / GetUser / GetGroup in the publishing account)."""
        iam = self._client("iam")
        found = set()
        for requirement in requirements:
            kind, _, name = requirement.arn.split(":", 5)[5].partition("/")
            name = name.rsplit("/", 1)[-1]  # the path is not part of the name
            call = {"role": (iam.get_role, "RoleName"), "user": (iam.get_user, "UserName")}.get(
                kind, (iam.get_group, "GroupName")
            )
            try:
                call[0](**{call[1]: name})
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise
                continue
            found.add(requirement.arn)
        return frozenset(found)

    def read_template_key(self, catalog: Catalog, identity: Identity) -> TemplateKeyState | None:
        """The catalog's ``bucket.kms_key_id`` and its key policy (None when the catalog sets no key).

        What cannot be read is recorded (``unreadable``), and plan_publish refuses it (exit 2): the
        publisher then cannot check that the key lets it upload and Service Catalog read the templates.
        """
        if not catalog.kms_key_id:
            return None
        kms = self._client("kms")
        try:
            meta = kms.describe_key(KeyId=catalog.kms_key_id)["KeyMetadata"]
        except ClientError as error:
            if error_code(error) == "NotFoundException":
                return TemplateKeyState(catalog.kms_key_id, unreadable="it does not exist in this account and region")
            if error_code(error) == "AccessDeniedException":
                return TemplateKeyState(
                    catalog.kms_key_id, unreadable="the publisher may not describe it (kms:DescribeKey)"
                )
            raise
        key = TemplateKeyState(catalog.kms_key_id, meta["Arn"], meta.get("KeyManager"), meta.get("KeyState"))
        if key.manager == "AWS":
            return key
        if meta["Arn"].split(":")[4] != identity.account:
            # KMS API reference, GetKeyPolicy: "Cross-account use: No. You cannot perform this
            # operation on a KMS key in a different AWS account."
            return replace(
                key,
                unreadable=f"it belongs to account {meta['Arn'].split(':')[4]}, whose key policy cannot be read "
                "from here (GetKeyPolicy does not work across accounts); use a key of the publishing account",
            )
        try:
            text = kms.get_key_policy(KeyId=meta["Arn"], PolicyName="default")["Policy"]
        except ClientError as error:
            if error_code(error) != "AccessDeniedException":
                raise
            return replace(key, unreadable="the publisher may not read its key policy (kms:GetKeyPolicy)")
        try:
            return replace(key, policy=json.loads(text))
        except ValueError:
            return replace(key, unreadable="its key policy is not JSON")

    def _paginate(self, operation: str, key: str, **kwargs) -> list:
        return list(self.sc.get_paginator(operation).paginate(**kwargs).search(f"{key}[]"))

    def _read_bucket(self, catalog: Catalog, name: str) -> BucketState:
        s3 = self.s3
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            if error_code(error) in _NOT_FOUND:
                return BucketState()
            raise RolloutError(
                f"bucket {name} exists but this account cannot use it ({error_code(error)}): "
                "set bucket.name in the catalog to a bucket of yours"
            ) from None
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
            defaults = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules]
            kms = [d for d in defaults if d.get("SSEAlgorithm", "").startswith("aws:kms")]
            encrypted = bool(kms)
            kms_key_id = kms[0].get("KMSMasterKeyID") if kms else None
        except ClientError as error:
            if error_code(error) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            encrypted, kms_key_id = False, None
        versioned = s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"
        try:
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            blocked = all(
                block.get(k)
                for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
            )
        except ClientError as error:
            if error_code(error) != "NoSuchPublicAccessBlockConfiguration":
                raise
            blocked = False
        keys = set()
        for key in sorted({catalog.s3_key(p) for p in catalog.products}):
            try:
                head = s3.head_object(Bucket=name, Key=key)
            except ClientError as error:
                if error_code(error) not in _NOT_FOUND:
                    raise
                continue
            # An object encrypted under another key than the catalog's (kms_key_id changed) is uploaded again.
            if not catalog.kms_key_id or same_kms_key(head.get("SSEKMSKeyId"), catalog.kms_key_id):
                keys.add(key)
        return BucketState(
            exists=True,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            versioned=versioned,
            public_access_blocked=blocked,
            keys=frozenset(keys),
        )

    def _read_portfolio(self, catalog: Catalog) -> PortfolioState | None:
        matches = [
            p
            for p in self._paginate("list_portfolios", "PortfolioDetails")
            if p["DisplayName"] == catalog.portfolio_name
        ]
        if not matches:
            return None
        if len(matches) > 1:
            raise RolloutError(
                f"{len(matches)} portfolios are named {catalog.portfolio_name!r} "
                f"({', '.join(p['Id'] for p in matches)}): delete or rename the extra ones"
            )
        described = self.sc.describe_portfolio(Id=matches[0]["Id"])
        detail = described["PortfolioDetail"]
        return PortfolioState(
            id=detail["Id"],
            name=detail["DisplayName"],
            description=detail.get("Description", ""),
            provider=detail.get("ProviderName", ""),
            tags=_tags(described.get("Tags")),
        )

    def _search_products(self, portfolio_id: str | None = None) -> list[dict]:
        kwargs = {"PortfolioId": portfolio_id} if portfolio_id else {}
        return [
            d["ProductViewSummary"] for d in self._paginate("search_products_as_admin", "ProductViewDetails", **kwargs)
        ]

    def _read_product(self, product_id: str, in_portfolio: set, artifacts: bool = True) -> ProductState:
        described = self.sc.describe_product_as_admin(Id=product_id)
        summary = described["ProductViewDetail"]["ProductViewSummary"]
        fields = {ours: summary.get(theirs, "") or "" for theirs, ours in _PRODUCT_FIELDS.items()}
        found: tuple = ()
        if artifacts:
            # ListProvisioningArtifacts has no pagination: one call returns every version.
            details = self.sc.list_provisioning_artifacts(ProductId=product_id).get("ProvisioningArtifactDetails", [])
            found = tuple(
                ArtifactState(
                    id=d["Id"],
                    name=d.get("Name", ""),
                    created=_created(d.get("CreatedTime")),
                    active=d.get("Active", True),
                    guidance=d.get("Guidance", "DEFAULT"),
                )
                for d in details
            )
        return ProductState(
            id=product_id,
            name=summary["Name"],
            fields=fields,
            tags=_tags(described.get("Tags")),
            artifacts=found,
            in_portfolio=product_id in in_portfolio,
        )

    def _read_constraints(self, portfolio_id: str) -> tuple[ConstraintState, ...]:
        out = []
        for detail in self._paginate("list_constraints_for_portfolio", "ConstraintDetails", PortfolioId=portfolio_id):
            parameters = {}
            if detail["Type"] == "LAUNCH":
                raw = self.sc.describe_constraint(Id=detail["ConstraintId"]).get("ConstraintParameters") or "{}"
                try:
                    parameters = json.loads(raw)
                except ValueError:
                    parameters = {"unparsed": raw}
            out.append(
                ConstraintState(
                    id=detail["ConstraintId"],
                    product_id=detail["ProductId"],
                    type=detail["Type"],
                    parameters=parameters,
                )
            )
        return tuple(out)

    def _read_shares(self, portfolio_id: str) -> tuple[dict, dict]:
        accounts, nodes = {}, {}
        for share_type in ("ACCOUNT", "ORGANIZATION", "ORGANIZATIONAL_UNIT", "ORGANIZATION_MEMBER_ACCOUNT"):
            # botocore has no paginator for DescribePortfolioShares: follow its PageToken.
            kwargs = {"PortfolioId": portfolio_id, "Type": share_type}
            while True:
                try:
                    page = self.sc.describe_portfolio_shares(**kwargs)
                except ClientError as error:
                    # An account outside an Organization has no organization shares to list.
                    if share_type == "ACCOUNT" or error_code(error) not in (
                        "InvalidParametersException",
                        "OperationNotSupportedException",
                    ):
                        raise
                    break
                for detail in page.get("PortfolioShareDetails", []):
                    state = ShareState(
                        share_principals=detail.get("SharePrincipals", False),
                        share_tag_options=detail.get("ShareTagOptions", False),
                        accepted=detail.get("Accepted", False),
                    )
                    if share_type == "ACCOUNT":
                        accounts[detail["PrincipalId"]] = state
                    else:
                        nodes[(share_type, detail["PrincipalId"])] = state
                if not page.get("NextPageToken"):
                    break
                kwargs["PageToken"] = page["NextPageToken"]
        return accounts, nodes

    # --- writing ---------------------------------------------------------------------------

    def template_url(self, bucket: str, key: str) -> str:
        """The HTTPS URL Service Catalog loads the template from (path style off AWS, e.g. locally)."""
        endpoint = self.s3.meta.endpoint_url.rstrip("/")
        host = urlparse(endpoint).hostname or ""
        if (
            host.startswith("s3")
            and (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
            and "." not in bucket
        ):
            return f"https://{bucket}.{host}/{quote(key)}"
        return f"{endpoint}/{bucket}/{quote(key)}"

    def execute(
        self, plan: Plan, state: LiveState, progress: Callable[[Action], None] | None = None
    ) -> ExecutionResult:
        """Carry out ``plan`` in order; raise PublishFailed at the first failed call."""
        result = ExecutionResult(
            portfolio_id=state.portfolio.id if state.portfolio else None,
            product_ids={name: p.id for name, p in state.products.items()},
        )
        for action in plan.actions:
            if progress:
                progress(action)
            try:
                outcome = self._apply(action, result) or {}
            except ClientError as error:
                result.failed = {
                    **action.to_dict(),
                    "error": error_code(error),
                    "message": error.response.get("Error", {}).get("Message", str(error)),
                }
                raise PublishFailed(
                    f"{action.op} {action.target} failed: {error_code(error)}: {result.failed['message']}", result
                ) from None
            result.done.append({**action.to_dict(), **outcome})
        return result

    # One handler per action type, each taking its own type; a handler returns what the
    # call created (ids, tokens) for the result document, or None.

    @functools.singledispatchmethod
    def _apply(self, action: Action, result: ExecutionResult) -> dict | None:
        raise NotImplementedError(f"no executor step for {type(action).__name__}")

    @_apply.register
    def _create_bucket(self, action: CreateBucket, result: ExecutionResult) -> None:
        create_bucket(self.s3, action.bucket, self.region)

    @_apply.register
    def _put_bucket_encryption(self, action: PutBucketEncryption, result: ExecutionResult) -> None:
        BucketHardening(kms_key_id=action.kms_key_id).apply(self.s3, Hardening.ENCRYPTION, action.bucket)

    @_apply.register
    def _put_bucket_versioning(self, action: PutBucketVersioning, result: ExecutionResult) -> None:
        BucketHardening().apply(self.s3, Hardening.VERSIONING, action.bucket)

    @_apply.register
    def _put_public_access_block(self, action: PutPublicAccessBlock, result: ExecutionResult) -> None:
        BucketHardening().apply(self.s3, Hardening.PUBLIC_ACCESS_BLOCK, action.bucket)

    @_apply.register
    def _upload_template(self, action: UploadTemplate, result: ExecutionResult) -> None:
        self.s3.put_object(
            Bucket=action.bucket,
            Key=action.key,
            Body=action.body,
            ContentType="application/x-yaml",
            Metadata={"sha256": action.sha256},
            ServerSideEncryption="aws:kms",
            **({"SSEKMSKeyId": action.kms_key_id} if action.kms_key_id else {}),
        )

    @_apply.register
    def _create_portfolio(self, action: CreatePortfolio, result: ExecutionResult) -> dict:
        detail = self.sc.create_portfolio(
            DisplayName=action.name,
            ProviderName=action.provider,
            Description=action.description,
            Tags=_tag_list(action.tags),
            IdempotencyToken=idempotency_token("portfolio", action.name, action.provider),
        )["PortfolioDetail"]
        result.portfolio_id = detail["Id"]
        return {"id": detail["Id"]}

    @_apply.register
    def _update_portfolio(self, action: UpdatePortfolio, result: ExecutionResult) -> None:
        kwargs = {"Id": result.portfolio_id}
        if action.provider is not None:
            kwargs["ProviderName"] = action.provider
        if action.description is not None:
            kwargs["Description"] = action.description
        if action.add_tags:
            kwargs["AddTags"] = _tag_list(action.add_tags)
        self.sc.update_portfolio(**kwargs)

    def _artifact_parameters(self, action: CreateVersion | CreateProduct) -> dict:
        return {
            "Name": action.version,
            "Description": action.description,
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "Info": {"LoadTemplateFromURL": self.template_url(action.bucket, action.key)},
        }

    @_apply.register
    def _create_product(self, action: CreateProduct, result: ExecutionResult) -> dict:
        response = self.sc.create_product(
            Name=action.product,
            ProductType="CLOUD_FORMATION_TEMPLATE",
            Tags=_tag_list(action.tags),
            ProvisioningArtifactParameters=self._artifact_parameters(action),
            IdempotencyToken=idempotency_token("product", action.product, action.version, action.sha256),
            **{k: v for k, v in action.fields.items() if v},
        )
        product_id = response["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
        version_id = response.get("ProvisioningArtifactDetail", {}).get("Id")
        result.product_ids[action.product] = product_id
        result.version_ids[action.product] = version_id
        return {"id": product_id, "version_id": version_id}

    @_apply.register
    def _update_product(self, action: UpdateProduct, result: ExecutionResult) -> None:
        kwargs = {"Id": result.product_ids[action.product], **(action.fields or {})}
        if action.add_tags:
            kwargs["AddTags"] = _tag_list(action.add_tags)
        if action.remove_tags:
            kwargs["RemoveTags"] = action.remove_tags
        self.sc.update_product(**kwargs)

    @_apply.register
    def _create_version(self, action: CreateVersion, result: ExecutionResult) -> dict:
        detail = self.sc.create_provisioning_artifact(
            ProductId=result.product_ids[action.product],
            Parameters=self._artifact_parameters(action),
            IdempotencyToken=idempotency_token(
                "version", result.product_ids[action.product], action.version, action.sha256
            ),
        )["ProvisioningArtifactDetail"]
        result.version_ids[action.product] = detail["Id"]
        return {"version_id": detail["Id"]}

    @_apply.register
    def _activate_version(self, action: ActivateVersion, result: ExecutionResult) -> None:
        self.sc.update_provisioning_artifact(
            ProductId=result.product_ids[action.product],
            ProvisioningArtifactId=action.version_id,
            Active=True,
            Guidance="DEFAULT",
        )

    @_apply.register
    def _deactivate_version(self, action: DeactivateVersion, result: ExecutionResult) -> None:
        self.sc.update_provisioning_artifact(
            ProductId=result.product_ids[action.product], ProvisioningArtifactId=action.version_id, Active=False
        )

    @_apply.register
    def _rename_version(self, action: RenameVersion, result: ExecutionResult) -> None:
        self.sc.update_provisioning_artifact(
            ProductId=result.product_ids[action.product], ProvisioningArtifactId=action.version_id, Name=action.new_name
        )

    @_apply.register
    def _delete_version(self, action: DeleteVersion, result: ExecutionResult) -> None:
        # Planned only when no provisioned product of any account that can launch it uses it
        # (LiveState.in_use_complete): AWS documents no in-use refusal to rely on.
        self.sc.delete_provisioning_artifact(
            ProductId=result.product_ids[action.product], ProvisioningArtifactId=action.version_id
        )

    @_apply.register
    def _associate_product(self, action: AssociateProduct, result: ExecutionResult) -> None:
        self.sc.associate_product_with_portfolio(
            ProductId=result.product_ids[action.product], PortfolioId=result.portfolio_id
        )

    @_apply.register
    def _create_launch_constraint(self, action: CreateLaunchConstraint, result: ExecutionResult) -> dict:
        parameters = json.dumps(action.parameters, sort_keys=True)
        detail = self.sc.create_constraint(
            PortfolioId=result.portfolio_id,
            ProductId=result.product_ids[action.product],
            Type="LAUNCH",
            Parameters=parameters,
            Description="Launch role: users need no rights on the product's resources",
            IdempotencyToken=idempotency_token(
                "launch", result.portfolio_id or "", result.product_ids[action.product], parameters
            ),
        )["ConstraintDetail"]
        return {"constraint_id": detail["ConstraintId"]}

    @_apply.register
    def _update_launch_constraint(self, action: UpdateLaunchConstraint, result: ExecutionResult) -> None:
        self.sc.update_constraint(Id=action.constraint_id, Parameters=json.dumps(action.parameters, sort_keys=True))

    @_apply.register
    def _delete_constraint(self, action: DeleteConstraint, result: ExecutionResult) -> None:
        self.sc.delete_constraint(Id=action.constraint_id)

    @_apply.register
    def _disassociate_product(self, action: DisassociateProduct, result: ExecutionResult) -> None:
        self.sc.disassociate_product_from_portfolio(ProductId=action.product_id, PortfolioId=result.portfolio_id)

    @_apply.register
    def _associate_principal(self, action: AssociatePrincipal, result: ExecutionResult) -> None:
        self.sc.associate_principal_with_portfolio(
            PortfolioId=result.portfolio_id, PrincipalARN=action.arn, PrincipalType=action.type
        )

    @_apply.register
    def _disassociate_principal(self, action: DisassociatePrincipal, result: ExecutionResult) -> None:
        self.sc.disassociate_principal_from_portfolio(
            PortfolioId=result.portfolio_id, PrincipalARN=action.arn, PrincipalType=action.type
        )

    @_apply.register
    def _enable_organizations_access(self, action: EnableOrganizationsAccess, result: ExecutionResult) -> None:
        self.sc.enable_aws_organizations_access()
        self.wait_for_organizations_access()

    def _poll(self, read: Callable[[], str], pending: set[str], what: str) -> str:
        """Read ``read()`` with capped exponential backoff until it leaves ``pending``; the last value."""
        delay, waited = 1.0, 0.0
        while True:
            value = read()
            if value not in pending:
                return value
            if waited >= self.wait_seconds:
                raise ClientError(
                    {"Error": {"Code": "Timeout", "Message": f"{what} still {value} after {waited:.0f}s"}}, what
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)

    def wait_for_organizations_access(self) -> str:
        """GetAWSOrganizationsAccessStatus until it is no longer UNDER_CHANGE."""
        return self._poll(
            lambda: self.sc.get_aws_organizations_access_status().get("AccessStatus", ""),
            {"UNDER_CHANGE"},
            "GetAWSOrganizationsAccessStatus",
        )

    def _wait_for_share(self, token: str | None) -> dict:
        """An organization share is asynchronous: read DescribePortfolioShareStatus until it ends.

        ShareStatus ends COMPLETED, COMPLETED_WITH_ERRORS or ERROR; "The portfolio share cannot be
        updated if the CreatePortfolioShare operation is IN_PROGRESS". Anything but COMPLETED fails.
        """
        if not token:
            return {}
        last: dict = {}

        def read() -> str:
            last.update(self.sc.describe_portfolio_share_status(PortfolioShareToken=token))
            return last.get("Status", "")

        status = self._poll(read, {"NOT_STARTED", "IN_PROGRESS"}, "DescribePortfolioShareStatus")
        if status != "COMPLETED":
            details = last.get("ShareDetails") or {}
            errors = "; ".join(
                f"{e.get('Code', '?')}: {e.get('Message', '')} (accounts {', '.join(e.get('Accounts', []))})"
                for e in details.get("ShareErrors", [])
            )
            raise ClientError(
                {"Error": {"Code": f"Share{status.title().replace('_', '')}", "Message": errors or status}},
                "DescribePortfolioShareStatus",
            )
        return {"share_token": token, "share_status": status}

    @staticmethod
    def _share_target(share: ShareTarget) -> dict:
        if share.kind == ShareKind.ACCOUNT:
            return {"AccountId": share.value}
        if share.kind == ShareKind.ORGANIZATION_MEMBER_ACCOUNT:
            return {"OrganizationNode": {"Type": "ACCOUNT", "Value": share.value}}
        return {"OrganizationNode": {"Type": share.kind.value, "Value": share.value}}

    def _share_request(self, action: CreateShare | UpdateShare, result: ExecutionResult) -> dict:
        return {
            "PortfolioId": result.portfolio_id,
            "ShareTagOptions": action.share_tag_options,
            "SharePrincipals": action.share_principals,
            **self._share_target(action.share),
        }

    @_apply.register
    def _create_share(self, action: CreateShare, result: ExecutionResult) -> dict:
        response = self.sc.create_portfolio_share(**self._share_request(action, result))
        return self._wait_for_share(response.get("PortfolioShareToken"))

    @_apply.register
    def _update_share(self, action: UpdateShare, result: ExecutionResult) -> dict:
        response = self.sc.update_portfolio_share(**self._share_request(action, result))
        return self._wait_for_share(response.get("PortfolioShareToken"))

    @_apply.register
    def _delete_share(self, action: DeleteShare, result: ExecutionResult) -> dict:
        response = self.sc.delete_portfolio_share(PortfolioId=result.portfolio_id, **self._share_target(action.share))
        return self._wait_for_share(response.get("PortfolioShareToken"))

    def _recipient_client(self, partition: str, account: str, role: str):
        """Service Catalog in share recipient ``account``, as its role ``role`` (one session per account)."""
        cache = self._recipients
        if account not in cache:
            role_arn = f"arn:{partition}:iam::{account}:role/{role}"
            credentials = self._client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName="sm-deploy-accept-portfolio-share"
            )["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=self.region,
            )
            cache[account] = Clients(session=session, counter=self.clients.counter, config=self.clients.config).client(
                "servicecatalog", self.region
            )
        return cache[account]

    @_apply.register
    def _accept_share(self, action: AcceptShare, result: ExecutionResult) -> None:
        """Accept the share in the recipient account, as the role the catalog names there."""
        self._recipient_client(action.partition, action.account, action.role).accept_portfolio_share(
            PortfolioId=result.portfolio_id, PortfolioShareType="IMPORTED"
        )

    @_apply.register
    def _associate_recipient_principal(self, action: AssociateRecipientPrincipal, result: ExecutionResult) -> None:
        recipient = self._recipient_client(action.partition, action.account, action.role)
        recipient.associate_principal_with_portfolio(
            PortfolioId=result.portfolio_id, PrincipalARN=action.arn, PrincipalType=action.type
        )

    @_apply.register
    def _disassociate_recipient_principal(
        self, action: DisassociateRecipientPrincipal, result: ExecutionResult
    ) -> None:
        recipient = self._recipient_client(action.partition, action.account, action.role)
        recipient.disassociate_principal_from_portfolio(
            PortfolioId=result.portfolio_id, PrincipalARN=action.arn, PrincipalType=action.type
        )
