"""The Service Catalog catalog file, and the pure plan that publishes it.

``load_catalog`` reads and validates a catalog file (JSON Schema first, then the checks a
schema cannot express: unique names, template files that exist and parse), hashing each
template's bytes. ``plan_publish`` compares that desired catalog with the live state read
by :mod:`deploy.servicecatalog` and returns the list of actions to take. Nothing here
talks to AWS: the plan is a function of plain data, unit-testable without any client.

Versions are content-addressed: a template's S3 key is its sha256 and the version
(provisioning artifact) name ends with a short prefix of it, so republishing unchanged
bytes finds the existing version and plans nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from deploy.errors import InputError

OWNER_TAG_KEY = "sm-deploy:managed-by"
OWNER_TAG_VALUE = "sagemaker-stackset-deploy"
STUDIO_VISIBILITY_TAG = "sagemaker:studio-visibility"
SHORT_HASH_LENGTH = 12
TEMPLATE_MAX_BYTES = 1_000_000  # CloudFormation's limit for a template read from S3
DEFAULT_KEY_PREFIX = "servicecatalog/templates/"
DEFAULT_KEEP_ACTIVE = 3

_ROLE_NAME = r"^[\w+=,.@-]{1,64}$"
_ROLE_PATH_NAME = r"^(/[\w+=,.@-]+)*/?[\w+=,.@-]{1,64}$"
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
_PRINCIPAL_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user|group)/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$"
_ROLE_PATTERN = r"^[\w+=,.@*?/-]{1,128}$"
_ACCOUNT_ID = r"^\d{12}$"
_OU_ID = r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$"
# Shares name accounts and OUs by id, or by name / path in the Organization (resolved
# through Organizations before planning), so one catalog fits the local and a real org.
_ACCOUNT_REF = r"^(\d{12}|[A-Za-z][\w .+@-]{0,49})$"
_OU_REF = r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|(/[\w .+@&-]{1,128})+)$"
_REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
_BUCKET = r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_TAG_KEY = r"^(?!aws:)[\w .:/=+@-]{1,128}$"
_VERSION_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._]{0,39}$"
_SHORT_HASH_RE = re.compile(rf"(?:^|[-_.+])([0-9a-f]{{{SHORT_HASH_LENGTH}}})$")


def _text(max_length: int, min_length: int = 1) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _pattern(pattern: str, description: str) -> dict:
    return {"type": "string", "pattern": pattern, "description": description}


_TAGS = {
    "type": "object",
    # Service Catalog takes 20 tags a resource; the tool adds its ownership and Studio tags.
    "maxProperties": 18,
    "propertyNames": _pattern(_TAG_KEY, "a tag key of 1-128 characters not starting with 'aws:'"),
    "additionalProperties": _text(256, 0),
    "description": "a mapping of tag key to string value (at most 18)",
}
_LAUNCH_ROLE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "description": "exactly one of 'name' (a role name resolved in each launching account) or 'arn'",
    "properties": {
        "name": _pattern(_ROLE_NAME, "an IAM role name such as SageMakerProductsLaunchRole"),
        "arn": _pattern(_ROLE_ARN, "an IAM role ARN arn:<partition>:iam::<12-digit account>:role/<name>"),
    },
}
_VERSIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "keep_active": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "how many newest versions stay active (1-100)",
        },
        "keep": {
            "type": "integer",
            "minimum": 1,
            "description": "how many newest versions to keep at all; older unused ones are deleted",
        },
    },
}
_PRINCIPAL = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "description": "exactly one of 'arn' (a role, user or group ARN), 'role' (a role name of the publishing account) or 'role_pattern' (a role name with wildcards, matched in every account the portfolio is shared with)",
    "properties": {
        "arn": _pattern(_PRINCIPAL_ARN, "an IAM role, user or group ARN"),
        "role": _pattern(_ROLE_PATH_NAME, "an IAM role name (optionally with a path), of the publishing account"),
        "role_pattern": _pattern(_ROLE_PATTERN, "a role name with * or ? wildcards"),
    },
}
_PRODUCT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "template", "owner"],
    "properties": {
        "name": _text(8191),
        "template": _text(4096),
        "owner": _text(8191),
        "description": _text(8191, 0),
        "distributor": _text(8191, 0),
        "support_description": _text(8191, 0),
        "support_email": {
            "type": "string",
            "maxLength": 254,
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "description": "an e-mail address",
        },
        "support_url": {
            "type": "string",
            "maxLength": 2083,
            "pattern": r"^https?://\S+$",
            "description": "an http(s) URL",
        },
        "tags": _TAGS,
        "sagemaker_project": {
            "type": "boolean",
            "description": "true for SageMaker project templates (tagged for Studio)",
        },
        "version_label": _pattern(_VERSION_LABEL, "a short label such as 1.2 (letters, digits, '.', '_'; at most 40)"),
        "launch_role": _LAUNCH_ROLE,
        "versions": _VERSIONS,
    },
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Service Catalog catalog file of python -m deploy publish",
    "type": "object",
    "additionalProperties": False,
    "required": ["portfolio", "products"],
    "properties": {
        "version": {"const": 1, "description": "the catalog format version, 1"},
        "region": _pattern(_REGION, "an AWS region name such as us-east-1"),
        "bucket": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": _pattern(_BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"),
                "key_prefix": {
                    "type": "string",
                    "maxLength": 200,
                    "pattern": r"^([\w.=-]+/)*$",
                    "description": "a key prefix ending with '/', or empty",
                },
                "kms_key_id": _text(2048),
            },
        },
        "portfolio": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "provider"],
            "properties": {
                "name": _text(100),
                "provider": _text(50),
                "description": _text(2000, 0),
                "tags": _TAGS,
            },
        },
        "launch_role": _LAUNCH_ROLE,
        "principals": {"type": "array", "items": _PRINCIPAL},
        "versions": _VERSIONS,
        "products": {"type": "array", "minItems": 1, "items": _PRODUCT},
        "shares": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "accounts": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": _pattern(
                        _ACCOUNT_REF,
                        "a 12-digit account id (quoted in YAML) or the name of an account of the Organization",
                    ),
                },
                "organizational_units": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": _pattern(
                        _OU_REF,
                        "an OU id such as ou-ab12-cd34ef56, or an OU path from the root such as /workloads/staging",
                    ),
                },
                "organization": {"type": "boolean", "description": "share with the whole organization"},
                "share_principals": {"type": "boolean"},
                "share_tag_options": {"type": "boolean"},
                "accept_role": _pattern(
                    _ROLE_NAME, "the name of a role the tool may assume in each recipient account to accept the share"
                ),
            },
        },
    },
}


# --- the desired catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchRole:
    """A launch constraint's role: by name (``LocalRoleName``) or by ARN (``RoleArn``)."""

    name: str | None = None
    arn: str | None = None

    def parameters(self) -> dict[str, str]:
        return {"LocalRoleName": self.name} if self.name else {"RoleArn": self.arn}


@dataclass(frozen=True)
class VersionPolicy:
    keep_active: int = DEFAULT_KEEP_ACTIVE
    keep: int | None = None  # None: never delete


@dataclass(frozen=True)
class PrincipalSpec:
    kind: str  # arn | role | role_pattern
    value: str

    def resolve(self, partition: str, account: str) -> tuple[str, str]:
        """(PrincipalARN, PrincipalType) for the publishing account."""
        if self.kind == "arn":
            return self.value, "IAM"
        if self.kind == "role":
            return f"arn:{partition}:iam::{account}:role/{self.value.lstrip('/')}", "IAM"
        # IAM_PATTERN principals carry no account: they match in every recipient account.
        return f"arn:{partition}:iam:::role/{self.value.lstrip('/')}", "IAM_PATTERN"


@dataclass(frozen=True)
class ProductSpec:
    name: str
    template: str  # as written in the catalog
    path: Path
    body: bytes = field(repr=False)
    sha256: str
    owner: str
    description: str = ""
    distributor: str = ""
    support_description: str = ""
    support_email: str = ""
    support_url: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    sagemaker_project: bool = False
    version_label: str | None = None
    launch_role: LaunchRole | None = None
    versions: VersionPolicy = VersionPolicy()

    @property
    def short_hash(self) -> str:
        return self.sha256[:SHORT_HASH_LENGTH]

    @property
    def version_name(self) -> str:
        return f"{self.version_label}-{self.short_hash}" if self.version_label else self.short_hash

    @property
    def version_description(self) -> str:
        return f"sha256:{self.sha256} of {self.template}"

    def desired_tags(self) -> dict[str, str]:
        tags = dict(self.tags)
        tags[OWNER_TAG_KEY] = OWNER_TAG_VALUE
        if self.sagemaker_project:
            tags[STUDIO_VISIBILITY_TAG] = "true"
        return tags

    def fields(self) -> dict[str, str]:
        """The product's own attributes, in Service Catalog's ``UpdateProduct`` names."""
        return {
            "Owner": self.owner,
            "Description": self.description,
            "Distributor": self.distributor,
            "SupportDescription": self.support_description,
            "SupportEmail": self.support_email,
            "SupportUrl": self.support_url,
        }


@dataclass(frozen=True)
class Shares:
    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    organization: bool = False
    share_principals: bool = False
    share_tag_options: bool = False
    accept_role: str | None = None

    @property
    def needs_organizations(self) -> bool:
        return bool(self.organizational_units) or self.organization


@dataclass(frozen=True)
class Catalog:
    source: str
    portfolio_name: str
    provider: str
    products: tuple[ProductSpec, ...]
    portfolio_description: str = ""
    portfolio_tags: tuple[tuple[str, str], ...] = ()
    region: str | None = None
    bucket_name: str | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    kms_key_id: str | None = None
    principals: tuple[PrincipalSpec, ...] = ()
    shares: Shares = Shares()

    def desired_portfolio_tags(self) -> dict[str, str]:
        return {**dict(self.portfolio_tags), OWNER_TAG_KEY: OWNER_TAG_VALUE}

    def s3_key(self, product: ProductSpec) -> str:
        """Content-addressed key: identical bytes always land on the same key."""
        return f"{self.key_prefix}{product.sha256}.yaml"


# --- loading and validation --------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that accepts CloudFormation short-form tags (``!Ref``, ``!Sub``...)."""


def _cfn_tag(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _location(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _where(document: Any, path) -> str | None:
    """'product <name>' (or products[i]) for errors under products; the section name otherwise."""
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "products" and isinstance(parts[1], int):
        try:
            name = document["products"][parts[1]].get("name")
        except (AttributeError, IndexError, KeyError, TypeError):
            name = None
        return f"product '{name}'" if isinstance(name, str) else f"products[{parts[1]}]"
    return str(parts[0]) if parts else None


def _describe(error: jsonschema.ValidationError) -> tuple[str | None, str]:
    """(offending key, message saying what was expected) for one schema error."""
    path = list(error.absolute_path)
    key = _location(path) if path else None
    validator, schema = error.validator, error.schema
    if validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(schema.get("properties", {})))
        allowed = ", ".join(sorted(schema.get("properties", {})))
        name = _location(path + [unknown[0]]) if unknown else key
        return name, f"unknown key {', '.join(repr(u) for u in unknown)}; allowed keys here: {allowed}"
    if validator == "required":
        missing = re.search(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        return _location(path + [name]), f"missing required key '{name}'"
    if validator == "type":
        names = {
            "boolean": "a boolean (true or false)",
            "integer": "an integer",
            "object": "a mapping",
            "array": "a list",
            "string": "a string",
        }
        hint = f" ({schema['description']})" if schema.get("description") else ""
        return (
            key,
            f"expected {names.get(schema['type'], schema['type'])}{hint}, got {type(error.instance).__name__} {error.instance!r}",
        )
    if validator in ("pattern", "format") or (
        schema.get("description") and validator in ("minProperties", "maxProperties", "const")
    ):
        expected = schema.get("description") or error.message
        return key, f"expected {expected}, got {error.instance!r}"
    return key, error.message


def _fail(errors: list[tuple[str | None, str | None, str]], source: str):
    where, key, message = errors[0]
    if len(errors) > 1:
        others = "; ".join(f"{w or ''} {k or ''}: {m}".strip() for w, k, m in errors[1:6])
        message = f"{message} (and {len(errors) - 1} more: {others})"
    raise InputError(message, source=source, where=where, key=key)


def validate_document(document: Any, source: str) -> None:
    """Raise InputError naming file, item and key for the first schema violation (all are listed)."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        _fail([(_where(document, e.absolute_path), *_describe(e)) for e in errors], source)


def _read_template(source: str, where: str, template: str, root: Path) -> tuple[Path, bytes]:
    path = Path(template)
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        raise InputError(
            f"template file {str(path)!r} not found (paths are relative to {str(root)!r}, the repository root)",
            source=source,
            where=where,
            key="template",
        )
    body = path.read_bytes()
    if len(body) > TEMPLATE_MAX_BYTES:
        raise InputError(
            f"template is {len(body)} bytes; CloudFormation reads at most {TEMPLATE_MAX_BYTES} from S3",
            source=source,
            where=where,
            key="template",
        )
    try:
        parsed = yaml.load(body, Loader=_CfnLoader)  # JSON is YAML too
    except yaml.YAMLError as error:
        raise InputError(
            f"template {str(path)!r} is not valid YAML/JSON: {error}", source=source, where=where, key="template"
        ) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), dict):
        raise InputError(
            f"template {str(path)!r} is not a CloudFormation template (no 'Resources' mapping)",
            source=source,
            where=where,
            key="template",
        )
    return path, body


def _launch_role(data: dict | None) -> LaunchRole | None:
    return LaunchRole(name=data.get("name"), arn=data.get("arn")) if data else None


def _versions(data: dict | None, default: VersionPolicy, source: str, where: str, key: str) -> VersionPolicy:
    if not data:
        return default
    policy = VersionPolicy(
        keep_active=data.get("keep_active", default.keep_active), keep=data.get("keep", default.keep)
    )
    if policy.keep is not None and policy.keep < policy.keep_active:
        raise InputError(
            f"keep ({policy.keep}) must be at least keep_active ({policy.keep_active}): active versions are kept",
            source=source,
            where=where,
            key=f"{key}.keep",
        )
    return policy


def parse_catalog(document: Any, source: str, root: Path) -> Catalog:
    """Validate a parsed catalog document and read its templates; raise InputError on bad input."""
    validate_document(document, source)
    default_versions = _versions(document.get("versions"), VersionPolicy(), source, "versions", "versions")
    default_role = _launch_role(document.get("launch_role"))
    products, seen = [], {}
    for index, item in enumerate(document["products"]):
        where = f"product '{item['name']}'"
        if item["name"] in seen:
            raise InputError(
                f"duplicate product name (also products[{seen[item['name']]}]); product names must be unique",
                source=source,
                where=where,
                key=f"products[{index}].name",
            )
        seen[item["name"]] = index
        path, body = _read_template(source, where, item["template"], root)
        products.append(
            ProductSpec(
                name=item["name"],
                template=item["template"],
                path=path,
                body=body,
                sha256=hashlib.sha256(body).hexdigest(),
                owner=item["owner"],
                description=item.get("description", ""),
                distributor=item.get("distributor", ""),
                support_description=item.get("support_description", ""),
                support_email=item.get("support_email", ""),
                support_url=item.get("support_url", ""),
                tags=tuple(sorted(item.get("tags", {}).items())),
                sagemaker_project=item.get("sagemaker_project", False),
                version_label=item.get("version_label"),
                launch_role=_launch_role(item.get("launch_role")) or default_role,
                versions=_versions(
                    item.get("versions"), default_versions, source, where, f"products[{index}].versions"
                ),
            )
        )
    principals, seen_principals = [], set()
    for index, item in enumerate(document.get("principals", [])):
        ((kind, value),) = item.items()
        if (kind, value) in seen_principals:
            raise InputError(
                f"duplicate principal {value!r}", source=source, where="principals", key=f"principals[{index}].{kind}"
            )
        seen_principals.add((kind, value))
        principals.append(PrincipalSpec(kind, value))
    shares_doc = document.get("shares", {})
    shares = Shares(
        accounts=tuple(shares_doc.get("accounts", ())),
        organizational_units=tuple(shares_doc.get("organizational_units", ())),
        organization=shares_doc.get("organization", False),
        share_principals=shares_doc.get("share_principals", False),
        share_tag_options=shares_doc.get("share_tag_options", False),
        accept_role=shares_doc.get("accept_role"),
    )
    if shares.accept_role and not shares.accounts:
        raise InputError(
            "accept_role is only used for account shares; list 'accounts' or drop it (organization shares need no acceptance)",
            source=source,
            where="shares",
            key="shares.accept_role",
        )
    bucket = document.get("bucket", {})
    portfolio = document["portfolio"]
    return Catalog(
        source=source,
        portfolio_name=portfolio["name"],
        provider=portfolio["provider"],
        portfolio_description=portfolio.get("description", ""),
        portfolio_tags=tuple(sorted(portfolio.get("tags", {}).items())),
        products=tuple(products),
        region=document.get("region"),
        bucket_name=bucket.get("name"),
        key_prefix=bucket.get("key_prefix", DEFAULT_KEY_PREFIX),
        kms_key_id=bucket.get("kms_key_id"),
        principals=tuple(principals),
        shares=shares,
    )


def load_catalog(path: str | Path, root: str | Path | None = None) -> Catalog:
    """Read, validate and hash the catalog file at ``path``; template paths resolve against ``root`` (default: cwd)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read the catalog file: {error.strerror}", source=source) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise InputError(
            f"not valid YAML: {getattr(error, 'problem', None) or error}", source=source, where=where
        ) from None
    if not isinstance(document, dict):
        raise InputError("expected a mapping with 'portfolio' and 'products' at the top level", source=source)
    return parse_catalog(document, source, Path(root) if root else Path.cwd())


# --- live state, as read by deploy.servicecatalog ---------------------------------------------


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
        match = _SHORT_HASH_RE.search(self.name)
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
    return re.fullmatch(_ACCOUNT_ID, value) is not None


def is_ou_id(value: str) -> bool:
    return re.fullmatch(_OU_ID, value) is not None


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
        add, remove = _tag_changes(product.desired_tags(), live.tags, managed_keys=(STUDIO_VISIBILITY_TAG,))
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
        if product.tags.get(OWNER_TAG_KEY) != OWNER_TAG_VALUE:
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
