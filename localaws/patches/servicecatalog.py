"""Service Catalog: the administrator API that ``python -m deploy publish`` uses.

moto 5.2.5 implements portfolios, portfolio shares and create/describe/delete product
only; everything else answers HTTP 500, and CreateProduct drops the product's first
provisioning artifact. This patch adds, behaving as the Service Catalog API reference
describes (shapes as in botocore's service model):

- products: the initial artifact of CreateProduct, DescribeProductAsAdmin, UpdateProduct
  (fields, AddTags/RemoveTags), SearchProductsAsAdmin (by portfolio, full-text filter,
  pages), AssociateProductWithPortfolio, DisassociateProductFromPortfolio (refused while
  the product has constraints in the portfolio), ListPortfoliosForProduct;
- provisioning artifacts: Create/List/Describe/Update/Delete (Delete refuses the last
  artifact of a product and one a provisioned product uses);
- constraints: Create (LAUNCH: exactly one of RoleArn/LocalRoleName, one per product and
  portfolio; the product must be in the portfolio), Describe, Update, Delete,
  ListConstraintsForPortfolio;
- principals: Associate/Disassociate/ListPrincipalsForPortfolio (IAM and IAM_PATTERN), on
  the account's own portfolios and on those it imported;
- portfolios: UpdatePortfolio, tags that DescribePortfolio reflects;
- shares: account shares (no principal sharing: that is for organization nodes only)
  that are pending until the recipient accepts them
  (AcceptPortfolioShare, ListAcceptedPortfolioShares, across accounts of the server),
  organization-node shares (ORGANIZATION, ORGANIZATIONAL_UNIT) that are imported at once,
  UpdatePortfolioShare, Enable/Disable/GetAWSOrganizationsAccess(Status);
- provisioned products, as records only: ProvisionProduct stores a provisioned product
  (status AVAILABLE) *without launching a stack*, so that "a version in use" can be
  tested; ScanProvisionedProducts and SearchProvisionedProducts list them. It refuses a
  launch constraint whose LocalRoleName does not exist in the launching account, and a
  product of several portfolios without PathId;
- templates: fetched from the local S3 and validated (unless DisableTemplateValidation); an
  object encrypted under a KMS key the caller may not decrypt with is refused in any case.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import urllib.parse
from dataclasses import dataclass, field

import yaml
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.servicecatalog import models, responses

from localaws.patches._controls import set_counts
from localaws.patches.organizations import accounts_under
from localaws.patches.sts import caller_of

_ALPHABET = string.ascii_lowercase + string.digits
_ARTIFACT_TYPES = {
    "CLOUD_FORMATION_TEMPLATE",
    "MARKETPLACE_AMI",
    "MARKETPLACE_CAR",
    "TERRAFORM_OPEN_SOURCE",
    "TERRAFORM_CLOUD",
    "EXTERNAL",
}
_CONSTRAINT_TYPES = {"LAUNCH", "NOTIFICATION", "RESOURCE_UPDATE", "STACKSET", "TEMPLATE"}


class ResourceInUseException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ResourceInUseException", message)


class InvalidStateException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidStateException", message)


class DuplicateResourceException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("DuplicateResourceException", message)


class LimitExceededException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("LimitExceededException", message)


class OperationNotSupportedException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("OperationNotSupportedException", message)


# Run-time options (POST /_local/control/servicecatalog?share_polls=N): an organization share
# reads IN_PROGRESS for N DescribePortfolioShareStatus calls before COMPLETED (default 0: at
# once); fail_share_accounts (comma-separated) end a share COMPLETED_WITH_ERRORS for them;
# search_lag=N: SearchProductsAsAdmin does not list a product created less than N searches
# ago (eventual consistency; default 0: at once); access_polls=N: after
# EnableAWSOrganizationsAccess, GetAWSOrganizationsAccessStatus reads UNDER_CHANGE N times,
# then ENABLED (default 0: at once).
OPTIONS: dict = {"share_polls": 0, "fail_share_accounts": "", "search_lag": 0, "access_polls": 0}
_COUNTS = ("share_polls", "search_lag", "access_polls")
_INVALID_TEMPLATE = "Invalid templateBody. Please make sure that your template is valid"
_MAX_PATTERNS = 10


def _not_found(message: str):
    return models.ResourceNotFoundException(message)


def _invalid(message: str):
    return models.InvalidParametersException(message)


def _new_id(prefix: str) -> str:
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(13))


def _page(items: list, token: str | None, size: int | None, default: int = 20) -> tuple[list, str | None]:
    start = int(token) if token else 0
    size = size or default
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


@dataclass
class _Artifact:
    id: str
    name: str
    description: str
    type: str
    info: dict
    created: object
    active: bool = True
    guidance: str = "DEFAULT"

    def detail(self) -> dict:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "Type": self.type,
            "CreatedTime": self.created,
            "Active": self.active,
            "Guidance": self.guidance,
        }

    def summary(self) -> dict:
        return {"Id": self.id, "Name": self.name, "Description": self.description, "CreatedTime": self.created}


@dataclass
class _Constraint:
    id: str
    type: str
    portfolio_id: str
    product_id: str
    parameters: str
    description: str
    owner: str

    def detail(self) -> dict:
        return {
            "ConstraintId": self.id,
            "Type": self.type,
            "Description": self.description,
            "Owner": self.owner,
            "ProductId": self.product_id,
            "PortfolioId": self.portfolio_id,
        }


@dataclass
class _State:
    """What this patch adds to one account's and region's Service Catalog backend."""

    artifacts: dict = field(default_factory=dict)  # product id -> [_Artifact]
    associations: dict = field(default_factory=dict)  # portfolio id -> [product id]
    constraints: dict = field(default_factory=dict)  # constraint id -> _Constraint
    constraint_tokens: dict = field(default_factory=dict)  # IdempotencyToken -> (request, constraint id)
    principals: dict = field(default_factory=dict)  # portfolio id -> [(arn, type)]
    account_shares: dict = field(default_factory=dict)  # portfolio id -> {account: flags}
    node_shares: dict = field(default_factory=dict)  # portfolio id -> {(type, value): flags}
    accepted: dict = field(default_factory=dict)  # portfolio id -> (owner account, share type), in the recipient
    organizations_access: str = "DISABLED"
    access_reads_left: int = 0  # GetAWSOrganizationsAccessStatus reads still UNDER_CHANGE
    searches: int = 0  # SearchProductsAsAdmin calls so far
    created_at_search: dict = field(default_factory=dict)  # product id -> searches when it was created
    provisioned: dict = field(default_factory=dict)  # provisioned product id -> detail
    share_tokens: dict = field(default_factory=dict)  # PortfolioShareToken -> _ShareProgress


@dataclass
class _ShareProgress:
    """An organization share's asynchronous progress (CreatePortfolioShare returns a token)."""

    portfolio_id: str
    node: tuple
    reads_left: int
    accounts: list


def _organization(account_id: str):
    """(organizations backend, org) of the Organization whose management account is ``account_id``."""
    from moto.organizations.models import organizations_backends

    for account, _partition, backend in organizations_backends.iter_backends():
        if backend.org is not None and backend.org.master_account_id == account_id and account == account_id:
            return backend, backend.org
    return None, None


def _node_accounts(self, node: tuple) -> list[str]:
    """The member accounts an organization node covers; ResourceNotFound for a node not in the caller's org."""
    backend, org = _organization(self.account_id)
    if org is None:
        # CreatePortfolioShare: "Shares to an organization node can only be created by the management
        # account of an organization or by a delegated administrator." (delegated admins: not emulated)
        raise OperationNotSupportedException(
            "Shares to an organization node can only be created by the management account of an organization."
        )
    kind, value = node
    members = [a.id for a in backend.accounts if a.id != org.master_account_id]
    if kind == "ORGANIZATION":
        if value != org.id:
            raise _not_found(f"Organization {value} not found.")
        return members
    if kind == "ACCOUNT":
        if value not in members:
            raise _not_found(f"Account {value} is not a member account of organization {org.id}.")
        return [value]
    ous = {ou.id: ou for ou in backend.ou}
    if value not in ous:
        raise _not_found(f"Organizational unit {value} not found.")
    return [a for a in accounts_under(backend, value) if a != org.master_account_id]


def _start_share(self, portfolio_id: str, node: tuple) -> str:
    token = f"share-{_new_id('tok')[4:]}"
    _state(self).share_tokens[token] = _ShareProgress(
        portfolio_id, node, int(OPTIONS["share_polls"]), _node_accounts(self, node)
    )
    return token


def _share_in_progress(self, portfolio_id: str, node: tuple) -> bool:
    return any(
        p.portfolio_id == portfolio_id and p.node == node and p.reads_left > 0
        for p in _state(self).share_tokens.values()
    )


def _state(backend) -> _State:
    if "_sm_state" not in backend.__dict__:
        backend._sm_state = _State()
    return backend._sm_state


# --- backend methods ----------------------------------------------------------------------


def _product(self, product_id: str | None = None, name: str | None = None):
    if product_id:
        product = self.products.get(product_id)
    elif name:
        product = self.lookup_by_name(name)
    else:
        raise _invalid("Either Id or Name must be specified.")
    if product is None:
        raise _not_found(f"Product {product_id or name} not found.")
    return product


def _portfolio(self, portfolio_id: str):
    portfolio = self.portfolios.get(portfolio_id)
    if portfolio is None:
        raise _not_found(f"Portfolio {portfolio_id} not found.")
    return portfolio


def _artifact(self, product_id: str, artifact_id: str | None = None, name: str | None = None) -> _Artifact:
    for artifact in _state(self).artifacts.get(product_id, []):
        if (artifact_id and artifact.id == artifact_id) or (not artifact_id and name and artifact.name == name):
            return artifact
    raise _not_found(f"Provisioning artifact {artifact_id or name} not found for product {product_id}.")


def _template_object(url: str):
    """(object, its bucket's account) of the object a LoadTemplateFromURL names in the local S3
    (path or virtual-host style), or (None, None)."""
    from moto.s3.models import s3_backends

    parsed = urllib.parse.urlparse(url)
    host, path = parsed.hostname or "", urllib.parse.unquote(parsed.path.lstrip("/"))
    match = re.match(r"^(.+)\.s3[.-]", host)
    bucket, _, key = (f"{match.group(1)}/{path}" if match else path).partition("/")
    for account, _partition, backend in s3_backends.iter_backends():
        found = backend.buckets.get(bucket)
        if found is not None:
            return found.keys.get(key), account
    return None, None


def _kms_key(key_id: str | None, account: str, region: str):
    """The local KMS key an object names (id, ARN, alias or alias ARN; None: the aws/s3 key), or None."""
    from moto.kms.models import kms_backends

    key_id = key_id or "alias/aws/s3"
    match = re.fullmatch(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):.+", key_id)
    if match:
        region, account = match.groups()
    try:
        return kms_backends[account][region].describe_key(key_id)
    except (KeyError, TypeError, AttributeError):
        return None


def _template_key_problem(obj, bucket_account: str, region: str, caller: tuple[str, str] | None) -> str | None:
    """Why the caller cannot read a template object encrypted under a KMS key; None when it can.

    Whose credentials Service Catalog fetches the template with is undocumented; stricter: the
    caller's, as S3 checks any requester (AWS Knowledge Center, "decrypt-kms-encrypted-objects-s3":
    "Amazon S3 checks if the AWS Identity and Access Management (IAM) user or role that sent the
    request is authorized to decrypt the object's key. If the IAM user or role and key belong to the
    same AWS account, then decrypt permissions must be granted on the key policy."). The key policy
    is read with the STS patch's evaluator (``sts.resource_policy_allows``: what it does not
    understand refuses); the caller's identity policies are not evaluated. The aws/s3 AWS managed key
    serves only principals of its own account (its policy: kms:CallerAccount and kms:ViaService S3).
    """
    if caller is None or obj is None or getattr(obj, "encryption", None) != "aws:kms":
        return None
    from localaws.patches.sts import _organization_id, resource_policy_allows

    caller_arn, caller_account = caller
    key = _kms_key(obj.kms_key_id, bucket_account, region)
    if key is None:
        return f"the KMS key {obj.kms_key_id or 'aws/s3'} of the template object does not exist"
    if key.key_state != "Enabled":  # S3 cannot decrypt under a disabled key or one pending deletion
        return f"the KMS key {key.arn} of the template object is {key.key_state}"
    if "alias/aws/s3" in getattr(key, "aliases", ()) or key.key_manager == "AWS":
        if caller_account != key.account_id:
            return f"{caller_arn} cannot use the AWS managed key aws/s3 of account {key.account_id}"
        return None
    context = {
        "aws:principalorgid": _organization_id(caller_account),
        "aws:principalaccount": caller_account,
        "aws:sourceaccount": None,
        "kms:calleraccount": caller_account,
        "kms:viaservice": f"s3.{region}.amazonaws.com",
    }
    if not resource_policy_allows(key.policy, "kms:Decrypt", caller_arn, caller_account, context):
        return f"the key policy of {key.arn} does not allow {caller_arn} kms:Decrypt"
    return None


def _validate_template(parameters: dict, region: str, caller: tuple[str, str] | None = None) -> None:
    """ProvisioningArtifactProperties.DisableTemplateValidation: "If set to true, Service Catalog
    stops validating the specified provisioning artifact even if it is invalid." So by default the
    template is fetched and validated; an unreachable URL and an invalid body get the same answer.

    A template object encrypted under a KMS key the caller cannot use is refused even with
    validation disabled (stricter: Service Catalog must read the template to keep it; the message
    after the documented prefix is ours)."""
    url = (parameters.get("Info") or {}).get("LoadTemplateFromURL")
    if not url or parameters.get("Type", "CLOUD_FORMATION_TEMPLATE") != "CLOUD_FORMATION_TEMPLATE":
        return
    obj, bucket_account = _template_object(url)
    if problem := _template_key_problem(obj, bucket_account, region, caller):
        raise _invalid(f"{_INVALID_TEMPLATE}: the template {url} cannot be read: {problem}.")
    if parameters.get("DisableTemplateValidation"):
        return
    body = obj.value if obj is not None else None
    try:
        document = yaml.load(body, Loader=_CfnLoader) if body is not None else None
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict) or not document["Resources"]:
        raise _invalid(_INVALID_TEMPLATE)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub ...) read as plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _add_artifact(self, product_id: str, parameters: dict, caller: tuple[str, str] | None = None) -> _Artifact:
    parameters = parameters or {}
    info = parameters.get("Info") or {}
    # Info: "Specify the template source with one of the following options, but not both."
    if len({"LoadTemplateFromURL", "ImportFromPhysicalId"} & set(info)) != 1:
        raise _invalid("Info must contain exactly one of LoadTemplateFromURL or ImportFromPhysicalId.")
    artifact_type = parameters.get("Type", "CLOUD_FORMATION_TEMPLATE")
    if artifact_type not in _ARTIFACT_TYPES:
        raise _invalid(f"Type {artifact_type} is not valid.")
    # ProvisioningArtifactProperties.Name: "The name of the provisioning artifact (for example,
    # v1 v2beta). No spaces are allowed."
    if " " in (parameters.get("Name") or ""):
        raise _invalid(f"Provisioning artifact name {parameters.get('Name')!r}: no spaces are allowed.")
    _validate_template(parameters, self.region_name, caller)
    artifact = _Artifact(
        _new_id("pa"),
        parameters.get("Name") or "",
        parameters.get("Description") or "",
        artifact_type,
        dict(info),
        utcnow(),
    )
    _state(self).artifacts.setdefault(product_id, []).append(artifact)
    return artifact


_original_create_product = models.ServiceCatalogBackend.create_product
_original_delete_product = models.ServiceCatalogBackend.delete_product
_original_delete_portfolio = models.ServiceCatalogBackend.delete_portfolio


def create_product(self, *args, caller: tuple[str, str] | None = None, **kwargs):
    parameters = kwargs.get("provisioning_artifact_parameters")
    if not parameters and not kwargs.get("source_connection"):
        raise _invalid("ProvisioningArtifactParameters are required.")
    known = set(self.products)
    product = _original_create_product(self, *args, **kwargs)
    if product.id not in known:  # not an idempotent replay
        _state(self).created_at_search[product.id] = _state(self).searches
        if parameters:
            product.initial_artifact = _add_artifact(self, product.id, parameters, caller)
    return product


def delete_product(self, accept_language, id):
    _product(self, id)
    if any(id in products for products in _state(self).associations.values()):
        raise ResourceInUseException(f"Product {id} is associated with a portfolio; disassociate it first.")
    _state(self).artifacts.pop(id, None)
    return _original_delete_product(self, accept_language, id)


def delete_portfolio(self, accept_language, id):
    _portfolio(self, id)
    state = _state(self)
    if state.associations.get(id) or any(c.portfolio_id == id for c in state.constraints.values()):
        raise ResourceInUseException(f"Portfolio {id} still has products or constraints.")
    if state.account_shares.get(id) or state.node_shares.get(id):
        raise ResourceInUseException(f"Portfolio {id} is still shared.")
    state.principals.pop(id, None)
    return _original_delete_portfolio(self, accept_language, id)


def _apply_tags(self, arn: str, holder, add: list | None, remove: list | None) -> None:
    if add:
        self.tagger.tag_resource(arn, add)
    if remove:
        self.tagger.untag_resource_using_names(arn, remove)
    holder.tags = self._list_tags_for_resource(arn)


def update_product(self, id, fields: dict, add_tags, remove_tags):
    product = _product(self, id)
    for attribute, value in fields.items():
        if value is not None:
            setattr(product, attribute, value)
    _apply_tags(self, product.arn, product, add_tags, remove_tags)
    return product


def update_portfolio(self, id, fields: dict, add_tags, remove_tags):
    portfolio = _portfolio(self, id)
    for attribute, value in fields.items():
        if value is not None:
            setattr(portfolio, attribute, value)
    _apply_tags(self, portfolio.arn, portfolio, add_tags, remove_tags)
    return portfolio


def associate_product_with_portfolio(self, product_id, portfolio_id):
    _product(self, product_id)
    _portfolio(self, portfolio_id)
    products = _state(self).associations.setdefault(portfolio_id, [])
    if product_id not in products:
        products.append(product_id)


def disassociate_product_from_portfolio(self, product_id, portfolio_id):
    products = _state(self).associations.get(portfolio_id, [])
    if product_id not in products:
        raise _not_found(f"Product {product_id} is not associated with portfolio {portfolio_id}.")
    if any(c.portfolio_id == portfolio_id and c.product_id == product_id for c in _state(self).constraints.values()):
        raise ResourceInUseException(
            f"Product {product_id} has constraints in portfolio {portfolio_id}; delete them first."
        )
    products.remove(product_id)


def search_products_as_admin(self, portfolio_id=None, filters=None):
    if portfolio_id:
        _portfolio(self, portfolio_id)
        products = [self.products[p] for p in _state(self).associations.get(portfolio_id, []) if p in self.products]
    else:
        products = list(self.products.values())
    for key, values in (filters or {}).items():
        wanted = [v.lower() for v in values]
        if key == "FullTextSearch":
            products = [
                p for p in products if any(w in f"{p.name} {p.description or ''} {p.owner}".lower() for w in wanted)
            ]
        elif key == "Owner":
            products = [p for p in products if (p.owner or "").lower() in wanted]
        elif key == "ProductType":
            products = [p for p in products if p.product_type.lower() in wanted]
    # SearchProductsAsAdmin is eventually consistent (undocumented: the operation's page says only
    # "Gets information about the products for the specified portfolio or all products."; tools
    # such as Terraform wait after CreateProduct). Opt-in (search_lag=N), so stricter: undocumented
    # in how long: a product created less than N searches ago is not listed yet.
    state = _state(self)
    lag = int(OPTIONS["search_lag"])
    products = [p for p in products if state.searches - state.created_at_search.get(p.id, -lag) >= lag]
    state.searches += 1
    return sorted(products, key=lambda p: p.created_time)


def list_portfolios_for_product(self, product_id):
    _product(self, product_id)
    return [
        self.portfolios[pid]
        for pid, products in _state(self).associations.items()
        if product_id in products and pid in self.portfolios
    ]


def create_provisioning_artifact(self, product_id, parameters, caller: tuple[str, str] | None = None):
    _product(self, product_id)
    return _add_artifact(self, product_id, parameters, caller)


def update_provisioning_artifact(self, product_id, artifact_id, name, description, active, guidance):
    artifact = _artifact(self, product_id, artifact_id)
    if guidance is not None and guidance not in ("DEFAULT", "DEPRECATED"):
        raise _invalid(f"Guidance {guidance} is not valid.")
    for attribute, value in (("name", name), ("description", description), ("active", active), ("guidance", guidance)):
        if value is not None:
            setattr(artifact, attribute, value)
    return artifact


def delete_provisioning_artifact(self, product_id, artifact_id):
    artifacts = _state(self).artifacts.get(product_id, [])
    artifact = _artifact(self, product_id, artifact_id)
    # No refusal of a version a provisioned product uses: AWS documents none ("You cannot delete
    # the last provisioning artifact for a product" is the documented one).
    if len(artifacts) == 1:
        raise _invalid("A product must have at least one provisioning artifact; the last one cannot be deleted.")
    artifacts.remove(artifact)


def create_constraint(self, portfolio_id, product_id, parameters, constraint_type, description):
    _portfolio(self, portfolio_id)
    _product(self, product_id)
    state = _state(self)
    if product_id not in state.associations.get(portfolio_id, []):
        raise _not_found(f"Product {product_id} is not associated with portfolio {portfolio_id}.")
    if constraint_type not in _CONSTRAINT_TYPES:
        raise _invalid(f"Type {constraint_type} is not valid.")
    try:
        values = json.loads(parameters)
    except (TypeError, ValueError):
        raise _invalid("Parameters must be a JSON document.") from None
    if constraint_type == "LAUNCH":
        if not isinstance(values, dict) or len({"RoleArn", "LocalRoleName"} & set(values)) != 1:
            raise _invalid("A LAUNCH constraint takes exactly one of RoleArn or LocalRoleName.")
        if any(
            c.type == "LAUNCH" and c.portfolio_id == portfolio_id and c.product_id == product_id
            for c in state.constraints.values()
        ):
            raise DuplicateResourceException(
                f"Product {product_id} already has a LAUNCH constraint in portfolio {portfolio_id}."
            )
        _check_launch_role(self, values)
    constraint = _Constraint(
        _new_id("cons"), constraint_type, portfolio_id, product_id, parameters, description or "", self.account_id
    )
    state.constraints[constraint.id] = constraint
    return constraint


def _iam_entity_exists(arn: str) -> bool:
    """Whether a role, user or group ARN names an existing IAM entity of its account (path-aware)."""
    from moto.iam.models import iam_backends

    match = re.fullmatch(r"arn:(aws[a-z-]*):iam::(\d{12}):(role|user|group)/(.+)", arn or "")
    if not match:
        return False
    partition, account, kind, path_name = match.groups()
    if account not in iam_backends or partition not in iam_backends[account]:
        return False
    backend = iam_backends[account][partition]
    entities = {"role": backend.roles.values(), "user": backend.users.values(), "group": backend.groups.values()}
    return any(getattr(e, "arn", None) == arn for e in entities[kind])


def _check_launch_role(self, values: dict) -> None:
    """CreateConstraint (LAUNCH): "The given role name must exist in the account used to create the
    launch constraint and the account of the user who launches a product with this launch constraint."
    """
    if values.get("LocalRoleName"):
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account_id][models.get_partition(self.region_name)]
        if not any(r.name == values["LocalRoleName"] for r in backend.roles.values()):
            raise _invalid(
                f"Invalid input parameter(s): role {values['LocalRoleName']} does not exist in account "
                f"{self.account_id}."
            )
    elif not _iam_entity_exists(values.get("RoleArn", "")):
        raise _invalid(f"Invalid input parameter(s): role {values.get('RoleArn')} does not exist.")


def _constraint(self, constraint_id) -> _Constraint:
    constraint = _state(self).constraints.get(constraint_id)
    if constraint is None:
        raise _not_found(f"Constraint {constraint_id} not found.")
    return constraint


def update_constraint(self, constraint_id, description, parameters):
    constraint = _constraint(self, constraint_id)
    if parameters is not None:
        try:
            values = json.loads(parameters)
        except (TypeError, ValueError):
            raise _invalid("Parameters must be a JSON document.") from None
        if constraint.type == "LAUNCH" and (
            not isinstance(values, dict) or len({"RoleArn", "LocalRoleName"} & set(values)) != 1
        ):
            raise _invalid("A LAUNCH constraint takes exactly one of RoleArn or LocalRoleName.")
        if constraint.type == "LAUNCH":
            _check_launch_role(self, values)
        constraint.parameters = parameters
    if description is not None:
        constraint.description = description
    return constraint


def delete_constraint(self, constraint_id):
    _constraint(self, constraint_id)
    del _state(self).constraints[constraint_id]


def list_constraints_for_portfolio(self, portfolio_id, product_id):
    _portfolio(self, portfolio_id)
    return [
        c
        for c in _state(self).constraints.values()
        if c.portfolio_id == portfolio_id and (not product_id or c.product_id == product_id)
    ]


def _own_or_imported(self, portfolio_id: str) -> None:
    """A portfolio of this account, or one it imported (accepted): both take principals."""
    if portfolio_id not in self.portfolios and portfolio_id not in _state(self).accepted:
        raise _not_found(f"Portfolio {portfolio_id} not found.")


def associate_principal_with_portfolio(self, portfolio_id, arn, principal_type):
    _own_or_imported(self, portfolio_id)
    if principal_type not in ("IAM", "IAM_PATTERN"):
        raise _invalid(f"PrincipalType {principal_type} is not valid.")
    principals = _state(self).principals.setdefault(portfolio_id, [])
    if principal_type == "IAM_PATTERN":
        # "The "?" and "*" characters are allowed only after the resource-type in the resource-id segment."
        if not re.fullmatch(r"arn:aws[a-z-]*:iam:::(user|group|role)/[\w+=,.@*?/-]+", arn):
            raise _invalid(
                "Invalid input parameter(s): an IAM_PATTERN is arn:partition:iam:::resource-type/resource-id "
                "with resource-type user, group or role."
            )
        # "You can associate a maximum of 10 Principals with a portfolio using PrincipalType as IAM_PATTERN."
        if (arn, principal_type) not in principals and sum(1 for p in principals if p[1] == "IAM_PATTERN") >= (
            _MAX_PATTERNS
        ):
            raise LimitExceededException(f"A portfolio takes at most {_MAX_PATTERNS} principals of type IAM_PATTERN.")
    elif not _iam_entity_exists(arn):
        # "With this configuration, the PrincipalARN must already exist in the recipient account
        # before it can be associated."
        raise _invalid(f"Invalid input parameter(s): principal {arn} does not exist.")
    if (arn, principal_type) not in principals:
        principals.append((arn, principal_type))


def disassociate_principal_from_portfolio(self, portfolio_id, arn, principal_type):
    _own_or_imported(self, portfolio_id)
    principals = _state(self).principals.get(portfolio_id, [])
    matching = [p for p in principals if p[0] == arn and (principal_type is None or p[1] == principal_type)]
    if not matching:
        raise _not_found(f"Principal {arn} is not associated with portfolio {portfolio_id}.")
    for principal in matching:
        principals.remove(principal)


_SHARE_PRINCIPALS_ORGANIZATION_ONLY = (
    "SharePrincipals is only supported for shares to an OrganizationNode of type ORGANIZATION or ORGANIZATIONAL_UNIT."
)


def _flags(share_tag_options, share_principals) -> dict:
    return {"ShareTagOptions": bool(share_tag_options), "SharePrincipals": bool(share_principals), "Accepted": False}


def create_portfolio_share(
    self, accept_language, portfolio_id, account_id, organization_node, share_tag_options, share_principals
):
    _portfolio(self, portfolio_id)
    state = _state(self)
    if bool(account_id) == bool(organization_node):
        raise _invalid("Give exactly one of AccountId or OrganizationNode.")
    if account_id:
        if account_id == self.account_id:
            raise _invalid("A portfolio cannot be shared with its own account.")
        if share_principals:
            raise _invalid(_SHARE_PRINCIPALS_ORGANIZATION_ONLY)
        state.account_shares.setdefault(portfolio_id, {}).setdefault(
            account_id, _flags(share_tag_options, share_principals)
        )
        access = self.portfolio_access.setdefault(portfolio_id, [])
        if account_id not in access:
            access.append(account_id)
        return None
    if state.organizations_access != "ENABLED":
        raise InvalidStateException(
            "AWS Organizations access is not enabled for Service Catalog: call EnableAWSOrganizationsAccess first."
        )
    node = (organization_node.get("Type"), organization_node.get("Value"))
    if node[0] not in ("ORGANIZATION", "ORGANIZATIONAL_UNIT", "ACCOUNT") or not node[1]:
        raise _invalid("OrganizationNode needs a Type (ORGANIZATION, ORGANIZATIONAL_UNIT, ACCOUNT) and a Value.")
    token = _start_share(self, portfolio_id, node)  # refuses a node not in the caller's Organization
    flags = _flags(share_tag_options, share_principals)
    flags["Accepted"] = True  # organization shares are imported automatically
    state.node_shares.setdefault(portfolio_id, {}).setdefault(node, flags)
    return token


def update_portfolio_share(self, portfolio_id, account_id, organization_node, share_tag_options, share_principals):
    _portfolio(self, portfolio_id)
    state = _state(self)
    if account_id:
        flags = state.account_shares.get(portfolio_id, {}).get(account_id)
    else:
        node = organization_node or {}
        flags = state.node_shares.get(portfolio_id, {}).get((node.get("Type"), node.get("Value")))
    if flags is None:
        raise _not_found("No such portfolio share.")
    if account_id and share_principals:
        raise _invalid(_SHARE_PRINCIPALS_ORGANIZATION_ONLY)
    node_key = None if account_id else ((organization_node or {}).get("Type"), (organization_node or {}).get("Value"))
    # UpdatePortfolioShare: "The portfolio share cannot be updated if the CreatePortfolioShare
    # operation is IN_PROGRESS, as the share is not available to recipient entities."
    if node_key and _share_in_progress(self, portfolio_id, node_key):
        raise InvalidStateException(f"The portfolio share of {portfolio_id} with {node_key[1]} is IN_PROGRESS.")
    if share_tag_options is not None:
        flags["ShareTagOptions"] = bool(share_tag_options)
    if share_principals is not None:
        flags["SharePrincipals"] = bool(share_principals)
    return None if account_id else _start_share(self, portfolio_id, node_key)


def delete_portfolio_share(self, accept_language, portfolio_id, account_id, organization_node):
    _portfolio(self, portfolio_id)
    state = _state(self)
    if account_id:
        if state.account_shares.get(portfolio_id, {}).pop(account_id, None) is None:
            raise _not_found(f"Portfolio {portfolio_id} is not shared with {account_id}.")
        if account_id in self.portfolio_access.get(portfolio_id, []):
            self.portfolio_access[portfolio_id].remove(account_id)
        for recipient in _backends_in_region(self.region_name):
            if recipient.account_id == account_id:
                _state(recipient).accepted.pop(portfolio_id, None)
        return None
    node = ((organization_node or {}).get("Type"), (organization_node or {}).get("Value"))
    if state.node_shares.get(portfolio_id, {}).pop(node, None) is None:
        raise _not_found(f"Portfolio {portfolio_id} is not shared with {node[1]}.")
    return _start_share(self, portfolio_id, node)


def describe_portfolio_shares(self, portfolio_id, type, page_token=None, page_size=None):
    _portfolio(self, portfolio_id)
    state = _state(self)
    if type == "ACCOUNT":
        entries = [
            {"PrincipalId": a, "Type": "ACCOUNT", **flags}
            for a, flags in state.account_shares.get(portfolio_id, {}).items()
        ]
    elif type in ("ORGANIZATION", "ORGANIZATIONAL_UNIT"):
        entries = [
            {"PrincipalId": v, "Type": t, **flags}
            for (t, v), flags in state.node_shares.get(portfolio_id, {}).items()
            if t == type
        ]
    elif type == "ORGANIZATION_MEMBER_ACCOUNT":
        entries = [
            {"PrincipalId": v, "Type": type, **flags}
            for (t, v), flags in state.node_shares.get(portfolio_id, {}).items()
            if t == "ACCOUNT"
        ]
    else:
        raise _invalid(f"Type {type} is not valid.")
    page, token = _page(entries, page_token, page_size, 50)
    return token, page


def _backends_in_region(region: str):
    for _account, backend_region, backend in models.servicecatalog_backends.iter_backends():
        if backend_region == region:
            yield backend


def _find_shared_portfolio(self, portfolio_id):
    for owner in _backends_in_region(self.region_name):
        if owner.account_id != self.account_id and portfolio_id in owner.portfolios:
            return owner
    raise _not_found(f"Portfolio {portfolio_id} not found.")


def accept_portfolio_share(self, portfolio_id, share_type):
    share_type = share_type or "IMPORTED"
    if share_type == "AWS_SERVICECATALOG":
        raise _not_found("AWS_SERVICECATALOG shares are not supported.")
    owner = _find_shared_portfolio(self, portfolio_id)
    owner_state = _state(owner)
    if share_type == "IMPORTED":
        flags = owner_state.account_shares.get(portfolio_id, {}).get(self.account_id)
        if flags is None:
            raise _not_found(f"Portfolio {portfolio_id} is not shared with account {self.account_id}.")
        flags["Accepted"] = True
    elif not owner_state.node_shares.get(portfolio_id):
        raise _not_found(f"Portfolio {portfolio_id} is not shared through AWS Organizations.")
    _state(self).accepted[portfolio_id] = (owner.account_id, share_type)


def list_accepted_portfolio_shares(self, share_type):
    share_type = share_type or "IMPORTED"
    out = []
    for portfolio_id, (owner_account, accepted_type) in _state(self).accepted.items():
        if accepted_type != share_type:
            continue
        for owner in _backends_in_region(self.region_name):
            if owner.account_id == owner_account and portfolio_id in owner.portfolios:
                out.append(owner.portfolios[portfolio_id])
    return out


def _all_provisioned(self) -> list[dict]:
    return list(_state(self).provisioned.values())


def _launch_path(self, product_id: str, path_id: str | None) -> str:
    """The portfolio through which ``product_id`` is launched (ProvisionProduct's PathId)."""
    portfolios = [pid for pid, products in _state(self).associations.items() if product_id in products]
    if not portfolios:
        raise _invalid(f"Product {product_id} is in no portfolio: there is no launch path.")
    if path_id:
        if path_id not in portfolios:
            raise _not_found(f"Launch path {path_id} not found for product {product_id}.")
        return path_id
    # ProvisionProduct.PathId: "This value is optional if the product has a default path, and
    # required if the product has more than one path."
    if len(portfolios) > 1:
        raise _invalid(f"Product {product_id} has more than one launch path: give PathId.")
    return portfolios[0]


def _check_local_launch_role(self, portfolio_id: str, product_id: str) -> None:
    """A LAUNCH constraint with LocalRoleName needs that role in the account that launches.

    LaunchRoleConstraint.LocalRoleName: "If you specify the LocalRoleName property, when an account
    uses the launch constraint, the IAM role with that name in the account will be used. ... The
    given role name must exist in the account used to create the launch constraint and the account
    of the user who launches a product with this launch constraint." What AWS answers when it does
    not is undocumented: stricter, ProvisionProduct itself is refused (InvalidParametersException,
    message ours) rather than a FAILED record later.
    """
    from moto.iam.models import iam_backends

    for constraint in _state(self).constraints.values():
        if (constraint.type, constraint.portfolio_id, constraint.product_id) != ("LAUNCH", portfolio_id, product_id):
            continue
        role_name = json.loads(constraint.parameters).get("LocalRoleName")
        if not role_name:
            continue
        partition = models.get_partition(self.region_name)
        roles = iam_backends[self.account_id][partition].roles.values() if self.account_id in iam_backends else []
        if not any(r.name == role_name for r in roles):
            raise _invalid(
                f"Invalid input parameter(s): the launch constraint {constraint.id} names LocalRoleName "
                f"{role_name}, which does not exist in the launching account {self.account_id}."
            )


def provision_product(self, product_id, product_name, artifact_id, artifact_name, name, tags, path_id=None):
    product = _product(self, product_id, product_name)
    artifact = _artifact(self, product.id, artifact_id, artifact_name)
    if not artifact.active:
        raise _invalid(f"Provisioning artifact {artifact.id} is not active.")
    _check_local_launch_role(self, _launch_path(self, product.id, path_id), product.id)
    pp_id = _new_id("pp")
    now = utcnow()
    detail = {
        "Name": name,
        "Arn": f"arn:{models.get_partition(self.region_name)}:servicecatalog:{self.region_name}:{self.account_id}"
        f":stack/{name}/{pp_id}",
        "Type": "CFN_STACK",
        "Id": pp_id,
        "Status": "AVAILABLE",
        "CreatedTime": now,
        "ProductId": product.id,
        "ProvisioningArtifactId": artifact.id,
    }
    _state(self).provisioned[pp_id] = detail
    record = {
        "RecordId": _new_id("rec"),
        "ProvisionedProductName": name,
        "Status": "SUCCEEDED",
        "CreatedTime": now,
        "UpdatedTime": now,
        "ProvisionedProductType": "CFN_STACK",
        "RecordType": "PROVISION_PRODUCT",
        "ProvisionedProductId": pp_id,
        "ProductId": product.id,
        "ProvisioningArtifactId": artifact.id,
        "RecordTags": tags or [],
    }
    return record


# --- responses ------------------------------------------------------------------------------


def _params(self) -> dict:
    return json.loads(self.body or "{}")


def _backend(self):
    return self.servicecatalog_backend


def _product_view(product) -> dict:
    return {
        "ProductViewSummary": product.to_dict(),
        "Status": "AVAILABLE",
        "ProductARN": product.arn,
        "CreatedTime": product.created_time,
    }


def _page_result(params: dict, key: str, items: list) -> ActionResult:
    """The page of ``items`` the request's PageToken and PageSize ask for, under ``key``."""
    page, token = _page(items, params.get("PageToken"), params.get("PageSize"))
    return ActionResult({key: page, "NextPageToken": token})


def _artifact_result(artifact: _Artifact) -> ActionResult:
    return ActionResult({"ProvisioningArtifactDetail": artifact.detail(), "Info": artifact.info, "Status": "AVAILABLE"})


def _constraint_result(constraint: _Constraint) -> ActionResult:
    return ActionResult(
        {"ConstraintDetail": constraint.detail(), "ConstraintParameters": constraint.parameters, "Status": "AVAILABLE"}
    )


def r_create_product(self):
    params = _params(self)
    product = _backend(self).create_product(
        name=params.get("Name"),
        owner=params.get("Owner"),
        description=params.get("Description"),
        distributor=params.get("Distributor"),
        support_description=params.get("SupportDescription"),
        support_email=params.get("SupportEmail"),
        support_url=params.get("SupportUrl"),
        product_type=params.get("ProductType"),
        tags=params.get("Tags"),
        provisioning_artifact_parameters=params.get("ProvisioningArtifactParameters"),
        idempotency_token=params.get("IdempotencyToken"),
        source_connection=params.get("SourceConnection"),
        accept_language=params.get("AcceptLanguage"),
        caller=caller_of(self),
    )
    artifact = getattr(product, "initial_artifact", None)
    return ActionResult(
        {
            "ProductViewDetail": _product_view(product),
            "ProvisioningArtifactDetail": artifact.detail() if artifact else {},
            "Tags": _backend(self)._list_tags_for_resource(product.arn),
        }
    )


def r_describe_product(self):
    params = _params(self)
    backend = _backend(self)
    product = backend.describe_product(accept_language=None, id=params.get("Id"), name=params.get("Name"))
    artifacts = [a for a in _state(backend).artifacts.get(product.id, []) if a.active]
    return ActionResult(
        {
            "ProductViewSummary": product.to_dict(),
            "ProvisioningArtifacts": [
                {
                    "Id": a.id,
                    "Name": a.name,
                    "Description": a.description,
                    "CreatedTime": a.created,
                    "Guidance": a.guidance,
                }
                for a in artifacts
            ],
            "Budgets": [],
            "LaunchPaths": [],
        }
    )


def r_describe_product_as_admin(self):
    params = _params(self)
    backend = _backend(self)
    product = _product(backend, params.get("Id"), params.get("Name"))
    return ActionResult(
        {
            "ProductViewDetail": _product_view(product),
            "ProvisioningArtifactSummaries": [a.summary() for a in _state(backend).artifacts.get(product.id, [])],
            "Tags": backend._list_tags_for_resource(product.arn),
            "TagOptions": [],
            "Budgets": [],
        }
    )


def r_update_product(self):
    params = _params(self)
    backend = _backend(self)
    fields = {
        "name": params.get("Name"),
        "owner": params.get("Owner"),
        "description": params.get("Description"),
        "distributor": params.get("Distributor"),
        "support_description": params.get("SupportDescription"),
        "support_email": params.get("SupportEmail"),
        "support_url": params.get("SupportUrl"),
    }
    product = backend.update_product(params["Id"], fields, params.get("AddTags"), params.get("RemoveTags"))
    return ActionResult(
        {"ProductViewDetail": _product_view(product), "Tags": backend._list_tags_for_resource(product.arn)}
    )


def r_update_portfolio(self):
    params = _params(self)
    backend = _backend(self)
    fields = {
        "display_name": params.get("DisplayName"),
        "description": params.get("Description"),
        "provider_name": params.get("ProviderName"),
    }
    portfolio = backend.update_portfolio(params["Id"], fields, params.get("AddTags"), params.get("RemoveTags"))
    return ActionResult(
        {"PortfolioDetail": portfolio.to_dict(), "Tags": backend._list_tags_for_resource(portfolio.arn)}
    )


def r_describe_portfolio(self):
    params = _params(self)
    backend = _backend(self)
    portfolio = _portfolio(backend, params.get("Id"))
    return ActionResult(
        {
            "PortfolioDetail": portfolio.to_dict(),
            "Tags": backend._list_tags_for_resource(portfolio.arn),
            "TagOptions": [],
            "Budgets": [],
        }
    )


def r_list_portfolios(self):
    params = _params(self)
    portfolios = sorted(_backend(self).portfolios.values(), key=lambda p: p.created_time)
    return _page_result(params, "PortfolioDetails", [p.to_dict() for p in portfolios])


def r_associate_product_with_portfolio(self):
    params = _params(self)
    _backend(self).associate_product_with_portfolio(params["ProductId"], params["PortfolioId"])
    return EmptyResult()


def r_disassociate_product_from_portfolio(self):
    params = _params(self)
    _backend(self).disassociate_product_from_portfolio(params["ProductId"], params["PortfolioId"])
    return EmptyResult()


def r_search_products_as_admin(self):
    params = _params(self)
    products = _backend(self).search_products_as_admin(params.get("PortfolioId"), params.get("Filters"))
    if params.get("SortOrder") == "DESCENDING":
        products.reverse()
    page, token = _page(products, params.get("PageToken"), params.get("PageSize"))
    return ActionResult({"ProductViewDetails": [_product_view(p) for p in page], "NextPageToken": token})


def r_list_portfolios_for_product(self):
    params = _params(self)
    portfolios = _backend(self).list_portfolios_for_product(params["ProductId"])
    return _page_result(params, "PortfolioDetails", [p.to_dict() for p in portfolios])


def r_create_provisioning_artifact(self):
    params = _params(self)
    artifact = _backend(self).create_provisioning_artifact(
        params["ProductId"], params.get("Parameters"), caller_of(self)
    )
    return _artifact_result(artifact)


def r_list_provisioning_artifacts(self):
    params = _params(self)
    backend = _backend(self)
    _product(backend, params["ProductId"])
    return ActionResult(
        {"ProvisioningArtifactDetails": [a.detail() for a in _state(backend).artifacts.get(params["ProductId"], [])]}
    )


def r_describe_provisioning_artifact(self):
    params = _params(self)
    backend = _backend(self)
    product = _product(backend, params.get("ProductId"), params.get("ProductName"))
    artifact = _artifact(
        backend, product.id, params.get("ProvisioningArtifactId"), params.get("ProvisioningArtifactName")
    )
    return _artifact_result(artifact)


def r_update_provisioning_artifact(self):
    params = _params(self)
    artifact = _backend(self).update_provisioning_artifact(
        params["ProductId"],
        params["ProvisioningArtifactId"],
        params.get("Name"),
        params.get("Description"),
        params.get("Active"),
        params.get("Guidance"),
    )
    return _artifact_result(artifact)


def r_delete_provisioning_artifact(self):
    params = _params(self)
    _backend(self).delete_provisioning_artifact(params["ProductId"], params["ProvisioningArtifactId"])
    return EmptyResult()


def r_create_constraint(self):
    params = _params(self)
    backend = _backend(self)
    request = tuple(params.get(k) for k in ("PortfolioId", "ProductId", "Parameters", "Type", "Description"))
    # CreateConstraint.IdempotencyToken: "A unique identifier that you provide to ensure idempotency. If
    # multiple requests differ only by the idempotency token, the same response is returned for each
    # repeated request." The same token with another request: stricter (undocumented): refused.
    token = params.get("IdempotencyToken")
    state = _state(backend)
    if token in state.constraint_tokens:
        previous, constraint_id = state.constraint_tokens[token]
        if previous != request:
            raise _invalid("The IdempotencyToken was already used for a different request.")
        if constraint_id in state.constraints:
            return _constraint_result(state.constraints[constraint_id])
    constraint = backend.create_constraint(*request)
    if token:
        state.constraint_tokens[token] = (request, constraint.id)
    return _constraint_result(constraint)


def r_describe_constraint(self):
    constraint = _constraint(_backend(self), _params(self)["Id"])
    return _constraint_result(constraint)


def r_update_constraint(self):
    params = _params(self)
    constraint = _backend(self).update_constraint(params["Id"], params.get("Description"), params.get("Parameters"))
    return _constraint_result(constraint)


def r_delete_constraint(self):
    _backend(self).delete_constraint(_params(self)["Id"])
    return EmptyResult()


def r_list_constraints_for_portfolio(self):
    params = _params(self)
    constraints = _backend(self).list_constraints_for_portfolio(params["PortfolioId"], params.get("ProductId"))
    return _page_result(params, "ConstraintDetails", [c.detail() for c in constraints])


def r_associate_principal_with_portfolio(self):
    params = _params(self)
    _backend(self).associate_principal_with_portfolio(
        params["PortfolioId"], params["PrincipalARN"], params["PrincipalType"]
    )
    return EmptyResult()


def r_disassociate_principal_from_portfolio(self):
    params = _params(self)
    _backend(self).disassociate_principal_from_portfolio(
        params["PortfolioId"], params["PrincipalARN"], params.get("PrincipalType")
    )
    return EmptyResult()


def r_list_principals_for_portfolio(self):
    params = _params(self)
    backend = _backend(self)
    _own_or_imported(backend, params["PortfolioId"])
    principals = [
        {"PrincipalARN": arn, "PrincipalType": kind}
        for arn, kind in _state(backend).principals.get(params["PortfolioId"], [])
    ]
    return _page_result(params, "Principals", principals)


def r_update_portfolio_share(self):
    params = _params(self)
    token = _backend(self).update_portfolio_share(
        params["PortfolioId"],
        params.get("AccountId"),
        params.get("OrganizationNode"),
        params.get("ShareTagOptions"),
        params.get("SharePrincipals"),
    )
    # The share's outcome is read with DescribePortfolioShareStatus (asynchronous, as on AWS).
    return ActionResult({"PortfolioShareToken": token} if token else {"Status": "COMPLETED"})


def r_accept_portfolio_share(self):
    params = _params(self)
    _backend(self).accept_portfolio_share(params["PortfolioId"], params.get("PortfolioShareType"))
    return EmptyResult()


def r_list_accepted_portfolio_shares(self):
    params = _params(self)
    portfolios = _backend(self).list_accepted_portfolio_shares(params.get("PortfolioShareType"))
    return _page_result(params, "PortfolioDetails", [p.to_dict() for p in portfolios])


def _management_only(backend) -> None:
    # EnableAWSOrganizationsAccess: "This API can only be called by the management account in the
    # organization. ... Note that a delegated administrator is not authorized to invoke" it.
    if _organization(backend.account_id)[1] is None:
        raise OperationNotSupportedException("Only the management account of an organization can call this API.")


def r_enable_aws_organizations_access(self):
    _management_only(_backend(self))
    state = _state(_backend(self))
    # GetAWSOrganizationsAccessStatus: AccessStatus is ENABLED, UNDER_CHANGE or DISABLED; opt-in
    # (access_polls=N) the change takes N reads (stricter: undocumented how long).
    if state.organizations_access != "ENABLED" and int(OPTIONS["access_polls"]) > 0:
        state.organizations_access, state.access_reads_left = "UNDER_CHANGE", int(OPTIONS["access_polls"])
    else:
        state.organizations_access = "ENABLED"
    return EmptyResult()


def r_describe_portfolio_share_status(self):
    """DescribePortfolioShareStatus: IN_PROGRESS for ``share_polls`` reads, then COMPLETED (or
    COMPLETED_WITH_ERRORS naming the accounts of ``fail_share_accounts``)."""
    params = _params(self)
    backend = _backend(self)
    _management_only(backend)
    progress = _state(backend).share_tokens.get(params.get("PortfolioShareToken"))
    if progress is None:
        raise _not_found(f"Portfolio share token {params.get('PortfolioShareToken')} not found.")
    failing = [a for a in progress.accounts if a in str(OPTIONS["fail_share_accounts"]).split(",")]
    if progress.reads_left > 0:
        progress.reads_left -= 1
        status, details = "IN_PROGRESS", {}
    else:
        status = "COMPLETED_WITH_ERRORS" if failing else "COMPLETED"
        details = {
            "SuccessfulShares": [a for a in progress.accounts if a not in failing],
            "ShareErrors": [{"Accounts": failing, "Message": "The share could not be completed.", "Error": "Error"}]
            if failing
            else [],
        }
    return ActionResult(
        {
            "PortfolioShareToken": params["PortfolioShareToken"],
            "PortfolioId": progress.portfolio_id,
            "OrganizationNodeValue": progress.node[1],
            "Status": status,
            "ShareDetails": details,
        }
    )


def r_disable_aws_organizations_access(self):
    _state(_backend(self)).organizations_access = "DISABLED"
    return EmptyResult()


def r_get_aws_organizations_access_status(self):
    state = _state(_backend(self))
    status = state.organizations_access
    if status == "UNDER_CHANGE":
        state.access_reads_left -= 1
        if state.access_reads_left <= 0:
            state.organizations_access = "ENABLED"
    return ActionResult({"AccessStatus": status})


def r_provision_product(self):
    params = _params(self)
    record = _backend(self).provision_product(
        params.get("ProductId"),
        params.get("ProductName"),
        params.get("ProvisioningArtifactId"),
        params.get("ProvisioningArtifactName"),
        params["ProvisionedProductName"],
        params.get("Tags"),
        params.get("PathId"),
    )
    return ActionResult({"RecordDetail": record})


def r_scan_provisioned_products(self):
    params = _params(self)
    return _page_result(params, "ProvisionedProducts", _all_provisioned(_backend(self)))


def r_search_provisioned_products(self):
    params = _params(self)
    items = _all_provisioned(_backend(self))
    page, token = _page(items, params.get("PageToken"), params.get("PageSize"))
    return ActionResult({"ProvisionedProducts": page, "TotalResultsCount": len(items), "NextPageToken": token})


_BACKEND_METHODS = {
    "create_product": create_product,
    "delete_product": delete_product,
    "delete_portfolio": delete_portfolio,
    "update_product": update_product,
    "update_portfolio": update_portfolio,
    "associate_product_with_portfolio": associate_product_with_portfolio,
    "disassociate_product_from_portfolio": disassociate_product_from_portfolio,
    "search_products_as_admin": search_products_as_admin,
    "list_portfolios_for_product": list_portfolios_for_product,
    "create_provisioning_artifact": create_provisioning_artifact,
    "update_provisioning_artifact": update_provisioning_artifact,
    "delete_provisioning_artifact": delete_provisioning_artifact,
    "create_constraint": create_constraint,
    "update_constraint": update_constraint,
    "delete_constraint": delete_constraint,
    "list_constraints_for_portfolio": list_constraints_for_portfolio,
    "associate_principal_with_portfolio": associate_principal_with_portfolio,
    "disassociate_principal_from_portfolio": disassociate_principal_from_portfolio,
    "create_portfolio_share": create_portfolio_share,
    "update_portfolio_share": update_portfolio_share,
    "delete_portfolio_share": delete_portfolio_share,
    "describe_portfolio_shares": describe_portfolio_shares,
    "accept_portfolio_share": accept_portfolio_share,
    "list_accepted_portfolio_shares": list_accepted_portfolio_shares,
    "provision_product": provision_product,
}


def configure(values: dict) -> dict:
    """Set OPTIONS from a control request (share_polls=N, search_lag=N, access_polls=N,
    fail_share_accounts=a,b); return them."""
    set_counts(values, _COUNTS, OPTIONS)
    if "fail_share_accounts" in values:
        OPTIONS["fail_share_accounts"] = str(values["fail_share_accounts"])
    return dict(OPTIONS)


def apply() -> None:
    """Add the methods above to moto's Service Catalog backend and response classes (idempotent)."""
    from localaws.patches import CONTROLS

    CONTROLS["servicecatalog"] = configure
    for name, function in _BACKEND_METHODS.items():
        setattr(models.ServiceCatalogBackend, name, function)
    for name, function in list(globals().items()):
        if name.startswith("r_") and callable(function):
            setattr(responses.ServiceCatalogResponse, name[2:], function)
